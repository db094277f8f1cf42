import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';
import { ParleyClient, type ClientError } from '../src/client/index.js';
import { mintToken } from '../src/auth/jwt.js';

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
async function admin(): Promise<ParleyClient> {
  const c = new ParleyClient({ url: srv.url, token: await mintToken(srv.config, 'root', { admin: true }), WebSocket: WebSocket as never });
  await c.connect();
  return c;
}
const removedFrom = (c: ParleyClient) => {
  const out: Array<{ room: string; reason?: string }> = [];
  c.on('room', (r) => {
    if (r.member === null) out.push({ room: r.room, reason: r.reason });
  });
  return out;
};

describe('access lists', () => {
  it('a whitelist change evicts connected members who lost access, at once', async () => {
    const owner = await srv.client('wl-owner');
    const room = await owner.createRoom('channel', 'Whitelist');
    const ok = await srv.client('wl-ok');
    const out = await srv.client('wl-out');
    const out2 = await srv.client('wl-out'); // a second connection of the same user
    await ok.join(room.id);
    await out.join(room.id);
    await waitFor(() => out2.rooms.has(room.id));
    const evicted = removedFrom(out);
    const evicted2 = removedFrom(out2);
    await owner.request('access', { room: room.id, list: 'white', add: ['wl-ok'] });
    const r = await owner.updateRoom(room.id, { access: 'whitelist' });
    expect(r.access).toBe('whitelist');
    await waitFor(() => evicted.length > 0 && evicted2.length > 0, 3000, 'eviction on both connections');
    expect(evicted[0]).toMatchObject({ room: room.id, reason: 'access' });
    const got = collect(out, room.id);
    await owner.send(room.id, 'members only');
    await new Promise((r2) => setTimeout(r2, 100));
    expect(got).toHaveLength(0);
    expect(await code(out.send(room.id, 'x'))).toBe('forbidden');
    expect(await code(out.join(room.id))).toBe('forbidden');
    expect((await owner.members(room.id)).members.map((m) => m.user).sort()).toEqual(['wl-ok', 'wl-owner']);
  });

  it('blacklisting a member removes it and keeps it out; lists are for owners and admins', async () => {
    const owner = await srv.client('bl-owner');
    const room = await owner.createRoom('channel', 'Blacklist');
    const bad = await srv.client('bl-bad');
    await bad.join(room.id);
    expect(await code(bad.request('access', { room: room.id, list: 'black', add: ['bl-owner'] }))).toBe('forbidden');
    const evicted = removedFrom(bad);
    const res = await owner.request('access', { room: room.id, list: 'black', add: ['bl-bad'] });
    expect(res).toMatchObject({ users: ['bl-bad'], removed: ['bl-bad'] });
    await waitFor(() => evicted.length === 1);
    expect(await code(bad.join(room.id))).toBe('forbidden');
    await owner.request('access', { room: room.id, list: 'black', remove: ['bl-bad'] });
    expect(await code(bad.join(room.id))).toBe('ok');
  });
});

describe('bans, kicks, mutes, roles', () => {
  it('a room ban removes the user; once it expires the user can join again', async () => {
    const owner = await srv.client('ban-owner');
    const room = await owner.createRoom('channel', 'Bans');
    const u = await srv.client('ban-user');
    await u.join(room.id);
    const evicted = removedFrom(u);
    await owner.ban('ban-user', { room: room.id, seconds: 1, reason: 'spam' });
    await waitFor(() => evicted.length === 1);
    expect(evicted[0]!.reason).toBe('banned: spam');
    const err = await u.join(room.id).catch((e: ClientError) => e);
    // The banned user is told why and until when; a member inviting them only that they are banned.
    expect(err).toMatchObject({ code: 'forbidden', details: { reason: 'banned', banReason: 'spam' } });
    expect((err as ClientError).details!.until).toBeGreaterThan(Date.now());
    const invited = await owner.invite(room.id, 'ban-user').catch((e: ClientError) => e);
    expect(invited).toMatchObject({ code: 'forbidden', details: { reason: 'banned' } });
    expect((invited as ClientError).details).not.toHaveProperty('banReason');
    expect((await owner.request('bans', { room: room.id })).bans.map((b) => b.user)).toEqual(['ban-user']);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await code(u.join(room.id))).toBe('ok');
    expect((await owner.request('bans', { room: room.id })).bans).toEqual([]);
  });

  it('a server-wide ban closes every connection of the user and refuses it until lifted', async () => {
    const root = await admin();
    const raw = await RawSocket.open(srv.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await srv.token('outlaw') })).ok).toBe(true);
    const plain = await srv.client('plain-user');
    expect(await code(plain.ban('outlaw'))).toBe('forbidden');
    await root.ban('outlaw', { reason: 'abuse' });
    expect(await raw.closed()).toBe(4003);
    const again = await RawSocket.open(srv.wsUrl);
    const r = await again.call({ id: 1, cmd: 'auth', token: await srv.token('outlaw') });
    expect(r).toMatchObject({ ok: false, error: { code: 'forbidden', details: { reason: 'banned' } } });
    expect(await again.closed()).toBe(4003);
    await root.request('unban', { user: 'outlaw' });
    const ok = await RawSocket.open(srv.wsUrl);
    expect((await ok.call({ id: 1, cmd: 'auth', token: await srv.token('outlaw') })).ok).toBe(true);
    ok.close();
  });

  it('kick removes a member who may come back; admins cannot act on owners; members on nobody', async () => {
    const owner = await srv.client('k-owner');
    const room = await owner.createRoom('channel', 'Kicks');
    const adm = await srv.client('k-admin');
    const mem = await srv.client('k-member');
    await adm.join(room.id);
    await mem.join(room.id);
    expect(await code(mem.kick(room.id, 'k-admin'))).toBe('forbidden');
    expect(await code(adm.kick(room.id, 'k-member'))).toBe('forbidden');
    expect((await owner.request('role', { room: room.id, user: 'k-admin', role: 'admin' })).member.role).toBe('admin');
    expect(await code(adm.kick(room.id, 'k-owner'))).toBe('forbidden');
    await adm.kick(room.id, 'k-member', 'cool off');
    expect(await code(mem.send(room.id, 'x'))).toBe('forbidden');
    expect(await code(mem.join(room.id))).toBe('ok');
    const h = await owner.history(room.id);
    expect(h.messages.some((m) => m.kind === 'leave' && m.user === 'k-member' && m.data?.by === 'k-admin')).toBe(true);
    expect(h.messages.some((m) => m.kind === 'update' && m.data?.role === 'admin')).toBe(true);
  });

  it('a muted member cannot write until the mute is lifted', async () => {
    const owner = await srv.client('m-owner');
    const room = await owner.createRoom('group', 'Mutes');
    await owner.invite(room.id, 'm-user');
    const u = await srv.client('m-user');
    const mine = await u.send(room.id, 'before');
    const { member } = await owner.mute(room.id, 'm-user', 60);
    expect(member.mutedUntil).toBeGreaterThan(Date.now());
    const err = await u.send(room.id, 'during').catch((e: ClientError) => e);
    expect(err).toMatchObject({ code: 'forbidden', details: { reason: 'muted' } });
    expect(await code(u.react(room.id, mine.seq, 'x'))).toBe('forbidden');
    expect(await code(u.deleteMessage(room.id, mine.seq))).toBe('ok');
    await owner.request('mute', { room: room.id, user: 'm-user', off: true });
    expect(await code(u.send(room.id, 'after'))).toBe('ok');
  });

  it("the owner can hand the room over; deleting a room removes everyone's access", async () => {
    const owner = await srv.client('d-owner');
    const room = await owner.createRoom('group', 'Doomed');
    await owner.invite(room.id, 'd-other');
    const other = await srv.client('d-other');
    await owner.request('role', { room: room.id, user: 'd-other', role: 'owner' });
    const members = (await other.members(room.id)).members;
    expect(members.find((m) => m.user === 'd-owner')!.role).toBe('admin');
    expect(await code(owner.request('destroy', { room: room.id }))).toBe('forbidden');
    const gone = removedFrom(owner);
    await other.request('destroy', { room: room.id });
    await waitFor(() => gone.some((g) => g.room === room.id && g.reason === 'deleted'));
    expect(await code(owner.history(room.id))).toBe('not_found');
    expect((await owner.listRooms()).rooms.map((r) => r.id)).not.toContain(room.id);
  });
});

describe('blocking', () => {
  it('direct messages from a blocked user are not delivered, and the sender is not told', async () => {
    const a = await srv.client('blk-a');
    const b = await srv.client('blk-b');
    const dm = await a.direct('blk-b');
    const atA = collect(a, dm.id);
    await a.block('blk-b');
    expect((await a.request('blocks', {})).users).toEqual(['blk-b']);
    const sent = await b.send(dm.id, 'you cannot see this');
    expect(sent.duplicate).toBe(false);
    await waitFor(() => atA.some((m) => m.seq === sent.seq));
    expect(atA.find((m) => m.seq === sent.seq)).toMatchObject({ kind: 'hidden' });
    expect(atA.find((m) => m.seq === sent.seq)!.text).toBeUndefined();
    const h = await a.history(dm.id);
    expect(h.messages.find((m) => m.seq === sent.seq)!.kind).toBe('hidden');
    expect(JSON.stringify(h)).not.toContain('you cannot see this');
    expect((await a.inbox()).rooms.find((e) => e.room.id === dm.id)!.unread).toBe(0);
    expect((await b.history(dm.id)).messages.find((m) => m.seq === sent.seq)!.text).toBe('you cannot see this');
    await a.unblock('blk-b');
    const later = await b.send(dm.id, 'now you can');
    await waitFor(() => atA.some((m) => m.seq === later.seq && m.text === 'now you can'));
  });
});

describe('blocking and typing', () => {
  it('a blocker never receives the typing of a user it blocks, in a direct room or a group; others still do', async () => {
    const sock = async (user: string) => {
      const s = await RawSocket.open(srv.wsUrl);
      expect((await s.call({ id: 'a', cmd: 'auth', token: await srv.token(user) })).ok).toBe(true);
      return s;
    };
    const [a, b, c] = await Promise.all([sock('typ-a'), sock('typ-b'), sock('typ-c')]);
    const group = ((await a.call({ id: 1, cmd: 'create', kind: 'group', name: 'Typing' })).data as { id: string }).id;
    await a.call({ id: 2, cmd: 'invite', room: group, user: 'typ-b' });
    await a.call({ id: 3, cmd: 'invite', room: group, user: 'typ-c' });
    const dm = ((await a.call({ id: 4, cmd: 'direct', user: 'typ-b' })).data as { id: string }).id;
    expect((await a.call({ id: 5, cmd: 'block', user: 'typ-b' })).ok).toBe(true);
    const typing = (s: RawSocket, room: string, user: string) =>
      s.frames.filter((f) => f.ev === 'typing' && (f.data as { room: string; user: string }).room === room && (f.data as { user: string }).user === user);
    expect((await b.call({ id: 6, cmd: 'typing', room: group })).ok).toBe(true);
    expect((await b.call({ id: 7, cmd: 'typing', room: dm })).ok).toBe(true);
    // A later event from a user typ-a does not block: once it arrived, the blocked ones would have too.
    expect((await c.call({ id: 8, cmd: 'typing', room: group })).ok).toBe(true);
    await waitFor(() => typing(a, group, 'typ-c').length === 1 && typing(c, group, 'typ-b').length === 1);
    expect(typing(a, group, 'typ-b')).toEqual([]);
    expect(typing(a, dm, 'typ-b')).toEqual([]);
    // Lifting the block lets typing through again.
    await a.call({ id: 9, cmd: 'unblock', user: 'typ-b' });
    await b.call({ id: 10, cmd: 'typing', room: dm });
    await waitFor(() => typing(a, dm, 'typ-b').length === 1);
    for (const s of [a, b, c]) s.close();
  });
});

describe('retention', () => {
  it('a room keeps its last N messages; resuming from a removed seq is told which range is gone', async () => {
    const a = await srv.client('ret-a');
    const room = await a.createRoom('group', 'Short memory');
    await a.updateRoom(room.id, { retention: { count: 5 } });
    for (let i = 0; i < 20; i++) await a.send(room.id, `m${i}`);
    const last = (await a.history(room.id)).last;
    expect(await srv.parley.sweep()).toBe(last - 5);
    const h = await a.history(room.id, { after: 0, limit: 100 });
    expect(h.messages.map((m) => m.seq)).toEqual([last - 4, last - 3, last - 2, last - 1, last]);
    expect(h.first).toBe(last - 4);
    const raw = await RawSocket.open(srv.wsUrl);
    await raw.call({ id: 1, cmd: 'auth', token: await srv.token('ret-a'), resume: { [room.id]: 2 } });
    await waitFor(() => raw.frames.filter((f) => f.ev === 'message').length === 5);
    const gap = raw.frames.find((f) => f.ev === 'gap');
    expect(gap).toMatchObject({ data: { room: room.id, from: 3, to: last - 5 } });
    raw.close();
  });
});

describe('search', () => {
  it('finds messages the user may read, follows edits and deletes, and ignores FTS syntax', async () => {
    const a = await srv.client('srch-a');
    const b = await srv.client('srch-b');
    const mine = await a.createRoom('group', 'Searchable');
    const theirs = await b.createRoom('group', 'Private');
    await a.send(mine.id, 'the quick brown fox');
    const lazy = await a.send(mine.id, 'a lazy dog sleeps');
    await b.send(theirs.id, 'a secret fox plan');
    expect((await a.search('fox')).messages.map((m) => m.text)).toEqual(['the quick brown fox']);
    await a.edit(mine.id, lazy.seq, 'an energetic dog runs');
    expect((await a.search('lazy')).messages).toEqual([]);
    expect((await a.search('energetic')).messages.map((m) => m.kind)).toEqual(['edit']);
    await a.deleteMessage(mine.id, lazy.seq);
    expect((await a.search('dog')).messages).toEqual([]);
    expect((await a.search('fox" OR secret NEAR(*')).messages).toEqual([]);
    expect(await code(a.search('fox', { room: theirs.id }))).toBe('forbidden');
  });
});

describe('server-side API', () => {
  it('posts texts and custom events to many rooms at once; only administrators may', async () => {
    const root = await admin();
    const u = await srv.client('app-user');
    const r1 = await u.createRoom('group', 'App one');
    const r2 = await u.createRoom('group', 'App two');
    const texts = collect(u);
    const customs: Array<{ room: string; ev: string; data?: unknown }> = [];
    u.on('custom', (c) => customs.push(c));
    const res = await root.request('post', {
      rooms: [r1.id, r2.id],
      as: { id: 'bot', name: 'Bot' },
      messages: [{ text: 'maintenance at 5' }, { ev: 'score', data: { home: 2, away: 1 } }],
    });
    expect(res.posted).toHaveLength(4);
    await waitFor(() => customs.length === 2 && texts.filter((m) => m.text === 'maintenance at 5').length === 2);
    expect(customs.map((c) => c.ev)).toEqual(['score', 'score']);
    expect(customs[0]!.data).toEqual({ home: 2, away: 1 });
    expect(texts.find((m) => m.text === 'maintenance at 5')).toMatchObject({ user: 'bot', name: 'Bot' });
    expect(await code(u.request('post', { rooms: [r1.id], messages: [{ text: 'x' }] }))).toBe('forbidden');
    expect(await code(root.request('post', { rooms: [r1.id, 'nope'], messages: [{ text: 'x' }] }))).toBe('not_found');
    expect((await u.history(r1.id)).messages.filter((m) => m.text === 'x')).toHaveLength(0);
  });

  it('notifies one user or everyone on their notification channel', async () => {
    const root = await admin();
    const u1 = await srv.client('note-1');
    const u2 = await srv.client('note-2');
    const n1: unknown[] = [];
    const n2: unknown[] = [];
    u1.on('notice', (n) => n1.push(n));
    u2.on('notice', (n) => n2.push(n));
    await root.request('notify', { users: ['note-1'], ev: 'hello', data: { x: 1 } });
    await root.request('notify', { all: true, ev: 'broadcast' });
    await waitFor(() => n1.length === 2 && n2.length === 1);
    expect(n1).toEqual([{ ev: 'hello', data: { x: 1 } }, { ev: 'broadcast' }]);
    expect(await code(u1.request('notify', { all: true, ev: 'x' }))).toBe('forbidden');
  });
});
