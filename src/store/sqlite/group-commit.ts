// Group commit of the SQLite store's own writes (users, read markers, server-wide bans):
// every write called in the same event-loop turn shares one transaction and one fsync. A write
// that refuses (a ParleyError) has written nothing; any other error may come after a partial
// write, so the batch is then rolled back and run again with a savepoint around each write, and
// only the failing one is undone. Under sustained load commits are spaced by
// `commitIntervalMs`, so each carries more. (The room log batches its own writes: commit.ts.)
import Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';

interface Pending {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
interface BatchResult {
  ok: boolean;
  v: unknown;
}
/** Thrown inside a batch to roll it back and run it again with a savepoint per write. */
class Retry extends Error {}

/** A driver failure as a coded error: the database failing is `unavailable`, anything else `internal`. */
export function sqliteError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)/.test(e.code)) return new ParleyError('conflict', 'already exists');
  if (err instanceof Database.SqliteError || err instanceof TypeError)
    return new ParleyError('unavailable', `storage failed: ${e.message ?? 'database closed'}`);
  return new ParleyError('internal', `storage error: ${e.message ?? String(err)}`);
}

export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private lastFlush = -Infinity;
  /** Writes carried by the last commit. */
  private lastBatch = 0;
  private readonly savepoint: (fn: () => unknown) => unknown;
  private readonly batchTx: (batch: Pending[], isolate: boolean, results: BatchResult[]) => void;

  constructor(
    db: Database.Database,
    private readonly commitIntervalMs: number,
    private readonly isClosed: () => boolean,
  ) {
    this.savepoint = db.transaction((fn: () => unknown) => fn());
    // Built once: better-sqlite3 makes a new wrapper (and its variants) per transaction() call.
    this.batchTx = db.transaction((batch: Pending[], isolate: boolean, results: BatchResult[]) => {
      for (let i = 0; i < batch.length; i++) {
        try {
          results[i] = { ok: true, v: isolate ? this.savepoint(batch[i]!.run) : batch[i]!.run() };
        } catch (err) {
          if (!isolate && !(err instanceof ParleyError)) throw new Retry();
          results[i] = { ok: false, v: err };
        }
      }
    });
  }

  /** Queues a write for the next commit; settles once it is committed (or refused). */
  write<T>(run: () => T): Promise<T> {
    if (this.isClosed()) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        const wait = this.lastBatch > 1 ? this.lastFlush + this.commitIntervalMs - performance.now() : 0;
        if (wait > 0) setTimeout(() => this.flush(), wait);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (also at close). */
  flush(): void {
    this.scheduled = false;
    this.lastFlush = performance.now();
    const batch = this.queue;
    this.queue = [];
    this.lastBatch = batch.length;
    if (batch.length === 0) return;
    let results = this.runBatch(batch, false);
    if (results === 'retry') results = this.runBatch(batch, true);
    if (results instanceof Error) {
      for (const p of batch) p.reject(results);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const r = (results as BatchResult[])[i]!;
      if (r.ok) batch[i]!.resolve(r.v);
      else batch[i]!.reject(r.v instanceof ParleyError ? r.v : new ParleyError('internal', `storage error: ${(r.v as Error).message}`));
    }
  }

  get pending(): number {
    return this.queue.length;
  }

  private runBatch(batch: Pending[], isolate: boolean): BatchResult[] | 'retry' | ParleyError {
    const results = new Array<BatchResult>(batch.length);
    try {
      this.batchTx(batch, isolate, results);
    } catch (err) {
      if (err instanceof Retry) return 'retry';
      return new ParleyError('unavailable', `storage failed: ${(err as Error).message}`);
    }
    return results;
  }
}
