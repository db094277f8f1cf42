// One user must not grow another's room list (and its `auth` reply) without bound: caps on
// the rooms a user creates and belongs to, invitations refused from users one blocks, and a
// bulk `leaveMany` to get rid of unwanted invitations at once. Raw WebSocket clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt.js';
import { RawSocket, startServer, waitFor, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ limits: { roomsPerUser: 6, roomsCreatedPerUser: 3 } });
});
afterAll(async () => {
  await srv?.close();
});

let ids = 0;
async function user(name: string, admin = false): Promise<{ s: RawSocket; call: (cmd: string, args?: Record<string, unknown>) => Promise<any> }> {
  const s = await RawSocket.open(srv.wsUrl);
  const token = admin ? await mintToken(srv.config, name, { admin: true }) : await srv.token(name);
  expect((await s.call({ id: 'auth', cmd: 'auth', token })).ok).toBe(true);
  return { s, call: (cmd, args = {}) => s.call({ id: ++ids, cmd, ...args }) };
}

describe('room caps', () => {
  it('concurrent creates over many connections never pass limits.roomsCreatedPerUser', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => user('cap-racer')));
    const replies = await Promise.all(
      conns.flatMap((c, i) => Array.from({ length: 10 }, (_, j) => c.call('create', { kind: j % 2 ? 'group' : 'channel', name: `race ${i}-${j}` }))),
    );
    expect(replies.filter((r) => r.ok)).toHaveLength(3);
    expect(replies.filter((r) => !r.ok).every((r) => r.error.details?.reason === 'rooms_created')).toBe(true);
    const mine = await conns[0]!.call('rooms');
    expect(mine.data.rooms).toHaveLength(3);
    for (const c of conns) c.s.close();
  });

  it('a user creates at most limits.roomsCreatedPerUser rooms; deleting one frees a slot; direct rooms and administrators are not capped', async () => {
    const a = await user('cap-maker');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await a.call('create', { kind: i % 2 ? 'group' : 'channel', name: `c${i}` });
      expect(r.ok).toBe(true);
      made.push(r.data.id);
    }
    expect(await a.call('create', { kind: 'channel', name: 'one too many' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden', details: { reason: 'rooms_created', limit: 3 } },
    });
    expect((await a.call('direct', { user: 'cap-friend' })).ok).toBe(true);
    expect((await a.call('destroy', { room: made[0] })).ok).toBe(true);
    expect((await a.call('create', { kind: 'group', name: 'after a delete' })).ok).toBe(true);
    const admin = await user('cap-ops', true);
    // Past both caps (3 created, 6 joined): a server-side application needs many rooms.
    for (let i = 0; i < 8; i++) expect((await admin.call('create', { kind: 'channel', name: `ops${i}` })).ok).toBe(true);
    a.s.close();
    admin.s.close();
  });

  it('a user is a member of at most limits.roomsPerUser rooms: invitations and joins past it are refused, and its auth reply stays bounded', async () => {
    const attackers = await Promise.all([user('cap-att1'), user('cap-att2'), user('cap-att3')]);
    const victim = await user('cap-victim');
    let invited = 0;
    let refused = 0;
    for (const att of attackers) {
      for (let i = 0; i < 3; i++) {
        const room = (await att.call('create', { kind: 'channel', name: `spam ${attackers.indexOf(att)} ${i}` })).data.id as string;
        const r = await att.call('invite', { room, user: 'cap-victim' });
        if (r.ok) invited++;
        else {
          expect(r.error).toMatchObject({ code: 'forbidden', details: { reason: 'room_limit', limit: 6 } });
          refused++;
        }
      }
    }
    expect([invited, refused]).toEqual([6, 3]);
    // At the cap, joining a channel is refused too, until the user leaves one.
    const mine = (await victim.call('rooms', { scope: 'mine' })).data.rooms.map((r: { id: string }) => r.id) as string[];
    const theirs = (await attackers[2].call('rooms', { scope: 'mine' })).data.rooms.map((r: { id: string }) => r.id) as string[];
    const notYet = theirs.find((r) => !mine.includes(r))!;
    expect(await victim.call('join', { room: notYet })).toMatchObject({ ok: false, error: { code: 'forbidden', details: { reason: 'room_limit' } } });
    expect((await victim.call('leave', { room: mine[0] })).ok).toBe(true);
    expect((await victim.call('join', { room: notYet })).ok).toBe(true);
    const again = await RawSocket.open(srv.wsUrl);
    const auth = await again.call({ id: 1, cmd: 'auth', token: await srv.token('cap-victim') });
    expect((auth.data as { rooms: unknown[] }).rooms).toHaveLength(6);
    again.close();
    for (const x of [...attackers, victim]) x.s.close();
  });
});

describe('unwanted invitations', () => {
  it('a user who blocks another accepts no invitation from it; others still invite', async () => {
    const [spammer, friend, me] = await Promise.all([user('inv-spammer'), user('inv-friend'), user('inv-me')]);
    expect((await me.call('block', { user: 'inv-spammer' })).ok).toBe(true);
    const spam = (await spammer.call('create', { kind: 'group', name: 'spam' })).data.id;
    expect(await spammer.call('invite', { room: spam, user: 'inv-me' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden', details: { reason: 'blocked' } },
    });
    const real = (await friend.call('create', { kind: 'group', name: 'real' })).data.id;
    expect((await friend.call('invite', { room: real, user: 'inv-me' })).ok).toBe(true);
    for (const x of [spammer, friend, me]) x.s.close();
  });

  it('leaveMany leaves many rooms in one command; every connection of the user stops receiving them', async () => {
    const spammer = await user('lm-spammer');
    const me = await user('lm-me');
    const other = await user('lm-me');
    const rooms: string[] = [];
    for (let i = 0; i < 3; i++) {
      const room = (await spammer.call('create', { kind: 'group', name: `junk${i}` })).data.id as string;
      expect((await spammer.call('invite', { room, user: 'lm-me' })).ok).toBe(true);
      rooms.push(room);
    }
    const keep = (await me.call('create', { kind: 'group', name: 'mine' })).data.id as string;
    const r = await me.call('leaveMany', { rooms: [...rooms, 'no-such-room'] });
    expect(r).toMatchObject({ ok: true, data: { left: rooms, skipped: [{ room: 'no-such-room', code: 'not_found' }] } });
    expect((await me.call('rooms', { scope: 'mine' })).data.rooms.map((x: { id: string }) => x.id)).toEqual([keep]);
    const removed = () =>
      other.s.frames.filter((f) => f.ev === 'room' && (f.data as { member: unknown }).member === null).map((f) => (f.data as { room: string }).room);
    await waitFor(() => removed().length === 3);
    expect(removed().sort()).toEqual([...rooms].sort());
    // Nothing more of those rooms reaches either connection.
    await spammer.call('send', { room: rooms[0], text: 'still there?' });
    expect((await me.call('send', { room: keep, text: 'marker' })).ok).toBe(true);
    await waitFor(() => other.s.frames.some((f) => f.ev === 'message' && (f.data as { text?: string }).text === 'marker'));
    for (const s of [me.s, other.s]) expect(s.frames.some((f) => f.ev === 'message' && (f.data as { text?: string }).text === 'still there?')).toBe(false);
    for (const x of [spammer, me, other]) x.s.close();
  });
});
