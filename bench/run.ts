// The programmatic entry point: runs workloads against targets one after another, each target
// in a fresh child process, and returns every measured figure. The CLI and the smoke test
// both call `runBench`.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from './pool.js';
import { cpuMs, cpuSplitMs, machine, machineTicks, memory, openFilesLimit } from './proc.js';
import { execFileSync } from 'node:child_process';
import { installNode, type NodeInstall } from '../scripts/with-node.js';
import { RESULTS_DIR, ROOT, startTarget, type RunningTarget } from './targets.js';
import { plans, type Plan, type WorkloadOptions } from './workloads.js';
import { runCluster, type ClusterRunInfo, type ClusterStepStats } from './cluster.js';
import { runAttachments, type AttachmentsInfo } from './attachments.js';
import { runHistory, type HistoryFigures } from './history.js';
import { mergeHistograms, summarize, type Histogram, type LatencySummary } from './hist.js';
import { floorLine, measureFloor, type Floor } from './floor.js';
import { HeapSampler, type AllocSummary } from './alloc.js';
import {
  TARGETS,
  TARGET_WORKLOADS,
  WORKLOADS,
  type CollectResult,
  type OpenResult,
  type RoomSpec,
  type SentResult,
  type StepSpec,
  type StreamEnd,
  type TargetInfo,
  type TargetName,
  type WorkloadName,
} from './types.js';

export interface BenchOptions extends WorkloadOptions {
  workloads: WorkloadName[];
  targets: TargetName[];
  /** Load-generator threads. */
  workers: number;
  /** Connections opened at once per worker. */
  concurrency: number;
  /** Milliseconds of unmeasured sending before the first step. */
  warmupMs: number;
  /** Write a V8 CPU profile of each target (node --cpu-prof) to the results folder. */
  profile: boolean;
  /**
   * Sample what each Parley target allocates in each measured step (bench/alloc.ts): bytes
   * per acknowledged message and per delivery, and the functions that allocate most. The
   * profiler costs the target CPU, so that run's rates and latencies are not the ones to quote.
   */
  alloc: boolean;
  /** Node and V8 flags for each Parley process (e.g. `--max-semi-space-size=32`), kept in the result. */
  nodeFlags: string[];
  /** Parley's SQLite synchronous mode (durable 'full' by default). */
  synchronous: 'full' | 'normal';
  /** Longest wait before each step for other processes to quiet down (0: do not wait). */
  quietWaitMs: number;
  /** Measure the machine's own latency floor (durable write, wake-up) before the workloads. */
  floor: boolean;
  /**
   * Node versions (majors like "24" or exact versions) to run the Parley targets on, each as
   * its own target labelled parley@node<version>; empty: only the Node running the harness.
   */
  nodes: string[];
  outDir: string;
  progress?: (line: string, final?: boolean) => void;
}

export interface StepResult {
  name: string;
  rate: number | 'max';
  durationS: number;
  sent: number;
  acked: number;
  errors: number;
  /** Sends acknowledged after more than 10 s (when the SDK gives up), or never. */
  timeouts: number;
  firstError?: string;
  /** Acknowledged sends per second over the sending window. */
  ackedPerSec: number;
  expected: number;
  delivered: number;
  deliveriesPerSec: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  late: number;
  closedEarly: number;
  drained: boolean;
  latency: LatencySummary | null;
  ack: LatencySummary | null;
  /**
   * The acknowledgement latencies themselves, so steps can be judged together (the cluster
   * sweep's second run of a step). Not enumerable: left out of the results' JSON.
   */
  ackHistogram?: Histogram;
  serverCpuMs: number;
  serverCpuPct: number;
  /** Share of the server's CPU spent in the kernel (system time): socket writes and reads, fsync. */
  serverSysPct: number | null;
  cpuUsPerDelivery: number | null;
  cpuUsPerMessage: number | null;
  clientCpuUsPerDelivery: number | null;
  rssMiB: number;
  /** Share of the machine's CPU time the hypervisor took away during the step. */
  stealPct: number;
  /** CPU used by other processes during the step, in % of one core: a disturbed measurement. */
  otherCpuPct: number;
  /** The load generator's CPU (this process, all threads), in % of one core. */
  loadGenCpuPct: number;
  /** CPU of the processes that serve the target without being measured as it (PostgreSQL, Redis), in % of one core. */
  infraCpuPct?: number;
  /** Share of the machine's CPU time (all cores) nobody used: near 0, the machine was the limit. */
  machineIdlePct: number;
  /** Cluster workload: what PostgreSQL, Redis, the nodes' quotas and the machine did. */
  cluster?: ClusterStepStats;
  /** With `--alloc`: what the target allocated during the step. */
  alloc?: AllocSummary;
}

export interface RunResult {
  workload: WorkloadName;
  target: TargetName;
  /** How reports name the run: the target, with @node<version> when run on a chosen Node. */
  label: string;
  /** Version of the Node that ran the target. */
  node: string;
  description: string;
  params: Record<string, number | string>;
  connections: number;
  setup: {
    connectS: number;
    connectsPerSec: number;
    connectMs: LatencySummary | null;
    roomsS: number;
    failed: number;
    /** Connections the server closed while they sat idle (heartbeat failures). */
    droppedWhileIdle?: number;
  };
  memory: { rssBeforeMiB: number; rssAfterSetupMiB: number; rssAfterMiB: number; peakMiB: number; perConnectionKiB: number | null };
  steps: StepResult[];
  stoppedAt?: string;
  error?: string;
  profile?: string;
  /** Cluster workload: nodes, shape, CPU share, the knee and the scale ratio. */
  cluster?: ClusterRunInfo;
  /** Attachments workload: upload throughput, server RSS growth, text latency meanwhile. */
  attachments?: AttachmentsInfo;
  /** History workload: a node on a big (or fresh) history, its reads, size and retention. */
  history?: HistoryFigures;
}

export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  machine: ReturnType<typeof machine> & { node: string };
  /** The machine's latency floor, measured before the workloads (see floor.ts). */
  floor?: Floor;
  options: Omit<BenchOptions, 'progress'>;
  runs: RunResult[];
}

export const defaultOptions = (): BenchOptions => ({
  workloads: [...WORKLOADS],
  targets: [...TARGETS],
  quick: false,
  workers: 2,
  concurrency: 64,
  warmupMs: 2000,
  profile: false,
  alloc: false,
  nodeFlags: [],
  synchronous: 'full',
  quietWaitMs: 30_000,
  floor: true,
  nodes: [],
  outDir: RESULTS_DIR,
});

/** A Parley target on one chosen Node: its install, built, and the label its runs carry. */
interface Runtime {
  label: string;
  install: NodeInstall;
}

/**
 * Installs and builds Parley for each chosen Node (scripts/with-node.ts). The harness's own
 * Node runs the working tree's build, which `npm run bench` has just made.
 */
function runtimes(nodes: string[], say: (l: string) => void): Runtime[] {
  return nodes.map((wanted) => {
    const install = installNode(wanted, (l) => say(`node ${wanted}: ${l}`));
    if (install.root !== ROOT) {
      say(`node ${wanted}: building Parley with Node ${install.version}`);
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: install.root, env: install.env, stdio: ['ignore', 'ignore', 'inherit'] });
    }
    return { label: `node${wanted}`, install };
  });
}

const isParley = (t: TargetName): boolean => t === 'parley' || t === 'parley-mqtt';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/**
 * The processes a step measures: the server (one process, or every node of a cluster), and
 * what serves it without being it (PostgreSQL and Redis), which is not counted as "other".
 */
export interface Measured {
  pids: number[];
  infraCpuMs?: () => number;
}

const cpuOf = (pids: number[]): number => pids.reduce((a, pid) => a + cpuMs(pid), 0);
const sysOf = (pids: number[]): number => pids.reduce((a, pid) => a + cpuSplitMs(pid).sys, 0);
const rssOf = (pids: number[]): number => pids.reduce((a, pid) => a + memory(pid).rssKiB, 0);

/**
 * Waits until the server has been nearly idle (< 3% of a core per process) for 0.4 s, so
 * setup traffic (join storms) is over before measuring. Bounded: thousands of connections
 * with heartbeats never get that quiet.
 */
export async function quiet(pids: number[], maxMs = 10_000): Promise<void> {
  const end = Date.now() + maxMs;
  let calm = 0;
  let prev = cpuOf(pids);
  while (Date.now() < end && calm < 2) {
    await sleep(200);
    const cur = cpuOf(pids);
    calm = cur - prev <= 6 * pids.length ? calm + 1 : 0;
    prev = cur;
  }
}

/**
 * Waits (up to `maxMs`) until processes other than the measured ones and this one use under
 * 20% of a core, so a build or test run elsewhere on the machine does not land inside a step.
 */
async function quietMachine(m: Measured, say: (l: string) => void, maxMs: number): Promise<number> {
  const end = Date.now() + maxMs;
  let other = 0;
  if (maxMs <= 0) return other;
  const ours = (): number => cpuOf(m.pids) + (m.infraCpuMs?.() ?? 0);
  do {
    const m0 = machineTicks();
    const s0 = ours();
    const c0 = process.cpuUsage();
    await sleep(300);
    const m1 = machineTicks();
    const c = process.cpuUsage(c0);
    other = Math.max(0, (m1.busyMs - m0.busyMs - (ours() - s0) - (c.user + c.system) / 1000) / 3);
    if (other < 20) return other;
    say(`waiting: other processes use ${Math.round(other)}% of a core`);
  } while (Date.now() < end);
  return other;
}

export async function runBench(partial: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const o: BenchOptions = { ...defaultOptions(), ...partial };
  if (partial.warmupMs === undefined) o.warmupMs = o.quick ? 300 : 2000;
  mkdirSync(join(o.outDir, 'logs'), { recursive: true });
  const startedAt = new Date().toISOString();
  const runs: RunResult[] = [];
  const nodes = runtimes(o.nodes, (l) => o.progress?.(l, true));
  let floor: Floor | undefined;
  if (o.floor) {
    o.progress?.('measuring the machine floor (durable write, wake-up) …');
    floor = await measureFloor(o.quick ? 150 : 400);
    o.progress?.(floorLine(floor), true);
  }
  let pool: Pool | null = null;
  try {
    for (const workload of o.workloads) {
      if (workload === 'attachments') {
        // Uploads are Parley's own: the other targets store no files.
        if (o.targets.includes('parley')) runs.push(await runAttachments(o, startedAt));
        continue;
      }
      if (workload === 'history') {
        if (o.targets.includes('parley')) runs.push(...(await runHistory(o, startedAt)));
        continue;
      }
      if (workload === 'cluster') {
        // Parley's own scale-out: the other targets have no cluster mode.
        if (!o.targets.includes('parley')) continue;
        pool ??= new Pool(o.workers);
        runs.push(...(await runCluster(o, pool, startedAt)));
        continue;
      }
      const plan = plans[workload](o);
      const fdRoom = openFilesLimit() - 200;
      if (plan.conns.length > fdRoom) {
        throw new Error(
          `${workload}: ${plan.conns.length} connections need more open files than this process may have ` +
            `(soft limit ${fdRoom + 200}); lower the count or raise \`ulimit -n\``,
        );
      }
      // Threads are started once; each run opens its own connections on them.
      pool ??= new Pool(o.workers);
      for (const target of o.targets) {
        if (TARGET_WORKLOADS[target] && !TARGET_WORKLOADS[target].includes(workload)) continue;
        if (isParley(target) && nodes.length > 0) {
          for (const rt of nodes) runs.push(await runOne(plan, target, o, startedAt, pool, rt));
        } else {
          runs.push(await runOne(plan, target, o, startedAt, pool));
        }
      }
    }
  } finally {
    await pool?.terminate();
  }
  const { progress: _p, ...options } = o;
  return { startedAt, finishedAt: new Date().toISOString(), machine: { ...machine(), node: process.version }, floor, options, runs };
}

async function runOne(plan: Plan, name: TargetName, o: BenchOptions, stamp: string, p: Pool, rt?: Runtime): Promise<RunResult> {
  const label = rt ? `${name}@${rt.label}` : name;
  const tag = `${plan.workload}/${label}`;
  const say = (line: string, final = false): void => o.progress?.(`[${tag}] ${line}`, final);
  const result: RunResult = {
    workload: plan.workload,
    target: name,
    label,
    node: rt?.install.version ?? process.versions.node,
    description: plan.description,
    params: plan.params,
    connections: plan.conns.length,
    setup: { connectS: 0, connectsPerSec: 0, connectMs: null, roomsS: 0, failed: 0 },
    memory: { rssBeforeMiB: 0, rssAfterSetupMiB: 0, rssAfterMiB: 0, peakMiB: 0, perConnectionKiB: null },
    steps: [],
  };
  const profileDir = o.profile ? join(o.outDir, 'profiles') : undefined;
  let target: RunningTarget | null = null;
  let sampler: HeapSampler | null = null;
  try {
    say('starting');
    target = await startTarget(name, {
      heartbeatMs: plan.heartbeatMs,
      profileDir,
      inspect: o.alloc && name.startsWith('parley'),
      nodeFlags: o.nodeFlags,
      synchronous: o.synchronous,
      runtime: rt?.install,
      logFile: join(o.outDir, 'logs', `${stamp.replace(/[:.]/g, '-')}-${plan.workload}-${label}.log`),
    });
    const pid = target.pid;
    await sleep(300);
    const before = memory(pid);
    result.memory.rssBeforeMiB = mib(before.rssKiB);

    const workerOf = workerOfConn(p);
    result.setup = await connectAndSetup(p, plan, { name, port: target.port, secret: target.secret }, o, say, [pid]);
    result.memory.rssAfterSetupMiB = mib(memory(pid).rssKiB);

    if (plan.idleMs) {
      // Idle connections with heartbeats running; memory read at the end of the hold.
      const end = Date.now() + plan.idleMs;
      while (Date.now() < end) {
        say(`holding ${plan.conns.length} idle connections, ${Math.ceil((end - Date.now()) / 1000)} s left, server RSS ${mib(memory(pid).rssKiB)} MiB`);
        await sleep(Math.min(1000, Math.max(0, end - Date.now())));
      }
      const c = await p.all<CollectResult>({ t: 'collect' });
      result.setup.droppedWhileIdle = c.reduce((a, r) => a + r.closedEarly, 0);
    }

    // ---- measured steps ----
    const steps: Array<StepSpec & { id: number }> = [];
    if (plan.steps.length > 0 && o.warmupMs > 0) for (const w of warmups(plan, o.warmupMs, !o.quick)) steps.push({ ...w, id: steps.length });
    for (const s of plan.steps) steps.push({ ...s, id: steps.length });
    if (target.inspectPort) sampler = await HeapSampler.connect(target.inspectPort);
    for (const s of steps) {
      if (sampler && !s.warmup) await sampler.start();
      const r = await runStep(p, { pids: [pid] }, s, workerOf, say, o.quietWaitMs);
      if (s.warmup) continue;
      if (sampler) {
        mkdirSync(join(o.outDir, 'profiles'), { recursive: true });
        const file = join(o.outDir, 'profiles', `${stamp.replace(/[:.]/g, '-')}-${plan.workload}-${label}-${s.name.replace(/[^\w.-]+/g, '_')}.heapprofile`);
        r.alloc = await sampler.stop(r.acked, r.delivered, file);
      }
      result.steps.push(r);
      const overloaded = !r.drained || r.lost > 0 || (r.latency?.p99Ms ?? 0) > 500 || (typeof s.rate === 'number' && r.ackedPerSec < s.rate * 0.8);
      if (plan.sweep && overloaded && s !== steps[steps.length - 1]) {
        result.stoppedAt = `${s.name}: target overloaded (p99 ${r.latency?.p99Ms ?? '-'} ms, lost ${r.lost}, ${r.ackedPerSec}/s acked)`;
        break;
      }
    }
    const after = memory(pid);
    result.memory.rssAfterMiB = mib(after.rssKiB);
    result.memory.peakMiB = mib(after.hwmKiB);
    if (plan.workload === 'connections') {
      result.memory.perConnectionKiB = round((after.rssKiB - before.rssKiB) / plan.conns.length, 2);
    }
    say(`done`, true);
  } catch (err) {
    result.error = (err as Error).message;
    say(`failed: ${result.error}`, true);
  } finally {
    await p.reset().catch(() => undefined);
    sampler?.close();
    if (target) await target.stop().catch(() => undefined);
  }
  if (profileDir) result.profile = profileDir;
  return result;
}

/** Connections are dealt round the load-generator threads. */
export const workerOfConn =
  (p: Pool) =>
  (conn: number): number =>
    conn % p.size;

/**
 * Opens the plan's connections (timed: connects per second), then makes its rooms and
 * memberships through the target's protocol (setup, not measured) and waits until the
 * server is idle again. Throws when a connection fails.
 */
export async function connectAndSetup(
  p: Pool,
  plan: Plan,
  target: TargetInfo,
  o: BenchOptions,
  say: (l: string) => void,
  pids: number[],
): Promise<RunResult['setup']> {
  const workerOf = workerOfConn(p);
  const ticker = setInterval(() => say(`connecting ${plan.conns.length} connections`), 1000);
  let opened: OpenResult[];
  try {
    opened = await p.all<OpenResult>((w) => ({
      t: 'open',
      target,
      conns: plan.conns.filter((c) => workerOf(c.index) === w),
      concurrency: o.concurrency,
    }));
  } finally {
    clearInterval(ticker);
  }
  // Timed inside the workers, from the first connect to the last authentication.
  const connectS = Math.max(...opened.map((r) => r.wallMs)) / 1000;
  const failed = opened.reduce((a, r) => a + r.failed, 0);
  const connectHist = mergeHistograms([]);
  for (const r of opened) for (const ms of r.connectMs) connectHist.recordValue(Math.max(1, Math.round(ms * 1000)));
  const setup: RunResult['setup'] = {
    connectS: round(connectS),
    connectsPerSec: Math.round((plan.conns.length - failed) / connectS),
    connectMs: summarize(connectHist),
    roomsS: 0,
    failed,
  };
  if (failed > 0) throw new Error(`${failed} connections failed: ${opened.find((r) => r.firstError)?.firstError}`);

  say(`creating ${plan.rooms.length} rooms`);
  const t1 = performance.now();
  const users = (r: RoomSpec): string[] => r.members.map((m) => plan.conns[m]!.user);
  const owned = await p.all<Record<string, string>>((w) => ({
    t: 'owners',
    rooms: plan.rooms.filter((r) => workerOf(r.members[0]!) === w).map((r) => ({ ...r, users: users(r) })),
  }));
  const actual: Record<string, string> = Object.assign({}, ...owned) as Record<string, string>;
  say('joining members');
  await p.all<number>((w) => ({
    t: 'members',
    actual,
    rooms: plan.rooms.filter((r) => r.members.slice(1).some((m) => workerOf(m) === w)).map((r) => ({ ...r, actual: actual[r.id]! })),
  }));
  await quiet(pids);
  setup.roomsS = round((performance.now() - t1) / 1000);
  return setup;
}

/**
 * The unmeasured warm-up, in two parts. First the first step's senders for `ms` at WARMUP_RATE
 * messages/s (or the step's own rate if higher, and never over WARMUP_DELIVERIES per second, so
 * a big room does not overload a target): enough messages for V8 to compile every target's hot
 * path. Then, if that was faster than the step, SETTLE_MS at the step's own rate: V8's memory
 * reducer runs its major GCs some 8-16 s after the allocation rate drops, and without this it
 * did so inside the first measured step (Parley on chat21: RSS fell from 139 to 103 MiB eight
 * seconds into the first step, and the server's CPU doubled for two seconds).
 */
const WARMUP_RATE = 500;
const WARMUP_DELIVERIES = 50_000;
export const SETTLE_MS = 20_000;

function warmups(plan: Plan, ms: number, settle: boolean): StepSpec[] {
  const first = plan.steps[0]!;
  const warm = { ...first, name: 'warmup', warmup: true, durationMs: ms };
  if (first.rate === 'max') return [warm];
  const size = new Map(plan.rooms.map((r) => [r.id, r.members.length]));
  const receivers = first.senders.reduce((a, x) => a + Math.max(1, (size.get(x.room) ?? 2) - 1), 0) / Math.max(1, first.senders.length);
  const rate = Math.max(first.rate, Math.min(WARMUP_RATE, Math.floor(WARMUP_DELIVERIES / receivers)));
  if (rate === first.rate || !settle) return [{ ...warm, rate }];
  return [
    { ...warm, rate },
    { ...warm, name: 'settle', durationMs: SETTLE_MS },
  ];
}

/** Called around a step's measurement: right before sending starts, and once everything is collected. */
export interface StepHooks {
  begin?(): Promise<void>;
  end?(): Promise<void>;
}

export async function runStep(
  p: Pool,
  m: Measured,
  s: StepSpec & { id: number },
  workerOf: (c: number) => number,
  say: (l: string) => void,
  quietWaitMs: number,
  hooks: StepHooks = {},
): Promise<StepResult> {
  await quietMachine(m, say, quietWaitMs);
  await hooks.begin?.();
  const { pids } = m;
  const cpu0 = cpuOf(pids);
  const sys0 = sysOf(pids);
  const infra0 = m.infraCpuMs?.() ?? 0;
  const machine0 = machineTicks();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const label = s.warmup ? s.name : `step ${s.name}`;
  const ticker = setInterval(() => {
    const t = p.totals();
    const secs = (performance.now() - t0) / 1000;
    let server = '';
    try {
      server = ` server cpu ${((cpuOf(pids) - cpu0) / 10 / secs).toFixed(0)}% rss ${mib(rssOf(pids))} MiB`;
    } catch {
      /* a server that has exited fails the step below, not the progress line */
    }
    say(`${label} ${secs.toFixed(1)}s sent ${t.sent} acked ${t.acked} delivered ${t.received}${t.expected ? `/${t.expected}` : ''}${server}`);
  }, 500);
  try {
    const total = s.senders.length;
    const sent = await p.all<SentResult>((w) => {
      const mine = s.senders.filter((x) => workerOf(x.conn) === w);
      const rate = s.rate === 'max' ? 'max' : total === 0 ? 0 : (s.rate * mine.length) / total;
      return { t: 'step', stepId: s.id, step: s, rate, senders: mine };
    });
    const sendEnd = performance.now();
    const streams: StreamEnd[] = sent.flatMap((r) => r.streams);
    const expected = (await p.all<number>({ t: 'expect', stepId: s.id, streams })).reduce((a, b) => a + b, 0);
    // Drain: wait for every expected delivery, or until deliveries stop progressing.
    let last = -1;
    let stall = performance.now();
    let drained = false;
    for (;;) {
      await sleep(100);
      const got = p.totals().received;
      if (got >= expected) {
        await sleep(250); // ticks lag; let duplicates and stragglers show up
        drained = true;
        break;
      }
      if (got !== last) {
        last = got;
        stall = performance.now();
      } else if (performance.now() - stall > 3000) break;
      if (performance.now() - sendEnd > 20_000) break;
    }
    const c = await p.all<CollectResult>({ t: 'collect' });
    const cpu = cpuOf(pids) - cpu0;
    const sys = sysOf(pids) - sys0;
    const infra = m.infraCpuMs ? m.infraCpuMs() - infra0 : 0;
    const client = process.cpuUsage(client0);
    const wall = (performance.now() - t0) / 1000;
    const m1 = machineTicks();
    await hooks.end?.();
    const sum = (f: (r: CollectResult) => number): number => c.reduce((a, r) => a + f(r), 0);
    const delivered = sum((r) => r.received);
    const acked = sent.reduce((a, r) => a + r.acked, 0);
    const first = Math.min(...sent.filter((r) => r.firstSendUs > 0).map((r) => r.firstSendUs));
    const lastSend = Math.max(...sent.map((r) => r.lastSendUs));
    const ackHistogram = mergeHistograms(sent.map((r) => r.ack));
    const sendS = Number.isFinite(first) && lastSend > first ? (lastSend - first) / 1e6 : s.durationMs / 1000;
    const result: StepResult = {
      name: s.name,
      rate: s.rate,
      durationS: round(sendS),
      sent: sent.reduce((a, r) => a + r.sent, 0),
      acked,
      errors: sent.reduce((a, r) => a + r.errors, 0),
      timeouts: sent.reduce((a, r) => a + r.timeouts, 0),
      firstError: sent.find((r) => r.firstError)?.firstError,
      ackedPerSec: Math.round(acked / sendS),
      expected,
      delivered,
      deliveriesPerSec: Math.round(delivered / sendS),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      outOfOrder: sum((r) => r.outOfOrder),
      late: sum((r) => r.late),
      closedEarly: sum((r) => r.closedEarly),
      drained,
      latency: summarize(mergeHistograms(c.map((r) => r.latency))),
      ack: summarize(ackHistogram),
      serverCpuMs: Math.round(cpu),
      serverCpuPct: Math.round(cpu / 10 / wall),
      serverSysPct: cpu > 0 ? Math.round((sys / cpu) * 100) : null,
      cpuUsPerDelivery: delivered > 0 ? round((cpu * 1000) / delivered) : null,
      cpuUsPerMessage: acked > 0 ? round((cpu * 1000) / acked) : null,
      clientCpuUsPerDelivery: delivered > 0 ? round((client.user + client.system) / delivered) : null,
      rssMiB: mib(rssOf(pids)),
      stealPct: Math.round(((m1.stealMs - machine0.stealMs) / Math.max(1, m1.totalMs - machine0.totalMs)) * 1000) / 10,
      // Whatever else ran on the machine meanwhile (neither the server, what serves it, nor this process).
      otherCpuPct: Math.max(0, Math.round((m1.busyMs - machine0.busyMs - cpu - infra - (client.user + client.system) / 1000) / 10 / wall)),
      loadGenCpuPct: Math.round((client.user + client.system) / 1000 / 10 / wall),
      ...(m.infraCpuMs ? { infraCpuPct: Math.round(infra / 10 / wall) } : {}),
      machineIdlePct: Math.round((1 - (m1.busyMs - machine0.busyMs + m1.stealMs - machine0.stealMs) / Math.max(1, m1.totalMs - machine0.totalMs)) * 1000) / 10,
    };
    Object.defineProperty(result, 'ackHistogram', { value: ackHistogram, enumerable: false });
    return result;
  } finally {
    clearInterval(ticker);
  }
}
