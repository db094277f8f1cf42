// Redis connections for cluster mode: one Redis (a URL) or a Redis Cluster (seed nodes).
// Commands never wait forever: a Redis that is down fails them after a few retries, and the
// client keeps reconnecting in the background.
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisTarget {
  url?: string;
  /** host:port seeds of a Redis Cluster. */
  cluster?: string[];
}

export type RedisClient = Redis | Cluster;

const common: RedisOptions = {
  // Fail a command after a few reconnect attempts instead of queueing it for ever.
  maxRetriesPerRequest: 3,
  retryStrategy: (times) => Math.min(50 * times, 1000),
  connectTimeout: 5000,
};

/**
 * Opens a client; `subscriber` ones use sharded subscribers on a Redis Cluster. Command
 * clients fail fast while disconnected (no offline queue): a publish during an outage is
 * dropped rather than piling up in memory, and receivers fill the gap from the store.
 */
export function openRedis(target: RedisTarget, log: Logger, role: string, subscriber = false): RedisClient {
  let client: RedisClient;
  const opts: RedisOptions = { ...common, enableOfflineQueue: subscriber };
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
      // Cluster commands wait for the slot map; a lost publish is still filled from the store.
      enableOfflineQueue: true,
    });
  } else if (target.url) {
    client = new Redis(target.url, opts);
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
