// The terminal summary: one line per measured step, the figures people compare first.
// "steal %" is the time the hypervisor took the CPUs away and "other cpu %" what other processes
// used meanwhile: a high value of either marks a disturbed step.
import type { BenchResult, RunResult, StepResult } from '../run.js';
import { floorLine } from '../floor.js';
import { attachmentsTable } from '../attachments.js';
import { historyTable } from '../history.js';
import { clusterTables, isCluster } from './cluster.js';

const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '-' : x.toFixed(d));

export function summaryTable(r: BenchResult): string {
  const head = [
    'workload',
    'target',
    'step',
    'acked/s',
    'deliv/s',
    'lost',
    'dup',
    'ooo',
    'p50 ms',
    'p90',
    'p99',
    'p99.9',
    'max',
    'ack p99',
    'srv cpu µs/deliv',
    'srv cpu %',
    'kernel %',
    'rss MiB',
    'steal %',
    'other cpu %',
  ];
  const rows: string[][] = [];
  for (const run of r.runs.filter((x) => !isCluster(x) && x.workload !== 'attachments' && x.workload !== 'history')) {
    if (run.error) {
      rows.push([run.workload, run.label, 'ERROR', run.error.slice(0, 80)]);
      continue;
    }
    if (run.workload === 'connections') {
      rows.push([
        run.workload,
        run.label,
        `${run.connections} idle`,
        `${run.setup.connectsPerSec} conn/s`,
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        `${f(run.memory.perConnectionKiB)} KiB/conn`,
        '',
        f(run.memory.rssAfterMiB),
        '',
      ]);
      continue;
    }
    for (const s of run.steps) rows.push(stepRow(run, s));
    if (run.stoppedAt) rows.push([run.workload, run.label, `stopped at ${run.stoppedAt}`]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length === head.length).map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.length === head.length ? cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ') : cells.join('  ');
  const table = rows.length > 0 ? [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)] : [];
  const cluster = clusterTables(r.runs);
  const files = attachmentsTable(r.runs);
  const history = historyTable(r.runs);
  return [
    ...(r.floor ? [floorLine(r.floor), ''] : []),
    ...(r.options.nodeFlags?.length ? [`Parley run with ${r.options.nodeFlags.join(' ')}`, ''] : []),
    ...table,
    ...(cluster ? ['', cluster] : []),
    ...(files ? ['', files] : []),
    ...(history ? ['', history] : []),
  ]
    .join('\n')
    .trim();
}

function stepRow(run: RunResult, s: StepResult): string[] {
  const l = s.latency;
  return [
    run.workload,
    run.label,
    s.name,
    String(s.ackedPerSec),
    String(s.deliveriesPerSec),
    String(s.lost),
    String(s.duplicated),
    String(s.outOfOrder),
    f(l?.p50Ms, 2),
    f(l?.p90Ms),
    f(l?.p99Ms),
    f(l?.p999Ms),
    f(l?.maxMs),
    f(s.ack?.p99Ms),
    f(s.cpuUsPerDelivery),
    String(s.serverCpuPct),
    s.serverSysPct === null || s.serverSysPct === undefined ? '-' : String(s.serverSysPct),
    f(s.rssMiB),
    f(s.stealPct),
    String(s.otherCpuPct),
  ];
}
