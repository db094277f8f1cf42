// Authentication of REST requests: `Authorization: Bearer <JWT>` checked by the same verifier
// as the WebSocket `auth` (external and account tokens alike), or `X-Api-Key: <key>` for
// applications, which act as the administrator identity API_IDENTITY.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';

/**
 * Who an API key acts as. The id is not a valid account username (it has a colon), so no
 * built-in account can take it.
 */
export const API_IDENTITY: Readonly<Identity> = Object.freeze({ id: 'parley:api', name: 'API', profile: {}, admin: true });

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set by the `authenticate` hook, null on public routes. */
    identity: Identity | null;
  }
}

export interface AuthOptions {
  verify: Verifier;
  apiKeys: readonly string[];
  /** Called once a user token is verified, before the route runs: `Service.admit` (bans, recording the user). */
  admit?: (user: Identity) => Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The bearer token of a request, `unauthorized` when absent or malformed. */
export function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (!h) throw new ParleyError('unauthorized', 'send "Authorization: Bearer <token>"');
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  if (!m) throw new ParleyError('unauthorized', 'the Authorization header must be "Bearer <token>"');
  return m[1]!;
}

/** The caller of a route behind the `authenticate` hook (`unauthorized` if none ran). */
export function authenticated(req: FastifyRequest): Identity {
  if (!req.identity) throw new ParleyError('unauthorized', 'this route needs credentials');
  return req.identity;
}

/** Builds the onRequest hook that sets `request.identity` or rejects with `unauthorized`. */
export function authenticator(opts: AuthOptions): (req: FastifyRequest) => Promise<void> {
  // Comparing fixed-length digests keeps the time independent of where a guess differs.
  const keys = opts.apiKeys.map(digest);
  return async (req) => {
    const key = req.headers['x-api-key'];
    if (key !== undefined) {
      const d = digest(Array.isArray(key) ? key.join(',') : key);
      let ok = false;
      for (const k of keys) ok = timingSafeEqual(k, d) || ok;
      if (!ok) throw new ParleyError('unauthorized', 'unknown API key');
      req.identity = { ...API_IDENTITY };
      return;
    }
    const identity = await opts.verify(bearer(req));
    await opts.admit?.(identity);
    req.identity = identity;
  };
}
