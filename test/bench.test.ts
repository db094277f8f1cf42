// The benchmark harness, run on tiny sizes against Parley only: every workload completes,
// messages are delivered, and Parley loses, duplicates and reorders nothing. Parley runs on
// the Node chosen with `nodes` (here the one running the test) and is labelled with it.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench, type BenchResult } from '../bench/run.js';
import { summaryTable, writeReports } from '../bench/report/index.js';

describe('benchmark harness against parley', () => {
  it('runs every workload with deliveries checked: nothing lost, duplicated or out of order', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-test-'));
    const major = process.versions.node.split('.')[0]!;
    let result: BenchResult;
    try {
      result = await runBench({
        // No waiting for a quiet machine: the rest of the suite runs beside this test.
        targets: ['parley'], nodes: [major], quick: true, duration: 1, warmupMs: 200, quietWaitMs: 0, outDir,
        members: 30, publishers: 2, rates: [40], rooms: 20, roomSize: 3, senders: 4, connections: 60, idle: 1,
      });
      const files = writeReports(result, outDir, 'smoke');
      expect(files.html).toMatch(/smoke\.html$/);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }

    expect(result.runs.map((r) => r.workload)).toEqual(['chat21', 'fanout', 'rooms', 'ingest', 'connections']);
    expect(new Set(result.runs.map((r) => `${r.label} ${r.node}`))).toEqual(new Set([`parley@node${major} ${process.versions.node}`]));
    for (const run of result.runs) {
      expect(run.error, `${run.workload}: ${run.error}`).toBeUndefined();
      expect(run.setup.failed).toBe(0);
      for (const s of run.steps) {
        const where = `${run.workload} ${s.name}`;
        expect(s.errors, where).toBe(0);
        expect(s.acked, where).toBeGreaterThan(0);
        expect(s.delivered, where).toBe(s.expected);
        expect(s.delivered, where).toBeGreaterThan(0);
        expect([s.lost, s.duplicated, s.outOfOrder], where).toEqual([0, 0, 0]);
        expect(s.serverCpuMs, where).toBeGreaterThanOrEqual(0);
      }
    }
    const byName = Object.fromEntries(result.runs.map((r) => [r.workload, r]));
    // Latency is measured where a recipient other than the sender receives.
    expect(byName.chat21!.steps.map((s) => s.name)).toEqual(['direct', 'group']);
    for (const w of ['chat21', 'fanout', 'rooms']) expect(byName[w]!.steps[0]!.latency?.count).toBeGreaterThan(0);
    expect(byName.fanout!.steps[0]!.delivered).toBe(byName.fanout!.steps[0]!.acked * 30);
    expect(byName.ingest!.steps[0]!.ack?.count).toBeGreaterThan(0);
    expect(byName.connections!.memory.perConnectionKiB).not.toBeNull();
    expect(byName.connections!.setup.connectsPerSec).toBeGreaterThan(0);
    expect(summaryTable(result)).toContain(`parley@node${major}`);
    // The machine floor comes first: real fsyncs and timer wake-ups, one sample per round.
    expect(result.floor?.durableWrite.count).toBe(150);
    expect(result.floor?.wakeUpLate.count).toBe(150);
    expect(result.floor!.durableWrite.p50Ms).toBeGreaterThan(0);
    expect(summaryTable(result)).toMatch(/^machine floor \(150 rounds after 5 ms idle\): durable write/);
  }, 120_000);
});
