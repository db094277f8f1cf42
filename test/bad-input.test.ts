import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair } from 'jose';
import { RawSocket, startServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ limits: { frameBytes: 2048, textChars: 100, authTimeoutMs: 400 } });
});
afterAll(async () => {
  await srv.close();
});

async function authed(user = 'bad-user'): Promise<RawSocket> {
  const s = await RawSocket.open(srv.wsUrl);
  const r = await s.call({ id: 'a', cmd: 'auth', token: await srv.token(user) });
  expect(r.ok).toBe(true);
  return s;
}
const errCode = (r: Record<string, unknown>) => (r.error as { code: string } | undefined)?.code;
async function stillUsable(s: RawSocket): Promise<void> {
  const r = await s.call({ id: 'p', cmd: 'ping' });
  expect(r.ok).toBe(true);
}
async function countRooms(): Promise<number> {
  return (await srv.parley.store.publicRooms(10_000)).length;
}

describe('bad input gets a documented error code and stores nothing', () => {
  it('invalid JSON, non-objects and binary frames: invalid, connection usable', async () => {
    const s = await authed();
    for (const text of ['{not json', '[1,2]', '42', 'null', '"str"']) {
      s.sendText(text);
      const r = await s.reply(null);
      expect(errCode(r)).toBe('invalid');
    }
    s.sendText(Buffer.from('{"id":1,"cmd":"ping"}'), true);
    expect(errCode(await s.reply(null))).toBe('invalid');
    await stillUsable(s);
    s.close();
  });

  it('unknown command, missing, extra and wrong-typed fields: invalid, naming the field', async () => {
    const s = await authed();
    const room = (await s.call({ id: 1, cmd: 'create', kind: 'group', name: 'Inputs' })).data as { id: string; lastSeq: number };
    const cases: Array<[Record<string, unknown>, string | null]> = [
      [{ id: 2, cmd: 'explode' }, null],
      [{ id: 3, cmd: 'send', room: room.id }, 'text'],
      [{ id: 4, cmd: 'send', room: room.id, text: 'x', admin: true }, 'admin'],
      [{ id: 5, cmd: 'send', room: room.id, text: 42 }, 'text'],
      [{ id: 6, cmd: 'history', room: room.id, after: '1' }, 'after'],
      [{ id: 7, cmd: 'history', room: room.id, limit: 100000 }, 'limit'],
      [{ id: 8, cmd: 'send', room: room.id, text: '' }, 'text'],
      [{ id: 9, cmd: 'read', room: room.id, seq: -1 }, 'seq'],
      [{ id: 10, cmd: 'edit', room: room.id, target: 1.5, text: 'x' }, 'target'],
      [{ cmd: 'ping' }, null],
      [{ id: { nested: true }, cmd: 'ping' }, null],
    ];
    for (const [frame, field] of cases) {
      s.sendText(JSON.stringify(frame));
      const id = typeof frame.id === 'number' ? frame.id : null;
      const r = await s.reply(id);
      expect(errCode(r), JSON.stringify(frame)).toBe('invalid');
      if (field) expect((r.error as { message: string }).message).toContain(field);
    }
    const h = (await s.call({ id: 20, cmd: 'history', room: room.id })).data as { last: number };
    expect(h.last).toBe(room.lastSeq);
    await stillUsable(s);
    s.close();
  });

  it('oversized frames and texts: too_large; a huge frame closes with 1009', async () => {
    const s = await authed();
    const room = (await s.call({ id: 1, cmd: 'create', kind: 'group', name: 'Big' })).data as { id: string; lastSeq: number };
    s.sendText(JSON.stringify({ id: 2, cmd: 'send', room: room.id, text: 'x'.repeat(3000) }));
    expect(errCode(await s.reply(null))).toBe('too_large');
    expect(errCode(await s.call({ id: 3, cmd: 'send', room: room.id, text: 'y'.repeat(101) }))).toBe('too_large');
    const h = (await s.call({ id: 4, cmd: 'history', room: room.id })).data as { last: number };
    expect(h.last).toBe(room.lastSeq);
    await stillUsable(s);
    s.sendText('z'.repeat(2048 * 16 + 1));
    expect(await s.closed()).toBe(1009);
  });

  it('room ids with path or SQL tricks are refused as invalid and touch nothing', async () => {
    const s = await authed();
    const before = await countRooms();
    const tricks = ['../etc/passwd', "x'; DROP TABLE messages;--", 'a/b', 'room with space', '%2e%2e', 'é', 'x'.repeat(65), '', 'r\u0000'];
    let id = 100;
    for (const room of tricks) {
      for (const frame of [
        { cmd: 'send', room, text: 'x' },
        { cmd: 'history', room },
        { cmd: 'join', room },
        { cmd: 'create', kind: 'channel', name: 'n', room },
      ]) {
        const r = await s.call({ id: ++id, ...frame });
        expect(errCode(r), `${frame.cmd} ${JSON.stringify(room)}`).toBe('invalid');
      }
    }
    expect(errCode(await s.call({ id: ++id, cmd: 'direct', user: '../admin' }))).toBe('invalid');
    expect(await countRooms()).toBe(before);
    expect(errCode(await s.call({ id: id + 1, cmd: 'history', room: 'no-such-room' }))).toBe('not_found');
    await stillUsable(s);
    s.close();
  });

  it('commands before auth are unauthorized; the connection may still authenticate', async () => {
    const s = await RawSocket.open(srv.wsUrl);
    expect(errCode(await s.call({ id: 1, cmd: 'rooms' }))).toBe('unauthorized');
    expect((await s.call({ id: 2, cmd: 'auth', token: await srv.token('late') })).ok).toBe(true);
    expect(errCode(await s.call({ id: 3, cmd: 'auth', token: await srv.token('late') }))).toBe('conflict');
    s.close();
  });

  it('bad tokens are refused: alg none, wrong key, wrong algorithm, expired, garbage, no sub', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'mallory', exp: now + 600 })}.`;
    const wrongKey = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-that-is-long-enough'));
    const wrongAlg = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('mallory')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(srv.config.auth.secret));
    const { privateKey } = await generateKeyPair('RS256');
    const rsa = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('mallory').setExpirationTime('1h').sign(privateKey);
    const expired = await srv.token('mallory', { expiresIn: -3600 });
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(srv.config.auth.secret));
    const badSub = await srv
      .token('ok')
      .then(() =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('../x y')
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(srv.config.auth.secret)),
      );
    const s = await RawSocket.open(srv.wsUrl);
    let id = 0;
    for (const token of [none, wrongKey, wrongAlg, rsa, expired, 'garbage', noSub, badSub]) {
      // A signature is checked on libuv's thread pool, which other test files in this worker
      // may keep busy for a while (a CI run once waited over 5 s): the reply may take longer.
      s.sendText(JSON.stringify({ id: ++id, cmd: 'auth', token }));
      const r = await s.reply(id, 20_000);
      expect(errCode(r), token.slice(0, 30)).toBe('unauthorized');
    }
    expect(errCode(await s.call({ id: id + 1, cmd: 'rooms' }))).toBe('unauthorized');
    s.close();
  });

  it('a bad ?token= gets a goodbye and close 4001; a silent connection is closed after the auth timeout', async () => {
    const s = await RawSocket.open(`${srv.wsUrl}?token=garbage`);
    expect(await s.closed()).toBe(4001);
    expect(s.frames.find((f) => f.ev === 'goodbye')).toMatchObject({ data: { code: 'unauthorized' } });
    const idle = await RawSocket.open(srv.wsUrl);
    expect(await idle.closed(3000)).toBe(4001);
    const good = await RawSocket.open(`${srv.wsUrl}?token=${await srv.token('url-user')}`);
    expect((await good.call({ id: 1, cmd: 'ping' })).ok).toBe(true);
    good.close();
  });
});
