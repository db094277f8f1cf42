// "A send is acknowledged only after the message is durably stored", checked from outside:
// at the moment each `send` reply arrives on the wire, a second SQLite connection on the
// node's database file must already see the message. Commits are spaced (commitIntervalMs)
// and many sends are in flight, so an ack sent before its commit would be seen early.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startServer, waitFor, type TestServer } from '../helpers.js';

let srv: TestServer;
beforeAll(async () => {
  // Each sender has up to its 100 sends in flight: on a loaded machine more than the default
  // 64 await their commit, and one more closes the connection (4008) before its replies come.
  srv = await startServer({ store: { sqlite: { commitIntervalMs: 50 } }, plugins: { rateLimit: { enabled: false } }, limits: { maxInFlight: 200 } });
});
afterAll(async () => {
  await srv?.close();
});

interface Reply {
  id: string;
  ok: boolean;
  data?: any;
  error?: unknown;
}

/** A raw WebSocket client that runs `onReply` synchronously as each reply frame arrives. */
async function connect(user: string, onReply: (f: Reply) => void = () => {}) {
  const ws = new WebSocket(srv.wsUrl);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const replies = new Map<string, Reply>();
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Reply;
    if (f.id === undefined) return;
    replies.set(f.id, f);
    onReply(f);
  });
  const call = async (id: string, frame: Record<string, unknown>): Promise<Reply> => {
    ws.send(JSON.stringify({ id, ...frame }));
    await waitFor(() => replies.has(id), 5000, id);
    return replies.get(id)!;
  };
  expect((await call('auth', { cmd: 'auth', token: await srv.token(user) })).ok).toBe(true);
  return { ws, call };
}

describe('acknowledgement after commit', () => {
  it('when a send reply arrives, a second database connection already reads the message', async () => {
    const db = new Database(join(srv.dataDir, 'parley.db'), { readonly: true, fileMustExist: true });
    const read = db.prepare('SELECT text FROM messages WHERE room_id = ? AND seq = ?').pluck();
    const texts = new Map<string, string>();
    const checked: Array<{ id: string; seq: number; stored: unknown; expected: string }> = [];
    let room = '';
    const onReply = (f: { id: string; ok: boolean; data?: { seq: number; id?: string } }): void => {
      const expected = texts.get(f.id);
      if (expected === undefined) return;
      expect(f.ok, JSON.stringify(f)).toBe(true);
      // Read at once, before anything else runs: what a crash right now would leave.
      checked.push({ id: f.id, seq: f.data!.seq, stored: read.get(room, f.data!.seq), expected });
    };
    const senders = await Promise.all(['ack-a', 'ack-b', 'ack-c'].map((u) => connect(u, onReply)));
    const setup = await connect('ack-owner');
    room = (await setup.call('c', { cmd: 'create', kind: 'channel', name: 'acks' })).data.id;
    for (const s of senders) expect((await s.call('join', { cmd: 'join', room })).ok).toBe(true);
    // Bursts from three connections: several writes per commit, commits 50 ms apart.
    const total = 3 * 5 * 20;
    let n = 0;
    for (let burst = 0; burst < 5; burst++) {
      for (let k = 0; k < 20; k++) {
        for (const { ws } of senders) {
          const id = `s${n++}`;
          texts.set(id, `message ${id}`);
          ws.send(JSON.stringify({ id, cmd: 'send', room, text: `message ${id}` }));
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => checked.length === total, 15000, 'every reply');
    const early = checked.filter((c) => c.stored !== c.expected);
    expect(early, `${early.length} of ${total} replies came before their message was readable`).toEqual([]);
    for (const { ws } of [...senders, setup]) ws.close();
    db.close();
  });
});
