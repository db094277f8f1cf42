// A reply kept to its thread, at the wire (raw WebSocket clients, REST and webhooks), on SQLite
// and on PostgreSQL: it is a message of the room like any other for every command that names
// one message by its seq (read it, edit, delete, react, pin, its versions, quote it); it
// notifies the thread's participants and those it mentions, not every member.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, startServer, waitFor, type TestServer } from '../helpers.js';
import { rest as restAs, room, Wire, type WireMessage as Msg, type WireSummary as Summary } from './wire.js';
import { startPostgres, type PgServer } from '../../tools/devservers/postgres.js';

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

/** Webhook deliveries, as received. */
const deliveries: Array<{ event: string; room: string; data: Record<string, unknown> }> = [];
let hookServer: Server;
beforeAll(async () => {
  hookServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof deliveries)[number]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise<void>((r) => {
    hookServer.closeAllConnections();
    hookServer.close(() => r());
  });
});

describe.each(STORES)('a reply kept to its thread, on $name', (store) => {
  let srv: TestServer;
  let stop: () => Promise<void> = async () => {};
  const tag = store.name === 'SQLite' ? 's' : 'p';

  beforeAll(async () => {
    const s = await store.start();
    stop = s.stop;
    const url = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`;
    srv = await startServer({
      ...s.overrides,
      plugins: { rateLimit: { enabled: false }, webhooks: { backoffMs: 30, endpoints: [{ url, secret: SECRET, events: ['notification', 'thread.updated'] }] } },
    });
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await stop();
  }, 60_000);

  const open = (user: string) => Wire.open(srv, `${tag}-${user}`);
  const rest = (user: Wire | string, method: string, path: string, body?: unknown) => restAs(srv, user, method, path, body);

  it('is read by its seq, like any message of the room, by anyone who can read the room (WebSocket and REST)', async () => {
    const [ann, bob, cyd] = await Promise.all([open('read-ann'), open('read-bob'), open('read-cyd')]);
    const ch = await room('channel', ann, bob);
    const root = await ann.call<{ seq: number }>('send', { room: ch, text: 'root' });
    const kept = await bob.call<{ seq: number }>('send', { room: ch, text: 'kept to the thread', thread: root.seq });
    const shared = await bob.call<{ seq: number }>('send', { room: ch, text: 'also to the room', thread: root.seq, alsoToRoom: true });
    // A member, over REST and WebSocket.
    const got = await rest(bob, 'GET', `/rooms/${ch}/messages/${kept.seq}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ room: ch, seq: kept.seq, text: 'kept to the thread', thread: root.seq });
    expect(await bob.call<Msg>('message', { room: ch, seq: kept.seq })).toMatchObject({
      room: ch,
      seq: kept.seq,
      kind: 'text',
      text: 'kept to the thread',
      thread: root.seq,
    });
    expect((await bob.call<Msg>('message', { room: ch, seq: kept.seq })).alsoToRoom).toBeUndefined();
    // And through the SDK.
    const sdk = await srv.client(bob.user);
    expect(await sdk.message(ch, kept.seq)).toMatchObject({ seq: kept.seq, text: 'kept to the thread', thread: root.seq });
    // Someone who is no member of the channel but may read it.
    expect(await cyd.call<Msg>('message', { room: ch, seq: kept.seq })).toMatchObject({ seq: kept.seq, thread: root.seq });
    expect((await rest(cyd, 'GET', `/rooms/${ch}/messages/${kept.seq}`)).body).toMatchObject({ seq: kept.seq, thread: root.seq });
    // The root carries its summary; a reply also sent to the room is read the same way.
    expect((await rest(cyd, 'GET', `/rooms/${ch}/messages/${root.seq}`)).body).toMatchObject({ seq: root.seq, summary: { count: 2 } });
    expect(await ann.call<Msg>('message', { room: ch, seq: shared.seq })).toMatchObject({ seq: shared.seq, thread: root.seq, alsoToRoom: true });
    // A seq with no message is not_found; seq 0 is invalid.
    expect(await ann.fails('message', { room: ch, seq: shared.seq + 100 })).toBe('not_found');
    expect((await rest(ann, 'GET', `/rooms/${ch}/messages/${shared.seq + 100}`)).status).toBe(404);
    expect(await ann.fails('message', { room: ch, seq: 0 })).toBe('invalid');
    // A group's replies are read by its members only.
    const grp = await room('group', ann, bob);
    const groot = await ann.call<{ seq: number }>('send', { room: grp, text: 'group root' });
    const greply = await bob.call<{ seq: number }>('send', { room: grp, text: 'group reply', thread: groot.seq });
    expect((await rest(ann, 'GET', `/rooms/${grp}/messages/${greply.seq}`)).body).toMatchObject({ seq: greply.seq, thread: groot.seq });
    expect(await cyd.fails('message', { room: grp, seq: greply.seq })).toBe('forbidden');
    expect((await rest(cyd, 'GET', `/rooms/${grp}/messages/${greply.seq}`)).status).toBe(403);
    for (const w of [ann, bob, cyd]) w.close();
  });

  it('is edited, reacted to, pinned, quoted, listed with its versions and deleted by its seq', async () => {
    const [ann, bob, cyd] = await Promise.all([open('one-ann'), open('one-bob'), open('one-cyd')]);
    const grp = await room('group', ann, bob, cyd);
    const root = await ann.call<{ seq: number }>('send', { room: grp, text: 'root' });
    const reply = await bob.call<{ seq: number }>('send', { room: grp, text: 'first words', thread: root.seq });
    const edit = await bob.call<{ seq: number }>('edit', { room: grp, target: reply.seq, text: 'better words' });
    const react = await rest(cyd, 'POST', `/rooms/${grp}/messages/${reply.seq}/reactions`, { emoji: '👍' });
    expect(react.status).toBe(200);
    // Its versions, over WebSocket and REST.
    const versions = await cyd.call<{ versions: Array<{ seq: number; text: string }>; deleted: boolean }>('versions', { room: grp, seq: reply.seq });
    expect(versions.versions.map((v) => [v.seq, v.text])).toEqual([
      [reply.seq, 'first words'],
      [edit.seq, 'better words'],
    ]);
    expect((await rest(cyd, 'GET', `/rooms/${grp}/messages/${reply.seq}/versions`)).body).toMatchObject({
      deleted: false,
      versions: [{ seq: reply.seq }, { seq: edit.seq }],
    });
    // Pinned by the owner and listed with the room's pins.
    expect(await ann.call('pin', { room: grp, seq: reply.seq })).toEqual({ room: grp, seq: reply.seq, pinned: true });
    const pins = await cyd.call<{ pins: Array<{ seq: number; message: Msg }> }>('pins', { room: grp });
    expect(pins.pins.map((p) => [p.seq, p.message.thread])).toEqual([[reply.seq, root.seq]]);
    // Quoted from the main timeline and from inside the thread, with its latest text.
    const quoting = await cyd.call<{ seq: number }>('send', { room: grp, text: 'about that', replyTo: reply.seq });
    const inThread = await cyd.call<{ seq: number }>('send', { room: grp, text: 'yes', replyTo: reply.seq, thread: root.seq });
    for (const seq of [quoting.seq, inThread.seq]) {
      expect(await ann.call<Msg>('message', { room: grp, seq })).toMatchObject({ quote: { user: bob.user, text: 'better words' } });
    }
    // Deleted by its author: no versions, no pin.
    const del = await rest(bob, 'DELETE', `/rooms/${grp}/messages/${reply.seq}`);
    expect(del.status).toBe(200);
    expect(await cyd.call('versions', { room: grp, seq: reply.seq })).toEqual({ room: grp, seq: reply.seq, versions: [], deleted: true });
    expect(await bob.fails('edit', { room: grp, target: reply.seq, text: 'again' })).toBe('conflict');
    expect((await cyd.call<{ pins: unknown[] }>('pins', { room: grp })).pins).toEqual([]);
    // Every change of it stayed in its thread.
    const thread = await ann.call<{ messages: Msg[] }>('history', { room: grp, thread: root.seq });
    expect(thread.messages.map((m) => m.kind)).toEqual(['text', 'edit', 'reaction', 'text', 'delete']);
    for (const w of [ann, bob, cyd]) w.close();
  });

  it("notifies the thread's participants at level all and those it mentions; a reply also sent to the room notifies as a room message", async () => {
    // ann wrote the root; eve replies first but chose none; bob and cyd chose all, dan and fay
    // keep the default (mentions), and fay replies too.
    const [ann, bob, cyd, dan, eve, fay] = await Promise.all([
      open('ntf-ann'),
      open('ntf-bob'),
      open('ntf-cyd'),
      open('ntf-dan'),
      open('ntf-eve'),
      open('ntf-fay'),
    ]);
    const grp = await room('group', ann, bob, cyd, dan, eve, fay);
    for (const w of [ann, bob, cyd]) await w.call('notifications', { room: grp, level: 'all' });
    await eve.call('notifications', { room: grp, level: 'none' });
    const root = await ann.call<{ seq: number }>('send', { room: grp, text: 'root' });
    const r1 = await eve.call<{ seq: number }>('send', { room: grp, text: 'first', thread: root.seq });
    const r2 = await fay.call<{ seq: number }>('send', { room: grp, text: 'second', thread: root.seq });
    const r3 = await bob.call<{ seq: number }>('send', { room: grp, text: `what do you think @${dan.user}?`, thread: root.seq });
    const r4 = await cyd.call<{ seq: number }>('send', { room: grp, text: 'I am in', thread: root.seq });
    const r5 = await dan.call<{ seq: number }>('send', { room: grp, text: 'fine by me', thread: root.seq });
    const r6 = await fay.call<{ seq: number }>('send', { room: grp, text: `all of you @room`, thread: root.seq });
    const r6b = await ann.call<{ seq: number }>('send', { room: grp, text: 'listen @room', thread: root.seq });
    const r7 = await ann.call<{ seq: number }>('send', { room: grp, text: 'decided', thread: root.seq, alsoToRoom: true });
    const want: Record<number, Record<string, string>> = {
      [root.seq]: { [bob.user]: 'message', [cyd.user]: 'message' },
      // Only the root's author (level all) takes part yet: bob and cyd are not told.
      [r1.seq]: { [ann.user]: 'message' },
      // eve took part, but its level is none.
      [r2.seq]: { [ann.user]: 'message' },
      // dan is mentioned; fay took part but its level is mentions.
      [r3.seq]: { [ann.user]: 'message', [dan.user]: 'mention' },
      // bob replied before: now it is told.
      [r4.seq]: { [ann.user]: 'message', [bob.user]: 'message' },
      [r5.seq]: { [ann.user]: 'message', [bob.user]: 'message', [cyd.user]: 'message' },
      // @room from a plain member is plain text (moderators only): participants at level all.
      [r6.seq]: { [ann.user]: 'message', [bob.user]: 'message', [cyd.user]: 'message' },
      // @room from the owner mentions every member, in a thread too (eve chose none).
      [r6b.seq]: { [bob.user]: 'room', [cyd.user]: 'room', [dan.user]: 'room', [fay.user]: 'room' },
      // Also sent to the room: every member at level all, as a message of the room.
      [r7.seq]: { [bob.user]: 'message', [cyd.user]: 'message' },
    };
    const everyone = [ann, bob, cyd, dan, eve, fay];
    const told = () => {
      const out: Record<number, Record<string, string>> = {};
      for (const w of everyone)
        for (const e of w.events<{ room: string; seq: number; reason: string }>('notify')) if (e.room === grp) (out[e.seq] ??= {})[w.user] = e.reason;
      return out;
    };
    const count = (o: Record<number, Record<string, string>>) => Object.values(o).reduce((n, x) => n + Object.keys(x).length, 0);
    await waitFor(() => count(told()) >= count(want), 5000, 'the notifications');
    await new Promise((r) => setTimeout(r, 300));
    expect(told()).toEqual(want);
    // The notification webhook names the same recipients, once per message that notified anyone.
    const hooked = () => deliveries.filter((d) => d.event === 'notification' && d.room === grp);
    await waitFor(() => hooked().length >= Object.keys(want).length, 5000, 'the notification webhooks');
    await new Promise((r) => setTimeout(r, 300));
    const fromHooks: Record<number, Record<string, string>> = {};
    for (const d of hooked()) {
      const seq = d.data.seq as number;
      expect(fromHooks[seq], `one webhook for ${seq}`).toBeUndefined();
      fromHooks[seq] = Object.fromEntries((d.data.recipients as Array<{ user: string; reason: string }>).map((r) => [r.user, r.reason]));
    }
    expect(fromHooks).toEqual(want);
    for (const w of everyone) w.close();
  });

  it("each reply's new thread summary reaches webhooks as thread.updated, once per reply", async () => {
    const [ann, bob, cyd] = await Promise.all([open('wh-ann'), open('wh-bob'), open('wh-cyd')]);
    const grp = await room('group', ann, bob, cyd);
    const root = await ann.call<{ seq: number }>('send', { room: grp, text: 'root' });
    const r1 = await bob.call<{ seq: number; ts: number }>('send', { room: grp, text: 'one', thread: root.seq });
    const r2 = await cyd.call<{ seq: number; ts: number }>('send', { room: grp, text: 'two', thread: root.seq, alsoToRoom: true });
    await bob.call('edit', { room: grp, target: r1.seq, text: 'one!' });
    await ann.call('react', { room: grp, target: r2.seq, emoji: 'ok' });
    const r3 = await ann.call<{ seq: number; ts: number }>('send', { room: grp, text: 'three', thread: root.seq });
    const updates = () => deliveries.filter((d) => d.event === 'thread.updated' && d.room === grp).map((d) => d.data);
    await waitFor(() => updates().length >= 3, 5000, 'three thread.updated');
    await new Promise((r) => setTimeout(r, 300));
    // One per reply (edits and reactions change no summary), with what the thread event carries.
    expect(updates().sort((x, y) => (x.reply as number) - (y.reply as number))).toEqual([
      { room: grp, root: root.seq, count: 1, lastTs: r1.ts, users: [bob.user], reply: r1.seq, user: bob.user },
      { room: grp, root: root.seq, count: 2, lastTs: r2.ts, users: [bob.user, cyd.user], reply: r2.seq, user: cyd.user },
      { room: grp, root: root.seq, count: 3, lastTs: r3.ts, users: [bob.user, cyd.user, ann.user], reply: r3.seq, user: ann.user },
    ]);
    await waitFor(() => ann.events('thread').length === 3, 5000, 'the thread events');
    expect(ann.events<{ summary: Summary }>('thread').at(-1)!.summary).toEqual({ count: 3, lastTs: r3.ts, users: [bob.user, cyd.user, ann.user] });
    // A message without a thread changes no summary.
    await ann.call('send', { room: grp, text: 'plain' });
    await new Promise((r) => setTimeout(r, 300));
    expect(updates()).toHaveLength(3);
    for (const w of [ann, bob, cyd]) w.close();
  });
});
