// The hub's delivery contract, on the in-memory bus with a real SQLite store: a follower gets
// every message of its room exactly once, in seq order, whatever the bus loses or delivers
// while the follower replays from the store. Connections are recording ones (the interface
// every transport implements), so the frames checked are exactly what the hub writes.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { MemoryBus } from '../../src/bus/memory/index.js';
import { roomTopic, userTopic } from '../../src/bus/bus.js';
import { CLOSE_SLOW_CONSUMER, Hub, type Conn, type SharedFrame } from '../../src/hub/index.js';
import { eventText } from '../../src/protocol/frames.js';
import type { Message } from '../../src/protocol/schema.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { removeDir, tempDir } from '../helpers.js';
import { roomLogWrites, type Writes } from '../conformance/writes.js';
import { waitFor } from '../wait.js';
import { ParleyError } from '../../src/errors.js';

/** A connection that records every frame the hub writes to it. */
class RecordingConn implements Conn {
  readonly frames: Array<{ ev: string; data: Record<string, unknown> }> = [];
  buffered = 0;
  closed: { code: number; reason: string } | null = null;
  constructor(
    readonly id: string,
    readonly user: string,
  ) {}
  send(frame: SharedFrame): void {
    this.frames.push(JSON.parse(frame.payload.toString()) as { ev: string; data: Record<string, unknown> });
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  /** Seqs of the room's messages, in the order they were written. */
  seqs(room: string): number[] {
    return this.frames.filter((f) => f.ev === 'message' && f.data.room === room).map((f) => f.data.seq as number);
  }
}

/**
 * The store with slow `history` reads: each read sees the store as it is when called, but its
 * answer is held until the test lets it through — as a read from a busy database would be,
 * while the bus keeps delivering. Everything else is the store itself.
 */
function slowHistory(store: Store): { store: Store; hold(): void; release(): void; reads: number } {
  let gate: Promise<void> | null = null;
  let open = (): void => {};
  const ctl = {
    reads: 0,
    store: new Proxy(store, {
      get(target, prop) {
        if (prop === 'history') {
          return async (...args: Parameters<Store['history']>) => {
            const rows = await target.history(...args);
            ctl.reads++;
            if (gate) await gate;
            return rows;
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }),
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release() {
      gate = null;
      open();
    },
  };
  return ctl;
}

const dir = tempDir('parley-hub-');
afterAll(() => removeDir(dir));
let files = 0;

let sqlite: Writes<SqliteStore>;
let bus: MemoryBus;
let gated: ReturnType<typeof slowHistory>;
let hub: Hub;
const ROOM = 'hub-room';

beforeEach(async () => {
  sqlite = roomLogWrites(new SqliteStore({ file: join(dir, `hub${files++}.db`) }));
  bus = new MemoryBus();
  gated = slowHistory(sqlite);
  // Small pages, so a replay takes several reads.
  hub = new Hub(bus, gated.store, { slowConsumerBytes: 1 << 20, pageSize: 4 });
  await sqlite.createRoom({
    id: ROOM,
    kind: 'group',
    name: 'R',
    topic: '',
    createdBy: 'w',
    members: [
      { user: 'w', name: 'w', role: 'owner' },
      { user: 'r', name: 'r', role: 'member' },
    ],
  });
});
afterEach(async () => {
  await bus.close();
  await sqlite.close();
});

/** Stores a message (committed when this resolves), without publishing it. */
async function store(text: string): Promise<Message> {
  return (await sqlite.append({ room: ROOM, user: 'w', name: 'w', kind: 'text', text })).message;
}
/** Publishes a stored message on the bus, as the service does after the commit. */
function publish(m: Message): void {
  bus.publish(roomTopic(ROOM), { frame: eventText('message', m), seq: m.seq });
}
/** A connection following the room, live from `after` (its room's last seq). */
async function follower(after: number, lastKnown = after, user = 'r'): Promise<RecordingConn> {
  const c = new RecordingConn(`c${Math.random()}`, user);
  await hub.add(c);
  hub.follow(c, ROOM, after, lastKnown);
  await new Promise((r) => setImmediate(r));
  return c;
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('hub delivery (memory bus, SQLite store)', () => {
  it('delivers live messages exactly once, in seq order, and drops a duplicate', async () => {
    const c = await follower(2);
    const ms = [await store('a'), await store('b'), await store('c')];
    for (const m of ms) publish(m);
    publish(ms[1]!);
    expect(c.seqs(ROOM)).toEqual([3, 4, 5]);
  });

  it('a message missing on the bus is filled from the store before anything newer is delivered', async () => {
    const c = await follower(2);
    const [m3, m4, m5] = [await store('a'), await store('b'), await store('c')];
    publish(m3);
    // 4 is lost between nodes: 5 arrives first and must not be delivered past the hole.
    publish(m5);
    expect(c.seqs(ROOM)).toEqual([3]);
    await waitFor(() => c.seqs(ROOM).length >= 3, 5000, 'the hole filled');
    expect(c.seqs(ROOM)).toEqual([3, 4, 5]);
    expect(c.frames.find((f) => f.data.seq === 4)!.data.text).toBe(m4.text);
  });

  it('a message that overtakes the one before it waits for it on the bus: delivered in order, the store not read', async () => {
    const c = await follower(2);
    const [m3, m4, m5] = [await store('a'), await store('b'), await store('c')];
    // As on a node that forwarded 5 and delivers it on its owner's answer, ahead of the bus's 3 and 4.
    publish(m5);
    await new Promise((r) => setTimeout(r, 5));
    publish(m3);
    expect(c.seqs(ROOM)).toEqual([3]);
    publish(m4);
    expect(c.seqs(ROOM)).toEqual([3, 4, 5]);
    // Live again at once, and nothing was read from the store meanwhile or after.
    const m6 = await store('d');
    publish(m6);
    expect(c.seqs(ROOM)).toEqual([3, 4, 5, 6]);
    await new Promise((r) => setTimeout(r, 150));
    expect(gated.reads).toBe(0);
    expect(c.seqs(ROOM)).toEqual([3, 4, 5, 6]);
  });

  it('live messages wait while the connection replays from the store, then follow in order', async () => {
    for (let i = 0; i < 10; i++) await store(`old${i}`);
    gated.hold();
    const c = await follower(2, 12);
    // The replay's first read is under way; the room goes on live meanwhile.
    const live = [await store('live1'), await store('live2')];
    for (const m of live) publish(m);
    expect(c.seqs(ROOM)).toEqual([]);
    gated.release();
    await waitFor(() => c.seqs(ROOM).length >= 12, 5000, 'replay and live');
    expect(c.seqs(ROOM)).toEqual(range(3, 14));
  });

  it('a reader that stalls while it replays is closed once the live messages held for it pass the slow-consumer limit', async () => {
    for (let i = 0; i < 10; i++) await store(`old${i}`);
    gated.hold();
    const c = await follower(2, 12);
    // The peer reads nothing: its socket holds more than half the limit, so the replay waits
    // for it to drain, and every live message is held meanwhile.
    c.buffered = 600 * 1024;
    gated.release();
    const big = 'x'.repeat(4000);
    let published = 0;
    while (!c.closed && published < 2000) {
      publish(await store(big));
      published++;
    }
    // About (1 MiB - 600 KiB) / 4 KB messages, not the 50,000 the count alone would allow.
    expect(c.closed?.code).toBe(CLOSE_SLOW_CONSUMER);
    expect(published).toBeLessThan(150);
  });

  it('a recheck on the room topic delivers what was stored and never published, to each follower once', async () => {
    const c = await follower(2);
    const d = await follower(2, 2, 'd');
    publish(await store('published'));
    // Stored by a commit whose answer was lost: nobody published it.
    await store('stored only');
    bus.publish(roomTopic(ROOM), { frame: '', control: { op: 'recheck' } });
    for (const x of [c, d]) await waitFor(() => x.seqs(ROOM).length >= 2, 5000, 'the stored message');
    for (const x of [c, d]) {
      expect(x.seqs(ROOM)).toEqual([3, 4]);
      expect(x.frames.every((f) => f.ev === 'message')).toBe(true);
    }
  });

  it('after a replay, held messages beyond a remaining hole wait until the store fills it', async () => {
    for (let i = 0; i < 3; i++) await store(`old${i}`);
    gated.hold();
    const c = await follower(2, 5);
    // While the replay's read (up to 5) is slow, 6 and 7 are committed; only 7 reaches this node.
    const m6 = await store('six');
    const m7 = await store('seven');
    publish(m7);
    gated.release();
    await waitFor(() => c.seqs(ROOM).length >= 5, 5000, 'replay, hole and held');
    expect(c.seqs(ROOM)).toEqual(range(3, 7));
    expect(c.frames.find((f) => f.data.seq === 6)!.data.text).toBe(m6.text);
    // Then it is live again: the next message goes straight through.
    const m8 = await store('eight');
    publish(m8);
    expect(c.seqs(ROOM)).toEqual(range(3, 8));
  });

  it('a replay from a seq retention removed sends a gap event naming the range, then the rest', async () => {
    for (let i = 0; i < 8; i++) await store(`m${i}`);
    await sqlite.updateRoom(ROOM, { retentionCount: 3 }, { user: 'w', name: 'w' });
    await sqlite.applyRetention(Date.now(), { count: null, days: null });
    const { first, last } = await sqlite.bounds(ROOM);
    const c = await follower(1, last);
    await waitFor(() => c.seqs(ROOM).length >= last - first + 1, 5000, 'replay');
    const gap = c.frames.find((f) => f.ev === 'gap')!;
    expect(gap.data).toEqual({ room: ROOM, from: 2, to: first - 1 });
    expect(c.frames.indexOf(gap)).toBe(0);
    expect(c.seqs(ROOM)).toEqual(range(first, last));
  });

  it('followers of a room catching up from the same seq share one store read per page', async () => {
    for (let i = 0; i < 20; i++) await store(`old${i}`);
    gated.hold();
    // A hot room after a bus reconnect: many members on this node, all behind by the same gap.
    const cs: RecordingConn[] = [];
    for (let i = 0; i < 12; i++) cs.push(await follower(2, 22, `u${i}`));
    gated.release();
    for (const c of cs) await waitFor(() => c.seqs(ROOM).length >= 20, 5000, 'replay');
    for (const c of cs) expect(c.seqs(ROOM)).toEqual(range(3, 22));
    // 20 messages in pages of 4: six reads for everyone, not six per follower.
    expect(gated.reads).toBeLessThanOrEqual(7);
  });
});

/**
 * The store with its first `fails` catch-up reads (bounds, history) answering `unavailable`,
 * as a node woken after a freeze finds its database sessions ended by the node that took its
 * rooms; everything else is the store itself.
 */
function unavailableFirst(store: Store, fails: number): Store {
  let left = fails;
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      if (prop !== 'history' && prop !== 'bounds') return f;
      return (...args: unknown[]) => {
        if (left-- > 0) return Promise.reject(new ParleyError('unavailable', 'database unavailable: terminating connection due to administrator command'));
        return f(...args);
      };
    },
  });
}

describe('a catch-up read the store cannot answer for a moment', () => {
  it('is tried again: the follower gets the missing messages and stays connected', async () => {
    const own = new Hub(bus, unavailableFirst(sqlite, 2), { slowConsumerBytes: 1 << 20, pageSize: 4 });
    const c = new RecordingConn('blip', 'r');
    await own.add(c);
    own.follow(c, ROOM, 2, 2);
    const [m3, , m5] = [await store('a'), await store('b'), await store('c')];
    publish(m3);
    publish(m5);
    await waitFor(() => c.seqs(ROOM).length >= 3 || c.closed !== null, 5000, 'the hole filled or the connection closed');
    expect(c.closed).toBeNull();
    expect(c.seqs(ROOM)).toEqual([3, 4, 5]);
  });

  it('a store that stays unavailable closes the follower, which resumes from its last seq', async () => {
    const own = new Hub(bus, unavailableFirst(sqlite, 1000), { slowConsumerBytes: 1 << 20, pageSize: 4 });
    const c = new RecordingConn('down', 'r');
    await own.add(c);
    own.follow(c, ROOM, 2, 2);
    const [m3, , m5] = [await store('a'), await store('b'), await store('c')];
    publish(m3);
    publish(m5);
    await waitFor(() => c.closed !== null, 5000, 'the connection closed');
    expect(c.closed?.code).toBe(1011);
    expect(c.seqs(ROOM)).toEqual([3]);
  });
});

describe("a removed member (the user's topic may overtake the room's)", () => {
  /** Tells `user`'s hubs that it left: the room event, with the unfollow after its leave message. */
  function removed(user: string, leave: Message): void {
    bus.publish(userTopic(user), {
      frame: eventText('room', { room: ROOM, member: null, reason: 'kicked' }),
      control: { op: 'unfollow', room: ROOM, seq: leave.seq },
    });
  }
  const events = (c: RecordingConn) => c.frames.map((f) => (f.ev === 'message' ? `${f.data.kind as string}:${f.data.seq as number}` : f.ev));

  it('gets its own leave (from the store) when the unfollow arrives before it, then the room event, and nothing after', async () => {
    const c = await follower(2);
    const m3 = await store('before');
    const leave = await sqlite.removeMember(ROOM, 'r', 'r', 'w');
    const m5 = await store('after the leave');
    // The unfollow overtakes the leave on the bus; the room's messages come later.
    removed('r', leave);
    await waitFor(() => c.frames.some((f) => f.ev === 'room'), 5000, 'the room event');
    publish(m3);
    publish(leave);
    publish(m5);
    await new Promise((r) => setTimeout(r, 50));
    expect(events(c)).toEqual(['text:3', 'leave:4', 'room']);
    expect(hub.isFollowing(c, ROOM)).toBe(false);
  });

  it('while replaying, stops at its leave even when later messages are held', async () => {
    for (let i = 0; i < 6; i++) await store(`old${i}`);
    const leave = await sqlite.removeMember(ROOM, 'r', 'r', 'w');
    const later = [await store('later 1'), await store('later 2')];
    gated.hold();
    const c = await follower(2, later[1]!.seq);
    for (const m of later) publish(m);
    removed('r', leave);
    gated.release();
    await waitFor(() => c.frames.some((f) => f.ev === 'room'), 5000, 'the room event');
    await new Promise((r) => setTimeout(r, 50));
    expect(events(c)).toEqual([...range(3, 8).map((s) => `text:${s}`), `leave:${leave.seq}`, 'room']);
  });

  it('once it has its leave, the unfollow is at once', async () => {
    const c = await follower(2);
    const leave = await sqlite.removeMember(ROOM, 'r', 'r', 'w');
    publish(leave);
    removed('r', leave);
    const m4 = await store('after');
    publish(m4);
    expect(events(c)).toEqual([`leave:${leave.seq}`, 'room']);
    expect(hub.isFollowing(c, ROOM)).toBe(false);
  });
});
