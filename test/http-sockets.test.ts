// Idle and greedy HTTP clients, with raw TCP sockets: a keep-alive connection left idle, a
// connection that never sends a request, and one address opening more connections than
// `http.connectionsPerAddress` (WebSocket ones included) are all closed by the server.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, type Socket } from 'node:net';
import { RawSocket, startServer, type TestServer } from './helpers.js';

/** A raw TCP connection to the server, and when it was closed (by the server). */
interface Tcp {
  socket: Socket;
  data: string;
  closedAt: Promise<number>;
}

function tcp(url: string): Promise<Tcp> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const t: Tcp = { socket, data: '', closedAt: new Promise((r) => socket.once('close', () => r(performance.now()))) };
    socket.on('data', (d) => {
      t.data += d.toString();
    });
    socket.on('error', () => {
      /* a reset counts as closed */
    });
    socket.once('connect', () => resolve(t));
    socket.once('error', reject);
  });
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'open'> => Promise.race([p, new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);

describe('with the default settings', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('an idle keep-alive connection is closed about 5 s after its last response, not a minute later', async () => {
    const c = await tcp(srv.url);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = performance.now();
    await expect.poll(() => c.data, { timeout: 5000 }).toContain('"ok":true');
    expect(c.data).toMatch(/keep-alive/i);
    const closed = await within(c.closedAt, 9000);
    expect(closed).not.toBe('open');
    expect((closed as number) - t0).toBeGreaterThan(4000);
  }, 15_000);
});

describe('with small limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ http: { headersTimeoutMs: 1500, requestTimeoutMs: 3000, keepAliveTimeoutMs: 300, connectionsPerAddress: 4 } });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('a connection that never sends a request is closed after http.headersTimeoutMs', async () => {
    const c = await tcp(srv.url);
    const t0 = performance.now();
    const closed = await within(c.closedAt, 3000);
    expect(closed).not.toBe('open');
    expect((closed as number) - t0).toBeLessThan(2500);
  });

  it('every connection that sends nothing is closed within http.headersTimeoutMs, whenever it was opened', async () => {
    // Opened one after another, so each starts at a different point of any periodic check.
    const silent: Array<{ c: Tcp; t0: number }> = [];
    for (let i = 0; i < 3; i++) {
      const c = await tcp(srv.url);
      silent.push({ c, t0: performance.now() });
      await new Promise((r) => setTimeout(r, 170));
    }
    onTestFinished(() => {
      for (const s of silent) s.c.socket.destroy();
    });
    for (const { c, t0 } of silent) {
      const closed = await within(c.closedAt, 6000);
      expect(closed).not.toBe('open');
      expect((closed as number) - t0).toBeLessThan(1500 + 700);
    }
  });

  it('one address holds at most http.connectionsPerAddress connections, WebSocket ones included', async () => {
    const held = await Promise.all([tcp(srv.url), tcp(srv.url), tcp(srv.url)]);
    const ws = await RawSocket.open(srv.wsUrl);
    onTestFinished(() => {
      ws.close();
      for (const h of held) h.socket.destroy();
    });
    // The fifth is closed at once, before it could send anything.
    const extra = await tcp(srv.url);
    expect(await within(extra.closedAt, 1000)).not.toBe('open');
    expect(extra.data).toBe('');
    expect(ws.closeCode).toBeNull();
    // Once one of the four is gone, the address may connect again and is served.
    held[0].socket.destroy();
    await held[0].closedAt;
    await new Promise((r) => setTimeout(r, 50));
    const again = await tcp(srv.url);
    again.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await expect.poll(() => again.data, { timeout: 3000 }).toContain('"ok":true');
  });
});

describe('configuration', () => {
  it('refuses a headers timeout longer than the request timeout, naming the key', async () => {
    await expect(startServer({ http: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } })).rejects.toThrow(/http\.headersTimeoutMs/);
  });
});
