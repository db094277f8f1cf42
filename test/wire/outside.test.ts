// What an outside attack at the wire found, each checked with raw WebSocket clients and REST:
// an edit hidden from a blocker reached them through `versions` and reply quotes, refused
// moderation commands naming ever new users grew what the room's owner keeps in memory, and
// REST read "2.9" in a path or query as the seq 2, an upload sent already could be carried by a
// second message, a group's owner could leave it with nobody able to run it, and a channel's
// name could be taken again with characters that draw nothing, and a bidirectional override
// in a display name turned around the text an app writes after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, startServer, removeDir, type TestServer } from '../helpers.js';
import { MAX_USER_FACTS, type RoomState } from '../../src/log/state.js';
import { rest, room as newRoom, Wire } from './wire.js';

let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({ plugins: { rateLimit: { enabled: false } } });
});

afterAll(async () => {
  await srv?.close();
  if (srv) removeDir(srv.dataDir);
});

describe('blocks', () => {
  it("an edit made after the block reaches the blocker neither in `versions` nor in a reply's quote", async () => {
    const ann = await Wire.open(srv, 'ann');
    const ben = await Wire.open(srv, 'ben');
    const room = (await ann.call<{ id: string }>('direct', { user: 'ben' })).id;
    const { seq } = await ben.call<{ seq: number }>('send', { room, text: 'before the block' });
    await ann.call('block', { user: 'ben' });
    await ben.call('edit', { room, target: seq, text: 'hidden edit' });

    const seen = await ann.call<{ versions: Array<{ text: string }> }>('versions', { room, seq });
    expect(seen.versions.map((v) => v.text)).toEqual(['before the block']);
    const reply = await ann.call<{ seq: number }>('send', { room, text: 'answering', replyTo: seq });
    const stored = await ann.call<{ quote: { text: string } }>('message', { room, seq: reply.seq });
    expect(stored.quote.text).toBe('before the block');

    // The author still sees every version of their own message.
    const own = await ben.call<{ versions: Array<{ text: string }> }>('versions', { room, seq });
    expect(own.versions.map((v) => v.text)).toEqual(['before the block', 'hidden edit']);
    ann.close();
    ben.close();
  });
});

describe('refused commands keep nothing', () => {
  it('unban and invite by a non-member naming thousands of users leave the room state bounded', async () => {
    const owner = await Wire.open(srv, 'hallowner');
    const outsider = await Wire.open(srv, 'outsider');
    const room = await newRoom('channel', owner);
    const n = MAX_USER_FACTS + 1000;
    for (let i = 0; i < n; i += 50) {
      const codes = await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) => outsider.fails(j % 2 ? 'unban' : 'invite', { room, user: `nobody-${i + j}` })),
      );
      expect(new Set(codes)).toEqual(new Set(['forbidden']));
    }
    const lanes = (srv.parley.service.roomLog as unknown as { lanes: Map<string, { state: RoomState | null }> }).lanes;
    const state = lanes.get(room)?.state;
    expect(state).toBeTruthy();
    expect(state!.bans.size).toBeLessThanOrEqual(MAX_USER_FACTS);
    expect(state!.listed.size).toBeLessThanOrEqual(MAX_USER_FACTS);
    // The room still works, and a real ban is still known after the caches started over.
    await owner.call('ban', { room, user: 'nobody-7' });
    expect(await Wire.open(srv, 'nobody-7').then((w) => w.fails('join', { room }))).toBe('forbidden');
    owner.close();
    outsider.close();
  });
});

describe('REST numbers', () => {
  it('a seq or limit that is not a whole number is refused, as over WebSocket, and acts on nothing', async () => {
    const owner = await Wire.open(srv, 'numbers');
    const room = await newRoom('group', owner);
    const { seq } = await owner.call<{ seq: number }>('send', { room, text: 'keep me' });
    expect(await owner.fails('delete', { room, target: seq + 0.9 })).toBe('invalid');
    for (const [method, path] of [
      ['DELETE', `/rooms/${room}/messages/${seq}.9`],
      ['GET', `/rooms/${room}/messages/${seq}e3`],
      ['GET', `/rooms/${room}/messages?limit=1.5`],
      ['GET', `/rooms/${room}/messages?after=0.99`],
    ] as const) {
      const r = await rest(srv, owner, method, path);
      expect(r.status, `${method} ${path}`).toBe(400);
      expect((r.body.error as { code: string }).code).toBe('invalid');
    }
    const kept = await owner.call<{ versions: Array<{ text: string }>; deleted: boolean }>('versions', { room, seq });
    expect(kept.deleted).toBe(false);
    // Whole numbers still work, a leading "+" or zeros included.
    expect((await rest(srv, owner, 'GET', `/rooms/${room}/messages/${seq}`)).status).toBe(200);
    expect((await rest(srv, owner, 'GET', `/rooms/${room}/messages?limit=02`)).status).toBe(200);
    owner.close();
  });
});

describe('uploads', () => {
  async function upload(user: string, room: string, text: string): Promise<string> {
    const r = await fetch(`${srv.url}/api/v1/rooms/${room}/attachments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await srv.token(user)}`, 'content-type': 'text/plain', 'x-filename': 'note.txt' },
      body: text,
    });
    expect(r.status).toBe(201);
    return ((await r.json()) as { id: string }).id;
  }

  it('an upload goes with one message: only the retry of its own send may name it again', async () => {
    const ivy = await Wire.open(srv, 'ivy');
    const room = await newRoom('group', ivy);
    const id = await upload('ivy', room, 'first file');
    const first = await ivy.call<{ seq: number }>('send', { room, text: 'with a file', attachments: [id], key: 'k1' });
    // The retry of that send is answered with the message it stored.
    const retry = await ivy.call<{ seq: number; duplicate: boolean }>('send', { room, text: 'with a file', attachments: [id], key: 'k1' });
    expect(retry).toMatchObject({ seq: first.seq, duplicate: true });
    // Another send, with another key or none, is refused and stores nothing.
    expect(await ivy.fails('send', { room, text: 'again', attachments: [id], key: 'k2' })).toBe('conflict');
    expect(await ivy.fails('send', { room, text: 'again', attachments: [id] })).toBe('conflict');
    const { messages } = await ivy.call<{ messages: Array<{ seq: number; data?: { attachments?: Array<{ id: string }> } }> }>('history', { room });
    expect(messages.filter((m) => m.data?.attachments?.some((a) => a.id === id)).map((m) => m.seq)).toEqual([first.seq]);
    ivy.close();
  });

  it('two sends naming one unsent upload at once: one is stored, the other refused', async () => {
    const one = await Wire.open(srv, 'jay');
    const two = await Wire.open(srv, 'jay');
    const room = await newRoom('group', one);
    for (let round = 0; round < 5; round++) {
      const id = await upload('jay', room, `file ${round}`);
      const sends = await Promise.all(
        [one, two].map((w, i) =>
          w.raw.call({ id: `race-${round}-${i}`, cmd: 'send', room, text: `race ${round}`, attachments: [id], key: `race-${round}-${i}` }),
        ),
      );
      expect(sends.filter((r) => r.ok).length, JSON.stringify(sends)).toBe(1);
      expect((sends.find((r) => !r.ok)!.error as { code: string }).code).toBe('conflict');
    }
    one.close();
    two.close();
  });
});

describe("an owner's leaving", () => {
  it('hands the room to the admin who joined first, else the member who joined first', async () => {
    const [olive, mia, ada, abe] = await Promise.all(['olive', 'mia', 'ada', 'abe'].map((u) => Wire.open(srv, u)));
    const room = await newRoom('group', olive!, mia!, ada!, abe!);
    await olive!.call('role', { room, user: abe!.user, role: 'admin' });
    await olive!.call('role', { room, user: ada!.user, role: 'admin' });
    await olive!.call('leave', { room });
    const roles = async () =>
      Object.fromEntries((await mia!.call<{ members: Array<{ user: string; role: string }> }>('members', { room })).members.map((m) => [m.user, m.role]));
    // ada was invited before abe: the senior admin.
    expect(await roles()).toEqual({ mia: 'member', ada: 'owner', abe: 'admin' });
    // The room can be run: its new owner sets roles and could delete it.
    await ada!.call('role', { room, user: mia!.user, role: 'admin' });
    // With no admin left, the member who joined first takes it.
    await ada!.call('role', { room, user: mia!.user, role: 'member' });
    await ada!.call('role', { room, user: abe!.user, role: 'member' });
    await ada!.call('leave', { room });
    expect(await roles()).toEqual({ mia: 'owner', abe: 'member' });
    // Everyone was told, in the room's history.
    const { messages } = await abe!.call<{ messages: Array<{ kind: string; user: string; data?: { user?: string; role?: string; reason?: string } }> }>(
      'history',
      { room },
    );
    // Marked as passed on by a leave, not handed over by a `role` command.
    const handed = messages.filter((m) => m.kind === 'update' && m.data?.role === 'owner').map((m) => [m.user, m.data!.user, m.data!.reason]);
    expect(handed).toEqual([
      ['olive', 'ada', 'leave'],
      ['ada', 'mia', 'leave'],
    ]);
    await mia!.call('destroy', { room });
    for (const w of [olive, mia, ada, abe]) w!.close();
  });
});

describe('channel names', () => {
  it('a name that differs only by characters that draw nothing is taken', async () => {
    const owner = await Wire.open(srv, 'herald');
    const rival = await Wire.open(srv, 'rival');
    await owner.call('create', { kind: 'channel', name: 'Announcements' });
    for (const name of ['Announce\u200Bments', 'Announce\u00ADments', 'Announce\u2060ments', 'Announcements\u3164', 'ANNOUNCE\u200Dments']) {
      expect(await rival.fails('create', { kind: 'channel', name }), JSON.stringify(name)).toBe('conflict');
    }
    // A name of its own is still free, an emoji's joiner included.
    await rival.call('create', { kind: 'channel', name: 'Announcements \u{1F468}\u200D\u{1F4BB}' });
    expect(await owner.fails('create', { kind: 'channel', name: 'announcements \u{1F468}\u{1F4BB}' })).toBe('conflict');
    owner.close();
    rival.close();
  });
});

describe('names shown beside other text', () => {
  it('keep no bidirectional controls: display names (token or account), room names and topics', async () => {
    const raw = await RawSocket.open(srv.wsUrl);
    const auth = await raw.call({ id: 'a', cmd: 'auth', token: await srv.token('mallory', { name: 'Mallory \u202E' }) });
    expect(auth.ok).toBe(true);
    const mallory = await Wire.open(srv, 'mallory-room');
    const made = await mallory.call<{ id: string; name: string; topic: string }>('create', {
      kind: 'group',
      name: 'Evil\u202Egnp\u2066',
      topic: '\u202Dtopic',
    });
    expect([made.name, made.topic]).toEqual(['Evilgnp', 'topic']);
    expect(await mallory.fails('create', { kind: 'group', name: '\u202E \u2069' })).toBe('invalid');
    const renamed = await mallory.call<{ name: string }>('update', { room: made.id, name: 'Good\u202Bname' });
    expect(renamed.name).toBe('Goodname');
    // The token's name, as its messages carry it.
    const own = (await raw.call({ id: 'c', cmd: 'create', kind: 'group', name: 'own' })) as { data: { id: string } };
    const msg = (await raw.call({ id: 'm', cmd: 'send', room: own.data.id, text: 'hello' })) as { data: { seq: number } };
    const read = (await raw.call({ id: 'r', cmd: 'message', room: own.data.id, seq: msg.data.seq })) as { data: { name: string } };
    expect(read.data.name).toBe('Mallory');
    // A built-in account's display name, on registration and when changed.
    const reg = await fetch(`${srv.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'mallory2', password: 'a long enough passphrase 42', name: 'Mal\u202Elory' }),
    });
    expect(reg.status).toBe(201);
    const { accessToken } = (await reg.json()) as { accessToken: string };
    const me = async () =>
      ((await (await fetch(`${srv.url}/api/v1/me`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as { name: string }).name;
    expect(await me()).toBe('Mallory');
    const set = await fetch(`${srv.url}/api/v1/me`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
      body: JSON.stringify({ name: '\u2067Mal' }),
    });
    expect(set.status).toBe(200);
    expect(await me()).toBe('Mal');
    raw.close();
    mallory.close();
  });
});

describe('reactions', () => {
  it('the same emoji with or without a variation selector is one reaction', async () => {
    const [rae, ray] = await Promise.all(['rae', 'ray'].map((u) => Wire.open(srv, u)));
    const room = await newRoom('group', rae!, ray!);
    const { seq } = await rae!.call<{ seq: number }>('send', { room, text: 'react to me' });
    await rae!.call('react', { room, target: seq, emoji: '\u{1F44D}' });
    await ray!.call('react', { room, target: seq, emoji: '\u{1F44D}\uFE0F' });
    // A heart needs its selector to be drawn as an emoji: it keeps it.
    await ray!.call('react', { room, target: seq, emoji: '\u2764\uFE0F' });
    await ray!.call('react', { room, target: seq, emoji: '\u{1F44D}\uFE0F', remove: true });
    const { messages } = await rae!.call<{ messages: Array<{ kind: string; user: string; data?: { emoji: string; remove?: boolean } }> }>('history', { room });
    expect(messages.filter((m) => m.kind === 'reaction').map((m) => [m.user, m.data!.emoji, m.data!.remove === true])).toEqual([
      ['rae', '\u{1F44D}', false],
      ['ray', '\u{1F44D}', false],
      ['ray', '\u2764\uFE0F', false],
      ['ray', '\u{1F44D}', true],
    ]);
    rae!.close();
    ray!.close();
  });
});
