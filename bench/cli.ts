// `npm run bench -- <workload...> [options]`: runs the workloads against the targets, shows a
// live progress line and a summary table, and writes the JSON result and HTML report.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { defaultOptions, runBench, type BenchOptions } from './run.js';
import { summaryTable, writeReports } from './report/index.js';
import { formatHotSpots } from './profile.js';
import { formatAlloc } from './alloc.js';
import { ALL_WORKLOADS, CLUSTER_SHAPES, TARGETS, WORKLOADS, type ClusterShape, type TargetName, type WorkloadName } from './types.js';

const list =
  <T extends string>(allowed: readonly T[], what: string) =>
  (v: string): T[] => {
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} "${i}" (one of ${allowed.join(', ')})`);
    return items as T[];
  };
const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got "${v}"`);
  return n;
};
const ints = (v: string): number[] => v.split(',').map(int);
const nodeList = (v: string): string[] => {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of items) if (!/^\d+(\.\d+\.\d+)?$/.test(i)) throw new Error(`expected Node versions like 20,24 or 24.22.3, got "${i}"`);
  if (new Set(items).size !== items.length) throw new Error(`a Node version is named twice in "${v}"`);
  return items;
};

const nodeFlags = (v: string): string[] => {
  const items = v.split(/\s+/).filter(Boolean);
  for (const i of items) if (!/^--[a-z0-9-]+(=[\w.,:/-]+)?$/i.test(i)) throw new Error(`expected flags like --max-semi-space-size=32, got "${i}"`);
  return items;
};

const program = new Command('bench')
  .description('Parley benchmark harness: the same workload against parley, socketio, chat-service and ws-relay')
  .argument(
    '[workloads...]',
    `workloads to run: ${ALL_WORKLOADS.join(', ')}, or all (every one but cluster, attachments and history, which measure Parley alone)`,
    ['all'],
  )
  .option('-t, --targets <list>', `comma-separated targets (${TARGETS.join(',')})`, list(TARGETS, 'target'))
  .option('-q, --quick', 'small sizes and short steps (about a minute for everything)')
  .option('-d, --duration <s>', 'seconds per measured step', int)
  .option('-r, --rate <list>', 'messages per second: the sweep for fanout, the fixed steps for ingest, the rate for chat21/rooms', ints)
  .option('--members <n>', 'fanout: members of the room', int)
  .option('--publishers <n>', 'fanout: publishing members', int)
  .option('--probes <n>', 'fanout: members that record latency besides the publishers', int)
  .option('--rooms <n>', 'rooms: number of rooms', int)
  .option('--room-size <n>', 'rooms/connections: members per room', int)
  .option('--senders <n>', 'ingest: sending connections', int)
  .option('--window <n>', 'ingest max: sends in flight per sender', int)
  .option('--connections <n>', 'connections: idle connections to hold', int)
  .option('--idle <s>', 'connections: seconds to hold them', int)
  .option('--size <bytes>', 'message text size', int)
  .option('--nodes <list>', 'cluster: node counts, one run each (default 1,2,3,4)', ints)
  .option('--node-cpu <cores>', 'cluster: CPU quota of each node in cores (default 0.2)', int)
  .option('--shapes <list>', `cluster: room shapes (${CLUSTER_SHAPES.join(',')})`, list(CLUSTER_SHAPES, 'shape'))
  .option('--messages <n>', 'history: messages of the big history (default 10,000,000; quick 200,000)', int)
  .option('--users <n>', 'history: users (default 100,000; quick 2,000); --rooms sets its rooms (default 100,000; quick 2,000)', int)
  .option('--fresh <n>', 'history: messages of the fresh database measured beside it (default 20,000; 0: none)', Number)
  .option('--stores <list>', 'history: stores to measure (sqlite,postgres)', list(['sqlite', 'postgres'] as const, 'store'))
  .option('--samples <n>', 'history: requests per measured query', int)
  .option('--sweep-sec <s>', 'history: seconds of live traffic before the retention sweep', int)
  .option('--workers <n>', 'load-generator threads', int)
  .option('--concurrency <n>', 'connections opened at once per worker', int)
  .option('--warmup <ms>', 'unmeasured sending at up to 500 msg/s before the first step, then 20 s at its rate (default 2000)', Number)
  .option('--quiet-wait <ms>', 'longest wait before each step for other processes to quiet down (0: none)', Number)
  .option('--no-floor', 'skip measuring the machine floor (durable write and wake-up latency) first')
  .option(
    '--node <list>',
    'run the parley targets on each of these Node versions (majors like 20,24 or exact versions), side by side as parley@node20, parley@node24',
    nodeList,
  )
  .option('--profile', 'write a V8 CPU profile of each target and print its hot spots')
  .option(
    '--alloc',
    "sample what each Parley target allocates per measured step (objects already collected included) and print where; the profiler costs CPU, so that run's rates are not the ones to quote",
  )
  .option('--node-flags <flags>', "Node/V8 flags for each Parley process, space-separated (e.g. '--max-semi-space-size=32')", nodeFlags)
  .addOption(new Option('--synchronous <mode>', "Parley's SQLite synchronous mode").choices(['full', 'normal']))
  .option('-o, --out <dir>', 'results folder', defaultOptions().outDir)
  .showHelpAfterError();

program.action(async (names: string[], flags: Record<string, unknown>) => {
  const workloads: WorkloadName[] = names.includes('all') ? [...WORKLOADS] : names.flatMap(list(ALL_WORKLOADS, 'workload'));
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  const opts: Partial<BenchOptions> = {
    workloads,
    targets: (flags.targets as TargetName[] | undefined) ?? [...TARGETS],
    quick: Boolean(flags.quick),
    duration: flags.duration as number | undefined,
    rates: flags.rate as number[] | undefined,
    members: flags.members as number | undefined,
    publishers: flags.publishers as number | undefined,
    probes: flags.probes as number | undefined,
    rooms: flags.rooms as number | undefined,
    roomSize: flags.roomSize as number | undefined,
    senders: flags.senders as number | undefined,
    window: flags.window as number | undefined,
    connections: flags.connections as number | undefined,
    idle: flags.idle as number | undefined,
    size: flags.size as number | undefined,
    clusterNodes: flags.nodes as number[] | undefined,
    nodeCpu: flags.nodeCpu as number | undefined,
    shapes: flags.shapes as ClusterShape[] | undefined,
    historyMessages: flags.messages as number | undefined,
    historyUsers: flags.users as number | undefined,
    historyFresh: flags.fresh as number | undefined,
    historyStores: flags.stores as Array<'sqlite' | 'postgres'> | undefined,
    samples: flags.samples as number | undefined,
    sweepSec: flags.sweepSec as number | undefined,
    profile: Boolean(flags.profile),
    alloc: Boolean(flags.alloc),
    nodeFlags: flags.nodeFlags as string[] | undefined,
    floor: flags.floor !== false,
    nodes: (flags.node as string[] | undefined) ?? [],
    outDir: flags.out as string,
    progress: (line, final) => {
      if (tty) {
        const cols = process.stderr.columns || 120;
        process.stderr.write(`\r\x1b[K${line.slice(0, cols - 1)}${final ? '\n' : ''}`);
      } else if (final || Date.now() - lastPrint > 5000) {
        lastPrint = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
  };
  for (const k of ['workers', 'concurrency', 'synchronous'] as const) if (flags[k] !== undefined) (opts as Record<string, unknown>)[k] = flags[k];
  if (flags.warmup !== undefined) opts.warmupMs = flags.warmup as number;
  if (flags.quietWait !== undefined) opts.quietWaitMs = flags.quietWait as number;
  // Unset keys must not override the defaults.
  for (const k of Object.keys(opts) as Array<keyof BenchOptions>) if (opts[k] === undefined) delete opts[k];

  const started = Date.now();
  const result = await runBench(opts);
  const files = writeReports(result, result.options.outDir);
  process.stdout.write(`\n${summaryTable(result)}\n\n`);
  process.stdout.write(`JSON: ${files.json}\nHTML: ${files.html}\n(${Math.round((Date.now() - started) / 1000)} s)\n`);
  if (opts.profile) {
    const dir = join(result.options.outDir, 'profiles');
    for (const f of readdirSync(dir)
      .filter((x) => x.endsWith('.cpuprofile'))
      .sort()) {
      process.stdout.write(`\n${formatHotSpots(join(dir, f), 15)}\n`);
    }
  }
  if (opts.alloc) {
    for (const run of result.runs)
      for (const s of run.steps) if (s.alloc) process.stdout.write(`\n${formatAlloc(`${run.workload}/${run.label}`, s.name, s.alloc)}\n`);
  }
  if (result.runs.some((r) => r.error)) process.exitCode = 1;
});

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(2);
});
