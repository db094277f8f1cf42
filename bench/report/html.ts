// The HTML report: one self-contained page (inline SVG, no scripts, nothing fetched) with a
// latency-percentile chart per workload and target, and the figures of every step.
import type { BenchResult, RunResult, StepResult } from '../run.js';
import type { LatencySummary } from '../hist.js';
import type { Floor } from '../floor.js';
import { attachmentsTable } from '../attachments.js';
import { historyTable } from '../history.js';
import { clusterHtml, isCluster } from './cluster.js';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const n = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '–' : x.toFixed(d));

/** Percentile on a "nines" axis (like HdrHistogram plots): x = log10(1 / (1 - p)). */
function nines(p: number): number {
  return Math.log10(1 / Math.max(1e-5, 1 - p / 100));
}

function chart(title: string, series: Array<{ label: string; curve: Array<[number, number]> }>): string {
  const W = 560,
    H = 300,
    L = 56,
    R = 12,
    T = 28,
    B = 40;
  const maxX = nines(99.99);
  const maxY = Math.max(1, ...series.flatMap((s) => s.curve.map(([, v]) => v)));
  // Log scale on y: tails span orders of magnitude.
  const minY = Math.max(0.01, Math.min(...series.flatMap((s) => s.curve.map(([, v]) => v)).filter((v) => v > 0), maxY));
  const ly = (v: number): number => Math.log10(Math.max(minY, v));
  const y0 = Math.floor(ly(minY)),
    y1 = Math.ceil(ly(maxY));
  const X = (p: number): number => L + (Math.min(nines(p), maxX) / maxX) * (W - L - R);
  const Y = (v: number): number => T + (1 - (ly(v) - y0) / Math.max(1, y1 - y0)) * (H - T - B);
  const grid: string[] = [];
  for (const p of [0, 90, 99, 99.9, 99.99]) {
    grid.push(
      `<line x1="${X(p)}" y1="${T}" x2="${X(p)}" y2="${H - B}" stroke="#ddd"/>`,
      `<text x="${X(p)}" y="${H - B + 16}" font-size="11" text-anchor="middle">p${p}</text>`,
    );
  }
  for (let e = y0; e <= y1; e++) {
    const v = 10 ** e;
    grid.push(
      `<line x1="${L}" y1="${Y(v)}" x2="${W - R}" y2="${Y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${Y(v) + 4}" font-size="11" text-anchor="end">${v >= 1 ? v : v.toFixed(2)} ms</text>`,
    );
  }
  const lines = series.map((s, i) => {
    const pts = s.curve
      .filter(([p]) => p < 100)
      .map(([p, v]) => `${X(p).toFixed(1)},${Y(v).toFixed(1)}`)
      .join(' ');
    const c = COLORS[i % COLORS.length];
    return (
      `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>` +
      `<rect x="${W - R - 150}" y="${T + 4 + i * 15}" width="10" height="10" fill="${c}"/>` +
      `<text x="${W - R - 136}" y="${T + 13 + i * 15}" font-size="11">${esc(s.label)}</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">` +
    `<text x="${L}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>${grid.join('')}${lines.join('')}` +
    `<text x="${(L + W) / 2}" y="${H - 6}" font-size="11" text-anchor="middle">percentile</text></svg>`
  );
}

function bars(title: string, items: Array<{ label: string; value: number | null }>, unit: string): string {
  const W = 560,
    rowH = 22,
    L = 170,
    T = 26;
  const H = T + items.length * rowH + 10;
  const max = Math.max(1e-9, ...items.map((i) => i.value ?? 0));
  const rows = items.map((it, i) => {
    const w = ((it.value ?? 0) / max) * (W - L - 90);
    return (
      `<text x="${L - 6}" y="${T + i * rowH + 14}" font-size="11" text-anchor="end">${esc(it.label)}</text>` +
      `<rect x="${L}" y="${T + i * rowH + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[i % COLORS.length]}"/>` +
      `<text x="${L + w + 4}" y="${T + i * rowH + 14}" font-size="11">${n(it.value, 1)} ${unit}</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<text x="0" y="16" font-size="13" font-weight="bold">${esc(title)}</text>${rows.join('')}</svg>`
  );
}

function latencyCells(l: LatencySummary | null): string {
  return l ? [l.meanMs, l.p50Ms, l.p90Ms, l.p99Ms, l.p999Ms, l.maxMs].map((v) => `<td>${n(v, 2)}</td>`).join('') : '<td colspan="6">–</td>';
}

function stepTable(runs: RunResult[]): string {
  const rows = runs.flatMap((run) =>
    run.error
      ? [`<tr><td>${esc(run.label)}</td><td colspan="19" class="err">${esc(run.error)}</td></tr>`]
      : run.steps
          .map(
            (s: StepResult) =>
              `<tr><td>${esc(run.label)}</td><td>${esc(s.name)}</td><td>${s.ackedPerSec}</td>` +
              `<td>${s.deliveriesPerSec}</td><td class="${s.lost ? 'err' : ''}">${s.lost}</td><td class="${s.duplicated ? 'err' : ''}">${s.duplicated}</td>` +
              `<td class="${s.outOfOrder ? 'err' : ''}">${s.outOfOrder}</td>${latencyCells(s.latency)}<td>${n(s.ack?.p99Ms, 2)}</td>` +
              `<td>${n(s.cpuUsPerDelivery, 2)}</td><td>${n(s.cpuUsPerMessage, 1)}</td><td>${s.serverCpuPct}</td><td>${n(s.rssMiB)}</td><td>${n(s.stealPct)}</td><td>${s.otherCpuPct}</td></tr>`,
          )
          .concat(run.stoppedAt ? [`<tr><td>${esc(run.label)}</td><td colspan="19">sweep stopped at ${esc(run.stoppedAt)}</td></tr>`] : []),
  );
  return (
    `<table><tr><th>target</th><th>step</th><th>acked/s</th><th>deliveries/s</th><th>lost</th><th>dup</th><th>out of order</th>` +
    `<th>mean ms</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>ack p99</th>` +
    `<th>server CPU µs/delivery</th><th>µs/message</th><th>server CPU %</th><th>RSS MiB</th><th>steal %</th><th>other processes' CPU %</th></tr>${rows.join('')}</table>`
  );
}

function workloadSection(workload: string, runs: RunResult[]): string {
  const first = runs[0]!;
  const parts = [`<h2>${esc(workload)}</h2><p>${esc(first.description)}</p>`];
  if (workload === 'connections') {
    parts.push(
      bars(
        'server memory per connection',
        runs.map((r) => ({ label: r.label, value: r.memory.perConnectionKiB })),
        'KiB',
      ),
    );
    parts.push(
      bars(
        'connects per second (connect + authenticate)',
        runs.map((r) => ({ label: r.label, value: r.setup.connectsPerSec })),
        '/s',
      ),
    );
    parts.push(
      `<table><tr><th>target</th><th>connections</th><th>connects/s</th><th>connect p99 ms</th><th>RSS before MiB</th><th>RSS after MiB</th><th>KiB per connection</th><th>dropped while idle</th></tr>` +
        runs
          .map(
            (r) =>
              `<tr><td>${esc(r.label)}</td><td>${r.connections}</td><td>${r.setup.connectsPerSec}</td><td>${n(r.setup.connectMs?.p99Ms)}</td>` +
              `<td>${r.memory.rssBeforeMiB}</td><td>${r.memory.rssAfterMiB}</td><td>${n(r.memory.perConnectionKiB, 2)}</td><td>${r.setup.droppedWhileIdle ?? '–'}</td></tr>` +
              (r.error ? `<tr><td colspan="8" class="err">${esc(r.error)}</td></tr>` : ''),
          )
          .join('') +
        '</table>',
    );
    return parts.join('\n');
  }
  const charts = runs
    .filter((r) => !r.error)
    .map((r) =>
      chart(
        `${workload} · ${r.label} · delivery latency`,
        r.steps.filter((s) => s.latency ?? s.ack).map((s) => ({ label: `${s.name}${s.latency ? '' : ' (ack)'}`, curve: (s.latency ?? s.ack)!.curve })),
      ),
    );
  parts.push(`<div class="charts">${charts.join('')}</div>`);
  const last = (r: RunResult): StepResult | undefined => r.steps[r.steps.length - 1];
  parts.push(
    bars(
      'server CPU per delivery (last step)',
      runs.map((r) => ({ label: `${r.label} ${last(r)?.name ?? ''}`, value: last(r)?.cpuUsPerDelivery ?? null })),
      'µs',
    ),
  );
  parts.push(stepTable(runs));
  return parts.join('\n');
}

function floorSection(f: Floor): string {
  const row = (label: string, l: LatencySummary): string => `<tr><td>${esc(label)}</td>${latencyCells(l)}</tr>`;
  return (
    `<h2>machine floor</h2><p>Measured before the workloads, ${f.rounds} rounds, each after ${f.idleMs} ms idle: a durable write as one ` +
    `single-message commit makes it (four 4 KiB pages and an fsync, in ${esc(f.dir)}), and how late a sleeping timer wakes up. ` +
    `A durable server pays the write once per message; every server pays a wake-up on each side of a socket.</p>` +
    `<div class="charts">${chart('machine floor', [
      { label: 'durable write', curve: f.durableWrite.curve },
      { label: 'wake-up late by', curve: f.wakeUpLate.curve },
    ])}</div>` +
    `<table><tr><th></th><th>mean ms</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>` +
    `${row('durable write', f.durableWrite)}${row('wake-up late by', f.wakeUpLate)}</table>`
  );
}

function attachmentsHtml(runs: RunResult[]): string {
  const table = attachmentsTable(runs);
  if (!table) return '';
  const first = runs.find((r) => r.workload === 'attachments')!;
  return (
    `<h2>attachments</h2><p>${esc(first.description)}. Server RSS growth is its peak over the baseline after a warm-up round of uploads: ` +
    `uploads are streamed, so it must stay flat. Text latency is from send to delivery to another member.</p><pre>${esc(table)}</pre>`
  );
}

function historyHtml(runs: RunResult[]): string {
  const table = historyTable(runs);
  if (!table) return '';
  const detail = runs
    .filter((r) => r.history)
    .map(
      (r) =>
        `<h3>${esc(r.label)}</h3><p>${esc(r.description)}</p><table><tr><th>query</th><th>p50 ms</th><th>p99</th><th>max</th><th>failed</th><th>what</th></tr>` +
        r
          .history!.queries.map(
            (q) =>
              `<tr><td>${esc(q.kind)}</td><td>${q.latency?.p50Ms ?? '-'}</td><td>${q.latency?.p99Ms ?? '-'}</td><td>${q.latency?.maxMs ?? '-'}</td>` +
              `<td>${q.failed}</td><td>${esc(q.detail ?? '')}</td></tr>`,
          )
          .join('') +
        '</table>',
    )
    .join('');
  return (
    `<h2>history</h2><p>A node on a seeded history: start to serving, reads, bytes on disk per message, and live traffic while retention removes ` +
    `the oldest tenth. Query latency is one client's sequential requests to an otherwise idle server.</p><pre>${esc(table)}</pre>${detail}`
  );
}

export function htmlReport(r: BenchResult): string {
  const byWorkload = new Map<string, RunResult[]>();
  for (const run of r.runs.filter((x) => !isCluster(x) && x.workload !== 'attachments' && x.workload !== 'history'))
    byWorkload.set(run.workload, [...(byWorkload.get(run.workload) ?? []), run]);
  const m = r.machine;
  const parleyNodes = [...new Set(r.runs.filter((x) => x.label !== x.target).map((x) => `${x.label.split('@')[1]} = ${x.node}`))];
  const on = parleyNodes.length > 0 ? ` · Parley on ${esc(parleyNodes.join(', '))}` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Parley benchmark ${esc(r.startedAt)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1240px}table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}.err{color:#b00;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fafafa;border:1px solid #eee}code{background:#f3f3f3;padding:1px 4px}</style></head><body>
<h1>Parley benchmark</h1>
<p>${esc(r.startedAt)} – ${esc(r.finishedAt)} · ${m.cpus} CPUs (${esc(m.cpuModel)}), ${m.memTotalGiB} GiB, Linux ${esc(m.kernel)}, Node ${esc(m.node)} ·
load generator on the same machine (${r.options.workers} worker threads) · Parley SQLite synchronous=${esc(r.options.synchronous)}${on}${r.options.nodeFlags?.length ? ` · Parley run with <code>${esc(r.options.nodeFlags.join(' '))}</code>` : ''}${r.options.quick ? ' · <b>quick run</b>' : ''}</p>
<p>Latency is measured from the moment a probe sends to the moment another connection receives the message; "ack" is send to acknowledgement.
Server CPU is user+system time of the server process from <code>/proc/PID/stat</code> over the step (sending and draining), divided by deliveries.</p>
${r.floor ? floorSection(r.floor) : ''}
${[...byWorkload].map(([w, runs]) => workloadSection(w, runs)).join('\n')}
${clusterHtml(r.runs)}
${attachmentsHtml(r.runs)}
${historyHtml(r.runs)}
</body></html>`;
}
