// The PostgreSQL store against a real PostgreSQL (a throwaway server from the machine's
// binaries): the Store conformance suite, then what only a shared database shows — several
// store instances (nodes) on one room, group commit, the database going away and coming back,
// and the account and word stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { readdirSync, readFileSync } from 'node:fs';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { PostgresStore, type PostgresOptions } from '../src/store/postgres/index.js';
import { PostgresAccountStore } from '../src/store/postgres/accounts.js';
import { PostgresDirectory } from '../src/store/postgres/directory.js';
import { PostgresWordStore } from '../src/plugins/word-filter/words-postgres.js';
import { chat21StoreConformance } from './conformance/chat21.js';
import { PostgresChat21Store } from '../src/integrations/chat21/store-postgres.js';
import { storeConformance } from './conformance/store.js';
import { roomLogWrites, type Writes } from './conformance/writes.js';
import { migrations } from '../src/store/postgres/migrations.js';
import { richConformance } from './conformance/rich.js';
import { PostgresNotificationStore } from '../src/store/postgres/notifications.js';
import { PostgresPinStore } from '../src/store/postgres/pins.js';
import { PostgresVersionStore } from '../src/store/postgres/versions.js';
import { SQL } from '../src/store/postgres/statements.js';
import { queryTerms, toTsquery, WordCounts } from '../src/store/postgres/search-text.js';
import { SEARCH_SCAN } from '../src/store/store.js';
import { pushStoreConformance } from './conformance/push.js';
import { PostgresPushStore } from '../src/store/postgres/push.js';
import { avatarStoreConformance } from './conformance/avatars.js';
import { PostgresAvatarStore } from '../src/store/postgres/avatars.js';
import { RichMessages } from '../src/service/rich.js';
import { defaultLevel } from '../src/service/mentions.js';
import type { Bus } from '../src/bus/bus.js';
import type { Hooks } from '../src/service/hooks.js';
import pino from 'pino';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

let schemas = 0;
/** A fresh schema per store: every test starts from empty tables. */
const freshSchema = () => `t${++schemas}_${process.pid}`;

storeConformance('postgres', () => PostgresStore.open({ url: server.url, schema: freshSchema() }));
chat21StoreConformance('postgres', async () => {
  const base = await PostgresStore.open({ url: server.url, schema: freshSchema() });
  return { store: new PostgresChat21Store(base.pool), close: () => base.close() };
});

/** A node's store with its room log; `shared`: several nodes write the same rooms (each batch locks its rooms). */
async function node(o: PostgresOptions, shared = false) {
  const s = await PostgresStore.open(o);
  return roomLogWrites(s, shared ? { locks: s } : {});
}

richConformance('postgres', async () => {
  const store = roomLogWrites(await PostgresStore.open({ url: server.url, schema: freshSchema() }));
  const ports = {
    notifications: new PostgresNotificationStore(store.pool),
    pins: new PostgresPinStore(store.pool),
    versions: new PostgresVersionStore(store.pool),
  };
  return { store, ports, close: () => store.close() };
});

pushStoreConformance('postgres', async () => {
  const store = await PostgresStore.open({ url: server.url, schema: freshSchema() });
  return { push: new PostgresPushStore(store.pool), close: () => store.close() };
});

avatarStoreConformance('postgres', async () => {
  const store = await PostgresStore.open({ url: server.url, schema: freshSchema() });
  return { avatars: new PostgresAvatarStore(store.pool), close: () => store.close() };
});

const members = (...users: string[]) => users.map((u, i) => ({ user: u, name: u, role: i === 0 ? ('owner' as const) : ('member' as const) }));
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PostgreSQL store: several nodes on one database', () => {
  it('migrations run once when several nodes open a fresh schema at the same time', async () => {
    const schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ url: server.url, schema })));
    const { rows } = await stores[0]!.pool.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(migrations.map((_, i) => i + 1));
    await Promise.all(stores.map((s) => s.close()));
  });

  it('the migration to unique channel names keeps channels that already shared a name, the oldest holding it', async () => {
    const schema = freshSchema();
    let s = await node({ url: server.url, schema }, true);
    // A database from before the rule (version 3): the key column and its index, and what
    // later migrations add, did not exist.
    await s.pool.query(
      'DROP INDEX rooms_channel_name; ALTER TABLE rooms DROP COLUMN name_key; DROP TABLE attachments, blobs, blob_chunks, cluster_state, cluster_nodes; DELETE FROM schema_migrations WHERE version >= 4',
    );
    await s.pool.query('ALTER TABLE sessions DROP COLUMN user_agent, DROP COLUMN last_used_at');
    await s.pool.query('ALTER TABLE messages DROP COLUMN meta; DROP TABLE notify_levels, room_settings, pins');
    await s.pool.query(
      'ALTER TABLE messages DROP COLUMN thread, DROP COLUMN thread_only; DROP TABLE threads, push_subscriptions, push_vapid, avatars; DROP FUNCTION parley_write_log; DROP INDEX chat21_archives_room',
    );
    for (const [id, name, at] of [
      ['old', 'General', 1],
      ['newer', 'general', 2],
      ['solo', 'Random', 3],
    ] as const) {
      await s.pool.query("INSERT INTO rooms (id, kind, name, topic, created_by, created_at) VALUES ($1, 'channel', $2, '', 'u', $3)", [id, name, at]);
    }
    await s.close();
    s = await node({ url: server.url, schema }, true);
    expect((await s.publicRooms(10)).map((r) => r.name).sort()).toEqual(['General', 'Random', 'general']);
    await expect(s.createRoom({ id: 'x', kind: 'channel', name: 'GENERAL', topic: '', createdBy: 'u', members: [] })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(s.createRoom({ id: 'y', kind: 'channel', name: ' random ', topic: '', createdBy: 'u', members: [] })).rejects.toMatchObject({
      code: 'conflict',
    });
    await expect(s.updateRoom('newer', { name: 'general' }, { user: 'u', name: 'u' })).rejects.toMatchObject({ code: 'conflict' });
    await s.updateRoom('newer', { name: 'General 2' }, { user: 'u', name: 'u' });
    await s.updateRoom('old', { name: 'Lobby' }, { user: 'u', name: 'u' });
    await s.createRoom({ id: 'z', kind: 'channel', name: 'general', topic: '', createdBy: 'u', members: [] });
    await s.close();
  });

  it('two instances appending into one room at once: seqs 1..N without gap or duplicate', async () => {
    const schema = freshSchema();
    const a = await node({ url: server.url, schema }, true);
    const b = await node({ url: server.url, schema }, true);
    await a.createRoom({ id: 'hot', kind: 'group', name: 'H', topic: '', createdBy: 'u1', members: members('u1', 'u2') });
    const calls: Array<{ node: 'a' | 'b'; p: Promise<{ message: { seq: number; text?: string } }> }> = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 15; i++) {
        const node = (round + i) % 2 ? 'a' : 'b';
        const text = `${node}-${round}-${i}`;
        calls.push({ node, p: (node === 'a' ? a : b).append({ room: 'hot', user: node === 'a' ? 'u1' : 'u2', name: node, kind: 'text', text }) });
      }
      await turn();
    }
    const results = await Promise.all(calls.map((c) => c.p));
    const seqs = results.map((r) => r.message.seq);
    const N = calls.length + 2;
    expect(new Set(seqs).size).toBe(calls.length);
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: calls.length }, (_, i) => i + 3));
    // Each instance commits its own writes in call order.
    for (const node of ['a', 'b'] as const) {
      const own = results.filter((_, i) => calls[i]!.node === node).map((r) => r.message.seq);
      expect(own).toEqual([...own].sort((x, y) => x - y));
    }
    const history = await b.history('hot', { after: 0, limit: 1000 });
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const bySeq = new Map(history.map((m) => [m.seq, m.text]));
    for (const r of results) expect(bySeq.get(r.message.seq)).toBe(r.message.text);
    expect(await a.bounds('hot')).toEqual({ first: 1, last: N });
    await a.close();
    await b.close();
  });

  it('a member removed on one node cannot write through another', async () => {
    const schema = freshSchema();
    const a = await node({ url: server.url, schema }, true);
    const b = await node({ url: server.url, schema }, true);
    await a.createRoom({ id: 'r', kind: 'group', name: 'R', topic: '', createdBy: 'u1', members: members('u1', 'u2') });
    await a.removeMember('r', 'u2', 'u2', 'u1');
    await expect(b.append({ room: 'r', user: 'u2', name: 'u2', kind: 'text', text: 'x' })).rejects.toMatchObject({ code: 'forbidden' });
    await a.close();
    await b.close();
  });
});

describe('PostgreSQL group commit', () => {
  it('concurrent writes share transactions; each instance commits one batch at a time', async () => {
    const s = await node({ url: server.url, schema: freshSchema() });
    await s.createRoom({ id: 'g', kind: 'group', name: 'G', topic: '', createdBy: 'u', members: members('u') });
    const before = s.stats;
    const writes = 300;
    const all: Array<Promise<unknown>> = [];
    for (let i = 0; i < writes; i++) {
      all.push(s.append({ room: 'g', user: 'u', name: 'u', kind: 'text', text: `m${i}` }));
      if (i % 10 === 9) await turn();
    }
    await Promise.all(all);
    const after = s.stats;
    expect(after.writes - before.writes).toBe(writes);
    expect(after.batches - before.batches).toBeLessThan(writes / 3);
    expect((await s.bounds('g')).last).toBe(writes + 1);
    await s.close();
  });

  it('a write failing inside PostgreSQL rejects alone; the rest of its batch commits, gapless', async () => {
    const s = await node({ url: server.url, schema: freshSchema() });
    await s.createRoom({ id: 'b', kind: 'group', name: 'B', topic: '', createdBy: 'u', members: members('u') });
    // PostgreSQL cannot store a NUL character: the batch fails, and its writes are tried again
    // one by one, so only that one fails and no seq is skipped.
    const results = await Promise.allSettled([
      s.append({ room: 'b', user: 'u', name: 'u', kind: 'text', text: 'before' }),
      s.append({ room: 'b', user: 'u', name: 'u', kind: 'text', text: 'bad\u0000text' }),
      s.append({ room: 'b', user: 'stranger', name: 's', kind: 'text', text: 'not a member' }),
      s.append({ room: 'b', user: 'u', name: 'u', kind: 'text', text: 'after' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'invalid' });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'forbidden' });
    expect((results[3] as PromiseFulfilledResult<{ message: { seq: number } }>).value.message.seq).toBe(3);
    expect((await s.history('b', { limit: 10 })).map((m) => [m.seq, m.text ?? m.kind])).toEqual([
      [1, 'join'],
      [2, 'before'],
      [3, 'after'],
    ]);
    await s.close();
  });
});

describe('PostgreSQL going away', () => {
  let own: PgServer;
  beforeAll(async () => {
    own = await startPostgres();
  });
  afterAll(async () => {
    await own?.destroy();
  });

  it('writes reject with unavailable in bounded time while it is down and work again once it is back', async () => {
    const s = await node({ url: own.url, schema: freshSchema(), connectTimeoutMs: 2000, statementTimeoutMs: 2000 });
    await s.createRoom({ id: 'd', kind: 'group', name: 'D', topic: '', createdBy: 'u', members: members('u') });
    await s.append({ room: 'd', user: 'u', name: 'u', kind: 'text', text: 'one' });
    await own.stop();
    const t0 = Date.now();
    await expect(s.append({ room: 'd', user: 'u', name: 'u', kind: 'text', text: 'lost' })).rejects.toMatchObject({ code: 'unavailable' });
    await expect(s.ping()).rejects.toMatchObject({ code: 'unavailable' });
    await expect(s.history('d', { limit: 10 })).rejects.toMatchObject({ code: 'unavailable' });
    expect(Date.now() - t0).toBeLessThan(5000);
    await own.start();
    await s.ping();
    const r = await s.append({ room: 'd', user: 'u', name: 'u', kind: 'text', text: 'two' });
    expect(r.message.seq).toBe(3);
    expect((await s.history('d', { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'one', 'two']);
    await s.close();
  });

  it('a write whose answer does not come in time (the server frozen) is refused with its outcome unknown, and may be stored', async () => {
    const s = await node({ url: own.url, schema: freshSchema(), connectTimeoutMs: 2000, statementTimeoutMs: 500 });
    await s.createRoom({ id: 'f', kind: 'group', name: 'F', topic: '', createdBy: 'u', members: members('u') });
    await s.append({ room: 'f', user: 'u', name: 'u', kind: 'text', text: 'one' });
    // The postmaster and its backends stopped, as SIGSTOP freezes a whole machine's database.
    const pids = [own.pid!, ...childrenOf(own.pid!)];
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    let refused: unknown;
    try {
      await s.append({ room: 'f', user: 'u', name: 'u', kind: 'text', text: 'maybe' });
    } catch (err) {
      refused = err;
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    // The statement had gone out: the database may still commit it, so "not stored" would be a lie.
    expect(refused).toMatchObject({ code: 'unavailable', details: { outcome: 'unknown' } });
    await waitUntil(async () => (await s.history('f', { limit: 10 })).some((m) => m.text === 'maybe'));
    await s.close();
  });

  it('the throwaway server starts again at once after kill(), before its exit event has come', async () => {
    own.kill();
    await own.start();
    const c = new pg.Client({ connectionString: own.url });
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
  });

  it('kill() also stops a backend that is busy with a query (a crash, not a slow goodbye)', async () => {
    const c = new pg.Client({ connectionString: own.url });
    c.on('error', () => {
      /* the connection dies with the server */
    });
    await c.connect();
    // CPU-bound, so the backend does not look for its postmaster until it is done.
    const busy = c.query('SELECT count(*) FROM generate_series(1, 50000000)');
    await new Promise((r) => setTimeout(r, 100));
    own.kill();
    await expect(busy).rejects.toThrow();
    await own.start();
  });

  it('a crash under load loses no acknowledged write and leaves no gap', async () => {
    const s = await node({ url: own.url, schema: freshSchema(), connectTimeoutMs: 2000, statementTimeoutMs: 2000 });
    await s.createRoom({ id: 'k', kind: 'group', name: 'K', topic: '', createdBy: 'u', members: members('u') });
    const send = (i: number) => s.append({ room: 'k', user: 'u', name: 'u', kind: 'text', text: `m${i}` });
    const all: Array<Promise<{ message: { seq: number; text?: string } }>> = [];
    for (let i = 0; i < 40; i++) all.push(send(i));
    await Promise.all(all);
    // Keep writes coming in several batches, and kill the server while they are in flight.
    for (let i = 40; i < 240; i++) {
      const p = send(i);
      p.catch(() => {}); // examined below, after the loop: not an unhandled rejection meanwhile
      all.push(p);
      if (i % 10 === 9) await turn();
      if (i === 120) own.kill();
    }
    const settled = await Promise.allSettled(all);
    const rejected = settled.filter((r) => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(r.reason).toMatchObject({ code: 'unavailable' });
    await own.start();
    // The pool may still hold connections to the killed server: the first reads can fail.
    let history: Awaited<ReturnType<typeof s.history>>;
    for (let i = 0; ; i++) {
      try {
        history = await s.history('k', { after: 0, limit: 1000 });
        break;
      } catch (err) {
        if (i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: history.length }, (_, i) => i + 1));
    const stored = new Map(history.map((m) => [m.seq, m.text]));
    for (const r of settled) if (r.status === 'fulfilled') expect(stored.get(r.value.message.seq)).toBe(r.value.message.text);
    const next = await s.append({ room: 'k', user: 'u', name: 'u', kind: 'text', text: 'after' });
    expect(next.message.seq).toBe(history.length + 1);
    await s.close();
  });

  it('a write stuck behind a lock rejects with unavailable after the statement timeout', async () => {
    await own.start(); // a no-op when running; not left down by a test before
    const schema = freshSchema();
    const s = await node({ url: own.url, schema, statementTimeoutMs: 1000 });
    await s.createRoom({ id: 'l', kind: 'group', name: 'L', topic: '', createdBy: 'u', members: members('u') });
    const locker = new pg.Client({ connectionString: own.url, options: `-c search_path=${schema}` });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE messages IN EXCLUSIVE MODE');
    const t0 = Date.now();
    await expect(s.append({ room: 'l', user: 'u', name: 'u', kind: 'text', text: 'waits' })).rejects.toMatchObject({ code: 'unavailable' });
    expect(Date.now() - t0).toBeLessThan(4000);
    await locker.query('ROLLBACK');
    await locker.end();
    expect((await s.append({ room: 'l', user: 'u', name: 'u', kind: 'text', text: 'goes' })).message.seq).toBe(2);
    await s.close();
  });

  it('open rejects with unavailable when nothing listens', async () => {
    const url = new URL(own.url);
    url.port = '1';
    await expect(PostgresStore.open({ url: url.toString(), connectTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('bad options are refused with invalid', async () => {
    await expect(PostgresStore.open({ url: 'mysql://x' })).rejects.toMatchObject({ code: 'invalid' });
    await expect(PostgresStore.open({ url: own.url, schema: 'Robert"); DROP' })).rejects.toMatchObject({ code: 'invalid' });
    await expect(PostgresStore.open({ url: own.url, poolSize: 0 })).rejects.toMatchObject({ code: 'invalid' });
  });
});

describe('PostgreSQL account store', () => {
  it('creates accounts with unique case-insensitive usernames', async () => {
    const s = await PostgresStore.open({ url: server.url, schema: freshSchema() });
    const acc = new PostgresAccountStore(s.pool);
    const a = await acc.createAccount({ userId: 'ua', username: 'Alice', name: 'Alice', passwordHash: 'h1' });
    expect(a).toMatchObject({ userId: 'ua', username: 'Alice', passwordHash: 'h1' });
    await expect(acc.createAccount({ userId: 'ub', username: 'alice', name: 'x', passwordHash: 'h' })).rejects.toMatchObject({ code: 'conflict' });
    await s.upsertUser({ id: 'external', name: 'E', profile: {} });
    await expect(acc.createAccount({ userId: 'external', username: 'e', name: 'E', passwordHash: 'h' })).rejects.toMatchObject({ code: 'conflict' });
    expect(await acc.accountByUsername('ALICE')).toMatchObject({ userId: 'ua' });
    expect(await acc.accountByUser('nobody')).toBeNull();
    expect(await s.getUser('ua')).toMatchObject({ id: 'ua', name: 'Alice' });
    await acc.setPasswordHash('ua', 'h2');
    expect((await acc.accountByUser('ua'))!.passwordHash).toBe('h2');
    await expect(acc.setPasswordHash('nobody', 'h')).rejects.toMatchObject({ code: 'not_found' });
    // Two nodes registering one username at once: one wins.
    const race = await Promise.allSettled([
      acc.createAccount({ userId: 'r1', username: 'race', name: 'r', passwordHash: 'h' }),
      acc.createAccount({ userId: 'r2', username: 'RACE', name: 'r', passwordHash: 'h' }),
    ]);
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(race.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'conflict' } });
    await s.close();
  });

  it('sessions rotate by compare-and-set: of two nodes rotating one session, exactly one wins', async () => {
    const schema = freshSchema();
    const s1 = await PostgresStore.open({ url: server.url, schema });
    const s2 = await PostgresStore.open({ url: server.url, schema });
    const [a1, a2] = [new PostgresAccountStore(s1.pool), new PostgresAccountStore(s2.pool)];
    await a1.createAccount({ userId: 'su', username: 'su', name: 'su', passwordHash: 'h' });
    const expires = Date.now() + 60_000;
    for (let i = 0; i < 20; i++) {
      await a1.createSession({ id: `sess${i}`, userId: 'su', refreshHash: 'h0', expiresAt: expires });
      const results = await Promise.allSettled([a1.rotateSession(`sess${i}`, 'h1', expires, 'h0'), a2.rotateSession(`sess${i}`, 'h2', expires, 'h0')]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'unauthorized' } });
      const winner = results[0].status === 'fulfilled' ? 'h1' : 'h2';
      expect((await a2.getSession(`sess${i}`))!.refreshHash).toBe(winner);
    }
    await a1.revokeSession('sess0');
    expect((await a1.getSession('sess0'))!.revokedAt).not.toBeNull();
    await expect(a1.rotateSession('sess0', 'h3', expires)).rejects.toMatchObject({ code: 'unauthorized' });
    await a1.revokeUserSessions('su');
    expect((await a2.getSession('sess5'))!.revokedAt).not.toBeNull();
    await a1.createSession({ id: 'old', userId: 'su', refreshHash: 'h', expiresAt: Date.now() - 1 });
    await expect(a1.rotateSession('old', 'h1', expires, 'h')).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await a1.getSession('missing')).toBeNull();
    await s1.close();
    await s2.close();
  });
});

describe('PostgreSQL profile, session list and directory', () => {
  it('lists live sessions by last use with their device, renames an account, ends all but one', async () => {
    const s = await node({ url: server.url, schema: freshSchema() });
    const acc = new PostgresAccountStore(s.pool);
    await acc.createAccount({ userId: 'pu', username: 'pu', name: 'Pat', passwordHash: 'h' });
    const expires = Date.now() + 60_000;
    await acc.createSession({ id: 'laptop', userId: 'pu', refreshHash: 'h', expiresAt: expires, userAgent: 'Laptop/1' });
    await acc.createSession({ id: 'phone', userId: 'pu', refreshHash: 'h', expiresAt: expires, userAgent: 'P'.repeat(300) });
    await acc.createSession({ id: 'gone', userId: 'pu', refreshHash: 'h', expiresAt: Date.now() - 1 });
    await new Promise((r) => setTimeout(r, 5));
    await acc.rotateSession('laptop', 'h2', expires, 'h');
    const live = await acc.liveSessions('pu', Date.now());
    expect(live.map((x) => x.id)).toEqual(['laptop', 'phone']);
    expect(live[1]!.userAgent).toHaveLength(256);
    expect(live[0]!.lastUsedAt).toBeGreaterThan(live[0]!.createdAt);

    await acc.setName('pu', 'Pat Renamed');
    expect(await acc.sessionIdentity('phone')).toMatchObject({ name: 'Pat Renamed', profile: {}, session: { id: 'phone', userId: 'pu' } });
    await s.upsertUser({ id: 'ext', name: 'Ext', profile: {} });
    await expect(acc.setName('ext', 'X')).rejects.toMatchObject({ code: 'not_found' });

    expect(await acc.revokeUserSessions('pu', 'laptop')).toBe(1);
    expect((await acc.liveSessions('pu', Date.now())).map((x) => x.id)).toEqual(['laptop']);

    const dir = new PostgresDirectory(s.pool);
    expect((await dir.findUsers('RENAMED', 10)).items).toEqual([{ id: 'pu', name: 'Pat Renamed', account: true, createdAt: expect.any(Number) }]);
    expect((await dir.findUsers('%', 10)).items).toEqual([]);
    expect(await dir.findUsers('', 1)).toMatchObject({ items: [{ id: 'ext', account: false }], more: true });
    await s.createRoom({ id: 'ch', kind: 'channel', name: 'Harbour', topic: '', createdBy: 'pu', members: members('pu', 'ext') });
    await s.createRoom({ id: 'dm', kind: 'direct', name: '', topic: '', createdBy: 'pu', members: members('pu', 'ext') });
    expect((await dir.findRooms('', 10)).items).toEqual([expect.objectContaining({ id: 'ch', kind: 'channel', name: 'Harbour', members: 2 })]);
    // By name, case aside, not by id.
    await s.createRoom({ id: 'ch0', kind: 'channel', name: 'harbour west', topic: '', createdBy: 'pu', members: members('pu') });
    await s.createRoom({ id: 'ch00', kind: 'group', name: 'Harbour East', topic: '', createdBy: 'pu', members: members('pu') });
    expect((await dir.findRooms('harbour', 10)).items.map((r) => r.name)).toEqual(['Harbour', 'Harbour East', 'harbour west']);
    await s.close();
  });
});

describe('PostgreSQL word store', () => {
  it('adds, removes and replaces words, case-insensitively, shared by every node', async () => {
    const schema = freshSchema();
    const s1 = await PostgresStore.open({ url: server.url, schema });
    const s2 = await PostgresStore.open({ url: server.url, schema });
    const [w1, w2] = [new PostgresWordStore(s1.pool), new PostgresWordStore(s2.pool)];
    expect(await w1.list()).toEqual([]);
    expect(await w1.add(['spam', 'eggs', 'spam'])).toBe(2);
    expect(await w2.add(['SPAM', 'ham'])).toBe(1);
    expect(await w2.list()).toEqual(['eggs', 'ham', 'spam']);
    expect(await w2.remove('Eggs')).toBe(true);
    expect(await w1.remove('eggs')).toBe(false);
    await w1.replace(['x', 'y', 'X']);
    expect(await w2.list()).toEqual(['x', 'y']);
    await w1.replace([]);
    expect(await w1.list()).toEqual([]);
    await expect(w1.add([''])).rejects.toMatchObject({ code: 'invalid' });
    await s1.close();
    await s2.close();
  });
});

describe('PostgreSQL inbox of a member of many rooms', () => {
  it("reads the member's notification levels of all its rooms in one statement", async () => {
    const store = roomLogWrites(await PostgresStore.open({ url: server.url, schema: freshSchema() }));
    try {
      const ports = {
        notifications: new PostgresNotificationStore(store.pool),
        pins: new PostgresPinStore(store.pool),
        versions: new PostgresVersionStore(store.pool),
      };
      // The inbox reads only the store and these ports: the bus and hooks are not used.
      const rich = new RichMessages(store, ports, {} as Bus, {} as Hooks, pino({ level: 'silent' }));
      const rooms: string[] = [];
      for (let i = 0; i < 40; i++) {
        const id = `lv${i}`;
        await store.createRoom({
          id,
          kind: i % 2 === 0 ? 'channel' : 'group',
          name: `Levels ${i}`,
          topic: '',
          createdBy: 'ann',
          members: members('ann', 'bob'),
        });
        rooms.push(id);
      }
      await ports.notifications.setLevel('lv3', 'bob', 'none');
      await ports.notifications.setLevel('lv8', 'bob', 'mentions');
      await ports.notifications.setLevel('lv8', 'ann', 'none');
      let statements = 0;
      const query = store.pool.query.bind(store.pool);
      store.pool.query = ((...args: Parameters<typeof query>) => {
        statements++;
        return query(...args);
      }) as typeof store.pool.query;
      const { rooms: entries } = await rich.inbox('bob', await store.inbox('bob'));
      // The inbox itself, the unread mentions and the levels: not one statement per room.
      expect(statements).toBeLessThanOrEqual(3);
      const notify = new Map(entries.map((e) => [e.room.id, e.notify]));
      expect(notify.size).toBe(40);
      expect(notify.get('lv3')).toBe('none');
      expect(notify.get('lv8')).toBe('mentions');
      // Elsewhere the room kind's default.
      expect(notify.get('lv0')).toBe(defaultLevel('channel'));
      expect(notify.get('lv1')).toBe(defaultLevel('group'));
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL search over many matches', () => {
  it('a word in 12,000 messages gives the newest page, looking at no more than SEARCH_SCAN of them; rare words are still found', async () => {
    const store = roomLogWrites(await PostgresStore.open({ url: server.url, schema: freshSchema() }));
    try {
      const base = await seedSearchRooms(store);

      // The newest 20 by time, across both rooms; A's seq 8000 (i = 7999) is hidden for the viewer.
      const all = [
        ...Array.from({ length: 8000 }, (_, k) => ({ room: 'sa', seq: k + 2, ts: base + (k + 1) * 10 })).filter((m) => m.seq !== 8000),
        ...Array.from({ length: 4000 }, (_, k) => ({ room: 'sb', seq: k + 2, ts: base + (k + 1) * 20 + 5 })),
      ].sort((x, y) => y.ts - x.ts || y.seq - x.seq);
      const page = await store.search('viewer', 'common', ['sa', 'sb'], 20);
      expect(page.map((m) => `${m.room}:${m.seq}`)).toEqual(all.slice(0, 20).map((m) => `${m.room}:${m.seq}`));
      expect((await store.search('other', 'common', ['sa'], 3)).map((m) => m.seq)).toEqual([8001, 8000, 7999]);
      expect((await store.search('viewer', 'common word', ['sb'], 2)).map((m) => m.seq)).toEqual([4001, 4000]);
      // A rare word is found however old, and a word in no message finds nothing.
      expect((await store.search('viewer', 'zebra', ['sa', 'sb'], 20)).map((m) => m.seq)).toEqual([2]);
      expect(await store.search('viewer', 'unicorn', ['sa', 'sb'], 20)).toEqual([]);

      // No step of the search reads more messages than SEARCH_SCAN (+1, to tell that there are more).
      const { rows } = await store.pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${SQL.search}`, [
        ['sa', 'sb'],
        toTsquery('common'),
        'viewer',
        20,
        false,
      ]);
      const scanned = messageScans(rows[0]!['QUERY PLAN'][0]!.Plan);
      expect(scanned.length).toBeGreaterThan(0);
      expect(Math.max(...scanned)).toBeLessThanOrEqual(SEARCH_SCAN + 1);
    } finally {
      await store.close();
    }
  });

  it("expects a query's matches from its words' shares of the rows, multiplied", () => {
    const w = new WordCounts();
    w.set(['alpha', 'beta'], [0.5, 0.1], 1000);
    expect(w.matches(queryTerms('Alpha'))).toBe(500);
    expect(w.matches(queryTerms('alpha beta'))).toBeCloseTo(50);
    expect(w.matches(queryTerms('alpha_beta'))).toBeCloseTo(50);
    expect(w.matches(queryTerms('alpha alpha'))).toBe(500);
    expect(w.matches(queryTerms('alpha gamma'))).toBe(0);
    expect(w.matches(queryTerms('!!'))).toBe(0);
  });

  it('a word ANALYZE counts in more messages than searchProbeMax skips the index probe and walks the rooms newest first', async () => {
    const store = roomLogWrites(await PostgresStore.open({ url: server.url, schema: freshSchema(), searchProbeMax: 5000 }));
    try {
      await seedSearchRooms(store);
      const calls: unknown[][] = [];
      const query = store.pool.query.bind(store.pool);
      store.pool.query = ((sql: unknown, params?: unknown[]) => {
        if (sql === SQL.search) calls.push(params ?? []);
        return query(sql as string, params);
      }) as typeof store.pool.query;
      // "common" is in all 12,000 messages: walked, and still the newest page.
      expect((await store.search('viewer', 'common', ['sa', 'sb'], 3)).map((m) => `${m.room}:${m.seq}`)).toEqual(['sb:4001', 'sa:8001', 'sb:4000']);
      // "zebra" is in one message, and "common zebra" matches no more than "zebra": probed, so found however old.
      expect((await store.search('viewer', 'zebra', ['sa', 'sb'], 20)).map((m) => m.seq)).toEqual([2]);
      expect((await store.search('viewer', 'common zebra', ['sa', 'sb'], 20)).map((m) => m.seq)).toEqual([2]);
      expect(calls.map((p) => p[4])).toEqual([true, false, false]);

      // Walking, the words' index is not read at all.
      const plan = async (word: string, walk: boolean) => {
        const { rows } = await store.pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${SQL.search}`, [
          ['sa', 'sb'],
          toTsquery(word),
          'viewer',
          3,
          walk,
        ]);
        return indexesRead(rows[0]!['QUERY PLAN'][0]!.Plan);
      };
      expect(await plan('zebra', true)).not.toContain('messages_tsv');
      expect(await plan('common', true)).not.toContain('messages_tsv');
    } finally {
      await store.close();
    }
  });
});

/** Rooms sa (8,000 messages) and sb (4,000), all saying "common word", analysed; returns the first message's time. */
async function seedSearchRooms(store: Writes<PostgresStore>): Promise<number> {
  await store.createRoom({ id: 'sa', kind: 'channel', name: 'Search A', topic: '', createdBy: 'w', members: members('w') });
  await store.createRoom({ id: 'sb', kind: 'channel', name: 'Search B', topic: '', createdBy: 'w', members: members('w') });
  // Room A: 8,000 messages, room B: 4,000, interleaved in time; A's oldest also says "zebra".
  const base = 1_800_000_000_000;
  await store.pool.query(
    `INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, tsv, hidden_for)
    SELECT 'sa', i + 1, 'text', 'w', 'w', $1::bigint + i * 10, 'common word ' || i || CASE WHEN i = 1 THEN ' zebra' ELSE '' END,
      to_tsvector('simple', 'common word ' || i || CASE WHEN i = 1 THEN ' zebra' ELSE '' END),
      CASE WHEN i = 7999 THEN 'viewer' END
    FROM generate_series(1, 8000) i`,
    [base],
  );
  await store.pool.query(
    `INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, tsv)
    SELECT 'sb', i + 1, 'text', 'w', 'w', $1::bigint + i * 20 + 5, 'common word ' || i, to_tsvector('simple', 'common word ' || i)
    FROM generate_series(1, 4000) i`,
    [base],
  );
  await store.pool.query('ANALYZE messages');
  return base;
}

interface PlanNode {
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}
/** Indexes the plan read (scans that ran at least once). */
function indexesRead(n: PlanNode): string[] {
  const own = n['Index Name'] !== undefined && n['Actual Loops'] > 0 ? [n['Index Name']] : [];
  return [...own, ...(n.Plans ?? []).flatMap(indexesRead)];
}
/** Rows each scan of the messages table produced (over all its loops). */
function messageScans(n: PlanNode): number[] {
  const own = n['Relation Name'] === 'messages' ? [n['Actual Rows'] * n['Actual Loops']] : [];
  return [...own, ...(n.Plans ?? []).flatMap(messageScans)];
}

/** Process ids whose parent is `pid` (a PostgreSQL server's backends). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

async function waitUntil(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
