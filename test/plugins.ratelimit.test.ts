import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RawSocket, startServer, type TestServer } from './helpers.js';
import { ParleyClient, type ClientError } from '../src/client/index.js';
import { mintToken } from '../src/auth/jwt.js';
import { MemoryRateCounter } from '../src/plugins/rate-limit/counter-memory.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({
    plugins: { rateLimit: { user: { rate: 1, burst: 3 }, room: { rate: 0.5, burst: 5 } } },
  });
});
afterAll(async () => {
  await srv.close();
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: 'ok', details: undefined as Record<string, unknown> | undefined }),
    (e: ClientError) => ({ code: e.code, details: e.details }),
  );

describe('rate limiter', () => {
  it('refuses a user over its limit with rate_limited and retryAfterMs, stores nothing, and lets it send again later', async () => {
    const a = await srv.client('rl-a');
    const room = await a.createRoom('group', 'Fast talker');
    for (let i = 0; i < 3; i++) await a.send(room.id, `m${i}`);
    const last = (await a.history(room.id)).last;
    const refused = await failure(a.send(room.id, 'one too many'));
    expect(refused.code).toBe('rate_limited');
    const retryAfterMs = refused.details!.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(1000);
    // Edits and reactions draw on the same bucket.
    expect((await failure(a.edit(room.id, last, 'edited'))).code).toBe('rate_limited');
    expect((await failure(a.react(room.id, last, '👍'))).code).toBe('rate_limited');
    expect((await a.history(room.id)).last).toBe(last);
    // Commands outside the limit still work.
    expect((await a.history(room.id)).messages.filter((m) => m.kind === 'text')).toHaveLength(3);
    await new Promise((r) => setTimeout(r, retryAfterMs + 20));
    expect((await a.send(room.id, 'after waiting')).seq).toBe(last + 1);
  });

  it('a keyed write sent again after it was stored is answered as a duplicate, not refused, when the bucket is empty', async () => {
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 'a', cmd: 'auth', token: await srv.token('rl-dup') })).ok).toBe(true);
    const room = ((await ws.call({ id: 'c', cmd: 'create', kind: 'group', name: 'Dup' })).data as { id: string }).id;
    const first = await ws.call({ id: 's1', cmd: 'send', room, text: 'stored once', key: 'k-1' });
    expect(first.ok).toBe(true);
    const seq = (first.data as { seq: number }).seq;
    // Empty the bucket (3 at once, 1 a second), then send the stored one again with its key.
    for (let i = 0; i < 3; i++) await ws.call({ id: `d${i}`, cmd: 'send', room, text: `drain ${i}`, key: `d-${i}` });
    const fresh = await ws.call({ id: 'n', cmd: 'send', room, text: 'a new one', key: 'k-new' });
    expect((fresh.error as { code?: string } | undefined)?.code).toBe('rate_limited');
    const again = await ws.call({ id: 's2', cmd: 'send', room, text: 'stored once', key: 'k-1' });
    expect(again).toMatchObject({ ok: true, data: { seq, duplicate: true } });
    ws.close();
  });

  it('does not refuse what a client sent at its own pace while the node was stopped, and still refuses a burst', async () => {
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 'a', cmd: 'auth', token: await srv.token('rl-stall') })).ok).toBe(true);
    const room = ((await ws.call({ id: 'c', cmd: 'create', kind: 'group', name: 'Stall' })).data as { id: string }).id;
    const outcomes = async (prefix: string, n: number) => {
      const codes: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await ws.reply(`${prefix}${i}`, 10_000);
        codes.push(r.ok ? 'ok' : (r.error as { code: string }).code);
      }
      return codes;
    };
    // A burst the node reads as it comes: 3 at once, then refused (1 a second).
    for (let i = 0; i < 6; i++) ws.sendText(JSON.stringify({ id: `b${i}`, cmd: 'send', room, text: `burst ${i}`, key: `b-${i}` }));
    expect(await outcomes('b', 6)).toEqual(['ok', 'ok', 'ok', 'rate_limited', 'rate_limited', 'rate_limited']);
    await new Promise((r) => setTimeout(r, 3100));
    // The same six sent while this process's event loop is stopped (a frozen node, here a
    // blocked one) wait in the node's socket buffers: the client sent them over the stall,
    // and the node reads them all at once when it runs again. None is refused for that.
    for (let i = 0; i < 6; i++) ws.sendText(JSON.stringify({ id: `s${i}`, cmd: 'send', room, text: `stalled ${i}`, key: `s-${i}` }));
    const until = Date.now() + 2600;
    while (Date.now() < until) {
      /* the event loop is stopped */
    }
    expect(await outcomes('s', 6)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    const texts = (await ws.call({ id: 'h', cmd: 'history', room })).data as { messages: Array<{ text?: string }> };
    expect(texts.messages.map((m) => m.text).filter((t) => t?.startsWith('stalled'))).toEqual([0, 1, 2, 3, 4, 5].map((i) => `stalled ${i}`));
    // Afterwards the limit holds again: the bucket is empty.
    ws.sendText(JSON.stringify({ id: 'after', cmd: 'send', room, text: 'after', key: 'after' }));
    expect(((await ws.reply('after')).error as { code: string }).code).toBe('rate_limited');
    ws.close();
  });

  it('opening direct rooms draws on the same bucket: one user cannot create them without end', async () => {
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 'a', cmd: 'auth', token: await srv.token('rl-dm') })).ok).toBe(true);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await ws.call({ id: `d${i}`, cmd: 'direct', user: `rl-dm-peer-${i}` });
      codes.push(r.ok ? 'ok' : (r.error as { code: string }).code);
    }
    expect(codes).toEqual(['ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
    const rooms = (await ws.call({ id: 'r', cmd: 'rooms' })).data as { rooms: unknown[] };
    expect(rooms.rooms).toHaveLength(3);
    ws.close();
  });

  it('limits a room across its members, without touching other rooms', async () => {
    const owner = await srv.client('rr-owner');
    const room = await owner.createRoom('channel', 'Busy');
    const quiet = await owner.createRoom('channel', 'Quiet');
    const [b, c, d] = await Promise.all([srv.client('rr-b'), srv.client('rr-c'), srv.client('rr-d')]);
    for (const x of [b, c, d]) await x.join(room.id);
    await b.send(room.id, '1');
    await b.send(room.id, '2');
    await c.send(room.id, '3');
    await c.send(room.id, '4');
    await d.send(room.id, '5');
    const last = (await owner.history(room.id)).last;
    const refused = await failure(d.send(room.id, '6'));
    expect(refused.code).toBe('rate_limited');
    // The room gains one token every 2 s.
    expect(refused.details!.retryAfterMs).toBeGreaterThan(0);
    expect(refused.details!.retryAfterMs).toBeLessThanOrEqual(2000);
    expect((await owner.history(room.id)).last).toBe(last);
    await d.join(quiet.id);
    expect((await d.send(quiet.id, 'elsewhere')).duplicate).toBe(false);
  });

  it('does not let outsiders drain a room they cannot write to', async () => {
    const owner = await srv.client('ro-owner');
    const room = await owner.createRoom('group', 'Private');
    const outsiders = await Promise.all(['ro-x', 'ro-y', 'ro-z'].map((u) => srv.client(u)));
    for (const o of outsiders) for (let i = 0; i < 3; i++) expect((await failure(o.send(room.id, 'spam'))).code).toBe('forbidden');
    for (let i = 0; i < 3; i++) await owner.send(room.id, `ok ${i}`);
  });

  it('lets administrator tokens through', async () => {
    const token = await mintToken(srv.config, 'rl-admin', { admin: true });
    const admin = new ParleyClient({ url: srv.url, token, WebSocket: WebSocket as never });
    await admin.connect();
    try {
      const room = await admin.createRoom('group', 'Announcements');
      for (let i = 0; i < 8; i++) await admin.send(room.id, `notice ${i}`);
      expect((await admin.history(room.id)).last).toBe(9);
    } finally {
      admin.close();
    }
  });
});

describe('with the default configuration', () => {
  let def: TestServer;
  beforeAll(async () => {
    def = await startServer();
  });
  afterAll(async () => {
    await def.close();
  });

  it('a flooding user gets rate_limited with retryAfterMs while another user keeps sending and pinging', async () => {
    const flooder = await RawSocket.open(def.wsUrl);
    expect((await flooder.call({ id: 'a', cmd: 'auth', token: await def.token('flooder') })).ok).toBe(true);
    const room = ((await flooder.call({ id: 'c', cmd: 'create', kind: 'channel', name: 'Flooded' })).data as { id: string }).id;
    const bystander = await def.client('bystander');
    await bystander.join(room);
    const before = (await bystander.history(room)).last;

    // The flood: waves of sends as fast as replies come, within the in-flight cap, for 2 s.
    let stop = false;
    let id = 0;
    const outcomes: Array<Record<string, unknown>> = [];
    const flood = (async () => {
      while (!stop) {
        const ids = Array.from({ length: 32 }, () => ++id);
        for (const i of ids) flooder.sendText(JSON.stringify({ id: i, cmd: 'send', room, text: `flood ${i}` }));
        for (const i of ids) outcomes.push(await flooder.reply(i));
      }
    })();
    // Meanwhile the bystander pings and sends: 100 pings, a send after every tenth.
    const pings: number[] = [];
    const t0 = Date.now();
    let sent = 0;
    while (pings.length < 100) {
      const p0 = performance.now();
      await bystander.request('ping', {});
      pings.push(performance.now() - p0);
      if (pings.length % 10 === 0) {
        await bystander.send(room, `still here ${sent}`);
        sent++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await flood;
    const elapsedS = (Date.now() - t0) / 1000;

    const stored = outcomes.filter((r) => r.ok);
    const limited = outcomes.filter((r) => (r.error as { code?: string } | undefined)?.code === 'rate_limited');
    expect(stored.length + limited.length).toBe(outcomes.length);
    // The default bucket: 50 at once, then 10 a second.
    expect(stored.length).toBeLessThanOrEqual(50 + Math.ceil(10 * (elapsedS + 1)));
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) expect((r.error as { details: { retryAfterMs: number } }).details.retryAfterMs).toBeGreaterThan(0);
    expect(sent).toBe(10);
    expect((await bystander.history(room)).last).toBe(before + stored.length + sent);
    // Not starved: no ping waits behind the flood (a loose bound, for a busy test machine).
    pings.sort((a, b) => a - b);
    expect(pings[Math.floor(pings.length * 0.99)]!).toBeLessThan(1000);
    flooder.close();
  });
});

describe('MemoryRateCounter', () => {
  it('refills at its rate, takes all buckets or none, and forgets full buckets', () => {
    let now = 0;
    const c = new MemoryRateCounter(() => now, 1e9);
    const user = { key: 'u', rate: 1, burst: 2 };
    const room = { key: 'r', rate: 10, burst: 1 };
    expect(c.take([user, room])).toBe(0);
    expect(c.take([user, room])).toBe(100); // the room is empty; the user keeps its token
    now = 100;
    expect(c.take([user, room])).toBe(0); // the user's bucket had refilled to 1.1
    expect(c.take([user])).toBe(900);
    now = 600;
    expect(c.take([user])).toBe(400);
    now = 1100;
    expect(c.take([user])).toBe(0);
    now = 100_000;
    c.sweep();
    expect(c.size).toBe(0);
    c.close();
  });
});
