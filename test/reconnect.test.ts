import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';

let srv: TestServer;
// Streams from one user far above the default rate limit: it is off here.
beforeAll(async () => {
  srv = await startServer({ plugins: { rateLimit: { enabled: false } } });
});
afterAll(async () => {
  await srv.close();
});

describe('reconnect and resume', () => {
  it('a client whose socket is cut mid-stream reconnects and receives exactly what it missed', async () => {
    const sender = await srv.client('rc-sender');
    const reader = await srv.client('rc-reader', { reconnectMinMs: 50, reconnectMaxMs: 200 });
    const room = await sender.createRoom('channel', 'Stream');
    await reader.join(room.id);
    const base = (await sender.history(room.id)).last;
    const got = collect(reader, room.id);
    const states: string[] = [];
    reader.on('state', (s) => states.push(s.state));

    const total = 300;
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < total; i++) {
      sends.push(sender.send(room.id, `m${i}`));
      if (i === 100) reader.dropConnection();
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(sends);
    await waitFor(() => got.filter((m) => m.seq > base).length >= total, 15000, 'all messages after reconnect');
    await new Promise((r) => setTimeout(r, 100));
    const seqs = got.filter((m) => m.seq > base).map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => base + 1 + i));
    expect(states).toContain('reconnecting');
    expect(reader.state).toBe('online');
  });

  it('reconnectNow cuts a long backoff short once the application knows the server is there', async () => {
    const c = await srv.client('rc-now', { reconnectMinMs: 20_000, reconnectMaxMs: 20_000 });
    c.dropConnection();
    await waitFor(() => c.state === 'reconnecting', 2000, 'reconnecting');
    c.reconnectNow();
    const t0 = Date.now();
    await waitFor(() => c.state === 'online', 3000, 'online at once');
    expect(Date.now() - t0).toBeLessThan(3000);
    c.reconnectNow(); // online: nothing to cut short
    expect(c.state).toBe('online');
  });

  it('resuming on auth replays exactly the gap, then continues live', async () => {
    const a = await srv.client('rs-a');
    const room = await a.createRoom('group', 'Resume');
    for (let i = 0; i < 10; i++) await a.send(room.id, `old${i}`);
    const last = (await a.history(room.id)).last;
    const raw = await RawSocket.open(srv.wsUrl);
    const auth = await raw.call({ id: 1, cmd: 'auth', token: await srv.token('rs-a'), resume: { [room.id]: last - 4 } });
    expect(auth.ok).toBe(true);
    await a.send(room.id, 'live');
    await waitFor(() => raw.frames.filter((f) => f.ev === 'message').length >= 5);
    await new Promise((r) => setTimeout(r, 50));
    const seqs = raw.frames.filter((f) => f.ev === 'message').map((f) => (f.data as { seq: number }).seq);
    expect(seqs).toEqual([last - 3, last - 2, last - 1, last, last + 1]);
    raw.close();
  });

  it('a resend with the same key after a lost reply returns the original seq and stores nothing new', async () => {
    const a = await srv.client('idem-a');
    const room = await a.createRoom('group', 'Idem');
    const first = await a.send(room.id, 'once', { key: 'k-1' });
    const again = await a.send(room.id, 'once', { key: 'k-1' });
    expect(again).toMatchObject({ seq: first.seq, duplicate: true });
    const h = await a.history(room.id);
    expect(h.messages.filter((m) => m.text === 'once')).toHaveLength(1);
    expect(h.last).toBe(first.seq);
  });

  it('sends made while offline are queued and go out once, in order', async () => {
    const a = await srv.client('off-a', { reconnectMinMs: 100, reconnectMaxMs: 200 });
    const room = await a.createRoom('group', 'Offline');
    a.dropConnection();
    await waitFor(() => a.state === 'reconnecting');
    const acks = await Promise.all([a.send(room.id, 'q1'), a.send(room.id, 'q2'), a.send(room.id, 'q3')]);
    expect(acks.map((x) => x.seq)).toEqual([acks[0].seq, acks[0].seq + 1, acks[0].seq + 2]);
    const h = await a.history(room.id);
    expect(h.messages.filter((m) => m.kind === 'text').map((m) => m.text)).toEqual(['q1', 'q2', 'q3']);
  });

  it('a user invited while its client was offline gets the room from its join message on reconnect', async () => {
    const a = await srv.client('io-a');
    const b = await srv.client('io-b', { reconnectMinMs: 300, reconnectMaxMs: 400 });
    const got = collect(b);
    const room = await a.createRoom('group', 'While offline');
    b.dropConnection();
    await waitFor(() => b.state === 'reconnecting');
    await a.invite(room.id, 'io-b');
    await a.send(room.id, 'you missed this');
    await waitFor(() => got.some((m) => m.room === room.id && m.text === 'you missed this'), 5000, 'replay after reconnect');
    expect(got.filter((m) => m.room === room.id).map((m) => m.kind)).toEqual(['join', 'text']);
  });
});
