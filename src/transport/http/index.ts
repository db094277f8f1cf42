// HTTP transport (fastify): the REST API under /api/v1 (api.ts, accounts.ts), its OpenAPI
// document and docs page, health, readiness and Prometheus metrics. It holds no business
// rules. The WebSocket transport shares its port through the Node server's upgrade event.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { AccountService } from '../../accounts/index.js';
import type { Identity, Verifier } from '../../auth/jwt.js';
import type { Plugin } from '../../plugins/plugin.js';
import type { User } from '../../protocol/schema.js';
import type { Service } from '../../service/index.js';
import { registerAccountRoutes } from './accounts.js';
import { countedErrors, registerApi } from './api.js';
import { authenticator } from './auth.js';
import { sendError, toHttpError } from './errors.js';
import type { Metrics } from './metrics.js';
import { registerDocsPage, registerOpenApi } from './openapi.js';

export const API_PREFIX = '/api/v1';

export interface RestDeps {
  service: Pick<Service, 'exec' | 'checkNotBanned'>;
  verify: Verifier;
  getUser(id: string): Promise<User | null>;
  /** Records the user of an authenticated request (name, profile), as a WebSocket auth does. */
  seen(user: Identity): Promise<void>;
  /** Built-in accounts; their routes are absent without it. */
  accounts?: AccountService;
  apiKeys: readonly string[];
  /** Serve /api/v1/openapi.json and /api/docs. */
  docs: boolean;
  /** Plugins whose `routes` are mounted under /api/v1, each in its own scope. */
  plugins?: readonly Plugin[];
}

export interface HttpDeps {
  log: Logger;
  /** True while the node can serve: not closing, and the store answers a trivial query. */
  ready: () => boolean | Promise<boolean>;
  stats: () => Record<string, number>;
  metrics: Metrics;
  /** Take the client address from X-Forwarded-For (only behind a trusted proxy). */
  trustProxy?: boolean;
  /** `info.version` of the OpenAPI document (default 1.0.0, the API's major version being in its path). */
  version?: string;
  /** The REST API; without it only health, readiness and metrics are served. */
  rest?: RestDeps;
}

export interface RouteInfo { method: string; url: string }
const registered = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route of the app, as registered (for tests and diagnostics). */
export function registeredRoutes(app: FastifyInstance): RouteInfo[] {
  return registered.get(app) ?? [];
}

export function createHttp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    trustProxy: deps.trustProxy ?? false,
  });
  const routes: RouteInfo[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  app.decorateRequest('identity', null);

  // A JSON body may be empty (POST /rooms/x/join with a JSON content type): it is no body.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') done(null, undefined);
    else json(req, body as string, done);
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    if (e.code === 'internal') deps.log.error({ err, url: req.url }, 'request failed');
    if (!countedErrors.has(req)) deps.metrics.error(e.code, 'http');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    deps.metrics.error('not_found', 'http');
    return sendError(reply, toHttpError({ statusCode: 404, message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  });

  const rest = deps.rest;
  if (rest?.docs) registerOpenApi(app, deps.version ?? '1.0.0');

  void app.register(async (root) => {
    root.get('/healthz', { schema: { operationId: 'healthz', tags: ['ops'], summary: 'The process is alive.' } }, async () => ({ ok: true }));
    root.get('/readyz', { schema: { operationId: 'readyz', tags: ['ops'], summary: 'The node can serve: the store answers and it is not shutting down (503 otherwise).' } },
      async (_req, reply) => {
        let ready: boolean;
        try { ready = await deps.ready(); } catch { ready = false; }
        return reply.code(ready ? 200 : 503).send({ ok: ready, ...deps.stats() });
      });
    root.get('/metrics', { schema: { operationId: 'metrics', tags: ['ops'], summary: 'Prometheus metrics (text exposition format).' } },
      async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));
    root.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/plain').send(
      'Parley chat server. WebSocket protocol on /ws; REST API under /api/v1 (docs at /api/docs).\n',
    ));
  });

  if (rest) {
    const authenticate = authenticator({
      verify: rest.verify,
      apiKeys: rest.apiKeys,
      admit: async (user) => {
        await rest.service.checkNotBanned(user.id);
        await rest.seen(user);
      },
    });
    void app.register(async (api) => {
      // TypeBox schemas checked by TypeBox, as the WebSocket frames are; query and path
      // strings are converted to the schema's types first.
      api.setValidatorCompiler(TypeBoxValidatorCompiler);
      api.addHook('preValidation', async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      });
      registerApi(api, { exec: (s, f) => rest.service.exec(s, f), getUser: rest.getUser, authenticate, metrics: deps.metrics });
      if (rest.accounts) registerAccountRoutes(api, rest.accounts, authenticate);
      if (rest.docs) {
        api.get('/openapi.json', {
          schema: { operationId: 'openapi', tags: ['ops'], summary: 'This OpenAPI 3.1 document.', security: [] },
        }, async () => app.swagger());
      }
    }, { prefix: API_PREFIX });
    for (const p of rest.plugins ?? []) {
      if (p.routes) void app.register(async (scope) => { await p.routes!(scope); }, { prefix: API_PREFIX });
    }
    if (rest.docs) registerDocsPage(app);
  }
  return app;
}

export { Metrics } from './metrics.js';
export { HTTP_STATUS } from './errors.js';
