// Redis connections for cluster mode: one Redis (a URL) or a Redis Cluster (seed nodes).
// No call waits for ever: a Redis that is down fails commands after a few reconnect attempts,
// one that is up but does not answer (frozen, overloaded) fails them after the command
// timeout, and the client keeps reconnecting in the background.
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ParleyError } from '../../errors.js';

export interface RedisTarget {
  url?: string;
  /** host:port seeds of a Redis Cluster. */
  cluster?: string[];
  /** Longest a command may take before it fails (default 2000 ms). */
  commandTimeoutMs?: number;
}

export type RedisClient = Redis | Cluster;

export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/**
 * Opens a client; `subscriber` ones use sharded subscribers on a Redis Cluster. Command
 * clients fail fast while disconnected (no offline queue): a publish during an outage is
 * dropped rather than piling up in memory, and receivers fill the gap from the store.
 */
export function openRedis(target: RedisTarget, log: Logger, role: string, subscriber = false): RedisClient {
  let client: RedisClient;
  const common: RedisOptions = {
    // Fail a command after a few reconnect attempts instead of queueing it for ever, and one
    // that was sent but is not answered after the command timeout.
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectTimeout: 5000,
    commandTimeout: target.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  };
  if (target.cluster && target.cluster.length > 0) {
    const nodes = target.cluster.map((s) => {
      const i = s.lastIndexOf(':');
      return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
    });
    client = new Cluster(nodes, {
      // Node connections connect lazily: they must queue until connected.
      redisOptions: common,
      shardedSubscribers: subscriber,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      // Nodes that restart are reconnected instead of waiting for a MOVED reply.
      clusterNodeRetryStrategy: (times) => Math.min(100 * times, 2000),
      // Cluster commands wait for the slot map (a wait `bounded` cuts short); a lost publish
      // is still filled from the store.
      enableOfflineQueue: true,
    });
  } else if (target.url) {
    client = new Redis(target.url, { ...common, enableOfflineQueue: subscriber });
  } else {
    throw new Error('bus.redis: neither url nor cluster is set');
  }
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) log.warn({ err: err.message, role }, 'redis connection error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info({ role }, 'redis connection restored');
    down = false;
  });
  return client;
}

export const isCluster = (c: RedisClient): c is Cluster => c instanceof Cluster;

/**
 * The sockets a client writes its commands on now: one Redis's, or each master's of a Redis
 * Cluster (those connected). ioredis's own auto-pipelining batches a turn's commands too, but
 * allocates a pipeline per turn whose objects outlive young-generation collections: under
 * load a node's old generation filled about twice as fast, and was collected twice as often.
 */
export function commandSockets(c: RedisClient): Writable[] {
  const clients = isCluster(c) ? c.nodes('master') : [c];
  const out: Writable[] = [];
  for (const r of clients) if (r.stream) out.push(r.stream);
  return out;
}

/**
 * A Redis call that settles within `ms`: a Redis Cluster queues commands while it looks for a
 * shard, where the command timeout does not reach them yet. Past `ms`, or on any Redis error,
 * it rejects with `unavailable` (`what` names the feature in the message).
 */
export function bounded<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = (): void => reject(new ParleyError('unavailable', `${what} unavailable (Redis does not answer)`));
    const t = setTimeout(fail, ms);
    call.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        fail();
      },
    );
  });
}
