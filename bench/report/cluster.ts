// The cluster workload's report: the knee of each (shape, node count) with its per-message
// database and Redis cost and the scale ratio, then every sweep step with where the machine's
// CPU went, a saturated machine flagged (the figure then measures the machine, not Parley).
import type { RunResult, StepResult } from '../run.js';
import { kneeStep, KNEE_ACK_P99_MS, SATURATED_IDLE_PCT } from '../cluster.js';

const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '-' : x.toFixed(d));

export const isCluster = (run: RunResult): boolean => run.workload === 'cluster';

/** A step's result: above the knee (and why), the knee, ok; a step run twice says so. */
function stepVerdict(run: RunResult, s: StepResult, knee: string): string {
  const c = s.cluster!;
  if (run.steps.some((x) => x.cluster?.repeats?.step === s.name)) return `measured again: ${c.failed ?? ''}`;
  const both = c.repeats ? ` (ack p99 of both runs ${c.repeats.ackP99Ms} ms)` : '';
  if (c.failed) return `above: ${c.failed}`;
  return `${run.cluster!.knee === s.name ? knee : 'ok'}${both}`;
}

/** The nodes' CPU together, then each node's in brackets: how evenly the work was spread. */
function nodesCpu(c: NonNullable<StepResult['cluster']>): string {
  const each = c.cpu.eachNodePct ?? [];
  return each.length > 1 ? `${c.cpu.nodesPct} (${each.join('/')})` : `${c.cpu.nodesPct}`;
}

/** Text columns: the first `left` and the last one aligned left, figures right. */
function table(head: string[], rows: string[][], left: number): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < left || i === head.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export interface KneeRow {
  shape: string;
  nodes: number;
  nodeCpu: number;
  step: StepResult | undefined;
  run: RunResult;
}

export function kneeRows(runs: RunResult[]): KneeRow[] {
  return runs
    .filter(isCluster)
    .map((run) => ({ shape: run.cluster!.shape, nodes: run.cluster!.nodes, nodeCpu: run.cluster!.nodeCpu, step: kneeStep(run), run }));
}

/** The terminal tables: knees first, then every step of every sweep. */
export function clusterTables(runs: RunResult[]): string {
  const cl = runs.filter(isCluster);
  if (cl.length === 0) return '';
  const knees = kneeRows(cl).map(({ shape, nodes, nodeCpu, step: s, run }) => {
    if (run.error) return [shape, String(nodes), f(nodeCpu, 2), 'ERROR', run.error.slice(0, 100)];
    if (!s) return [shape, String(nodes), f(nodeCpu, 2), 'none', run.stoppedAt ?? ''];
    const c = s.cluster!;
    return [
      shape,
      String(nodes),
      f(nodeCpu, 2),
      s.name,
      String(s.ackedPerSec),
      String(s.deliveriesPerSec),
      f(s.ack?.p50Ms),
      f(c.repeats?.ackP99Ms ?? s.ack?.p99Ms),
      f(s.latency?.p99Ms),
      `${s.lost}/${s.duplicated}/${s.outOfOrder}`,
      f(c.perMessage.statements, 2),
      f(c.perMessage.xacts, 2),
      f(c.perMessage.lockWaitMs, 3),
      f(c.perMessage.execMs, 3),
      f(c.perMessage.redisCommands, 2),
      f(c.perMessage.nodesCpuUs, 0),
      f(c.perMessage.postgresCpuUs, 0),
      f(run.cluster!.scaleRatio, 2),
      `${c.cpu.throttledPct}`,
      `${c.cpu.postgresPct}`,
      `${c.cpu.machineIdlePct}`,
      `${c.cpu.otherPct}`,
      c.saturated ? 'SATURATED' : '',
    ];
  });
  const steps = cl.flatMap((run) =>
    run.steps
      .map((s) => {
        const c = s.cluster!;
        const verdict = stepVerdict(run, s, 'KNEE');
        return [
          run.cluster!.shape,
          String(run.cluster!.nodes),
          s.name,
          String(s.ackedPerSec),
          f(s.ack?.p99Ms),
          f(s.latency?.p99Ms),
          String(s.timeouts),
          String(s.errors),
          nodesCpu(c),
          `${c.cpu.quotaUsedPct}`,
          `${c.cpu.throttledPct}`,
          `${c.cpu.postgresPct}`,
          `${c.cpu.redisPct}`,
          `${c.cpu.loadGenPct}`,
          `${c.cpu.otherPct}`,
          `${c.cpu.machineIdlePct}`,
          f(c.runtime?.loopDelayMaxMs, 0),
          c.runtime ? `${c.runtime.majorGcs} / ${f(c.runtime.majorGcMs, 0)}` : '',
          `${c.saturated ? 'SATURATED ' : ''}${verdict}`,
        ];
      })
      .concat(run.error ? [[run.cluster!.shape, String(run.cluster!.nodes), `ERROR ${run.error.slice(0, 100)}`]] : []),
  );
  return [
    `cluster: knee = highest acknowledged rate with ack p99 <= ${KNEE_ACK_P99_MS} ms, no timeouts, nothing lost; per message: PostgreSQL ` +
      'statements, transactions, lock wait and execution ms, Redis commands; scale = acked(N) / (N x acked(1)); ' +
      `CPU in % of one core; SATURATED: under ${SATURATED_IDLE_PCT}% of the machine idle (the figure measures the machine)`,
    '',
    ...table(
      [
        'shape',
        'nodes',
        'cpu/node',
        'knee',
        'acked/s',
        'deliv/s',
        'ack p50',
        'ack p99',
        'deliv p99',
        'lost/dup/ooo',
        'pg stmt',
        'xact',
        'lock ms',
        'exec ms',
        'redis',
        'node µs',
        'pg µs',
        'scale',
        'throttled %',
        'pg cpu %',
        'idle %',
        'other cpu %',
        '',
      ],
      knees,
      4,
    ),
    '',
    ...table(
      [
        'shape',
        'nodes',
        'step',
        'acked/s',
        'ack p99',
        'deliv p99',
        'timeouts',
        'errors',
        'nodes cpu % (each)',
        'of quota %',
        'throttled %',
        'pg cpu %',
        'redis cpu %',
        'loadgen %',
        'other cpu %',
        'idle %',
        'loop max ms',
        'major gc n / ms',
        'result',
      ],
      steps,
      3,
    ),
  ].join('\n');
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Bars of the knee's acknowledged rate per node count, beside N times one node's. */
function scaleChart(shape: string, rows: KneeRow[]): string {
  const W = 560,
    rowH = 34,
    L = 70,
    T = 26;
  const one = rows.find((r) => r.nodes === 1)?.step?.ackedPerSec ?? 0;
  const max = Math.max(1, ...rows.map((r) => Math.max(r.step?.ackedPerSec ?? 0, one * r.nodes)));
  const x = (v: number): number => (v / max) * (W - L - 110);
  const body = rows.map((r, i) => {
    const y = T + i * rowH;
    const v = r.step?.ackedPerSec ?? 0;
    const ideal = one * r.nodes;
    return (
      `<text x="${L - 6}" y="${y + 13}" font-size="11" text-anchor="end">${r.nodes} node${r.nodes > 1 ? 's' : ''}</text>` +
      `<rect x="${L}" y="${y + 2}" width="${x(ideal).toFixed(1)}" height="6" fill="#ccc"/>` +
      `<rect x="${L}" y="${y + 10}" width="${x(v).toFixed(1)}" height="14" fill="${r.step?.cluster?.saturated ? '#d62728' : '#1f77b4'}"/>` +
      `<text x="${L + Math.max(x(v), x(ideal)) + 4}" y="${y + 22}" font-size="11">${v}/s${r.run.cluster!.scaleRatio !== null ? ` (×${f(r.run.cluster!.scaleRatio, 2)})` : ''}</text>`
    );
  });
  const H = T + rows.length * rowH + 8;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<text x="0" y="16" font-size="13" font-weight="bold">${esc(shape)}: acked msg/s at the knee</text><text x="${W - 4}" y="16" font-size="11" text-anchor="end">grey: N × one node · red: machine saturated</text>${body.join('')}</svg>`
  );
}

export function clusterHtml(runs: RunResult[]): string {
  const cl = runs.filter(isCluster);
  if (cl.length === 0) return '';
  const rows = kneeRows(cl);
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const parts = [
    `<h2>cluster</h2><p>Parley nodes on PostgreSQL and Redis, each node in a cgroup with a CPU quota of ${esc(f(cl[0]!.cluster!.nodeCpu, 2))} core ` +
      `(cgroup v${cl[0]!.cluster!.quota.cgroup}; checked first: a busy loop in a ${cl[0]!.cluster!.quota.checkedCores}-core group used ` +
      `${cl[0]!.cluster!.quota.busyLoopUsedCores} core). ` +
      `PostgreSQL, Redis and the load generator run outside the quotas. The knee is the highest acknowledged rate of a sweep with ack p99 ≤ ${KNEE_ACK_P99_MS} ms, ` +
      `no timeouts and nothing lost. A step with under ${SATURATED_IDLE_PCT}% of the machine idle is marked saturated: it measures the machine, not Parley.</p>`,
  ];
  parts.push(
    `<div class="charts">${shapes
      .map((s) =>
        scaleChart(
          s,
          rows.filter((r) => r.shape === s),
        ),
      )
      .join('')}</div>`,
  );
  parts.push(
    '<table><tr><th>shape</th><th>nodes</th><th>knee</th><th>acked/s</th><th>deliveries/s</th><th>ack p50</th><th>ack p99</th><th>delivery p99</th>' +
      '<th>lost / dup / ooo</th><th>PG statements / msg</th><th>transactions / msg</th><th>lock wait ms / msg</th><th>exec ms / msg</th>' +
      '<th>Redis commands / msg</th><th>CPU µs / msg: nodes, PG, Redis, load gen</th><th>scale</th><th>idle %</th><th>other CPU %</th></tr>' +
      rows
        .map(({ shape, nodes, step: s, run }) => {
          if (!s) return `<tr><td>${esc(shape)}</td><td>${nodes}</td><td colspan="16" class="err">${esc(run.error ?? run.stoppedAt ?? 'no knee')}</td></tr>`;
          const c = s.cluster!;
          const bad = s.lost + s.duplicated + s.outOfOrder > 0;
          return (
            `<tr><td>${esc(shape)}</td><td>${nodes}</td><td>${esc(s.name)}</td><td>${s.ackedPerSec}</td><td>${s.deliveriesPerSec}</td>` +
            `<td>${f(s.ack?.p50Ms, 2)}</td><td>${f(s.cluster!.repeats?.ackP99Ms ?? s.ack?.p99Ms, 2)}</td><td>${f(s.latency?.p99Ms, 2)}</td>` +
            `<td class="${bad ? 'err' : ''}">${s.lost} / ${s.duplicated} / ${s.outOfOrder}</td><td>${f(c.perMessage.statements, 2)}</td>` +
            `<td>${f(c.perMessage.xacts, 2)}</td><td>${f(c.perMessage.lockWaitMs, 3)}</td><td>${f(c.perMessage.execMs, 3)}</td>` +
            `<td>${f(c.perMessage.redisCommands, 2)}</td>` +
            `<td>${[c.perMessage.nodesCpuUs, c.perMessage.postgresCpuUs, c.perMessage.redisCpuUs, c.perMessage.loadGenCpuUs].map((v) => f(v, 0)).join(' / ')}</td>` +
            `<td>${f(run.cluster!.scaleRatio, 2)}</td>` +
            `<td class="${c.saturated ? 'err' : ''}">${c.cpu.machineIdlePct}${c.saturated ? ' saturated' : ''}</td><td>${c.cpu.otherPct}</td></tr>`
          );
        })
        .join('') +
      '</table>',
  );
  parts.push(
    '<h3>every step</h3><table><tr><th>shape</th><th>nodes</th><th>offered</th><th>acked/s</th><th>ack p99</th><th>delivery p99</th><th>timeouts</th>' +
      '<th>errors</th><th>nodes CPU % (each node)</th><th>of quota %</th><th>throttled %</th><th>PG CPU %</th><th>Redis CPU %</th><th>load gen %</th>' +
      '<th>other CPU %</th><th>idle %</th><th>lock wait ms / msg</th><th>PG backends (sampled ms): top waits</th>' +
      '<th>longest event-loop delay of a node, ms</th><th>major GCs: count / ms (all nodes)</th><th>result</th></tr>' +
      cl
        .flatMap((run) =>
          run.steps.map((s) => {
            const c = s.cluster!;
            const waits = Object.entries(c.waits)
              .slice(0, 3)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ');
            const verdict = esc(stepVerdict(run, s, 'knee')).replace(/^knee/, '<b>knee</b>');
            return (
              `<tr><td>${esc(run.cluster!.shape)}</td><td>${run.cluster!.nodes}</td><td>${c.offered}</td><td>${s.ackedPerSec}</td><td>${f(s.ack?.p99Ms, 2)}</td>` +
              `<td>${f(s.latency?.p99Ms, 2)}</td><td>${s.timeouts}</td><td>${s.errors}</td><td>${nodesCpu(c)}</td><td>${c.cpu.quotaUsedPct}</td>` +
              `<td>${c.cpu.throttledPct}</td><td>${c.cpu.postgresPct}</td><td>${c.cpu.redisPct}</td><td>${c.cpu.loadGenPct}</td><td>${c.cpu.otherPct}</td>` +
              `<td class="${c.saturated ? 'err' : ''}">${c.cpu.machineIdlePct}</td><td>${f(c.perMessage.lockWaitMs, 3)}</td><td>${esc(waits)}</td>` +
              `<td>${f(c.runtime?.loopDelayMaxMs, 0)}</td><td>${c.runtime ? `${c.runtime.majorGcs} / ${f(c.runtime.majorGcMs, 0)}` : ''}</td>` +
              `<td>${verdict}</td></tr>`
            );
          }),
        )
        .join('') +
      '</table>',
  );
  parts.push('<h3>where PostgreSQL time goes (at the knee)</h3>');
  for (const { shape, nodes, step: s } of rows) {
    if (!s) continue;
    parts.push(
      `<p>${esc(shape)}, ${nodes} node${nodes > 1 ? 's' : ''}, ${esc(s.name)}</p><table><tr><th>statement</th><th>calls / msg</th><th>total ms</th><th>mean ms</th><th>% of time</th></tr>` +
        s
          .cluster!.top.slice(0, 6)
          .map(
            (t) =>
              `<tr><td><code>${esc(t.query.slice(0, 120))}</code></td><td>${f(t.callsPerMessage, 3)}</td>` +
              `<td>${f(t.totalMs, 1)}</td><td>${f(t.meanMs, 3)}</td><td>${f(t.timePct, 1)}</td></tr>`,
          )
          .join('') +
        '</table>',
    );
  }
  return parts.join('\n');
}
