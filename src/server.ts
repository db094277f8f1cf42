// Composes one Parley node from its configuration: store, bus, hub, service, transports.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { createVerifier, resolveSecret, withAccountIdsReserved } from './auth/jwt.js';
import type Database from 'better-sqlite3';
import type { Pool as PgPool } from 'pg';
import { clusterSecret, isCluster } from './config.js';
import { WsForwarder } from './cluster/forward.js';
import { SqliteStore } from './store/sqlite/index.js';
import { SqliteAccountStore } from './store/sqlite/accounts.js';
import { PostgresStore } from './store/postgres/index.js';
import { applicationName, newIncarnation, PostgresPlacement } from './cluster/placement-postgres.js';
import { clusterRouting } from './log/cluster.js';
import type { RoomOp } from './log/ops.js';
import { PostgresAccountStore } from './store/postgres/accounts.js';
import { PostgresDirectory } from './store/postgres/directory.js';
import { SqliteDirectory } from './store/sqlite/directory.js';
import type { Directory } from './store/directory.js';
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
import { Dispatcher, Rebalancer } from './cluster/balance.js';
import { Service } from './service/index.js';
import { CommandRunner } from './service/runner.js';
import { Metrics } from './observability/metrics.js';
import { WsTransport } from './transport/ws/index.js';
import { createHttp } from './transport/http/index.js';
import type { Plugin } from './plugins/plugin.js';
import type { MqttTransport } from './transport/mqtt/index.js';
import { chat21, PostgresChat21Store, SqliteChat21Store, type Chat21Store, type PublishOp } from './integrations/chat21/index.js';
import { SqliteNotificationStore } from './store/sqlite/notifications.js';
import { PostgresNotificationStore } from './store/postgres/notifications.js';
import { SqlitePinStore } from './store/sqlite/pins.js';
import { PostgresPinStore } from './store/postgres/pins.js';
import { SqliteVersionStore } from './store/sqlite/versions.js';
import { PostgresVersionStore } from './store/postgres/versions.js';
import type { RichPorts } from './service/rich.js';
import { builtinPlugins, closePlugins, startPlugins } from './plugins/index.js';
import { AttachmentService } from './service/attachments.js';
import { openBlobStore } from './blobs/index.js';
import { SqliteAttachmentStore } from './store/sqlite/attachments.js';
import { PostgresAttachmentStore } from './store/postgres/attachments.js';
import { registerAttachmentRoutes } from './transport/http/attachments.js';
import { authenticator } from './transport/http/auth.js';
import { PushService } from './push/index.js';
import type { PushStore } from './store/push.js';
import { SqlitePushStore } from './store/sqlite/push.js';
import { PostgresPushStore } from './store/postgres/push.js';
import { registerPushRoutes } from './transport/http/push.js';
import { AvatarService } from './service/avatars.js';
import { SqliteAvatarStore } from './store/sqlite/avatars.js';
import { PostgresAvatarStore } from './store/postgres/avatars.js';
import { registerAvatarRoutes } from './transport/http/avatars.js';

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
  readonly mqtt: { transport: MqttTransport<unknown>; port: number } | null;
  /** Cluster mode: node-to-node calls, taken at /cluster on the HTTP port (src/cluster/forward.ts). */
  readonly forwarder: WsForwarder | null;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Base URL once listening, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Applies retention limits now (also done every retention.sweepSec); resolves with messages removed. */
  sweep(now?: number): Promise<number>;
  /** Uploaded files: storage, rules, removal (see docs/rest.md#attachments). */
  readonly attachments: AttachmentService;
  /** Web Push to browsers with no open connection (see docs/rest.md#web-push). */
  readonly push: PushService;
  close(): Promise<void>;
}

/** Where a node keeps its state: SQLite and memory (embedded) or PostgreSQL and Redis (cluster). */
interface Backends {
  store: Store;
  accounts: AccountStore;
  /** What the admin screen looks up (users, rooms). */
  directory: Directory;
  /** State of the Chat21-compatible endpoint. */
  chat21: Chat21Store;
  /** Notification levels, pins and edit history (rich messages). */
  rich: RichPorts;
  /** Web Push subscriptions and the VAPID keys. */
  push: PushStore;
  bus: Bus;
  limiter: LoginLimiter;
  /** Shared backends for plugins; absent means the plugin's per-node default. */
  rateCounter?: RateCounter;
  words?: WordStore;
  /** The SQLite handle in embedded mode. */
  db?: Database.Database;
  /** This node's id, and in cluster mode this run's incarnation, which names its PostgreSQL sessions (applicationName). */
  nodeId: string;
  incarnation?: string;
  /** The PostgreSQL pool in cluster mode (or with store.postgres.url). */
  pool?: PgPool;
}

async function openBackends(cfg: Config, log: Logger): Promise<Backends> {
  const nodeId = cfg.cluster.nodeId ?? defaultNodeId();
  const pg = cfg.store.postgres;
  let store: Store;
  let accounts: AccountStore;
  let directory: Directory;
  let words: WordStore | undefined;
  let chat21: Chat21Store;
  let rich: RichPorts;
  let push: PushStore;
  let db: Database.Database | undefined;
  // In a cluster a node's sessions carry its id and this run, by which a survivor ends those
  // of a node removed from the cluster (src/cluster/placement-postgres.ts).
  const incarnation = isCluster(cfg) ? newIncarnation() : undefined;
  let pool: PgPool | undefined;
  if (pg.url) {
    const ps = await PostgresStore.open({
      url: pg.url,
      poolSize: pg.poolSize,
      statementTimeoutMs: pg.statementTimeoutMs,
      connectTimeoutMs: pg.statementTimeoutMs,
      log,
      ...(incarnation !== undefined ? { applicationName: applicationName(nodeId, incarnation) } : {}),
    });
    store = ps;
    accounts = new PostgresAccountStore(ps.pool);
    directory = new PostgresDirectory(ps.pool);
    words = new PostgresWordStore(ps.pool);
    chat21 = new PostgresChat21Store(ps.pool);
    pool = ps.pool;
    push = new PostgresPushStore(ps.pool);
    rich = { notifications: new PostgresNotificationStore(ps.pool), pins: new PostgresPinStore(ps.pool), versions: new PostgresVersionStore(ps.pool) };
  } else {
    const ss = new SqliteStore({
      file: cfg.store.sqlite.file ?? join(cfg.dataDir, 'parley.db'),
      synchronous: cfg.store.sqlite.synchronous,
      commitIntervalMs: cfg.store.sqlite.commitIntervalMs,
    });
    store = ss;
    db = ss.db;
    accounts = new SqliteAccountStore(ss.db);
    directory = new SqliteDirectory(ss.db);
    chat21 = new SqliteChat21Store(ss.db);
    push = new SqlitePushStore(ss.db);
    rich = { notifications: new SqliteNotificationStore(ss.db), pins: new SqlitePinStore(ss.db), versions: new SqliteVersionStore(ss.db) };
  }
  const windowMs = cfg.accounts.loginWindowSec * 1000;
  if (!isCluster(cfg))
    return { store, accounts, directory, chat21, rich, push, words, db, pool, nodeId, bus: new MemoryBus(nodeId), limiter: new MemoryLoginLimiter(windowMs) };
  const redis = cfg.bus.redis;
  let bus: RedisBus;
  try {
    bus = await RedisBus.open({
      url: redis.url,
      cluster: redis.cluster,
      prefix: redis.prefix,
      nodeId,
      commandTimeoutMs: redis.commandTimeoutMs,
      heartbeatMs: cfg.cluster.heartbeatMs,
      nodeTimeoutMs: cfg.cluster.nodeTimeoutMs,
      log,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    store,
    accounts,
    directory,
    chat21,
    rich,
    push,
    words,
    db,
    pool,
    bus,
    nodeId,
    incarnation,
    limiter: new RedisLoginLimiter(bus.client, redis.prefix, windowMs, bus.commandTimeoutMs),
    rateCounter: new RedisRateCounter(bus.client, redis.prefix, bus.commandTimeoutMs),
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
    bus,
    sessionsEnded: (user, which) => push.sessionsEnded(user, which),
  });
  const verifyAny = await createVerifier(cfg, { accountSession: (sid, user) => accounts.identify(sid, user) });
  // An external token may not take the id of a built-in account: only the account's own tokens do.
  const isAccount = async (user: string) => (await backends.accounts.accountByUser(user)) !== null;
  const verify = withAccountIdsReserved(verifyAny, isAccount);
  if (cfg.accounts.admins.length > 0) {
    accounts.missingAdmins().then(
      (missing) => {
        if (missing.length > 0) {
          log.warn(
            { admins: missing },
            'accounts.admins lists usernames that have no account; nobody can register them while listed: take them off the list, register, list them again',
          );
        }
      },
      (err: unknown) => log.warn({ err }, 'could not check accounts.admins'),
    );
  }
  // The metrics read the transports lazily, so they can be built before them.
  const metrics: Metrics = new Metrics({
    connections: () => ({ ws: ws.connectionCount, ...(mqtt ? { mqtt: mqtt.connectionCount } : {}) }),
    rooms: () => store.roomCounts(),
  });
  const hub = new Hub(bus, store, {
    slowConsumerBytes: cfg.limits.slowConsumerBytes,
    onSlowConsumer: (c) => log.warn({ conn: c.id, user: c.user }, 'dropping slow consumer'),
    onDelivered: (n) => metrics.delivered(n),
  });
  // Cluster mode: each room is written by its owning node (rendezvous hashing over the live
  // nodes, fenced by the epoch in PostgreSQL); the other nodes forward its writes over /cluster.
  const secret = isCluster(cfg) ? clusterSecret(cfg) : undefined;
  const self = { id: backends.nodeId, url: '' };
  const placement =
    secret !== undefined && store instanceof PostgresStore && backends.incarnation !== undefined
      ? new PostgresPlacement({
          pool: store.pool,
          self,
          incarnation: backends.incarnation,
          heartbeatMs: cfg.cluster.heartbeatMs,
          nodeTimeoutMs: cfg.cluster.nodeTimeoutMs,
          log,
        })
      : null;
  const forwarder = secret !== undefined ? new WsForwarder({ self: backends.nodeId, secret, log, ...(placement ? { placement } : {}) }) : null;
  const service = new Service(
    store,
    bus,
    hub,
    {
      textChars: cfg.limits.textChars,
      heartbeatMs: cfg.limits.heartbeatMs,
      maxInFlight: cfg.limits.maxInFlight,
      keepDeletedRoomHistory: cfg.retention.keepDeletedRoomHistory,
      roomsPerUser: cfg.limits.roomsPerUser,
      roomsCreatedPerUser: cfg.limits.roomsCreatedPerUser,
      typingIntervalMs: cfg.limits.typingIntervalMs,
      connectionsPerUser: cfg.limits.connectionsPerUser,
      // Without owning nodes (PostgreSQL outside cluster mode), writers lock each batch's rooms.
      roomLog: {
        maxRooms: cfg.limits.roomStates,
        ...(placement && forwarder ? { cluster: clusterRouting(placement, forwarder) } : store instanceof PostgresStore ? { locks: store } : {}),
      },
    },
    log,
    backends.rich,
  );
  forwarder?.serve((room, op) => service.roomLog.serve(room, op as RoomOp));
  metrics.follow(service.events);
  // Every transport runs commands through the one runner: order up to admission, timing.
  const runner: CommandRunner = new CommandRunner(service, metrics);
  const attachments = new AttachmentService(
    store,
    backends.pool ? new PostgresAttachmentStore(backends.pool) : new SqliteAttachmentStore(backends.db!),
    await openBlobStore(cfg, backends.pool),
    { ...cfg.attachments, secret: resolveSecret(cfg), keepDeletedRoomFiles: cfg.retention.keepDeletedRoomHistory },
    log,
  );
  service.hooks.use(...attachments.hooks());
  // Users' pictures are blobs of the same store, with their own records.
  const avatars = new AvatarService(
    backends.pool ? new PostgresAvatarStore(backends.pool) : new SqliteAvatarStore(backends.db!),
    attachments.blobs,
    { secret: resolveSecret(cfg), maxImagePixels: cfg.attachments.maxImagePixels, urlTtlSec: cfg.attachments.urlTtlSec },
    log,
  );
  // Web Push hears every notification; it sends to the recipients with no open connection.
  const push: PushService = new PushService({
    store: backends.push,
    config: cfg.push,
    presence: bus.presence,
    log,
    metrics,
    room: async (id) => {
      const [room, members] = await Promise.all([store.getRoom(id), store.members(id)]);
      return room ? { room, members: members.map((m) => m.user) } : null;
    },
  });
  await push.start();
  service.hooks.use(push.hook());
  const sweep = async (now = Date.now()): Promise<number> => {
    const started = performance.now();
    const removed = await store.applyRetention(now, { count: cfg.retention.count, days: cfg.retention.days });
    metrics.retentionSwept(removed, (performance.now() - started) / 1000);
    if (removed > 0) {
      log.info({ removed }, 'retention applied');
      // The files of the messages retention removed go with them.
      const files = await attachments.afterRetention();
      if (files > 0) log.info({ files }, 'attachments removed with their messages');
    }
    return removed;
  };
  // One node of a cluster sweeps per period: whichever claims it first. The claim lapses a
  // little before the next period, so another node may take the next one, and is renewed
  // while a long sweep runs, so two sweeps never overlap. A node skips its periods while its
  // own sweep still runs (one node claims every period: a sweep longer than the period would
  // otherwise start again beside itself).
  const sweepMs = cfg.retention.sweepSec * 1000;
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void (async () => {
      const claim = await bus.nodes.claim('retention', Math.max(sweepMs / 2, sweepMs - 250));
      if (!claim) return;
      const renewing = setInterval(
        () => {
          void claim.renew();
        },
        Math.max(100, sweepMs / 3),
      );
      try {
        await sweep();
      } finally {
        clearInterval(renewing);
      }
    })()
      .catch((err) => log.warn({ err }, 'retention failed'))
      .finally(() => {
        sweeping = false;
      });
  }, sweepMs);
  sweeper.unref();
  const uploadSweeper = setInterval(() => {
    attachments.sweep().then(
      (n) => {
        if (n > 0) log.info({ removed: n }, 'unsent uploads removed');
      },
      (err: unknown) => log.warn({ err }, 'sweeping unsent uploads failed'),
    );
  }, cfg.attachments.sweepSec * 1000);
  uploadSweeper.unref();
  const ws: WsTransport = new WsTransport(
    service,
    runner,
    verify,
    {
      frameBytes: cfg.limits.frameBytes,
      authTimeoutMs: cfg.limits.authTimeoutMs,
      heartbeatMs: cfg.limits.heartbeatMs,
      slowConsumerBytes: cfg.limits.slowConsumerBytes,
      maxInFlight: cfg.limits.maxInFlight,
    },
    log,
    metrics,
  );
  let closing = false;
  // Plugins start before the HTTP server is built: it mounts their routes under /api/v1.
  const plugins = [...builtinPlugins(cfg.plugins, { rateCounter: backends.rateCounter, words: backends.words }), ...(opts.plugins ?? [])];
  await startPlugins(plugins, service.hooks, { log, config: cfg, store, db: backends.db, verify, events: service.events, shared: isCluster(cfg) });
  let url = '';
  bus.nodes.setLocal(() => ({ url: cfg.cluster.publicUrl ?? url, connections: ws.connectionCount }));
  const dispatcher = new Dispatcher();
  // A node well above the mean, once the counts have settled, asks a few clients to reconnect elsewhere.
  const balance = new Rebalancer(bus.nodes.id);
  const rebalancer =
    isCluster(cfg) && cfg.cluster.rebalance
      ? setInterval(() => {
          void bus.nodes.list().then((nodes) => {
            const n = balance.next(nodes, ws.returned());
            if (n === 0 || closing) return;
            const moved = ws.shed(n, cfg.cluster.rebalanceMinAgeMs);
            balance.moved(moved);
            metrics.rebalanced(moved);
            if (moved > 0) log.info({ moved, nodes: nodes.map((x) => [x.id, x.connections]) }, 'asked clients to reconnect to less loaded nodes');
          });
        }, cfg.cluster.heartbeatMs)
      : null;
  rebalancer?.unref();
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
      const best = dispatcher.pick(await bus.nodes.list()) ?? { id: bus.nodes.id, url: cfg.cluster.publicUrl ?? url, connections: ws.connectionCount };
      return { node: best.id, url: best.url, wsUrl: best.url.replace(/^http/, 'ws') + '/ws', connections: best.connections };
    },
    rest: {
      service,
      runner,
      verify,
      getUser: (id) => store.getUser(id),
      accounts,
      directory: backends.directory,
      connections: () => ({ ws: ws.connectionCount, ...(mqtt ? { mqtt: mqtt.connectionCount } : {}) }),
      apiKeys: cfg.api.keys,
      docs: cfg.api.docs,
      plugins,
    },
  });
  // The Chat21 integration: the MQTT endpoint and the Chat21 REST API. Chat21 clients open
  // files from other origins: absolute signed URLs, fresh for each reader.
  const mqtt: MqttTransport<PublishOp> | null = cfg.mqtt.enabled
    ? chat21({
        config: cfg,
        service,
        runner,
        store,
        state: backends.chat21,
        verify,
        http,
        log,
        metrics,
        reserve: (v) => withAccountIdsReserved(v, isAccount),
        link: (id, reader) =>
          (cfg.cluster.publicUrl ?? url).replace(/\/$/, '') +
          attachments.signedUrl(id, 'file', reader, Math.floor(Date.now() / 1000) + cfg.attachments.urlTtlSec),
      }).mqtt
    : null;
  registerAttachmentRoutes(http, '/api/v1', {
    attachments,
    authenticate: authenticator({
      verify,
      apiKeys: cfg.api.keys,
      admit: (u) => service.admit(u),
    }),
  });
  registerAvatarRoutes(http, '/api/v1', {
    avatars,
    authenticate: authenticator({ verify, apiKeys: cfg.api.keys, admit: (u) => service.admit(u) }),
  });
  registerPushRoutes(http, '/api/v1', {
    push,
    authenticate: authenticator({ verify, apiKeys: cfg.api.keys, admit: (u) => service.admit(u) }),
  });
  ws.attach(
    http.server,
    forwarder || mqtt
      ? (req, socket, head) => (forwarder?.handleUpgrade(req, socket, head) ?? false) || (mqtt?.handleUpgrade(req, socket, head) ?? false)
      : undefined,
  );
  let mqttPort = 0;

  return {
    config: cfg,
    store,
    bus,
    hub,
    service,
    log,
    sweep,
    plugins,
    accounts,
    metrics,
    http,
    forwarder,
    attachments,
    push,
    get url() {
      return url;
    },
    get mqtt() {
      return mqtt ? { transport: mqtt, port: mqttPort } : null;
    },
    async listen() {
      await http.listen({ host: cfg.host, port: cfg.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
      url = `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
      if (mqtt) {
        mqttPort = await mqtt.listen();
        log.info({ port: mqttPort, wsPath: cfg.mqtt.wsPath || null }, 'mqtt listening');
      }
      if (placement) {
        // Peers reach this node where clients do; it owns rooms once it is registered.
        self.url = cfg.cluster.publicUrl ?? url;
        await placement.start();
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
      // The writes taken are settled, then the node leaves the cluster and its rooms move.
      await service.close();
      await placement?.stop();
      await forwarder?.close();
      await closePlugins(plugins, log);
      await attachments.close();
      await push.close();
      await bus.close();
      await store.close();
    },
  };
}
