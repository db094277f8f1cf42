// Your profile over real HTTP and WebSocket: the display name of a built-in account (the users
// table and every message from then on), the signed-in devices (sessions) and ending them, and
// the accounts that administer the server (accounts.admins).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { RawSocket, removeDir, startServer, tempDir, type TestServer } from './helpers.js';

interface Res {
  status: number;
  body: any;
}

function client(srv: TestServer) {
  return async (method: string, path: string, o: { token?: string; body?: unknown; ua?: string } = {}): Promise<Res> => {
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.ua) headers['user-agent'] = o.ua;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(srv.url + '/api/v1' + path, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
}

const CHEAP = { accounts: { hashMemoryKib: 8192, hashPasses: 1 }, plugins: { rateLimit: { enabled: false } } };
const PASSWORD = 'plum orchard quietly';
const code = (r: Res) => r.body?.error?.code;

let srv: TestServer;
let http: ReturnType<typeof client>;
beforeAll(async () => {
  srv = await startServer(CHEAP);
  http = client(srv);
});
afterAll(async () => {
  await srv?.close();
});

async function account(username: string, name: string, ua = 'Test/1') {
  const r = await http('POST', '/auth/register', { body: { username, password: PASSWORD, name }, ua });
  expect(r.status).toBe(201);
  return r.body as { accessToken: string; refreshToken: string };
}
async function login(username: string, ua: string) {
  const r = await http('POST', '/auth/login', { body: { username, password: PASSWORD }, ua });
  expect(r.status).toBe(200);
  return r.body as { accessToken: string; refreshToken: string };
}

async function wsAuth(token: string) {
  const s = await RawSocket.open(srv.wsUrl);
  const r = await s.call({ id: 1, cmd: 'auth', token });
  return { s, r: r as { ok: boolean; data?: any; error?: { code: string } } };
}

describe('display name', () => {
  it('changes in the users table at once; later messages carry it, earlier ones keep theirs', async () => {
    const amy = await account('nameamy', 'Amy');
    const other = await login('nameamy', 'Other/1');
    const room = (await http('POST', '/rooms', { token: amy.accessToken, body: { kind: 'channel', name: 'Names' } })).body.id;
    expect((await http('POST', `/rooms/${room}/messages`, { token: amy.accessToken, body: { text: 'before' } })).status).toBe(201);

    const r = await http('PATCH', '/me', { token: amy.accessToken, body: { name: '  Amy Pond  ' } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: 'nameamy', name: 'Amy Pond', profile: {} });
    expect((await http('GET', '/users/nameamy', { token: other.accessToken })).body.name).toBe('Amy Pond');
    // Tokens signed before the change present the new name: the other device, and this one.
    expect((await http('GET', '/me', { token: other.accessToken })).body.name).toBe('Amy Pond');
    expect((await http('GET', '/me', { token: amy.accessToken })).body.name).toBe('Amy Pond');
    // A request with a token signed under the old name does not write the old name back.
    expect((await http('GET', '/users/nameamy', { token: amy.accessToken })).body.name).toBe('Amy Pond');

    const { s, r: auth } = await wsAuth(other.accessToken);
    expect(auth.data.user.name).toBe('Amy Pond');
    expect((await s.call({ id: 2, cmd: 'send', room, text: 'after' })).ok).toBe(true);
    s.close();
    const h = await http('GET', `/rooms/${room}/messages`, { token: amy.accessToken });
    const byText = Object.fromEntries((h.body.messages as Array<{ text?: string; name: string }>).filter((m) => m.text).map((m) => [m.text, m.name]));
    expect(byText).toEqual({ before: 'Amy', after: 'Amy Pond' });
    // A refreshed token carries the new name in its claims too.
    const t = await http('POST', '/auth/refresh', { body: { refreshToken: amy.refreshToken } });
    expect(decodeJwt(t.body.accessToken).name).toBe('Amy Pond');
  });

  it('refuses blank, too long and malformed names, and users of external tokens', async () => {
    const bea = await account('namebea', 'Bea');
    for (const body of [{ name: '   ' }, { name: '' }, { name: 'x'.repeat(101) }, { name: 'a\u0000b' }, {}, { name: 'B', extra: 1 }]) {
      const r = await http('PATCH', '/me', { token: bea.accessToken, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(code(r)).toBe('invalid');
    }
    expect((await http('GET', '/users/namebea', { token: bea.accessToken })).body.name).toBe('Bea');
    const ext = await srv.token('external-user', { name: 'Ext' });
    const r = await http('PATCH', '/me', { token: ext, body: { name: 'Other' } });
    expect(r.status).toBe(403);
    expect((await http('PATCH', '/me', { body: { name: 'Nobody' } })).status).toBe(401);
  });
});

describe('sessions', () => {
  it('lists the signed-in devices with their browser, when signed in and last used, this one marked', async () => {
    const phone = await account('sesscat', 'Cat', 'Phone/2');
    const laptop = await login('sesscat', 'Laptop/3');
    const list = await http('GET', '/auth/sessions', { token: laptop.accessToken });
    expect(list.status).toBe(200);
    const sessions = list.body.sessions as Array<{ id: string; current: boolean; userAgent: string; createdAt: number; lastUsedAt: number; expiresAt: number }>;
    expect(sessions.map((x) => [x.userAgent, x.current]).sort()).toEqual([
      ['Laptop/3', true],
      ['Phone/2', false],
    ]);
    const phoneSession = sessions.find((x) => x.userAgent === 'Phone/2')!;
    expect(phoneSession.lastUsedAt).toBe(phoneSession.createdAt);
    expect(phoneSession.expiresAt).toBeGreaterThan(Date.now());
    // Using the phone's session (a refresh) moves its "last used".
    await new Promise((r) => setTimeout(r, 5));
    const refreshed = await http('POST', '/auth/refresh', { body: { refreshToken: phone.refreshToken } });
    expect(refreshed.status).toBe(200);
    const again = (await http('GET', '/auth/sessions', { token: laptop.accessToken })).body.sessions as typeof sessions;
    const after = again.find((x) => x.id === phoneSession.id)!;
    expect(after.lastUsedAt).toBeGreaterThan(phoneSession.lastUsedAt);
    // Most recently used first.
    expect(again[0]!.id).toBe(phoneSession.id);
  });

  it('ends another device: its tokens stop working for new requests, connections and refreshes', async () => {
    const a = await account('sessdan', 'Dan', 'A/1');
    const b = await login('sessdan', 'B/1');
    const bId = ((await http('GET', '/auth/sessions', { token: b.accessToken })).body.sessions as Array<{ id: string; current: boolean }>).find(
      (x) => x.current,
    )!.id;
    expect((await http('DELETE', `/auth/sessions/${bId}`, { token: a.accessToken })).status).toBe(204);
    expect((await http('GET', '/me', { token: b.accessToken })).status).toBe(401);
    const { s, r } = await wsAuth(b.accessToken);
    expect(r.ok).toBe(false);
    s.close();
    expect((await http('POST', '/auth/refresh', { body: { refreshToken: b.refreshToken } })).status).toBe(401);
    expect((await http('GET', '/me', { token: a.accessToken })).status).toBe(200);
    // Ending it again, or a made-up one, is not found.
    expect(code(await http('DELETE', `/auth/sessions/${bId}`, { token: a.accessToken }))).toBe('not_found');
    expect(code(await http('DELETE', `/auth/sessions/${'x'.repeat(22)}`, { token: a.accessToken }))).toBe('not_found');
    expect(code(await http('DELETE', '/auth/sessions/bad!id', { token: a.accessToken }))).toBe('invalid');
  });

  it('ending a session closes the live connections it opened, and only those', async () => {
    const a = await account('sessliv', 'Liv', 'A/1');
    const b = await login('sessliv', 'B/1');
    const c = await login('sessliv', 'C/1');
    const sessions = (await http('GET', '/auth/sessions', { token: b.accessToken })).body.sessions as Array<{ id: string; current: boolean }>;
    const bId = sessions.find((x) => x.current)!.id;
    const [sa, sb1, sb2, sc] = await Promise.all([wsAuth(a.accessToken), wsAuth(b.accessToken), wsAuth(b.accessToken), wsAuth(c.accessToken)]);
    for (const x of [sa, sb1, sb2, sc]) expect(x.r.ok).toBe(true);

    expect((await http('DELETE', `/auth/sessions/${bId}`, { token: a.accessToken })).status).toBe(204);
    for (const x of [sb1, sb2]) {
      expect(await x.s.closed()).toBe(4001);
      expect(x.s.frames.find((f) => f.ev === 'goodbye')).toMatchObject({ data: { code: 'unauthorized' } });
    }
    // The other sessions' connections carry on.
    expect((await sa.s.call({ id: 5, cmd: 'rooms' })).ok).toBe(true);
    expect((await sc.s.call({ id: 5, cmd: 'rooms' })).ok).toBe(true);

    // "Sign out everywhere else" closes C's connection and keeps A's.
    expect((await http('DELETE', '/auth/sessions', { token: a.accessToken })).body).toEqual({ ended: 1 });
    expect(await sc.s.closed()).toBe(4001);
    expect((await sa.s.call({ id: 6, cmd: 'rooms' })).ok).toBe(true);
    // Logging out closes this session's own connections.
    expect((await http('POST', '/auth/logout', { token: a.accessToken })).status).toBe(204);
    expect(await sa.s.closed()).toBe(4001);
  });

  it("cannot see or end another account's sessions", async () => {
    const eve = await account('sesseve', 'Eve');
    const fay = await account('sessfay', 'Fay');
    const fayId = ((await http('GET', '/auth/sessions', { token: fay.accessToken })).body.sessions as Array<{ id: string }>)[0]!.id;
    const list = (await http('GET', '/auth/sessions', { token: eve.accessToken })).body.sessions as Array<{ id: string }>;
    expect(list.map((x) => x.id)).not.toContain(fayId);
    expect(code(await http('DELETE', `/auth/sessions/${fayId}`, { token: eve.accessToken }))).toBe('not_found');
    expect((await http('GET', '/me', { token: fay.accessToken })).status).toBe(200);
  });

  it('ends every other session at once and keeps this one; ending its own session signs out', async () => {
    const keep = await account('sessgus', 'Gus', 'Keep/1');
    const others = [await login('sessgus', 'O/1'), await login('sessgus', 'O/2'), await login('sessgus', 'O/3')];
    const r = await http('DELETE', '/auth/sessions', { token: keep.accessToken });
    expect(r).toEqual({ status: 200, body: { ended: 3 } });
    for (const o of others) expect((await http('GET', '/me', { token: o.accessToken })).status).toBe(401);
    const left = (await http('GET', '/auth/sessions', { token: keep.accessToken })).body.sessions as Array<{ id: string; current: boolean }>;
    expect(left).toHaveLength(1);
    expect(left[0]!.current).toBe(true);
    expect((await http('DELETE', `/auth/sessions/${left[0]!.id}`, { token: keep.accessToken })).status).toBe(204);
    expect((await http('GET', '/me', { token: keep.accessToken })).status).toBe(401);
  });

  it('needs an account token', async () => {
    const ext = await srv.token('sess-external');
    expect(code(await http('GET', '/auth/sessions', { token: ext }))).toBe('forbidden');
    expect(code(await http('DELETE', '/auth/sessions', { token: ext }))).toBe('forbidden');
    expect((await http('GET', '/auth/sessions')).status).toBe(401);
  });
});

describe('administrators (accounts.admins)', () => {
  it('a listed account administers the server; its token says so; off the list it no longer does', async () => {
    const dir = tempDir();
    let s = await startServer(CHEAP, dir);
    let h = client(s);
    // Registered before it is listed.
    expect((await h('POST', '/auth/register', { body: { username: 'opsy', password: PASSWORD } })).status).toBe(201);
    await s.close();

    s = await startServer({ ...CHEAP, accounts: { ...CHEAP.accounts, admins: ['OPSY'] } }, dir);
    h = client(s);
    const t = (await h('POST', '/auth/login', { body: { username: 'opsy', password: PASSWORD } })).body as { accessToken: string };
    expect(decodeJwt(t.accessToken).parley_admin).toBe(true);
    expect((await h('GET', '/me', { token: t.accessToken })).body.admin).toBe(true);
    expect((await h('POST', '/bans', { token: t.accessToken, body: { user: 'spammer', seconds: 60 } })).status).toBe(201);
    // A listed name nobody registered yet cannot be taken by whoever registers first.
    await s.close();
    s = await startServer({ ...CHEAP, accounts: { ...CHEAP.accounts, admins: ['opsy', 'boss'] } }, dir);
    h = client(s);
    const taken = await h('POST', '/auth/register', { body: { username: 'boss', password: PASSWORD } });
    expect(taken.status).toBe(409);
    expect(taken.body.error.details).toMatchObject({ reason: 'reserved' });
    await s.close();

    // Off the list: the same token, still valid, is an ordinary user's.
    s = await startServer(CHEAP, dir);
    h = client(s);
    expect((await h('GET', '/me', { token: t.accessToken })).body.admin).toBe(false);
    expect(code(await h('GET', '/bans', { token: t.accessToken }))).toBe('forbidden');
    await s.close();
    removeDir(dir);
  });

  it("an account token's parley_admin claim alone makes no administrator", async () => {
    const r = await account('claimer', 'Claimer');
    // The claim is not even in the token of an unlisted account…
    expect(decodeJwt(r.accessToken).parley_admin).toBeUndefined();
    expect((await http('GET', '/me', { token: r.accessToken })).body.admin).toBe(false);
  });
});
