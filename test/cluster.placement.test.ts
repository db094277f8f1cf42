// Room ownership kept in PostgreSQL, with real placements on one real database: every node
// acts on the same epoch and owners, a change of the node list bumps the epoch and reaches the
// other nodes without waiting for a heartbeat, a node that stops renewing its lease is removed
// (its open transaction ended first), and a batch routed with an epoch that ended is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import pino from 'pino';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { createPool } from '../src/store/postgres/pool.js';
import { FencedError, enterFence } from '../src/cluster/fence.js';
import { PostgresPlacement, applicationName, newIncarnation } from '../src/cluster/placement-postgres.js';
import { ownerIn, type ClusterView } from '../src/cluster/placement.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const rooms = Array.from({ length: 200 }, (_, i) => `room-${i}`);

let schemas = 0;
async function schema(): Promise<string> {
  const name = `p${++schemas}_${process.pid}`;
  const store = await PostgresStore.open({ url: server.url, schema: name });
  await store.close();
  return name;
}

interface Node {
  placement: PostgresPlacement;
  pool: pg.Pool;
  inc: string;
  close(): Promise<void>;
}

/** A node's placement on its own pool, named as a node's pool is. */
function node(db: string, id: string, timing: { heartbeatMs: number; nodeTimeoutMs: number }, lockTimeoutMs = 5000): Node {
  const inc = newIncarnation();
  const pool = createPool({ url: server.url, schema: db, poolSize: 4, applicationName: applicationName(id, inc) });
  const placement = new PostgresPlacement({ pool, self: { id, url: `http://${id}.test:1` }, incarnation: inc, log, lockTimeoutMs, ...timing });
  return {
    placement,
    pool,
    inc,
    close: async () => {
      await placement.stop();
      await pool.end();
    },
  };
}

const SLOW = { heartbeatMs: 30_000, nodeTimeoutMs: 60_000 };

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(10);
  }
}

describe('placement in PostgreSQL', () => {
  it("nodes of one database agree on the epoch and on every room's owner; a join or a leave reaches the others at once", async () => {
    const db = await schema();
    // Heartbeats far apart: only the notification can tell the others in time.
    const nodes = ['a', 'b', 'c'].map((id) => node(db, id, SLOW));
    const changes: Array<[number, number]> = [];
    nodes[0]!.placement.onChange((prev, next) => changes.push([prev.epoch, next.epoch]));
    for (const n of nodes) await n.placement.start();
    await until(() => nodes.every((n) => n.placement.view().epoch === 3), 2000);
    const views = nodes.map((n) => n.placement.view());
    for (const v of views) expect(v.nodes.map((n) => n.id)).toEqual(['a', 'b', 'c']);
    for (const room of rooms) {
      const owners = nodes.map((n) => n.placement.ownerOf(room).id);
      expect(new Set(owners).size).toBe(1);
      expect(nodes.filter((n) => n.placement.isLocal(room)).map((n) => n.placement.self)).toEqual([owners[0]]);
    }
    // Every node owns some rooms.
    expect(new Set(rooms.map((r) => nodes[0]!.placement.ownerOf(r).id)).size).toBe(3);
    expect(changes).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
    ]);

    // b leaves cleanly: one bump, told to the others without a heartbeat.
    await nodes[1]!.close();
    await until(() => nodes[0]!.placement.view().epoch === 4 && nodes[2]!.placement.view().epoch === 4, 2000);
    for (const n of [nodes[0]!, nodes[2]!]) expect(n.placement.view().nodes.map((x) => x.id)).toEqual(['a', 'c']);
    for (const room of rooms) expect(nodes[0]!.placement.ownerOf(room).id).toBe(nodes[2]!.placement.ownerOf(room).id);
    expect((await nodes[0]!.pool.query('SELECT epoch, (SELECT count(*)::int FROM cluster_nodes) AS n FROM cluster_state')).rows[0]).toEqual({ epoch: 4, n: 2 });
    await nodes[0]!.close();
    await nodes[2]!.close();
  });

  it('a batch of the old epoch waits for a join in progress and is then refused with FencedError', async () => {
    const db = await schema();
    const a = node(db, 'a', SLOW);
    await a.placement.start();
    const epoch = a.placement.view().epoch;
    expect(epoch).toBe(1);
    // A batch of a is in flight when c starts joining.
    const x = await a.pool.connect();
    await x.query('BEGIN');
    await enterFence(x, epoch);
    const c = node(db, 'c', SLOW);
    let joined = false;
    const joining = c.placement.start().then(() => {
      joined = true;
    });
    await sleep(200);
    expect(joined).toBe(false); // the join waits for the batch in flight
    // Another batch of epoch 1 starts now: it queues behind the join instead of racing it.
    const y = await a.pool.connect();
    await y.query('BEGIN');
    let fenced: unknown = 'pending';
    const entered = enterFence(y, epoch).then(
      () => 'entered',
      (e: unknown) => e,
    );
    void entered.then((r) => {
      fenced = r;
    });
    await sleep(200);
    expect(fenced).toBe('pending');
    await x.query('COMMIT'); // the batch in flight commits in its epoch
    x.release();
    await joining;
    const err = await entered;
    expect(err).toBeInstanceOf(FencedError);
    expect(err).toMatchObject({ code: 'unavailable', epoch: 1, current: 2 });
    await y.query('ROLLBACK');
    y.release();
    // After a refresh the node routes with the new epoch, and its batches pass.
    expect((await a.placement.refresh()).epoch).toBe(2);
    const z = await a.pool.connect();
    await z.query('BEGIN');
    await enterFence(z, a.placement.view().epoch);
    await z.query('COMMIT');
    z.release();
    await c.close();
    await a.close();
  });

  it('a node that stops renewing its lease is removed: its open transaction is ended, the epoch bumped, its rooms moved', async () => {
    const db = await schema();
    // "frozen" renews its lease every 30 s: for b, which judges leases by 800 ms, it stopped.
    const frozen = node(db, 'frozen', SLOW);
    await frozen.placement.start();
    const epoch = frozen.placement.view().epoch;
    // It holds a batch open, as a node frozen mid-commit would.
    const held = await frozen.pool.connect();
    held.on('error', () => undefined);
    await held.query('BEGIN');
    await enterFence(held, epoch);
    const b = node(db, 'b', { heartbeatMs: 100, nodeTimeoutMs: 800 }, 300);
    const views: ClusterView[] = [];
    b.placement.onChange((_p, next) => views.push(next));
    const started = performance.now();
    await b.placement.start(); // its join waits for the held batch: lock_timeout, then tries again
    await until(() => b.placement.view().nodes.every((n) => n.id !== 'frozen'), 15_000);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(b.placement.view().nodes.map((n) => n.id)).toEqual(['b']);
    expect(views.at(-1)!.epoch).toBeGreaterThan(epoch + 1);
    for (const room of rooms) {
      expect(b.placement.isLocal(room)).toBe(true);
      expect(ownerIn(b.placement.view(), room)?.id).toBe('b');
    }
    // The held transaction was ended by the database, so it can never commit.
    const err = await held.query('SELECT 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    held.release(true);
    // The frozen node, still acting on its old view, is fenced on a new connection.
    expect(frozen.placement.isLocal(rooms[0]!)).toBe(true);
    const again = await frozen.pool.connect();
    await again.query('BEGIN');
    const fenced = await enterFence(again, epoch).catch((e: unknown) => e);
    expect(fenced).toBeInstanceOf(FencedError);
    await again.query('ROLLBACK');
    again.release();
    await b.close();
    await frozen.pool.end();
  });

  it('refuses a malformed node id and timings', () => {
    const pool = createPool({ url: server.url });
    const base = { pool, incarnation: 'x', log, heartbeatMs: 100, nodeTimeoutMs: 1000 };
    expect(() => new PostgresPlacement({ ...base, self: { id: 'a b', url: '' } })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => new PostgresPlacement({ ...base, self: { id: 'a', url: '' }, nodeTimeoutMs: 100 })).toThrow(expect.objectContaining({ code: 'invalid' }));
    void pool.end();
  });
});
