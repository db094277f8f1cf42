// One connection's sends are stored in the order they were sent, also while their room moves
// between nodes: the room log of a node (over a real SQLite store) with a cluster whose view
// the test moves by hand, a forwarding call the test answers, and commits it holds back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../src/errors.js';
import type { ClusterRouting } from '../src/log/roomlog.js';
import type { OpOf, RoomOp } from '../src/log/ops.js';
import type { Batch } from '../src/store/writer.js';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { roomLogWrites } from './conformance/writes.js';
import { waitFor } from './wait.js';

class Fenced extends Error {}
class NotOwner extends ParleyError {
  constructor() {
    super('unavailable', 'not the owner');
  }
}

interface Call {
  op: RoomOp;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** A cluster of two views: this node owns the room (`local`) or another node does. */
class Cluster implements ClusterRouting {
  local = true;
  view = 1;
  readonly calls: Call[] = [];
  isLocal(): boolean {
    return this.local;
  }
  epoch(): number {
    return this.view;
  }
  forward(_room: string, op: RoomOp): Promise<unknown> {
    return new Promise((resolve, reject) => this.calls.push({ op, resolve, reject }));
  }
  refresh(): Promise<void> {
    return Promise.resolve();
  }
  onChange(): void {}
  isFenced(err: unknown): boolean {
    return err instanceof Fenced;
  }
  isNotOwner(err: unknown): boolean {
    return err instanceof NotOwner;
  }
  notOwner(): Error {
    return new NotOwner();
  }
}

let dir: string;
let cluster: Cluster;
/** Commits wait for this while set. */
let gate: Promise<void> | null;
let open: () => void;
let log: ReturnType<typeof roomLogWrites<SqliteStore>>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parley-order-'));
  cluster = new Cluster();
  gate = null;
  const store = new SqliteStore({ file: join(dir, 'p.db') });
  // A batch waits at the gate, then is refused when the cluster moved on since it was decided.
  const fenced = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commit')
        return async (batch: Batch, epoch: number | null) => {
          if (gate) await gate;
          if (epoch !== null && epoch < cluster.view) throw new Fenced('fenced');
          return target.commit(batch, null);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  log = roomLogWrites(fenced, { cluster });
  await log.createRoom({ id: 'r', kind: 'group', name: 'R', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
});

afterEach(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

const text = (t: string): OpOf<'append'> => ({ op: 'append', by: { id: 'u', name: 'u', admin: false }, kind: 'text', text: t, key: t });
const texts = (calls: Call[]) => calls.map((c) => (c.op as OpOf<'append'>).text);

describe('a room that moves keeps the order of the sends made on this node', () => {
  it('a send made after the room moved away follows those still held here', async () => {
    gate = new Promise((r) => (open = r));
    const a = log.log.submit('r', text('A'));
    await new Promise((r) => setTimeout(r, 20));
    // A's batch is in flight when the room moves to another node: it is fenced, and A goes there.
    cluster.local = false;
    cluster.view = 2;
    const b = log.log.submit('r', text('B'));
    await new Promise((r) => setTimeout(r, 20));
    open();
    gate = null;
    await waitFor(() => cluster.calls.length === 2);
    expect(texts(cluster.calls)).toEqual(['A', 'B']);
    cluster.calls.forEach((c, i) => c.resolve({ message: { seq: 10 + i }, duplicate: false }));
    await Promise.all([a, b]);
  });

  it('a send made after the room came here waits for those handed to the former owner', async () => {
    cluster.local = false;
    const a = log.log.submit('r', text('A'));
    await waitFor(() => cluster.calls.length === 1);
    // The room comes to this node while A is at the former owner.
    cluster.local = true;
    cluster.view = 2;
    let bDone = false;
    const b = log.log.submit('r', text('B')).then((r) => {
      bDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(bDone).toBe(false);
    // The former owner refuses A (not the owner any more): A is committed here, before B.
    cluster.calls[0]!.reject(new NotOwner());
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.message.seq).toBeLessThan(rb.message.seq);
    const stored = (await log.history('r', { limit: 10 })).filter((m) => m.kind === 'text').map((m) => m.text);
    expect(stored).toEqual(['A', 'B']);

    // Answered by the former owner instead: the later send goes on once it is.
    cluster.local = false;
    const c = log.log.submit('r', text('C'));
    await waitFor(() => cluster.calls.length === 2);
    cluster.local = true;
    cluster.view = 3;
    let dDone = false;
    const d = log.log.submit('r', text('D')).then(() => (dDone = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(dDone).toBe(false);
    cluster.calls[1]!.resolve({ message: { seq: 99 }, duplicate: false });
    await c;
    await d;
    expect(dDone).toBe(true);
  });
});
