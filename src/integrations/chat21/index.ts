// The Chat21 integration: Chat21 clients (the MQTT inbox pattern and the Chat21 REST API)
// served by Parley, as docs/chat21.md describes. Everything Chat21 is here — its wire shapes
// (protocol.ts), its semantics on Parley commands (service.ts), its own state (store*.ts), its
// topics and inbox on the MQTT transport (topics.ts, inbox.ts, mqtt.ts), its REST routes
// (rest.ts), its token key (auth.ts), its webhook names (webhooks.ts) and its configuration
// section (config.ts) — and it reaches Parley only through public interfaces: `Service.exec`,
// `admit`, `attach`/`detach`, `requireModerator`, `directPeer`, the command runner, the
// generic MQTT transport and the HTTP app (its routes are a fastify plugin).
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Verifier } from '../../auth/jwt.js';
import type { Config } from '../../config.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Service } from '../../service/index.js';
import type { CommandRunner } from '../../service/runner.js';
import type { Store } from '../../store/store.js';
import { MqttTransport } from '../../transport/mqtt/index.js';
import { withSharedKey } from './auth.js';
import { chat21RestBase } from './config.js';
import { Chat21Mqtt } from './mqtt.js';
import { chat21Rest } from './rest.js';
import { Chat21Service } from './service.js';
import type { Chat21Store } from './store.js';
import type { PublishOp } from './topics.js';

export { SqliteChat21Store } from './store-sqlite.js';
export { PostgresChat21Store } from './store-postgres.js';
export type { Chat21Store } from './store.js';
export type { PublishOp } from './topics.js';
export { Chat21Service } from './service.js';

export interface Chat21Deps {
  config: Config;
  service: Service;
  runner: CommandRunner;
  store: Pick<Store, 'getRoom'>;
  /** The Chat21 state on the node's database (SqliteChat21Store or PostgresChat21Store). */
  state: Chat21Store;
  /** The node's verifier; the Chat21 endpoints also take tokens of `chat21.tokenKey`. */
  verify: Verifier;
  /** The HTTP app the REST routes are registered on (before it listens). */
  http: FastifyInstance;
  log: Logger;
  metrics: Metrics;
  /** A signed URL of an attachment for a reader, put in the Chat21 `metadata.src` of files. */
  link?: (attachment: string, reader: string) => string;
  /** Keeps the ids of built-in accounts from tokens of `chat21.tokenKey` (they are external). */
  reserve?: (verify: Verifier) => Verifier;
}

export interface Chat21 {
  readonly service: Chat21Service;
  /** The MQTT endpoint; `listen()` it with the node. */
  readonly mqtt: MqttTransport<PublishOp>;
}

/** Builds the Chat21 endpoints of a node: the MQTT transport, and the REST API when `chat21.rest`. */
export function chat21(deps: Chat21Deps): Chat21 {
  const cfg = deps.config;
  const service = new Chat21Service(deps.service, deps.store, deps.state, cfg.chat21.appId, cfg.chat21.instancesPerUser, deps.link);
  const verify = cfg.chat21.tokenKey ? (deps.reserve ?? ((v: Verifier) => v))(withSharedKey(deps.verify, cfg.chat21.tokenKey, cfg)) : deps.verify;
  const mqtt = new MqttTransport(
    deps.service,
    deps.runner,
    new Chat21Mqtt(service, deps.log),
    verify,
    {
      host: cfg.mqtt.host ?? cfg.host,
      port: cfg.mqtt.port,
      wsPath: cfg.mqtt.wsPath,
      maxPayloadBytes: cfg.mqtt.maxPayloadBytes,
      maxClientsPerUser: cfg.mqtt.maxClientsPerUser,
      maxSubscriptions: cfg.mqtt.maxSubscriptions,
      maxInflight: cfg.mqtt.maxInflight,
      slowConsumerBytes: cfg.limits.slowConsumerBytes,
      connectionsPerAddress: cfg.mqtt.connectionsPerAddress,
      connectTimeoutMs: cfg.mqtt.connectTimeoutMs,
    },
    deps.log,
    deps.metrics,
  );
  // A deleted room's Chat21 state goes with it. The listener runs on the node that stored the
  // deletion, before the command's reply, so the removal is under way (on SQLite, done) before
  // anyone can learn the id is free and create the room again.
  deps.service.events.on('room.deleted', ({ room }) => {
    service.roomDeleted(room).catch((err: unknown) => deps.log.warn({ err, room }, 'could not remove the Chat21 state of a deleted room'));
  });
  if (cfg.chat21.rest) {
    void deps.http.register(chat21Rest, {
      prefix: chat21RestBase(cfg.chat21),
      chat21: service,
      verify,
      service: deps.service,
      metrics: deps.metrics,
      log: deps.log,
    });
  }
  return { service, mqtt };
}
