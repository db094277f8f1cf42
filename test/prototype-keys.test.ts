// Room ids are chosen by clients, so ids named like Object.prototype members must be rooms
// like any other: no object keyed by outside input may inherit a prototype.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, collect, startServer, waitFor, type TestServer } from './helpers.js';
import { Chat21Peer, rest } from './mqtt-helpers.js';

const IDS = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ mqtt: { enabled: true, port: 0 } });
});
afterAll(async () => {
  await srv.close();
});

async function authed(user: string, resume?: Record<string, number>): Promise<{ ws: RawSocket; auth: Record<string, unknown> }> {
  const ws = await RawSocket.open(srv.wsUrl);
  // Sent as text: a JS object literal would turn a "__proto__" key into a prototype.
  const frame = `{"id":"auth","cmd":"auth","token":"${await srv.token(user)}"${
    resume
      ? `,"resume":{${Object.entries(resume)
          .map(([r, s]) => `"${r}":${s}`)
          .join(',')}}`
      : ''
  }}`;
  ws.sendText(frame);
  const r = await ws.reply('auth');
  expect(r.ok, JSON.stringify(r)).toBe(true);
  return { ws, auth: r.data as Record<string, unknown> };
}

const liveSeqs = (ws: RawSocket, room: string): number[] =>
  ws.frames.filter((f) => f.ev === 'message' && (f.data as { room: string }).room === room).map((f) => (f.data as { seq: number }).seq);

describe('room ids named like Object.prototype members', () => {
  beforeAll(async () => {
    const { ws } = await authed('proto-owner');
    for (const room of IDS) {
      expect((await ws.call({ id: `c-${room}`, cmd: 'create', kind: 'group', name: room, room })).ok).toBe(true);
      expect((await ws.call({ id: `i-${room}`, cmd: 'invite', room, user: 'proto-member' })).ok).toBe(true);
    }
    ws.close();
  });

  it('a member who authenticates gets its place in each of them and every live message', async () => {
    const { ws: member, auth } = await authed('proto-member');
    const resumed = auth.resumed as Record<string, unknown>;
    const joined = auth.joined as Record<string, unknown>;
    for (const room of IDS) {
      expect(Object.hasOwn(resumed, room), room).toBe(true);
      expect(resumed[room], room).toBe((await srv.parley.store.bounds(room)).last);
      expect(Object.hasOwn(joined, room), room).toBe(true);
      expect(typeof joined[room], room).toBe('number');
    }
    const { ws: owner } = await authed('proto-owner');
    const sent = new Map<string, number>();
    for (const room of IDS) {
      const r = await owner.call({ id: `s-${room}`, cmd: 'send', room, text: `hello ${room}` });
      sent.set(room, (r.data as { seq: number }).seq);
    }
    for (const room of IDS) {
      await waitFor(() => liveSeqs(member, room).includes(sent.get(room)!), 3000, `live message in ${room}`);
      expect(liveSeqs(member, room)).toEqual([sent.get(room)]);
    }
    owner.close();
    member.close();
  });

  it('a member resuming them from a seq gets the gap replayed, once, and nothing is denied', async () => {
    const from = new Map<string, number>();
    for (const room of IDS) from.set(room, (await srv.parley.store.bounds(room)).last);
    const { ws: owner } = await authed('proto-owner');
    for (const room of IDS) await owner.call({ id: `m-${room}`, cmd: 'send', room, text: 'missed' });
    const { ws: member, auth } = await authed('proto-member', Object.fromEntries(from));
    expect(auth.denied).toEqual([]);
    for (const room of IDS) {
      expect((auth.resumed as Record<string, number>)[room], room).toBe(from.get(room));
      await waitFor(() => liveSeqs(member, room).length === 1, 3000, `replay of ${room}`);
      expect(liveSeqs(member, room)).toEqual([from.get(room)! + 1]);
    }
    // The resume command keys rooms the same way.
    member.sendText(`{"id":"r","cmd":"resume","rooms":{${IDS.map((r) => `"${r}":${from.get(r)! - 1}`).join(',')}}}`);
    const r = await member.reply('r');
    expect(r.ok).toBe(true);
    for (const room of IDS) expect(Object.hasOwn((r.data as { rooms: object }).rooms, room), room).toBe(true);
    owner.close();
    member.close();
  });

  it('the SDK resumes a room named "__proto__" after a reconnect without missing a message', async () => {
    const bob = await srv.client('proto-member');
    const got = collect(bob, '__proto__');
    expect(bob.lastSeq.has('__proto__')).toBe(true);
    bob.dropConnection();
    await waitFor(() => bob.state !== 'online', 3000, 'offline');
    const { ws: owner } = await authed('proto-owner');
    const seq = ((await owner.call({ id: 'x', cmd: 'send', room: '__proto__', text: 'while away' })).data as { seq: number }).seq;
    await waitFor(() => got.some((m) => m.seq === seq), 5000, 'the message sent while offline');
    expect(got.filter((m) => m.seq === seq)).toHaveLength(1);
    owner.close();
  });

  it('an MQTT inbox of a member gets live messages of a group named "constructor"', async () => {
    const peer = await Chat21Peer.connect(`mqtt://127.0.0.1:${srv.parley.mqtt!.port}`, 'proto-member', await srv.token('proto-member'));
    await waitFor(() => srv.parley.hub.localConnections('proto-member').length > 0, 3000, 'inbox attached');
    const { ws: owner } = await authed('proto-owner');
    await owner.call({ id: 'g', cmd: 'send', room: 'constructor', text: 'to the inbox' });
    await peer.waitAdded((m) => m.text === 'to the inbox', 'group message');
    expect(peer.on('/clientadded', `users/proto-member/messages/group-~constructor/`).length).toBeGreaterThan(0);
    await peer.close();
    owner.close();
  });

  it('Chat21: a member named "constructor" can be removed by a member list, and a group named "toString" archived', async () => {
    const owner = await srv.token('proto-owner');
    (await authed('constructor')).ws.close();
    const g = await rest(srv.url, owner, 'POST', '/groups', { group_name: 'G', group_id: 'proto-g', group_members: { constructor: 1 } });
    expect(g.status).toBe(201);
    const set = await rest(srv.url, owner, 'PUT', '/groups/proto-g/members', { members: { 'proto-owner': 1 } });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(Object.keys((set.body.result as { members: object }).members)).toEqual(['proto-owner']);

    const archived = await rest(srv.url, owner, 'DELETE', '/conversations/group-~toString');
    expect(archived.status).toBe(201);
    const list = await rest(srv.url, owner, 'GET', '/proto-owner/archived_conversations');
    expect((list.body.result as Array<{ conversWith: string }>).map((c) => c.conversWith)).toContain('group-~toString');
  });
});
