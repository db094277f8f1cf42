// Registers the REST API of the route table (routes.ts): each request is authenticated,
// validated against its schemas, turned into the command frame a WebSocket client would send,
// checked against that command's schema, and run through `service.exec`, so both transports
// give the same answer. Each command is timed by the scope's lifecycle hooks (commandTiming)
// and recorded by the command runner. Also the two routes that are not commands: /me and
// /users/:user.
import { performance } from 'node:perf_hooks';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { ParleyError } from '../../errors.js';
import { Commands, User, UserId, type CommandFrame, type CommandName } from '../../protocol/schema.js';
import { validateCommand } from '../../protocol/frames.js';
import type { Session } from '../../service/index.js';
import type { CommandRunner } from '../../service/runner.js';
import { authenticated } from './auth.js';
import { toHttpError } from './errors.js';
import { routes, responseOf, type CommandRoute, type Parts } from './routes.js';
import { ErrorBody, Me } from './schemas.js';

export interface ApiDeps {
  exec(s: Session, frame: CommandFrame): Promise<unknown>;
  getUser(id: string): Promise<Static<typeof User> | null>;
  authenticate: onRequestAsyncHookHandler;
  /** Where each command's time and outcome are recorded. */
  runner: Pick<CommandRunner, 'record'>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The service command a REST route runs: its time and outcome are recorded as that command's. */
    command?: CommandName;
  }
}

/** Requests whose failure was already counted as a command error (see index.ts). */
export const countedErrors = new WeakSet<FastifyRequest>();

/**
 * Times the command of every command route in `scope`: from the end of validation
 * (preHandler) to the reply being produced (onSend), a failure with its code (onError, which
 * also marks the error counted so the error handler does not count it twice).
 */
function commandTiming(scope: FastifyInstance, runner: Pick<CommandRunner, 'record'>): void {
  const started = new WeakMap<FastifyRequest, number>();
  const failed = new WeakMap<FastifyRequest, string>();
  scope.addHook('preHandler', async (req) => {
    if (req.routeOptions.config.command) started.set(req, performance.now());
  });
  scope.addHook('onError', async (req, _reply, err) => {
    if (!started.has(req)) return;
    failed.set(req, toHttpError(err).code);
    countedErrors.add(req);
  });
  scope.addHook('onSend', async (req) => {
    const t0 = started.get(req);
    const cmd = req.routeOptions.config.command;
    if (t0 === undefined || !cmd) return;
    started.delete(req);
    runner.record('http', cmd, performance.now() - t0, failed.get(req));
  });
}

/** Security requirement of authenticated routes in the OpenAPI document. */
export const SECURED: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }];
export const ERRORS = { '4xx': ErrorBody, '5xx': ErrorBody };

/** Unknown query parameters are refused, as unknown frame fields are (a typo is not ignored). */
const NO_QUERY = Type.Object({}, { additionalProperties: false });

/** Routes without a body refuse one (an empty JSON body is none). */
async function noBody(req: FastifyRequest): Promise<void> {
  const b = req.body;
  if (b && typeof b === 'object' && Object.keys(b).length > 0) throw new ParleyError('invalid', 'body: this route takes no body', { in: 'body' });
}

interface RouteParts {
  Params: Record<string, unknown>;
  Querystring: Record<string, unknown>;
  Body: Record<string, unknown> | undefined;
  Headers: Record<string, unknown>;
}

function register(api: FastifyInstance, deps: ApiDeps, r: CommandRoute): void {
  const ok = responseOf(r);
  const status = r.status ?? 200;
  api.route<RouteParts>({
    method: r.method,
    url: r.url,
    onRequest: deps.authenticate,
    ...(r.body ? {} : { preValidation: noBody }),
    config: { command: r.cmd },
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
        params: req.params ?? {},
        query: req.query ?? {},
        body: req.body && typeof req.body === 'object' ? req.body : {},
        headers: req.headers,
      };
      // The frame must pass the same schema as over WebSocket; a route table mistake shows here.
      const frame: CommandFrame = validateCommand(r.cmd, { id: 0, cmd: r.cmd, ...r.args(p) });
      const data = await deps.exec({ user: authenticated(req), via: 'http' }, frame);
      const out = r.reply ? r.reply(data, p) : { body: data };
      if (out.headers) void reply.headers(out.headers);
      return reply.code(out.status ?? status).send(out.body);
    },
  });
}

export function registerApi(scope: FastifyInstance, deps: ApiDeps): void {
  const api = scope.withTypeProvider<TypeBoxTypeProvider>();
  commandTiming(scope, deps.runner);
  api.get(
    '/me',
    {
      onRequest: deps.authenticate,
      schema: {
        operationId: 'me',
        tags: ['users'],
        summary: 'The authenticated user, as the token presents it.',
        security: SECURED,
        querystring: NO_QUERY,
        response: { 200: Me, ...ERRORS },
      },
    },
    async (req) => {
      const u = authenticated(req);
      return { id: u.id, name: u.name, profile: u.profile, admin: u.admin };
    },
  );
  api.get(
    '/users/:user',
    {
      onRequest: deps.authenticate,
      schema: {
        operationId: 'user',
        tags: ['users'],
        summary: "A user's public name and profile.",
        security: SECURED,
        params: Type.Object({ user: UserId }),
        querystring: NO_QUERY,
        response: { 200: User, ...ERRORS },
      },
    },
    async (req) => {
      const user = await deps.getUser(req.params.user);
      if (!user) throw new ParleyError('not_found', 'user not found');
      return user;
    },
  );
  for (const r of routes) register(scope, deps, r);
}
