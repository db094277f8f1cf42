// Rich messages at the wire, with raw WebSocket clients and REST: mentions stored with the
// message (members only) and the `notify` events they cause, notification levels, who may
// mention the whole room, unread mentions in the inbox, the notification webhook; replies and
// their quotes; pins and edit history. Everything is read back after a restart too.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, startServer, tempDir, waitFor, removeDir, type TestServer } from '../helpers.js';
import { rest as restAs, room as newRoom, Wire, type WireMessage } from './wire.js';

let srv: TestServer;
let hookServer: Server;
const hooks: Array<Record<string, unknown>> = [];
const dataDir = tempDir('parley-rich-');

async function start(): Promise<TestServer> {
  const url = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`;
  return startServer(
    {
      plugins: { rateLimit: { enabled: false }, webhooks: { backoffMs: 30, endpoints: [{ url, secret: SECRET, events: ['notification'] }] } },
    },
    dataDir,
  );
}

beforeAll(async () => {
  hookServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  srv = await start();
});
afterAll(async () => {
  await srv?.close();
  await new Promise<void>((r) => {
    hookServer.closeAllConnections();
    hookServer.close(() => r());
  });
  removeDir(dataDir);
});

type Msg = WireMessage;
const open = (user: string) => Wire.open(srv, user);
const rest = (user: string, method: string, path: string, body?: unknown) => restAs(srv, user, method, path, body);
const group = (owner: Wire, ...others: Wire[]) => newRoom('group', owner, ...others);

describe('mentions', () => {
  it('keeps the members a text mentions (not others), and notifies them on every connection', async () => {
    const [ann, bob, cyd, dan] = await Promise.all([open('m-ann'), open('m-bob'), open('m-cyd'), open('m-dan')]);
    const room = await group(ann, bob, cyd);
    // dan is no member: naming it is just text. A second connection of bob's follows no
    // room it was told about, yet is notified.
    const bob2 = await open('m-bob');
    const { seq } = await ann.call<{ seq: number }>('send', { room, text: 'hi @m-bob, @m-dan and `@m-cyd` (a@m-cyd.org) @m-ann' });
    await waitFor(() => bob.message(room, seq) !== undefined, 5000, 'the message');
    expect(bob.message(room, seq)!.mentions).toEqual(['m-bob']);
    await waitFor(() => bob.events('notify').length > 0 && bob2.events('notify').length > 0, 5000, 'notify on both connections');
    expect(bob.events('notify')[0]).toEqual({
      room,
      seq,
      user: 'm-ann',
      name: 'm-ann',
      text: 'hi @m-bob, @m-dan and `@m-cyd` (a@m-cyd.org) @m-ann',
      reason: 'mention',
    });
    const stored = (await cyd.call<{ messages: Msg[] }>('history', { room, after: seq - 1, limit: 1 })).messages[0]!;
    expect(stored.mentions).toEqual(['m-bob']);
    await new Promise((r) => setTimeout(r, 200));
    expect(cyd.events('notify')).toEqual([]);
    expect(dan.events('notify')).toEqual([]);
    expect(ann.events('notify')).toEqual([]);
    // The notification webhook names the author, the room and every recipient.
    await waitFor(() => hooks.some((h) => (h.data as { seq: number; room: string }).room === room), 5000, 'the webhook');
    const hook = hooks.find((h) => (h.data as { room: string }).room === room)!;
    expect(hook.event).toBe('notification');
    expect(hook.data).toMatchObject({ room, seq, user: 'm-ann', recipients: [{ user: 'm-bob', reason: 'mention' }] });
    for (const w of [ann, bob, bob2, cyd, dan]) w.close();
  });

  it('@room and @here count only for those the room allows, moderators by default', async () => {
    const [own, mem, off] = await Promise.all([open('r-own'), open('r-mem'), open('r-off')]);
    const room = await group(own, mem, off);
    off.close();
    for (let i = 0; (await own.call<{ users: string[] }>('presence', { room })).users.length !== 2; i++) {
      expect(i, 'r-off offline').toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 50));
    }
    const plain = await mem.call<{ seq: number }>('send', { room, text: '@room look' });
    expect((await own.call<{ messages: Msg[] }>('history', { room, after: plain.seq - 1, limit: 1 })).messages[0]!.mentionsAll).toBeUndefined();
    expect(await mem.fails('settings', { room, mentionAll: 'members' })).toBe('forbidden');
    expect(await mem.call('settings', { room })).toEqual({ room, mentionAll: 'moderators' });
    const all = await own.call<{ seq: number }>('send', { room, text: '@room look' });
    await own.call('send', { room, text: 'anyone @here?' });
    const history = (await mem.call<{ messages: Msg[] }>('history', { room, after: all.seq - 1, limit: 2 })).messages;
    expect(history[0]!.mentionsAll).toBe('room');
    // @here: the members online when it was sent.
    expect(history[1]!.mentions).toEqual(['r-mem']);
    await waitFor(() => mem.events('notify').length === 2, 5000, 'two notifications');
    expect(mem.events<{ reason: string }>('notify').map((e) => e.reason)).toEqual(['room', 'here']);
    // The room lets every member mention it.
    expect(await own.call('settings', { room, mentionAll: 'members' })).toEqual({ room, mentionAll: 'members' });
    const now = await mem.call<{ seq: number }>('send', { room, text: '@room now' });
    expect((await own.call<{ messages: Msg[] }>('history', { room, after: now.seq - 1, limit: 1 })).messages[0]!.mentionsAll).toBe('room');
    // The inbox counts unread mentions per room: r-off missed @room twice (once by its owner,
    // once by a member) and was not online for @here.
    const offAgain = await open('r-off');
    const entry = (await offAgain.call<{ rooms: Array<{ room: { id: string }; mentions: number; unread: number; notify: string }> }>('inbox')).rooms.find(
      (e) => e.room.id === room,
    )!;
    expect(entry).toMatchObject({ mentions: 2, notify: 'mentions' });
    await offAgain.call('read', { room, seq: now.seq });
    const after = (await offAgain.call<{ rooms: Array<{ room: { id: string }; mentions: number }> }>('inbox')).rooms.find((e) => e.room.id === room)!;
    expect(after.mentions).toBe(0);
    for (const w of [own, mem, offAgain]) w.close();
  });

  it('each member chooses which messages notify it: all, mentions or none', async () => {
    const [ann, bob] = await Promise.all([open('l-ann'), open('l-bob')]);
    const room = await group(ann, bob);
    expect(await bob.call('notifications', { room })).toEqual({ room, level: 'mentions' });
    await ann.call('send', { room, text: 'plain' });
    await bob.call('notifications', { room, level: 'none' });
    await ann.call('send', { room, text: 'hey @l-bob' });
    await bob.call('notifications', { room, level: 'all' });
    const last = await ann.call<{ seq: number }>('send', { room, text: 'plain again' });
    await waitFor(() => bob.events('notify').length > 0, 5000, 'notify');
    await new Promise((r) => setTimeout(r, 200));
    expect(bob.events<{ seq: number; reason: string }>('notify').map((e) => [e.seq, e.reason])).toEqual([[last.seq, 'message']]);
    // Only members have a level; a direct room notifies every message unless told otherwise.
    const dan = await open('l-dan');
    expect(await dan.fails('notifications', { room, level: 'all' })).toBe('forbidden');
    const dm = await ann.call<{ id: string }>('direct', { user: 'l-dan' });
    expect(await dan.call('notifications', { room: dm.id })).toEqual({ room: dm.id, level: 'all' });
    // Over REST.
    expect((await rest('l-bob', 'PUT', `/rooms/${room}/notifications`, { level: 'mentions' })).body).toEqual({ room, level: 'mentions' });
    expect((await rest('l-bob', 'GET', `/rooms/${room}/notifications`)).body).toEqual({ room, level: 'mentions' });
    expect((await rest('l-bob', 'PUT', `/rooms/${room}/notifications`, { level: 'loud' })).status).toBe(400);
    expect((await rest('l-bob', 'PATCH', `/rooms/${room}/settings`, { mentionAll: 'members' })).status).toBe(403);
    expect((await rest('l-ann', 'PATCH', `/rooms/${room}/settings`, { mentionAll: 'members' })).body).toEqual({ room, mentionAll: 'members' });
    for (const w of [ann, bob, dan]) w.close();
  });
});

describe('replies', () => {
  it('a reply carries a quote of its target: author, first characters of its latest text, or deleted', async () => {
    const [ann, bob] = await Promise.all([open('q-ann'), open('q-bob')]);
    const room = await group(ann, bob);
    const long = 'x'.repeat(300);
    const t1 = await ann.call<{ seq: number }>('send', { room, text: 'first version' });
    await ann.call('edit', { room, target: t1.seq, text: 'second version' });
    const t2 = await ann.call<{ seq: number }>('send', { room, text: long });
    const t3 = await ann.call<{ seq: number }>('send', { room, text: 'soon gone' });
    await ann.call('delete', { room, target: t3.seq });
    const r1 = await bob.call<{ seq: number }>('send', { room, text: 'answer', replyTo: t1.seq });
    const r2 = await bob.call<{ seq: number }>('send', { room, text: 'answer', replyTo: t2.seq });
    const r3 = await bob.call<{ seq: number }>('send', { room, text: 'answer', replyTo: t3.seq });
    await waitFor(() => ann.message(room, r3.seq) !== undefined, 5000, 'the replies');
    expect(ann.message(room, r1.seq)).toMatchObject({ replyTo: t1.seq, quote: { user: 'q-ann', name: 'q-ann', text: 'second version' } });
    const q2 = ann.message(room, r2.seq)!.quote!;
    expect(q2.text).toBe(`${'x'.repeat(120)}…`);
    expect(ann.message(room, r3.seq)!.quote).toEqual({ user: 'q-ann', name: 'q-ann', deleted: true });
    const stored = (await ann.call<{ messages: Msg[] }>('history', { room, after: r1.seq - 1, limit: 1 })).messages[0]!;
    expect(stored).toMatchObject({ replyTo: t1.seq, quote: { text: 'second version' } });
    // Over REST too.
    const res = await rest('q-bob', 'POST', `/rooms/${room}/messages`, { text: 'rest answer', replyTo: t1.seq });
    expect(res.status).toBe(201);
    expect((await rest('q-bob', 'GET', `/rooms/${room}/messages/${res.body.seq as number}`)).body).toMatchObject({ replyTo: t1.seq, quote: { user: 'q-ann' } });
    ann.close();
    bob.close();
  });

  it('a reply to a message that is not a text of the same room is refused and stores nothing', async () => {
    const [ann, bob] = await Promise.all([open('z-ann'), open('z-bob')]);
    const room = await group(ann, bob);
    const other = await group(ann);
    await ann.call('send', { room: other, text: 'elsewhere' });
    const there = await ann.call<{ seq: number }>('send', { room: other, text: 'elsewhere too' });
    const before = (await ann.call<{ last: number }>('history', { room, limit: 1 })).last;
    expect(there.seq).toBeGreaterThan(before);
    // The seq exists only in the other room; seq 1 of this room is a join message.
    expect(await bob.fails('send', { room, text: 'nope', replyTo: there.seq })).toBe('not_found');
    expect(await bob.fails('send', { room, text: 'nope', replyTo: 1 })).toBe('not_found');
    expect(await bob.fails('send', { room, text: 'nope', replyTo: 0 })).toBe('invalid');
    expect((await rest('z-bob', 'POST', `/rooms/${room}/messages`, { text: 'nope', replyTo: 999 })).status).toBe(404);
    expect((await ann.call<{ last: number }>('history', { room, limit: 1 })).last).toBe(before);
    ann.close();
    bob.close();
  });
});

describe('pins and edit history', () => {
  it('moderators pin and unpin, members are told, and anyone who reads the room lists the pins', async () => {
    const [own, mem] = await Promise.all([open('p-own'), open('p-mem')]);
    const room = await group(own, mem);
    const a = await mem.call<{ seq: number }>('send', { room, text: 'pin me' });
    const b = await mem.call<{ seq: number }>('send', { room, text: 'and me' });
    expect(await mem.fails('pin', { room, seq: a.seq })).toBe('forbidden');
    expect(await own.fails('pin', { room, seq: 1 })).toBe('not_found');
    expect(await own.fails('pin', { room, seq: 999 })).toBe('not_found');
    expect(await own.call('pin', { room, seq: a.seq })).toEqual({ room, seq: a.seq, pinned: true });
    await own.call('pin', { room, seq: b.seq });
    await waitFor(() => mem.events('pin').length === 2, 5000, 'pin events');
    expect(mem.events('pin')[0]).toEqual({ room, seq: a.seq, pinned: true, by: 'p-own' });
    const pins = await mem.call<{ pins: Array<{ seq: number; by: string; message: Msg }> }>('pins', { room });
    expect(pins.pins.map((p) => [p.seq, p.by, p.message.text])).toEqual([
      [b.seq, 'p-own', 'and me'],
      [a.seq, 'p-own', 'pin me'],
    ]);
    // A pinned message reads as it does now: its latest edit's text.
    await mem.call('edit', { room, target: a.seq, text: 'pin me, edited' });
    const edited = await mem.call<{ pins: Array<{ seq: number; message: Msg }> }>('pins', { room });
    expect(edited.pins.map((p) => [p.seq, p.message.text])).toEqual([
      [b.seq, 'and me'],
      [a.seq, 'pin me, edited'],
    ]);
    expect(await mem.fails('unpin', { room, seq: a.seq })).toBe('forbidden');
    await own.call('unpin', { room, seq: a.seq });
    await waitFor(() => mem.events('pin').length === 3, 5000, 'unpin event');
    // A deleted message leaves the pins and cannot be pinned.
    await mem.call('delete', { room, target: b.seq });
    expect((await mem.call<{ pins: unknown[] }>('pins', { room })).pins).toEqual([]);
    expect(await own.fails('pin', { room, seq: b.seq })).toBe('conflict');
    // Over REST, and not for those who cannot read the room.
    expect((await rest('p-mem', 'PUT', `/rooms/${room}/pins/${a.seq}`)).status).toBe(403);
    expect((await rest('p-own', 'PUT', `/rooms/${room}/pins/${a.seq}`)).body).toEqual({ room, seq: a.seq, pinned: true });
    expect(((await rest('p-mem', 'GET', `/rooms/${room}/pins`)).body.pins as unknown[]).length).toBe(1);
    expect((await rest('p-out', 'GET', `/rooms/${room}/pins`)).status).toBe(403);
    own.close();
    mem.close();
  });

  it("anyone who can read the room lists an edited message's versions", async () => {
    const [ann, bob] = await Promise.all([open('v-ann'), open('v-bob')]);
    const room = await newRoom('channel', ann);
    const m = await ann.call<{ seq: number }>('send', { room, text: 'one' });
    const e1 = await ann.call<{ seq: number }>('edit', { room, target: m.seq, text: 'two' });
    const e2 = await ann.call<{ seq: number }>('edit', { room, target: m.seq, text: 'three' });
    // bob is not a member of this public channel, and can read it.
    const v = await bob.call<{ versions: Array<{ seq: number; text: string }>; deleted: boolean }>('versions', { room, seq: m.seq });
    expect(v.versions.map((x) => [x.seq, x.text])).toEqual([
      [m.seq, 'one'],
      [e1.seq, 'two'],
      [e2.seq, 'three'],
    ]);
    expect(v.deleted).toBe(false);
    expect(await bob.fails('versions', { room, seq: e1.seq })).toBe('not_found');
    expect((await rest('v-bob', 'GET', `/rooms/${room}/messages/${m.seq}/versions`)).body).toMatchObject({ seq: m.seq, deleted: false });
    const grp = await group(ann);
    const g = await ann.call<{ seq: number }>('send', { room: grp, text: 'private' });
    expect(await bob.fails('versions', { room: grp, seq: g.seq })).toBe('forbidden');
    await ann.call('delete', { room, target: m.seq });
    expect(await bob.call('versions', { room, seq: m.seq })).toEqual({ room, seq: m.seq, versions: [], deleted: true });
    ann.close();
    bob.close();
  });
});

describe('after a restart', () => {
  it('mentions, quotes, levels, settings and pins are still there', async () => {
    const [ann, bob] = await Promise.all([open('s-ann'), open('s-bob')]);
    const room = await group(ann, bob);
    const t = await ann.call<{ seq: number }>('send', { room, text: 'hello @s-bob' });
    const r = await bob.call<{ seq: number }>('send', { room, text: 'hi', replyTo: t.seq });
    await ann.call('pin', { room, seq: t.seq });
    await bob.call('notifications', { room, level: 'none' });
    await ann.call('settings', { room, mentionAll: 'members' });
    ann.close();
    bob.close();
    await srv.close();
    srv = await start();
    const again = await open('s-bob');
    const history = (await again.call<{ messages: Msg[] }>('history', { room, after: t.seq - 1, limit: 2 })).messages;
    expect(history[0]!.mentions).toEqual(['s-bob']);
    expect(history[1]).toMatchObject({ seq: r.seq, replyTo: t.seq, quote: { user: 's-ann', text: 'hello @s-bob' } });
    expect((await again.call<{ pins: Array<{ seq: number }> }>('pins', { room })).pins.map((p) => p.seq)).toEqual([t.seq]);
    expect(await again.call('notifications', { room })).toEqual({ room, level: 'none' });
    expect(await again.call('settings', { room })).toEqual({ room, mentionAll: 'members' });
    again.close();
  });
});
