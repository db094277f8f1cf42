// Rooms owned by one node at a time, at the wire: three Parley node processes on PostgreSQL and
// Redis, raw WebSocket clients on every node writing into the same rooms. Each room's writes
// happen on its owner (the others forward them); whoever sends, a room's seqs are 1, 2, 3…
// with no gap and none given twice, and every acknowledged message is stored once, also when
// the owner is killed and its rooms move to the survivors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startDevCluster, type DevCluster } from '../tools/devservers/cluster.js';
import { validateConfig } from '../src/config.js';
import { mintToken } from '../src/auth/jwt.js';
import { Rendezvous, type NodeRef } from '../src/cluster/placement.js';
import type { Message } from '../src/protocol/schema.js';
import WebSocket from 'ws';
import { ParleyClient } from '../src/client/index.js';
import { RawSocket } from './helpers.js';
import { waitFor } from './wait.js';

const ENV = {
  PARLEY_PLUGINS_RATE_LIMIT_ENABLED: 'false',
  PARLEY_CLUSTER_HEARTBEAT_MS: '250',
  PARLEY_CLUSTER_NODE_TIMEOUT_MS: '1500',
  PARLEY_STORE_POSTGRES_STATEMENT_TIMEOUT_MS: '1500',
  PARLEY_BUS_REDIS_COMMAND_TIMEOUT_MS: '1000',
  PARLEY_CLUSTER_REBALANCE: 'false',
  PARLEY_LOG_LEVEL: 'warn',
};

let cluster: DevCluster;
const sockets: RawSocket[] = [];
let ids = 0;

beforeAll(async () => {
  cluster = await startDevCluster({ nodes: 3, env: ENV });
}, 120_000);
afterAll(async () => {
  for (const s of sockets) s.close();
  await cluster?.stop();
});

async function socket(node: number, user: string, admin = false, c: DevCluster = cluster): Promise<RawSocket> {
  const ws = await RawSocket.open(c.nodes[node]!.wsUrl);
  sockets.push(ws);
  const token = await mintToken(validateConfig({ auth: { secret: c.secret } }), user, { admin });
  const r = await ws.call({ id: `a${++ids}`, cmd: 'auth', token });
  expect(r.ok).toBe(true);
  return ws;
}

async function call(ws: RawSocket, frame: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const id = `c${++ids}`;
  ws.sendText(JSON.stringify({ ...frame, id }));
  return ws.reply(id, timeoutMs);
}

/** Sends with a key until acknowledged (a retry of a stored send answers with its seq); the seq. */
async function sendUntilAcked(ws: () => RawSocket, room: string, text: string, deadline: number): Promise<number> {
  for (;;) {
    const r = await call(ws(), { cmd: 'send', room, text, key: text }).catch(() => null);
    if (r?.ok) return (r.data as { seq: number }).seq;
    if (Date.now() > deadline) throw new Error(`${text} not acknowledged: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function history(ws: RawSocket, room: string): Promise<Message[]> {
  const out: Message[] = [];
  for (let after = 0; ;) {
    const r = await call(ws, { cmd: 'history', room, after, limit: 500 });
    const page = (r.data as { messages: Message[] }).messages;
    out.push(...page);
    if (page.length < 500) return out;
    after = page.at(-1)!.seq;
  }
}

/** The owning node of a room in the cluster's current view (as every node computes it). */
async function ownerOf(room: string, of: DevCluster = cluster): Promise<number> {
  const c = new pg.Client({ connectionString: of.postgres.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ nodes: NodeRef[] }>('SELECT nodes FROM cluster_state WHERE id = 1');
    const owner = new Rendezvous(rows[0]!.nodes).owner(room)!;
    return of.nodes.findIndex((n) => owner.url.endsWith(`:${n.port}`));
  } finally {
    await c.end();
  }
}

function checkRoom(messages: Message[], acked: Map<string, number>): void {
  // Seqs 1..last, each once.
  expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: messages.length }, (_, i) => i + 1));
  const texts = messages.filter((m) => m.kind === 'text').map((m) => m.text!);
  // Every acknowledged message is stored once, at the seq its sender was told.
  expect(new Set(texts).size).toBe(texts.length);
  const bySeq = new Map(messages.map((m) => [m.seq, m.text]));
  for (const [text, seq] of acked) expect(bySeq.get(seq), text).toBe(text);
}

describe('cluster: each room written by its owning node', () => {
  it('clients on every node writing into the same rooms: gapless seqs, none given twice, every acknowledged message stored once', async () => {
    const admin = await socket(0, 'own-admin', true);
    const rooms = ['hot-a', 'hot-b', 'hot-c', 'hot-d'];
    for (const room of rooms) expect((await call(admin, { cmd: 'create', kind: 'channel', name: room, room })).ok).toBe(true);
    const writers = await Promise.all([0, 1, 2].map((n) => socket(n, `own-w${n}`)));
    for (const [n, ws] of writers.entries()) {
      for (const room of rooms) expect((await call(ws, { cmd: 'join', room })).ok, `w${n} joins ${room}`).toBe(true);
    }
    const acked = new Map<string, Map<string, number>>(rooms.map((r) => [r, new Map()]));
    // Each connection keeps 4 × 10 sends in flight (below limits.maxInFlight), every room at once.
    await Promise.all(
      writers.flatMap((ws, n) =>
        rooms.map(async (room) => {
          for (let chunk = 0; chunk < 4; chunk++) {
            await Promise.all(
              Array.from({ length: 10 }, async (_, j) => {
                const text = `${room}/w${n}/${chunk * 10 + j}`;
                const r = await call(ws, { cmd: 'send', room, text, key: text });
                expect(r.ok, JSON.stringify(r)).toBe(true);
                acked.get(room)!.set(text, (r.data as { seq: number }).seq);
              }),
            );
          }
        }),
      ),
    );
    for (const room of rooms) {
      const messages = await history(admin, room);
      checkRoom(messages, acked.get(room)!);
      expect(messages.filter((m) => m.kind === 'text')).toHaveLength(120);
    }
  }, 60_000);

  it("killing a room's owner: sends go on through the other nodes once the room moved, nothing lost or stored twice; the SDK's send rides through", async () => {
    const room = 'moving';
    const admin = await socket(0, 'mv-admin', true);
    expect((await call(admin, { cmd: 'create', kind: 'channel', name: room, room })).ok).toBe(true);
    const owner = await ownerOf(room);
    const others = [0, 1, 2].filter((n) => n !== owner);
    const writers = await Promise.all(others.map((n) => socket(n, `mv-w${n}`)));
    for (const ws of writers) expect((await call(ws, { cmd: 'join', room })).ok).toBe(true);
    const reader = writers[0]!;
    // An SDK client with the default options: its send made as the owner dies is refused
    // `unavailable` (nothing stored) until the room moves, and sent again meanwhile.
    const token = await mintToken(validateConfig({ auth: { secret: cluster.secret } }), 'mv-sdk');
    const sdk = new ParleyClient({ url: cluster.nodes[others[1]!]!.url, token, WebSocket: WebSocket as never });
    await sdk.connect();
    await sdk.join(room);
    let sdkSend: Promise<{ seq: number }> | undefined;
    const acked = new Map<string, number>();
    const deadline = Date.now() + 30_000;
    let killed = false;
    const sends = writers.map(async (ws, w) => {
      for (let i = 0; i < 60; i++) {
        const text = `mv/w${w}/${i}`;
        acked.set(text, await sendUntilAcked(() => ws, room, text, deadline));
        if (w === 0 && i === 15 && !killed) {
          killed = true;
          void cluster.nodes[owner]!.kill();
          sdkSend = sdk.send(room, 'mv/sdk');
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    });
    await Promise.all(sends);
    expect(killed).toBe(true);
    acked.set('mv/sdk', (await sdkSend!).seq);
    sdk.close();
    expect(await ownerOf(room)).not.toBe(owner);
    const messages = await history(reader, room);
    checkRoom(messages, acked);
    expect(messages.filter((m) => m.kind === 'text')).toHaveLength(121);
    await cluster.nodes[owner]!.start();
  }, 90_000);
});

describe('cluster: an owner that dies between its commit and its publication', () => {
  /**
   * A room whose owner has its state loaded, members on the two other nodes, and a writer on
   * `writerOnOwner` ? the owner : the first member's node. The writer sends `text` (keyed) while
   * PostgreSQL is frozen; the owner is killed before the answer comes; the database, woken,
   * commits what it had received.
   */
  async function killedAfterCommit(room: string, text: string, writerOnOwner: boolean) {
    const admin = await socket(0, `${room}-admin`, true);
    expect((await call(admin, { cmd: 'create', kind: 'channel', name: room, room })).ok).toBe(true);
    const owner = await ownerOf(room);
    const others = [0, 1, 2].filter((n) => n !== owner);
    const members = await Promise.all(others.map((n, i) => socket(n, `${room}-m${i}`)));
    const writer = writerOnOwner ? await socket(owner, `${room}-w`) : members[0]!;
    for (const ws of new Set([...members, writer])) expect((await call(ws, { cmd: 'join', room })).ok).toBe(true);
    const texts = (ws: RawSocket) => ws.frames.filter((f) => f.ev === 'message' && (f.data as Message).room === room).map((f) => (f.data as Message).text);
    // The owner has the room's state: the next send is one commit, no read first.
    await sendUntilAcked(() => writer, room, `${text}-first`, Date.now() + 10_000);
    for (const ws of members) await waitFor(() => texts(ws).includes(`${text}-first`), 5000, 'the first message');
    const wake = cluster.postgres.freeze();
    let reply: Promise<Record<string, unknown> | null>;
    try {
      reply = call(writer, { cmd: 'send', room, text, key: text }, 20_000).catch(() => null);
      await new Promise((r) => setTimeout(r, 500));
      await cluster.nodes[owner]!.kill();
    } finally {
      wake();
    }
    return { owner, members, writer, texts, reply: reply! };
  }

  it('the node that handed it over has the room compared with the store: the members get it without a resend or a next message', async () => {
    const { owner, members, texts, reply } = await killedAfterCommit('lost-answer', 'la-lost', false);
    try {
      const r = (await reply) as { ok: boolean; error?: { code: string; details?: Record<string, unknown> } };
      expect(r.ok).toBe(false);
      expect(r.error).toMatchObject({ code: 'unavailable', details: { outcome: 'unknown' } });
      for (const ws of members) await waitFor(() => texts(ws).includes('la-lost'), 10_000, 'the stored message');
      // Sent again with its key once the room moved: answered with the seq it was stored at.
      const seq = await sendUntilAcked(() => members[0]!, 'lost-answer', 'la-lost', Date.now() + 30_000);
      expect((await history(members[0]!, 'lost-answer')).filter((m) => m.text === 'la-lost').map((m) => m.seq)).toEqual([seq]);
      await new Promise((r) => setTimeout(r, 300));
      for (const ws of members) expect(texts(ws).filter((t) => t === 'la-lost')).toHaveLength(1);
    } finally {
      await cluster.nodes[owner]!.start();
    }
  }, 90_000);

  it('its sender, cut off with it, sends it again through another node: answered as a duplicate, and the members get it without a next message', async () => {
    const { owner, members, writer, texts } = await killedAfterCommit('lost-sender', 'ls-lost', true);
    try {
      // No answer: the connection went down with its node.
      await writer.closed(5000);
      const again = await socket(owner === 0 ? 1 : 0, 'lost-sender-w');
      const seq = await sendUntilAcked(() => again, 'lost-sender', 'ls-lost', Date.now() + 30_000);
      expect((await history(again, 'lost-sender')).filter((m) => m.text === 'ls-lost').map((m) => m.seq)).toEqual([seq]);
      for (const ws of members) await waitFor(() => texts(ws).includes('ls-lost'), 10_000, 'the stored message');
      await new Promise((r) => setTimeout(r, 300));
      for (const ws of members) expect(texts(ws).filter((t) => t === 'ls-lost')).toHaveLength(1);
    } finally {
      await cluster.nodes[owner]!.start();
    }
  }, 90_000);
});

describe('cluster: a forwarded write whose owner does not answer in time', () => {
  // The owner stays the owner: it is silent for less than the node timeout.
  let slow: DevCluster;
  const clients: ParleyClient[] = [];
  beforeAll(async () => {
    slow = await startDevCluster({ nodes: 2, env: { ...ENV, PARLEY_CLUSTER_NODE_TIMEOUT_MS: '20000' } });
  }, 120_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await slow?.stop();
  });

  it('is answered `unavailable` with its outcome unknown, not "nothing stored"; sent again with its key it is stored once, and the SDK does that by itself', async () => {
    const admin = await socket(0, 'fw-admin', true, slow);
    let room = '';
    for (let i = 0; !room; i++) {
      expect(i).toBeLessThan(50);
      const id = `frozen-owner-${i}`;
      expect((await call(admin, { cmd: 'create', kind: 'channel', name: id, room: id })).ok).toBe(true);
      if ((await ownerOf(id, slow)) === 1) room = id;
    }
    const writer = await socket(0, 'fw-raw', false, slow);
    expect((await call(writer, { cmd: 'join', room })).ok).toBe(true);
    const sdk = new ParleyClient({
      url: slow.nodes[0]!.url,
      token: await mintToken(validateConfig({ auth: { secret: slow.secret } }), 'fw-sdk'),
      WebSocket: WebSocket as never,
      requestTimeoutMs: 30_000,
    });
    clients.push(sdk);
    await sdk.connect();
    await sdk.join(room);
    const pid = slow.nodes[1]!.process!.pid!;
    process.kill(pid, 'SIGSTOP');
    let sdkSend: Promise<{ seq: number }>;
    try {
      sdkSend = sdk.send(room, 'through the sdk');
      sdkSend.catch(() => {});
      // The entry node waits for the owner up to its forwarding timeout (5 s), then answers.
      const r = (await call(writer, { cmd: 'send', room, text: 'raw', key: 'raw' }, 15_000)) as {
        ok: boolean;
        error?: { code: string; details?: Record<string, unknown> };
      };
      expect(r.ok).toBe(false);
      expect(r.error?.code).toBe('unavailable');
      expect(r.error?.details).toEqual({ outcome: 'unknown' });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The owner took the first copy before it froze, and stores it once it wakes: the same key
    // sent again is answered with the seq it was stored at.
    const seq = await sendUntilAcked(() => writer, room, 'raw', Date.now() + 30_000);
    expect(seq).toBeGreaterThan(0);
    const { seq: sdkSeq } = await sdkSend;
    const texts = (await history(writer, room)).filter((m) => m.kind === 'text').map((m) => [m.seq, m.text]);
    expect(texts.filter(([, t]) => t === 'raw')).toHaveLength(1);
    expect(texts.filter(([, t]) => t === 'through the sdk')).toEqual([[sdkSeq, 'through the sdk']]);
  }, 90_000);
});
