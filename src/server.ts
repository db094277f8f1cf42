// Composes one Parley node from its configuration: store, bus, hub, service, transports.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { createVerifier } from './auth/jwt.js';
import { SqliteStore } from './store/sqlite/index.js';
import type { Store } from './store/store.js';
import { MemoryBus } from './bus/memory/index.js';
import type { Bus } from './bus/bus.js';
import { Hub } from './hub/index.js';
import { Service } from './service/index.js';
import { WsTransport } from './transport/ws/index.js';
import { createHttp } from './transport/http/index.js';

export interface Parley {
  readonly config: Config;
  readonly store: Store;
  readonly bus: Bus;
  readonly hub: Hub;
  readonly service: Service;
  readonly log: Logger;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Base URL once listening, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  close(): Promise<void>;
}

export async function createParley(config: Config, opts: { logger?: Logger } = {}): Promise<Parley> {
  const log = opts.logger ?? pino({ level: config.log.level });
  const dataDir = resolve(config.dataDir);
  const cfg: Config = { ...config, dataDir };
  const verify = await createVerifier(cfg);
  const store = new SqliteStore({ file: cfg.store.sqlite.file ?? join(dataDir, 'parley.db'), synchronous: cfg.store.sqlite.synchronous });
  const bus = new MemoryBus();
  const hub = new Hub(bus, store, {
    slowConsumerBytes: cfg.limits.slowConsumerBytes,
    onSlowConsumer: (c) => log.warn({ conn: c.id, user: c.user }, 'dropping slow consumer'),
  });
  const service = new Service(store, bus, hub, { textChars: cfg.limits.textChars, heartbeatMs: cfg.limits.heartbeatMs }, log);
  const ws = new WsTransport(service, verify, {
    frameBytes: cfg.limits.frameBytes, authTimeoutMs: cfg.limits.authTimeoutMs, heartbeatMs: cfg.limits.heartbeatMs,
  }, log);
  let closing = false;
  const http = createHttp({
    log,
    ready: () => !closing,
    stats: () => ({ connections: ws.connectionCount }),
  });
  ws.attach(http.server);
  let url = '';

  return {
    config: cfg, store, bus, hub, service, log,
    get url() { return url; },
    async listen() {
      await http.listen({ host: cfg.host, port: cfg.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
      url = `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
      log.info({ url, dataDir }, 'parley listening');
      return port;
    },
    async close() {
      if (closing) return;
      closing = true;
      await ws.close();
      await http.close();
      await bus.close();
      await store.close();
    },
  };
}
