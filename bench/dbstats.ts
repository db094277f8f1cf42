// What PostgreSQL and Redis did for a cluster step, read from their own counters:
//  - statements, execution time and the statements' texts from pg_stat_statements (updated as
//    each statement ends, so a delta is exact);
//  - transactions from pg_stat_database (xact_commit + xact_rollback). Each backend flushes
//    those counters at most once a second, and an idle one up to 10 s later, so they are read
//    as a rate between two moments while the load runs (see ClusterMonitor), not as a delta
//    across the quiet gap after a step;
//  - where the database's backends spend their time: pg_stat_activity sampled every ~10 ms,
//    each active (or idle-in-transaction) backend adding the time since the previous sample to
//    its wait event. Heavyweight lock waits (wait_event_type 'Lock': row, transaction id,
//    relation) are the lock wait. Sampling pg_stat_activity is cheaper than pg_locks (no lock
//    manager partitions taken) and says the same about who waits on a lock;
//  - Redis commands from INFO commandstats;
//  - the CPU of PostgreSQL (postmaster and every backend) and Redis from /proc.
// The monitor's own queries run in the `postgres` database and are left out by database.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { cpuMs, treeCpuMs } from './proc.js';

export interface StatementRow {
  query: string;
  calls: number;
  totalMs: number;
  rows: number;
  sharedBlksHit: number;
  sharedBlksRead: number;
  blkReadMs: number;
  blkWriteMs: number;
  walBytes: number;
}

export interface StatementDelta extends StatementRow {
  meanMs: number;
  /** Share of the step's execution time in this statement, %. */
  timePct: number;
  callsPerMessage: number;
}

export interface DbStepStats {
  statements: number;
  execMs: number;
  /** Transactions per second while the load ran (pg_stat_database), and per acked message. */
  xactPerSec: number | null;
  xactPerMessage: number | null;
  /** Backend-milliseconds waiting on heavyweight locks (sampled). */
  lockWaitMs: number;
  /** Backend-milliseconds by what the backends were doing (sampled): 'CPU' is running, no wait. */
  waits: Record<string, number>;
  samples: number;
  /** The statements that took the most execution time in the step. */
  top: StatementDelta[];
  redisCommands: number;
  /** Calls by Redis command (INFO commandstats; the monitor's own `info` left out). */
  redisByCommand: Record<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** Samples the backends of one database until stopped. */
class WaitSampler {
  readonly waits: Record<string, number> = {};
  samples = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(client: pg.Client, oid: number, intervalMs: number) {
    // A query that fails (the server going away at the end of a run) ends the sampling.
    this.done = (async () => {
      let last = performance.now();
      while (this.running) {
        // Prepared once (named), straight from the function behind the view: no joins, no planning.
        const { rows } = await client.query<{ t: string | null; e: string | null; s: string; n: number }>({
          name: 'bench-wait-sample',
          text: `SELECT wait_event_type AS t, wait_event AS e, state AS s, count(*)::int AS n FROM pg_stat_get_activity(NULL)
                 WHERE datid = $1 AND backend_type = 'client backend' AND state IN ('active', 'idle in transaction')
                 GROUP BY 1, 2, 3`,
          values: [oid],
        });
        const now = performance.now();
        // A late sample stands for at most 100 ms: a stall of the sampler is not the database's time.
        const dt = Math.min(100, now - last);
        last = now;
        this.samples++;
        for (const r of rows) {
          const key = r.s === 'idle in transaction' ? 'idle in transaction' : r.t === null ? 'CPU' : `${r.t}:${r.e}`;
          this.waits[key] = (this.waits[key] ?? 0) + r.n * dt;
        }
        await sleep(Math.max(0, intervalMs - (performance.now() - now)));
      }
    })().catch(() => {
      this.running = false;
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

export interface PgCounters {
  statements: Map<string, StatementRow>;
  xacts: number;
}

/** A monitoring connection to the PostgreSQL that serves the cluster, for one database at a time. */
export class PgMonitor {
  private oid = 0;
  /** Backends of this monitor (its own CPU is not the cluster's), and the CPU of those that have ended. */
  private readonly own = new Set<number>();
  private ownEndedMs = 0;

  private constructor(
    private readonly client: pg.Client,
    private readonly dataDir: string,
    pid: number,
  ) {
    this.own.add(pid);
  }

  /** `adminUrl` names the `postgres` database; pg_stat_statements is created there. */
  static async open(adminUrl: string, dataDir: string): Promise<PgMonitor> {
    const client = new pg.Client({ connectionString: adminUrl, application_name: 'bench-monitor' });
    client.on('error', () => {
      /* the next query reports it */
    });
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    return new PgMonitor(client, dataDir, await backendPid(client));
  }

  /** Creates a fresh database for a run and watches it from now on. */
  async createDatabase(name: string): Promise<void> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${name}`);
    await this.client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await this.client.query(`CREATE DATABASE "${name}"`);
    const { rows } = await this.client.query<{ oid: number }>('SELECT oid::int AS oid FROM pg_database WHERE datname = $1', [name]);
    this.oid = rows[0]!.oid;
  }

  /**
   * Setup (connections, rooms, members) is not measured: it may commit without waiting for
   * the WAL flush. Every session takes the change at its next command.
   */
  async durableCommits(on: boolean): Promise<void> {
    await this.client.query(on ? 'ALTER SYSTEM RESET synchronous_commit' : 'ALTER SYSTEM SET synchronous_commit = off');
    await this.client.query('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 200));
  }

  async dropDatabase(name: string): Promise<void> {
    await this.client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }

  async counters(): Promise<PgCounters> {
    const { rows } = await this.client.query<{ id: string; query: string; j: Record<string, number | string> }>(
      `SELECT queryid::text AS id, query, to_jsonb(s) AS j FROM pg_stat_statements s WHERE dbid = $1`,
      [this.oid],
    );
    const statements = new Map<string, StatementRow>();
    for (const r of rows) {
      const n = (...keys: string[]): number => Number(keys.map((k) => r.j[k]).find((v) => v !== undefined && v !== null) ?? 0);
      statements.set(r.id, {
        query: r.query.replace(/\s+/g, ' ').trim(),
        calls: n('calls'),
        totalMs: n('total_exec_time'),
        rows: n('rows'),
        sharedBlksHit: n('shared_blks_hit'),
        sharedBlksRead: n('shared_blks_read'),
        // Renamed in PostgreSQL 17.
        blkReadMs: n('blk_read_time', 'shared_blk_read_time'),
        blkWriteMs: n('blk_write_time', 'shared_blk_write_time'),
        walBytes: n('wal_bytes'),
      });
    }
    return { statements, xacts: await this.xacts() };
  }

  async xacts(): Promise<number> {
    const { rows } = await this.client.query<{ x: string }>('SELECT (xact_commit + xact_rollback)::text AS x FROM pg_stat_database WHERE datid = $1', [
      this.oid,
    ]);
    return Number(rows[0]?.x ?? 0);
  }

  /** Starts sampling the database's backends on a connection of its own. */
  async sampler(adminUrl: string, intervalMs = 10): Promise<{ stop(): Promise<{ waits: Record<string, number>; samples: number }> }> {
    const c = new pg.Client({ connectionString: adminUrl, application_name: 'bench-sampler' });
    c.on('error', () => {
      /* the sampler's query reports it */
    });
    await c.connect();
    const pid = await backendPid(c);
    this.own.add(pid);
    const s = new WaitSampler(c, this.oid, intervalMs);
    return {
      stop: async () => {
        try {
          await s.stop();
        } finally {
          this.ownEndedMs += safeCpuMs(pid);
          this.own.delete(pid);
          await c.end().catch(() => undefined);
        }
        return { waits: s.waits, samples: s.samples };
      },
    };
  }

  /**
   * CPU of the server for the cluster: the postmaster and its backends, live and gone, less
   * this monitor's own backends (the sampler costs PostgreSQL a few % of a core).
   */
  cpuMs(): number {
    const total = treeCpuMs(Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]));
    return total - this.ownEndedMs - [...this.own].reduce((a, pid) => a + safeCpuMs(pid), 0);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

async function backendPid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

function safeCpuMs(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0; // already gone
  }
}

/** Counters of the Redis that serves the cluster. */
export class RedisMonitor {
  readonly pid: number;

  private constructor(
    private readonly client: Redis,
    pid: number,
  ) {
    this.pid = pid;
  }

  static async open(url: string): Promise<RedisMonitor> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => {
      /* the next command reports it */
    });
    await client.connect();
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
    return new RedisMonitor(client, pid);
  }

  /** Forgets every key and counter: a run starts from an empty Redis. */
  async reset(): Promise<void> {
    await this.client.flushall();
    await this.client.config('RESETSTAT');
  }

  async commands(): Promise<Map<string, number>> {
    const info = await this.client.info('commandstats');
    const out = new Map<string, number>();
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out.set(m[1]!, Number(m[2]));
    return out;
  }

  cpuMs(): number {
    return cpuMs(this.pid);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/** A step's PostgreSQL and Redis work, from counters read before and after it. */
export function stepStats(
  pg0: PgCounters,
  pg1: PgCounters,
  r0: Map<string, number>,
  r1: Map<string, number>,
  sampled: { waits: Record<string, number>; samples: number },
  xactRate: number | null,
  acked: number,
  ackedPerSec: number,
): DbStepStats {
  const deltas: StatementDelta[] = [];
  for (const [id, b] of pg1.statements) {
    const a = pg0.statements.get(id);
    const calls = b.calls - (a?.calls ?? 0);
    if (calls <= 0) continue;
    deltas.push({
      query: b.query.slice(0, 300),
      calls,
      totalMs: b.totalMs - (a?.totalMs ?? 0),
      rows: b.rows - (a?.rows ?? 0),
      sharedBlksHit: b.sharedBlksHit - (a?.sharedBlksHit ?? 0),
      sharedBlksRead: b.sharedBlksRead - (a?.sharedBlksRead ?? 0),
      blkReadMs: b.blkReadMs - (a?.blkReadMs ?? 0),
      blkWriteMs: b.blkWriteMs - (a?.blkWriteMs ?? 0),
      walBytes: b.walBytes - (a?.walBytes ?? 0),
      meanMs: 0,
      timePct: 0,
      callsPerMessage: 0,
    });
  }
  const execMs = deltas.reduce((s, d) => s + d.totalMs, 0);
  for (const d of deltas) {
    d.meanMs = round(d.totalMs / d.calls);
    d.timePct = execMs > 0 ? round((d.totalMs / execMs) * 100, 1) : 0;
    d.callsPerMessage = acked > 0 ? round(d.calls / acked) : 0;
    d.totalMs = round(d.totalMs, 1);
    d.blkReadMs = round(d.blkReadMs, 1);
    d.blkWriteMs = round(d.blkWriteMs, 1);
  }
  deltas.sort((x, y) => y.totalMs - x.totalMs);
  const redisByCommand: Record<string, number> = {};
  for (const [cmd, calls] of r1) {
    const d = calls - (r0.get(cmd) ?? 0);
    if (d > 0) redisByCommand[cmd] = d;
  }
  const waits = Object.fromEntries(
    Object.entries(sampled.waits)
      .map(([k, v]): [string, number] => [k, Math.round(v)])
      .sort((a, b) => b[1] - a[1]),
  );
  return {
    statements: deltas.reduce((s, d) => s + d.calls, 0),
    execMs: round(execMs, 1),
    xactPerSec: xactRate === null ? null : Math.round(xactRate),
    xactPerMessage: xactRate === null || ackedPerSec <= 0 ? null : round(xactRate / ackedPerSec),
    lockWaitMs: Math.round(
      Object.entries(sampled.waits)
        .filter(([k]) => k.startsWith('Lock:'))
        .reduce((s, [, v]) => s + v, 0),
    ),
    waits,
    samples: sampled.samples,
    top: deltas.slice(0, 10),
    redisCommands: Object.values(redisByCommand).reduce((s, v) => s + v, 0),
    redisByCommand,
  };
}
