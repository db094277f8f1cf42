// Search must not stall the node: a word found in every message of a big channel costs a
// search no more than a rare word, and searches draw on a per-user budget of their own.
// Checked from outside: while a stranger fires searches at a 30,000-message channel, another
// user's ping over the same node keeps answering quickly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, waitFor, type TestServer } from '../helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({});
});
afterAll(async () => {
  await srv?.close();
});

interface Reply {
  id: string;
  ok: boolean;
  data?: any;
  error?: { code: string };
}

async function connect(user: string, admin = false) {
  const ws = new WebSocket(srv.wsUrl);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const replies = new Map<string, Reply>();
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Reply;
    if (f.id !== undefined) replies.set(f.id, f);
  });
  let n = 0;
  const call = async (frame: Record<string, unknown>, timeoutMs = 30_000): Promise<Reply> => {
    const id = `c${n++}`;
    ws.send(JSON.stringify({ id, ...frame }));
    await waitFor(() => replies.has(id), timeoutMs, id);
    return replies.get(id)!;
  };
  expect((await call({ cmd: 'auth', token: await srv.token(user, { admin }) })).ok).toBe(true);
  return { ws, call };
}

describe('search under load', () => {
  it('a stranger firing searches for a common word in a 30,000-message channel does not stall others', async () => {
    const owner = await connect('owner');
    const room = (await owner.call({ cmd: 'create', kind: 'channel', name: 'haystack' })).data.id as string;
    const ops = await connect('ops', true);
    for (let i = 0; i < 300; i++) {
      const messages = Array.from({ length: 100 }, (_, j) => ({ text: `needle${j % 10} haystack number ${i * 100 + j} lorem ipsum` }));
      const r = await ops.call({ cmd: 'post', rooms: [room], messages });
      expect(r.ok).toBe(true);
    }
    // The index has caught up and the word is found, newest first.
    const first = await owner.call({ cmd: 'search', query: 'number', room, limit: 3 });
    expect(first.ok).toBe(true);
    expect(first.data.messages.map((m: { text: string }) => m.text)).toEqual(
      [29999, 29998, 29997].map((k) => `needle${k % 10} haystack number ${k} lorem ipsum`),
    );

    const stranger = await connect('stranger');
    const bystander = await connect('bystander');
    const searches = Array.from({ length: 12 }, () => stranger.call({ cmd: 'search', query: 'number', room, limit: 1 }));
    const t0 = Date.now();
    const ping = await bystander.call({ cmd: 'ping' });
    const pingMs = Date.now() - t0;
    const results = await Promise.all(searches);
    expect(ping.ok).toBe(true);
    expect(pingMs).toBeLessThan(1000);
    // The per-user search budget (10 at once by default) refuses the rest.
    const codes = results.map((r) => (r.ok ? 'ok' : r.error!.code));
    expect(codes.filter((c) => c === 'ok').length).toBe(10);
    expect(codes.filter((c) => c === 'rate_limited').length).toBe(2);
    for (const c of [owner, ops, stranger, bystander]) c.ws.close();
  }, 180_000);
});
