// The cluster placement, kept in PostgreSQL next to the data it fences.
//
// cluster_state holds the epoch and its node list; cluster_nodes each node's lease. A node
// joins (start), leaves (stop) or removes a dead node under the fencing lock taken exclusive
// (fence.ts), and bumps the epoch in the same transaction, which also NOTIFYs the other nodes.
//
// Liveness is a lease in PostgreSQL, not the Redis heartbeat: a node renews its lease every
// heartbeat with the database's clock, and one that missed it for nodeTimeoutMs is removed by
// a survivor. Ownership then follows exactly the nodes that can write: a node cut off from
// Redis keeps its rooms (sends go on being stored and acknowledged), a node cut off from
// PostgreSQL loses them (it could not write them anyway), and a Redis that restarts empty
// does not make every node look dead. Whatever liveness says, a stale owner cannot write: its
// batches are fenced by the epoch.
//
// The same renewal statement returns the current epoch and the expired leases, so a missed
// notification costs at most one heartbeat. A node that finds itself removed (it was frozen,
// or cut off from the database) acts on the view without it at once and joins again; one
// whose id another process has taken over stays out and says so.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { ParleyError } from '../errors.js';
import { toStoreError, transaction } from '../store/postgres/pool.js';
import { FENCE_EXCLUSIVE_SQL } from './fence.js';
import { Rendezvous, makeView, type ClusterView, type NodeRef, type Placement } from './placement.js';

export interface PostgresPlacementOptions {
  /** The store's pool; its connections must carry applicationName(self.id, incarnation). */
  pool: pg.Pool;
  /** This node: its id and the URL peers reach it at. */
  self: NodeRef;
  /** This run of the node (newIncarnation()). */
  incarnation: string;
  /** How often the lease is renewed and the epoch re-read. */
  heartbeatMs: number;
  /** A lease not renewed for this long has expired: a survivor removes the node. */
  nodeTimeoutMs: number;
  /** Longest a membership change waits for the fencing lock before it tries again later (default 2000). */
  lockTimeoutMs?: number;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

/** A new run of a node: names its database sessions and its lease. */
export function newIncarnation(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * The application_name of a node run's PostgreSQL sessions, by which a survivor terminates
 * them (at most 63 characters, or PostgreSQL would cut it: a long node id is hashed).
 */
export function applicationName(nodeId: string, incarnation: string): string {
  const full = `parley:${nodeId}:${incarnation}`;
  if (full.length <= 63) return full;
  return `parley:${createHash('sha256').update(nodeId).digest('base64url').slice(0, 22)}:${incarnation}`;
}

/** Channel of the NOTIFY sent by every epoch bump; the payload is the schema it happened in. */
const CHANNEL = 'parley_cluster';
/** First key of the lock that lets one survivor at a time remove dead nodes ('prmv'). */
const REMOVE_KEY = 0x70726d76;
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

interface StoredNode {
  id: string;
  url: string;
  inc: string;
}
/** A pool or one of its connections. */
interface Queryable {
  query(sql: string, params: unknown[]): Promise<{ rows: Array<{ n?: number }> }>;
}
interface Lease {
  id: string;
  inc: string;
}

/** Bumps the epoch to the nodes now in cluster_nodes, and tells every listening node. */
const BUMP = `UPDATE cluster_state SET epoch = epoch + 1,
  nodes = (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'url', url, 'inc', incarnation) ORDER BY id), '[]'::jsonb) FROM cluster_nodes)
  WHERE id = 1 RETURNING epoch, nodes, pg_notify('${CHANNEL}', current_schema())`;

/** Renews this node's lease; returns the epoch, who holds this node's id, and the expired leases. */
const RENEW = `WITH renewed AS (
    UPDATE cluster_nodes SET renewed_at = clock_timestamp() WHERE id = $1 AND incarnation = $2 RETURNING id
  )
  SELECT s.epoch,
    (SELECT count(*) FROM renewed)::int AS renewed,
    (SELECT incarnation FROM cluster_nodes WHERE id = $1) AS holder,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'inc', n.incarnation)), '[]'::jsonb) FROM cluster_nodes n
      WHERE n.id <> $1 AND n.renewed_at < clock_timestamp() - $3::int * interval '1 millisecond') AS expired
  FROM cluster_state s WHERE s.id = 1`;

const EXPIRED = `id = $1 AND incarnation = $2 AND renewed_at < clock_timestamp() - $3::int * interval '1 millisecond'`;

const isLockTimeout = (err: unknown): boolean => (err as { code?: string } | null)?.code === '55P03';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function parseNodes(raw: unknown): StoredNode[] {
  if (!Array.isArray(raw)) throw new ParleyError('internal', 'cluster_state.nodes is not a list');
  return raw.map((n: unknown) => {
    const o = n as Partial<StoredNode> | null;
    if (typeof o?.id !== 'string' || typeof o.url !== 'string') throw new ParleyError('internal', 'cluster_state.nodes holds a malformed node');
    return { id: o.id, url: o.url, inc: typeof o.inc === 'string' ? o.inc : '' };
  });
}

type State = 'new' | 'joined' | 'evicted' | 'stopped';

export class PostgresPlacement implements Placement {
  readonly self: string;
  private current: ClusterView = makeView(0, []);
  private ring = new Rendezvous([]);
  /** Whether this run of the node is one of current's nodes (the same id under another run is not). */
  private listed = false;
  private state: State = 'new';
  private readonly callbacks: Array<(prev: ClusterView, next: ClusterView) => void> = [];
  private readonly lockTimeoutMs: number;
  private readonly app: string;
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking: Promise<void> | null = null;
  private reading: Promise<ClusterView> | null = null;
  private queued: Promise<ClusterView> | null = null;
  private listener: pg.Client | null = null;
  private listening: Promise<void> | null = null;
  private schema = '';
  /** Since when (this process's clock) the lease has been renewed without a failure; null after one. */
  private healthySince: number | null = null;

  constructor(private readonly opts: PostgresPlacementOptions) {
    if (!NODE_ID.test(opts.self.id)) throw new ParleyError('invalid', 'node id must be 1 to 64 of A-Z a-z 0-9 _ . -', { field: 'self.id' });
    if (!(opts.nodeTimeoutMs > opts.heartbeatMs) || !(opts.heartbeatMs > 0)) {
      throw new ParleyError('invalid', 'nodeTimeoutMs must exceed heartbeatMs', { field: 'nodeTimeoutMs' });
    }
    this.self = opts.self.id;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 2000;
    this.app = applicationName(opts.self.id, opts.incarnation);
  }

  view(): ClusterView {
    return this.current;
  }

  ownerOf(room: string): NodeRef {
    const owner = this.ring.owner(room);
    if (!owner) throw new ParleyError('unavailable', 'no node of the cluster is registered yet');
    return owner;
  }

  isLocal(room: string): boolean {
    return this.listed && this.ring.owner(room)?.id === this.self;
  }

  onChange(cb: (prev: ClusterView, next: ClusterView) => void): void {
    this.callbacks.push(cb);
  }

  /** Acts on `nodes` of `epoch` from now on, if newer than the view acted on. */
  private apply(epoch: number, stored: StoredNode[]): void {
    if (epoch <= this.current.epoch) return;
    const prev = this.current;
    const next = makeView(epoch, stored);
    this.current = next;
    this.ring = new Rendezvous(next.nodes);
    const wasListed = this.listed;
    this.listed = stored.some((n) => n.id === this.self && n.inc === this.opts.incarnation);
    if (prev.epoch !== next.epoch) this.opts.log.info({ epoch: next.epoch, nodes: next.nodes.map((n) => n.id) }, 'cluster view changed');
    for (const cb of this.callbacks) {
      try {
        cb(prev, next);
      } catch (err) {
        this.opts.log.error({ err }, 'cluster view change handler failed');
      }
    }
    // Removed while running: find out at once (the renewal says whether to join again).
    if (wasListed && !this.listed && this.state === 'joined')
      setImmediate(() => {
        void this.tick();
      });
  }

  refresh(): Promise<ClusterView> {
    // A refresh asked for while a read is in flight may follow a bump that read did not see:
    // it gets the next read, shared by everyone who asks meanwhile.
    if (this.queued) return this.queued;
    if (this.reading) {
      const after = this.reading.then(
        () => undefined,
        () => undefined,
      );
      this.queued = after.then(() => {
        this.queued = null;
        return this.read();
      });
      return this.queued;
    }
    return this.read();
  }

  private read(): Promise<ClusterView> {
    // Assigned before the body's first await returns, so the finally sees it.
    let p: Promise<ClusterView> | undefined = undefined;
    p = (async () => {
      try {
        const { rows } = await this.opts.pool.query<{ epoch: number; nodes: unknown }>('SELECT epoch, nodes FROM cluster_state WHERE id = 1');
        const row = rows[0];
        if (!row) throw new ParleyError('internal', 'cluster_state has no row');
        this.apply(Number(row.epoch), parseNodes(row.nodes));
        return this.current;
      } catch (err) {
        throw toStoreError(err);
      } finally {
        if (this.reading === p) this.reading = null;
      }
    })();
    this.reading = p;
    return p;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('the placement was already started');
    const { rows } = await this.opts.pool.query<{ schema: string }>('SELECT current_schema() AS schema').catch((err: unknown) => {
      throw toStoreError(err);
    });
    this.schema = rows[0]?.schema ?? '';
    // Other nodes may be starting too, or a batch be in flight: the join waits lockTimeoutMs
    // for the fencing lock and tries again. A node frozen with a batch open would hold the lock
    // until its lease expires: between tries, the joining node removes expired nodes itself
    // (ending their sessions), so it is kept out at most about one nodeTimeoutMs.
    const deadline = performance.now() + this.opts.nodeTimeoutMs + 4 * this.lockTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.join(true);
        break;
      } catch (err) {
        if (!isLockTimeout(err) || performance.now() > deadline) throw toStoreError(err);
        await this.removeExpired().catch(() => undefined);
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
    // Just started, and nothing cut it off from the database: it may remove dead nodes at once.
    this.healthySince = performance.now() - this.opts.nodeTimeoutMs;
    await this.listen();
    this.timer = setInterval(() => {
      void this.tick();
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasJoined = this.state === 'joined';
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    await this.listening;
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => undefined);
    if (!wasJoined) return;
    try {
      const next = await this.change(async (c) => {
        const { rowCount } = await c.query('DELETE FROM cluster_nodes WHERE id = $1 AND incarnation = $2', [this.self, this.opts.incarnation]);
        return rowCount === 0 ? null : this.bump(c);
      });
      this.opts.log.info({ epoch: next && next !== 'evicted' ? next.epoch : undefined }, 'left the cluster');
    } catch (err) {
      // Its lease expires and a survivor removes it.
      this.opts.log.warn({ err: (err as Error).message }, 'could not leave the cluster cleanly');
    }
  }

  /**
   * Runs `fn` in a transaction holding the fencing lock exclusive (waiting at most
   * lockTimeoutMs for batches in flight); applies the view it returns.
   */
  private async change(
    fn: (c: pg.PoolClient) => Promise<{ epoch: number; nodes: StoredNode[] } | null | 'evicted'>,
  ): Promise<{ epoch: number; nodes: StoredNode[] } | null | 'evicted'> {
    const out = await transaction(this.opts.pool, async (c) => {
      await c.query("SELECT set_config('lock_timeout', $1, true)", [`${this.lockTimeoutMs}ms`]);
      await c.query(FENCE_EXCLUSIVE_SQL);
      return fn(c);
    });
    if (out && out !== 'evicted') this.apply(out.epoch, out.nodes);
    return out;
  }

  private async bump(c: pg.PoolClient): Promise<{ epoch: number; nodes: StoredNode[] }> {
    const { rows } = await c.query<{ epoch: number; nodes: unknown }>(BUMP);
    const row = rows[0];
    if (!row) throw new ParleyError('internal', 'cluster_state has no row');
    return { epoch: Number(row.epoch), nodes: parseNodes(row.nodes) };
  }

  /** Ends the sessions of a run of a node (a frozen one may hold a batch open). */
  private async terminate(c: Queryable, id: string, inc: string): Promise<number> {
    const { rows } = await c.query(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName(id, inc)],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Adds this node to the cluster. At start it takes over its id from an earlier run (whose
   * sessions it ends first); joining again after a removal, it stays out if another run holds
   * the id.
   */
  private async join(takeover: boolean): Promise<void> {
    if (takeover) {
      const { rows } = await this.opts.pool.query<{ incarnation: string }>('SELECT incarnation FROM cluster_nodes WHERE id = $1', [this.self]);
      const old = rows[0]?.incarnation;
      if (old !== undefined && old !== this.opts.incarnation) {
        const n = await this.terminate(this.opts.pool, this.self, old);
        this.opts.log.warn({ node: this.self, sessions: n }, 'an earlier run of this node had not left the cluster: taking over');
      }
    }
    const out = await this.change(async (c) => {
      if (!takeover) {
        const { rows } = await c.query<{ incarnation: string }>('SELECT incarnation FROM cluster_nodes WHERE id = $1', [this.self]);
        if (rows[0] && rows[0].incarnation !== this.opts.incarnation) return 'evicted';
      }
      await c.query(
        `INSERT INTO cluster_nodes (id, url, incarnation, renewed_at) VALUES ($1, $2, $3, clock_timestamp())
        ON CONFLICT (id) DO UPDATE SET url = excluded.url, incarnation = excluded.incarnation, renewed_at = excluded.renewed_at`,
        [this.self, this.opts.self.url, this.opts.incarnation],
      );
      return this.bump(c);
    });
    if (out === 'evicted') {
      this.evicted();
      return;
    }
    if (this.state === 'stopped') return;
    this.state = 'joined';
    this.opts.log.info({ node: this.self, epoch: out?.epoch }, 'joined the cluster');
  }

  private evicted(): void {
    if (this.state === 'evicted') return;
    this.state = 'evicted';
    this.opts.log.error(
      { node: this.self },
      'another process runs under this node id and took it over: this one owns no room any more (node ids must be unique)',
    );
  }

  /** Every heartbeat: renew the lease, catch up with the epoch, remove dead nodes. */
  private tick(): Promise<void> {
    if (this.ticking || this.state === 'stopped' || this.state === 'new') return this.ticking ?? Promise.resolve();
    const p = this.beat().finally(() => {
      this.ticking = null;
    });
    this.ticking = p;
    return p;
  }

  private async beat(): Promise<void> {
    let r: { epoch: number; renewed: number; holder: string | null; expired: Lease[] };
    try {
      const { rows } = await this.opts.pool.query<{ epoch: number; renewed: number; holder: string | null; expired: Lease[] }>(RENEW, [
        this.self,
        this.opts.incarnation,
        this.opts.nodeTimeoutMs,
      ]);
      r = rows[0]!;
    } catch (err) {
      this.healthySince = null;
      this.opts.log.debug({ err: (err as Error).message }, 'cluster lease not renewed');
      return;
    }
    try {
      if (this.state === 'evicted') {
        if (Number(r.epoch) !== this.current.epoch) await this.refresh();
        return;
      }
      if (r.renewed === 0) {
        // Removed (or taken over): act on the view without this run first, then join again.
        this.healthySince = null;
        await this.refresh();
        if (r.holder !== null && r.holder !== this.opts.incarnation) {
          this.evicted();
          return;
        }
        this.opts.log.warn({ node: this.self }, 'this node was removed from the cluster (its lease expired): joining again');
        await this.join(false);
        this.healthySince = performance.now();
        return;
      }
      this.healthySince ??= performance.now();
      if (Number(r.epoch) !== this.current.epoch) await this.refresh();
      // Only a node that has itself been renewing for a whole timeout judges others: one that
      // comes back from a database outage sees every lease expired, its own included.
      if (performance.now() - this.healthySince < this.opts.nodeTimeoutMs) return;
      for (const dead of r.expired) await this.remove(dead);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'cluster heartbeat failed');
    } finally {
      if (!this.listener && this.state !== 'stopped') await this.listen();
    }
  }

  /** Removes every other node whose lease has expired (by this node's nodeTimeoutMs). */
  private async removeExpired(): Promise<void> {
    const { rows } = await this.opts.pool.query<{ id: string; inc: string }>(
      `SELECT id, incarnation AS inc FROM cluster_nodes WHERE id <> $1 AND renewed_at < clock_timestamp() - $2::int * interval '1 millisecond'`,
      [this.self, this.opts.nodeTimeoutMs],
    );
    for (const dead of rows) await this.remove(dead);
  }

  /**
   * Removes a node whose lease expired: ends its sessions first (a frozen node may hold a
   * batch open, which would hold up the bump), then bumps the epoch without it. One survivor
   * at a time; the lease is checked again under the lock, so a node that came back stays.
   */
  private async remove(dead: Lease): Promise<void> {
    const limit = this.opts.nodeTimeoutMs;
    try {
      const out = await transaction(this.opts.pool, async (c) => {
        await c.query("SELECT set_config('lock_timeout', $1, true)", [`${this.lockTimeoutMs}ms`]);
        const {
          rows: [got],
        } = await c.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${REMOVE_KEY}, hashtext(current_schema())) AS got`);
        if (!got?.got) return null;
        const { rows: still } = await c.query(`SELECT 1 FROM cluster_nodes WHERE ${EXPIRED}`, [dead.id, dead.inc, limit]);
        if (still.length === 0) return null;
        const sessions = await this.terminate(c, dead.id, dead.inc);
        await c.query(FENCE_EXCLUSIVE_SQL);
        const { rowCount } = await c.query(`DELETE FROM cluster_nodes WHERE ${EXPIRED}`, [dead.id, dead.inc, limit]);
        if (rowCount === 0) return null;
        return { sessions, view: await this.bump(c) };
      });
      if (!out) return;
      this.apply(out.view.epoch, out.view.nodes);
      this.opts.log.warn({ node: dead.id, sessions: out.sessions, epoch: out.view.epoch }, 'node removed from the cluster: its lease expired; its rooms moved');
    } catch (err) {
      this.opts.log.warn(
        { node: dead.id, err: (err as Error).message },
        isLockTimeout(err) ? 'removing a dead node waited too long for the fencing lock: trying again at the next heartbeat' : 'removing a dead node failed',
      );
    }
  }

  /** Listens for epoch bumps (a dedicated connection); re-reads the view once listening. */
  private listen(): Promise<void> {
    if (this.listening) return this.listening;
    const p = (async () => {
      const client = new pg.Client(this.opts.pool.options);
      client.on('error', () => {
        /* 'end' follows */
      });
      client.on('end', () => {
        if (this.listener === client) this.listener = null;
      });
      client.on('notification', (n) => {
        if (n.channel === CHANNEL && n.payload === this.schema) this.refresh().catch(() => undefined);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (err) {
        await client.end().catch(() => undefined);
        this.opts.log.debug({ err: (err as Error).message }, 'cluster notifications not listened to yet');
        return;
      }
      if (this.state === 'stopped') {
        await client.end().catch(() => undefined);
        return;
      }
      this.listener = client;
      // Bumps made while nobody listened.
      await this.refresh().catch(() => undefined);
    })().finally(() => {
      this.listening = null;
    });
    this.listening = p;
    return p;
  }
}
