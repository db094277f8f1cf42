// The benchmark harness, run on tiny sizes against Parley only: every workload completes,
// messages are delivered, and Parley loses, duplicates and reorders nothing. Parley runs on
// the Node chosen with `nodes` (here the one running the test) and is labelled with it. The
// cluster workload needs CPU quotas (root and cgroups): without them it must refuse, not measure.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runBench, type BenchResult } from '../bench/run.js';
import { failedOnP99Alone, nextRate, p99Together } from '../bench/cluster.js';
import { newHistogram, summarize } from '../bench/hist.js';
import type { StepResult } from '../bench/run.js';
import { cpuQuotas } from '../bench/cgroup.js';
import { summaryTable, writeReports } from '../bench/report/index.js';

describe('benchmark harness against parley', () => {
  it('runs every workload with deliveries checked: nothing lost, duplicated or out of order', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-test-'));
    const major = process.versions.node.split('.')[0]!;
    let result: BenchResult;
    try {
      result = await runBench({
        // No waiting for a quiet machine: the rest of the suite runs beside this test.
        targets: ['parley'],
        nodes: [major],
        quick: true,
        duration: 1,
        warmupMs: 200,
        quietWaitMs: 0,
        outDir,
        members: 30,
        publishers: 2,
        rates: [40],
        rooms: 20,
        roomSize: 3,
        senders: 4,
        connections: 60,
        idle: 1,
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

  it('with --alloc, reports what Parley allocated in each measured step, per message and per delivery, and where', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-alloc-'));
    try {
      const result = await runBench({
        workloads: ['rooms'],
        targets: ['parley'],
        alloc: true,
        floor: false,
        quick: true,
        duration: 1,
        warmupMs: 200,
        quietWaitMs: 0,
        outDir,
        rates: [100],
        rooms: 5,
        roomSize: 3,
      });
      const run = result.runs[0]!;
      expect(run.error).toBeUndefined();
      const s = run.steps[0]!;
      expect(s.acked).toBeGreaterThan(0);
      const a = s.alloc!;
      // Sending a message allocates kilobytes at least: the frames, the batch, the replies.
      expect(a.bytes).toBeGreaterThan(s.acked * 1024);
      expect(a.kibPerMessage).toBeGreaterThan(1);
      expect(a.kibPerDelivery).toBeLessThan(a.kibPerMessage!);
      expect(a.top.length).toBeGreaterThan(3);
      expect(a.top.some((t) => t.where.startsWith('dist/src/'))).toBe(true);
      const profile = JSON.parse(readFileSync(a.file!, 'utf8')) as { head: { children: unknown[] } };
      expect(profile.head.children.length).toBeGreaterThan(0);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('runs the history workload on a tiny seeded history: every read answers, retention removes the oldest tenth', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-history-'));
    let result: BenchResult;
    const messages = 3000;
    try {
      result = await runBench({
        workloads: ['history'],
        targets: ['parley'],
        quick: true,
        floor: false,
        quietWaitMs: 0,
        outDir,
        historyMessages: messages,
        rooms: 600,
        historyUsers: 100,
        historyFresh: 0,
        historyStores: ['sqlite'],
        samples: 20,
        sweepSec: 3,
      });
      writeReports(result, outDir, 'smoke');
      expect(readFileSync(join(outDir, 'smoke.html'), 'utf8')).toContain('<h2>history</h2>');
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
    expect(result.runs.map((r) => r.label)).toEqual(['parley sqlite big']);
    const run = result.runs[0]!;
    expect(run.error).toBeUndefined();
    const h = run.history!;
    expect(h.shape).toEqual({ messages, rooms: 600, users: 100, inboxRooms: 500 });
    expect(h.startToHealthzMs).toBeGreaterThan(0);
    expect(h.startToAuthMs).toBeGreaterThanOrEqual(h.startToHealthzMs);
    expect(h.queries.map((q) => q.kind)).toEqual([
      'history, newest page',
      'history, deep page (before)',
      'history, oldest page of the biggest room',
      'search, very common word',
      'search, common word',
      'search, medium word',
      'search, rare word',
      'search, two words',
      'inbox',
    ]);
    for (const q of h.queries) {
      expect(q.failed, `${q.kind}: ${q.firstError}`).toBe(0);
      expect(q.latency!.count, q.kind).toBeGreaterThan(0);
    }
    // Database and search index on disk, with every WAL checkpointed away.
    expect(Object.keys(h.disk.parts).sort()).toEqual(['parley.db', 'parley.db-search.db']);
    expect(h.disk.perMessage).toBeGreaterThan(50);
    // The sweep removed the messages older than the retention limit: the oldest tenth.
    expect(h.live.removed).toBeGreaterThanOrEqual(messages * 0.09);
    expect(h.live.removed).toBeLessThanOrEqual(messages * 0.11);
    expect(h.live.sweepS).not.toBeNull();
    // Live traffic went on before and through the sweep, every send acknowledged and delivered.
    expect(h.live.failed, h.live.firstError).toBe(0);
    expect(h.live.acked).toBe(h.live.sent);
    expect(h.live.delivered).toBe(h.live.sent);
    expect(h.live.before.ack!.count).toBeGreaterThan(0);
    expect(summaryTable(result)).toMatch(/^history +messages/m);
  }, 120_000);

  it('runs the cluster workload on nodes with CPU quotas: nothing lost, and per message the database and Redis work', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-cluster-'));
    let result: BenchResult;
    try {
      // Needs root and the cgroup cpu controller: without them runBench throws the reason, and this fails.
      result = await runBench({
        workloads: ['cluster'],
        targets: ['parley'],
        quick: true,
        duration: 1,
        warmupMs: 200,
        quietWaitMs: 0,
        floor: false,
        outDir,
        clusterNodes: [2],
        rooms: 20,
        roomSize: 3,
        rates: [30],
      });
      writeReports(result, outDir, 'smoke');
      expect(readFileSync(join(outDir, 'smoke.html'), 'utf8')).toContain('<h2>cluster</h2>');
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
    expect(result.runs.map((r) => `${r.cluster?.shape} ${r.cluster?.nodes}`)).toEqual(['small 2', 'hot 2']);
    for (const run of result.runs) {
      const where = `${run.cluster!.shape} on ${run.cluster!.nodes}`;
      expect(run.error, `${where}: ${run.error}`).toBeUndefined();
      // One step, measured again when its ack p99 alone failed (a loaded machine): the
      // harness's own rule, which says so in the second step's name.
      expect([1, 2], where).toContain(run.steps.length);
      if (run.steps.length === 2) expect(run.steps[1]!.name, where).toBe(`${run.steps[0]!.name} again`);
      const s = run.steps[0]!;
      expect(s.acked, where).toBeGreaterThan(0);
      expect(s.delivered, where).toBe(s.expected);
      expect([s.lost, s.duplicated, s.outOfOrder], where).toEqual([0, 0, 0]);
      const c = s.cluster!;
      // Each message is written by parley_write_log in PostgreSQL and published at least once in Redis.
      expect(
        c.top.some((t) => /^SELECT parley_write_log\(/.test(t.query)),
        where,
      ).toBe(true);
      expect(c.statements, where).toBeGreaterThanOrEqual(s.acked);
      expect(c.execMs, where).toBeGreaterThan(0);
      expect(c.redisByCommand.publish ?? 0, where).toBeGreaterThanOrEqual(s.acked);
      expect(c.samples, where).toBeGreaterThan(10);
      // The nodes ran under their quotas, and the machine's share is reported.
      expect(c.cpu.periods, where).toBeGreaterThan(0);
      expect(c.cpu.machineIdlePct, where).toBeGreaterThanOrEqual(0);
      expect(c.cpu.machineIdlePct, where).toBeLessThanOrEqual(100);
    }
    // A room of the hot shape has members on both nodes: messages cross nodes through Redis.
    const hot2 = result.runs[1]!.steps[0]!;
    expect(hot2.delivered).toBe(hot2.acked * 6);
    expect(summaryTable(result)).toMatch(/^cluster: knee = /m);
    // Nothing of the run is left behind: no cgroup of this process.
    for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup']) {
      if (existsSync(root)) expect(readdirSync(root).filter((n) => n.startsWith(`parley-bench-${process.pid}-`))).toEqual([]);
    }
    // Generous: a test that times out leaves its servers running, and a busy machine is slow.
  }, 120_000);

  it('refuses the cluster workload, saying why, where CPU quotas cannot be set', async () => {
    // Root may make cgroups, so the refusal is seen as an unprivileged user id.
    await expect(cpuQuotas(0.2, 65534)).rejects.toThrow(
      /cluster workload gives every node a fixed CPU share with a cgroup CPU quota, and creating cgroups needs root/,
    );
    if (process.getuid?.() === 0) return;
    // Not root: the command itself refuses, with exit code 2 and the reason.
    const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-refuse-'));
    try {
      const cli = ['--import', 'tsx', join(import.meta.dirname, '..', 'bench', 'cli.ts'), 'cluster', '--quick', '--no-floor', '-o', outDir];
      const err = await promisify(execFile)(process.execPath, cli, { cwd: join(import.meta.dirname, '..'), timeout: 60_000 }).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(2);
      expect(err?.stderr).toMatch(/cluster workload gives every node a fixed CPU share with a cgroup CPU quota, and creating cgroups needs root/);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 70_000);

  it('finds the knee of a sweep within 10% in at most 9 steps, from above or below', () => {
    for (const [start, knee] of [
      [100, 730],
      [400, 37],
      [200, 200],
      [50, 800],
    ] as const) {
      let lo = 0;
      let hi = Infinity;
      let rate: number | null = start;
      let steps = 0;
      while (rate !== null && steps < 20) {
        steps++;
        if (rate <= knee) lo = Math.max(lo, rate);
        else hi = Math.min(hi, rate);
        rate = nextRate(lo, hi, rate, 1.1);
      }
      expect(lo, `knee ${knee} from ${start}`).toBeLessThanOrEqual(knee);
      expect(lo, `knee ${knee} from ${start}`).toBeGreaterThan(knee / 1.1 / 1.03);
      expect(steps, `knee ${knee} from ${start}`).toBeLessThanOrEqual(9);
    }
  });

  it('judges a step that failed on its ack p99 alone on both runs of it together', () => {
    // 1,000 acks of 5 ms with 15 of 300 ms (one stall): p99 300 ms. Twice the acks, the
    // stall's 15 fall under 1%.
    const run = (stalled: number, extra: Partial<StepResult> = {}): StepResult => {
      const h = newHistogram();
      for (let i = 0; i < 1000 - stalled; i++) h.recordValue(5000);
      for (let i = 0; i < stalled; i++) h.recordValue(300_000);
      const r = {
        ackedPerSec: 100,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        timeouts: 0,
        errors: 0,
        drained: true,
        ack: summarize(h),
        ...extra,
      } as StepResult;
      Object.defineProperty(r, 'ackHistogram', { value: h, enumerable: false });
      return r;
    };
    const stalled = run(15);
    expect(stalled.ack!.p99Ms).toBeGreaterThan(100);
    expect(failedOnP99Alone(stalled, 100)).toBe(true);
    expect(failedOnP99Alone(run(0), 100)).toBe(false);
    expect(failedOnP99Alone(run(15, { timeouts: 1 }), 100)).toBe(false);
    expect(failedOnP99Alone(run(15, { lost: 1 }), 100)).toBe(false);
    expect(failedOnP99Alone(run(15, { ackedPerSec: 80 }), 100)).toBe(false);
    expect(p99Together(stalled, run(0))).toBeLessThan(10);
    expect(p99Together(stalled, run(15))).toBeGreaterThan(100);
    // The histogram stays out of the results' JSON.
    expect(JSON.stringify(stalled)).not.toContain('ackHistogram');
  });
});
