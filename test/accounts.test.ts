// Built-in accounts over real HTTP and WebSocket: register, log in, refresh (rotating), log
// out, change password; account tokens on every transport next to external JWTs; registration
// switched off; login brute force throttled before any hashing.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SignJWT, exportSPKI, generateKeyPair } from 'jose';
import { mintToken } from '../src/auth/jwt.js';
import { RawSocket, removeDir, startServer, tempDir, type TestServer } from './helpers.js';

interface Res {
  status: number;
  body: any;
  headers: Headers;
  ms: number;
}

function client(srv: TestServer) {
  return async (method: string, path: string, o: { token?: string; body?: unknown } = {}): Promise<Res> => {
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const t0 = performance.now();
    const r = await fetch(srv.url + '/api/v1' + path, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers, ms: performance.now() - t0 };
  };
}

async function wsAuth(srv: TestServer, token: string) {
  const s = await RawSocket.open(srv.wsUrl);
  const r = await s.call({ id: 1, cmd: 'auth', token });
  s.close();
  return r as { ok: boolean; data?: any; error?: { code: string } };
}

const code = (r: Res) => r.body?.error?.code;

/** Cheap hashes keep this file fast; the throttling test pays a real cost on purpose. */
const CHEAP = { accounts: { hashMemoryKib: 8192, hashPasses: 1 } };

let srv: TestServer;
let http: ReturnType<typeof client>;
beforeAll(async () => {
  srv = await startServer(CHEAP);
  http = client(srv);
});
afterAll(async () => {
  await srv?.close();
});

describe('register', () => {
  it('creates an account whose user id is the username, signed in at once', async () => {
    const r = await http('POST', '/auth/register', { body: { username: 'amy', password: 'correct horse', name: 'Amy A.' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: 'amy', name: 'Amy A.', profile: {} } });
    expect(typeof r.body.accessToken).toBe('string');
    expect(typeof r.body.refreshToken).toBe('string');
    expect((await http('GET', '/me', { token: r.body.accessToken })).body).toEqual({ id: 'amy', name: 'Amy A.', profile: {}, admin: false });
  });

  it('refuses bad usernames and passwords with invalid, naming the field', async () => {
    for (const [body, field] of [
      [{ username: 'Amy2', password: 'long enough' }, 'username'],
      [{ username: 'ab', password: 'long enough' }, 'username'],
      [{ username: 'a'.repeat(33), password: 'long enough' }, 'username'],
      [{ username: 'has space', password: 'long enough' }, 'username'],
      [{ username: 'amy2', password: 'short' }, 'password'],
      [{ username: 'amy2', password: 'x'.repeat(257) }, 'password'],
      [{ username: 'amy2' }, 'password'],
      [{ username: 'amy2', password: 'long enough', admin: true }, 'admin'],
    ] as const) {
      const r = await http('POST', '/auth/register', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid', details: { field } });
    }
  });

  it('refuses passwords that are easy to guess, saying why, and creates no account', async () => {
    for (const password of ['password', '12345678', 'qwertyuiop', 'amos1234', 'Amos Moses']) {
      const r = await http('POST', '/auth/register', { body: { username: 'amos', password, name: 'Amos Moses' } });
      expect(r.status, password).toBe(400);
      expect(r.body.error, password).toMatchObject({ code: 'invalid', details: { field: 'password', score: expect.any(Number) } });
      expect(r.body.error.message).toMatch(/^password is too easy to guess/);
    }
    expect((await http('POST', '/auth/login', { body: { username: 'amos', password: 'password' } })).status).toBe(401);
    expect((await http('POST', '/auth/register', { body: { username: 'amos', password: 'plum orchard quietly' } })).status).toBe(201);
  });

  it('refuses a taken username, and the id of a user who came with an external token', async () => {
    expect(code(await http('POST', '/auth/register', { body: { username: 'amy', password: 'another one' } }))).toBe('conflict');
    // "zed" is known from an external JWT: an account must not take over its rooms.
    expect((await http('GET', '/me', { token: await srv.token('zed') })).status).toBe(200);
    const r = await http('POST', '/auth/register', { body: { username: 'zed', password: 'takeover!' } });
    expect(r.status).toBe(409);
    expect(code(r)).toBe('conflict');
  });
});

describe('accounts and external identities', () => {
  it('an account registered first never receives the external user of its id, nor the reverse', async () => {
    const reg = await http('POST', '/auth/register', { body: { username: 'future6', password: 'correct horse battery', name: 'Early Bird' } });
    expect(reg.status).toBe(201);
    // Later, the deployment's own identity system signs a token for its user "future6".
    const external = await srv.token('future6');
    const ws = await wsAuth(srv, external);
    expect(ws.ok).toBe(false);
    expect(ws.error?.code).toBe('unauthorized');
    expect(code(await http('GET', '/me', { token: external }))).toBe('unauthorized');
    // So nothing sent to that external user can reach the account, and the account still works.
    expect((await wsAuth(srv, reg.body.accessToken)).ok).toBe(true);
    // An external user already known cannot be registered over.
    expect((await wsAuth(srv, await srv.token('known7'))).ok).toBe(true);
    const taken = await http('POST', '/auth/register', { body: { username: 'known7', password: 'correct horse battery' } });
    expect(taken.status).toBe(409);
  });
});

describe('login and tokens', () => {
  it('logs in (username in any case) and the access token works on REST and WebSocket', async () => {
    await http('POST', '/auth/register', { body: { username: 'ben', password: 'ben password' } });
    const r = await http('POST', '/auth/login', { body: { username: 'BEN', password: 'ben password' } });
    expect(r.status).toBe(200);
    expect(r.body.user.id).toBe('ben');
    const ws = await wsAuth(srv, r.body.accessToken);
    expect(ws).toMatchObject({ ok: true, data: { user: { id: 'ben', name: 'ben' } } });
    // Also on the URL, as browsers do.
    const s = await RawSocket.open(`${srv.wsUrl}?token=${r.body.accessToken}`);
    expect((await s.call({ id: 1, cmd: 'ping' })).ok).toBe(true);
    s.close();
    const room = await http('POST', '/rooms', { token: r.body.accessToken, body: { kind: 'group', name: "Ben's" } });
    expect(room.body.createdBy).toBe('ben');
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    const wrong = await http('POST', '/auth/login', { body: { username: 'ben', password: 'not it!' } });
    const unknown = await http('POST', '/auth/login', { body: { username: 'nobody-here', password: 'whatever' } });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body.error.message).toBe(unknown.body.error.message);
    expect(code(await http('POST', '/auth/login', { body: { username: 'ben' } }))).toBe('invalid');
  });

  it('refresh rotates: the new refresh token works, the spent one ends the session', async () => {
    const login = (await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).body;
    const r1 = await http('POST', '/auth/refresh', { body: { refreshToken: login.refreshToken } });
    expect(r1.status).toBe(200);
    expect(r1.body.refreshToken).not.toBe(login.refreshToken);
    expect((await http('GET', '/me', { token: r1.body.accessToken })).status).toBe(200);
    const r2 = await http('POST', '/auth/refresh', { body: { refreshToken: r1.body.refreshToken } });
    expect(r2.status).toBe(200);
    // The first token comes back: stolen or replayed. The whole session ends.
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: login.refreshToken } }))).toBe('unauthorized');
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: r2.body.refreshToken } }))).toBe('unauthorized');
    expect((await http('GET', '/me', { token: r2.body.accessToken })).status).toBe(401);
  });

  it('two refreshes with the same token at once: exactly one wins', async () => {
    const login = (await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).body;
    const both = await Promise.all([1, 2].map(() => http('POST', '/auth/refresh', { body: { refreshToken: login.refreshToken } })));
    expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('refuses malformed and unknown refresh tokens', async () => {
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: 'garbage' } }))).toBe('unauthorized');
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: `${'a'.repeat(22)}.${'b'.repeat(43)}` } }))).toBe('unauthorized');
    expect(code(await http('POST', '/auth/refresh', { body: {} }))).toBe('invalid');
  });

  it('logout ends the session: its tokens stop working for new requests and connections', async () => {
    const login = (await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).body;
    const other = (await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).body;
    const out = await http('POST', '/auth/logout', { token: login.accessToken });
    expect(out.status).toBe(204);
    expect(code(await http('GET', '/me', { token: login.accessToken }))).toBe('unauthorized');
    expect((await wsAuth(srv, login.accessToken)).error?.code).toBe('unauthorized');
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: login.refreshToken } }))).toBe('unauthorized');
    // Other sessions of the same account are untouched.
    expect((await http('GET', '/me', { token: other.accessToken })).status).toBe(200);
  });

  it('logout needs an account token', async () => {
    const r = await http('POST', '/auth/logout');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
    expect(code(await http('POST', '/auth/logout', { token: await srv.token('ext-user') }))).toBe('forbidden');
  });

  it('a forged account token is refused: wrong key, no session, or another algorithm', async () => {
    const login = (await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).body;
    const sid = JSON.parse(Buffer.from(login.accessToken.split('.')[1], 'base64url').toString()).sid as string;
    const forge = (key: string, claims: Record<string, unknown>, alg = 'HS256') =>
      new SignJWT(claims).setProtectedHeader({ alg }).setIssuer('parley').setSubject('ben').setExpirationTime('1h').sign(new TextEncoder().encode(key));
    const secret = srv.config.auth.secret!;
    expect(code(await http('GET', '/me', { token: await forge('some-other-secret-0123456789', { sid }) }))).toBe('unauthorized');
    expect(code(await http('GET', '/me', { token: await forge(secret, {}) }))).toBe('unauthorized');
    expect(code(await http('GET', '/me', { token: await forge(secret, { sid: 'made-up' }) }))).toBe('unauthorized');
    expect(code(await http('GET', '/me', { token: await forge(secret, { sid }, 'HS512') }))).toBe('unauthorized');
    // Another user's name on a real session is refused too.
    const other = await new SignJWT({ sid })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('parley')
      .setSubject('amy')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
    expect(code(await http('GET', '/me', { token: other }))).toBe('unauthorized');
    expect((await http('GET', '/me', { token: await forge(secret, { sid }) })).status).toBe(200);
  });
});

describe('change password', () => {
  it('needs the old password, then ends every session and returns a new one', async () => {
    await http('POST', '/auth/register', { body: { username: 'cat', password: 'first password' } });
    const a = (await http('POST', '/auth/login', { body: { username: 'cat', password: 'first password' } })).body;
    const b = (await http('POST', '/auth/login', { body: { username: 'cat', password: 'first password' } })).body;
    const wrong = await http('POST', '/auth/password', { token: a.accessToken, body: { oldPassword: 'nope nope', newPassword: 'second password' } });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toMatchObject({ code: 'forbidden', details: { field: 'oldPassword' } });
    const short = await http('POST', '/auth/password', { token: a.accessToken, body: { oldPassword: 'first password', newPassword: 'short' } });
    expect(short.body.error).toMatchObject({ code: 'invalid', details: { field: 'newPassword' } });
    const weak = await http('POST', '/auth/password', { token: a.accessToken, body: { oldPassword: 'first password', newPassword: 'password1' } });
    expect(weak.body.error).toMatchObject({ code: 'invalid', details: { field: 'newPassword' } });

    const r = await http('POST', '/auth/password', { token: a.accessToken, body: { oldPassword: 'first password', newPassword: 'second password' } });
    expect(r.status).toBe(200);
    expect((await http('GET', '/me', { token: r.body.accessToken })).status).toBe(200);
    for (const old of [a, b]) {
      expect(code(await http('GET', '/me', { token: old.accessToken }))).toBe('unauthorized');
      expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: old.refreshToken } }))).toBe('unauthorized');
    }
    expect((await http('POST', '/auth/login', { body: { username: 'cat', password: 'first password' } })).status).toBe(401);
    expect((await http('POST', '/auth/login', { body: { username: 'cat', password: 'second password' } })).status).toBe(200);
  });

  it("with signOutOthers false keeps the other devices signed in and replaces only this one's refresh token", async () => {
    await http('POST', '/auth/register', { body: { username: 'cleo', password: 'first password' } });
    const a = (await http('POST', '/auth/login', { body: { username: 'cleo', password: 'first password' } })).body;
    const b = (await http('POST', '/auth/login', { body: { username: 'cleo', password: 'first password' } })).body;
    const r = await http('POST', '/auth/password', {
      token: a.accessToken,
      body: { oldPassword: 'first password', newPassword: 'second password', signOutOthers: false },
    });
    expect(r.status).toBe(200);
    expect((await http('GET', '/me', { token: r.body.accessToken })).status).toBe(200);
    // The other device carries on; this one's old refresh token is spent.
    expect((await http('GET', '/me', { token: b.accessToken })).status).toBe(200);
    expect((await http('POST', '/auth/refresh', { body: { refreshToken: b.refreshToken } })).status).toBe(200);
    expect((await http('GET', '/auth/sessions', { token: r.body.accessToken })).body.sessions).toHaveLength(3);
    expect(code(await http('POST', '/auth/refresh', { body: { refreshToken: a.refreshToken } }))).toBe('unauthorized');
    expect((await http('POST', '/auth/login', { body: { username: 'cleo', password: 'second password' } })).status).toBe(200);
  });

  it('needs an account token', async () => {
    const body = { oldPassword: 'x', newPassword: 'long enough' };
    expect((await http('POST', '/auth/password', { body })).status).toBe(401);
    expect(code(await http('POST', '/auth/password', { token: await srv.token('ext-user'), body }))).toBe('forbidden');
  });
});

describe('login throttling', () => {
  it('after 5 failures the 6th attempt is refused with 429 and Retry-After, even with the right password, without hashing', async () => {
    // The default argon2id cost, so that skipping it shows in the timings even on a busy machine.
    const strong = await startServer();
    onTestFinished(() => strong.close());
    const http = client(strong);
    await http('POST', '/auth/register', { body: { username: 'dan', password: 'dan password' } });
    const fails: Res[] = [];
    for (let i = 0; i < 5; i++) fails.push(await http('POST', '/auth/login', { body: { username: 'dan', password: `guess ${i}` } }));
    expect(fails.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
    const sixth = await http('POST', '/auth/login', { body: { username: 'dan', password: 'dan password' } });
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.code).toBe('rate_limited');
    expect(sixth.body.error.details.retryAfterMs).toBeGreaterThan(0);
    const retry = Number(sixth.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    // A refused attempt does no argon2 work: far faster than any attempt that did.
    const refusals: Res[] = [];
    for (let i = 0; i < 3; i++) refusals.push(await http('POST', '/auth/login', { body: { username: 'DAN', password: 'x' } }));
    expect(refusals.map((r) => r.status)).toEqual([429, 429, 429]);
    const slowestRefusal = Math.max(...refusals.map((r) => r.ms));
    const fastestFailure = Math.min(...fails.map((r) => r.ms));
    expect(slowestRefusal).toBeLessThan(fastestFailure / 2);
    // Other accounts are not locked by it.
    expect((await http('POST', '/auth/login', { body: { username: 'ben', password: 'ben password' } })).status).toBe(401);
  });

  it('parallel guesses cannot slip past the limit', async () => {
    await http('POST', '/auth/register', { body: { username: 'eve', password: 'eve password' } });
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => http('POST', '/auth/login', { body: { username: 'eve', password: `guess ${i}` } })));
    expect(all.filter((r) => r.status === 401)).toHaveLength(5);
    expect(all.filter((r) => r.status === 429)).toHaveLength(7);
  });

  it('failures from one address are limited across accounts; successes do not count', async () => {
    const s = await startServer({ accounts: { ...CHEAP.accounts, loginFailuresPerAddress: 4, loginFailuresPerAccount: 100 } });
    onTestFinished(() => s.close());
    const h = client(s);
    await h('POST', '/auth/register', { body: { username: 'fay', password: 'fay password' } });
    for (let i = 0; i < 6; i++) expect((await h('POST', '/auth/login', { body: { username: 'fay', password: 'fay password' } })).status).toBe(200);
    for (const u of ['u1', 'u2', 'u3', 'u4']) expect((await h('POST', '/auth/login', { body: { username: u, password: 'nope' } })).status).toBe(401);
    const r = await h('POST', '/auth/login', { body: { username: 'fay', password: 'fay password' } });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('operator settings', () => {
  it('registration off is refused with forbidden; accounts made before still log in', async () => {
    const dir = tempDir();
    onTestFinished(() => removeDir(dir));
    const on = await startServer(CHEAP, dir);
    expect((await client(on)('POST', '/auth/register', { body: { username: 'gil', password: 'gil password' } })).status).toBe(201);
    await on.close();
    const off = await startServer({ accounts: { ...CHEAP.accounts, registration: false } }, dir);
    onTestFinished(() => off.close());
    const h = client(off);
    const r = await h('POST', '/auth/register', { body: { username: 'gus', password: 'gus password' } });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'forbidden', message: 'registration is turned off on this server' });
    expect((await h('POST', '/auth/login', { body: { username: 'gil', password: 'gil password' } })).status).toBe(200);
  });

  it('account tokens and RS256 external tokens work side by side, each with its own pinned algorithm', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const rs = await startServer({ ...CHEAP, auth: { algorithm: 'RS256', secret: undefined, publicKey: await exportSPKI(publicKey) } });
    onTestFinished(() => rs.close());
    const h = client(rs);
    const reg = await h('POST', '/auth/register', { body: { username: 'hal', password: 'hal password' } });
    expect(reg.status).toBe(201);
    expect((await wsAuth(rs, reg.body.accessToken)).ok).toBe(true);
    const ext = await new SignJWT({ name: 'Ivy', profile: { team: 'blue' } })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('ivy')
      .setExpirationTime('1h')
      .sign(privateKey);
    expect((await h('GET', '/me', { token: ext })).body).toEqual({ id: 'ivy', name: 'Ivy', profile: { team: 'blue' }, admin: false });
    expect((await wsAuth(rs, ext)).ok).toBe(true);
    // The profile is attached to the user, for everyone to see.
    expect((await h('GET', '/users/ivy', { token: reg.body.accessToken })).body.profile).toEqual({ team: 'blue' });
    // An RS256 token claiming the account issuer is not an account token.
    const fake = await new SignJWT({ sid: 'x' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('parley')
      .setSubject('hal')
      .setExpirationTime('1h')
      .sign(privateKey);
    expect(code(await h('GET', '/me', { token: fake }))).toBe('unauthorized');
  });

  it('the account issuer cannot be configured for external tokens', async () => {
    await expect(startServer({ auth: { issuer: 'parley' } })).rejects.toThrow(/auth\.issuer/);
  });

  it('an admin token may still be minted for the server-side API', async () => {
    const root = await mintToken(srv.config, 'root', { admin: true });
    expect((await http('GET', '/me', { token: root })).body.admin).toBe(true);
  });
});
