import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';
import type { ClientError } from '../src/client/index.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.close();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: ClientError) => e.code,
  );

describe('edits, deletes, reactions', () => {
  it('are stored as new messages pointing at their target; history stays append-only', async () => {
    const a = await srv.client('ed-a');
    const b = await srv.client('ed-b');
    const room = await a.createRoom('group', 'Edits');
    await a.invite(room.id, 'ed-b');
    const m = await a.send(room.id, 'helo');
    const e = await a.edit(room.id, m.seq, 'hello');
    const r = await b.react(room.id, m.seq, '👍');
    const r2 = await b.react(room.id, m.seq, '👍', true);
    expect(await code(b.edit(room.id, m.seq, 'hijack'))).toBe('forbidden');
    expect(await code(b.deleteMessage(room.id, m.seq))).toBe('forbidden');
    expect(await code(a.edit(room.id, 9999, 'nothing there'))).toBe('not_found');
    const d = await a.deleteMessage(room.id, m.seq);
    expect(await code(a.edit(room.id, m.seq, 'too late'))).toBe('conflict');
    const h = await a.history(room.id, { after: m.seq - 1 });
    expect(h.messages.map((x) => [x.seq, x.kind, x.target ?? null])).toEqual([
      [m.seq, 'text', null],
      [e.seq, 'edit', m.seq],
      [r.seq, 'reaction', m.seq],
      [r2.seq, 'reaction', m.seq],
      [d.seq, 'delete', m.seq],
    ]);
    expect(h.messages[0]!.text).toBe('helo');
    expect(h.messages[1]!.text).toBe('hello');
    expect(h.messages[3]!.data).toEqual({ emoji: '👍', remove: true });
  });

  it("an owner can delete anyone's message in its group", async () => {
    const a = await srv.client('own-a');
    const b = await srv.client('own-b');
    const room = await a.createRoom('group', 'Mod');
    await a.invite(room.id, 'own-b');
    const m = await b.send(room.id, 'spam');
    expect((await a.deleteMessage(room.id, m.seq)).seq).toBe(m.seq + 1);
  });
});

describe('read markers, inbox, typing, presence', () => {
  it('unread counts follow read markers; the inbox lists rooms with their last message', async () => {
    const a = await srv.client('ib-a');
    const b = await srv.client('ib-b');
    const dm = await a.direct('ib-b');
    const grp = await a.createRoom('group', 'Inbox');
    await a.invite(grp.id, 'ib-b');
    await a.send(dm.id, 'one');
    const two = await a.send(dm.id, 'two');
    // Newest first by the last message's time: a millisecond apart, so the order is not a tie.
    await new Promise((r) => setTimeout(r, 5));
    await a.send(grp.id, 'group msg');
    let inbox = (await b.inbox()).rooms;
    expect(inbox.map((e) => e.room.id)).toEqual([grp.id, dm.id]);
    expect(inbox.find((e) => e.room.id === dm.id)).toMatchObject({ unread: 2, last: { text: 'two' } });
    expect(inbox.find((e) => e.room.id === grp.id)).toMatchObject({ unread: 1 });
    const reads = collect(a);
    void reads;
    const readEvents: Array<{ user: string; seq: number }> = [];
    a.on('read', (r) => readEvents.push(r));
    expect(await b.markRead(dm.id, two.seq)).toEqual({ room: dm.id, seq: two.seq });
    // Markers never move back and never pass the end.
    expect((await b.markRead(dm.id, 1)).seq).toBe(two.seq);
    expect((await b.markRead(dm.id, 10_000)).seq).toBe(two.seq);
    inbox = (await b.inbox()).rooms;
    expect(inbox.find((e) => e.room.id === dm.id)).toMatchObject({ unread: 0, readSeq: two.seq });
    // The sender's own messages never count as unread for it.
    expect((await a.inbox()).rooms.find((e) => e.room.id === dm.id)!.unread).toBe(0);
    await waitFor(() => readEvents.some((r) => r.user === 'ib-b' && r.seq === two.seq));
  });

  it('typing reaches the room and is never stored; presence follows connections', async () => {
    const a = await srv.client('ty-a');
    const room = await a.createRoom('channel', 'Typing');
    const b = await srv.client('ty-b');
    await b.join(room.id);
    const typing: Array<{ user: string; active: boolean }> = [];
    b.on('typing', (t) => typing.push(t));
    const before = (await a.history(room.id)).last;
    await a.typing(room.id);
    await waitFor(() => typing.some((t) => t.user === 'ty-a' && t.active));
    expect((await a.history(room.id)).last).toBe(before);

    const presence: Array<{ user: string; online: boolean }> = [];
    b.on('presence', (p) => presence.push(p));
    expect((await b.presence(room.id)).users.sort()).toEqual(['ty-a', 'ty-b']);
    const a2 = await srv.client('ty-a'); // a second connection of the same user
    a.close();
    await new Promise((r) => setTimeout(r, 100));
    expect((await b.presence(room.id)).users.sort()).toEqual(['ty-a', 'ty-b']);
    a2.close();
    await waitFor(() => presence.some((p) => p.user === 'ty-a' && !p.online), 5000, 'offline event');
    expect((await b.presence(room.id)).users).toEqual(['ty-b']);
  });
});

describe('presence as members come and go', () => {
  it('a member who joins while online is announced online to the room, and offline when removed', async () => {
    const owner = await srv.client('pj-owner');
    const room = await owner.createRoom('channel', 'Presence joins');
    const watcher = await RawSocket.open(srv.wsUrl);
    expect((await watcher.call({ id: 1, cmd: 'auth', token: await srv.token('pj-watch') })).ok).toBe(true);
    expect((await watcher.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
    const seen = () => watcher.frames.filter((f) => f.ev === 'presence').map((f) => f.data as { user: string; online: boolean });

    const joiner = await srv.client('pj-joiner');
    await joiner.join(room.id);
    await waitFor(() => seen().some((p) => p.user === 'pj-joiner' && p.online), 5000, 'online on join');
    expect((await watcher.call({ id: 3, cmd: 'presence', room: room.id })).data).toMatchObject({ users: expect.arrayContaining(['pj-joiner']) });

    await owner.kick(room.id, 'pj-joiner');
    await waitFor(() => seen().some((p) => p.user === 'pj-joiner' && !p.online), 5000, 'offline on kick');
    // Nobody is announced for a member added while offline.
    await owner.invite(room.id, 'pj-away');
    await owner.send(room.id, 'after the invite');
    await waitFor(() => watcher.frames.some((f) => f.ev === 'message' && (f.data as { text?: string }).text === 'after the invite'));
    expect(seen().filter((p) => p.user === 'pj-away')).toEqual([]);
    watcher.close();
  });

  it('a user who reconnects while its last connection is being detached stays online for the room', async () => {
    const owner = await srv.client('pr-owner');
    const room = await owner.createRoom('channel', 'Presence race');
    const watcher = await RawSocket.open(srv.wsUrl);
    expect((await watcher.call({ id: 1, cmd: 'auth', token: await srv.token('pr-watch') })).ok).toBe(true);
    expect((await watcher.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
    const seen = () =>
      watcher.frames.filter((f) => f.ev === 'presence' && (f.data as { user: string }).user === 'pr-a').map((f) => (f.data as { online: boolean }).online);
    const first = await RawSocket.open(srv.wsUrl);
    expect((await first.call({ id: 1, cmd: 'auth', token: await srv.token('pr-a') })).ok).toBe(true);
    expect((await first.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
    await waitFor(() => seen().at(-1) === true, 5000, 'online');

    // The detach of the last connection reads the user's rooms slowly; the user reconnects meanwhile.
    const store = srv.parley.store;
    const roomsOf = store.roomsOf.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = 0;
    store.roomsOf = async (user: string) => {
      if (user === 'pr-a' && held++ === 0) await gate;
      return roomsOf(user);
    };
    try {
      first.close();
      await waitFor(() => held === 1, 5000, 'detach reading the rooms');
      const second = await RawSocket.open(srv.wsUrl);
      expect((await second.call({ id: 1, cmd: 'auth', token: await srv.token('pr-a') })).ok).toBe(true);
      release();
      // Whatever was announced in between, the last word is online, as the presence says.
      await new Promise((r) => setTimeout(r, 300));
      expect(seen().at(-1)).toBe(true);
      expect((await watcher.call({ id: 3, cmd: 'presence', room: room.id })).data).toMatchObject({ users: expect.arrayContaining(['pr-a']) });
      second.close();
      await waitFor(() => seen().at(-1) === false, 5000, 'offline once really gone');
    } finally {
      store.roomsOf = roomsOf;
      release();
    }
    watcher.close();
  });

  it('tells a connection the longest text it may send', async () => {
    const raw = await RawSocket.open(srv.wsUrl);
    const r = await raw.call({ id: 1, cmd: 'auth', token: await srv.token('limits-user') });
    expect(r).toMatchObject({ ok: true, data: { limits: { textChars: srv.config.limits.textChars } } });
    raw.close();
  });
});

describe('public profiles', () => {
  it('a JWT profile is attached to the user and shown with its messages, live and in history', async () => {
    const { ParleyClient } = await import('../src/client/index.js');
    const { default: WebSocket } = await import('ws');
    const { mintToken } = await import('../src/auth/jwt.js');
    const token = await mintToken(srv.config, 'prof-a', { name: 'Pat', profile: { avatar: 'https://example.test/p.png', title: 'Ops' } });
    const a = new ParleyClient({ url: srv.url, token, WebSocket: WebSocket as never });
    await a.connect();
    const b = await srv.client('prof-b');
    const dm = await a.direct('prof-b');
    const got = collect(b, dm.id);
    const sent = await a.send(dm.id, 'hi');
    await waitFor(() => got.some((m) => m.seq === sent.seq));
    const live = got.find((m) => m.seq === sent.seq)!;
    expect(live).toMatchObject({ name: 'Pat', profile: { avatar: 'https://example.test/p.png', title: 'Ops' } });
    const h = await b.history(dm.id);
    expect(h.messages.find((m) => m.seq === sent.seq)!.profile).toEqual({ avatar: 'https://example.test/p.png', title: 'Ops' });
    expect(h.messages.find((m) => m.user === 'prof-b')?.profile).toBeUndefined();
    a.close();
  });
});
