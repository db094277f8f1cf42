// HTTP helpers for plugin routes: an administrator guard (a bearer JWT whose identity has
// `admin: true`, or one of the configured `api.keys` in X-Api-Key) and a scope that checks
// route schemas with the protocol's validation like the rest of the REST API. Errors thrown in plugin routes
// reach the HTTP transport's error handler, which answers {error: {code, message, details?}}.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ParleyError } from '../errors.js';
import { httpValidatorCompiler } from '../protocol/validate.js';
import type { Identity, Verifier } from '../auth/jwt.js';
import { API_IDENTITY, authenticator } from '../transport/http/auth.js';

/** OpenAPI security of admin routes (the schemes the REST API's document declares). */
export const ADMIN_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }];

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
  // The same authentication as every REST route; only the admin check is added here.
  const authenticate = authenticator({ verify: opts.verify, apiKeys: opts.apiKeys });
  return async (req: FastifyRequest): Promise<void> => {
    await authenticate(req);
    const user = req.identity!;
    if (!user.admin) throw new ParleyError('forbidden', 'administrators only');
    principals.set(req, user.id === API_IDENTITY.id ? { kind: 'key' } : { kind: 'user', user });
  };
}

/**
 * Registers routes in their own fastify scope whose schemas the protocol's validation checks
 * (bodies are not coerced: a string is not an array of one), so a failure is `invalid`
 * naming the field.
 */
export async function scoped(app: FastifyInstance, register: (scope: FastifyInstance) => void | Promise<void>): Promise<void> {
  await app.register(async (scope) => {
    scope.setValidatorCompiler(httpValidatorCompiler);
    await register(scope);
  });
}
