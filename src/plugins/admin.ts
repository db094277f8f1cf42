// HTTP helpers for plugin routes: an administrator guard (a bearer JWT whose identity has
// `admin: true`, or one of the configured `api.keys` in X-Api-Key) and a scope that checks
// route schemas with TypeBox like the rest of the REST API. Errors thrown in plugin routes
// reach the HTTP transport's error handler, which answers {error: {code, message, details?}}.
import { createHash, timingSafeEqual } from 'node:crypto';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ParleyError } from '../errors.js';
import type { Identity, Verifier } from '../auth/jwt.js';

/** OpenAPI security of admin routes (the schemes the REST API's document declares). */
export const ADMIN_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }];

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Who passed the guard: a user with an admin token, or an application with an API key. */
export type AdminPrincipal = { kind: 'user'; user: Identity } | { kind: 'key' };
const principals = new WeakMap<FastifyRequest, AdminPrincipal>();

/** Who passed `requireAdmin` for this request. */
export const adminOf = (req: FastifyRequest): AdminPrincipal | undefined => principals.get(req);

/**
 * A fastify preHandler that lets administrators through: `unauthorized` without valid
 * credentials, `forbidden` for a valid token without the admin claim.
 */
export function requireAdmin(opts: { verify: Verifier; apiKeys: readonly string[] }) {
  // Compare digests so the comparison time does not depend on where a guess differs.
  const keys = opts.apiKeys.map(digest);
  return async (req: FastifyRequest): Promise<void> => {
    const key = req.headers['x-api-key'];
    if (key !== undefined) {
      const d = digest(Array.isArray(key) ? key.join(',') : key);
      let ok = false;
      for (const k of keys) ok = timingSafeEqual(k, d) || ok;
      if (!ok) throw new ParleyError('unauthorized', 'unknown API key');
      principals.set(req, { kind: 'key' });
      return;
    }
    const auth = req.headers.authorization;
    if (!auth) throw new ParleyError('unauthorized', 'send "Authorization: Bearer <token>" or "X-Api-Key: <key>"');
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (!m) throw new ParleyError('unauthorized', 'the Authorization header must be "Bearer <token>"');
    const user = await opts.verify(m[1]!);
    if (!user.admin) throw new ParleyError('forbidden', 'administrators only');
    principals.set(req, { kind: 'user', user });
  };
}

/**
 * Registers routes in their own fastify scope whose schemas TypeBox checks (no type
 * coercion: a string is not an array of one), so a failure is `invalid` naming the field.
 */
export async function scoped(app: FastifyInstance, register: (scope: FastifyInstance) => void | Promise<void>): Promise<void> {
  await app.register(async (scope) => {
    scope.setValidatorCompiler(TypeBoxValidatorCompiler);
    await register(scope);
  });
}
