// Presence and node liveness in Redis.
//
// Keys (all under the configured prefix):
//   presence:<user>      hash  connection id -> node id; the user is online while it has a field
//   node:<id>:conns      set   "<user>\n<conn>" of the node's connections, for clean-up
//   alive:<id>           string that expires nodeTimeoutMs after the node's last heartbeat
//   nodes                hash  node id -> {url, connections, at}, read by the dispatcher
//   reap:<id>            lock  taken by the one node that cleans up after a dead node
// Every multi-step change of one user's presence is a Lua script on its one key, so two nodes
// never both report the same user coming online or going offline. Each node heartbeats; a
// node whose alive key has expired is dead: one surviving node (the one that takes the lock)
// removes its connections and reports the users that went offline, so the service publishes
// their leave events.
import type { Logger } from 'pino';
import type { NodeInfo, Nodes, Presence } from '../bus.js';
import type { RedisClient } from './client.js';

interface Options {
  prefix: string;
  nodeId: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  log: Logger;
}

const CONNECT = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HLEN', KEYS[1])`;
// ARGV[2]: when not empty, only remove the field if it still belongs to that node.
const DISCONNECT = `if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('HLEN', KEYS[1]) == 0 then return 1 end
return 0`;

type Scripted = RedisClient & {
  parleyConnect(key: string, conn: string, node: string): Promise<number>;
  parleyDisconnect(key: string, conn: string, node: string): Promise<number>;
};

function scripted(redis: RedisClient): Scripted {
  const r = redis as Scripted;
  if (typeof r.parleyConnect !== 'function') {
    redis.defineCommand('parleyConnect', { numberOfKeys: 1, lua: CONNECT });
    redis.defineCommand('parleyDisconnect', { numberOfKeys: 1, lua: DISCONNECT });
  }
  return r;
}

export class RedisPresence implements Presence {
  private readonly redis: Scripted;
  /** This node's registered connections, re-registered after Redis lost its data. */
  private readonly local = new Map<string, string>();
  /** Connections that closed while Redis did not answer: conn -> user. */
  private readonly unremoved = new Map<string, string>();
  private expired: (user: string) => void = () => {};

  constructor(redis: RedisClient, private readonly opts: Options, nodes: RedisNodes) {
    this.redis = scripted(redis);
    nodes.attach(this);
  }

  private key(user: string): string {
    return `${this.opts.prefix}presence:${user}`;
  }

  private nodeSet(node: string): string {
    return `${this.opts.prefix}node:${node}:conns`;
  }

  async connect(user: string, conn: string): Promise<boolean> {
    this.local.set(conn, user);
    const [n] = await Promise.all([
      this.redis.parleyConnect(this.key(user), conn, this.opts.nodeId),
      this.redis.sadd(this.nodeSet(this.opts.nodeId), `${user}\n${conn}`),
    ]);
    return n === 1;
  }

  async disconnect(user: string, conn: string): Promise<boolean> {
    if (this.local.get(conn) === user) this.local.delete(conn);
    try {
      const [gone] = await Promise.all([
        this.redis.parleyDisconnect(this.key(user), conn, ''),
        this.redis.srem(this.nodeSet(this.opts.nodeId), `${user}\n${conn}`),
      ]);
      return gone === 1;
    } catch (err) {
      // Redis away: remove it when Redis is back (restore), so no stale entry stays online.
      this.unremoved.set(conn, user);
      throw err;
    }
  }

  async online(users: string[]): Promise<string[]> {
    const n = await Promise.all(users.map((u) => this.redis.exists(this.key(u))));
    return users.filter((_, i) => n[i] === 1);
  }

  onExpired(handler: (user: string) => void): void {
    this.expired = handler;
  }

  /**
   * After Redis was away: removes the connections that closed meanwhile (telling who went
   * offline), and registers this node's connections again (Redis may have lost its data).
   */
  async restore(): Promise<void> {
    for (const [conn, user] of [...this.unremoved]) {
      this.unremoved.delete(conn);
      const gone = await this.redis.parleyDisconnect(this.key(user), conn, this.opts.nodeId);
      await this.redis.srem(this.nodeSet(this.opts.nodeId), `${user}\n${conn}`);
      if (gone === 1) this.expired(user);
    }
    await Promise.all([...this.local].map(([conn, user]) => Promise.all([
      this.redis.parleyConnect(this.key(user), conn, this.opts.nodeId),
      this.redis.sadd(this.nodeSet(this.opts.nodeId), `${user}\n${conn}`),
    ])));
  }

  /** Removes a dead node's connections; reports each user that went offline. */
  async reap(node: string): Promise<number> {
    const set = this.nodeSet(node);
    const entries = await this.redis.smembers(set);
    let offline = 0;
    for (const e of entries) {
      const i = e.indexOf('\n');
      if (i < 0) continue;
      const user = e.slice(0, i);
      if (await this.redis.parleyDisconnect(this.key(user), e.slice(i + 1), node) === 1) {
        offline++;
        try { this.expired(user); } catch (err) { this.opts.log.warn({ err, user }, 'presence expiry handler failed'); }
      }
    }
    await this.redis.del(set);
    return offline;
  }
}

export class RedisNodes implements Nodes {
  readonly id: string;
  private local: () => { url: string; connections: number } = () => ({ url: '', connections: 0 });
  private timer: ReturnType<typeof setInterval> | null = null;
  private presence: RedisPresence | null = null;
  private beating = false;

  constructor(private readonly redis: RedisClient, private readonly opts: Options) {
    this.id = opts.nodeId;
  }

  attach(p: RedisPresence): void {
    this.presence = p;
  }

  setLocal(info: () => { url: string; connections: number }): void {
    this.local = info;
  }

  private get nodesKey(): string {
    return `${this.opts.prefix}nodes`;
  }

  private aliveKey(id: string): string {
    return `${this.opts.prefix}alive:${id}`;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => { void this.tick(); }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      await Promise.all([
        this.redis.del(this.aliveKey(this.id)),
        this.redis.hdel(this.nodesKey, this.id),
        this.redis.del(`${this.opts.prefix}node:${this.id}:conns`),
      ]);
    } catch { /* Redis gone: the entries expire or are reaped */ }
  }

  private async beat(): Promise<void> {
    const info = { ...this.local(), at: Date.now() };
    const wasAlive = await this.redis.set(this.aliveKey(this.id), '1', 'PX', this.opts.nodeTimeoutMs, 'GET');
    await this.redis.hset(this.nodesKey, this.id, JSON.stringify(info));
    // Our alive key was gone (Redis restarted, or we were cut off long enough to be reaped):
    // register our connections again.
    if (wasAlive === null && this.presence) await this.presence.restore();
  }

  private async tick(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      await this.beat();
      await this.reapDead();
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'node heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  private async reapDead(): Promise<void> {
    const all = await this.redis.hgetall(this.nodesKey);
    for (const id of Object.keys(all)) {
      if (id === this.id) continue;
      if (await this.redis.exists(this.aliveKey(id)) === 1) continue;
      // Dead: exactly one survivor cleans up.
      const lock = await this.redis.set(`${this.opts.prefix}reap:${id}`, this.id, 'PX', 60_000, 'NX');
      if (lock !== 'OK') continue;
      const offline = this.presence ? await this.presence.reap(id) : 0;
      await this.redis.hdel(this.nodesKey, id);
      this.opts.log.warn({ node: id, offline }, 'node stopped heartbeating: its presence entries were removed');
    }
  }

  async list(): Promise<NodeInfo[]> {
    const all = await this.redis.hgetall(this.nodesKey);
    const cutoff = Date.now() - this.opts.nodeTimeoutMs;
    const out: NodeInfo[] = [];
    for (const [id, raw] of Object.entries(all)) {
      try {
        const v = JSON.parse(raw) as { url: string; connections: number; at: number };
        if (v.at >= cutoff) out.push({ id, url: v.url, connections: v.connections, at: v.at });
      } catch { /* a malformed entry is ignored */ }
    }
    return out;
  }
}
