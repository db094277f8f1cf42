// Redis Bus for cluster mode. Each topic is a Redis channel (`<prefix><topic>`); a node
// subscribes only to the topics its hub follows (the hub reference-counts them), so a room's
// events reach only nodes with local members. On a Redis Cluster the channels are sharded
// (SSUBSCRIBE/SPUBLISH): a room's traffic stays on the shard that owns its slot.
//
// Wire format of a message: one line of JSON metadata, then the frame and the alternative
// frame as they are (their lengths are in the metadata), so the frame — already JSON — is
// never escaped into another JSON string.
//
// Pub/sub is at-most-once. After a reconnect the subscriber's channels are restored, then the
// `onResync` handlers run so the hub re-reads from the Store what it may have missed.
import type { Logger } from 'pino';
import type { Bus, BusHandler, BusMessage, Control, Nodes, Presence } from '../bus.js';
import { openRedis, isCluster, type RedisClient, type RedisTarget } from './client.js';
import { RedisPresence, RedisNodes } from './presence.js';

export interface RedisBusOptions extends RedisTarget {
  prefix: string;
  nodeId: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  log: Logger;
}

interface Meta { f: number; s?: number; c?: Control; h?: string; x?: string[] }

export function encodeBusMessage(msg: BusMessage): string {
  const meta: Meta = { f: msg.frame.length };
  if (msg.seq !== undefined) meta.s = msg.seq;
  if (msg.control) meta.c = msg.control;
  if (msg.hiddenFor !== undefined && msg.alt !== undefined) meta.h = msg.hiddenFor;
  if (msg.except !== undefined && msg.except.length > 0) meta.x = msg.except;
  return `${JSON.stringify(meta)}\n${msg.frame}${meta.h !== undefined ? msg.alt : ''}`;
}

export function decodeBusMessage(raw: string): BusMessage | null {
  const nl = raw.indexOf('\n');
  if (nl < 0) return null;
  let meta: Meta;
  try { meta = JSON.parse(raw.slice(0, nl)) as Meta; } catch { return null; }
  if (typeof meta !== 'object' || meta === null || typeof meta.f !== 'number') return null;
  const start = nl + 1;
  const msg: BusMessage = { frame: raw.slice(start, start + meta.f) };
  if (typeof meta.s === 'number') msg.seq = meta.s;
  if (meta.c) msg.control = meta.c;
  if (Array.isArray(meta.x) && meta.x.every((u) => typeof u === 'string')) msg.except = meta.x;
  if (typeof meta.h === 'string') {
    msg.hiddenFor = meta.h;
    msg.alt = raw.slice(start + meta.f);
  }
  return msg;
}

export class RedisBus implements Bus {
  readonly presence: Presence;
  readonly nodes: Nodes;
  private readonly pub: RedisClient;
  private readonly sub: RedisClient;
  private readonly sharded: boolean;
  private readonly topics = new Set<string>();
  private handler: BusHandler = () => {};
  private readonly resync: Array<() => void> = [];
  private readonly registry: RedisNodes;
  private closed = false;
  private resyncTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(private readonly opts: RedisBusOptions) {
    this.pub = openRedis(opts, opts.log, 'bus-publish');
    this.sub = openRedis(opts, opts.log, 'bus-subscribe', true);
    this.sharded = isCluster(this.sub);
    const onRaw = (channel: string, raw: string): void => {
      if (!channel.startsWith(opts.prefix)) return;
      const msg = decodeBusMessage(raw);
      if (!msg) {
        opts.log.warn({ channel }, 'malformed bus message dropped');
        return;
      }
      this.handler(channel.slice(opts.prefix.length), msg);
    };
    if (this.sharded) {
      this.sub.on('smessage', onRaw);
      // A shard's subscriber came back: its channels were restored, but messages may be lost.
      this.sub.on('+subscriber', () => this.scheduleResync());
    } else {
      this.sub.on('message', onRaw);
      let first = true;
      this.sub.on('ready', () => {
        if (first) { first = false; return; }
        // The re-subscriptions are queued before 'ready'; a PING answered after them means
        // they are active.
        (this.sub as import('ioredis').Redis).ping().then(() => this.runResync(), () => this.scheduleResync());
      });
    }
    this.registry = new RedisNodes(this.pub, opts);
    this.nodes = this.registry;
    this.presence = new RedisPresence(this.pub, opts, this.registry);
  }

  /** The command connection, shared with the Redis rate counter and login limiter. */
  get client(): RedisClient {
    return this.pub;
  }

  /** Connects and waits until both connections answer (fails after connectTimeout). */
  static async open(opts: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(opts);
    try {
      await Promise.all([bus.waitReady(bus.pub), bus.waitReady(bus.sub)]);
      await bus.registry.start();
    } catch (err) {
      await bus.close();
      throw err;
    }
    return bus;
  }

  private waitReady(c: RedisClient): Promise<void> {
    if (c.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('redis: not ready after 10 s')), 10_000);
      c.once('ready', () => { clearTimeout(t); resolve(); });
    });
  }

  private channel(topic: string): string {
    return this.opts.prefix + topic;
  }

  publish(topic: string, msg: BusMessage): void {
    const payload = encodeBusMessage(msg);
    const p = this.sharded ? (this.pub as import('ioredis').Cluster).spublish(this.channel(topic), payload) : this.pub.publish(this.channel(topic), payload);
    // At-most-once: a lost publish is detected by seq and filled from the store.
    p.catch((err: Error) => this.opts.log.debug({ err: err.message, topic }, 'publish failed'));
  }

  async subscribe(topic: string): Promise<void> {
    if (this.topics.has(topic) || this.closed) return;
    this.topics.add(topic);
    try {
      if (this.sharded) await (this.sub as import('ioredis').Cluster).ssubscribe(this.channel(topic));
      else await this.sub.subscribe(this.channel(topic));
    } catch (err) {
      // Still wanted: the client re-subscribes after reconnecting; until then the hub's resync covers it.
      this.opts.log.warn({ err: (err as Error).message, topic }, 'subscribe failed');
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    if (!this.topics.delete(topic) || this.closed) return;
    try {
      if (this.sharded) await (this.sub as import('ioredis').Cluster).sunsubscribe(this.channel(topic));
      else await this.sub.unsubscribe(this.channel(topic));
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message, topic }, 'unsubscribe failed');
    }
  }

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  onResync(handler: () => void): void {
    this.resync.push(handler);
  }

  private scheduleResync(): void {
    if (this.resyncTimer || this.closed) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.runResync();
    }, 200);
  }

  private runResync(): void {
    if (this.closed) return;
    (this.presence as RedisPresence).restore().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'presence restore failed'));
    this.opts.log.info({ topics: this.topics.size }, 'bus resubscribed: re-reading followed rooms from the store');
    for (const h of this.resync) h();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.registry.stop();
    this.topics.clear();
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}
