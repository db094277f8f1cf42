// HTTP transport (fastify): the REST API under /api/v1 (api.ts, accounts.ts), its OpenAPI
// document and docs page, health, readiness, the Prometheus metrics endpoint (the metrics
// themselves are observability/metrics.ts) and the built web app (dist/web, from web/). It
// holds no business rules. The WebSocket transport shares its port through the Node server's
// upgrade event; integrations (Chat21) register their routes on the app as fastify plugins.
import { existsSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { Logger } from 'pino';
import type { AccountService } from '../../accounts/index.js';
import type { Verifier } from '../../auth/jwt.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Plugin } from '../../plugins/plugin.js';
import type { User } from '../../protocol/schema.js';
import { httpValidatorCompiler } from '../../protocol/validate.js';
import type { Service } from '../../service/index.js';
import type { CommandRunner } from '../../service/runner.js';
import { registerAccountRoutes } from './accounts.js';
import { registerAdminRoutes } from './admin.js';
import type { Directory } from '../../store/directory.js';
import { countedErrors, registerApi } from './api.js';
import { authenticator } from './auth.js';
import { HTTP_STATUS, sendError, toHttpError } from './errors.js';
import { ParleyError } from '../../errors.js';
import { registerDocsPage, registerOpenApi } from './openapi.js';

export const API_PREFIX = '/api/v1';

export interface RestDeps {
  /** `admit` runs on every authenticated request (bans, the user's record), as on every transport. */
  service: Pick<Service, 'exec' | 'admit'>;
  /** Records each command's time and outcome. */
  runner: Pick<CommandRunner, 'record'>;
  verify: Verifier;
  getUser(id: string): Promise<User | null>;
  /** Built-in accounts; their routes are absent without it. */
  accounts?: AccountService;
  /** The admin screen's look-ups; its /admin routes are absent without it. */
  directory?: Directory;
  /** Open client connections of this node per transport (the admin screen's live figures). */
  connections?: () => Partial<Record<'ws' | 'http' | 'mqtt', number>>;
  apiKeys: readonly string[];
  /** Serve /api/v1/openapi.json and /api/docs. */
  docs: boolean;
  /** Plugins whose `routes` are mounted under /api/v1, each in its own scope. */
  plugins?: readonly Plugin[];
}

/** How long idle and slow connections may stay open, and how many one address may hold. */
export interface SocketLimits {
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** 0: no cap. */
  connectionsPerAddress: number;
}

/** Node's own defaults (minute-long idle sockets) are not safe on an open port. */
export const DEFAULT_SOCKET_LIMITS: SocketLimits = { keepAliveTimeoutMs: 5000, headersTimeoutMs: 10000, requestTimeoutMs: 30000, connectionsPerAddress: 256 };

export interface HttpDeps {
  log: Logger;
  /** Timeouts and the per-address connection cap (defaults: DEFAULT_SOCKET_LIMITS). */
  sockets?: SocketLimits;
  /** True while the node can serve: not closing, and the store answers a trivial query. */
  ready: () => boolean | Promise<boolean>;
  stats: () => Record<string, number>;
  /** Answers GET /api/v1/dispatch. */
  dispatch?: () => Promise<{ node: string; url: string; wsUrl: string; connections: number }>;
  metrics: Metrics;
  /** Take the client address from X-Forwarded-For (only behind a trusted proxy). */
  trustProxy?: boolean;
  /** `info.version` of the OpenAPI document (default 1.0.0, the API's major version being in its path). */
  version?: string;
  /** The REST API; without it only health, readiness and metrics are served. */
  rest?: RestDeps;
  /** Folder of the built web app (dist/web by default, when built); null serves no app. */
  webRoot?: string | null;
  /** What one connection may hold: requests awaiting their response, response bytes not yet sent. */
  limits?: ConnectionLimits;
}

export interface ConnectionLimits {
  maxInFlight: number;
  slowConsumerBytes: number;
}

export interface RouteInfo {
  method: string;
  url: string;
}
const registered = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route of the app, as registered (for tests and diagnostics). */
export function registeredRoutes(app: FastifyInstance): RouteInfo[] {
  return registered.get(app) ?? [];
}

export function createHttp(deps: HttpDeps): FastifyInstance {
  const limits = deps.sockets ?? DEFAULT_SOCKET_LIMITS;
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- fastify infers its logger type from this; pino's Logger fails the route types
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    trustProxy: deps.trustProxy ?? false,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks the timeouts of open connections every connectionsCheckingInterval (30 s by
    // default, which let a silent connection live for up to 90 s): check every second at most.
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) },
    // A URL the router cannot even decode (bad percent-encoding, a parameter over its length
    // limit) answers like every other refusal, not in fastify's own error shape.
    frameworkErrors: (err, _req, reply) => {
      const e = toHttpError(err);
      deps.metrics.error(e.code, 'http');
      void sendError(reply, e);
    },
    // A request Node cannot even parse (headers over 16 KiB, bad syntax, too slow) is answered
    // in the same shape before the connection is closed.
    clientErrorHandler: (err, socket) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      const code = (err as NodeJS.ErrnoException).code;
      const e =
        code === 'HPE_HEADER_OVERFLOW'
          ? new ParleyError('too_large', 'the request headers exceed 16 KiB')
          : new ParleyError('invalid', code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'the request did not arrive in time' : 'the request is not valid HTTP');
      deps.metrics.error(e.code, 'http');
      const body = JSON.stringify({ error: e.toJSON() });
      if (socket.writable) {
        const status = HTTP_STATUS[e.code];
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
  });
  closeQuietSockets(app);
  closeSilentSockets(app, limits.headersTimeoutMs);
  if (limits.connectionsPerAddress > 0) capConnectionsPerAddress(app, limits.connectionsPerAddress, deps.log);
  if (deps.limits) boundConnections(app, deps.limits, deps);
  // Every request schema (API, accounts, plugin routes) is checked by the protocol's one
  // validation, as WebSocket frames are; query and path strings are converted first.
  app.setValidatorCompiler(httpValidatorCompiler);
  const routes: RouteInfo[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  app.decorateRequest('identity', null);

  // A JSON body may be empty (POST /rooms/x/join with a JSON content type): it is no body.
  // Bytes that are not UTF-8 are refused, not turned into U+FFFD (as WebSocket closes with 1007).
  // A "__proto__" or "constructor" key is read as JSON.parse reads it, an own key, as in a
  // WebSocket frame or an MQTT payload: room ids may be named so (a resume map is keyed by
  // them), and no object keyed by outside input inherits a prototype (prototype-keys.test.ts).
  const json = app.getDefaultJsonParser('ignore', 'ignore');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new ParleyError('invalid', 'the request body is not valid UTF-8'), undefined);
      return;
    }
    // fastify's own parser answers through `done` (its type also admits the promise form).
    if (text === '') done(null, undefined);
    else void json(req, text, done);
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    if (e.code === 'internal') deps.log.error({ err, url: req.url }, 'request failed');
    if (!countedErrors.has(req)) deps.metrics.error(e.code, 'http');
    return sendError(reply, e);
  });
  const webRoot = deps.webRoot === undefined ? findWebRoot() : deps.webRoot;
  app.setNotFoundHandler((req, reply) => {
    // Paths of the app's own pages (/r/general after a reload) are answered with the app.
    if (webRoot && serveWebApp(req, reply)) return reply;
    deps.metrics.error('not_found', 'http');
    return sendError(reply, toHttpError({ statusCode: 404, message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  });

  const rest = deps.rest;
  if (rest?.docs) registerOpenApi(app, deps.version ?? '1.0.0');

  void app.register(async (root) => {
    root.get('/healthz', { schema: { operationId: 'healthz', tags: ['ops'], summary: 'The process is alive.' } }, async () => ({ ok: true }));
    root.get(
      '/readyz',
      { schema: { operationId: 'readyz', tags: ['ops'], summary: 'The node can serve: the store answers and it is not shutting down (503 otherwise).' } },
      async (_req, reply) => {
        let ready: boolean;
        try {
          ready = await deps.ready();
        } catch {
          ready = false;
        }
        return reply.code(ready ? 200 : 503).send({ ok: ready, ...deps.stats() });
      },
    );
    if (deps.dispatch) {
      const dispatch = deps.dispatch;
      root.get(
        `${API_PREFIX}/dispatch`,
        {
          schema: {
            operationId: 'dispatch',
            tags: ['ops'],
            summary: 'The least-loaded healthy node (by open connections), for clients or load balancers that spread connections.',
            response: {
              200: {
                type: 'object',
                required: ['node', 'url', 'wsUrl', 'connections'],
                properties: { node: { type: 'string' }, url: { type: 'string' }, wsUrl: { type: 'string' }, connections: { type: 'integer' } },
              },
            },
          },
        },
        async () => dispatch(),
      );
    }
    root.get('/metrics', { schema: { operationId: 'metrics', tags: ['ops'], summary: 'Prometheus metrics (text exposition format).' } }, async (_req, reply) =>
      reply.type(deps.metrics.contentType).send(await deps.metrics.text()),
    );
    if (!webRoot) {
      root.get('/', { schema: { hide: true } }, async (_req, reply) =>
        reply
          .type('text/plain')
          .send(
            'Parley chat server. WebSocket protocol on /ws; REST API under /api/v1 (docs at /api/docs).\n' + 'The web app is not built: run `npm run build`.\n',
          ),
      );
    }
  });
  if (webRoot) registerWebApp(app, webRoot);

  if (rest) {
    const authenticate = authenticator({ verify: rest.verify, apiKeys: rest.apiKeys, admit: (user) => rest.service.admit(user) });
    void app.register(
      async (api) => {
        api.addHook('preValidation', async (req) => {
          if (req.body === undefined || req.body === null) req.body = {};
        });
        registerApi(api, { exec: (s, f) => rest.service.exec(s, f), getUser: (id) => rest.getUser(id), authenticate, runner: rest.runner });
        if (rest.accounts) registerAccountRoutes(api, rest.accounts, authenticate);
        if (rest.directory) {
          registerAdminRoutes(api, {
            directory: rest.directory,
            metrics: deps.metrics,
            verify: rest.verify,
            apiKeys: rest.apiKeys,
            connections: rest.connections ?? (() => ({})),
            plugins: () => [...new Set((rest.plugins ?? []).map((p) => p.name))],
          });
        }
        if (rest.docs) {
          api.get(
            '/openapi.json',
            {
              schema: { operationId: 'openapi', tags: ['ops'], summary: 'This OpenAPI 3.1 document.', security: [] },
            },
            async () => app.swagger(),
          );
        }
      },
      { prefix: API_PREFIX },
    );
    for (const p of rest.plugins ?? []) {
      if (p.routes)
        void app.register(
          async (scope) => {
            await p.routes!(scope);
          },
          { prefix: API_PREFIX },
        );
    }
    if (rest.docs) registerDocsPage(app);
  }
  return app;
}

/**
 * Closes at once a connection whose address already holds `cap` open ones (HTTP requests and
 * WebSocket upgrades alike, by the socket's own address), as Node does past maxConnections.
 */
function capConnectionsPerAddress(app: FastifyInstance, cap: number, log: Logger): void {
  const open = new Map<string, number>();
  app.server.on('connection', (s: Socket) => {
    const address = s.remoteAddress ?? '';
    const n = open.get(address) ?? 0;
    if (n >= cap) {
      log.debug({ address, cap }, 'connection refused: too many from this address');
      s.destroy();
      return;
    }
    open.set(address, n + 1);
    s.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

/**
 * Closes a connection that has sent not one byte within `ms` of opening. Node's periodic
 * headers check is meant to cover it too, but it is a sweep over its own connection lists;
 * this timer per socket does not depend on them.
 */
function closeSilentSockets(app: FastifyInstance, ms: number): void {
  app.server.on('connection', (s: Socket) => {
    const t = setTimeout(() => {
      if (s.bytesRead === 0) s.destroy();
    }, ms);
    t.unref();
    s.once('close', () => clearTimeout(t));
  });
}

/**
 * At shutdown, ends the connections that carry no request, and the others once their response
 * is sent. Node's own idle check skips sockets that never carried a request (browsers open
 * spare ones), so without this a close waits for them until the headers timeout (a minute).
 */
function closeQuietSockets(app: FastifyInstance): void {
  const sockets = new Set<Socket>();
  const active = new WeakMap<Socket, number>();
  let closing = false;
  app.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  app.server.on('request', (req, res) => {
    const s = req.socket;
    active.set(s, (active.get(s) ?? 0) + 1);
    res.once('close', () => {
      const n = (active.get(s) ?? 1) - 1;
      active.set(s, n);
      if (closing && n === 0) s.destroy();
    });
  });
  app.addHook('preClose', (done) => {
    closing = true;
    for (const s of sockets) if (!active.get(s)) s.destroy();
    done();
  });
}

/**
 * A client that pipelines requests and never reads the responses must not make the server
 * hold them without bound. Node dispatches pipelined requests at once and buffers every
 * response behind the first unread one, so per connection: requests run one at a time, in
 * order (the responses leave in that order anyway), at most `maxInFlight` may await their
 * response, and a response is not produced while those before it hold more than
 * `slowConsumerBytes` unsent. Past either limit the connection is destroyed, and what it held
 * with it.
 */
function boundConnections(app: FastifyInstance, limits: ConnectionLimits, deps: Pick<HttpDeps, 'log' | 'metrics'>): void {
  interface Held {
    inFlight: number;
    unsent: number;
    turn: Promise<void>;
  }
  const held = new WeakMap<Socket, Held>();
  const turns = new WeakMap<FastifyRequest, () => void>();
  const overloaded = (s: Socket, reason: 'slow_consumer' | 'in_flight'): void => {
    if (s.destroyed) return;
    const h = held.get(s);
    deps.log.warn({ remote: s.remoteAddress, reason, inFlight: h?.inFlight, unsent: h?.unsent }, 'closing an overloaded HTTP connection');
    deps.metrics.overload('http', reason);
    s.destroy();
  };
  app.addHook('onRequest', async (req, reply) => {
    const s = req.raw.socket;
    let h = held.get(s);
    if (!h) held.set(s, (h = { inFlight: 0, unsent: 0, turn: Promise.resolve() }));
    const mine = h;
    mine.inFlight++;
    let release!: () => void;
    const before = mine.turn;
    mine.turn = new Promise<void>((r) => {
      release = r;
    });
    turns.set(req, release);
    reply.raw.once('close', () => {
      mine.inFlight--;
      release();
    });
    if (mine.inFlight > limits.maxInFlight) overloaded(s, 'in_flight');
    await before;
    // The connection was cut off while this request waited: nothing to answer, nothing to run.
    if (s.destroyed) return reply.hijack();
  });
  app.addHook('onSend', async (req, reply, payload) => {
    // This response is produced: the next request of the connection may run.
    turns.get(req)?.();
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : Buffer.isBuffer(payload) ? payload.length : 0;
    const s = req.raw.socket;
    const h = held.get(s);
    if (size === 0 || !h) return payload;
    if (h.unsent > limits.slowConsumerBytes) {
      overloaded(s, 'slow_consumer');
      return payload;
    }
    h.unsent += size;
    // 'finish': the response's last byte left for the network; 'close' alone: it never will.
    let counted = true;
    const uncount = (): void => {
      if (counted) h.unsent -= size;
      counted = false;
    };
    reply.raw.once('finish', uncount);
    reply.raw.once('close', uncount);
    return payload;
  });
}

// ---- the web app -------------------------------------------------------------------------

/** Paths the app must never answer, so a typo under them stays a coded 404. */
const NOT_APP = /^\/(api|ws|metrics|healthz|readyz|assets)(\/|$)/;

/** dist/web of the package this file belongs to, found from both src/ (tests) and dist/src/. */
export function findWebRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const root = join(dir, 'dist', 'web');
      return existsSync(join(root, 'index.html')) ? root : null;
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Built assets have a content hash in their names, so they never change under one URL;
 * the page itself must be revalidated or a deploy would keep serving stale asset names. */
function cacheHeaders(reply: FastifyReply, path: string, assets: string): void {
  if (path.startsWith(assets)) void reply.header('cache-control', 'public, max-age=31536000, immutable');
  else void reply.header('cache-control', 'no-cache');
  void reply.header('x-content-type-options', 'nosniff');
  if (path.endsWith('.html')) {
    // blob: images are the composer's thumbnails of files the user picked (URL.createObjectURL).
    void reply.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    void reply.header('referrer-policy', 'no-referrer');
  }
}

function registerWebApp(app: FastifyInstance, root: string): void {
  // One route per built file (wildcard: false), so no catch-all competes with the API.
  void app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: false,
    cacheControl: false,
    decorateReply: true,
    setHeaders: (reply, path) => cacheHeaders(reply, path, join(root, 'assets') + sep),
  });
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.sendFile('index.html'));
}

/** Answers a page path of the app (no file extension, outside the API) with index.html. */
function serveWebApp(req: FastifyRequest, reply: FastifyReply): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = req.url.split('?')[0]!;
  if (NOT_APP.test(path) || /\.[^/]*$/.test(path)) return false;
  void reply.sendFile('index.html');
  return true;
}

export { HTTP_STATUS } from './errors.js';
