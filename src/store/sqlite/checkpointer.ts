// Moves SQLite's WAL checkpoints off the event loop: the store turns automatic checkpoints off
// and this worker thread, with its own connection to the same file, checkpoints in PASSIVE
// mode (never blocking writers) every few hundred milliseconds. Copying WAL pages into the
// database and fsyncing it otherwise stalls every connection for milliseconds at a time.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

// Plain CommonJS so it runs the same from the sources (tests) and from dist/.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.lib);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { /* busy: the next round retries */ }
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

  constructor(file: string, intervalMs = 250) {
    const lib = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { lib, file, intervalMs } });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // A failing checkpointer must not take the server down; SQLite still works without it
    // (the WAL grows until the next start checkpoints it).
    this.worker.on('error', () => {});
  }

  async close(): Promise<void> {
    this.worker.postMessage('close');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}
