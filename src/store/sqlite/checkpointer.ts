// Moves SQLite's WAL checkpoints off the event loop: the store turns automatic checkpoints off
// and this worker thread, with its own connection to the same file, checkpoints in PASSIVE
// mode (never blocking writers) every few hundred milliseconds. Copying WAL pages into the
// database and fsyncing it otherwise stalls every connection for milliseconds at a time.
//
// SQLite starts the WAL over from its beginning only when a write begins while every frame in
// it has been copied (and no reader is inside it). Under sustained writes that does not happen
// on its own: a checkpoint takes milliseconds, the store commits more frames meanwhile, and the
// WAL grew for as long as the load lasted (133 MB in a minute of the rooms benchmark), every
// fsync of a commit also extending the file. So once the WAL is large, a round copies again
// what was committed during its last copy, each copy shorter than the one before, and then the
// store, the only writer, copies the last few frames between two of its commits (1.5-4 ms on
// the rooms benchmark, once per 64 MB of WAL). Its next write starts the WAL over, and the file
// keeps its size: later commits overwrite pages it already has, and their fsyncs cost less.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

// Plain CommonJS so it runs the same from the sources (tests) and from dist/.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.lib);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
const checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
let reported = 0;
const timer = setInterval(() => {
  try {
    let r = checkpoint();
    // A large WAL: copy again what was committed during the last copy, each copy shorter.
    for (let i = 0; r.log >= workerData.restartFrames && i < 5; i++) {
      const next = checkpoint();
      if (next.log <= r.log) break; // no commit landed during the last copy, or it started over
      r = next;
    }
    // Then the store copies the last few frames itself (once per WAL size: an idle WAL is not
    // started over, since no write comes, and needs no second report).
    if (r.log >= workerData.restartFrames && r.checkpointed === r.log && r.log !== reported) {
      reported = r.log;
      parentPort.postMessage(r.log);
    }
  } catch (err) { /* busy: the next round retries */ }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { /* the next start checkpoints */ }
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  /**
   * `onCaughtUp` runs on the store's thread when a round copied all it found in a WAL of at
   * least `restartFrames` pages; the store then copies what was committed since.
   */
  constructor(file: string, o: { onCaughtUp?: () => void; restartFrames?: number; intervalMs?: number } = {}) {
    const lib = createRequire(import.meta.url).resolve('better-sqlite3');
    const workerData = { lib, file, intervalMs: o.intervalMs ?? 250, restartFrames: o.onCaughtUp ? (o.restartFrames ?? 16384) : Infinity };
    this.worker = new Worker(WORKER, { eval: true, workerData });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // A failing checkpointer must not take the server down; SQLite still works without it
    // (the WAL grows until the next start checkpoints it).
    this.worker.on('error', () => {});
    const onCaughtUp = o.onCaughtUp;
    if (onCaughtUp) this.worker.on('message', () => onCaughtUp());
  }

  async close(): Promise<void> {
    this.worker.postMessage('close');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}
