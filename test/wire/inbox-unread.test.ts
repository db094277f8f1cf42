// The inbox's unread counts at the wire (raw WebSocket clients and REST), on SQLite and on
// PostgreSQL: exact up to the bound, and past it counts of the first UNREAD_SCAN messages
// after the read marker (unread messages and unread mentions) with `unreadMore`, so a room
// with any number of unread messages costs the same read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers.js';
import { Wire } from './wire.js';
import { startPostgres, type PgServer } from '../../tools/devservers/postgres.js';
import { UNREAD_SCAN } from '../../src/store/store.js';

interface Entry {
  room: { id: string };
  unread: number;
  unreadMore?: boolean;
  mentions?: number;
  readSeq: number;
}

const STORES: Array<{ name: string; start: () => Promise<{ overrides: Record<string, unknown>; stop: () => Promise<void> }> }> = [
  { name: 'SQLite', start: async () => ({ overrides: {}, stop: async () => {} }) },
  {
    name: 'PostgreSQL',
    start: async () => {
      const pg: PgServer = await startPostgres();
      return { overrides: { store: { postgres: { url: pg.url } } }, stop: () => pg.destroy() };
    },
  },
];

describe.each(STORES)("the inbox's unread count, on $name", (store) => {
  let srv: TestServer;
  let stop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const s = await store.start();
    stop = s.stop;
    srv = await startServer({ ...s.overrides, plugins: { rateLimit: { enabled: false } } });
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await stop();
  }, 60_000);

  it(`unread and mentions are exact up to ${UNREAD_SCAN} messages after the read marker; past them they count those, with unreadMore`, async () => {
    const [ann, bob] = await Promise.all([Wire.open(srv, 'ann'), Wire.open(srv, 'bob')]);
    const room = (await ann.call<{ id: string }>('create', { kind: 'group', name: 'busy' })).id;
    await ann.call('invite', { room, user: 'bob' });
    const start = (await bob.call<{ last: number }>('history', { room, limit: 1 })).last;
    await bob.call('read', { room, seq: start });
    const entry = async (): Promise<Entry> => (await bob.call<{ rooms: Entry[] }>('inbox')).rooms.find((e) => e.room.id === room)!;
    const overRest = async (): Promise<Entry> => {
      const res = await fetch(`${srv.url}/api/v1/inbox`, { headers: { authorization: `Bearer ${await srv.token('bob')}` } });
      return ((await res.json()) as { rooms: Entry[] }).rooms.find((e) => e.room.id === room)!;
    };
    // Under the bound: ann's texts and her root count; bob's own texts and the replies kept to
    // a thread bob takes no part in do not.
    await ann.sendMany(room, 9);
    await ann.call('send', { room, text: 'hi @bob' });
    await bob.sendMany(room, 5);
    const root = await ann.sendMany(room, 1);
    await ann.sendMany(room, 3, { thread: root });
    expect(await entry()).toMatchObject({ unread: 11, unreadMore: false, mentions: 1 });
    // Exactly at the bound: still exact.
    const upTo = await ann.sendMany(room, UNREAD_SCAN - 19);
    expect(upTo - start).toBe(UNREAD_SCAN);
    expect(await entry()).toMatchObject({ unread: UNREAD_SCAN - 8, unreadMore: false });
    // One past it: the count stops at the bound and says there are more.
    const past = await ann.sendMany(room, 1);
    expect(await entry()).toMatchObject({ unread: UNREAD_SCAN - 8, unreadMore: true });
    expect(await overRest()).toMatchObject({ unread: UNREAD_SCAN - 8, unreadMore: true });
    // Many more: the same bounded counts; a mention past the bound is not counted yet.
    await ann.sendMany(room, 200);
    await ann.call('send', { room, text: 'look @bob' });
    expect(await entry()).toMatchObject({ unread: UNREAD_SCAN - 8, unreadMore: true, mentions: 1 });
    // Reading up to near the end: exact again, the last mention included.
    await bob.call('read', { room, seq: past + 198 });
    expect(await entry()).toMatchObject({ unread: 3, unreadMore: false, mentions: 1 });
    expect(await overRest()).toMatchObject({ unread: 3, unreadMore: false, mentions: 1 });
    ann.close();
    bob.close();
  }, 120_000);
});
