// Composes one Parley node from its configuration: store, bus, hub, service, transports.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { createVerifier, resolveSecret, withAccountIdsReserved, withSharedKey } from './auth/jwt.js';
import type Database from 'better-sqlite3';
import { isCluster } from './config.js';
import { SqliteStore } from './store/sqlite/index.js';
import { SqliteAccountStore } from './store/sqlite/accounts.js';
import { PostgresStore } from './store/postgres/index.js';
import { PostgresAccountStore } from './store/postgres/accounts.js';
import type { AccountStore } from './store/accounts.js';
import { AccountService, MemoryLoginLimiter } from './accounts/index.js';
import type { LoginLimiter } from './accounts/limiter.js';
import { RedisLoginLimiter } from './accounts/limiter-redis.js';
import type { Store } from './store/store.js';
import { MemoryBus, defaultNodeId } from './bus/memory/index.js';
import { RedisBus } from './bus/redis/index.js';
import type { Bus } from './bus/bus.js';
import type { RateCounter } from './plugins/rate-limit/counter.js';
import { RedisRateCounter } from './plugins/rate-limit/counter-redis.js';
import type { WordStore } from './plugins/word-filter/words.js';
import { PostgresWordStore } from './plugins/word-filter/words-postgres.js';
import { Hub } from './hub/index.js';
import { Service } from './service/index.js';
import { WsTransport } from './transport/ws/index.js';
import { createHttp, Metrics } from './transport/http/index.js';
import type { Plugin } from './plugins/plugin.js';
import { MqttTransport } from './transport/mqtt/index.js';
import { Chat21Service } from './service/chat21.js';
import { SqliteChat21Store } from './store/sqlite/chat21.js';
import { PostgresChat21Store } from './store/postgres/chat21.js';
import type { Chat21Store } from './store/chat21.js';
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

/** Where a node keeps its state: SQLite and memory (embedded) or PostgreSQL and Redis (cluster). */
interface Backends {
  store: Store;
  accounts: AccountStore;
  /** State of the Chat21-compatible endpoint. */
  chat21: Chat21Store;
  bus: Bus;
  limiter: LoginLimiter;
  /** Shared backends for plugins; absent means the plugin's per-node default. */
  rateCounter?: RateCounter;
  words?: WordStore;
  /** The SQLite handle in embedded mode. */
  db?: Database.Database;
}

async function openBackends(cfg: Config, log: Logger): Promise<Backends> {
  const nodeId = cfg.cluster.nodeId ?? defaultNodeId();
  const pg = cfg.store.postgres;
  let store: Store;
  let accounts: AccountStore;
  let words: WordStore | undefined;
  let chat21: Chat21Store;
  let db: Database.Database | undefined;
  if (pg.url) {
    const ps = await PostgresStore.open({ url: pg.url, poolSize: pg.poolSize, statementTimeoutMs: pg.statementTimeoutMs, connectTimeoutMs: pg.statementTimeoutMs, log });
    store = ps;
    accounts = new PostgresAccountStore(ps.pool);
    words = new PostgresWordStore(ps.pool);
    chat21 = new PostgresChat21Store(ps.pool);
  } else {
    const ss = new SqliteStore({ file: cfg.store.sqlite.file ?? join(cfg.dataDir, 'parley.db'), synchronous: cfg.store.sqlite.synchronous, commitIntervalMs: cfg.store.sqlite.commitIntervalMs });
    store = ss;
    db = ss.db;
    accounts = new SqliteAccountStore(ss.db);
    chat21 = new SqliteChat21Store(ss.db);
  }
  const windowMs = cfg.accounts.loginWindowSec * 1000;
  if (!isCluster(cfg)) return { store, accounts, chat21, words, db, bus: new MemoryBus(nodeId), limiter: new MemoryLoginLimiter(windowMs) };
  const redis = cfg.bus.redis;
  let bus: RedisBus;
  try {
    bus = await RedisBus.open({
      url: redis.url, cluster: redis.cluster, prefix: redis.prefix, nodeId,
      heartbeatMs: cfg.cluster.heartbeatMs, nodeTimeoutMs: cfg.cluster.nodeTimeoutMs, log,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    store, accounts, chat21, words, db, bus,
    limiter: new RedisLoginLimiter(bus.client, redis.prefix, windowMs),
    rateCounter: new RedisRateCounter(bus.client, redis.prefix),
  };
}

export async function createParley(config: Config, opts: { logger?: Logger; plugins?: Plugin[] } = {}): Promise<Parley> {
  const log = opts.logger ?? pino({ level: config.log.level });
  const dataDir = resolve(config.dataDir);
  const cfg: Config = { ...config, dataDir };
  const backends = await openBackends(cfg, log);
  const { store, bus } = backends;
  const accounts = new AccountService({
    accounts: backends.accounts,
    getUser: (id) => store.getUser(id),
    limiter: backends.limiter,
    secret: resolveSecret(cfg),
    config: cfg.accounts,
  });
  const verifyAny = await createVerifier(cfg, { sessionActive: (sid, user) => accounts.sessionActive(sid, user) });
  const isAccount = async (user: string) => (await backends.accounts.accountByUser(user)) !== null;
  const verify = withAccountIdsReserved(verifyAny, isAccount);
  // The metrics read the transports lazily, so they can be built before them.
  const metrics = new Metrics({
    connections: () => ({ ws: ws.connectionCount, ...(mqtt ? { mqtt: mqtt.connectionCount } : {}) }),
    rooms: () => store.roomCounts(),
  });
  const hub = new Hub(bus, store, {
    slowConsumerBytes: cfg.limits.slowConsumerBytes,
    onSlowConsumer: (c) => log.warn({ conn: c.id, user: c.user }, 'dropping slow consumer'),
    onDelivered: (n) => metrics.delivered(n),
  });
  const service = new Service(store, bus, hub, {
    textChars: cfg.limits.textChars, heartbeatMs: cfg.limits.heartbeatMs, maxInFlight: cfg.limits.maxInFlight, keepDeletedRoomHistory: cfg.retention.keepDeletedRoomHistory,
    roomsPerUser: cfg.limits.roomsPerUser, roomsCreatedPerUser: cfg.limits.roomsCreatedPerUser,
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
    slowConsumerBytes: cfg.limits.slowConsumerBytes, maxInFlight: cfg.limits.maxInFlight,
  }, log, metrics);
  let closing = false;
  // Plugins start before the HTTP server is built: it mounts their routes under /api/v1.
  const plugins = [...builtinPlugins(cfg.plugins, { rateCounter: backends.rateCounter, words: backends.words }), ...(opts.plugins ?? [])];
  await startPlugins(plugins, service.hooks, { log, config: cfg, store, db: backends.db, verify, shared: isCluster(cfg) });
  let url = '';
  bus.nodes.setLocal(() => ({ url: cfg.cluster.publicUrl ?? url, connections: ws.connectionCount }));
  const http = createHttp({
    log,
    metrics,
    sockets: cfg.http,
    trustProxy: cfg.api.trustProxy,
    limits: { maxInFlight: cfg.limits.maxInFlight, slowConsumerBytes: cfg.limits.slowConsumerBytes },
    // Ready while not shutting down and the store answers a trivial query.
    ready: async () => {
      if (closing) return false;
      await store.ping();
      return true;
    },
    stats: () => ({ connections: ws.connectionCount }),
    dispatch: async () => {
      const nodes = await bus.nodes.list().catch(() => []);
      const best = nodes.filter((n) => n.url).sort((a, b) => a.connections - b.connections)[0]
        ?? { id: bus.nodes.id, url: cfg.cluster.publicUrl ?? url, connections: ws.connectionCount };
      return { node: best.id, url: best.url, wsUrl: best.url.replace(/^http/, 'ws') + '/ws', connections: best.connections };
    },
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
    const chat21 = new Chat21Service(service, store, backends.chat21, cfg.chat21.appId);
    const chat21Verify = cfg.chat21.tokenKey ? withAccountIdsReserved(withSharedKey(verifyAny, cfg.chat21.tokenKey, cfg), isAccount) : verify;
    mqtt = new MqttTransport(service, chat21, chat21Verify, {
      host: cfg.mqtt.host ?? cfg.host, port: cfg.mqtt.port, wsPath: cfg.mqtt.wsPath, maxPayloadBytes: cfg.mqtt.maxPayloadBytes,
      maxClientsPerUser: cfg.mqtt.maxClientsPerUser, maxInflight: cfg.mqtt.maxInflight, slowConsumerBytes: cfg.limits.slowConsumerBytes,
      connectionsPerAddress: cfg.mqtt.connectionsPerAddress, connectTimeoutMs: cfg.mqtt.connectTimeoutMs,
    }, log, metrics);
    if (cfg.chat21.rest) {
      registerChat21Routes(http, `${cfg.chat21.restPrefix}/${cfg.chat21.appId}`, {
        chat21, verify: chat21Verify, metrics, log,
        admit: async (u) => {
          await service.checkNotBanned(u.id);
          await store.upsertUser({ id: u.id, name: u.name, profile: u.profile });
        },
      });
    }
  }
  ws.attach(http.server, mqtt ? (req, socket, head) => mqtt!.handleUpgrade(req, socket, head) : undefined);
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
