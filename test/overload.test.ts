// A client cannot make the server hold unbounded memory for it: every byte queued to a
// connection, replies included, counts toward limits.slowConsumerBytes, and a connection may
// have at most limits.maxInFlight commands awaiting their reply. Past either it is closed
// (4008 on WebSocket) and what it held is released. Checked at the wire with clients that
// never read their socket.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, startServer, waitFor, type TestServer } from './helpers.js';

const MiB = 1024 * 1024;
const socketOf = (raw: RawSocket): Socket => (raw.ws as unknown as { _socket: Socket })._socket;

/** Heap plus buffers of this process, where the in-process server keeps what it queues. */
const held = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Samples `held()` while `work` runs; resolves with the highest growth seen. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  const base = held();
  let peak = base;
  const t = setInterval(() => {
    peak = Math.max(peak, held());
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(t);
  }
  return Math.max(peak, held()) - base;
}

/** A room of `n` messages of about 8 KB each: one history page of it is megabytes. */
async function bigRoom(srv: TestServer, owner: string, room: string, n: number): Promise<void> {
  const ws = await RawSocket.open(srv.wsUrl);
  await ws.call({ id: 1, cmd: 'auth', token: await srv.token(owner) });
  expect((await ws.call({ id: 2, cmd: 'create', kind: 'channel', name: room, room })).ok).toBe(true);
  ws.close();
  const text = 'x'.repeat(4000);
  const data = { blob: 'y'.repeat(3900) };
  const by = { id: owner, name: owner, admin: false };
  await Promise.all(Array.from({ length: n }, () => srv.parley.service.roomLog.submit<'append'>(room, { op: 'append', by, kind: 'text', text, data })));
}

function historyRequest(token: string, room: string, host: string): string {
  return `GET /api/v1/rooms/${room}/messages?limit=500 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n`;
}

describe('unsent bytes, replies included, are bounded per connection', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // A small slow-consumer limit; the in-flight cap far away, so only bytes can trip.
    srv = await startServer({ limits: { slowConsumerBytes: MiB, maxInFlight: 10_000, heartbeatMs: 60_000 } });
    await bigRoom(srv, 'big-owner', 'big', 200);
  });
  afterAll(async () => {
    await srv.close();
  });

  it('a WebSocket client that pipelines history requests and never reads is closed, and the server stays small', async () => {
    const raw = await RawSocket.open(srv.wsUrl);
    expect((await raw.call({ id: 'a', cmd: 'auth', token: await srv.token('reader') })).ok).toBe(true);
    const before = srv.parley.hub.connectionCount;
    raw.stopReading();
    const growth = await peakGrowth(async () => {
      // 150 replies of ~1.6 MB each: 240 MB if the server kept them.
      for (let i = 0; i < 150; i++) raw.sendText(JSON.stringify({ id: i, cmd: 'history', room: 'big', limit: 500 }));
      await waitFor(() => srv.parley.hub.connectionCount === before - 1, 10_000, 'the reader closed');
    });
    expect(growth).toBeLessThan(64 * MiB);
    // The server is well: another client is served.
    const other = await RawSocket.open(srv.wsUrl);
    expect((await other.call({ id: 1, cmd: 'auth', token: await srv.token('other') })).ok).toBe(true);
    expect((await other.call({ id: 2, cmd: 'ping' })).ok).toBe(true);
    other.close();
    // Once it reads again, the reader learns why it was closed.
    raw.readAgain();
    expect([4008, 1006]).toContain(await raw.closed(5000));
  });

  it('a REST client that pipelines history requests and never reads is cut off, and the server stays small', async () => {
    const token = await srv.token('rest-reader');
    const host = new URL(srv.url).host;
    let s: Socket | undefined;
    const growth = await peakGrowth(async () => {
      const c = await pipelineWithoutReading(
        srv,
        Array.from({ length: 150 }, () => historyRequest(token, 'big', host)),
      );
      s = c.s;
      await within(c.serverClosed, 10_000, 'the server to close the connection');
    });
    expect(growth).toBeLessThan(64 * MiB);
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    // Reading again, the client finds the connection ended before its 150 responses.
    let bytes = 0;
    s!.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    const ended = new Promise<void>((r) => s!.once('close', () => r()));
    s!.resume();
    await ended;
    expect(bytes).toBeLessThan(150 * 1.5 * MiB);
  });
});

describe('commands awaiting their reply are capped per connection', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  it('the auth reply tells the client its cap, and a WebSocket client sending far beyond it is closed with 4008', async () => {
    const raw = await RawSocket.open(srv.wsUrl);
    const auth = await raw.call({ id: 'a', cmd: 'auth', token: await srv.token('burst') });
    const cap = (auth.data as { maxInFlight: number }).maxInFlight;
    expect(cap).toBe(srv.config.limits.maxInFlight);
    // One write of many frames: the server parses them all before any reply is written.
    const frames = Array.from({ length: cap * 10 }, (_, i) => JSON.stringify({ id: i, cmd: 'history', room: 'none', limit: 1 }));
    const wire = Buffer.concat(frames.map((f) => serverBound(f)));
    socketOf(raw).write(wire);
    expect(await raw.closed(5000)).toBe(4008);
  });

  it('a REST client pipelining far beyond the cap is cut off', async () => {
    const token = await srv.token('rest-burst');
    const host = new URL(srv.url).host;
    const req = `GET /api/v1/me HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    const { s, serverClosed } = await pipelineWithoutReading(
      srv,
      Array.from({ length: srv.config.limits.maxInFlight * 10 }, () => req),
    );
    await within(serverClosed, 5000, 'the server to close the connection');
    s.destroy();
  });

  it('the SDK keeps its requests within the cap: hundreds at once all succeed on one connection', async () => {
    const c = await srv.client('sdk-burst');
    let states = 0;
    c.on('state', () => {
      states++;
    });
    const n = srv.config.limits.maxInFlight * 5;
    const results = await Promise.all(Array.from({ length: n }, () => c.request('ping', {})));
    expect(results).toHaveLength(n);
    expect(states).toBe(0);
    expect(c.state).toBe('online');
  });
});

/**
 * Opens a raw connection that writes `requests` at once and never reads; resolves with it and
 * a promise of the server's side of it closing (a paused client cannot see that itself).
 */
async function pipelineWithoutReading(srv: TestServer, requests: string[]): Promise<{ s: Socket; serverClosed: Promise<void> }> {
  const server = srv.parley.http.server;
  const serverSide = new Promise<Socket>((r) => server.once('connection', (sock: Socket) => r(sock)));
  const u = new URL(srv.url);
  const s = connect({ host: u.hostname, port: Number(u.port) });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.pause();
  s.on('error', () => {
    /* the server may cut it off */
  });
  s.write(requests.join(''));
  const peer = await serverSide;
  const serverClosed = peer.destroyed ? Promise.resolve() : new Promise<void>((r) => peer.once('close', () => r()));
  return { s, serverClosed };
}

/** Resolves when `p` does, or throws after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** A masked client-to-server text frame (RFC 6455), as `ws` would send it. */
function serverBound(text: string): Buffer {
  const payload = Buffer.from(text);
  const len = payload.length;
  const head = len < 126 ? 2 : 4;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x81;
  if (len < 126) out[1] = 0x80 | len;
  else {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  }
  const mask = Buffer.from([1, 2, 3, 4]);
  mask.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i % 4]!;
  return out;
}
