import { afterAll, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { rmSync, statSync } from 'node:fs';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { SqliteAccountStore } from '../src/store/sqlite/accounts.js';
import { storeConformance } from './conformance/store.js';
import { roomLogWrites } from './conformance/writes.js';
import { emptyBatch } from '../src/store/writer.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-store-');
afterAll(() => removeDir(dir));
let i = 0;

storeConformance('sqlite', async () => new SqliteStore({ file: join(dir, `c${i++}.db`) }));

describe('SQLite store specifics', () => {
  it('the migration to unique channel names keeps channels that already shared a name, the oldest holding it', async () => {
    const file = join(dir, 'names.db');
    let s = roomLogWrites(new SqliteStore({ file }));
    // A database from before the rule: the key column and its index did not exist.
    s.db.exec('DROP INDEX rooms_channel_name; ALTER TABLE rooms DROP COLUMN name_key; DROP TABLE attachments');
    s.db.exec('ALTER TABLE sessions DROP COLUMN user_agent; ALTER TABLE sessions DROP COLUMN last_used_at');
    s.db.exec('ALTER TABLE messages DROP COLUMN meta; DROP TABLE notify_levels; DROP TABLE room_settings; DROP TABLE pins');
    s.db.exec('DROP INDEX messages_thread; ALTER TABLE messages DROP COLUMN thread; ALTER TABLE messages DROP COLUMN thread_only; DROP TABLE threads');
    s.db.exec('DROP TABLE push_subscriptions; DROP TABLE push_vapid; DROP TABLE avatars');
    s.db.pragma('user_version = 4');
    const add = s.db.prepare("INSERT INTO rooms (id, kind, name, topic, created_by, created_at) VALUES (?, 'channel', ?, '', 'u', ?)");
    add.run('old', 'General', 1);
    add.run('newer', 'general', 2);
    add.run('solo', 'Random', 3);
    await s.close();
    s = roomLogWrites(new SqliteStore({ file }));
    expect((await s.publicRooms(10)).map((r) => r.name).sort()).toEqual(['General', 'Random', 'general']);
    await expect(s.createRoom({ id: 'x', kind: 'channel', name: 'GENERAL', topic: '', createdBy: 'u', members: [] })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(s.createRoom({ id: 'y', kind: 'channel', name: 'random', topic: '', createdBy: 'u', members: [] })).rejects.toMatchObject({
      code: 'conflict',
    });
    // The younger duplicate takes a key when it is renamed, and cannot take one that is held.
    await expect(s.updateRoom('newer', { name: 'general' }, { user: 'u', name: 'u' })).rejects.toMatchObject({ code: 'conflict' });
    await s.updateRoom('newer', { name: 'General 2' }, { user: 'u', name: 'u' });
    await s.updateRoom('old', { name: 'Lobby' }, { user: 'u', name: 'u' });
    await s.createRoom({ id: 'z', kind: 'channel', name: 'general', topic: '', createdBy: 'u', members: [] });
    await s.close();
  });

  it('reopening a database keeps rooms, members and the seq sequence', async () => {
    const file = join(dir, 'reopen.db');
    let s = roomLogWrites(new SqliteStore({ file }));
    await s.createRoom({ id: 'keep', kind: 'group', name: 'K', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    await s.append({ room: 'keep', user: 'u', name: 'u', kind: 'text', text: 'one' });
    await s.close();
    s = roomLogWrites(new SqliteStore({ file }));
    const r = await s.append({ room: 'keep', user: 'u', name: 'u', kind: 'text', text: 'two' });
    expect(r.message.seq).toBe(3);
    expect((await s.history('keep', { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'one', 'two']);
    await s.close();
  });

  it('sends do not write the rooms row; after retention removed every message a restart still never reuses a seq', async () => {
    const file = join(dir, 'lastseq.db');
    let s = roomLogWrites(new SqliteStore({ file }));
    await s.createRoom({ id: 'r', kind: 'group', name: 'R', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    for (let n = 0; n < 4; n++) await s.append({ room: 'r', user: 'u', name: 'u', kind: 'text', text: `m${n}` });
    expect(s.db.prepare("SELECT last_seq FROM rooms WHERE id = 'r'").pluck().get()).toBe(0);
    expect((await s.getRoom('r'))!.lastSeq).toBe(5);
    expect((await s.roomsOf('u'))[0]!.room.lastSeq).toBe(5);
    expect((await s.inbox('u'))[0]!.room.lastSeq).toBe(5);
    expect(await s.markRead('r', 'u', 99)).toBe(5);
    // Every message is older than a day: all go, and the room keeps its last seq.
    expect(await s.applyRetention(Date.now() + 3 * 86_400_000, { count: null, days: 1 })).toBe(5);
    await s.close();
    s = roomLogWrites(new SqliteStore({ file }));
    expect(await s.history('r', { limit: 10 })).toEqual([]);
    expect((await s.getRoom('r'))!.lastSeq).toBe(5);
    expect(await s.bounds('r')).toEqual({ first: 6, last: 5 });
    expect((await s.append({ room: 'r', user: 'u', name: 'u', kind: 'text', text: 'after' })).message.seq).toBe(6);
    await s.close();
  });

  /** A store with 5,000 old messages in room `big` and one in room `small`. */
  async function sweepable(file: string, opts: { retentionBatch?: number; retentionWriteMs?: number }) {
    const s = roomLogWrites(new SqliteStore({ file: join(dir, file), ...opts }));
    await s.createRoom({ id: 'big', kind: 'group', name: 'Big', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    await s.createRoom({ id: 'small', kind: 'group', name: 'Small', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    const ts = Date.now();
    const messages = Array.from({ length: 5000 }, (_, n) => ({
      message: { room: 'big', seq: n + 2, kind: 'text' as const, user: 'u', name: 'u', ts, text: `old ${n}` },
      key: null,
      hiddenFor: null,
    }));
    await s.commit({ ...emptyBatch(), messages }, null);
    await s.append({ room: 'small', user: 'u', name: 'u', kind: 'text', text: 'kept' });
    return s;
  }
  /** Runs a sweep keeping each room's last message; how many times the event loop turned meanwhile. */
  async function sweepTurns(s: Awaited<ReturnType<typeof sweepable>>): Promise<{ removed: number; turns: number }> {
    let turns = 0;
    const ticker = setInterval(() => {
      turns++;
    }, 0);
    try {
      return { removed: await s.applyRetention(Date.now(), { count: 1, days: null }), turns };
    } finally {
      clearInterval(ticker);
    }
  }

  it('a retention sweep removing many messages lets the server go on between its writes', async () => {
    // Small writes (100 messages each), so 5,000 messages take 50 of them.
    const s = await sweepable('sweep.db', { retentionBatch: 100 });
    const { removed, turns } = await sweepTurns(s);
    // Each room keeps its last message (5,000 of big's 5,001 go, and small's join), one short write at a time.
    expect(removed).toBe(5001);
    expect(turns).toBeGreaterThanOrEqual(10);
    expect(await s.bounds('big')).toEqual({ first: 5001, last: 5001 });
    expect((await s.history('small', { limit: 10 })).map((m) => m.text)).toEqual(['kept']);
    await s.close();
  });

  it('a retention write sizes itself on how long the last one held the event loop', async () => {
    // Counted by the sweep's pauses, one after each write but the last (not by event-loop
    // turns, which a loaded machine multiplies: the pauses last as long as the writes took).
    const sweepWrites = async (s: Awaited<ReturnType<typeof sweepable>>) => {
      let pauses = 0;
      const real = globalThis.setTimeout;
      const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation((fn: () => void, ms?: number) => {
        pauses++;
        return real(fn, ms);
      });
      try {
        return { removed: await s.applyRetention(Date.now(), { count: 1, days: null }), writes: pauses + 1 };
      } finally {
        spy.mockRestore();
      }
    };
    // The default 2,000 per write would take 5,000 messages in 3 writes. A write that holds the
    // loop longer than asked shrinks the next, down to 50 messages: about a hundred writes.
    const slow = await sweepable('steer-slow.db', { retentionWriteMs: 0.001 });
    const a = await sweepWrites(slow);
    expect(a.removed).toBe(5001);
    expect(a.writes).toBeGreaterThanOrEqual(40);
    expect(await slow.bounds('big')).toEqual({ first: 5001, last: 5001 });
    await slow.close();
    // Writes faster than asked grow, up to retentionBatch: a few writes.
    const fast = await sweepable('steer-fast.db', { retentionWriteMs: 60_000 });
    const b = await sweepWrites(fast);
    expect(b.removed).toBe(5001);
    expect(b.writes).toBeLessThanOrEqual(5);
    await fast.close();
  });

  it('a retention sweep waits between its writes as long as each took', async () => {
    // Writes of 500 (steering off): 11 of them. After each but the last the sweep leaves the loop
    // (and the disk) to others for as long as the write took, from queueing to commit.
    const s = await sweepable('paced.db', { retentionBatch: 500, retentionWriteMs: 60_000 });
    const waits: number[] = [];
    const real = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation((fn: () => void, ms?: number) => {
      waits.push(ms ?? 0);
      return real(fn, ms);
    });
    try {
      expect(await s.applyRetention(Date.now(), { count: 1, days: null })).toBe(5001);
    } finally {
      spy.mockRestore();
    }
    expect(waits.length).toBeGreaterThanOrEqual(10);
    expect(waits.every((ms) => ms > 0)).toBe(true);
    await s.close();
  });

  it("finding each room's cut also lets the server go on: a slice of rooms at a time", async () => {
    // An aim of 0 ms: every slice is one room, every write the fewest messages (50).
    const s = roomLogWrites(new SqliteStore({ file: join(dir, 'cuts.db'), retentionWriteMs: 0 }));
    for (let r = 0; r < 200; r++) {
      await s.createRoom({ id: `c${r}`, kind: 'group', name: 'C', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
      for (let n = 0; n < 3; n++) await s.append({ room: `c${r}`, user: 'u', name: 'u', kind: 'text', text: `m${n}` });
    }
    // Counts the turns of the event loop (one setImmediate per turn).
    let turns = 0;
    let sweeping = true;
    const tick = () => {
      turns++;
      if (sweeping) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      expect(await s.applyRetention(Date.now(), { count: 1, days: null })).toBe(600);
    } finally {
      sweeping = false;
    }
    // 200 rooms read one at a time, then 600 messages (all but each room's last) removed in
    // writes of 50: over 200 turns, where one read of every room and a few writes made 4.
    expect(turns).toBeGreaterThanOrEqual(150);
    await s.close();
  });

  it('retention by age cuts at the first message at or after the limit, in seq order', async () => {
    const s = roomLogWrites(new SqliteStore({ file: join(dir, 'age.db') }));
    await s.createRoom({ id: 'a', kind: 'group', name: 'A', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    for (let n = 0; n < 3; n++) await s.append({ room: 'a', user: 'u', name: 'u', kind: 'text', text: `old${n}` });
    const day = 86_400_000;
    s.db.prepare("UPDATE messages SET ts = ts - 3 * ? WHERE room_id = 'a'").run(day);
    await s.append({ room: 'a', user: 'u', name: 'u', kind: 'text', text: 'new' });
    // A message stamped old but stored after a newer one (the clock stepped back) stays: the
    // cut is a prefix of the history, so what is left is still one range of seqs.
    const late = await s.append({ room: 'a', user: 'u', name: 'u', kind: 'text', text: 'late' });
    s.db.prepare("UPDATE messages SET ts = ts - 3 * ? WHERE room_id = 'a' AND seq = ?").run(day, late.message.seq);
    expect(await s.applyRetention(Date.now(), { count: null, days: 1 })).toBe(4);
    expect((await s.history('a', { limit: 10 })).map((m) => m.text)).toEqual(['new', 'late']);
    expect((s.db.pragma('index_list(messages)') as Array<{ name: string }>).map((x) => x.name)).not.toContain('messages_ts');
    await s.close();
  });

  it('under sustained writes the WAL starts over instead of growing for as long as the load lasts', async () => {
    const file = join(dir, 'wal.db');
    // Start over from 1,000 pages (4 MB) instead of 16,384, so a few seconds of writes show it,
    // with a round every 50 ms instead of 250: the writes below fill the WAL at up to 100 MB/s,
    // and a round that a loaded machine delays or that does not catch up then costs 5 MB, not 25
    // (one CI run reached 72 MB with 250 ms rounds).
    const s = roomLogWrites(new SqliteStore({ file, walRestartPages: 1000, checkpointIntervalMs: 50 }));
    await s.createRoom({ id: 'w', kind: 'channel', name: 'W', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    const text = 'x'.repeat(200);
    const send = () => s.append({ room: 'w', user: 'u', name: 'u', kind: 'text', text });
    let sent = 0;
    let largest = 0;
    // 20 sends in flight: a commit is always coming, as under load.
    while (sent < 90_000) {
      await Promise.all(Array.from({ length: 20 }, send));
      sent += 20;
      largest = Math.max(largest, statSync(`${file}-wal`).size);
    }
    // About 165 MB went through the WAL (before this change it grew to that size).
    expect(largest).toBeLessThan(64 * 1024 * 1024);
    expect((await s.getRoom('w'))!.lastSeq).toBe(90_001);
    expect((await s.history('w', { limit: 1 }))[0]!.seq).toBe(90_001);
    await s.close();
  }, 60_000);
});

describe('SQLite group commit', () => {
  it("a write of the store's own that fails after writing is undone alone; the rest of its batch commits", async () => {
    const s = roomLogWrites(new SqliteStore({ file: join(dir, 'batch.db') }));
    await s.createRoom({ id: 'b', kind: 'group', name: 'B', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    const writes = (s as unknown as { writes: { write<T>(run: () => T): Promise<T> } }).writes;
    const results = await Promise.allSettled([
      s.upsertUser({ id: 'before', name: 'b', profile: {} }),
      writes.write(() => {
        s.db.prepare("INSERT INTO users (id, name, profile, created_at) VALUES ('half', 'h', '{}', 0)").run();
        throw new Error('disk on fire');
      }),
      s.markRead('b', 'u', 1),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'internal' });
    expect(await s.getUser('half')).toBeNull();
    expect(await s.getUser('before')).toMatchObject({ name: 'b' });
    expect((await s.getMember('b', 'u'))!.readSeq).toBe(1);
    await s.close();
  });

  it('commits are spaced by commitIntervalMs only after a commit that carried several writes', async () => {
    // The interval runs from the start of the commit before, so a slow commit (a loaded
    // machine's fsync) shortens the wait after it: the spaced write is timed from before the
    // commit it follows, and the interval is long enough for "at once" to stay well below it.
    const s = roomLogWrites(new SqliteStore({ file: join(dir, 'spacing.db'), commitIntervalMs: 600 }));
    await s.createRoom({ id: 'sp', kind: 'group', name: 'S', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    const send = (text: string) => s.append({ room: 'sp', user: 'u', name: 'u', kind: 'text', text });
    // Light load: a write right after a lone commit is not held back by the interval.
    await send('lone');
    let t = performance.now();
    await send('right after');
    expect(performance.now() - t).toBeLessThan(400);
    // Sustained load: after a commit of several writes, the next one waits for the interval.
    t = performance.now();
    await Promise.all([send('a'), send('b'), send('c')]);
    await send('spaced');
    expect(performance.now() - t).toBeGreaterThan(580);
    // That spaced commit carried one write, so the store is back to committing at once.
    t = performance.now();
    await send('light again');
    expect(performance.now() - t).toBeLessThan(400);
    expect((await s.history('sp', { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual([
      'join',
      'lone',
      'right after',
      'a',
      'b',
      'c',
      'spaced',
      'light again',
    ]);
    await s.close();
  });
});

describe('SQLite account sessions', () => {
  it('rotation is compare-and-set on the refresh hash; revoked and expired sessions never rotate', async () => {
    const s = roomLogWrites(new SqliteStore({ file: join(dir, 'sessions.db') }));
    const acc = new SqliteAccountStore(s.db);
    await acc.createAccount({ userId: 'su', username: 'su', name: 'su', passwordHash: 'h' });
    const expires = Date.now() + 60_000;
    await acc.createSession({ id: 's1', userId: 'su', refreshHash: 'h0', expiresAt: expires });
    const results = await Promise.allSettled([acc.rotateSession('s1', 'h1', expires, 'h0'), acc.rotateSession('s1', 'h2', expires, 'h0')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'unauthorized' });
    expect((await acc.getSession('s1'))!.refreshHash).toBe('h1');
    await acc.revokeSession('s1');
    await expect(acc.rotateSession('s1', 'h3', expires, 'h1')).rejects.toMatchObject({ code: 'unauthorized' });
    await acc.createSession({ id: 'old', userId: 'su', refreshHash: 'h', expiresAt: Date.now() - 1 });
    await expect(acc.rotateSession('old', 'h1', expires)).rejects.toMatchObject({ code: 'unauthorized' });
    await s.close();
  });
});

describe('SQLite search index (worker thread, its own file)', () => {
  it('finds what was stored before the search, follows edits and deletes, survives a restart, and never shows removed messages', async () => {
    const file = join(dir, 'search.db');
    let s = roomLogWrites(new SqliteStore({ file }));
    const grp = async (id: string) =>
      s.createRoom({ id, kind: 'group', name: id, topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    const say = (room: string, text: string) => s.append({ room, user: 'u', name: 'u', kind: 'text', text });
    const find = async (q: string, rooms = ['f']) => (await s.search('u', q, rooms, 10)).map((m) => m.text);
    await grp('f');
    const a = await say('f', 'alpha first');
    // Found at once: the search waits for the index to catch up.
    expect(await find('alpha')).toEqual(['alpha first']);
    await s.append({ room: 'f', user: 'u', name: 'u', kind: 'edit', target: a.message.seq, text: 'alpha second' });
    expect(await find('first')).toEqual([]);
    expect(await find('alpha')).toEqual(['alpha second']);
    const b = await say('f', 'bravo');
    await s.append({ room: 'f', user: 'u', name: 'u', kind: 'delete', target: b.message.seq });
    expect(await find('bravo')).toEqual([]);
    // Many at once, in several index batches.
    await Promise.all(Array.from({ length: 2500 }, (_, i) => say('f', `bulk ${i} charlie`)));
    expect((await s.search('u', 'charlie', ['f'], 5000)).length).toBe(2500);
    // A deleted room recreated under the same id does not bring back the old texts.
    await grp('g');
    await say('g', 'ghost words');
    await s.deleteRoom('g', false);
    await grp('g');
    await say('g', 'fresh words');
    expect(await find('words', ['g'])).toEqual(['fresh words']);
    expect(await find('ghost', ['g'])).toEqual([]);
    await s.close();
    // After a restart the index is kept, and new ids never collide with old rows.
    s = roomLogWrites(new SqliteStore({ file }));
    expect(await find('alpha')).toEqual(['alpha second']);
    await say('f', 'delta after restart');
    expect(await find('delta')).toEqual(['delta after restart']);
    expect(await find('ghost', ['g'])).toEqual([]);
    await s.close();
  });

  it('while a lost index file is rebuilt, a search answers unavailable, never a partial result', async () => {
    const file = join(dir, 'rebuild.db');
    let s = roomLogWrites(new SqliteStore({ file }));
    await s.createRoom({ id: 'big', kind: 'channel', name: 'B', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    // Enough messages that rebuilding their index takes longer than a search waits (2 s).
    const N = 300_000;
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, j) =>
          s.append({ room: 'big', user: 'u', name: 'u', kind: 'text', text: `needle number ${i + j} with a few more words to index` }),
        ),
      );
    }
    await s.close();
    rmSync(`${file}-search.db`);
    rmSync(`${file}-search.db-wal`, { force: true });
    rmSync(`${file}-search.db-shm`, { force: true });
    s = roomLogWrites(new SqliteStore({ file }));
    // Newest first: a complete answer starts with the last message stored.
    const newest = `needle number ${N - 1} with a few more words to index`;
    const first = await s.search('u', 'needle', ['big'], 5).then(
      (m) => m.map((x) => x.text),
      (e: unknown) => e,
    );
    if (Array.isArray(first)) expect(first[0]).toBe(newest);
    else expect(first).toMatchObject({ code: 'unavailable', details: { retryAfterMs: 1000 } });
    // Once the rebuild is done, the search answers in full.
    let texts: unknown;
    for (let tries = 0; tries < 60; tries++) {
      texts = await s.search('u', 'needle', ['big'], 5).then(
        (m) => m.map((x) => x.text),
        () => null,
      );
      if (texts) break;
    }
    expect((texts as string[])[0]).toBe(newest);
    await s.close();
  }, 90_000);
});
