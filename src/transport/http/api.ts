// Registers the REST API of the route table (routes.ts): each request is authenticated,
// validated against its schemas, turned into the command frame a WebSocket client would send,
// checked against that command's schema, and run through `service.exec`, so both transports
// give the same answer. Also the two routes that are not commands: /me and /users/:user.
import { performance } from 'node:perf_hooks';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Identity } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import { Commands, User, UserId, type CommandFrame } from '../../protocol/schema.js';
import { validateCommand } from '../../protocol/frames.js';
import type { Session } from '../../service/index.js';
import { toHttpError } from './errors.js';
import type { Metrics } from './metrics.js';
import { routes, responseOf, type CommandRoute, type Parts } from './routes.js';
import { ErrorBody, Me } from './schemas.js';

export interface ApiDeps {
  exec(s: Session, frame: CommandFrame): Promise<unknown>;
  getUser(id: string): Promise<Static<typeof User> | null>;
  authenticate: onRequestAsyncHookHandler;
  metrics: Metrics;
}

/** Requests whose failure was already counted as a command error (see index.ts). */
export const countedErrors = new WeakSet<FastifyRequest>();

/** Security requirement of authenticated routes in the OpenAPI document. */
export const SECURED: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }];
export const ERRORS = { '4xx': ErrorBody, '5xx': ErrorBody };

/** Unknown query parameters are refused, as unknown frame fields are (a typo is not ignored). */
const NO_QUERY = Type.Object({}, { additionalProperties: false });

function register(api: FastifyInstance, deps: ApiDeps, r: CommandRoute): void {
  const ok = responseOf(r);
  const status = r.status ?? 200;
  api.route({
    method: r.method,
    url: r.url,
    onRequest: deps.authenticate,
    schema: {
      operationId: r.op ?? r.cmd,
      tags: [r.tag],
      summary: r.summary ?? (Commands[r.cmd] as TSchema).description,
      security: SECURED,
      ...(r.params ? { params: r.params } : {}),
      querystring: r.query ?? NO_QUERY,
      ...(r.body ? { body: r.body } : {}),
      ...(r.headers ? { headers: r.headers } : {}),
      response: { ...(status !== 200 ? { 200: ok } : {}), [status]: ok, ...ERRORS },
    },
    handler: async (req, reply) => {
      const p: Parts = {
        params: (req.params ?? {}) as Record<string, unknown>,
        query: (req.query ?? {}) as Record<string, unknown>,
        body: (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>,
        headers: req.headers as Record<string, unknown>,
      };
      if (!r.body && Object.keys(p.body).length > 0) throw new ParleyError('invalid', 'body: this route takes no body', { in: 'body' });
      // The frame must pass the same schema as over WebSocket; a route table mistake shows here.
      const frame: CommandFrame = validateCommand(r.cmd, { id: 0, cmd: r.cmd, ...r.args(p) });
      const t0 = performance.now();
      let data: unknown;
      try {
        data = await deps.exec({ user: req.identity as Identity }, frame);
      } catch (err) {
        deps.metrics.command(r.cmd, 'http', performance.now() - t0, toHttpError(err).code);
        countedErrors.add(req);
        throw err;
      }
      deps.metrics.command(r.cmd, 'http', performance.now() - t0);
      if (r.cmd === 'post') deps.metrics.received('http', (data as { posted: unknown[] }).posted.length);
      const out = r.reply ? r.reply(data, p) : { body: data };
      if (out.headers) void reply.headers(out.headers);
      return reply.code(out.status ?? status).send(out.body);
    },
  });
}

export function registerApi(api: FastifyInstance, deps: ApiDeps): void {
  api.get('/me', {
    onRequest: deps.authenticate,
    schema: {
      operationId: 'me', tags: ['users'], summary: 'The authenticated user, as the token presents it.', security: SECURED,
      querystring: NO_QUERY, response: { 200: Me, ...ERRORS },
    },
  }, async (req) => {
    const u = req.identity as Identity;
    return { id: u.id, name: u.name, profile: u.profile, admin: u.admin };
  });
  api.get('/users/:user', {
    onRequest: deps.authenticate,
    schema: {
      operationId: 'user', tags: ['users'], summary: 'A user\'s public name and profile.', security: SECURED,
      params: Type.Object({ user: UserId }), querystring: NO_QUERY, response: { 200: User, ...ERRORS },
    },
  }, async (req) => {
    const user = await deps.getUser((req.params as { user: string }).user);
    if (!user) throw new ParleyError('not_found', 'user not found');
    return user;
  });
  for (const r of routes) register(api, deps, r);
}
