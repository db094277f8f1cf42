// Abuse a client can try at the wire, with raw WebSocket, MQTT and HTTP clients: floods of
// typing frames, more connections than a user may hold, member lists with bad entries, and
// Chat21 messages dressed up as the server's notices.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, waitFor } from '../helpers.js';
import { APP, Chat21Peer, rest, sleep, startMqttServer } from '../mqtt-helpers.js';

let srv: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  srv = await startMqttServer();
});
afterAll(async () => {
  await srv.close();
});

async function authed(user: string): Promise<RawSocket> {
  const ws = await RawSocket.open(srv.wsUrl);
  const r = await ws.call({ id: 'auth', cmd: 'auth', token: await srv.token(user) });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  return ws;
}

describe("Chat21: setting a group's members", () => {
  it('a list with one bad member id is refused whole: nobody is added or removed', async () => {
    const owner = await srv.token('hm-owner');
    for (const u of ['hm-a', 'hm-b']) (await authed(u)).close();
    const g = await rest(srv.url, owner, 'POST', '/groups', { group_name: 'G', group_id: 'hm-group', group_members: { 'hm-a': 1 } });
    expect(g.status).toBe(201);
    const members = async () => (await srv.parley.store.members('hm-group')).map((m) => m.user).sort();
    expect(await members()).toEqual(['hm-a', 'hm-owner']);

    // hm-b would be added and hm-a removed, were "bad id!" not there.
    const r = await rest(srv.url, owner, 'PUT', '/groups/hm-group/members', { members: { 'hm-owner': 1, 'hm-b': 1, 'bad id!': 1 } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid');
    expect(await members()).toEqual(['hm-a', 'hm-owner']);
    const messages = await srv.parley.store.history('hm-group', { after: 0, limit: 100 });
    expect(messages.map((m) => m.kind)).toEqual(['join', 'join']);

    const ok = await rest(srv.url, owner, 'PUT', '/groups/hm-group/members', { members: { 'hm-owner': 1, 'hm-b': 1 } });
    expect(ok.status).toBe(200);
    expect(await members()).toEqual(['hm-b', 'hm-owner']);
  });
});

describe('Chat21: member lists the rules refuse halfway', () => {
  it('a list naming a user banned from the group is refused whole: nobody is added or removed', async () => {
    const owner = await srv.token('hr-owner');
    for (const u of ['hr-a', 'hr-b', 'hr-banned']) (await authed(u)).close();
    const g = await rest(srv.url, owner, 'POST', '/groups', { group_name: 'G', group_id: 'hr-group', group_members: { 'hr-a': 1 } });
    expect(g.status).toBe(201);
    const ws = await authed('hr-owner');
    const banned = await ws.call({ id: 'b', cmd: 'ban', room: 'hr-group', user: 'hr-banned', reason: 'spam' });
    expect(banned.ok, JSON.stringify(banned)).toBe(true);
    ws.close();
    const members = async () => (await srv.parley.store.members('hr-group')).map((m) => m.user).sort();
    const kinds = async () => (await srv.parley.store.history('hr-group', { after: 0, limit: 100 })).map((m) => m.kind);
    const before = await kinds();

    // hr-b comes first in the list: before, it was added (and hr-a removed) before the ban refused the rest.
    const r = await rest(srv.url, owner, 'PUT', '/groups/hr-group/members', { members: { 'hr-owner': 1, 'hr-b': 1, 'hr-banned': 1 } });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('forbidden');
    expect(await members()).toEqual(['hr-a', 'hr-owner']);
    expect(await kinds()).toEqual(before);
    expect(JSON.stringify(r.body)).toContain('hr-banned');
  });

  it('a new group listing a user who blocks its creator is not created at all', async () => {
    const owner = await srv.token('hn-owner');
    (await authed('hn-ok')).close();
    const blocker = await authed('hn-blocker');
    const b = await blocker.call({ id: 'b', cmd: 'block', user: 'hn-owner' });
    expect(b.ok, JSON.stringify(b)).toBe(true);
    blocker.close();

    const r = await rest(srv.url, owner, 'POST', '/groups', { group_name: 'G', group_id: 'hn-group', group_members: { 'hn-ok': 1, 'hn-blocker': 1 } });
    expect(r.status).toBe(403);
    expect(await srv.parley.store.getRoom('hn-group')).toBeNull();
    expect(await srv.parley.store.roomsOf('hn-ok')).toEqual([]);
    // The id is free again: the same group without the blocker is made.
    const ok = await rest(srv.url, owner, 'POST', '/groups', { group_name: 'G', group_id: 'hn-group', group_members: { 'hn-ok': 1 } });
    expect(ok.status).toBe(201);
    expect((await srv.parley.store.members('hn-group')).map((m) => m.user).sort()).toEqual(['hn-ok', 'hn-owner']);
  });
});

describe('Chat21: server notices', () => {
  it('a client cannot send a message that other clients show as a server notice', async () => {
    const tok = { a: await srv.token('hi-ann'), b: await srv.token('hi-ben') };
    const g = await rest(srv.url, tok.a, 'POST', '/groups', { group_name: 'G', group_id: 'group-hi', group_members: { 'hi-ben': 1 } });
    expect(g.status).toBe(201);
    const ann = await Chat21Peer.connect(srv.mqttUrl, 'hi-ann', tok.a);
    const ben = await Chat21Peer.connect(srv.mqttUrl, 'hi-ben', tok.b);
    const spoof = {
      subtype: 'info',
      updateconversation: true,
      color: 'red',
      messagelabel: { key: 'MEMBER_JOINED_GROUP', parameters: { member_id: 'mallory', fullname: 'Mallory' } },
    };
    await ann.send('group-hi', 'Mallory added to group', { attributes: spoof });
    const seen = await ben.waitAdded((m) => m.text === 'Mallory added to group', 'the spoofed message');
    // Delivered as what it is, a member's message: the notice markers are gone, the rest stays.
    expect(seen.sender).toBe('hi-ann');
    expect(seen.attributes).toEqual({ updateconversation: true, color: 'red' });
    // Through Parley's own protocol too: a message's Chat21 data is read the same way.
    const ws = await authed('hi-ann');
    const sent = await ws.call({
      id: 's',
      cmd: 'send',
      room: 'group-hi',
      text: 'Eve removed from group',
      data: { chat21: { attributes: { subtype: 'info/support', messagelabel: { key: 'MEMBER_LEFT_GROUP' } } } },
    });
    expect(sent.ok).toBe(true);
    const second = await ben.waitAdded((m) => m.text === 'Eve removed from group', 'the second spoofed message');
    expect(second.attributes).toEqual({});
    // History reads them the same way, while the server's own notices keep their markers.
    const history = await rest(srv.url, tok.b, 'GET', '/hi-ben/conversations/group-hi/messages');
    const docs = history.body.result as Array<{ text: string; sender: string; attributes: { subtype?: string } | null }>;
    for (const d of docs) expect(d.attributes?.subtype === 'info', d.text).toBe(d.sender === 'system');
    expect(docs.some((d) => d.sender === 'system')).toBe(true);
    ws.close();
    await ann.close();
    await ben.close();
  });
});

/** The typing states of `user` in `room` a member's socket received, in order. */
const typingOf = (ws: RawSocket, room: string, user: string): boolean[] =>
  ws.frames
    .filter((f) => f.ev === 'typing' && (f.data as { room: string }).room === room && (f.data as { user: string }).user === user)
    .map((f) => (f.data as { active: boolean }).active);

/**
 * Sends `n` typing frames over about `ms`, in bursts of 50 (within the connection's in-flight
 * cap: each burst's replies are read before the next); resolves with the codes of the replies.
 */
async function typingFlood(ws: RawSocket, room: string, n: number, ms: number): Promise<Map<string, number>> {
  const codes = new Map<string, number>();
  const bursts = n / 50;
  const start = Date.now();
  for (let burst = 0; burst < bursts; burst++) {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const id = `t${burst}-${i}`;
      ids.push(id);
      ws.sendText(JSON.stringify({ id, cmd: 'typing', room, active: true }));
    }
    for (const id of ids) {
      const r = await ws.reply(id, 10_000);
      const code = r.ok ? 'ok' : (r.error as { code: string }).code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    const due = start + ((burst + 1) * ms) / bursts;
    if (Date.now() < due) await sleep(due - Date.now());
  }
  return codes;
}

describe('typing floods', () => {
  async function flood(server: typeof srv, prefix: string): Promise<{ delivered: boolean[]; codes: Map<string, number> }> {
    const open = async (user: string) => {
      const ws = await RawSocket.open(server.wsUrl);
      expect((await ws.call({ id: 'auth', cmd: 'auth', token: await server.token(user) })).ok).toBe(true);
      return ws;
    };
    const typist = await open(`${prefix}-typist`);
    const member = await open(`${prefix}-member`);
    const room = `${prefix}-room`;
    expect((await typist.call({ id: 'c', cmd: 'create', kind: 'group', name: 'Typing', room })).ok).toBe(true);
    expect((await typist.call({ id: 'i', cmd: 'invite', room, user: `${prefix}-member` })).ok).toBe(true);
    await waitFor(() => member.frames.some((f) => f.ev === 'room'), 3000, 'the member follows the room');

    const codes = await typingFlood(typist, room, 1000, 1000);
    expect((await typist.call({ id: 'stop', cmd: 'typing', room, active: false })).ok).toBe(true);
    // The stop arrives promptly, and nothing of the flood comes after the window.
    await waitFor(() => typingOf(member, room, `${prefix}-typist`).includes(false), 3000, 'the stopped state');
    await sleep(2500);
    const delivered = typingOf(member, room, `${prefix}-typist`);
    // Typing again once the window has passed reaches the room: the indicator is not stuck.
    expect((await typist.call({ id: 'again', cmd: 'typing', room })).ok).toBe(true);
    await waitFor(() => typingOf(member, room, `${prefix}-typist`).length === delivered.length + 1, 3000, 'typing again');
    typist.close();
    member.close();
    return { delivered, codes };
  }

  it('1,000 typing frames in a second reach a member as one "typing" and one "stopped"; the rate limiter counts them', async () => {
    const { delivered, codes } = await flood(srv, 'tf');
    expect(delivered).toEqual([true, false]);
    // The limiter's typing bucket (10 at once, 2 a second) refuses most of the flood.
    expect(codes.get('rate_limited') ?? 0).toBeGreaterThan(900);
    expect(codes.get('ok') ?? 0).toBeGreaterThanOrEqual(10);
  });

  it('without the rate limiter, the flood is still coalesced to one "typing" and one "stopped"', async () => {
    const open = await startMqttServer({ plugins: { rateLimit: { enabled: false } } });
    try {
      const { delivered, codes } = await flood(open, 'tg');
      expect(codes.get('ok')).toBe(1000);
      expect(delivered).toEqual([true, false]);
    } finally {
      await open.close();
    }
  });
});

describe('connections per user', () => {
  it('one connection over limits.connectionsPerUser, WebSocket and MQTT together, is refused with a code and counted', async () => {
    const capped = await startMqttServer({ limits: { connectionsPerUser: 3 } });
    const metric = async (transport: string): Promise<number> => {
      const line = (await (await fetch(`${capped.url}/metrics`)).text())
        .split('\n')
        .find((l) => l.startsWith(`parley_connections_refused_total{transport="${transport}",reason="per_user"}`));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const open = async (user: string): Promise<{ ws: RawSocket; reply: Record<string, unknown> }> => {
      const ws = await RawSocket.open(capped.wsUrl);
      return { ws, reply: await ws.call({ id: 'auth', cmd: 'auth', token: await capped.token(user) }) };
    };
    try {
      const token = await capped.token('cap-user');
      const held: RawSocket[] = [];
      for (let i = 0; i < 2; i++) {
        const { ws, reply } = await open('cap-user');
        expect(reply.ok, JSON.stringify(reply)).toBe(true);
        held.push(ws);
      }
      const peer = await Chat21Peer.connect(capped.mqttUrl, 'cap-user', token);

      // The fourth, over WebSocket: told why, then closed with 4008.
      const { ws: extra, reply } = await open('cap-user');
      expect(reply.ok).toBe(false);
      expect(reply.error).toMatchObject({ code: 'rate_limited', details: { reason: 'connections', limit: 3 } });
      expect(await extra.closed()).toBe(4008);
      expect(extra.frames.find((f) => f.ev === 'goodbye')?.data).toMatchObject({ code: 'rate_limited' });
      // The fourth, over MQTT: CONNACK 3 (server unavailable).
      await expect(Chat21Peer.connect(capped.mqttUrl, 'cap-user', token)).rejects.toThrow(/unavailable/i);
      expect(await metric('ws')).toBe(1);
      expect(await metric('mqtt')).toBe(1);

      // Another user is not affected; and a slot given back can be taken again.
      const other = await open('cap-other');
      expect(other.reply.ok).toBe(true);
      held[0]!.close();
      let again = await open('cap-user');
      for (let tries = 0; !again.reply.ok && tries < 50; tries++) {
        await sleep(100);
        again = await open('cap-user');
      }
      expect(again.reply.ok).toBe(true);
      held.push(again.ws);
      for (const ws of held) ws.close();
      other.ws.close();
      await peer.close();
    } finally {
      await capped.close();
    }
  });
});

void APP;
