// The REST API over real HTTP: for every route, a success, a validation failure, a refusal
// without credentials and, where a permission applies, a refusal for a user without it. The
// route list comes from the running server, so a new route without a case here fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/jwt.js';
import { Commands } from '../src/protocol/schema.js';
import { registeredRoutes } from '../src/transport/http/index.js';
import { CONNECTION_ONLY, routes as tableRoutes } from '../src/transport/http/routes.js';
import { RawSocket, startServer, type TestServer } from './helpers.js';

const API_KEY = 'app-key-0123456789abcdef';
let srv: TestServer;
const tokens: Record<string, string> = {};

interface Res {
  status: number;
  body: any;
  headers: Headers;
}
interface Opts {
  as?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
  raw?: string;
}

async function call(method: string, path: string, o: Opts = {}): Promise<Res> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.as === 'api') headers['x-api-key'] = API_KEY;
  else if (o.as) headers.authorization = `Bearer ${tokens[o.as]}`;
  let body: string | undefined = o.raw;
  if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const r = await fetch(srv.url + '/api/v1' + path, { method, headers, body });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

/** Expects a coded error reply; `field` names the offending field of an `invalid`. */
function expectError(r: Res, status: number, code: string, field?: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe('string');
  if (field) expect(r.body.error.details?.field).toBe(field);
}
const invalid = (r: Res, field?: string) => expectError(r, 400, 'invalid', field);
const forbidden = (r: Res) => expectError(r, 403, 'forbidden');

beforeAll(async () => {
  srv = await startServer({ api: { keys: [API_KEY] } });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) tokens[u] = await srv.token(u, { name: u[0]!.toUpperCase() + u.slice(1) });
  tokens.root = await mintToken(srv.config, 'root', { admin: true });
  // Rooms every case below starts from: a public channel and a private group.
  expect((await call('POST', '/rooms', { as: 'alice', body: { kind: 'channel', name: 'General', room: 'general' } })).status).toBe(201);
  expect((await call('POST', '/rooms', { as: 'alice', body: { kind: 'group', name: 'Secret', room: 'secret' } })).status).toBe(201);
  expect((await call('POST', '/rooms/secret/members', { as: 'alice', body: { user: 'bob' } })).status).toBe(201);
  expect((await call('POST', '/rooms/general/join', { as: 'erin' })).status).toBe(200);
  expect((await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'hello secret world' } })).status).toBe(201);
});
afterAll(async () => {
  await srv?.close();
});

/** The routes this file covers (method + fastify path); checked against the server's. */
const covered = new Set<string>();
function route(name: string, fn: () => void): void {
  covered.add(name);
  describe(name, fn);
}

route('GET /dispatch', () => {
  it('answers the least-loaded live node without authentication (one node: this one)', async () => {
    const res = await fetch(`${srv.url}/api/v1/dispatch`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { node: string; url: string; wsUrl: string; connections: number };
    expect(body).toMatchObject({ url: srv.url, wsUrl: `${srv.url.replace('http', 'ws')}/ws` });
    expect(body.node).toMatch(/\S/);
    expect(typeof body.connections).toBe('number');
  });
});

route('GET /me', () => {
  it('answers the user the token names', async () => {
    const r = await call('GET', '/me', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: 'bob', name: 'Bob', profile: {}, admin: false });
  });
  it('is the same user on the admin token, flagged admin', async () => {
    expect((await call('GET', '/me', { as: 'root' })).body).toMatchObject({ id: 'root', admin: true });
  });
});

route('GET /users/:user', () => {
  it("shows a user's public name and profile", async () => {
    const r = await call('GET', '/users/alice', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: 'alice', name: 'Alice', profile: {} });
    expectError(await call('GET', '/users/nobody', { as: 'bob' }), 404, 'not_found');
  });
  it('refuses a malformed user id', async () => invalid(await call('GET', '/users/no%20spaces', { as: 'bob' }), 'user'));
});

route('POST /rooms', () => {
  it('creates a room, the caller its owner', async () => {
    const r = await call('POST', '/rooms', { as: 'carol', body: { kind: 'group', name: "Carol's", topic: 't' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ kind: 'group', name: "Carol's", topic: 't', createdBy: 'carol', lastSeq: 1 });
    expect((await call('GET', `/rooms/${r.body.id}/members`, { as: 'carol' })).body.members[0]).toMatchObject({ user: 'carol', role: 'owner' });
  });
  it('refuses a bad kind, a missing name and unknown fields', async () => {
    invalid(await call('POST', '/rooms', { as: 'carol', body: { kind: 'nope', name: 'x' } }), 'kind');
    invalid(await call('POST', '/rooms', { as: 'carol', body: { kind: 'group' } }), 'name');
    invalid(await call('POST', '/rooms', { as: 'carol', body: { kind: 'group', name: 'x', owner: 'me' } }), 'owner');
    invalid(await call('POST', '/rooms', { as: 'carol', raw: '{not json' }));
  });
  it('answers conflict for a taken room id', async () => {
    expectError(await call('POST', '/rooms', { as: 'carol', body: { kind: 'group', name: 'x', room: 'general' } }), 409, 'conflict');
  });
});

route('GET /rooms', () => {
  it("lists the caller's rooms only", async () => {
    const r = await call('GET', '/rooms', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body.rooms.map((x: { id: string }) => x.id)).toEqual(['secret']);
  });
});

route('GET /rooms/public', () => {
  it('lists public channels, not groups', async () => {
    const ids = (await call('GET', '/rooms/public', { as: 'carol' })).body.rooms.map((x: { id: string }) => x.id);
    expect(ids).toContain('general');
    expect(ids).not.toContain('secret');
  });
});

route('GET /rooms/:room', () => {
  it('shows a room to a member, and a channel to anyone', async () => {
    expect((await call('GET', '/rooms/secret', { as: 'bob' })).body).toMatchObject({ id: 'secret', kind: 'group' });
    expect((await call('GET', '/rooms/general', { as: 'carol' })).status).toBe(200);
    expectError(await call('GET', '/rooms/nothing-here', { as: 'carol' }), 404, 'not_found');
  });
  it('refuses a malformed room id', async () => invalid(await call('GET', '/rooms/bad!id', { as: 'bob' }), 'room'));
  it('hides a group from a non-member', async () => forbidden(await call('GET', '/rooms/secret', { as: 'carol' })));
});

route('PATCH /rooms/:room', () => {
  it('lets the owner change the topic', async () => {
    const r = await call('PATCH', '/rooms/secret', { as: 'alice', body: { topic: 'plans' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'secret', topic: 'plans' });
  });
  it('refuses a wrong-typed field', async () => invalid(await call('PATCH', '/rooms/secret', { as: 'alice', body: { topic: 5 } }), 'topic'));
  it('refuses a plain member', async () => forbidden(await call('PATCH', '/rooms/secret', { as: 'bob', body: { topic: 'mine' } })));
});

route('DELETE /rooms/:room', () => {
  it('lets the owner delete a room', async () => {
    await call('POST', '/rooms', { as: 'alice', body: { kind: 'channel', name: 'Doomed', room: 'doomed' } });
    const r = await call('DELETE', '/rooms/doomed', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'doomed' });
    expectError(await call('GET', '/rooms/doomed', { as: 'alice' }), 404, 'not_found');
  });
  it('refuses a malformed room id', async () => invalid(await call('DELETE', '/rooms/a%20b', { as: 'alice' }), 'room'));
  it('refuses anyone but the owner', async () => forbidden(await call('DELETE', '/rooms/secret', { as: 'bob' })));
});

route('POST /rooms/:room/join', () => {
  it('joins a channel', async () => {
    const r = await call('POST', '/rooms/general/join', { as: 'carol' });
    expect(r.status).toBe(200);
    expect(r.body.member).toMatchObject({ room: 'general', user: 'carol', role: 'member' });
  });
  it('accepts an empty JSON body', async () => {
    await call('POST', '/rooms', { as: 'dave', body: { kind: 'channel', name: 'Empty', room: 'empty-body' } });
    const r = await call('POST', '/rooms/empty-body/join', { as: 'carol', raw: '', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
  });
  it('refuses a malformed room id, and a body where none is taken', async () => {
    invalid(await call('POST', '/rooms/%2A/join', { as: 'carol' }), 'room');
    invalid(await call('POST', '/rooms/secret/join', { as: 'carol', body: { room: 'general' } }));
  });
  it('refuses to join a group', async () => forbidden(await call('POST', '/rooms/secret/join', { as: 'carol' })));
});

route('POST /rooms/:room/leave', () => {
  it('leaves a room', async () => {
    const r = await call('POST', '/rooms/general/leave', { as: 'carol' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'general' });
  });
  it('refuses a malformed room id', async () => invalid(await call('POST', '/rooms/%2A/leave', { as: 'carol' }), 'room'));
  it('refuses a non-member', async () => forbidden(await call('POST', '/rooms/secret/leave', { as: 'carol' })));
});

route('POST /rooms/leave', () => {
  it('leaves every listed room it can and says why it skipped the others', async () => {
    for (const room of ['lv1', 'lv2']) {
      expect((await call('POST', '/rooms', { as: 'dave', body: { kind: 'group', name: room, room } })).status).toBe(201);
      expect((await call('POST', `/rooms/${room}/members`, { as: 'dave', body: { user: 'erin' } })).status).toBe(201);
    }
    const r = await call('POST', '/rooms/leave', { as: 'erin', body: { rooms: ['lv1', 'lv2', 'secret', 'nowhere'] } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      left: ['lv1', 'lv2'],
      skipped: [
        { room: 'secret', code: 'forbidden' },
        { room: 'nowhere', code: 'not_found' },
      ],
    });
    expect((await call('GET', '/rooms', { as: 'erin' })).body.rooms.map((x: { id: string }) => x.id)).not.toContain('lv1');
  });
  it('refuses an empty list, a malformed id and a repeated one', async () => {
    invalid(await call('POST', '/rooms/leave', { as: 'erin', body: { rooms: [] } }), 'rooms');
    invalid(await call('POST', '/rooms/leave', { as: 'erin', body: { rooms: ['a b'] } }), 'rooms.0');
    invalid(await call('POST', '/rooms/leave', { as: 'erin', body: { rooms: ['lv1', 'lv1'] } }), 'rooms');
  });
});

route('POST /direct/:user', () => {
  it('opens the one direct room of two users, whoever asks', async () => {
    const a = await call('POST', '/direct/bob', { as: 'alice' });
    const b = await call('POST', '/direct/alice', { as: 'bob' });
    expect(a.status).toBe(200);
    expect(a.body.kind).toBe('direct');
    expect(b.body.id).toBe(a.body.id);
  });
  it('refuses a malformed user id and yourself', async () => {
    invalid(await call('POST', '/direct/a%20b', { as: 'alice' }), 'user');
    invalid(await call('POST', '/direct/alice', { as: 'alice' }));
  });
});

route('GET /rooms/:room/members', () => {
  it('lists members', async () => {
    const r = await call('GET', '/rooms/secret/members', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body.members.map((m: { user: string }) => m.user)).toEqual(['alice', 'bob']);
  });
  it('refuses a malformed room id', async () => invalid(await call('GET', '/rooms/%2A/members', { as: 'bob' }), 'room'));
  it("hides a group's members from a non-member", async () => forbidden(await call('GET', '/rooms/secret/members', { as: 'carol' })));
});

route('POST /rooms/:room/members', () => {
  it('lets the owner invite to a group', async () => {
    const r = await call('POST', '/rooms/secret/members', { as: 'alice', body: { user: 'dave' } });
    expect(r.status).toBe(201);
    expect(r.body.member).toMatchObject({ room: 'secret', user: 'dave', role: 'member' });
  });
  it('refuses a malformed user id', async () => invalid(await call('POST', '/rooms/secret/members', { as: 'alice', body: { user: 'a b' } }), 'user'));
  it('refuses a plain member inviting to a group', async () => forbidden(await call('POST', '/rooms/secret/members', { as: 'bob', body: { user: 'carol' } })));
});

route('PATCH /rooms/:room/members/:user', () => {
  it('lets the owner make a member admin', async () => {
    const r = await call('PATCH', '/rooms/secret/members/dave', { as: 'alice', body: { role: 'admin' } });
    expect(r.status).toBe(200);
    expect(r.body.member).toMatchObject({ user: 'dave', role: 'admin' });
  });
  it('refuses an unknown role', async () => invalid(await call('PATCH', '/rooms/secret/members/dave', { as: 'alice', body: { role: 'king' } }), 'role'));
  it('refuses a plain member', async () => forbidden(await call('PATCH', '/rooms/secret/members/bob', { as: 'bob', body: { role: 'owner' } })));
});

route('DELETE /rooms/:room/members/:user', () => {
  it('lets the owner remove a member', async () => {
    const r = await call('DELETE', '/rooms/general/members/erin?reason=spam', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'general', user: 'erin' });
    const last = (await call('GET', '/rooms/general/messages?limit=1', { as: 'alice' })).body.messages[0];
    expect(last).toMatchObject({ kind: 'leave', user: 'erin' });
  });
  it('refuses an over-long reason and unknown query fields', async () => {
    invalid(await call('DELETE', `/rooms/general/members/erin?reason=${'x'.repeat(501)}`, { as: 'alice' }), 'reason');
    invalid(await call('DELETE', '/rooms/general/members/erin?why=1', { as: 'alice' }), 'why');
  });
  it('refuses a plain member', async () => forbidden(await call('DELETE', '/rooms/secret/members/dave', { as: 'bob' })));
});

route('PUT /rooms/:room/members/:user/mute', () => {
  it('mutes a member, who can then not write', async () => {
    const r = await call('PUT', '/rooms/secret/members/bob/mute', { as: 'alice', body: { seconds: 60 } });
    expect(r.status).toBe(200);
    expect(r.body.member.user).toBe('bob');
    expect(r.body.member.mutedUntil).toBeGreaterThan(Date.now());
    forbidden(await call('POST', '/rooms/secret/messages', { as: 'bob', body: { text: 'can I talk?' } }));
  });
  it('refuses a zero duration', async () => invalid(await call('PUT', '/rooms/secret/members/bob/mute', { as: 'alice', body: { seconds: 0 } }), 'seconds'));
  it('refuses a plain member', async () => forbidden(await call('PUT', '/rooms/secret/members/alice/mute', { as: 'bob', body: {} })));
});

route('DELETE /rooms/:room/members/:user/mute', () => {
  it('lifts a mute', async () => {
    const r = await call('DELETE', '/rooms/secret/members/bob/mute', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body.member.mutedUntil ?? null).toBeNull();
    expect((await call('POST', '/rooms/secret/messages', { as: 'bob', body: { text: 'thanks' } })).status).toBe(201);
  });
  it('refuses a malformed user id', async () => invalid(await call('DELETE', '/rooms/secret/members/a%20b/mute', { as: 'alice' }), 'user'));
  it('refuses a plain member', async () => forbidden(await call('DELETE', '/rooms/secret/members/alice/mute', { as: 'bob' })));
});

route('POST /rooms/:room/bans', () => {
  it('bans a user from a room, who can then not join', async () => {
    const r = await call('POST', '/rooms/general/bans', { as: 'alice', body: { user: 'carol', seconds: 3600, reason: 'flood' } });
    expect(r.status).toBe(201);
    expect(r.body.ban).toMatchObject({ room: 'general', user: 'carol', reason: 'flood', by: 'alice' });
    forbidden(await call('POST', '/rooms/general/join', { as: 'carol' }));
  });
  it('refuses a negative duration', async () =>
    invalid(await call('POST', '/rooms/general/bans', { as: 'alice', body: { user: 'carol', seconds: -1 } }), 'seconds'));
  it('refuses a plain member', async () => forbidden(await call('POST', '/rooms/secret/bans', { as: 'bob', body: { user: 'carol' } })));
});

route('GET /rooms/:room/bans', () => {
  it("lists a room's active bans", async () => {
    const r = await call('GET', '/rooms/general/bans', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body.bans.map((b: { user: string }) => b.user)).toEqual(['carol']);
  });
  it('refuses a malformed room id', async () => invalid(await call('GET', '/rooms/%2A/bans', { as: 'alice' }), 'room'));
  it('refuses a plain member', async () => forbidden(await call('GET', '/rooms/secret/bans', { as: 'bob' })));
});

route('DELETE /rooms/:room/bans/:user', () => {
  it('lifts a room ban', async () => {
    const r = await call('DELETE', '/rooms/general/bans/carol', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ lifted: true });
    expect((await call('POST', '/rooms/general/join', { as: 'carol' })).status).toBe(200);
  });
  it('refuses a malformed user id', async () => invalid(await call('DELETE', '/rooms/general/bans/a%20b', { as: 'alice' }), 'user'));
  it('refuses a plain member', async () => forbidden(await call('DELETE', '/rooms/secret/bans/carol', { as: 'bob' })));
});

route('GET /rooms/:room/access/:list', () => {
  it("shows a room's black list to its owner", async () => {
    const r = await call('GET', '/rooms/secret/access/black', { as: 'alice' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'secret', list: 'black', users: [] });
  });
  it('refuses an unknown list', async () => invalid(await call('GET', '/rooms/secret/access/grey', { as: 'alice' }), 'list'));
  it('refuses a plain member', async () => forbidden(await call('GET', '/rooms/secret/access/black', { as: 'bob' })));
});

route('PATCH /rooms/:room/access/:list', () => {
  it('changes a list and removes members who lost access', async () => {
    const r = await call('PATCH', '/rooms/general/access/black', { as: 'alice', body: { add: ['carol'] } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'general', list: 'black', users: ['carol'], removed: ['carol'] });
    forbidden(await call('POST', '/rooms/general/join', { as: 'carol' }));
    await call('PATCH', '/rooms/general/access/black', { as: 'alice', body: { remove: ['carol'] } });
  });
  it('refuses an empty list', async () => invalid(await call('PATCH', '/rooms/general/access/black', { as: 'alice', body: { add: [] } }), 'add'));
  it('refuses a plain member', async () => forbidden(await call('PATCH', '/rooms/secret/access/white', { as: 'bob', body: { add: ['bob'] } })));
});

route('POST /bans', () => {
  it('lets an administrator ban a user server-wide, on every route', async () => {
    const r = await call('POST', '/bans', { as: 'root', body: { user: 'erin', seconds: 600 } });
    expect(r.status).toBe(201);
    expect(r.body.ban).toMatchObject({ room: null, user: 'erin' });
    const me = await call('GET', '/me', { as: 'erin' });
    forbidden(me);
    expect(me.body.error.details).toMatchObject({ reason: 'banned' });
  });
  it('refuses a ban without a user', async () => invalid(await call('POST', '/bans', { as: 'root', body: { seconds: 5 } }), 'user'));
  it('refuses a non-administrator', async () => forbidden(await call('POST', '/bans', { as: 'alice', body: { user: 'bob' } })));
});

route('GET /bans', () => {
  it('lists server-wide bans to an administrator', async () => {
    const r = await call('GET', '/bans', { as: 'root' });
    expect(r.status).toBe(200);
    expect(r.body.bans.map((b: { user: string }) => b.user)).toEqual(['erin']);
  });
  it('refuses unknown query fields', async () => invalid(await call('GET', '/bans?room=general', { as: 'root' })));
  it('refuses a non-administrator', async () => forbidden(await call('GET', '/bans', { as: 'alice' })));
});

route('DELETE /bans/:user', () => {
  it('lifts a server-wide ban', async () => {
    expect((await call('DELETE', '/bans/erin', { as: 'root' })).body).toEqual({ lifted: true });
    expect((await call('GET', '/me', { as: 'erin' })).status).toBe(200);
  });
  it('refuses a malformed user id', async () => invalid(await call('DELETE', '/bans/a%20b', { as: 'root' }), 'user'));
  it('refuses a non-administrator', async () => forbidden(await call('DELETE', '/bans/erin', { as: 'alice' })));
});

route('POST /rooms/:room/messages', () => {
  it('stores a message and answers its seq, with its location', async () => {
    const r = await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'from REST', data: { n: 1 } } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ duplicate: false });
    expect(r.headers.get('location')).toBe(`/api/v1/rooms/secret/messages/${r.body.seq}`);
    const m = await call('GET', `/rooms/secret/messages/${r.body.seq}`, { as: 'bob' });
    expect(m.body).toMatchObject({ kind: 'text', text: 'from REST', user: 'alice', data: { n: 1 } });
  });
  it('reads a "__proto__" or "constructor.prototype" key in data as a WebSocket frame does: as data', async () => {
    const raw = '{"text":"keys like a prototype","data":{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}}';
    const r = await call('POST', '/rooms/secret/messages', { as: 'alice', raw });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const res = await fetch(`${srv.url}/api/v1/rooms/secret/messages/${r.body.seq}`, { headers: { authorization: `Bearer ${tokens.bob}` } });
    const text = await res.text();
    expect(text).toContain('"data":{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}');
    // Kept as data: nothing gained a prototype on the way.
    expect(({} as { admin?: boolean }).admin).toBeUndefined();
  });
  it('is idempotent with an Idempotency-Key header or a body key', async () => {
    const h = { 'idempotency-key': 'k-1' };
    const a = await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'once' }, headers: h });
    const b = await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'once' }, headers: h });
    const c = await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'once', key: 'k-1' } });
    expect([a.status, b.status, c.status]).toEqual([201, 200, 200]);
    expect(b.body).toEqual({ ...a.body, duplicate: true });
    expect(c.body.seq).toBe(a.body.seq);
    invalid(await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'x', key: 'k-2' }, headers: { 'idempotency-key': 'k-3' } }), 'key');
  });
  it('refuses empty text, and text over the limit with too_large', async () => {
    invalid(await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: '' } }), 'text');
    expectError(await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'x'.repeat(4001) } }), 413, 'too_large');
  });
  it('refuses a non-member', async () => forbidden(await call('POST', '/rooms/secret/messages', { as: 'carol', body: { text: 'let me in' } })));
});

route('GET /rooms/:room/messages', () => {
  it('pages through history before and after a seq, oldest first', async () => {
    const all = (await call('GET', '/rooms/secret/messages', { as: 'bob' })).body;
    expect(all.first).toBe(1);
    expect(all.messages.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: all.last }, (_, i) => i + 1));
    const before = (await call('GET', '/rooms/secret/messages?before=3&limit=1', { as: 'bob' })).body;
    expect(before.messages.map((m: { seq: number }) => m.seq)).toEqual([2]);
    const after = (await call('GET', '/rooms/secret/messages?after=1&limit=2', { as: 'bob' })).body;
    expect(after.messages.map((m: { seq: number }) => m.seq)).toEqual([2, 3]);
  });
  it('refuses a bad limit and both before and after', async () => {
    invalid(await call('GET', '/rooms/secret/messages?limit=0', { as: 'bob' }), 'limit');
    invalid(await call('GET', '/rooms/secret/messages?limit=ten', { as: 'bob' }), 'limit');
    invalid(await call('GET', '/rooms/secret/messages?before=3&after=1', { as: 'bob' }));
  });
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/messages', { as: 'carol' })));
});

route('GET /rooms/:room/messages/:seq', () => {
  it('gets one message', async () => {
    const r = await call('GET', '/rooms/secret/messages/1', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ room: 'secret', seq: 1, kind: 'join', user: 'alice' });
    expectError(await call('GET', '/rooms/secret/messages/99999', { as: 'bob' }), 404, 'not_found');
  });
  it('refuses seq 0 and non-numbers', async () => {
    invalid(await call('GET', '/rooms/secret/messages/0', { as: 'bob' }), 'seq');
    invalid(await call('GET', '/rooms/secret/messages/abc', { as: 'bob' }), 'seq');
  });
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/messages/1', { as: 'carol' })));
});

let target = 0;
route('PATCH /rooms/:room/messages/:seq', () => {
  it('appends an edit by the author', async () => {
    target = (await call('POST', '/rooms/secret/messages', { as: 'alice', body: { text: 'tpyo' } })).body.seq;
    const r = await call('PATCH', `/rooms/secret/messages/${target}`, { as: 'alice', body: { text: 'typo' } });
    expect(r.status).toBe(200);
    expect(r.body.seq).toBe(target + 1);
    expect((await call('GET', `/rooms/secret/messages/${target + 1}`, { as: 'bob' })).body).toMatchObject({ kind: 'edit', target, text: 'typo' });
  });
  it('refuses a wrong-typed text', async () => invalid(await call('PATCH', `/rooms/secret/messages/${target}`, { as: 'alice', body: { text: 5 } }), 'text'));
  it('refuses anyone but the author', async () =>
    forbidden(await call('PATCH', `/rooms/secret/messages/${target}`, { as: 'bob', body: { text: 'mine now' } })));
});

route('POST /rooms/:room/messages/:seq/reactions', () => {
  it('appends a reaction by a member', async () => {
    const r = await call('POST', `/rooms/secret/messages/${target}/reactions`, { as: 'bob', body: { emoji: '👍' } });
    expect(r.status).toBe(200);
    expect((await call('GET', `/rooms/secret/messages/${r.body.seq}`, { as: 'bob' })).body).toMatchObject({ kind: 'reaction', target, data: { emoji: '👍' } });
  });
  it('refuses an empty emoji', async () =>
    invalid(await call('POST', `/rooms/secret/messages/${target}/reactions`, { as: 'bob', body: { emoji: '' } }), 'emoji'));
  it('refuses a non-member', async () => forbidden(await call('POST', `/rooms/secret/messages/${target}/reactions`, { as: 'carol', body: { emoji: 'x' } })));
});

route('DELETE /rooms/:room/messages/:seq', () => {
  it("refuses a member deleting another's message", async () => forbidden(await call('DELETE', `/rooms/secret/messages/${target}`, { as: 'bob' })));
  it('refuses a non-numeric seq', async () => invalid(await call('DELETE', '/rooms/secret/messages/x', { as: 'alice' }), 'seq'));
  it('appends a delete by the author; deleting again is a conflict', async () => {
    const r = await call('DELETE', `/rooms/secret/messages/${target}`, { as: 'alice' });
    expect(r.status).toBe(200);
    expect((await call('GET', `/rooms/secret/messages/${r.body.seq}`, { as: 'bob' })).body).toMatchObject({ kind: 'delete', target });
    expectError(await call('DELETE', `/rooms/secret/messages/${target}`, { as: 'alice' }), 409, 'conflict');
  });
});

route('GET /search', () => {
  it('finds messages the user may read', async () => {
    const r = await call('GET', '/search?query=secret', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body.messages.map((m: { text: string }) => m.text)).toContain('hello secret world');
    expect((await call('GET', '/search?query=secret', { as: 'carol' })).body.messages).toEqual([]);
  });
  it('refuses a missing query', async () => invalid(await call('GET', '/search', { as: 'bob' }), 'query'));
  it('refuses searching a group one is not in', async () => forbidden(await call('GET', '/search?query=secret&room=secret', { as: 'carol' })));
});

route('PUT /rooms/:room/read', () => {
  it('moves the read marker forward only', async () => {
    expect((await call('PUT', '/rooms/secret/read', { as: 'bob', body: { seq: 3 } })).body).toEqual({ room: 'secret', seq: 3 });
    expect((await call('PUT', '/rooms/secret/read', { as: 'bob', body: { seq: 1 } })).body).toEqual({ room: 'secret', seq: 3 });
  });
  it('refuses a negative seq', async () => invalid(await call('PUT', '/rooms/secret/read', { as: 'bob', body: { seq: -1 } }), 'seq'));
  it('refuses a non-member', async () => forbidden(await call('PUT', '/rooms/secret/read', { as: 'carol', body: { seq: 1 } })));
});

route('GET /inbox', () => {
  it("lists the user's rooms with unread counts", async () => {
    const r = await call('GET', '/inbox', { as: 'bob' });
    expect(r.status).toBe(200);
    const secret = r.body.rooms.find((e: { room: { id: string } }) => e.room.id === 'secret');
    expect(secret).toMatchObject({ role: 'member', readSeq: 3 });
    expect(secret.unread).toBeGreaterThan(0);
  });
});

route('GET /rooms/:room/presence', () => {
  it('lists members online on any transport', async () => {
    const ws = await srv.client('alice');
    const r = await call('GET', '/rooms/secret/presence', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ room: 'secret', users: ['alice'] });
    ws.close();
  });
  it('refuses a malformed room id', async () => invalid(await call('GET', '/rooms/%2A/presence', { as: 'bob' }), 'room'));
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/presence', { as: 'carol' })));
});

route('POST /rooms/:room/typing', () => {
  it('tells the room', async () => {
    const r = await call('POST', '/rooms/secret/typing', { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({});
  });
  it('refuses a wrong-typed flag', async () => invalid(await call('POST', '/rooms/secret/typing', { as: 'bob', body: { active: 'yes' } }), 'active'));
  it('refuses a non-member', async () => forbidden(await call('POST', '/rooms/secret/typing', { as: 'carol', body: {} })));
});

route('PUT /blocks/:user', () => {
  it('blocks a user', async () => {
    expect((await call('PUT', '/blocks/carol', { as: 'bob' })).body).toEqual({ user: 'carol' });
  });
  it('refuses a malformed id and blocking yourself', async () => {
    invalid(await call('PUT', '/blocks/a%20b', { as: 'bob' }), 'user');
    invalid(await call('PUT', '/blocks/bob', { as: 'bob' }));
  });
});

route('GET /blocks', () => {
  it('lists the users one blocks', async () => {
    expect((await call('GET', '/blocks', { as: 'bob' })).body).toEqual({ users: ['carol'] });
  });
});

route('DELETE /blocks/:user', () => {
  it('lifts a block', async () => {
    expect((await call('DELETE', '/blocks/carol', { as: 'bob' })).body).toEqual({ user: 'carol' });
    expect((await call('GET', '/blocks', { as: 'bob' })).body).toEqual({ users: [] });
  });
  it('refuses a malformed user id', async () => invalid(await call('DELETE', '/blocks/a%20b', { as: 'bob' }), 'user'));
});

route('POST /server/post', () => {
  it('posts texts and events to many rooms with an API key', async () => {
    const r = await call('POST', '/server/post', {
      as: 'api',
      body: { rooms: ['general', 'secret'], messages: [{ text: 'maintenance at noon' }, { ev: 'deploy', data: { v: 2 } }], as: { id: 'ops-bot', name: 'Ops' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.posted).toHaveLength(4);
    const m = (await call('GET', '/rooms/secret/messages?limit=2', { as: 'bob' })).body.messages;
    expect(m[0]).toMatchObject({ kind: 'text', text: 'maintenance at noon', user: 'ops-bot', name: 'Ops' });
    expect(m[1]).toMatchObject({ kind: 'event', data: { ev: 'deploy', data: { v: 2 } } });
  });
  it('a post sent again with its key stores nothing twice and answers the same seqs', async () => {
    const body = { rooms: ['general', 'secret'], messages: [{ text: 'once only' }, { ev: 'once', data: {} }], key: 'post-k1' };
    const first = await call('POST', '/server/post', { as: 'api', body });
    const again = await call('POST', '/server/post', { as: 'api', body });
    expect(first.status).toBe(200);
    expect(again.body.posted).toEqual(first.body.posted);
    const texts = (await call('GET', '/rooms/secret/messages?limit=20', { as: 'bob' })).body.messages.filter((m: { text?: string }) => m.text === 'once only');
    expect(texts).toHaveLength(1);
  });
  it('refuses an empty room list', async () =>
    invalid(await call('POST', '/server/post', { as: 'api', body: { rooms: [], messages: [{ text: 'x' }] } }), 'rooms'));
  it('refuses a non-administrator', async () =>
    forbidden(await call('POST', '/server/post', { as: 'alice', body: { rooms: ['general'], messages: [{ text: 'x' }] } })));
});

route('POST /server/notify', () => {
  it("pushes a notice to a user's connections", async () => {
    const s = await RawSocket.open(srv.wsUrl);
    expect((await s.call({ id: 1, cmd: 'auth', token: tokens.dave })).ok).toBe(true);
    const r = await call('POST', '/server/notify', { as: 'root', body: { users: ['dave'], ev: 'hello', data: { a: 1 } } });
    expect(r.body).toEqual({ delivered: 'users' });
    await expect.poll(() => s.frames.find((f) => f.ev === 'notice')).toMatchObject({ data: { ev: 'hello', data: { a: 1 } } });
    s.close();
  });
  it('refuses an empty event name', async () => invalid(await call('POST', '/server/notify', { as: 'root', body: { all: true, ev: '' } }), 'ev'));
  it('refuses a non-administrator', async () => forbidden(await call('POST', '/server/notify', { as: 'alice', body: { all: true, ev: 'x' } })));
});

route('POST /server/bans', () => {
  it('applies a list of room and server-wide bans with an API key', async () => {
    const r = await call('POST', '/server/bans', {
      as: 'api',
      body: {
        bans: [
          { user: 'mallet', room: 'general', seconds: 60 },
          { user: 'trudy', reason: 'spam' },
        ],
      },
    });
    expect(r.status).toBe(201);
    expect(r.body.bans).toMatchObject([
      { user: 'mallet', room: 'general' },
      { user: 'trudy', room: null, until: null, reason: 'spam' },
    ]);
    expect(r.body.bans[0].until).toBeGreaterThan(Date.now());
    const server = (await call('GET', '/bans', { as: 'root' })).body.bans.map((b: { user: string }) => b.user);
    expect(server).toContain('trudy');
    await call('DELETE', '/bans/trudy', { as: 'root' });
    await call('DELETE', '/rooms/general/bans/mallet', { as: 'root' });
  });
  it('refuses an empty list', async () => invalid(await call('POST', '/server/bans', { as: 'api', body: { bans: [] } }), 'bans'));
  it('refuses a non-administrator', async () => forbidden(await call('POST', '/server/bans', { as: 'alice', body: { bans: [{ user: 'x' }] } })));
});

const upload = (as: string, text: string) =>
  call('POST', '/rooms/secret/attachments', { as, raw: text, headers: { 'content-type': 'text/plain', 'x-filename': 'note.txt' } });

route('POST /rooms/:room/attachments', () => {
  it("stores a member's file and answers its record with signed URLs", async () => {
    const r = await upload('alice', 'hello file');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ room: 'secret', uploader: 'alice', name: 'note.txt', size: 10, type: 'text/plain', message: null });
    expect(r.headers.get('location')).toBe(`/api/v1/attachments/${r.body.id}`);
  });
  it('refuses a non-member', async () => forbidden(await upload('carol', 'x')));
});
route('GET /attachments/:id', () => {
  it('serves the file to members', async () => {
    const { id } = (await upload('alice', 'read me')).body;
    const r = await fetch(`${srv.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${tokens.bob}` } });
    expect([r.status, await r.text()]).toEqual([200, 'read me']);
  });
  it('refuses a non-member', async () => forbidden(await call('GET', `/attachments/${(await upload('alice', 'x')).body.id}`, { as: 'carol' })));
});
route('GET /attachments/:id/preview', () => {
  it('answers not_found for a file that is not an image', async () => {
    expectError(await call('GET', `/attachments/${(await upload('alice', 'x')).body.id}/preview`, { as: 'bob' }), 404, 'not_found');
  });
});
route('GET /attachments/:id/meta', () => {
  it('gives another member fresh signed URLs', async () => {
    const r = await call('GET', `/attachments/${(await upload('alice', 'x')).body.id}/meta`, { as: 'bob' });
    expect(r.status).toBe(200);
    expect(r.body.url).toMatch(/\?u=bob&exp=\d+&sig=/);
  });
});
route('DELETE /attachments/:id', () => {
  it('lets the uploader delete the file', async () => {
    const { id } = (await upload('alice', 'x')).body;
    expect((await call('DELETE', `/attachments/${id}`, { as: 'alice' })).body).toEqual({ attachment: id });
    expectError(await call('GET', `/attachments/${id}/meta`, { as: 'alice' }), 404, 'not_found');
  });
});
// secret: a group of alice (owner) and bob; general: a public channel of alice.
route('GET /rooms/:room/notifications', () => {
  it("answers the caller's level, the default until it chose one", async () => {
    expect((await call('GET', '/rooms/secret/notifications', { as: 'bob' })).body).toEqual({ room: 'secret', level: 'mentions' });
  });
  it('refuses a non-member', async () => forbidden(await call('GET', '/rooms/secret/notifications', { as: 'carol' })));
});
route('PUT /rooms/:room/notifications', () => {
  it("sets the caller's level", async () => {
    expect((await call('PUT', '/rooms/general/notifications', { as: 'alice', body: { level: 'none' } })).body).toEqual({ room: 'general', level: 'none' });
    expect((await call('GET', '/rooms/general/notifications', { as: 'alice' })).body.level).toBe('none');
  });
  it('refuses an unknown or missing level', async () => {
    invalid(await call('PUT', '/rooms/general/notifications', { as: 'alice', body: { level: 'loud' } }), 'level');
    invalid(await call('PUT', '/rooms/general/notifications', { as: 'alice', body: {} }), 'level');
  });
});
route('GET /rooms/:room/settings', () => {
  it('answers who may mention the whole room', async () => {
    expect((await call('GET', '/rooms/general/settings', { as: 'carol' })).body).toEqual({ room: 'general', mentionAll: 'moderators' });
  });
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/settings', { as: 'carol' })));
});
route('PATCH /rooms/:room/settings', () => {
  it('lets a moderator change it', async () => {
    expect((await call('PATCH', '/rooms/secret/settings', { as: 'alice', body: { mentionAll: 'members' } })).body).toEqual({
      room: 'secret',
      mentionAll: 'members',
    });
  });
  it('refuses a plain member and a bad value', async () => {
    forbidden(await call('PATCH', '/rooms/secret/settings', { as: 'bob', body: { mentionAll: 'moderators' } }));
    invalid(await call('PATCH', '/rooms/secret/settings', { as: 'alice', body: { mentionAll: 'everyone' } }), 'mentionAll');
  });
});
route('PUT /rooms/:room/pins/:seq', () => {
  it('pins a text message for a moderator', async () => {
    const seq = (await call('POST', '/rooms/secret/messages', { as: 'bob', body: { text: 'pin this' } })).body.seq as number;
    expect((await call('PUT', `/rooms/secret/pins/${seq}`, { as: 'alice' })).body).toEqual({ room: 'secret', seq, pinned: true });
  });
  it('refuses a plain member, and a seq that is no text message', async () => {
    forbidden(await call('PUT', '/rooms/secret/pins/2', { as: 'bob' }));
    expectError(await call('PUT', '/rooms/secret/pins/1', { as: 'alice' }), 404, 'not_found');
    invalid(await call('PUT', '/rooms/secret/pins/0', { as: 'alice' }), 'seq');
  });
});
route('GET /rooms/:room/pins', () => {
  it('lists the pins with their messages', async () => {
    const r = await call('GET', '/rooms/secret/pins', { as: 'bob' });
    expect(r.body.pins.map((p: { message: { text: string } }) => p.message.text)).toContain('pin this');
  });
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/pins', { as: 'carol' })));
});
route('DELETE /rooms/:room/pins/:seq', () => {
  it('unpins for a moderator, and refuses a plain member', async () => {
    const seq = (await call('GET', '/rooms/secret/pins', { as: 'bob' })).body.pins[0].seq as number;
    forbidden(await call('DELETE', `/rooms/secret/pins/${seq}`, { as: 'bob' }));
    expect((await call('DELETE', `/rooms/secret/pins/${seq}`, { as: 'alice' })).body).toEqual({ room: 'secret', seq, pinned: false });
  });
});
route('GET /rooms/:room/messages/:seq/versions', () => {
  it('lists the original and each edit', async () => {
    const seq = (await call('POST', '/rooms/general/messages', { as: 'alice', body: { text: 'v1' } })).body.seq as number;
    await call('PATCH', `/rooms/general/messages/${seq}`, { as: 'alice', body: { text: 'v2' } });
    const r = await call('GET', `/rooms/general/messages/${seq}/versions`, { as: 'carol' });
    expect(r.body.versions.map((v: { text: string }) => v.text)).toEqual(['v1', 'v2']);
  });
  it('refuses a non-member of a group', async () => forbidden(await call('GET', '/rooms/secret/messages/2/versions', { as: 'carol' })));
});

describe('every route', () => {
  const sample = (url: string) =>
    url.replace(':room', 'secret').replace(':user', 'bob').replace(':seq', '1').replace(':list', 'black').replace(':id', 'A'.repeat(22));
  const authRoutes = () =>
    registeredRoutes(srv.parley.http)
      .filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD')
      // A user's picture is read by its signed URL alone (avatars.test.ts).
      .filter(
        (r) =>
          ![
            '/api/v1/openapi.json',
            '/api/v1/auth/register',
            '/api/v1/auth/login',
            '/api/v1/auth/refresh',
            '/api/v1/dispatch',
            '/api/v1/users/:user/avatar',
          ].includes(r.url),
      );

  it('has a case in this file (accounts, the profile, admin routes and the document have theirs)', () => {
    // Accounts: accounts.test.ts; the profile and sessions: profile.test.ts; /admin: admin.test.ts;
    // Web Push: push.test.ts; pictures: avatars.test.ts.
    const own = /^(\w+ \/auth\/|PATCH \/me$|GET \/admin\/|\w+ \/push\/|\w+ \/me\/avatar$|GET \/avatars$)/;
    const missing = authRoutes()
      .map((r) => `${r.method} ${r.url.slice('/api/v1'.length)}`)
      .filter((n) => !covered.has(n) && !own.test(n));
    expect(missing).toEqual([]);
  });

  it('answers 401 unauthorized with WWW-Authenticate without a token, with a bad one, or a bad API key', async () => {
    const routes = authRoutes();
    expect(routes.length).toBeGreaterThan(40);
    for (const r of routes) {
      const path = sample(r.url).slice('/api/v1'.length);
      const bad: Array<Record<string, string>> = [{}, { authorization: 'Bearer not.a.jwt' }, { authorization: 'Basic abc' }, { 'x-api-key': 'wrong' }];
      for (const headers of bad) {
        const res = await call(r.method, path, { headers, body: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        expect(res.status, `${r.method} ${r.url}`).toBe(401);
        expect(res.body.error.code).toBe('unauthorized');
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
  });

  it('covers every command except those that need a live connection', () => {
    const carried = new Set(tableRoutes.map((r) => r.cmd));
    const missing = Object.keys(Commands).filter((c) => !carried.has(c as never) && !CONNECTION_ONLY.includes(c as never));
    expect(missing).toEqual([]);
  });

  it('answers unknown routes with not_found in the same shape', async () => {
    expectError(await call('GET', '/nope', { as: 'alice' }), 404, 'not_found');
  });
});

describe('both transports', () => {
  it('give the same answer to the same command', async () => {
    const s = await RawSocket.open(srv.wsUrl);
    expect((await s.call({ id: 1, cmd: 'auth', token: tokens.carol })).ok).toBe(true);
    const cases: Array<[Record<string, unknown>, string, string, unknown?]> = [
      [{ cmd: 'send', room: 'secret', text: 'hi' }, 'POST', '/rooms/secret/messages', { text: 'hi' }],
      [{ cmd: 'room', room: 'nothing-here' }, 'GET', '/rooms/nothing-here'],
      [{ cmd: 'create', kind: 'group', name: 'x', room: 'general' }, 'POST', '/rooms', { kind: 'group', name: 'x', room: 'general' }],
      [{ cmd: 'send', room: 'general', text: '' }, 'POST', '/rooms/general/messages', { text: '' }],
      [{ cmd: 'history', room: 'general', before: 2, after: 1 }, 'GET', '/rooms/general/messages?before=2&after=1'],
    ];
    let id = 2;
    for (const [frame, method, path, body] of cases) {
      const ws = await s.call({ id: id++, ...frame });
      const rest = await call(method, path, { as: 'carol', body });
      expect(ws.ok).toBe(false);
      const { code, message } = (ws as { error: { code: string; message: string } }).error;
      expect(rest.body.error, `${method} ${path}`).toMatchObject({ code, message });
    }
    s.close();
  });
});
