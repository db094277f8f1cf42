// Presence and node liveness in Redis.
//
// A node's presence entries belong to one run of it, an incarnation (`<node id>/<random>`): a
// new one at every start, and another when the node finds it was taken for dead (frozen past
// the node timeout, or Redis lost its keys). Entries of an incarnation that is not alive are
// removed by its own node once it runs as another, or by another node that watched it stay
// silent, so neither a node restarted under the same id nor a node that wakes up after being
// reaped can leave presence behind or lose its own.
//
// Keys (all under the configured prefix):
//   presence:{<b>}<user>  hash  connection id -> incarnation; the user is online while it has a
//                         field. <b> is one of BUCKETS hash tags (one slot each on a Redis
//                         Cluster), so a bucket's keys can change together in one script.
//   online:{<b>}          set   the users of bucket <b> that are online (their hash has a field),
//                         so the presence of many users is one SMISMEMBER per bucket
//   conns:<inc>           set   "<user>\n<conn>" of an incarnation's connections, for clean-up
//   incarnations          hash  incarnation -> node id, of every incarnation that may own entries
//   alive:<inc>           string that expires nodeTimeoutMs after the incarnation's last heartbeat
//   nodes                 hash  node id -> {url, connections, at, inc}, read by the dispatcher
//   reap:<inc>            lock  taken by the one node that cleans up after a dead incarnation
//   claim:<task>          lock  of a periodic task (see Nodes.claim)
// Every change of one user's presence is a Lua script on its key (its bucket's keys), so two
// nodes never both report the same user coming online or going offline.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Claim, NodeInfo, Nodes, Presence } from '../bus.js';
import { bounded, type RedisClient } from './client.js';

export interface PresenceOptions {
  prefix: string;
  nodeId: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  commandTimeoutMs: number;
  log: Logger;
}

const BUCKETS = 16;
/** Connections handled per script call when a dead incarnation is reaped. */
const REAP_BATCH = 500;
/** Users per SMISMEMBER of `online`. */
const ONLINE_BATCH = 1000;

// KEYS: the user's presence hash, its bucket's online set. ARGV: conn, incarnation, user.
// 1 when this created the user's only field (it just came online).
const CONNECT = `local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if created == 1 and redis.call('HLEN', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
return 0`;
// As CONNECT. ARGV[2]: when not empty, only remove the field if it still belongs to that incarnation.
const DISCONNECT = `if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[3])
  return 1
end
return 0`;
// KEYS[1]: a bucket's online set, KEYS[i + 1]: presence hashes of that bucket. ARGV[1]: the dead
// incarnation, ARGV[i + 1]: the connection of KEYS[i + 1], ARGV[n + i + 1]: its user.
// Returns the indexes i of the users that went offline.
const REAP = `local n = #KEYS - 1
local out = {}
for i = 1, n do
  local key = KEYS[i + 1]
  if redis.call('HGET', key, ARGV[i + 1]) == ARGV[1] then
    redis.call('HDEL', key, ARGV[i + 1])
    if redis.call('HLEN', key) == 0 then
      redis.call('SREM', KEYS[1], ARGV[n + i + 1])
      out[#out + 1] = i
    end
  end
end
return out`;
// Extends a lock only while it is still ours.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

type Scripted = RedisClient & {
  parleyConnect(key: string, online: string, conn: string, inc: string, user: string): Promise<number>;
  parleyDisconnect(key: string, online: string, conn: string, inc: string, user: string): Promise<number>;
  parleyReap(n: number, ...args: string[]): Promise<number[]>;
  parleyRenew(key: string, owner: string, ms: number): Promise<number>;
};

function scripted(redis: RedisClient): Scripted {
  const r = redis as Scripted;
  if (typeof r.parleyConnect !== 'function') {
    redis.defineCommand('parleyConnect', { numberOfKeys: 2, lua: CONNECT });
    redis.defineCommand('parleyDisconnect', { numberOfKeys: 2, lua: DISCONNECT });
    redis.defineCommand('parleyReap', { lua: REAP });
    redis.defineCommand('parleyRenew', { numberOfKeys: 1, lua: RENEW });
  }
  return r;
}

/** The bucket of a user (FNV-1a of its id): which hash tag its presence key carries. */
function bucket(user: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < user.length; i++) h = Math.imul(h ^ user.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BUCKETS;
}

/** Groups items by the bucket of their user. */
function byBucket<T>(items: T[], user: (t: T) => string): T[][] {
  const groups = new Map<number, T[]>();
  for (const it of items) {
    const b = bucket(user(it));
    let g = groups.get(b);
    if (!g) groups.set(b, (g = []));
    g.push(it);
  }
  return [...groups.values()];
}

const newIncarnation = (nodeId: string): string => `${nodeId}/${randomBytes(4).toString('hex')}`;

export class RedisPresence implements Presence {
  private readonly redis: Scripted;
  /** This node's registered connections, re-registered after Redis lost them. */
  private readonly local = new Map<string, string>();
  /** Connections that closed while Redis did not answer: conn -> user. */
  private readonly unremoved = new Map<string, string>();
  /** Connections whose registration Redis did not confirm: conn -> user. */
  private readonly unconfirmed = new Map<string, string>();
  private expired: (user: string, why: 'reaped' | 'repaired') => void = () => {};
  private restored: (user: string) => void = () => {};
  /** The incarnation this node's entries are registered under. */
  inc: string;
  /**
   * A connect or disconnect did not reach Redis (it was frozen, or a shard was down, without
   * a reconnect to say so): the next heartbeat that gets through repairs it with `restore`.
   */
  needsRepair = false;

  constructor(
    redis: RedisClient,
    private readonly opts: PresenceOptions,
  ) {
    this.redis = scripted(redis);
    this.inc = newIncarnation(opts.nodeId);
  }

  key(user: string): string {
    return `${this.opts.prefix}presence:{${bucket(user)}}${user}`;
  }

  private onlineSet(user: string): string {
    return `${this.opts.prefix}online:{${bucket(user)}}`;
  }

  conns(inc: string): string {
    return `${this.opts.prefix}conns:${inc}`;
  }

  private call<T>(p: Promise<T>): Promise<T> {
    return bounded(p, this.opts.commandTimeoutMs, 'presence');
  }

  private register(user: string, conn: string): Promise<[number, number]> {
    // The clean-up set first: an entry is never in the hash without being in the set.
    return Promise.all([
      this.redis.sadd(this.conns(this.inc), `${user}\n${conn}`),
      this.redis.parleyConnect(this.key(user), this.onlineSet(user), conn, this.inc, user),
    ]);
  }

  async connect(user: string, conn: string): Promise<boolean> {
    this.local.set(conn, user);
    try {
      const [, first] = await this.call(this.register(user, conn));
      return first === 1;
    } catch (err) {
      this.unconfirmed.set(conn, user);
      this.needsRepair = true;
      throw err;
    }
  }

  async disconnect(user: string, conn: string): Promise<boolean> {
    if (this.local.get(conn) === user) this.local.delete(conn);
    this.unconfirmed.delete(conn);
    try {
      const [gone] = await this.call(
        Promise.all([
          this.redis.parleyDisconnect(this.key(user), this.onlineSet(user), conn, '', user),
          this.redis.srem(this.conns(this.inc), `${user}\n${conn}`),
        ]),
      );
      return gone === 1;
    } catch (err) {
      // Redis away: remove it when Redis is back (restore), so no stale entry stays online.
      this.unremoved.set(conn, user);
      this.needsRepair = true;
      throw err;
    }
  }

  async online(users: string[]): Promise<string[]> {
    // One SMISMEMBER per bucket (and per thousand users), sent together.
    const calls: Array<Promise<[string[], number[]]>> = [];
    for (const g of byBucket([...new Set(users)], (u) => u)) {
      for (let i = 0; i < g.length; i += ONLINE_BATCH) {
        const part = g.slice(i, i + ONLINE_BATCH);
        calls.push(this.redis.smismember(this.onlineSet(part[0]!), ...part).then((r) => [part, r]));
      }
    }
    const on = new Set<string>();
    for (const [part, r] of await this.call(Promise.all(calls)))
      part.forEach((u, i) => {
        if (r[i] === 1) on.add(u);
      });
    return users.filter((u) => on.has(u));
  }

  onExpired(handler: (user: string, why: 'reaped' | 'repaired') => void): void {
    this.expired = handler;
  }

  onRestored(handler: (user: string) => void): void {
    this.restored = handler;
  }

  private tell<W extends string>(handler: (user: string, why: W) => void, user: string, why?: W): void {
    try {
      handler(user, why!);
    } catch (err) {
      this.opts.log.warn({ err, user }, 'presence change handler failed');
    }
  }

  /**
   * After Redis was away: removes the connections that closed meanwhile, and registers this
   * node's connections again under the current incarnation (Redis may have lost them, or a
   * reaper removed them). Tells who went offline and who came back online. A call that timed
   * out may still have reached Redis later, so for the connections whose connect or disconnect
   * was not confirmed the change is told whatever the script answers now (the service then
   * announces what is true). `only` limits the re-registration to some users (those whose
   * keys were on a shard that came back).
   */
  async restore(only?: (user: string) => boolean): Promise<void> {
    if (!only) this.needsRepair = false;
    try {
      await this.restoreNow(only);
    } catch (err) {
      this.needsRepair = true;
      throw err;
    }
  }

  private async restoreNow(only?: (user: string) => boolean): Promise<void> {
    for (const [conn, user] of [...this.unremoved]) {
      await this.call(this.redis.parleyDisconnect(this.key(user), this.onlineSet(user), conn, '', user));
      await this.call(this.redis.srem(this.conns(this.inc), `${user}\n${conn}`));
      this.unremoved.delete(conn);
      this.tell(this.expired, user, 'repaired');
    }
    const mine = [...this.local].filter(([, user]) => !only || only(user));
    for (let i = 0; i < mine.length; i += REAP_BATCH) {
      const part = mine.slice(i, i + REAP_BATCH);
      const firsts = await this.call(Promise.all(part.map(([conn, user]) => this.register(user, conn))));
      firsts.forEach(([, first], j) => {
        const [conn, user] = part[j]!;
        const unconfirmed = this.unconfirmed.delete(conn);
        if (first === 1 || unconfirmed) this.tell(this.restored, user);
      });
    }
  }

  /**
   * Removes a dead incarnation's connections, a batch of them per script call, and reports
   * each user that went offline. `renew` is called between batches (it extends the claim);
   * resolves how many users went offline, or null when the claim was lost before the end.
   */
  async reap(inc: string, renew: () => Promise<boolean>): Promise<number | null> {
    const set = this.conns(inc);
    let offline = 0;
    let cursor = '0';
    do {
      const [next, entries] = await this.call(this.redis.sscan(set, cursor, 'COUNT', REAP_BATCH));
      cursor = next;
      const pairs = entries.flatMap((e) => {
        const i = e.indexOf('\n');
        return i < 0 ? [] : [[e.slice(0, i), e.slice(i + 1)] as const];
      });
      const calls = byBucket(pairs, ([user]) => user).map((g) =>
        this.redis
          .parleyReap(
            g.length + 1,
            this.onlineSet(g[0]![0]),
            ...g.map(([user]) => this.key(user)),
            inc,
            ...g.map(([, conn]) => conn),
            ...g.map(([user]) => user),
          )
          .then((idx) => idx.map((i) => g[i - 1]![0])),
      );
      for (const users of await this.call(Promise.all(calls))) {
        for (const user of users) {
          offline++;
          this.tell(this.expired, user, 'reaped');
        }
      }
      if (!(await renew())) return null;
    } while (cursor !== '0');
    await this.call(this.redis.del(set));
    return offline;
  }
}

export class RedisNodes implements Nodes {
  readonly id: string;
  private local: () => { url: string; connections: number } = () => ({ url: '', connections: 0 });
  private timer: ReturnType<typeof setInterval> | null = null;
  private beating = false;
  private stopped = false;
  /**
   * The first heartbeat after start also reaps former runs of this node (restarted under the
   * same id before they were reaped): their connections went with them. Not at start itself,
   * so that the handlers told about who went offline are in place.
   */
  private first = true;
  /** Heartbeats and recoveries run one at a time (both may register the node again). */
  private serial: Promise<unknown> = Promise.resolve();
  /** The other nodes as last read, and when (this node's clock) each last reported anew. */
  private readonly seen = new Map<string, { info: NodeInfo; at: number; seenAt: number; inc?: string }>();
  /** A heartbeat older than this (by this node's clock) means the node may be gone. */
  private readonly freshMs: number;
  /** When this node last reported itself. */
  private reportedAt = 0;
  /**
   * Since when (this node's clock) its heartbeats have got through without a break; null while
   * they fail. Another node is judged dead only on silence this node could have seen: after
   * Redis was away from here, every node looks silent until it gets its next report through.
   */
  private reachableSince: number | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly presence: RedisPresence,
    private readonly opts: PresenceOptions,
  ) {
    this.id = opts.nodeId;
    this.freshMs = Math.round(opts.heartbeatMs * 2.5);
  }

  setLocal(info: () => { url: string; connections: number }): void {
    this.local = info;
  }

  private key(name: string): string {
    return this.opts.prefix + name;
  }

  private call<T>(p: Promise<T>): Promise<T> {
    return bounded(p, this.opts.commandTimeoutMs, 'node registry');
  }

  async start(): Promise<void> {
    await this.register();
    await this.refresh();
    this.timer = setInterval(() => {
      void this.tick();
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // No longer alive: a survivor removes whatever presence is left at its next heartbeat.
    try {
      await this.call(Promise.all([this.redis.del(this.key(`alive:${this.presence.inc}`)), this.redis.hdel(this.key('nodes'), this.id)]));
    } catch {
      /* Redis gone: the entries expire and are reaped */
    }
  }

  /** Marks the current incarnation alive and lists it. */
  private async register(): Promise<void> {
    const inc = this.presence.inc;
    await this.call(
      Promise.all([this.redis.set(this.key(`alive:${inc}`), this.id, 'PX', this.opts.nodeTimeoutMs), this.redis.hset(this.key('incarnations'), inc, this.id)]),
    );
    await this.report();
  }

  private async report(): Promise<void> {
    const info = { ...this.local(), at: Date.now(), inc: this.presence.inc };
    await this.call(this.redis.hset(this.key('nodes'), this.id, JSON.stringify(info)));
    this.reportedAt = info.at;
  }

  /** Heartbeat; resolves true when the node found itself taken for dead and registered again. */
  private async beat(): Promise<boolean> {
    const alive = await this.call(this.redis.set(this.key(`alive:${this.presence.inc}`), this.id, 'PX', this.opts.nodeTimeoutMs, 'XX'));
    if (alive === null && !this.stopped) {
      // Our alive key is gone: Redis lost it, or we were silent (frozen) long enough to be
      // taken for dead and our entries removed. Go on as a new incarnation, so a reaper still
      // at work on the old one cannot remove what we register now, and register everything again.
      const old = this.presence.inc;
      this.presence.inc = newIncarnation(this.id);
      this.opts.log.warn({ node: this.id, old, inc: this.presence.inc }, "this node's presence had expired: registering its connections again");
      await this.register();
      await this.presence.restore();
      return true;
    }
    await this.report();
    return false;
  }

  /**
   * After Redis was away (or a shard of it): registers this node again if Redis lost it, and
   * its connections (those of the users `only` selects) in case Redis lost them.
   */
  recover(only?: (user: string) => boolean): Promise<void> {
    return this.serially(async () => {
      if (this.stopped) return;
      if (!(await this.beat())) await this.presence.restore(only);
    });
  }

  private serially<T>(f: () => Promise<T>): Promise<T> {
    const p = this.serial.then(f, f);
    this.serial = p.catch(() => {});
    return p;
  }

  private async tick(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      await this.serially(async () => {
        if (!(await this.beat()) && this.presence.needsRepair) await this.presence.restore();
      });
      await this.refresh();
      this.reachableSince ??= Date.now();
      await this.reapDead(this.first);
      this.first = false;
    } catch (err) {
      this.reachableSince = null;
      this.opts.log.debug({ err: (err as Error).message }, 'node heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  /** Reads the node list; a node whose report changed is seen alive now (by this node's clock). */
  private async refresh(): Promise<void> {
    const all = await this.call(this.redis.hgetall(this.key('nodes')));
    const now = Date.now();
    for (const id of this.seen.keys()) if (!(id in all)) this.seen.delete(id);
    for (const [id, raw] of Object.entries(all)) {
      if (id === this.id) continue;
      let v: { url: string; connections: number; at: number; inc?: string };
      try {
        v = JSON.parse(raw) as typeof v;
      } catch {
        continue;
      }
      const prev = this.seen.get(id);
      const info: NodeInfo = { id, url: v.url, connections: v.connections, at: v.at };
      // First sight: trust its own stamp only as far as it is recent.
      const seenAt = prev ? (prev.at === v.at ? prev.seenAt : now) : now - v.at <= this.freshMs ? now : 0;
      this.seen.set(id, { info, at: v.at, seenAt, inc: v.inc });
      // Listed long after its last report (a node that died without being reaped, say after
      // Redis lost the incarnations): drop the entry.
      if (now - v.at > 3 * this.opts.nodeTimeoutMs && now - seenAt > 3 * this.opts.nodeTimeoutMs) {
        await this.call(this.redis.hdel(this.key('nodes'), id));
      }
    }
  }

  private async reapDead(starting: boolean): Promise<void> {
    const incs = await this.call(this.redis.hgetall(this.key('incarnations')));
    const others = Object.entries(incs).filter(([inc]) => inc !== this.presence.inc);
    if (others.length === 0) return;
    const alive = await this.call(Promise.all(others.map(([inc]) => this.redis.exists(this.key(`alive:${inc}`)))));
    const now = Date.now();
    // Redis came back here lately (it was frozen, say, and every alive key expired meanwhile):
    // the others have not had the time to report again, and each registers its connections
    // anew and removes its own former incarnations once it notices. Reaping them now would
    // take their users offline for the moment in between.
    const watching = this.reachableSince !== null && now - this.reachableSince >= this.opts.nodeTimeoutMs;
    for (const [i, [inc, node]] of others.entries()) {
      const formerRun = starting && node === this.id;
      if (alive[i] === 1 && !formerRun) continue;
      if (node !== this.id) {
        if (!watching) continue;
        // Its alive key is gone but it keeps reporting: the key was lost with a Redis Cluster
        // shard, or the node woke from a freeze as a new incarnation. It registers again, and
        // reaps its own former incarnation, by itself. Not dead.
        const s = this.seen.get(node);
        if (s && now - s.seenAt <= this.freshMs) continue;
      }
      if (alive[i] === 1 && formerRun) await this.call(this.redis.del(this.key(`alive:${inc}`)));
      await this.reap(inc, node);
    }
  }

  /** Removes a dead incarnation's presence; exactly one node does it (the one that claims it). */
  private async reap(inc: string, node: string): Promise<void> {
    // The claim outlives a stalled reaper only briefly (another survivor takes over) and is
    // renewed between batches, however many connections the dead incarnation had.
    const claim = await this.take(`reap:${inc}`, Math.max(5000, 2 * this.opts.heartbeatMs));
    if (!claim) return;
    const offline = await this.presence.reap(inc, () => claim.renew());
    // Lost the claim (this node stalled): whoever holds it now finishes.
    if (offline === null) return;
    await this.call(this.redis.hdel(this.key('incarnations'), inc));
    // The node's dispatcher entry goes too, unless a newer run of it has replaced it.
    const entry = await this.call(this.redis.hget(this.key('nodes'), node));
    if (entry !== null && node !== this.id) {
      let current: string | undefined;
      try {
        current = (JSON.parse(entry) as { inc?: string }).inc;
      } catch {
        /* malformed: drop */
      }
      if (current === undefined || current === inc) await this.call(this.redis.hdel(this.key('nodes'), node));
    }
    // A former run of this node is the usual case after any restart (a stopping node leaves its
    // connections' entries to whoever reaps it first): not a warning.
    if (node === this.id) this.opts.log.info({ node, inc, offline }, 'a former run of this node left presence entries: removed');
    else this.opts.log.warn({ node, inc, offline }, 'node stopped heartbeating: its presence entries were removed');
  }

  /**
   * Live nodes as last seen, without asking Redis: this one (with its connections now), and
   * those that reported lately. `at` is each node's last report.
   */
  list(): Promise<NodeInfo[]> {
    const now = Date.now();
    const out: NodeInfo[] = [{ id: this.id, ...this.local(), at: this.reportedAt }];
    for (const s of this.seen.values()) if (now - s.seenAt <= this.freshMs) out.push(s.info);
    return Promise.resolve(out);
  }

  async claim(task: string, ms: number): Promise<Claim | null> {
    try {
      return await this.take(`claim:${task}`, ms);
    } catch {
      return null;
    }
  }

  /**
   * Takes the lock `name` for `ms` unless another holds it. The owner is this run: a later
   * incarnation of the same node is another owner. Renewing resolves false once it was lost.
   */
  private async take(name: string, ms: number): Promise<Claim | null> {
    const key = this.key(name);
    const owner = this.presence.inc;
    if ((await this.call(this.redis.set(key, owner, 'PX', ms, 'NX'))) !== 'OK') return null;
    return {
      renew: async () => {
        try {
          return (await this.call((this.redis as Scripted).parleyRenew(key, owner, ms))) === 1;
        } catch {
          return false;
        }
      },
    };
  }
}
