// What only the server may be: its posts carry a mark no client can set, its id `system` is
// refused in every token and registration, and names that would pass for the server or its
// staff cannot be registered. Checked at the wire (raw WebSocket frames, REST bodies).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { mintToken } from '../src/auth/jwt.js';
import { RawSocket, SECRET, startServer, waitFor, type TestServer } from './helpers.js';

/** Cheap password hashes: these tests are about names, not argon2's cost. */
const CHEAP = { accounts: { hashMemoryKib: 8192, hashPasses: 1 } };

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer(CHEAP);
});
afterAll(async () => {
  await srv?.close();
});

async function rest(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${srv.url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function signedIn(user: string, name?: string): Promise<RawSocket> {
  const s = await RawSocket.open(srv.wsUrl);
  const r = await s.call({ id: 'a', cmd: 'auth', token: await srv.token(user, name ? { name } : {}) });
  expect(r.ok).toBe(true);
  return s;
}

const messages = (s: RawSocket) => s.frames.filter((f) => f.ev === 'message').map((f) => f.data as Record<string, unknown>);

describe('server posts', () => {
  it('carry system: true live and in history; a user named like the server, or claiming it in data, does not', async () => {
    const owner = await signedIn('si-owner');
    const room = ((await owner.call({ id: 1, cmd: 'create', kind: 'group', name: 'Announcements' })).data as { id: string }).id;
    await owner.call({ id: 2, cmd: 'invite', room, user: 'si-impostor' });
    const impostor = await signedIn('si-impostor', 'System');
    const admin = await mintToken(srv.config, 'si-ops', { admin: true });
    expect((await rest('POST', '/server/post', { rooms: [room], messages: [{ text: 'maintenance at noon' }] }, admin)).status).toBe(200);
    expect((await impostor.call({ id: 3, cmd: 'send', room, text: 'maintenance moved to 1pm', data: { system: true } })).ok).toBe(true);
    // A top-level mark is not a field a client may send.
    const refused = await impostor.call({ id: 4, cmd: 'send', room, text: 'x', system: true });
    expect(refused).toMatchObject({ ok: false, error: { code: 'invalid' } });
    await waitFor(() => messages(owner).some((m) => m.text === 'maintenance moved to 1pm'), 5000, 'both messages');
    const live = messages(owner);
    const real = live.find((m) => m.text === 'maintenance at noon')!;
    const forged = live.find((m) => m.text === 'maintenance moved to 1pm')!;
    expect(real).toMatchObject({ user: 'system', name: 'System', system: true });
    expect(forged).toMatchObject({ user: 'si-impostor', name: 'System', data: { system: true } });
    expect('system' in forged).toBe(false);
    const history = ((await owner.call({ id: 5, cmd: 'history', room })).data as { messages: Array<Record<string, unknown>> }).messages;
    expect(history.find((m) => m.seq === real.seq)).toMatchObject({ system: true });
    expect('system' in history.find((m) => m.seq === forged.seq)!).toBe(false);
    owner.close();
    impostor.close();
  });
});

describe("the server's own id", () => {
  it('is refused in any token, on WebSocket and REST, administrator tokens included', async () => {
    const key = new TextEncoder().encode(SECRET);
    for (const admin of [false, true]) {
      const token = await new SignJWT(admin ? { parley_admin: true } : {})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('system')
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(key);
      const s = await RawSocket.open(srv.wsUrl);
      expect(await s.call({ id: 1, cmd: 'auth', token })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
      s.close();
      expect((await rest('GET', '/me', undefined, token)).status).toBe(401);
    }
    await expect(mintToken(srv.config, 'system')).rejects.toMatchObject({ code: 'invalid' });
  });
});

describe('registration', () => {
  it("refuses the server's id and reserved names, in any case, as a conflict naming the field", async () => {
    // `room` and `here` mention a whole room: a user so named could never be mentioned alone.
    for (const username of ['system', 'admin', 'root', 'parley', 'moderator', 'everyone', 'room', 'here']) {
      const r = await rest('POST', '/auth/register', { username, password: 'long enough password' });
      expect(r.status, username).toBe(409);
      expect(r.body.error).toMatchObject({ code: 'conflict', details: { field: 'username', reason: 'reserved' } });
    }
    expect((await rest('POST', '/auth/register', { username: 'sysadmin-jo', password: 'long enough password' })).status).toBe(201);
  });

  it("takes the reserved list from the configuration; the server's id and the whole-room mentions stay refused", async () => {
    const other = await startServer({ ...CHEAP, accounts: { ...CHEAP.accounts, reservedNames: ['boss'] } });
    try {
      const reg = async (username: string) =>
        (
          await fetch(`${other.url}/api/v1/auth/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username, password: 'long enough password' }),
          })
        ).status;
      expect(await reg('boss')).toBe(409);
      expect(await reg('system')).toBe(409);
      expect(await reg('room')).toBe(409);
      expect(await reg('here')).toBe(409);
      expect(await reg('admin')).toBe(201);
    } finally {
      await other.close();
    }
  });
});
