// Redis Bus for cluster mode. Each topic is a Redis channel (`<prefix><topic>`); a node
// subscribes only to the topics its hub follows (the hub reference-counts them), so a room's
// events reach only nodes with local members. On a Redis Cluster the channels are sharded
// (SSUBSCRIBE/SPUBLISH): a room's traffic stays on the shard that owns its slot.
//
// A node's own subscribers get what it publishes at once, from `publish` itself, so clients on
// the sending node keep receiving while Redis is away; the copy that comes back from Redis
// carries the publisher's origin tag and is dropped.
//
// Wire format of a message: one line of JSON metadata, then the frame and the alternative
// frame as they are (their lengths are in the metadata), so the frame — already JSON — is
// never escaped into another JSON string.
//
// Pub/sub is at-most-once. After a reconnect the subscriber's channels are restored, then the
// `onResync` handlers run so the hub re-reads from the Store what it may have missed: on one
// Redis every topic; on a Redis Cluster only the topics of the shard that came back.
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, BusHandler, BusMessage, Control, Nodes, Presence } from '../bus.js';
import { turnCork } from '../../cork.js';
import { bounded, commandSockets, DEFAULT_COMMAND_TIMEOUT_MS, isCluster, openRedis, type RedisClient, type RedisTarget } from './client.js';
import { RedisNodes, RedisPresence } from './presence.js';

export interface RedisBusOptions extends RedisTarget {
  prefix: string;
  nodeId: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  log: Logger;
}

interface Meta {
  f: number;
  s?: number;
  c?: Control;
  h?: string;
  x?: string[];
  o?: string;
}

/** Encodes a message; `origin` tags the publishing bus, so it can drop its own echo. */
export function encodeBusMessage(msg: BusMessage, origin?: string): string {
  const meta: Meta = { f: msg.frame.length };
  if (msg.seq !== undefined) meta.s = msg.seq;
  if (msg.control) meta.c = msg.control;
  if (msg.hiddenFor !== undefined && msg.alt !== undefined) meta.h = msg.hiddenFor;
  if (msg.except !== undefined && msg.except.length > 0) meta.x = msg.except;
  if (origin !== undefined) meta.o = origin;
  return `${JSON.stringify(meta)}\n${msg.frame}${meta.h !== undefined ? msg.alt : ''}`;
}

/** Decodes a message (null when malformed); `origin` is set when the publisher tagged it. */
export function decodeBusMessage(raw: string): (BusMessage & { origin?: string }) | null {
  const nl = raw.indexOf('\n');
  if (nl < 0) return null;
  let meta: Meta;
  try {
    meta = JSON.parse(raw.slice(0, nl)) as Meta;
  } catch {
    return null;
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.f !== 'number') return null;
  const start = nl + 1;
  const msg: BusMessage & { origin?: string } = { frame: raw.slice(start, start + meta.f) };
  if (typeof meta.s === 'number') msg.seq = meta.s;
  if (meta.c) msg.control = meta.c;
  if (Array.isArray(meta.x) && meta.x.every((u) => typeof u === 'string')) msg.except = meta.x;
  if (typeof meta.h === 'string') {
    msg.hiddenFor = meta.h;
    msg.alt = raw.slice(start + meta.f);
  }
  if (typeof meta.o === 'string') msg.origin = meta.o;
  return msg;
}

/** Waits before a subscription Redis did not confirm is tried again: 250 ms, doubling up to 5 s. */
const CONFIRM_FIRST_MS = 250;
const CONFIRM_MAX_MS = 5000;

/** A shard whose subscriber connection ended: the slots it served then, and its recovery. */
interface LostShard {
  slots: Set<number>;
  /** ioredis started its subscribers again since the loss. */
  restarted: boolean;
  /** Checks made since then; the next waits 250 ms doubling up to 5 s. */
  attempts: number;
}

export class RedisBus implements Bus {
  readonly presence: Presence;
  readonly nodes: Nodes;
  private readonly pub: RedisClient;
  private readonly sub: RedisClient;
  private readonly sharded: boolean;
  private readonly topics = new Set<string>();
  private handler: BusHandler = () => {};
  private readonly resync: Array<(topics: readonly string[] | null) => void> = [];
  private readonly registry: RedisNodes;
  private readonly presenceImpl: RedisPresence;
  /** Tags this bus's publishes, so it drops their echo (its subscribers got them at once). */
  private readonly origin = randomBytes(6).toString('base64url');
  private readonly timeoutMs: number;
  private closed = false;
  /** Corks the command sockets for this turn: a group commit's publishes leave in one write per server. */
  private readonly cork: () => void;
  /** Redis Cluster: shards whose subscriber connection ended, by node key (host:port). */
  private readonly lost = new Map<string, LostShard>();
  private checking = false;
  private checkTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Topics whose subscribe or unsubscribe Redis did not confirm (it was down or frozen):
   * ioredis re-subscribes after a reconnect only to what Redis confirmed, so these are tried
   * again until it does. A wanted topic that becomes subscribed is then resynced.
   */
  private readonly unconfirmed = new Set<string>();
  private confirmTimer: ReturnType<typeof setTimeout> | null = null;
  private confirmDelay = CONFIRM_FIRST_MS;

  private constructor(private readonly opts: RedisBusOptions) {
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.pub = openRedis(opts, opts.log, 'bus-publish');
    this.cork = turnCork(
      () => commandSockets(this.pub),
      (uncork) => setImmediate(uncork),
    );
    this.sub = openRedis(opts, opts.log, 'bus-subscribe', true);
    this.sharded = isCluster(this.sub);
    const onRaw = (channel: string, raw: string): void => {
      if (!channel.startsWith(opts.prefix)) return;
      const msg = decodeBusMessage(raw);
      if (!msg) {
        opts.log.warn({ channel }, 'malformed bus message dropped');
        return;
      }
      if (msg.origin === this.origin) return;
      delete msg.origin;
      this.handler(channel.slice(opts.prefix.length), msg);
    };
    if (this.sharded) {
      this.sub.on('smessage', onRaw);
      // A shard's subscriber connection ended: messages on its slots may be lost from now
      // until it is back. ioredis starts subscribers again (with its own backoff) and then
      // reports them ready; only then is a lost shard checked, and its topics alone re-read.
      this.sub.on('-node', (_redis: unknown, nodeKey?: string) => {
        if (typeof nodeKey === 'string') this.shardLost(nodeKey);
      });
      this.sub.on('subscribersReady', () => {
        this.confirmSoon(0);
        for (const shard of this.lost.values()) shard.restarted = true;
        void this.checkLostShards();
      });
    } else {
      this.sub.on('message', onRaw);
      let first = true;
      this.sub.on('ready', () => {
        if (first) {
          first = false;
          return;
        }
        this.confirmSoon(0);
        // The re-subscriptions are queued before 'ready'; a PING answered after them means
        // they are active.
        bounded((this.sub as Redis).ping(), this.timeoutMs, 'bus').then(
          () => this.runResync(null),
          () => {},
        );
      });
    }
    const popts = { ...opts, commandTimeoutMs: this.timeoutMs };
    this.presenceImpl = new RedisPresence(this.pub, popts);
    this.registry = new RedisNodes(this.pub, this.presenceImpl, popts);
    this.nodes = this.registry;
    this.presence = this.presenceImpl;
  }

  /** The command connection, shared with the Redis rate counter and login limiter. */
  get client(): RedisClient {
    return this.pub;
  }

  /** Longest a Redis call may take (what users of `client` bound their calls with). */
  get commandTimeoutMs(): number {
    return this.timeoutMs;
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
      c.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private channel(topic: string): string {
    return this.opts.prefix + topic;
  }

  publish(topic: string, msg: BusMessage): void {
    if (this.closed) return;
    this.deliverLocal(topic, msg);
    this.cork();
    const payload = encodeBusMessage(msg, this.origin);
    const p = this.sharded ? (this.pub as Cluster).spublish(this.channel(topic), payload) : this.pub.publish(this.channel(topic), payload);
    // At-most-once: a lost publish is detected by seq and filled from the store.
    p.catch((err: Error) => this.opts.log.debug({ err: err.message, topic }, 'publish failed'));
  }

  deliverLocal(topic: string, msg: BusMessage): void {
    if (this.closed || !this.topics.has(topic)) return;
    try {
      this.handler(topic, msg);
    } catch (err) {
      this.opts.log.error({ err, topic }, 'bus handler failed');
    }
  }

  async subscribe(topic: string): Promise<void> {
    if (this.topics.has(topic) || this.closed) return;
    this.topics.add(topic);
    if (await this.listen(topic, true)) return;
    // Still wanted: tried again until Redis confirms it, then the topic is resynced.
    this.opts.log.warn({ topic }, 'subscribe failed; trying again');
    this.unconfirmed.add(topic);
    this.confirmSoon();
  }

  async unsubscribe(topic: string): Promise<void> {
    if (!this.topics.delete(topic) || this.closed) return;
    if (await this.listen(topic, false)) return;
    this.opts.log.debug({ topic }, 'unsubscribe failed; trying again');
    this.unconfirmed.add(topic);
    this.confirmSoon();
  }

  /** Subscribes to the topic's channel or unsubscribes from it; true once Redis confirmed. */
  private async listen(topic: string, on: boolean): Promise<boolean> {
    const channel = this.channel(topic);
    const sub = this.sub;
    try {
      const p = this.sharded
        ? on
          ? (sub as Cluster).ssubscribe(channel)
          : (sub as Cluster).sunsubscribe(channel)
        : on
          ? sub.subscribe(channel)
          : sub.unsubscribe(channel);
      await bounded(p, this.timeoutMs, 'bus');
      return true;
    } catch {
      return false;
    }
  }

  private confirmSoon(ms = this.confirmDelay): void {
    if (this.closed || this.unconfirmed.size === 0) return;
    if (this.confirmTimer) {
      if (ms > 0) return;
      clearTimeout(this.confirmTimer);
    }
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = null;
      void this.confirm();
    }, ms);
    this.confirmTimer.unref();
  }

  /**
   * Makes Redis agree with what is wanted for each unconfirmed topic; the wanted ones it now
   * confirmed are resynced (what was published before is read from the store). Tried again
   * with a growing wait while Redis does not answer.
   */
  private async confirm(): Promise<void> {
    const subscribed: string[] = [];
    for (const topic of [...this.unconfirmed]) {
      if (this.closed) return;
      const wanted = this.topics.has(topic);
      if (!(await this.listen(topic, wanted))) break;
      // The wish may have changed meanwhile: then it stays for the next round.
      if (this.topics.has(topic) !== wanted) continue;
      this.unconfirmed.delete(topic);
      if (wanted) subscribed.push(topic);
    }
    if (subscribed.length > 0) {
      this.opts.log.info({ topics: subscribed.length }, 'bus subscriptions made after an outage: re-reading them from the store');
      for (const h of this.resync) h(subscribed);
    }
    this.confirmDelay = this.unconfirmed.size === 0 ? CONFIRM_FIRST_MS : Math.min(CONFIRM_MAX_MS, this.confirmDelay * 2);
    this.confirmSoon();
  }

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  onResync(handler: (topics: readonly string[] | null) => void): void {
    this.resync.push(handler);
  }

  /** Redis Cluster slot of a key or channel. */
  private slotOf(name: string): number {
    return calculateSlot(name);
  }

  private shardLost(nodeKey: string): void {
    if (this.closed) return;
    const owners = (this.sub as Cluster).slots;
    let shard = this.lost.get(nodeKey);
    if (!shard) this.lost.set(nodeKey, (shard = { slots: new Set(), restarted: false, attempts: 0 }));
    shard.restarted = false;
    for (let slot = 0; slot < owners.length; slot++) if (owners[slot]?.[0] === nodeKey) shard.slots.add(slot);
    this.opts.log.warn({ shard: nodeKey, slots: shard.slots.size }, 'redis shard lost: its rooms pause until it is back');
  }

  /**
   * Subscribers were started again: each lost shard whose slots answer again has its topics
   * re-read, once. A shard still down is checked again with backoff.
   */
  private async checkLostShards(): Promise<void> {
    if (this.checking || this.closed || this.lost.size === 0) return;
    this.checking = true;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = null;
    let next = Infinity;
    try {
      const owners = (this.sub as Cluster).slots;
      const masters = new Map<string, Redis>((this.pub as Cluster).nodes('master').map((r) => [`${r.options.host}:${r.options.port}`, r]));
      for (const [key, shard] of [...this.lost]) {
        if (!shard.restarted) continue;
        next = Math.min(next, Math.min(5000, 250 * 2 ** shard.attempts++));
        // Whoever serves those slots now (the same master, or the replica that took over).
        const servers = new Set<string>();
        for (const slot of shard.slots) {
          const o = owners[slot]?.[0];
          if (o) servers.add(o);
        }
        let up = servers.size > 0;
        for (const server of servers) {
          const r = masters.get(server);
          if (
            !r ||
            !(await bounded(r.ping(), this.timeoutMs, 'bus').then(
              () => true,
              () => false,
            ))
          ) {
            up = false;
            break;
          }
        }
        if (!up || this.closed) continue;
        this.lost.delete(key);
        const topics = [...this.topics].filter((t) => shard.slots.has(this.slotOf(this.channel(t))));
        this.opts.log.info({ shard: key, topics: topics.length }, 'redis shard back: re-reading its rooms from the store');
        // The re-subscriptions were sent just before ioredis reported ready; give them a moment.
        setTimeout(() => {
          if (this.closed) return;
          this.registry
            .recover((user) => shard.slots.has(this.slotOf(this.presenceImpl.key(user))))
            .catch((err: Error) => this.opts.log.warn({ err: err.message }, 'presence restore failed'));
          for (const h of this.resync) h(topics);
        }, 100);
      }
    } finally {
      this.checking = false;
      if (!this.closed && this.lost.size > 0 && next !== Infinity) {
        this.checkTimer = setTimeout(() => {
          void this.checkLostShards();
        }, next);
        this.checkTimer.unref();
      }
    }
  }

  private runResync(topics: readonly string[] | null): void {
    if (this.closed) return;
    this.registry.recover().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'presence restore failed'));
    this.opts.log.info({ topics: this.topics.size }, 'bus resubscribed: re-reading followed rooms from the store');
    for (const h of this.resync) h(topics);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    await this.registry.stop();
    this.topics.clear();
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}
