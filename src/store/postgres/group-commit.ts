// Group commit of the PostgreSQL store's own writes (users, read markers, server-wide bans):
// while one transaction is in flight the writes arriving meanwhile gather, and the next
// transaction runs them all, each inside its own savepoint so a failing write rejects alone.
// (The room log's batches are written by commit.ts, one statement per table.)
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import { isConnectionError, isRetryable, toStoreError, transaction } from './pool.js';

type Client = pg.PoolClient;
interface Pending {
  run: (c: Client) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
interface BatchResult {
  ok: boolean;
  v: unknown;
}

/** Attempts of a batch that hit a deadlock or serialization failure. */
const BATCH_ATTEMPTS = 3;

export class GroupCommit {
  private queue: Pending[] = [];
  private running = false;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: () => void = () => {};

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxBatch: number,
    private readonly isClosed: () => boolean,
  ) {}

  /** Queues a write; it runs in the next batch transaction. */
  write<T>(run: (c: Client) => Promise<T>): Promise<T> {
    if (this.isClosed()) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        this.idle = new Promise((r) => {
          this.settleIdle = r;
        });
        // Writes called in the same event-loop turn share the first transaction.
        setImmediate(() => {
          void this.drain();
        });
      }
    });
  }

  /** Resolves once every queued write is settled. */
  settled(): Promise<void> {
    return this.idle;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) await this.runBatch(this.queue.splice(0, this.maxBatch));
    this.running = false;
    this.settleIdle();
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS; attempt++) {
      let sent = false;
      try {
        const results = await this.tryBatch(batch, () => {
          sent = true;
        });
        for (let i = 0; i < batch.length; i++) {
          const r = results[i]!;
          if (r.ok) batch[i]!.resolve(r.v);
          else batch[i]!.reject(toStoreError(r.v));
        }
        return;
      } catch (err) {
        lastErr = err;
        // Rolled back as a whole: run it again after a deadlock, or when a connection broke
        // before COMMIT was sent (a pooled connection the server had closed). A break during
        // COMMIT leaves the outcome unknown, so that is reported, not retried.
        const again = isRetryable(err) || (isConnectionError(err) && !sent && attempt === 1);
        if (!again) break;
      }
    }
    const failure = toStoreError(lastErr);
    const out = failure.code === 'internal' ? failure : new ParleyError('unavailable', failure.message);
    for (const p of batch) p.reject(out);
  }

  /** One transaction over the batch; throws when it did not commit as a whole. */
  private tryBatch(batch: Pending[], committing: () => void): Promise<BatchResult[]> {
    return transaction(this.pool, async (client) => {
      await client.query('SAVEPOINT w');
      const results = new Array<BatchResult>(batch.length);
      for (let i = 0; i < batch.length; i++) {
        try {
          results[i] = { ok: true, v: await batch[i]!.run(client) };
          if (i < batch.length - 1) await client.query('RELEASE SAVEPOINT w; SAVEPOINT w');
        } catch (err) {
          if (isConnectionError(err) || isRetryable(err)) throw err;
          // Undo whatever this write did; the batch goes on.
          await client.query('ROLLBACK TO SAVEPOINT w');
          results[i] = { ok: false, v: err };
        }
      }
      committing();
      return results;
    });
  }
}
