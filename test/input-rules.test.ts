// The two rules every input keeps besides its schema, at the wire of each transport: text is
// well-formed (no NUL, no lone UTF-16 surrogate) and JSON nests at most MAX_DEPTH levels.
// Breaking either is `invalid`, stores nothing, and logs no error; text that keeps them reads
// back from history exactly as it was delivered live.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt.js';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { MAX_DEPTH } from '../src/protocol/validate.js';
import { RawSocket, recordingLogger, startServer, tempDir, waitFor, type TestServer } from './helpers.js';
import { APP, Chat21Peer } from './mqtt-helpers.js';

const ERROR = 50;
const errCode = (r: Record<string, unknown>) => (r.error as { code: string } | undefined)?.code;
const nested = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

let srv: TestServer;
const log = recordingLogger();
beforeAll(async () => {
  srv = await startServer({ mqtt: { enabled: true, port: 0 } }, tempDir(), { logger: log.logger });
});
afterAll(async () => {
  await srv.close();
});

async function authed(s: TestServer, user: string): Promise<RawSocket> {
  const ws = await RawSocket.open(s.wsUrl);
  const r = await ws.call({ id: 'auth', cmd: 'auth', token: await s.token(user) });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  return ws;
}

async function rest(s: TestServer, user: string, method: string, path: string, body?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${await s.token(user)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const lastSeq = async (s: TestServer, room: string): Promise<number> => (await s.parley.store.bounds(room)).last;
const errorsLogged = () => log.lines.filter((l) => l.level >= ERROR);

describe('text is well-formed everywhere', () => {
  it('a NUL in any text field or data key is refused with invalid, and nothing is stored', async () => {
    const owner = await authed(srv, 'nul-owner');
    await authed(srv, 'nul-member');
    const room = ((await owner.call({ id: 1, cmd: 'create', kind: 'group', name: 'Nul', room: 'nul-room' })).data as { id: string }).id;
    await owner.call({ id: 2, cmd: 'invite', room, user: 'nul-member' });
    const ok = await owner.call({ id: 3, cmd: 'send', room, text: 'target' });
    const target = (ok.data as { seq: number }).seq;
    const before = await lastSeq(srv, room);
    // Sent as raw text so the NUL travels as the JSON escape a client would use.
    const frames = [
      `{"id":10,"cmd":"react","room":"${room}","target":${target},"emoji":"\\u0000"}`,
      `{"id":11,"cmd":"kick","room":"${room}","user":"nul-member","reason":"bye\\u0000"}`,
      `{"id":12,"cmd":"ban","room":"${room}","user":"nul-member","reason":"\\u0000"}`,
      `{"id":13,"cmd":"send","room":"${room}","text":"ok","data":{"k\\u0000":1}}`,
      `{"id":14,"cmd":"send","room":"${room}","text":"ok","data":{"k":["x\\u0000"]}}`,
      `{"id":15,"cmd":"update","room":"${room}","topic":"t\\u0000"}`,
      `{"id":16,"cmd":"search","query":"a\\u0000b"}`,
      `{"id":17,"cmd":"send","room":"${room}","text":"\\u0000"}`,
    ];
    for (const [i, f] of frames.entries()) {
      owner.sendText(f);
      const r = await owner.reply(10 + i);
      expect(errCode(r), f).toBe('invalid');
      expect((r.error as { message: string }).message, f).toMatch(/NUL/);
    }
    expect(await lastSeq(srv, room)).toBe(before);
    expect(await srv.parley.store.bans(room, Date.now())).toEqual([]);
    expect(await srv.parley.store.getMember(room, 'nul-member')).not.toBeNull();
    owner.close();
  });

  it('lone surrogates are refused; a well-formed emoji reads back from history as it was delivered live', async () => {
    const a = await authed(srv, 'sur-a');
    const b = await authed(srv, 'sur-b');
    const room = ((await a.call({ id: 1, cmd: 'create', kind: 'group', name: 'Sur', room: 'sur-room' })).data as { id: string }).id;
    await a.call({ id: 2, cmd: 'invite', room, user: 'sur-b' });
    const before = await lastSeq(srv, room);
    const bad = [
      `{"id":10,"cmd":"send","room":"${room}","text":"x\\ud800"}`,
      `{"id":11,"cmd":"send","room":"${room}","text":"\\udc00y"}`,
      `{"id":12,"cmd":"send","room":"${room}","text":"ok","data":{"\\ud83d":"v"}}`,
      `{"id":13,"cmd":"send","room":"${room}","text":"ok","data":{"k":"\\ude00"}}`,
      `{"id":14,"cmd":"react","room":"${room}","target":1,"emoji":"\\ud83d"}`,
      `{"id":15,"cmd":"create","kind":"group","name":"\\udfff"}`,
    ];
    for (const [i, f] of bad.entries()) {
      a.sendText(f);
      const r = await a.reply(10 + i);
      expect(errCode(r), f).toBe('invalid');
      expect((r.error as { message: string }).message, f).toMatch(/surrogate/);
    }
    expect(await lastSeq(srv, room)).toBe(before);
    a.sendText(`{"id":20,"cmd":"send","room":"${room}","text":"hi \\ud83d\\ude00","data":{"k\\ud83d\\ude00":"v\\ud83d\\ude00"}}`);
    const sent = await a.reply(20);
    expect(sent.ok).toBe(true);
    const seq = (sent.data as { seq: number }).seq;
    let live: Record<string, unknown> | undefined;
    await waitFor(() => (live = b.frames.find((f) => f.ev === 'message' && (f.data as { seq: number }).seq === seq)) !== undefined, 5000, 'live message');
    const h = await b.call({ id: 21, cmd: 'history', room, after: seq - 1, limit: 1 });
    const stored = (h.data as { messages: unknown[] }).messages[0];
    expect(stored).toEqual(live!.data);
    expect((stored as { text: string }).text).toBe('hi 😀');
    a.close();
    b.close();
  });

  it('a token whose name claim holds a NUL is refused with invalid on every transport, and the user is not recorded', async () => {
    const token = await mintToken(srv.config, 'claim-nul', { name: 'Eve\u0000il' });
    const ws = await RawSocket.open(srv.wsUrl);
    expect(errCode(await ws.call({ id: 1, cmd: 'auth', token }))).toBe('invalid');
    const res = await fetch(`${srv.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid');
    const surrogate = await mintToken(srv.config, 'claim-sur', { name: 'x\ud800' });
    expect(errCode(await ws.call({ id: 2, cmd: 'auth', token: surrogate }))).toBe('invalid');
    expect(await srv.parley.store.getUser('claim-nul')).toBeNull();
    expect(await srv.parley.store.getUser('claim-sur')).toBeNull();
    ws.close();
  });

  it('REST bodies, queries and registrations keep the same rule', async () => {
    await authed(srv, 'rest-nul');
    const room = (await rest(srv, 'rest-nul', 'POST', '/rooms', JSON.stringify({ kind: 'group', name: 'R', room: 'rest-nul-room' }))).body as { id: string };
    const before = await lastSeq(srv, room.id);
    const send = await rest(srv, 'rest-nul', 'POST', `/rooms/${room.id}/messages`, '{"text":"ok","data":{"v":"\\u0000"}}');
    expect(send.status).toBe(400);
    expect((send.body.error as { code: string }).code).toBe('invalid');
    const lone = await rest(srv, 'rest-nul', 'POST', `/rooms/${room.id}/messages`, '{"text":"\\ud800"}');
    expect((lone.body.error as { code: string }).code).toBe('invalid');
    const search = await rest(srv, 'rest-nul', 'GET', '/search?query=a%00b');
    expect(search.status).toBe(400);
    expect((search.body.error as { code: string }).code).toBe('invalid');
    const reg = await fetch(`${srv.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"nulname","password":"long-enough-1","name":"a\\u0000"}',
    });
    expect(reg.status).toBe(400);
    // A path that is not even valid UTF-8 once decoded is refused in the same error shape.
    const badUrl = await rest(srv, 'rest-nul', 'GET', '/rooms/%ed%a0%80/messages');
    expect(badUrl.status).toBe(400);
    expect((badUrl.body.error as { code: string }).code).toBe('invalid');
    // So is a request whose headers Node will not parse.
    const huge = await fetch(`${srv.url}/api/v1/me`, { headers: { 'x-filler': 'x'.repeat(20_000) } });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('too_large');
    expect(await lastSeq(srv, room.id)).toBe(before);
    expect(await srv.parley.store.getUser('nulname')).toBeNull();
  });

  it('MQTT payloads keep the same rule (Chat21 messages)', async () => {
    const token = await srv.token('mq-a');
    const peer = await Chat21Peer.connect(`mqtt://127.0.0.1:${srv.parley.mqtt!.port}`, 'mq-a', token);
    await peer.publish(`apps/${APP}/outgoing/users/mq-a/messages/mq-b/outgoing`, '{"text":"hi\\u0000","type":"text"}');
    await peer.publish(`apps/${APP}/outgoing/users/mq-a/messages/mq-b/outgoing`, '{"text":"hi","type":"text","attributes":{"x":"\\udc00"}}');
    await waitFor(() => peer.on('/clienterror').length === 2, 5000, 'two client errors');
    for (const e of peer.on('/clienterror')) expect(e.body.code).toBe('invalid');
    expect(peer.added()).toEqual([]);
    await peer.close();
  });
});

describe(`JSON nests at most ${MAX_DEPTH} levels`, () => {
  it('deeply nested data is invalid on WebSocket, REST and MQTT, and logs no error', async () => {
    const ws = await authed(srv, 'deep');
    const room = ((await ws.call({ id: 1, cmd: 'create', kind: 'group', name: 'Deep', room: 'deep-room' })).data as { id: string }).id;
    const before = await lastSeq(srv, room);
    const logged = errorsLogged().length;
    for (let i = 0; i < 5; i++) {
      ws.sendText(`{"id":${10 + i},"cmd":"send","room":"${room}","text":"x","data":${nested(5000)}}`);
      const r = await ws.reply(10 + i);
      expect(errCode(r)).toBe('invalid');
      expect((r.error as { message: string }).message).toMatch(/nested deeper than/);
    }
    // The frame is level 1 and `data` level 2: data may hold MAX_DEPTH - 2 more levels.
    ws.sendText(`{"id":20,"cmd":"send","room":"${room}","text":"x","data":${nested(MAX_DEPTH - 1)}}`);
    expect((await ws.reply(20)).ok).toBe(true);
    ws.sendText(`{"id":21,"cmd":"send","room":"${room}","text":"x","data":${nested(MAX_DEPTH)}}`);
    expect(errCode(await ws.reply(21))).toBe('invalid');

    const r = await rest(srv, 'deep', 'POST', `/rooms/${room}/messages`, `{"text":"x","data":${nested(5000)}}`);
    expect(r.status).toBe(400);
    expect((r.body.error as { code: string }).code).toBe('invalid');

    const peer = await Chat21Peer.connect(`mqtt://127.0.0.1:${srv.parley.mqtt!.port}`, 'deep', await srv.token('deep'));
    await peer.publish(`apps/${APP}/outgoing/users/deep/messages/${room}/outgoing`, `{"text":"x","channel_type":"group","attributes":${nested(5000)}}`);
    await waitFor(() => peer.on('/clienterror').length === 1, 5000, 'client error');
    expect(peer.on('/clienterror')[0]!.body.code).toBe('invalid');
    await peer.close();

    expect(await lastSeq(srv, room)).toBe(before + 1);
    expect(errorsLogged().slice(logged)).toEqual([]);
    ws.close();
  });
});

describe('on PostgreSQL', () => {
  let pg: PgServer;
  let node: TestServer;
  beforeAll(async () => {
    pg = await startPostgres();
    node = await startServer({ store: { postgres: { url: pg.url } } });
  });
  afterAll(async () => {
    await node?.close();
    await pg?.destroy();
  });

  it('a lone surrogate or a NUL is refused before it reaches the database', async () => {
    const ws = await authed(node, 'pg-user');
    const room = ((await ws.call({ id: 1, cmd: 'create', kind: 'group', name: 'PG', room: 'pg-room' })).data as { id: string }).id;
    const before = await lastSeq(node, room);
    ws.sendText(`{"id":2,"cmd":"send","room":"${room}","text":"a\\ud800b"}`);
    expect(errCode(await ws.reply(2))).toBe('invalid');
    ws.sendText(`{"id":3,"cmd":"send","room":"${room}","text":"ok","data":{"\\u0000":1}}`);
    expect(errCode(await ws.reply(3))).toBe('invalid');
    expect(await lastSeq(node, room)).toBe(before);
    ws.close();
  });
});
