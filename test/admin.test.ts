// The admin screen's REST routes over real HTTP: finding users and rooms, live figures and
// webhook delivery status, for administrators only (accounts listed in accounts.admins, admin
// tokens, API keys); everyone else is refused with `forbidden`.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers.js';

interface Res {
  status: number;
  body: any;
}
const API_KEY = 'admin-test-key-0123456789';
const PASSWORD = 'plum orchard quietly';

let srv: TestServer;
let hook: Server;
let hookUrl = '';
let admin = '';
let user = '';

async function http(method: string, path: string, o: { token?: string; key?: string; body?: unknown } = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.key) headers['x-api-key'] = o.key;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(srv.url + '/api/v1' + path, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  // A webhook receiver that refuses everything, so failures show in the status.
  hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(410).end());
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}`;
  srv = await startServer({
    accounts: { hashMemoryKib: 8192, hashPasses: 1 },
    api: { keys: [API_KEY] },
    plugins: {
      rateLimit: { enabled: false },
      wordFilter: { enabled: true },
      webhooks: { enabled: true, maxAttempts: 1, endpoints: [{ url: `${hookUrl}/secret/path/T0K3N`, format: 'slack', events: ['message.sent'] }] },
    },
  });
  admin = await srv.token('root-op', { name: 'Root Operator', admin: true });
  user = await srv.token('plain-pat', { name: 'Pat Plain' });
});
afterAll(async () => {
  await srv?.close();
  await new Promise<void>((r) => {
    hook?.closeAllConnections();
    hook?.close(() => r());
  });
});

describe('admin routes', () => {
  it('are refused to users who are not administrators, and to nobody', async () => {
    for (const path of ['/admin/users', '/admin/rooms', '/admin/stats', '/admin/webhooks', '/admin/words']) {
      const r = await http('GET', path, { token: user });
      expect(r.status, path).toBe(403);
      expect(r.body.error.code, path).toBe('forbidden');
      expect((await http('GET', path)).status, path).toBe(401);
      expect((await http('GET', path, { key: API_KEY })).status, path).toBe(200);
    }
  });

  it('find users by id or display name, any case, with whether they have an account', async () => {
    const reg = await http('POST', '/auth/register', { body: { username: 'zelda', password: PASSWORD, name: 'Princess Zelda' } });
    expect(reg.status).toBe(201);
    await srv.token('zed-ext');
    await http('GET', '/me', { token: await srv.token('zed-ext', { name: 'Zed External' }) });
    const byName = await http('GET', '/admin/users?query=PRINCESS', { token: admin });
    expect(byName.status).toBe(200);
    expect(byName.body.users).toEqual([{ id: 'zelda', name: 'Princess Zelda', account: true, createdAt: expect.any(Number) }]);
    const z = await http('GET', '/admin/users?query=z', { token: admin });
    expect(z.body.users.map((u: { id: string; account: boolean }) => [u.id, u.account])).toEqual([
      ['zed-ext', false],
      ['zelda', true],
    ]);
    // Wildcards are plain characters; a page says whether more exist.
    expect((await http('GET', '/admin/users?query=%25', { token: admin })).body.users).toEqual([]);
    const one = await http('GET', '/admin/users?limit=1', { token: admin });
    expect(one.body.users).toHaveLength(1);
    expect(one.body.more).toBe(true);
    for (const bad of ['?limit=0', '?limit=201', '?query=' + 'x'.repeat(101), '?other=1']) {
      const r = await http('GET', '/admin/users' + bad, { token: admin });
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code, bad).toBe('invalid');
    }
  });

  it('find channels and groups with member counts, never direct rooms', async () => {
    const c = await http('POST', '/rooms', { token: user, body: { kind: 'channel', name: 'Harbour Watch' } });
    expect(c.status).toBe(201);
    const other = await srv.token('second-sam');
    expect((await http('POST', `/rooms/${c.body.id}/join`, { token: other })).status).toBe(200);
    await http('POST', '/rooms', { token: user, body: { kind: 'group', name: 'Harbour Secret' } });
    expect((await http('POST', '/direct/second-sam', { token: user })).status).toBeLessThan(300);
    const r = await http('GET', '/admin/rooms?query=harbour', { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.rooms.map((x: { name: string; kind: string; members: number }) => [x.name, x.kind, x.members]).sort()).toEqual([
      ['Harbour Secret', 'group', 1],
      ['Harbour Watch', 'channel', 2],
    ]);
    const all = await http('GET', '/admin/rooms', { token: admin });
    expect(all.body.rooms.every((x: { kind: string }) => x.kind !== 'direct')).toBe(true);
  });

  it('list rooms by name, case aside, so a page cut at its limit is the start of the A to Z', async () => {
    // Ids in the opposite order to the names.
    for (const [id, name] of [
      ['ordz-a', 'ordering zulu'],
      ['ordz-b', 'Ordering Mike'],
      ['ordz-c', 'ordering alpha'],
    ]) {
      expect((await http('POST', '/rooms', { token: user, body: { kind: 'channel', name, room: id } })).status).toBe(201);
    }
    const page = await http('GET', '/admin/rooms?query=ordering&limit=2', { token: admin });
    expect(page.body.rooms.map((x: { name: string }) => x.name)).toEqual(['ordering alpha', 'Ordering Mike']);
    expect(page.body.more).toBe(true);
  });

  it('live figures count connections and messages as they happen', async () => {
    const before = (await http('GET', '/admin/stats', { token: admin })).body;
    const c = await srv.client('stats-sue');
    const room = await c.createRoom('channel', 'Stats Room');
    for (let i = 0; i < 3; i++) await c.send(room.id, `m${i}`);
    const after = (await http('GET', '/admin/stats', { token: admin })).body;
    expect(after.connections.ws).toBe(before.connections.ws + 1);
    expect(after.messagesIn - before.messagesIn).toBeGreaterThanOrEqual(3);
    expect(after.messagesOut - before.messagesOut).toBeGreaterThanOrEqual(3);
    expect(after.at).toBeGreaterThanOrEqual(before.at);
    // The plugins turned on, by name (the admin screen's tabs follow them).
    expect(after.plugins).toEqual(expect.arrayContaining(['word-filter', 'webhooks']));
    c.close();
  });

  it('webhook status counts failed deliveries with the last error, showing only the endpoint origin', async () => {
    const before = (await http('GET', '/admin/webhooks', { token: admin })).body.endpoints[0].failed as number;
    const c = await srv.client('hook-hal');
    const room = await c.createRoom('channel', 'Hooked');
    await c.send(room.id, 'to the hook');
    c.close();
    let ep: any;
    for (let i = 0; i < 50; i++) {
      ep = (await http('GET', '/admin/webhooks', { token: admin })).body.endpoints[0];
      if (ep.failed > before && ep.pending === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ep).toMatchObject({
      origin: hookUrl,
      format: 'slack',
      events: ['message.sent'],
      failed: before + 1,
      delivered: 0,
      lastError: 'HTTP 410',
      pending: 0,
    });
    expect(ep.lastFailedAt).toBeGreaterThan(0);
    expect(JSON.stringify(ep)).not.toContain('T0K3N');
  });
});
