// Composes one Parley node from its configuration: store, bus, hub, service, transports.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { createVerifier, resolveSecret } from './auth/jwt.js';
import { SqliteStore } from './store/sqlite/index.js';
import { SqliteAccountStore } from './store/sqlite/accounts.js';
import { AccountService, MemoryLoginLimiter } from './accounts/index.js';
import type { Store } from './store/store.js';
import { MemoryBus } from './bus/memory/index.js';
import type { Bus } from './bus/bus.js';
import { Hub } from './hub/index.js';
import { Service } from './service/index.js';
import { WsTransport } from './transport/ws/index.js';
import { createHttp, Metrics } from './transport/http/index.js';
import type { Plugin } from './plugins/plugin.js';
import { MqttTransport } from './transport/mqtt/index.js';
import { Chat21Service } from './service/chat21.js';
import { SqliteChat21Store } from './store/sqlite/chat21.js';
import { registerChat21Routes } from './transport/http/chat21.js';
import { builtinPlugins, closePlugins, startPlugins } from './plugins/index.js';

export interface Parley {
  readonly config: Config;
  readonly store: Store;
  readonly bus: Bus;
  readonly hub: Hub;
  readonly service: Service;
  readonly log: Logger;
  /** Built-in accounts (register, login, sessions). */
  readonly accounts: AccountService;
  readonly metrics: Metrics;
  /** The HTTP server (REST API, health, metrics); the WebSocket shares its port. */
  readonly http: FastifyInstance;
  /** Built-in plugins turned on by config, then those given to createParley, in hook order. */
  readonly plugins: readonly Plugin[];
  /** The MQTT endpoint (Chat21 inbox pattern) when `mqtt.enabled`; its TCP port once listening. */
  readonly mqtt: { transport: MqttTransport; port: number } | null;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Base URL once listening, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Applies retention limits now (also done every retention.sweepSec); resolves with messages removed. */
  sweep(now?: number): Promise<number>;
  close(): Promise<void>;
}

export async function createParley(config: Config, opts: { logger?: Logger; plugins?: Plugin[] } = {}): Promise<Parley> {
  const log = opts.logger ?? pino({ level: config.log.level });
  const dataDir = resolve(config.dataDir);
  const cfg: Config = { ...config, dataDir };
  const store = new SqliteStore({ file: cfg.store.sqlite.file ?? join(dataDir, 'parley.db'), synchronous: cfg.store.sqlite.synchronous, commitIntervalMs: cfg.store.sqlite.commitIntervalMs });
  const accounts = new AccountService({
    accounts: new SqliteAccountStore(store.db),
    getUser: (id) => store.getUser(id),
    limiter: new MemoryLoginLimiter(cfg.accounts.loginWindowSec * 1000),
    secret: resolveSecret(cfg),
    config: cfg.accounts,
  });
  const verify = await createVerifier(cfg, { sessionActive: (sid, user) => accounts.sessionActive(sid, user) });
  const bus = new MemoryBus();
  // The metrics read the transports lazily, so they can be built before them.
  const countRooms = store.db.prepare('SELECT kind, count(*) AS n FROM rooms GROUP BY kind');
  const metrics = new Metrics({
    connections: () => ({ ws: ws.connectionCount, ...(mqtt ? { mqtt: mqtt.connectionCount } : {}) }),
    rooms: () => Object.fromEntries((countRooms.all() as Array<{ kind: string; n: number }>).map((r) => [r.kind, r.n])),
  });
  const hub = new Hub(bus, store, {
    slowConsumerBytes: cfg.limits.slowConsumerBytes,
    onSlowConsumer: (c) => log.warn({ conn: c.id, user: c.user }, 'dropping slow consumer'),
    onDelivered: (n) => metrics.delivered(n),
  });
  const service = new Service(store, bus, hub, {
    textChars: cfg.limits.textChars, heartbeatMs: cfg.limits.heartbeatMs, keepDeletedRoomHistory: cfg.retention.keepDeletedRoomHistory,
  }, log);
  const sweep = async (now = Date.now()): Promise<number> => {
    const removed = await store.applyRetention(now, { count: cfg.retention.count, days: cfg.retention.days });
    if (removed > 0) log.info({ removed }, 'retention applied');
    return removed;
  };
  const sweeper = setInterval(() => { sweep().catch((err) => log.warn({ err }, 'retention failed')); }, cfg.retention.sweepSec * 1000);
  sweeper.unref();
  const ws: WsTransport = new WsTransport(service, verify, {
    frameBytes: cfg.limits.frameBytes, authTimeoutMs: cfg.limits.authTimeoutMs, heartbeatMs: cfg.limits.heartbeatMs,
  }, log, metrics);
  let closing = false;
  const ping = store.db.prepare('SELECT 1');
  // Plugins start before the HTTP server is built: it mounts their routes under /api/v1.
  const plugins = [...builtinPlugins(cfg.plugins), ...(opts.plugins ?? [])];
  await startPlugins(plugins, service.hooks, { log, config: cfg, store, db: store.db, verify });
  const http = createHttp({
    log,
    metrics,
    trustProxy: cfg.api.trustProxy,
    // Ready while not shutting down and the store answers a trivial query.
    ready: () => {
      if (closing) return false;
      try { return ping.get() !== undefined; } catch { return false; }
    },
    stats: () => ({ connections: ws.connectionCount }),
    rest: {
      service,
      verify,
      getUser: (id) => store.getUser(id),
      seen: async (u) => { await store.upsertUser({ id: u.id, name: u.name, profile: u.profile }); },
      accounts,
      apiKeys: cfg.api.keys,
      docs: cfg.api.docs,
      plugins,
    },
  });
  // The MQTT endpoint and the Chat21 REST API share the Chat21 service.
  let mqtt: MqttTransport | null = null;
  if (cfg.mqtt.enabled) {
    const chat21 = new Chat21Service(service, store, new SqliteChat21Store(store.db), cfg.chat21.appId);
    mqtt = new MqttTransport(service, chat21, verify, {
      host: cfg.mqtt.host ?? cfg.host, port: cfg.mqtt.port, wsPath: cfg.mqtt.wsPath, maxPayloadBytes: cfg.mqtt.maxPayloadBytes,
    }, log, metrics);
    if (cfg.chat21.rest) {
      registerChat21Routes(http, `${cfg.chat21.restPrefix}/${cfg.chat21.appId}`, {
        chat21, verify, metrics, log,
        admit: async (u) => {
          await service.checkNotBanned(u.id);
          await store.upsertUser({ id: u.id, name: u.name, profile: u.profile });
        },
      });
    }
  }
  ws.attach(http.server, mqtt ? (req, socket, head) => mqtt!.handleUpgrade(req, socket, head) : undefined);
  let url = '';
  let mqttPort = 0;

  return {
    config: cfg, store, bus, hub, service, log, sweep, plugins, accounts, metrics, http,
    get url() { return url; },
    get mqtt() { return mqtt ? { transport: mqtt, port: mqttPort } : null; },
    async listen() {
      await http.listen({ host: cfg.host, port: cfg.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
      url = `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
      if (mqtt) {
        mqttPort = await mqtt.listen();
        log.info({ port: mqttPort, wsPath: cfg.mqtt.wsPath || null }, 'mqtt listening');
      }
      log.info({ url, dataDir }, 'parley listening');
      return port;
    },
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(sweeper);
      await ws.close();
      await mqtt?.close();
      await http.close();
      await closePlugins(plugins, log);
      await bus.close();
      await store.close();
    },
  };
}
