// HTTP transport (fastify): health endpoints now; the REST API lives here too. The WebSocket
// transport shares its port through the underlying Node server's upgrade event.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

export interface HttpDeps {
  log: Logger;
  /** True while the node can serve (store open, bus connected). */
  ready: () => boolean;
  stats: () => Record<string, number>;
}

export function createHttp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const ready = deps.ready();
    return reply.code(ready ? 200 : 503).send({ ok: ready, ...deps.stats() });
  });
  app.get('/', async (_req, reply) => reply.type('text/plain').send(
    'Parley chat server. WebSocket protocol on /ws; see docs/protocol.md.\n',
  ));
  return app;
}
