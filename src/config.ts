// The one typed configuration schema, with defaults. Sources, later ones winning:
// defaults < config file (JSON) < environment (PARLEY_*) < command-line flags.
// Validated at start; an error names the bad key.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Type, type Static, type TSchema, Kind } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Chat21Config, checkChat21 } from './integrations/chat21/config.js';
import { PluginsConfig, checkPlugins } from './plugins/config.js';
import { endpointPolicy } from './push/endpoint.js';

/** Names that would pass for the server, its staff or a whole room. */
export const RESERVED_NAMES = [
  'admin',
  'administrator',
  'root',
  'parley',
  'server',
  'moderator',
  'mod',
  'staff',
  'support',
  'security',
  'official',
  'help',
  'info',
  'noreply',
  'no-reply',
  'postmaster',
  'webmaster',
  'hostmaster',
  'abuse',
  'everyone',
  'here',
  'channel',
  'all',
];

const Int = (def: number, min: number, max: number, description: string) => Type.Integer({ default: def, minimum: min, maximum: max, description });

export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on (0.0.0.0 to expose)' }),
    port: Int(8080, 0, 65535, 'HTTP and WebSocket port'),
    dataDir: Type.String({ default: './data', description: 'Folder for the SQLite database and the generated secret' }),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    auth: Type.Object(
      {
        algorithm: Type.Union(
          ['HS256', 'HS384', 'HS512', 'RS256', 'ES256'].map((a) => Type.Literal(a)),
          {
            default: 'HS256',
            description: 'The only JWT algorithm accepted; never taken from the token',
          },
        ),
        secret: Type.Optional(Type.String({ minLength: 16, description: 'HMAC secret (HS*); generated into dataDir when absent' })),
        publicKey: Type.Optional(Type.String({ minLength: 1, description: 'PEM public key (RS256/ES256)' })),
        jwksUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'JWKS URL (RS256/ES256)' })),
        issuer: Type.Optional(Type.String({ minLength: 1 })),
        audience: Type.Optional(Type.String({ minLength: 1 })),
        clockToleranceSec: Int(5, 0, 300, 'Allowed clock skew for exp/nbf'),
        allowTokensWithoutExp: Type.Boolean({
          default: false,
          description: 'Accept external tokens that carry no exp claim (they would be valid forever); off: such tokens are refused',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    store: Type.Object(
      {
        sqlite: Type.Object(
          {
            file: Type.Optional(Type.String({ minLength: 1, description: 'Database file (default dataDir/parley.db)' })),
            synchronous: Type.Union([Type.Literal('full'), Type.Literal('normal')], {
              default: 'full',
              description: 'full: fsync each group commit (durable on power loss); normal: durable on process crash only',
            }),
            commitIntervalMs: Type.Number({
              default: 2,
              minimum: 0,
              maximum: 100,
              description: 'Under load, least time between two group commits (more writes per commit, less CPU); an idle store commits at once',
            }),
          },
          { default: {}, additionalProperties: false },
        ),
        postgres: Type.Object(
          {
            url: Type.Optional(
              Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; when set, PostgreSQL replaces SQLite (needed for several nodes)' }),
            ),
            poolSize: Int(10, 1, 1000, 'Connections in the pool'),
            statementTimeoutMs: Int(10000, 100, 600000, 'Longest a query or connection attempt may take before the command fails with unavailable'),
          },
          { default: {}, additionalProperties: false },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    bus: Type.Object(
      {
        redis: Type.Object(
          {
            url: Type.Optional(
              Type.String({ pattern: '^rediss?://', description: 'Redis URL; when set, nodes share fan-out, presence and counters through it (cluster mode)' }),
            ),
            cluster: Type.Array(Type.String({ pattern: '^[^\\s:]+:[0-9]+$' }), {
              default: [],
              description: 'host:port seeds of a Redis Cluster (instead of url); fan-out uses sharded pub/sub',
            }),
            prefix: Type.String({ default: 'parley:', pattern: '^[A-Za-z0-9:_.-]{0,64}$', description: 'Prefix of every Redis key and channel' }),
            commandTimeoutMs: Int(
              2000,
              50,
              60000,
              'Longest a Redis command may take; past it the call fails (presence and counters answer unavailable) instead of waiting',
            ),
          },
          { default: {}, additionalProperties: false },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    cluster: Type.Object(
      {
        nodeId: Type.Optional(
          Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Name of this node (default: host name, process id and a random suffix)' }),
        ),
        publicUrl: Type.Optional(
          Type.String({ pattern: '^https?://', description: 'URL clients use to reach this node, answered by /api/v1/dispatch (default: the listen address)' }),
        ),
        heartbeatMs: Int(
          1000,
          50,
          60000,
          'How often a node reports itself alive and its load; the dispatcher stops handing out a node silent for 2.5 heartbeats',
        ),
        nodeTimeoutMs: Int(10000, 500, 600000, 'A node silent this long is dead: its presence entries are removed and leave events published'),
        rebalance: Type.Boolean({
          default: true,
          description:
            'A node with well above the mean number of connections asks some of its WebSocket clients, a few at a time, to reconnect elsewhere (close code 4009)',
        }),
        rebalanceMinAgeMs: Int(10000, 0, 3600000, 'Connections younger than this are never asked to move'),
        secret: Type.Optional(
          Type.String({
            minLength: 16,
            description: 'Secret every node shares to authenticate node-to-node calls (default: auth.secret; needed with RS256/ES256)',
          }),
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    accounts: Type.Object(
      {
        registration: Type.Boolean({ default: true, description: 'Allow anyone to register a built-in account' }),
        accessTtlSec: Int(900, 60, 86400, 'Lifetime of access tokens issued at login/refresh'),
        refreshTtlSec: Int(30 * 86400, 3600, 365 * 86400, 'Lifetime of refresh sessions'),
        loginWindowSec: Int(60, 1, 86400, 'Window over which failed logins are counted'),
        loginFailuresPerAccount: Int(5, 1, 10000, 'Failed logins per account and window before further attempts are refused'),
        loginFailuresPerAddress: Int(20, 1, 100000, 'Failed logins per client address and window before further attempts are refused'),
        registrationsPerAddress: Int(20, 1, 100000, 'Registrations per client address and login window'),
        reservedNames: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
          default: RESERVED_NAMES,
          description: 'Usernames nobody may register (compared without case), besides "system", the server\'s own id, which is always refused',
        }),
        admins: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]{3,32}$' }), {
          default: [],
          description:
            'Usernames of built-in accounts that are server administrators (compared without case). Register the account first: a listed username that has no account cannot be registered',
        }),
        hashMemoryKib: Int(65536, 8192, 4 * 1024 * 1024, 'argon2id memory per password hash (KiB); applies to new hashes'),
        hashPasses: Int(3, 1, 20, 'argon2id passes per password hash; applies to new hashes'),
      },
      { default: {}, additionalProperties: false },
    ),
    api: Type.Object(
      {
        keys: Type.Array(Type.String({ minLength: 16 }), { default: [], description: 'API keys for the server-side application API' }),
        trustProxy: Type.Boolean({ default: false, description: 'Take the client address from X-Forwarded-For (only behind a trusted proxy)' }),
        docs: Type.Boolean({ default: true, description: 'Serve the OpenAPI document and the docs page' }),
      },
      { default: {}, additionalProperties: false },
    ),
    retention: Type.Object(
      {
        count: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
          default: null,
          description: 'Default per-room message limit (rooms may set their own)',
        }),
        days: Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()], { default: null, description: 'Default per-room age limit in days' }),
        sweepSec: Int(60, 1, 86400, 'How often retention limits are applied'),
        keepDeletedRoomHistory: Type.Boolean({ default: false, description: 'Keep the messages of deleted rooms (for audit) instead of removing them' }),
      },
      { default: {}, additionalProperties: false },
    ),
    attachments: Type.Object(
      {
        maxBytes: Int(
          25 * 1024 * 1024,
          1024,
          4 * 1024 * 1024 * 1024,
          'Largest file a member may upload, in bytes; one more byte is refused with too_large and nothing is kept',
        ),
        maxImagePixels: Int(
          50_000_000,
          1_000_000,
          1_000_000_000,
          'Most pixels (width x height) of an uploaded image; larger ones are refused before they are decoded',
        ),
        previewPx: Int(360, 32, 2048, 'Longer side of image previews, in pixels'),
        urlTtlSec: Int(900, 10, 86400, 'Lifetime of the signed URLs that let <img src> read an attachment without a header'),
        unboundTtlSec: Int(86400, 60, 365 * 86400, 'Uploads that no message carries are removed this long after they were made'),
        sweepSec: Int(300, 1, 86400, 'How often unsent uploads are looked for'),
        uploadsPerUser: Int(4, 1, 1000, 'Uploads one user may have in progress on one node; one more is refused with rate_limited'),
        unsentBytesPerUser: Int(
          100 * 1024 * 1024,
          0,
          Number.MAX_SAFE_INTEGER,
          'Bytes of uploads no message carries yet that one user may hold; an upload beyond is refused with rate_limited (0: no cap)',
        ),
        storage: Type.Union([Type.Literal('auto'), Type.Literal('disk'), Type.Literal('postgres')], {
          default: 'auto',
          description:
            "Where files are kept: disk (dataDir/attachments, one node), postgres (the store's database, every node serves every file), auto (postgres when store.postgres.url is set, else disk)",
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    plugins: PluginsConfig,
    push: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Send Web Push notifications (direct messages and mentions) to users with no open connection' }),
        vapidPublicKey: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9_-]{87}$',
            description:
              "VAPID public key (base64url, uncompressed P-256 point); with vapidPrivateKey. When both are absent a pair is generated once and kept in the store's database, which every node of a cluster shares",
          }),
        ),
        vapidPrivateKey: Type.Optional(
          Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'VAPID private key (base64url, 32 bytes); with vapidPublicKey' }),
        ),
        subject: Type.String({
          default: 'mailto:postmaster@localhost',
          pattern: '^(mailto:|https://)\\S+$',
          description: 'Contact for the push services (mailto: or https: URL), sent with every push; set a real one in production',
        }),
        subscriptionsPerUser: Int(10, 1, 1000, 'Push subscriptions (browsers) one user may have; one more is refused with conflict'),
        concurrency: Int(8, 1, 256, 'Pushes a node sends at the same time'),
        queue: Int(10000, 1, 1_000_000, 'Pushes a node keeps waiting to be sent; beyond it new ones are dropped (and counted)'),
        timeoutMs: Int(10000, 100, 120000, 'Longest a push service may take to answer one push'),
        ttlSec: Int(86400, 0, 2419200, 'How long a push service keeps a notification for a browser that is offline'),
        caFile: Type.Optional(
          Type.String({
            minLength: 1,
            description: "PEM file of certificate authorities trusted for push services besides the system's (a private push relay)",
          }),
        ),
        allowHosts: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), {
          default: [],
          description:
            'Push endpoints allowed although they are not public: host names (trusted whatever they resolve to), IP addresses and CIDR ranges (a private push relay). Empty: only public names and addresses',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    mqtt: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'Serve the MQTT endpoint (Chat21 inbox pattern) and the Chat21-compatible REST API' }),
        host: Type.Optional(Type.String({ minLength: 1, description: 'Address of the MQTT/TCP listener (default: host)' })),
        port: Int(1883, 0, 65535, 'MQTT/TCP port (0: any free port)'),
        wsPath: Type.String({
          default: '/mqtt',
          pattern: '^(/[A-Za-z0-9._~-]+)*$',
          description: 'Path of MQTT over WebSocket on the HTTP port ("" turns it off)',
        }),
        maxPayloadBytes: Int(65536, 256, 16 * 1024 * 1024, 'Largest accepted MQTT publish payload'),
        maxClientsPerUser: Int(32, 1, 100_000, 'Live MQTT clients of one user on one node; one more CONNECT is refused'),
        maxInflight: Int(256, 1, 100_000, 'Publishes of one MQTT client received and not yet finished; one more disconnects it'),
        maxSubscriptions: Int(100, 1, 100_000, 'Topic filters one MQTT client may hold; one more is refused (SUBACK 0x80)'),
        connectionsPerAddress: Int(
          256,
          0,
          1_000_000,
          'Open MQTT/TCP connections per client address; further ones are closed at once (0: no cap; MQTT over WebSocket counts under http.connectionsPerAddress)',
        ),
        connectTimeoutMs: Int(10000, 100, 600000, 'Time a new MQTT connection has to send its CONNECT before it is closed'),
      },
      { default: {}, additionalProperties: false },
    ),
    chat21: Chat21Config,
    http: Type.Object(
      {
        keepAliveTimeoutMs: Int(5000, 100, 600000, 'How long an idle keep-alive connection stays open after a response'),
        headersTimeoutMs: Int(10000, 100, 600000, "Time a connection has to send a request's headers, a new connection that sends nothing included"),
        requestTimeoutMs: Int(30000, 100, 3600000, 'Time a client has to send a whole request, headers and body'),
        connectionsPerAddress: Int(
          256,
          0,
          1_000_000,
          "Open connections (HTTP and WebSocket) per client address, counted by the socket's address; further ones are closed at once (0: no cap)",
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    limits: Type.Object(
      {
        frameBytes: Int(65536, 1024, 16 * 1024 * 1024, 'Largest accepted WebSocket frame'),
        textChars: Int(4000, 1, 1_000_000, 'Longest message text'),
        slowConsumerBytes: Int(8 * 1024 * 1024, 65536, 1024 * 1024 * 1024, 'Unsent bytes (events and replies) after which a connection is closed'),
        maxInFlight: Int(64, 1, 100_000, 'Commands a connection may have awaiting their reply (WebSocket frames, pipelined HTTP requests); one more closes it'),
        authTimeoutMs: Int(10000, 100, 600000, 'Time a new connection has to authenticate'),
        heartbeatMs: Int(30000, 100, 600000, 'Ping interval; a connection silent for two intervals is dropped'),
        roomsPerUser: Int(
          1000,
          1,
          1_000_000,
          'Channels and groups a user may be a member of; create, join and invite past it are refused (direct rooms do not count; raise it for support agents or bots that belong to many rooms)',
        ),
        roomsCreatedPerUser: Int(100, 1, 1_000_000, 'Channels and groups a user may have created that still exist'),
        typingIntervalMs: Int(
          2000,
          0,
          60_000,
          'A user\'s typing reaches a room at most once per this window (plus a prompt "stopped"); the frames in between are merged, per node (0: every frame goes out)',
        ),
        connectionsPerUser: Int(
          50,
          0,
          1_000_000,
          'Live connections of one user on one node, WebSocket and MQTT together; one more is refused (WebSocket close 4008, MQTT CONNACK 3; 0: no cap)',
        ),
        roomStates: Int(
          50_000,
          1,
          10_000_000,
          'Rooms whose state (members, recent idempotency keys, last seq) a node keeps in memory for the rooms it writes; the least recently used beyond are read again from the store when next written',
        ),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

/** Every leaf key path of the schema with its schema, e.g. ["limits.frameBytes", {...}]. */
function leaves(schema: TSchema, prefix = ''): Array<[string, TSchema]> {
  if (schema[Kind] === 'Object') {
    return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([k, s]) => leaves(s, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, schema]];
}
const LEAVES = new Map(leaves(ConfigSchema));

/** PARLEY_LIMITS_FRAME_BYTES <-> limits.frameBytes */
export function envName(path: string): string {
  return (
    'PARLEY_' +
    path
      .split('.')
      .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

function coerce(path: string, raw: string): unknown {
  let schema = LEAVES.get(path);
  if (!schema) throw new ConfigError(path, 'unknown key');
  // A nullable setting (a number or null, such as retention.days): "null" unsets it.
  if (schema[Kind] === 'Union') {
    const options = schema.anyOf as TSchema[];
    if (raw.trim() === 'null' && options.some((o) => o.type === 'null')) return null;
    schema = options.find((o) => o.type !== 'null') ?? schema;
  }
  if (schema.type === 'integer' || schema.type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(path, `expected a number, got "${raw}"`);
    return n;
  }
  if (schema.type === 'array') {
    // Lists come from the environment or flags as comma-separated values.
    return raw
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
  }
  if (schema.type === 'boolean') {
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new ConfigError(path, `expected true or false, got "${raw}"`);
  }
  return raw;
}

function setPath(obj: Json, path: string, value: unknown): void {
  const parts = path.split('.');
  if (parts.some(isProtoKey)) throw new ConfigError(path, 'unknown key');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** Keys that would reach an object's prototype instead of naming a setting. */
const isProtoKey = (k: string): boolean => k === '__proto__' || k === 'constructor' || k === 'prototype';

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (isProtoKey(k)) throw new ConfigError(k, 'unknown key');
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b) ? merge(b as Json, v as Json) : v;
  }
  return out;
}

export interface ConfigSources {
  /** Path of a JSON config file. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Dotted key -> raw string value (from flags such as --port or --set key=value). */
  flags?: Record<string, string>;
  /** Already-typed overrides (tests, embedding). */
  overrides?: Json;
}

/** Builds and validates the configuration; throws ConfigError naming the bad key. */
export function loadConfig(src: ConfigSources = {}): Config {
  let raw: Json = {};
  if (src.file) {
    let text: string;
    try {
      text = readFileSync(resolve(src.file), 'utf8');
    } catch (e) {
      throw new ConfigError('config', `cannot read ${src.file}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Json;
    } catch (e) {
      throw new ConfigError('config', `${src.file} is not valid JSON: ${(e as Error).message}`);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('config', `${src.file} must hold a JSON object`);
  }
  const env = src.env ?? {};
  for (const path of LEAVES.keys()) {
    const v = env[envName(path)];
    if (v !== undefined) setPath(raw, path, coerce(path, v));
  }
  for (const [path, v] of Object.entries(src.flags ?? {})) setPath(raw, path, coerce(path, v));
  if (src.overrides) raw = merge(raw, src.overrides);
  return validateConfig(raw);
}

export function validateConfig(raw: unknown): Config {
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(raw));
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (first) {
    const key = first.path.replace(/^\//, '').replace(/\//g, '.') || 'config';
    const msg = first.schema[Kind] === 'Never' || /Unexpected property|additional/i.test(first.message) ? 'unknown key' : first.message;
    throw new ConfigError(key, msg);
  }
  const cfg = withDefaults as Config;
  const badPlugin = checkPlugins(cfg.plugins);
  if (badPlugin) throw new ConfigError(badPlugin.key, badPlugin.message);
  if (cfg.auth.algorithm.startsWith('HS') && (cfg.auth.publicKey || cfg.auth.jwksUrl)) {
    throw new ConfigError('auth.algorithm', `${cfg.auth.algorithm} uses auth.secret; publicKey/jwksUrl need RS256 or ES256`);
  }
  if (!cfg.auth.algorithm.startsWith('HS') && !cfg.auth.publicKey && !cfg.auth.jwksUrl) {
    throw new ConfigError('auth.publicKey', `${cfg.auth.algorithm} needs auth.publicKey or auth.jwksUrl`);
  }
  if (cfg.http.headersTimeoutMs > cfg.http.requestTimeoutMs) {
    throw new ConfigError('http.headersTimeoutMs', 'must not exceed http.requestTimeoutMs (the headers are part of the request)');
  }
  const redis = cfg.bus.redis;
  if (redis.url && redis.cluster.length > 0) throw new ConfigError('bus.redis.cluster', 'set either bus.redis.url or bus.redis.cluster, not both');
  if ((redis.url || redis.cluster.length > 0) && !cfg.store.postgres.url) {
    throw new ConfigError('store.postgres.url', 'cluster mode (bus.redis) needs PostgreSQL: nodes cannot share an SQLite file');
  }
  if ((redis.url || redis.cluster.length > 0) && cfg.auth.algorithm.startsWith('HS') && !cfg.auth.secret) {
    throw new ConfigError('auth.secret', 'cluster mode needs one auth.secret shared by every node');
  }
  if (cfg.cluster.nodeTimeoutMs < 3 * cfg.cluster.heartbeatMs) {
    throw new ConfigError('cluster.nodeTimeoutMs', 'must be at least 3 heartbeats (cluster.heartbeatMs), or a node that is late once is taken for dead');
  }
  if (isCluster(cfg) && clusterSecret(cfg) === undefined) {
    throw new ConfigError(
      'cluster.secret',
      `cluster mode with ${cfg.auth.algorithm} needs cluster.secret, shared by every node to authenticate node-to-node calls`,
    );
  }
  if (cfg.attachments.storage === 'postgres' && !cfg.store.postgres.url) {
    throw new ConfigError('attachments.storage', 'postgres needs store.postgres.url');
  }
  if (cfg.attachments.storage === 'disk' && (redis.url || redis.cluster.length > 0)) {
    throw new ConfigError('attachments.storage', 'cluster mode needs files every node can read: use postgres (or auto)');
  }
  if ((cfg.push.vapidPublicKey === undefined) !== (cfg.push.vapidPrivateKey === undefined)) {
    throw new ConfigError(cfg.push.vapidPublicKey === undefined ? 'push.vapidPublicKey' : 'push.vapidPrivateKey', 'set both VAPID keys or neither');
  }
  try {
    endpointPolicy(cfg.push.allowHosts);
  } catch (err) {
    throw new ConfigError('push.allowHosts', (err as Error).message);
  }
  const badChat21 = checkChat21(cfg.chat21);
  if (badChat21) throw new ConfigError(badChat21.key, badChat21.message);
  return cfg;
}

/** Cluster mode: several nodes sharing Redis (and PostgreSQL). */
export const isCluster = (cfg: Config): boolean => Boolean(cfg.bus.redis.url || cfg.bus.redis.cluster.length > 0);

/** The secret node-to-node calls are authenticated with: cluster.secret, else the HMAC auth.secret. */
export const clusterSecret = (cfg: Config): string | undefined => cfg.cluster.secret ?? (cfg.auth.algorithm.startsWith('HS') ? cfg.auth.secret : undefined);

export const configKeys = (): string[] => [...LEAVES.keys()];
export const configLeaf = (path: string): TSchema | undefined => LEAVES.get(path);
