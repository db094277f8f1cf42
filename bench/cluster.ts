// The cluster workload: Parley's scale-out measured on one machine. A throwaway PostgreSQL
// (pg_stat_statements loaded, durable commits) and Redis serve N nodes, each node a child
// process in its own cgroup with a fixed CPU quota; PostgreSQL, Redis and the load generator
// stay outside the quotas. For each room shape and node count, a rate sweep finds the knee:
// the highest acknowledged rate with ack p99 <= 100 ms, no timeouts and nothing lost. Each
// step also records what PostgreSQL and Redis did per message and where the machine's CPU
// went, and flags a step in which the machine itself ran out of CPU.
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { startRedis, type RedisServer } from '../tools/devservers/redis.js';
import { cpuQuotas, type CpuGroup, type Quotas, type Throttling } from './cgroup.js';
import { PgMonitor, RedisMonitor, stepStats, type DbStepStats, type PgCounters } from './dbstats.js';
import type { Pool } from './pool.js';
import { newHistogram, summarize } from './hist.js';
import { cpuMs, memory } from './proc.js';
import { connectAndSetup, quiet, runStep, SETTLE_MS, workerOfConn, type BenchOptions, type RunResult, type StepResult } from './run.js';
import { startTarget, SECRET, type RunningTarget } from './targets.js';
import { CLUSTER_SHAPES, type ClusterShape } from './types.js';
import { clusterPlan } from './workloads.js';

/**
 * CPU quota per node, in cores. Measured per message, PostgreSQL, Redis and the load generator
 * together cost about twice a node's CPU, so 4 nodes at 0.2 core that scaled perfectly would
 * leave about a tenth of this 2-core machine idle; 0.25 would saturate it (docs/benchmarks.md).
 */
export const DEFAULT_NODE_CPU = 0.2;
export const DEFAULT_NODE_COUNTS = [1, 2, 3, 4];
/** The knee's bounds: a step passes with ack p99 at most this, and no timeouts. */
export const KNEE_ACK_P99_MS = 100;
/** Under this share of the machine's CPU idle, a step measured the machine, not the nodes. */
export const SATURATED_IDLE_PCT = 10;
/** Shortest window over which transactions are counted (see dbstats.ts). */
const MIN_XACT_WINDOW_MS = 3000;
/** First rate tried per node when nothing is known yet (msg/s). */
const START_RATE_PER_NODE = 100;

export interface ClusterStepStats extends DbStepStats {
  offered: number;
  /** Why the step is above the knee; absent when it passed. */
  failed?: string;
  /**
   * A second run of a step that failed on its ack p99 alone: the step it repeats, and the p99 of
   * both runs' acknowledgements together, on which the rate was judged.
   */
  repeats?: { step: string; ackP99Ms: number };
  perMessage: {
    statements: number;
    xacts: number | null;
    lockWaitMs: number;
    execMs: number;
    redisCommands: number;
    /** CPU time per acknowledged message, µs: the nodes together, PostgreSQL, Redis, the load generator. */
    nodesCpuUs: number | null;
    postgresCpuUs: number | null;
    redisCpuUs: number | null;
    loadGenCpuUs: number | null;
  };
  cpu: {
    /** The nodes together, in % of one core, and in % of their quotas. */
    nodesPct: number;
    quotaUsedPct: number;
    /** Each node's CPU, in % of one core (node 1 first): how evenly the work was spread. */
    eachNodePct: number[];
    /** Quota periods the nodes ran in (summed), and the share in which a node used its whole quota (its CPU was the limit). */
    periods: number;
    throttledPct: number;
    postgresPct: number;
    redisPct: number;
    loadGenPct: number;
    otherPct: number;
    machineIdlePct: number;
  };
  /**
   * The nodes' own view of the step, from their /metrics: the longest event-loop delay of any
   * node (ms), and garbage collection summed over the nodes (pauses, ms). A step that fails on
   * its p99 while p50 stays low shows here whether a node stalled and whether GC took it.
   */
  runtime: { loopDelayMaxMs: number | null; majorGcs: number; majorGcMs: number; minorGcMs: number } | null;
  /** The machine had no CPU left: the figure measures the machine, not Parley. */
  saturated: boolean;
}

/** The figures of one node's /metrics that `runtime` is made of (null: not reachable). */
interface NodeRuntime {
  loopDelayMaxS: number;
  gc: Record<string, { sum: number; count: number }>;
}

async function nodeRuntime(port: number): Promise<NodeRuntime | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return null;
    const out: NodeRuntime = { loopDelayMaxS: 0, gc: {} };
    for (const line of (await res.text()).split('\n')) {
      const m = /^(nodejs_eventloop_lag_max_seconds|nodejs_gc_duration_seconds_(?:sum|count))(?:\{kind="(\w+)"\})? ([\d.e+-]+)$/.exec(line);
      if (!m) continue;
      const v = Number(m[3]);
      if (m[1] === 'nodejs_eventloop_lag_max_seconds') out.loopDelayMaxS = v;
      else if (m[2]) {
        const g = (out.gc[m[2]] ??= { sum: 0, count: 0 });
        if (m[1]!.endsWith('_sum')) g.sum = v;
        else g.count = v;
      }
    }
    return out;
  } catch {
    return null;
  }
}

/** Settle steps run at most after the first while a node has made no major collection since setup. */
const SETTLE_MAX_EXTRA = 3;

/** Each node's major collections so far (null: its /metrics did not answer). */
async function majorCounts(ports: number[]): Promise<Array<number | null>> {
  const rt = await Promise.all(ports.map((port) => nodeRuntime(port)));
  return rt.map((r) => (r ? (r.gc.major?.count ?? 0) : null));
}

/**
 * Runtime figures over a step from two scrapes of every node. The event-loop delay maximum is
 * reset by each scrape, so the second one covers the step alone.
 */
function runtimeOver(before: Array<NodeRuntime | null>, after: Array<NodeRuntime | null>): ClusterStepStats['runtime'] {
  if (after.some((a) => a === null) || before.some((b) => b === null)) return null;
  const gc = (kind: string, f: 'sum' | 'count'): number => after.reduce((a, x, i) => a + (x!.gc[kind]?.[f] ?? 0) - (before[i]!.gc[kind]?.[f] ?? 0), 0);
  return {
    loopDelayMaxMs: round(Math.max(...after.map((a) => a!.loopDelayMaxS)) * 1000, 1),
    majorGcs: gc('major', 'count'),
    majorGcMs: round(gc('major', 'sum') * 1000, 1),
    minorGcMs: round(gc('minor', 'sum') * 1000, 1),
  };
}

export interface ClusterRunInfo {
  shape: ClusterShape;
  nodes: number;
  nodeCpu: number;
  /** How the quotas were checked before the runs (a busy loop in a group). */
  quota: { cgroup: 1 | 2; checkedCores: number; busyLoopUsedCores: number };
  /** Name of the highest passing step, or null when none passed. */
  knee: string | null;
  /** throughput(N) / (N x throughput(1)) for the same shape. */
  scaleRatio: number | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
/** Rates in steps of about 2%, so sweep figures read easily. */
const niceRate = (x: number): number => {
  const p = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return Math.max(1, Math.round(x / p) * p);
};

/** Why a step is above the knee, or null when it is at or below it. */
export function aboveKnee(r: StepResult, offered: number): string | null {
  if (r.lost || r.duplicated || r.outOfOrder) return `deliveries lost ${r.lost}, duplicated ${r.duplicated}, out of order ${r.outOfOrder}`;
  if (r.timeouts) return `${r.timeouts} sends not acknowledged within 10 s`;
  if (r.errors) return `${r.errors} sends failed (${r.firstError})`;
  if (!r.drained) return 'deliveries did not drain';
  const p99 = r.ack?.p99Ms ?? Infinity;
  if (p99 > KNEE_ACK_P99_MS) return `ack p99 ${p99} ms > ${KNEE_ACK_P99_MS} ms`;
  if (r.ackedPerSec < offered * 0.95) return `${r.ackedPerSec}/s acknowledged of ${offered}/s offered`;
  return null;
}

/** Whether the step is above the knee on its ack p99 and on nothing else. */
export function failedOnP99Alone(r: StepResult, offered: number): boolean {
  if (!r.ack || r.ack.p99Ms <= KNEE_ACK_P99_MS) return false;
  return aboveKnee({ ...r, ack: { ...r.ack, p99Ms: 0 } }, offered) === null;
}

/** The ack p99 of two runs of one step taken together, ms. */
export function p99Together(a: StepResult, b: StepResult): number {
  if (!a.ackHistogram || !b.ackHistogram) return Math.max(a.ack?.p99Ms ?? Infinity, b.ack?.p99Ms ?? Infinity);
  const h = newHistogram();
  h.add(a.ackHistogram);
  h.add(b.ackHistogram);
  return summarize(h)!.p99Ms;
}

/**
 * The next rate of a sweep: doubles until a step fails, halves until one passes, then
 * bisects (geometrically) between the highest pass and the lowest failure until they are
 * within `resolution` of each other. Null when the sweep is over.
 */
export function nextRate(lo: number, hi: number, last: number, resolution: number, minRate = 1): number | null {
  if (hi === Infinity) return niceRate(last * 2);
  if (lo === 0) return last / 2 < minRate ? null : niceRate(last / 2);
  if (hi / lo <= resolution) return null;
  const r = niceRate(Math.sqrt(lo * hi));
  return r <= lo || r >= hi ? null : r;
}

interface Servers {
  pg: PgServer;
  redis: RedisServer;
  pgMon: PgMonitor;
  redisMon: RedisMonitor;
  adminUrl: string;
}

/** Runs every (shape, node count) of the cluster workload; one RunResult each. */
export async function runCluster(o: BenchOptions, pool: Pool, stamp: string): Promise<RunResult[]> {
  const counts = o.clusterNodes ?? DEFAULT_NODE_COUNTS;
  const shapes = o.shapes ?? [...CLUSTER_SHAPES];
  const cores = o.nodeCpu ?? DEFAULT_NODE_CPU;
  const say = (line: string, final = false): void => o.progress?.(`[cluster] ${line}`, final);
  if (!(cores > 0 && cores <= availableParallelism()))
    throw new Error(`cluster: a node's CPU share must be above 0 and at most ${availableParallelism()} cores, got ${cores}`);
  say(`checking CPU quotas (a busy loop in a ${cores}-core cgroup)`);
  // Refuses, with the reason, where quotas cannot be made or are not enforced.
  const quotas = await cpuQuotas(cores);
  say(`CPU quotas work (cgroup v${quotas.version}): a busy loop in a ${quotas.check.cores}-core group used ${quotas.check.usedCores} core`, true);

  let servers: Servers | null = null;
  const live = new Set<RunningTarget>();
  const groups = new Set<CpuGroup>();
  const cleanup = async (): Promise<void> => {
    await Promise.all([...live].map((t) => t.stop().catch(() => undefined)));
    live.clear();
    await Promise.all([...groups].map((g) => g.remove().catch(() => undefined)));
    groups.clear();
    if (servers) {
      const s = servers;
      servers = null;
      await s.pgMon.close();
      await s.redisMon.close();
      await Promise.all([s.pg.destroy().catch(() => undefined), s.redis.destroy().catch(() => undefined)]);
    }
  };
  // Ctrl-C or a kill: stop the nodes, PostgreSQL and Redis and remove the groups before
  // leaving. The signal may come twice (from the terminal and from npm): the cleanup runs once.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the nodes, PostgreSQL and Redis`, true);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  // Last resort at exit (an uncaught error): nothing of the run may outlive the harness.
  const onExit = (): void => {
    for (const t of live)
      try {
        process.kill(t.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    if (servers) {
      try {
        process.kill(servers.redisMon.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      rmSync(servers.redis.dir, { recursive: true, force: true });
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', onExit);

  const runs: RunResult[] = [];
  try {
    say('starting PostgreSQL and Redis');
    servers = await startServers();
    for (const shape of shapes) {
      let baseline: number | null = null;
      for (const n of counts) {
        // Where to start: half the rate that N nodes would reach if they scaled perfectly.
        const hint = baseline !== null ? (baseline * n) / 2 : null;
        const run = await runNodes(shape, n, cores, quotas, servers, o, pool, stamp, hint, live, groups);
        runs.push(run);
        const knee = kneeStep(run);
        if (n === 1 && knee) baseline = knee.ackedPerSec;
      }
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
    process.removeListener('exit', onExit);
  }
  // The scale ratio: each shape's knee against N times its one-node knee.
  for (const run of runs) {
    const one = runs.find((r) => r.cluster!.shape === run.cluster!.shape && r.cluster!.nodes === 1);
    const k1 = one && kneeStep(one);
    const k = kneeStep(run);
    run.cluster!.scaleRatio = k1 && k ? round(k.ackedPerSec / (run.cluster!.nodes * k1.ackedPerSec), 2) : null;
  }
  return runs;
}

export function kneeStep(run: RunResult): StepResult | undefined {
  return run.cluster?.knee ? run.steps.find((s) => s.name === run.cluster!.knee) : undefined;
}

async function startServers(): Promise<Servers> {
  const [pg, redis] = await Promise.all([
    startPostgres({
      settings: {
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'top',
        'pg_stat_statements.max': '10000',
        track_io_timing: 'on',
        // Durable commits, as a deployment runs them (the throwaway server's default is fsync off).
        fsync: 'on',
        synchronous_commit: 'on',
        full_page_writes: 'on',
        shared_buffers: '256MB',
      },
    }),
    startRedis(),
  ]);
  try {
    const adminUrl = pg.url.replace(/\/[^/]+$/, '/postgres');
    const [pgMon, redisMon] = await Promise.all([PgMonitor.open(adminUrl, join(pg.dir, 'data')), RedisMonitor.open(redis.url)]);
    return { pg, redis, pgMon, redisMon, adminUrl };
  } catch (err) {
    await Promise.all([pg.destroy(), redis.destroy()]);
    throw err;
  }
}

async function runNodes(
  shape: ClusterShape,
  n: number,
  cores: number,
  quotas: Quotas,
  sv: Servers,
  o: BenchOptions,
  p: Pool,
  stamp: string,
  hint: number | null,
  live: Set<RunningTarget>,
  groups: Set<CpuGroup>,
): Promise<RunResult> {
  const plan = clusterPlan(shape, n, o);
  const tag = `cluster/${shape}/${n} node${n > 1 ? 's' : ''}`;
  const say = (line: string, final = false): void => o.progress?.(`[${tag}] ${line}`, final);
  const result: RunResult = {
    workload: 'cluster',
    target: 'parley',
    label: 'parley',
    node: process.versions.node,
    description: `${plan.description}, ${cores} core per node`,
    params: { ...plan.params, nodeCpu: cores },
    connections: plan.conns.length,
    setup: { connectS: 0, connectsPerSec: 0, connectMs: null, roomsS: 0, failed: 0 },
    memory: { rssBeforeMiB: 0, rssAfterSetupMiB: 0, rssAfterMiB: 0, peakMiB: 0, perConnectionKiB: null },
    steps: [],
    cluster: {
      shape,
      nodes: n,
      nodeCpu: cores,
      knee: null,
      scaleRatio: null,
      quota: { cgroup: quotas.version, checkedCores: quotas.check.cores, busyLoopUsedCores: quotas.check.usedCores },
    },
  };
  const db = `bench_${shape}_${n}`;
  const nodes: RunningTarget[] = [];
  const mine: CpuGroup[] = [];
  try {
    say('starting the nodes');
    await sv.pgMon.createDatabase(db);
    await sv.redisMon.reset();
    // Start-up and setup are not measured: they run without quotas and commit without waiting
    // for the WAL; the quotas and durable commits apply from the warm-up on.
    await sv.pgMon.durableCommits(false);
    const logBase = join(o.outDir, 'logs', `${stamp.replace(/[:.]/g, '-')}-cluster-${shape}-${n}`);
    const start = async (i: number): Promise<RunningTarget> => {
      const t = await startTarget('parley', {
        logFile: `${logBase}-node${i + 1}.log`,
        ...(o.profile ? { profileDir: join(o.outDir, 'profiles', `${stamp.replace(/[:.]/g, '-')}-cluster-${shape}-${n}-node${i + 1}`) } : {}),
        nodeFlags: o.nodeFlags,
        // Several nodes starting at once on a busy machine, the first one creating the schema.
        startTimeoutMs: 60_000,
        env: {
          PARLEY_STORE_POSTGRES_URL: sv.pg.url.replace(/\/[^/]+$/, `/${db}`),
          PARLEY_BUS_REDIS_URL: sv.redis.url,
          PARLEY_CLUSTER_NODE_ID: `node-${i + 1}`,
        },
      });
      live.add(t);
      nodes[i] = t;
      return t;
    };
    // Migrations run under an advisory lock, so the nodes start together; all are awaited, so
    // none is still starting when a failed run stops them.
    const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => start(i)));
    const failed = started.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
    const pids = nodes.map((t) => t.pid);
    result.memory.rssBeforeMiB = round(
      pids.reduce((a, pid) => a + memoryOf(pid).rss, 0),
      1,
    );

    result.setup = await connectAndSetup(p, plan, { name: 'parley', port: nodes[0]!.port, ports: nodes.map((t) => t.port), secret: SECRET }, o, say, pids);
    result.memory.rssAfterSetupMiB = round(
      pids.reduce((a, pid) => a + memoryOf(pid).rss, 0),
      1,
    );
    await sv.pgMon.durableCommits(true);
    // A backend flushes its transaction counters at most once a second, and an idle one 10 s
    // after its last statement: what setup left pending must not land in the first step's count.
    if (plan.stepMs >= MIN_XACT_WINDOW_MS + 1100) {
      say('waiting 11 s for PostgreSQL to flush the counters of setup');
      await sleep(11_000);
    }
    for (let i = 0; i < n; i++) {
      const g = quotas.group(`${shape}-${n}-node${i + 1}`, cores);
      groups.add(g);
      mine.push(g);
      g.add(pids[i]!);
    }
    await quiet(pids);

    const measured = { pids, infraCpuMs: () => sv.pgMon.cpuMs() + sv.redisMon.cpuMs() };
    const workerOf = workerOfConn(p);
    let id = 0;
    const fixed = o.rates;
    let rate = fixed?.[0] ?? niceRate(hint ?? START_RATE_PER_NODE * n);
    if (o.warmupMs > 0) {
      const majors0 = await majorCounts(nodes.map((t) => t.port));
      say('warming up');
      await runStep(p, measured, { ...plan.stepAt(rate), name: 'warmup', warmup: true, durationMs: o.warmupMs, id: id++ }, workerOf, say, 0);
      // As in the other workloads: the memory reducer's major collections come 8-16 s after
      // setup's allocation ends, and without this landed in the first measured step.
      if (!o.quick) {
        await runStep(p, measured, { ...plan.stepAt(rate), name: 'settle', warmup: true, durationMs: SETTLE_MS, id: id++ }, workerOf, say, 0);
        // A node's first major collection after setup (the garbage of thousands of connections
        // authenticating and joining) otherwise lands in the first measured steps, on every node
        // at about once, and fails a step the next run of passes easily. Steady-state collections
        // still fall in the steps.
        for (let extra = 0; extra < SETTLE_MAX_EXTRA; extra++) {
          const now = await majorCounts(nodes.map((t) => t.port));
          if (now.every((c, i) => c === null || majors0[i] === null || c > majors0[i]!)) break;
          say('settling until every node has made its first major collection since setup');
          await runStep(p, measured, { ...plan.stepAt(rate), name: 'settle', warmup: true, durationMs: SETTLE_MS, id: id++ }, workerOf, say, 0);
        }
      }
    }
    let lo = 0;
    let hi = Infinity;
    const maxSteps = o.quick ? 4 : 9;
    const resolution = o.quick ? 1.5 : 1.1;
    const ports = nodes.map((t) => t.port);
    const measure = (spec: Parameters<typeof runStep>[2]): Promise<StepResult> =>
      measuredStep(p, measured, spec, workerOf, say, o.quietWaitMs, sv, mine, cores, ports);
    for (let k = 0; k < (fixed?.length ?? maxSteps); k++) {
      await quiet(pids);
      const s = { ...plan.stepAt(rate), id: id++ };
      let r = await measure(s);
      result.steps.push(r);
      let why = r.cluster!.failed;
      let knee = s.name;
      if (why && failedOnP99Alone(r, rate)) {
        // One stall of a few hundred ms in a 10 s step is enough to lift its p99 over the
        // limit; the rate is judged again on twice the acknowledgements.
        say(`${s.name}: ${why}; measuring the same rate again`, true);
        await quiet(pids);
        const again = await measure({ ...s, name: `${s.name} again`, id: id++ });
        result.steps.push(again);
        why = again.cluster!.failed;
        if (!why || failedOnP99Alone(again, rate)) {
          const both = p99Together(r, again);
          again.cluster!.repeats = { step: s.name, ackP99Ms: both };
          why = both > KNEE_ACK_P99_MS ? `ack p99 of both runs ${both} ms > ${KNEE_ACK_P99_MS} ms` : undefined;
          if (why) again.cluster!.failed = why;
          else delete again.cluster!.failed;
        }
        knee = again.name;
        r = again;
      }
      say(
        `${r.name}: ${why ? `above the knee (${why})` : `acked ${r.ackedPerSec}/s, ack p99 ${r.cluster!.repeats ? `of both runs ${r.cluster!.repeats.ackP99Ms}` : r.ack?.p99Ms} ms`}` +
          `${r.cluster!.saturated ? `, machine saturated (idle ${r.machineIdlePct}%)` : ''}`,
        true,
      );
      if (why) hi = Math.min(hi, rate);
      else if (rate > lo) {
        lo = rate;
        result.cluster!.knee = knee;
      }
      const next = fixed ? (why ? null : (fixed[k + 1] ?? null)) : nextRate(lo, hi, rate, resolution);
      if (next === null) break;
      rate = next;
    }
    if (!result.cluster!.knee) result.stoppedAt = `no step passed (ack p99 <= ${KNEE_ACK_P99_MS} ms, no timeouts)`;
    const rss = pids.map((pid) => memoryOf(pid));
    result.memory.rssAfterMiB = round(
      rss.reduce((a, m) => a + m.rss, 0),
      1,
    );
    result.memory.peakMiB = round(
      rss.reduce((a, m) => a + m.hwm, 0),
      1,
    );
    say('done', true);
  } catch (err) {
    result.error = (err as Error).message;
    say(`failed: ${result.error}`, true);
  } finally {
    await p.reset().catch(() => undefined);
    await Promise.all(
      nodes.map(async (t) => {
        await t.stop().catch(() => undefined);
        live.delete(t);
      }),
    );
    for (const g of mine) {
      await g.remove().catch(() => undefined);
      groups.delete(g);
    }
    await sv.pgMon.dropDatabase(db).catch(() => undefined);
  }
  return result;
}

function memoryOf(pid: number): { rss: number; hwm: number } {
  try {
    const m = memory(pid);
    return { rss: m.rssKiB / 1024, hwm: m.hwmKiB / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** One sweep step with PostgreSQL, Redis, quota and machine figures around it. */
async function measuredStep(
  p: Pool,
  measured: { pids: number[]; infraCpuMs: () => number },
  s: Parameters<typeof runStep>[2],
  workerOf: (c: number) => number,
  say: (l: string) => void,
  quietWaitMs: number,
  sv: Servers,
  groups: CpuGroup[],
  cores: number,
  ports: number[],
): Promise<StepResult> {
  let rt0: Array<NodeRuntime | null> = [];
  let rt1: Array<NodeRuntime | null> = [];
  let pg0!: PgCounters;
  let pg1!: PgCounters;
  let r0!: Map<string, number>;
  let r1!: Map<string, number>;
  let th0: Throttling[] = [];
  let th1: Throttling[] = [];
  let pgCpu0 = 0;
  let redisCpu0 = 0;
  let pgCpu = 0;
  let redisCpu = 0;
  let gen0 = process.cpuUsage();
  let genCpu = 0;
  let each0: number[] = [];
  let each: number[] = [];
  let t0 = 0;
  let wall = 0;
  let sampler!: Awaited<ReturnType<PgMonitor['sampler']>>;
  let sampled = { waits: {} as Record<string, number>, samples: 0 };
  // Transactions are read as a rate under load: from a second in until just before sending
  // ends. Backends flush those counters about once a second, so shorter steps get none.
  const windowed: Array<{ t: number; x: number; acked: number }> = [];
  const timers: NodeJS.Timeout[] = [];
  const mark = (): void => {
    const t = performance.now();
    const acked = p.totals().acked;
    void sv.pgMon.xacts().then(
      (x) => windowed.push({ t, x, acked }),
      () => undefined,
    );
  };
  const r = await runStep(p, measured, s, workerOf, say, quietWaitMs, {
    async begin() {
      [pg0, r0, rt0] = await Promise.all([sv.pgMon.counters(), sv.redisMon.commands(), Promise.all(ports.map(nodeRuntime))]);
      th0 = groups.map((g) => g.throttling());
      sampler = await sv.pgMon.sampler(sv.adminUrl);
      pgCpu0 = sv.pgMon.cpuMs();
      redisCpu0 = sv.redisMon.cpuMs();
      gen0 = process.cpuUsage();
      each0 = measured.pids.map(cpuMs);
      t0 = performance.now();
      if (s.durationMs >= MIN_XACT_WINDOW_MS + 1100) timers.push(setTimeout(mark, 1000), setTimeout(mark, s.durationMs - 100));
    },
    async end() {
      pgCpu = sv.pgMon.cpuMs() - pgCpu0;
      redisCpu = sv.redisMon.cpuMs() - redisCpu0;
      const g = process.cpuUsage(gen0);
      genCpu = (g.user + g.system) / 1000;
      wall = (performance.now() - t0) / 1000;
      each = measured.pids.map((pid, i) => cpuMs(pid) - each0[i]!);
      for (const t of timers) clearTimeout(t);
      sampled = await sampler.stop();
      th1 = groups.map((g) => g.throttling());
      [pg1, r1, rt1] = await Promise.all([sv.pgMon.counters(), sv.redisMon.commands(), Promise.all(ports.map(nodeRuntime))]);
    },
  });
  const offered = s.rate as number;
  let xactRate: number | null = null;
  let ackedRate = r.ackedPerSec;
  if (windowed.length === 2) {
    const [a, b] = windowed.sort((x, y) => x.t - y.t) as [(typeof windowed)[0], (typeof windowed)[0]];
    const secs = (b.t - a.t) / 1000;
    xactRate = (b.x - a.x) / secs;
    if (b.acked > a.acked) ackedRate = (b.acked - a.acked) / secs;
  }
  const db = stepStats(pg0, pg1, r0, r1, sampled, xactRate, r.acked, ackedRate);
  const per = (x: number): number => (r.acked > 0 ? round(x / r.acked, 4) : 0);
  const us = (ms: number): number | null => (r.acked > 0 ? Math.round((ms * 1000) / r.acked) : null);
  const periods = th1.reduce((a, t, i) => a + t.periods - th0[i]!.periods, 0);
  const throttled = th1.reduce((a, t, i) => a + t.throttled - th0[i]!.throttled, 0);
  const pct = (ms: number): number => Math.round(ms / 10 / Math.max(0.001, wall));
  const saturated = r.machineIdlePct < SATURATED_IDLE_PCT;
  r.cluster = {
    ...db,
    offered,
    ...(aboveKnee(r, offered) ? { failed: aboveKnee(r, offered)! } : {}),
    perMessage: {
      statements: per(db.statements),
      xacts: db.xactPerMessage,
      lockWaitMs: per(db.lockWaitMs),
      execMs: per(db.execMs),
      redisCommands: per(db.redisCommands),
      nodesCpuUs: us(r.serverCpuMs),
      postgresCpuUs: us(pgCpu),
      redisCpuUs: us(redisCpu),
      loadGenCpuUs: us(genCpu),
    },
    cpu: {
      nodesPct: r.serverCpuPct,
      quotaUsedPct: Math.round(r.serverCpuPct / (groups.length * cores)),
      eachNodePct: each.map(pct),
      periods,
      throttledPct: periods > 0 ? Math.round((throttled / periods) * 100) : 0,
      postgresPct: pct(pgCpu),
      redisPct: pct(redisCpu),
      loadGenPct: r.loadGenCpuPct,
      otherPct: r.otherCpuPct,
      machineIdlePct: r.machineIdlePct,
    },
    runtime: runtimeOver(rt0, rt1),
    saturated,
  };
  return r;
}
