// Fencing by the cluster epoch on a real PostgreSQL: a stale or frozen owner must never commit
// a batch after the epoch it was routed with has ended, and fencing must not make batches wait
// on each other or deadlock.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { createPool } from '../src/store/postgres/pool.js';
import { EPOCH_SQL, FENCE_EXCLUSIVE_SQL, FencedError, enterFence } from '../src/cluster/fence.js';
import { KeyConflictError, emptyBatch, type Batch } from '../src/store/writer.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

let schemas = 0;
/** A migrated schema of its own and a pool on it. */
async function database(poolSize = 10): Promise<{ pool: pg.Pool; close: () => Promise<void> }> {
  const schema = `f${++schemas}_${process.pid}`;
  const store = await PostgresStore.open({ url: server.url, schema });
  await store.pool.query('CREATE TABLE batch_log (epoch bigint NOT NULL, n integer NOT NULL)');
  await store.close();
  const pool = createPool({ url: server.url, schema, poolSize });
  return { pool, close: () => pool.end() };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a change of the node list does: the exclusive lock, then the bump. Resolves with the new epoch. */
async function bump(pool: pg.Pool, before?: (c: pg.PoolClient) => Promise<void>): Promise<number> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(FENCE_EXCLUSIVE_SQL);
    await before?.(c);
    const { rows } = await c.query<{ epoch: number }>('UPDATE cluster_state SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch');
    await c.query('COMMIT');
    return rows[0]!.epoch;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** Opens a batch transaction of `epoch` on its own connection (the fence entered, nothing written yet). */
async function batch(pool: pg.Pool, epoch: number): Promise<{ client: pg.PoolClient; entered: Promise<void> }> {
  const client = await pool.connect();
  await client.query('BEGIN');
  return { client, entered: enterFence(client, epoch) };
}

async function end(client: pg.PoolClient, how: 'COMMIT' | 'ROLLBACK'): Promise<void> {
  await client.query(how);
  client.release();
}

describe('fencing by the cluster epoch', () => {
  it('an epoch bump waits for a batch in flight, which commits', async () => {
    const db = await database();
    const a = await batch(db.pool, 0);
    await a.entered;
    await a.client.query('INSERT INTO batch_log VALUES (0, 1)');
    let bumped = false;
    const p = bump(db.pool).then((e) => {
      bumped = true;
      return e;
    });
    await sleep(300);
    expect(bumped).toBe(false);
    await end(a.client, 'COMMIT');
    expect(await p).toBe(1);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM batch_log WHERE epoch = 0')).rows[0].n).toBe(1);
    await db.close();
  });

  it('a batch of the old epoch that starts after the bump is refused; one of the new epoch goes through', async () => {
    const db = await database();
    expect(await bump(db.pool)).toBe(1);
    const stale = await batch(db.pool, 0);
    const err = await stale.entered.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err).toMatchObject({ code: 'unavailable', epoch: 0, current: 1 });
    await end(stale.client, 'ROLLBACK');
    const fresh = await batch(db.pool, 1);
    await fresh.entered;
    await end(fresh.client, 'COMMIT');
    await db.close();
  });

  it('a batch of the old epoch queued behind a waiting bump sees the new epoch once it gets the lock', async () => {
    const db = await database();
    const a = await batch(db.pool, 0);
    await a.entered;
    const p = bump(db.pool);
    await sleep(100); // the bump now waits for `a`
    const late = await batch(db.pool, 0);
    let settled = false;
    const result = late.entered
      .then(
        () => 'entered',
        (e: unknown) => e,
      )
      .finally(() => {
        settled = true;
      });
    await sleep(200);
    expect(settled).toBe(false); // queued behind the bump, not sharing the lock with `a`
    await end(a.client, 'COMMIT');
    expect(await p).toBe(1);
    expect(await result).toBeInstanceOf(FencedError);
    await end(late.client, 'ROLLBACK');
    await db.close();
  });

  it('many concurrent batches and repeated bumps: no deadlock, and no batch commits in an epoch after it ended', async () => {
    const db = await database(30);
    let known = 0;
    let stop = false;
    const counts = { committed: 0, fenced: 0 };
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const epoch = known;
        const c = await db.pool.connect();
        try {
          await c.query('BEGIN');
          await enterFence(c, epoch);
          await c.query('INSERT INTO batch_log VALUES ($1, $2)', [epoch, w * 100_000 + n]);
          await c.query('COMMIT');
          counts.committed++;
        } catch (err) {
          await c.query('ROLLBACK');
          if (!(err instanceof FencedError)) throw err;
          counts.fenced++;
          known = Math.max(known, err.current ?? 0);
        } finally {
          c.release();
        }
      }
    };
    const workers = Array.from({ length: 24 }, (_, w) => worker(w));
    // At each bump, the rows of the epoch that ends, counted under the exclusive lock.
    const atBump = new Map<number, number>();
    for (let i = 0; i < 8; i++) {
      await sleep(80);
      await bump(db.pool, async (c) => {
        const { rows } = await c.query<{ epoch: number }>(EPOCH_SQL);
        const e = rows[0]!.epoch;
        const { rows: counted } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM batch_log WHERE epoch = $1', [e]);
        atBump.set(e, counted[0]!.n);
      });
    }
    await sleep(80);
    stop = true;
    await Promise.all(workers);
    expect(counts.fenced).toBeGreaterThan(0);
    expect(counts.committed).toBeGreaterThan(50);
    const { rows } = await db.pool.query<{ epoch: number; n: number }>('SELECT epoch, count(*)::int AS n FROM batch_log GROUP BY epoch');
    const final = new Map(rows.map((r) => [r.epoch, r.n]));
    expect(atBump.size).toBe(8);
    for (const [epoch, n] of atBump) expect(final.get(epoch) ?? 0).toBe(n);
    await db.close();
  });

  it('a store batch of messages is one statement, fenced inside it; a stale one writes nothing', async () => {
    const schema = `f${++schemas}_${process.pid}`;
    const store = await PostgresStore.open({ url: server.url, schema });
    const pool = createPool({ url: server.url, schema, poolSize: 2 });
    const text = (seq: number): Batch => ({
      ...emptyBatch(),
      messages: [{ message: { room: 'r', seq, kind: 'text', user: 'u', name: 'u', ts: Date.now(), text: `m${seq}` }, key: null, hiddenFor: null }],
    });
    // Every query the store's connections send while the batch commits.
    const sent: string[] = [];
    const original = pg.Client.prototype.query; // eslint-disable-line @typescript-eslint/unbound-method -- called with its client below
    const spy = vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
      const q = args[0];
      sent.push(typeof q === 'string' ? q : String((q as { text?: string }).text));
      return Reflect.apply(original, this, args) as never;
    });
    try {
      await store.commit(text(2), 0);
    } finally {
      spy.mockRestore();
    }
    // The fence (lock, then epoch) and the INSERT in one function call, its own transaction: one round trip.
    expect(sent).toEqual([expect.stringMatching(/^SELECT parley_write_log\(\$1,/)]);
    expect(await bump(pool)).toBe(1);
    const err = await store.commit(text(3), 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err).toMatchObject({ epoch: 0, current: 1 });
    await store.commit(text(3), 1);
    // A batch of the old epoch that reaches the lock while a bump holds it waits, then sees the new epoch.
    const held = await pool.connect();
    await held.query('BEGIN');
    await held.query(FENCE_EXCLUSIVE_SQL);
    let settled = false;
    const late = store
      .commit(text(4), 1)
      .catch((e: unknown) => e)
      .finally(() => {
        settled = true;
      });
    await sleep(200);
    expect(settled).toBe(false);
    await held.query('UPDATE cluster_state SET epoch = epoch + 1 WHERE id = 1');
    await held.query('COMMIT');
    held.release();
    expect(await late).toMatchObject({ name: 'FencedError', epoch: 1, current: 2 });
    const { rows } = await pool.query<{ seq: string; text: string }>(`SELECT seq, text FROM messages WHERE room_id = 'r' AND kind = 'text' ORDER BY seq`);
    expect(rows.map((r) => [Number(r.seq), r.text])).toEqual([
      [2, 'm2'],
      [3, 'm3'],
    ]);
    await pool.end();
    await store.close();
  });

  it('a message batch with a key stored before stores none of its messages nor summaries, fenced or not', async () => {
    const schema = `f${++schemas}_${process.pid}`;
    const store = await PostgresStore.open({ url: server.url, schema });
    const msg = (seq: number, key: string) => ({
      message: { room: 'r', seq, kind: 'text' as const, user: 'u', name: 'u', ts: Date.now(), text: `m${seq}` },
      key,
      hiddenFor: null,
    });
    const summary = { room: 'r', root: 1, summary: { count: 1, last: 2, lastTs: 0, users: ['u'] } };
    await store.commit({ ...emptyBatch(), messages: [msg(1, 'a')] }, 0);
    for (const epoch of [0, null]) {
      const err = await store.commit({ ...emptyBatch(), messages: [msg(2, 'b'), msg(3, 'a')], threads: [summary] }, epoch).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyConflictError);
    }
    const { rows } = await store.pool.query<{ seq: string }>(`SELECT seq FROM messages WHERE room_id = 'r'`);
    expect(rows.map((r) => Number(r.seq))).toEqual([1]);
    expect((await store.pool.query('SELECT * FROM threads')).rows).toEqual([]);
    await store.close();
  });
});
