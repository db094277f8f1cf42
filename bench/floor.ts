// The machine's own latency floor, measured before the workloads, with nothing else running:
//  - a durable write as one small SQLite commit makes it: four 4 KiB pages, then fsync, into
//    the temporary folder that holds the targets' data, after a short idle pause;
//  - how late a thread sleeping in a timer wakes up.
// On a virtual machine both have tails of several milliseconds, whichever server runs on it: a
// durable server pays the first once per message, and every server pays the second on each
// side of the socket. The report prints them next to the workloads so a latency tail can be
// read against what the machine itself allows.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newHistogram, summarize, type LatencySummary } from './hist.js';

export interface Floor {
  /** Rounds measured, each after an idle pause of `idleMs`. */
  rounds: number;
  idleMs: number;
  /** Where the durable writes went (the file system of the targets' data folders). */
  dir: string;
  /** Four 4 KiB writes and an fsync: one single-message commit. */
  durableWrite: LatencySummary;
  /** How much later than asked a timer of `idleMs` fired. */
  wakeUpLate: LatencySummary;
}

const PAGE = 4096;
const PAGES_PER_COMMIT = 4;
const FILE_PAGES = 256;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureFloor(rounds = 400, idleMs = 5, parent = tmpdir()): Promise<Floor> {
  const dir = mkdtempSync(join(parent, 'bench-floor-'));
  const file = join(dir, 'wal');
  const fd = openSync(file, 'w');
  try {
    // Preallocated, as a WAL file is once it has grown: the measured writes overwrite blocks.
    writeSync(fd, Buffer.alloc(FILE_PAGES * PAGE));
    fsyncSync(fd);
    const page = Buffer.alloc(PAGE, 0x5a);
    const write = newHistogram();
    const late = newHistogram();
    let slot = 0;
    for (let i = 0; i < rounds; i++) {
      const asleep = performance.now();
      await sleep(idleMs);
      late.recordValue(Math.max(1, Math.round((performance.now() - asleep - idleMs) * 1000)));
      const t0 = performance.now();
      for (let p = 0; p < PAGES_PER_COMMIT; p++) writeSync(fd, page, 0, PAGE, (slot++ % FILE_PAGES) * PAGE);
      fsyncSync(fd);
      write.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    return { rounds, idleMs, dir: parent, durableWrite: summarize(write)!, wakeUpLate: summarize(late)! };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function floorLine(f: Floor): string {
  const s = (l: LatencySummary): string => `p50 ${l.p50Ms.toFixed(2)} · p99 ${l.p99Ms.toFixed(2)} · max ${l.maxMs.toFixed(2)} ms`;
  return (
    `machine floor (${f.rounds} rounds after ${f.idleMs} ms idle): durable write (4 pages + fsync) ${s(f.durableWrite)}; ` +
    `timer wake-up late by ${s(f.wakeUpLate)}`
  );
}
