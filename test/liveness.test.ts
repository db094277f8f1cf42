import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Connection } from '../src/transport/ws/connection.js';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ limits: { heartbeatMs: 300, slowConsumerBytes: 256 * 1024, textChars: 4000 } });
});
afterAll(async () => {
  await srv.close();
});

describe('liveness', () => {
  it('a connection that stops answering pings is dropped and its presence cleared', async () => {
    const watcher = await srv.client('hb-watcher');
    const room = await watcher.createRoom('channel', 'Heartbeat');
    const raw = await RawSocket.open(srv.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await srv.token('hb-dead') })).ok).toBe(true);
    expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
    await waitFor(() => srv.parley.hub.connectionCount === 2);
    const offline: string[] = [];
    watcher.on('presence', (p) => {
      if (!p.online) offline.push(p.user);
    });
    expect((await watcher.presence(room.id)).users.sort()).toEqual(['hb-dead', 'hb-watcher']);
    raw.stopReading(); // answers no ping from now on
    await waitFor(() => offline.includes('hb-dead'), 3000, 'offline after missed heartbeats');
    expect((await watcher.presence(room.id)).users).toEqual(['hb-watcher']);
    expect(srv.parley.hub.connectionCount).toBe(1);
  });

  it('a reader that falls far behind is disconnected, then resumes from its last seq with nothing lost', async () => {
    // Heartbeats far apart, so only the slow-consumer limit can drop the reader.
    const main = srv;
    // The flood comes from one user, far above the default rate limit: it is off here.
    srv = await startServer({ limits: { heartbeatMs: 60000, slowConsumerBytes: 256 * 1024, textChars: 4000 }, plugins: { rateLimit: { enabled: false } } });
    onTestFinished(async () => {
      await srv.close();
      srv = main;
    });
    const others = srv.parley.hub.connectionCount;
    const sender = await srv.client('slow-sender');
    const room = await sender.createRoom('channel', 'Flood');
    const raw = await RawSocket.open(srv.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await srv.token('slow-reader') })).ok).toBe(true);
    expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
    const base = (await sender.history(room.id)).last;
    await waitFor(() => srv.parley.hub.connectionCount === others + 2);
    raw.stopReading();
    const big = 'x'.repeat(3900);
    let sent = 0;
    // Keep sending until the server gives up on the reader; bounded by a count. The connection
    // is closed at once, and leaves the hub once its socket is gone: a peer that reads nothing
    // never answers the close, so that is up to 2 s later.
    const [conn] = srv.parley.hub.localConnections('slow-reader') as Connection[];
    while (!conn!.closed && sent < 20000) {
      await Promise.all(Array.from({ length: 50 }, () => sender.send(room.id, big)));
      sent += 50;
    }
    await waitFor(() => srv.parley.hub.connectionCount === others + 1, 5000, 'the reader dropped');
    const rssAfter = process.memoryUsage().rss;
    expect(rssAfter).toBeLessThan(2 * 1024 ** 3);
    // Whatever it had received, the reader resumes from the last seq it saw and gets the rest once.
    raw.readAgain();
    await raw.closed(5000).catch(() => 0);
    const seen = raw.frames
      .filter((f) => f.ev === 'message')
      .map((f) => (f.data as { seq: number }).seq)
      .filter((s) => s > base);
    const lastSeen = seen.length ? seen[seen.length - 1]! : base;
    const again = await srv.client('slow-reader', { resume: { [room.id]: lastSeen } }, false);
    const rest = collect(again, room.id);
    await again.connect();
    const end = base + sent;
    await waitFor(() => (again.lastSeq.get(room.id) ?? 0) >= end, 15000, 'resume to the end');
    const all = [...seen, ...rest.map((m) => m.seq)];
    expect(all).toEqual(Array.from({ length: end - base }, (_, i) => base + 1 + i));
  });
});

describe('heartbeat pings', () => {
  it('are spread over the interval, not sent to every connection at once', async () => {
    const spread = await startServer({ limits: { heartbeatMs: 2000 } });
    onTestFinished(() => spread.close());
    const firstPing: number[] = [];
    const sockets = await Promise.all(Array.from({ length: 20 }, () => RawSocket.open(spread.wsUrl)));
    for (const s of sockets) s.ws.once('ping', () => firstPing.push(Date.now()));
    // Within two intervals every connection has been pinged once at least.
    await waitFor(() => firstPing.length === sockets.length, 8000, 'a ping to every connection');
    for (const s of sockets) s.close();
    // All at once, the twenty first pings would arrive within a few milliseconds of each other.
    expect(Math.max(...firstPing) - Math.min(...firstPing)).toBeGreaterThan(500);
  });
});
