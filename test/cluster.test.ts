// Cluster mode end to end: real PostgreSQL and redis-server in a temporary folder, three Parley
// node processes, SDK clients spread across them. Nodes are killed, Redis restarted and
// PostgreSQL stopped under load; every client must still see every message exactly once, in
// seq order, and nothing acknowledged may be lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { startDevCluster, type DevCluster } from '../tools/devservers/cluster.js';
import { validateConfig } from '../src/config.js';
import { mintToken } from '../src/auth/jwt.js';
import { ClientError, ParleyClient } from '../src/client/index.js';
import type { Message } from '../src/protocol/schema.js';
import { RawSocket, collect, startServer, tempDir, type TestServer } from './helpers.js';
import { Chat21Peer } from './mqtt-helpers.js';
import { waitFor } from './wait.js';
import { authHeaders } from '../src/cluster/forward.js';

// The nodes carry bursts from one user far above the default rate limit: it is off here.
const TIMEOUTS = {
  PARLEY_PLUGINS_RATE_LIMIT_ENABLED: 'false',
  PARLEY_MQTT_ENABLED: 'true',
  PARLEY_MQTT_PORT: '0',
  PARLEY_CLUSTER_HEARTBEAT_MS: '250',
  PARLEY_CLUSTER_NODE_TIMEOUT_MS: '1500',
  PARLEY_STORE_POSTGRES_STATEMENT_TIMEOUT_MS: '1500',
  PARLEY_BUS_REDIS_COMMAND_TIMEOUT_MS: '1000',
  PARLEY_LIMITS_AUTH_TIMEOUT_MS: '2000',
  // The tests place their clients on chosen nodes: no node asks them to move.
  PARLEY_CLUSTER_REBALANCE: 'false',
  PARLEY_LOG_LEVEL: 'warn',
};

let cluster: DevCluster;
const clients: ParleyClient[] = [];
const token = (user: string, admin = false) => mintToken(validateConfig({ auth: { secret: cluster.secret } }), user, { admin });

/** A client on node `i` (or on whichever node `url` names at each connect). */
async function client(user: string, at: number | (() => string), opts: { admin?: boolean; retryUnavailableMs?: number } = {}): Promise<ParleyClient> {
  const c = new ParleyClient({
    url: typeof at === 'number' ? cluster.nodes[at]!.url : at,
    token: await token(user, opts.admin),
    WebSocket: WebSocket as never,
    reconnectMinMs: 50,
    reconnectMaxMs: 300,
    requestTimeoutMs: 15_000,
    ...(opts.retryUnavailableMs === undefined ? {} : { retryUnavailableMs: opts.retryUnavailableMs }),
  });
  clients.push(c);
  await c.connect();
  return c;
}

/**
 * Sends `prefix0`, `prefix1`… every `everyMs` until stopped; each acknowledged send's seq goes
 * into `acked` and its text into `texts`. Failed sends are not counted (nothing was promised).
 */
function steadySends(c: ParleyClient, room: string, prefix: string, everyMs: number, acked: number[], texts: string[] = []) {
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await c.send(room, `${prefix}${i}`).catch(() => null);
      if (r) {
        acked.push(r.seq);
        texts.push(`${prefix}${i}`);
      }
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    stop: () => {
      stop = true;
      return done;
    },
  };
}

/** The seqs a client received in the room, after `from`. */
const seqsAfter = (got: Message[], from: number) => got.filter((m) => m.seq > from).map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeAll(async () => {
  cluster = await startDevCluster({ nodes: 3, env: TIMEOUTS });
}, 120_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
}, 60_000);

describe('cluster: three nodes on PostgreSQL and Redis', () => {
  it('every client on every node receives every message exactly once in seq order, with concurrent senders on all nodes', async () => {
    const owner = await client('fan-owner', 0);
    const room = await owner.createRoom('channel', 'Fan-out');
    // Readers are raw sockets (the SDK would hide a duplicate or ask for a gap itself).
    const readers: RawSocket[] = [];
    for (let i = 0; i < 9; i++) {
      const raw = await RawSocket.open(cluster.nodes[i % 3]!.wsUrl);
      expect((await raw.call({ id: 1, cmd: 'auth', token: await token(`fan-${i}`) })).ok).toBe(true);
      expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
      readers.push(raw);
    }
    const senders: ParleyClient[] = [];
    for (let k = 0; k < 3; k++) {
      const c = await client(`fan-sender-${k}`, k);
      await c.join(room.id);
      senders.push(c);
    }
    const base = (await owner.history(room.id)).last;
    const received = (r: RawSocket) =>
      r.frames
        .filter((f) => f.ev === 'message')
        .map((f) => f.data as Message)
        .filter((m) => m.room === room.id && m.seq > base);
    const perSender = 60;
    const acks = await Promise.all(
      senders.map(async (s, k) => {
        const out: number[] = [];
        for (let i = 0; i < perSender; i++) out.push((await s.send(room.id, `n${k}-${i}`)).seq);
        return out;
      }),
    );
    const last = base + perSender * 3;
    expect(acks.flat().sort((a, b) => a - b)).toEqual(range(base + 1, last));
    for (const r of readers) await waitFor(() => received(r).length >= perSender * 3, 15_000, 'all deliveries');
    await new Promise((r) => setTimeout(r, 200));
    for (const r of readers) {
      const got = received(r);
      expect(got.map((m) => m.seq)).toEqual(range(base + 1, last));
      // Each sender's messages keep their order.
      for (let k = 0; k < 3; k++)
        expect(got.filter((m) => m.text?.startsWith(`n${k}-`)).map((m) => m.text)).toEqual(range(0, perSender - 1).map((i) => `n${k}-${i}`));
      r.close();
    }
  });

  it('the MQTT endpoint runs on every node: a Chat21 client on one node reaches a Chat21 client and a WebSocket client of the same user on others', async () => {
    const mqttUrl = (i: number) => `${cluster.nodes[i]!.url.replace('http', 'ws')}/mqtt`;
    const alice = await Chat21Peer.connect(mqttUrl(0), 'mq-alice', await token('mq-alice'));
    const bob = await Chat21Peer.connect(mqttUrl(2), 'mq-bob', await token('mq-bob'));
    const bobWs = await client('mq-bob', 1);
    const bobGot = collect(bobWs);
    await alice.send('mq-bob', 'hello across nodes');
    const m = await bob.waitAdded((x) => x.text === 'hello across nodes', 'direct message from node 0');
    expect(m).toMatchObject({ sender: 'mq-alice', recipient: 'mq-bob' });
    await waitFor(() => bobGot.some((x) => x.text === 'hello across nodes'), 5000, 'the WebSocket copy on node 1');
    // And back: the WebSocket client answers, the MQTT client on node 0 receives it.
    const room = bobGot.find((x) => x.text === 'hello across nodes')!.room;
    await bobWs.send(room, 'hello from the web');
    await alice.waitAdded((x) => x.text === 'hello from the web', 'reply from node 1');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a group deleted and created again under its id shows its new name to Chat21 clients on every node', async () => {
    const owner = await client('gn-owner', 0);
    // One Chat21 client on each node: whichever node owns the room, the other two only read.
    const peers = await Promise.all(
      [0, 1, 2].map(async (i) => Chat21Peer.connect(`${cluster.nodes[i]!.url.replace('http', 'ws')}/mqtt`, `gn-${i}`, await token(`gn-${i}`))),
    );
    const id = 'group-gn-reused';
    await owner.createRoom('group', 'first name', { room: id });
    for (const p of peers) await owner.invite(id, p.user);
    await owner.send(id, 'under the first name');
    for (const p of peers) expect(await p.waitAdded((x) => x.text === 'under the first name')).toMatchObject({ recipient_fullname: 'first name' });

    // Every node read the name to show that message. The room goes; another takes its id.
    await owner.request('destroy', { room: id });
    await owner.createRoom('group', 'second name', { room: id });
    for (const p of peers) await owner.invite(id, p.user);
    await owner.send(id, 'under the second name');
    for (const p of peers) expect(await p.waitAdded((x) => x.text === 'under the second name')).toMatchObject({ recipient_fullname: 'second name' });
    await Promise.all(peers.map((p) => p.close()));
  });

  it('a ban or an access-list change made through node A evicts the user on node C at once', async () => {
    const admin = await client('ev-admin', 0, { admin: true });
    const room = await admin.createRoom('channel', 'Evict');
    const victim = await client('ev-victim', 2);
    const listed = await client('ev-listed', 2);
    await victim.join(room.id);
    await listed.join(room.id);
    const adminGot = collect(admin, room.id);
    const listedGot = collect(listed, room.id);
    const removals: Array<{ room: string; reason?: string }> = [];
    listed.on('room', (r) => {
      if (r.member === null) removals.push(r);
    });

    // Blacklisting through node 0 removes the member on node 2 at once: its connection gets its
    // own leave message, then is told it left (the room event, on the user's own topic, which
    // may overtake the room's: the leave is read from the store if need be), and the room's
    // members see the leave.
    const t0 = Date.now();
    const res = await admin.request('access', { room: room.id, list: 'black', add: ['ev-listed'] });
    expect(res.removed).toEqual(['ev-listed']);
    await waitFor(() => removals.some((r) => r.room === room.id), 2000, 'removal told on node 2');
    expect(removals.find((r) => r.room === room.id)!.reason).toBe('access');
    expect(listedGot.filter((m) => m.kind === 'leave' && m.user === 'ev-listed')).toHaveLength(1);
    await waitFor(() => adminGot.some((m) => m.kind === 'leave' && m.user === 'ev-listed'), 2000, 'leave seen by the members');
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(listed.send(room.id, 'still here?')).rejects.toMatchObject({ code: 'forbidden' });

    // A server-wide ban through node 0 closes the connection on node 2.
    const raw = await RawSocket.open(cluster.nodes[2]!.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await token('ev-victim') })).ok).toBe(true);
    const t1 = Date.now();
    await admin.ban('ev-victim', { reason: 'spam' });
    await waitFor(() => raw.closeCode !== null, 2000, 'banned connection closed');
    expect(raw.closeCode).toBe(4003);
    expect(Date.now() - t1).toBeLessThan(2000);
  });

  it('a node frozen past its timeout is reaped, and when it wakes its users are announced online again', async () => {
    const watcher = await client('fz-watcher', 0);
    const room = await watcher.createRoom('channel', 'Freeze');
    const sleeper = await client('fz-user', 2);
    await sleeper.join(room.id);
    const events: boolean[] = [];
    watcher.on('presence', (p) => {
      if (p.room === room.id && p.user === 'fz-user') events.push(p.online);
    });
    expect((await watcher.presence(room.id)).users).toContain('fz-user');
    const pid = cluster.nodes[2]!.process!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await waitFor(() => events.includes(false), 10_000, 'offline once the frozen node is reaped');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(() => events.at(-1) === true, 10_000, 'online again once the node wakes');
    expect((await watcher.presence(room.id)).users).toContain('fz-user');
    expect(sleeper.state).toBe('online');
  }, 40_000);

  it('mentions notify, replies quote and pins reach members on other nodes', async () => {
    const owner = await client('rich-owner', 0);
    const member = await client('rich-member', 1);
    const room = await owner.createRoom('group', 'Rich');
    await owner.invite(room.id, 'rich-member');
    // A raw connection of the member on a third node, which follows no room it was told about.
    const raw = await RawSocket.open(cluster.nodes[2]!.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await token('rich-member') })).ok).toBe(true);
    const got = collect(member, room.id);
    const asked = await owner.send(room.id, 'hello @rich-member');
    await waitFor(() => raw.frames.some((f) => f.ev === 'notify'), 5000, 'notify on node 2');
    expect(raw.frames.find((f) => f.ev === 'notify')!.data).toMatchObject({ room: room.id, seq: asked.seq, user: 'rich-owner', reason: 'mention' });
    const reply = await member.send(room.id, 'hi', { replyTo: asked.seq });
    await expect(member.send(room.id, 'nope', { replyTo: reply.seq + 100 })).rejects.toMatchObject({ code: 'not_found' });
    await waitFor(() => got.some((m) => m.seq === reply.seq), 5000, 'the reply');
    expect(got.find((m) => m.seq === reply.seq)).toMatchObject({ replyTo: asked.seq, quote: { user: 'rich-owner', text: 'hello @rich-member' } });
    await expect(member.pin(room.id, asked.seq)).rejects.toMatchObject({ code: 'forbidden' });
    await owner.pin(room.id, asked.seq);
    await waitFor(() => raw.frames.some((f) => f.ev === 'pin'), 5000, 'pin event on node 2');
    expect(raw.frames.find((f) => f.ev === 'pin')!.data).toEqual({ room: room.id, seq: asked.seq, pinned: true, by: 'rich-owner' });
    expect((await member.pins(room.id)).pins.map((p) => p.seq)).toEqual([asked.seq]);
    raw.close();
  });

  it("a thread started on one node: replies from the others, summaries and the thread's history reach members on every node", async () => {
    const owner = await client('thread-owner', 0);
    const member = await client('thread-member', 1);
    const room = await owner.createRoom('group', 'Threads');
    await owner.invite(room.id, 'thread-member');
    await owner.invite(room.id, 'thread-third');
    // A raw reader on the third node: every seq once, in order, thread replies included.
    const raw = await RawSocket.open(cluster.nodes[2]!.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await token('thread-third') })).ok).toBe(true);
    const root = await owner.send(room.id, 'a thread');
    const r1 = await member.send(room.id, 'reply from node 1', { thread: root.seq });
    const r2 = await owner.send(room.id, 'reply from node 0', { thread: root.seq, alsoToRoom: true });
    await expect(member.send(room.id, 'nested', { thread: r1.seq })).rejects.toMatchObject({ code: 'invalid' });
    const r3 = (await raw.call({ id: 2, cmd: 'send', room: room.id, text: 'reply from node 2', thread: root.seq })).data as { seq: number };
    await waitFor(() => raw.frames.filter((f) => f.ev === 'thread').length === 3, 5000, 'three summaries on node 2');
    const seqs = raw.frames.filter((f) => f.ev === 'message' && (f.data as Message).room === room.id).map((f) => (f.data as Message).seq);
    expect(seqs).toEqual([root.seq, r1.seq, r2.seq, r3.seq]);
    const last = raw.frames.filter((f) => f.ev === 'thread').at(-1)!.data as { seq: number; summary: { count: number; users: string[] } };
    expect(last).toMatchObject({ seq: root.seq, summary: { count: 3, users: ['thread-member', 'thread-owner', 'thread-third'] } });
    // Every node reads the thread and the main timeline the same way.
    for (const i of [0, 1, 2]) {
      const res = await fetch(`${cluster.nodes[i]!.url}/api/v1/rooms/${room.id}/messages?thread=${root.seq}`, {
        headers: { authorization: `Bearer ${await token('thread-member')}` },
      });
      const body = (await res.json()) as { messages: Message[]; root: Message };
      expect(body.messages.map((m) => m.seq)).toEqual([r1.seq, r2.seq, r3.seq]);
      expect(body.root.summary).toMatchObject({ count: 3 });
    }
    const main = await member.history(room.id, { after: root.seq - 1 });
    expect(main.messages.map((m) => m.seq)).toEqual([root.seq, r2.seq]);
    raw.close();
  });

  it('a file uploaded through node A, sent in a message through node B, is read by a member on node C', async () => {
    const sender = await client('file-sender', 1);
    const room = await sender.createRoom('group', 'Files');
    await sender.invite(room.id, 'file-reader');
    const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(200_000, 7)]);
    const up = await fetch(`${cluster.nodes[0]!.url}/api/v1/rooms/${room.id}/attachments`, {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { authorization: `Bearer ${await token('file-sender')}`, 'content-type': 'application/pdf', 'x-filename': 'cluster.pdf' },
    });
    expect(up.status).toBe(201);
    const id = ((await up.json()) as { id: string }).id;
    const raw = await RawSocket.open(cluster.nodes[2]!.wsUrl);
    expect((await raw.call({ id: 1, cmd: 'auth', token: await token('file-reader') })).ok).toBe(true);
    const sent = await sender.send(room.id, 'the report', { attachments: [id] });
    await waitFor(() => raw.frames.some((f) => f.ev === 'message' && (f.data as Message).seq === sent.seq), 5000, 'the message on node 2');
    const m = raw.frames.find((f) => f.ev === 'message' && (f.data as Message).seq === sent.seq)!.data as Message;
    expect(m.data).toMatchObject({ attachments: [{ id, name: 'cluster.pdf', size: bytes.length, type: 'application/pdf' }] });
    const file = await fetch(`${cluster.nodes[2]!.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${await token('file-reader')}` } });
    expect(file.status).toBe(200);
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
    // Not for a user who is no member, on any node.
    const other = await fetch(`${cluster.nodes[2]!.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${await token('file-outsider')}` } });
    expect(other.status).toBe(403);
    raw.close();
  });

  it('with PostgreSQL unreachable, sends are refused unavailable (never acknowledged) or held by the SDK, presence still answers, and service resumes by itself', async () => {
    // a takes a refusal as final; c keeps the SDK's default and sends again while it lasts.
    const a = await client('pg-a', 0, { retryUnavailableMs: 0 });
    const c = await client('pg-c', 1);
    const b = await client('pg-b', 1);
    const room = await a.createRoom('group', 'PG down');
    const bGot = collect(b, room.id);
    await a.invite(room.id, 'pg-b');
    await a.invite(room.id, 'pg-c');
    await waitFor(() => bGot.some((m) => m.kind === 'join' && m.user === 'pg-c'), 5000, 'b follows the room');
    expect((await b.presence(room.id)).users.sort()).toEqual(['pg-a', 'pg-b', 'pg-c']);
    const typing: Array<{ user: string; active: boolean }> = [];
    b.on('typing', (t) => typing.push(t));
    await c.typing(room.id, true);
    await waitFor(() => typing.some((t) => t.user === 'pg-c' && t.active), 5000, 'typing before the outage');
    let late: ParleyClient | undefined;
    let lateOnline: Promise<void>;
    let held: Promise<{ seq: number }> | undefined;
    await cluster.postgres.stop();
    try {
      held = c.send(room.id, 'held through the outage');
      held.catch(() => {});
      const t0 = Date.now();
      const err = await a.send(room.id, 'lost in the void').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('unavailable');
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await b.presence(room.id)).users.sort()).toEqual(['pg-a', 'pg-b', 'pg-c']);
      // Typing needs no write: it goes on from what the node read before the outage.
      await c.typing(room.id, false);
      await waitFor(() => typing.some((t) => t.user === 'pg-c' && !t.active), 5000, 'typing during the outage');
      const ready = await fetch(`${cluster.nodes[1]!.url}/readyz`);
      expect(ready.status).toBe(503);
      // A client connecting now cannot be authenticated (its rooms are in the store): the SDK
      // keeps trying instead of giving up on a valid token.
      late = new ParleyClient({
        url: cluster.nodes[2]!.url,
        token: await token('pg-late'),
        WebSocket: WebSocket as never,
        reconnectMinMs: 100,
        reconnectMaxMs: 300,
      });
      clients.push(late);
      lateOnline = late.connect();
      lateOnline.catch(() => {});
      await new Promise((r) => setTimeout(r, 500));
      expect(late.state).not.toBe('online');
    } finally {
      await cluster.postgres.start();
    }
    await lateOnline;
    expect(late.state).toBe('online');
    // Back without restarting anything.
    let ack: { seq: number } | null = null;
    const until = Date.now() + 20_000;
    while (!ack && Date.now() < until) {
      ack = await a.send(room.id, 'after the outage').catch(() => null);
      if (!ack) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ack).not.toBeNull();
    // The held send was stored once, after the outage, without the app doing anything.
    expect((await held).seq).toBeGreaterThan(0);
    const h = await b.history(room.id);
    expect(
      h.messages
        .map((m) => m.text)
        .filter(Boolean)
        .sort(),
    ).toEqual(['after the outage', 'held through the outage']);
  }, 60_000);

  it('with PostgreSQL frozen, a member who typed lately goes on typing within about a second', async () => {
    const c = await client('pf-c', 1);
    const b = await client('pf-b', 2);
    const room = await c.createRoom('group', 'PG frozen');
    await c.invite(room.id, 'pf-b');
    const typing: Array<{ user: string; active: boolean }> = [];
    b.on('typing', (t) => {
      if (t.room === room.id) typing.push(t);
    });
    await c.typing(room.id, true);
    await waitFor(() => typing.some((t) => t.user === 'pf-c' && t.active), 5000, 'typing before the freeze');
    const wake = cluster.postgres.freeze();
    try {
      const t0 = Date.now();
      void c.typing(room.id, false).catch(() => {});
      // Not after the store's statement timeout (10 s): the membership read a moment ago stands.
      await waitFor(() => typing.some((t) => t.user === 'pf-c' && !t.active), 8000, 'typing during the freeze');
      expect(Date.now() - t0).toBeLessThan(2500);
    } finally {
      wake();
    }
    // Served again once it wakes (the SDK sends again while it answers unavailable).
    expect((await c.send(room.id, 'after the freeze')).seq).toBeGreaterThan(0);
  });

  it('a message whose commit answer was lost in a PostgreSQL freeze, and stored, reaches the members on every node without a next message', async () => {
    const owner = await client('pu-owner', 0);
    const room = await owner.createRoom('channel', 'Uncertain commit');
    const sockets: RawSocket[] = [];
    for (const [i, node] of [0, 1, 2].entries()) {
      const raw = await RawSocket.open(cluster.nodes[node]!.wsUrl);
      expect((await raw.call({ id: 1, cmd: 'auth', token: await token(`pu-${i}`) })).ok).toBe(true);
      expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
      sockets.push(raw);
    }
    const writer = sockets[0]!;
    // The room's state is loaded on its owner: the send below needs no read first.
    expect((await writer.call({ id: 3, cmd: 'send', room: room.id, text: 'before', key: 'pu-before' })).ok).toBe(true);
    const texts = (r: RawSocket) => r.frames.filter((f) => f.ev === 'message').map((f) => (f.data as Message).text);
    for (const r of sockets) await waitFor(() => texts(r).includes('before'), 5000, 'the first message');
    const wake = cluster.postgres.freeze();
    let reply: Record<string, unknown>;
    try {
      // The commit goes out to the frozen database; its answer does not come within the
      // statement timeout (1.5 s here).
      reply = await writer.call({ id: 4, cmd: 'send', room: room.id, text: 'uncertain', key: 'pu-uncertain' }, 15_000);
    } finally {
      wake();
    }
    expect(reply.ok).toBe(false);
    expect(reply.error).toMatchObject({ code: 'unavailable', details: { outcome: 'unknown' } });
    // The database had it and commits it as it wakes. Nobody sends again, and nothing else is
    // sent in the room: every member gets it all the same.
    let stored = false;
    for (let i = 5; !stored; i++) {
      expect(i).toBeLessThan(100);
      const h = (await writer.call({ id: i, cmd: 'history', room: room.id, limit: 5 }, 15_000)) as { ok: boolean; data?: { messages: Message[] } };
      stored = h.data?.messages.some((m) => m.text === 'uncertain') ?? false;
      if (!stored) await new Promise((r) => setTimeout(r, 100));
    }
    for (const r of sockets) await waitFor(() => texts(r).includes('uncertain'), 10_000, 'the uncertain message');
    for (const r of sockets) {
      const seqs = r.frames.filter((f) => f.ev === 'message').map((f) => (f.data as Message).seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      r.close();
    }
  }, 60_000);

  it('with Redis frozen, a client with a static token still gets online, and presence and the dispatcher answer at once', async () => {
    const a = await client('rf-a', 0);
    const room = await a.createRoom('group', 'Frozen Redis');
    await a.invite(room.id, 'rf-late');
    const seen: boolean[] = [];
    a.on('presence', (p) => {
      if (p.room === room.id && p.user === 'rf-late') seen.push(p.online);
    });
    const headers = { authorization: `Bearer ${await token('rf-a')}` };
    const pid = cluster.redis!.pid!;
    let late: ParleyClient;
    let lateOnline: Promise<void>;
    process.kill(pid, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      // Longer than the time a connection has to authenticate (2 s here).
      late = new ParleyClient({
        url: cluster.nodes[1]!.url,
        token: await token('rf-late'),
        WebSocket: WebSocket as never,
        reconnectMinMs: 100,
        reconnectMaxMs: 300,
      });
      clients.push(late);
      lateOnline = late.connect();
      lateOnline.catch(() => {});
      let t0 = Date.now();
      const res = await fetch(`${cluster.nodes[0]!.url}/api/v1/rooms/${room.id}/presence`, { headers, signal: AbortSignal.timeout(5000) });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unavailable');
      t0 = Date.now();
      const d = await fetch(`${cluster.nodes[0]!.url}/api/v1/dispatch`, { signal: AbortSignal.timeout(5000) });
      expect(d.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, Math.max(0, 3500 - (Date.now() - frozenAt))));
      expect(late.state).not.toBe('closed');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await lateOnline;
    expect(late.state).toBe('online');
    // Its presence, which Redis could not confirm then, is recorded and announced once Redis
    // answers again.
    await waitFor(() => seen.at(-1) === true, 10_000, 'the late client announced online');
    expect((await a.presence(room.id)).users).toContain('rf-late');
  }, 60_000);

  it('a Redis freeze longer than the node timeout takes nobody offline, even on a node that is late to report after it', async () => {
    const users = ['rz-0', 'rz-1', 'rz-2'];
    const [a, b, c] = await Promise.all(users.map((u, i) => client(u, i)));
    const room = await a!.createRoom('group', 'Redis freeze');
    await a!.invite(room.id, 'rz-1');
    await a!.invite(room.id, 'rz-2');
    for (const until = Date.now() + 5000; (await a!.presence(room.id)).users.length < 3;) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 50));
    }
    const offline: string[] = [];
    a!.on('presence', (p) => {
      if (p.room === room.id && !p.online) offline.push(p.user);
    });
    const redisPid = cluster.redis!.pid!;
    const nodePid = cluster.nodes[2]!.process!.pid!;
    process.kill(redisPid, 'SIGSTOP');
    try {
      // Past the node timeout (1.5 s here): every alive key has expired when Redis answers again.
      await new Promise((r) => setTimeout(r, 2500));
      // The third node is busy at that moment (a GC pause, say) and reports a little later
      // than the others; it is not dead.
      process.kill(nodePid, 'SIGSTOP');
    } finally {
      process.kill(redisPid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 800));
    process.kill(nodePid, 'SIGCONT');
    // Long enough for the others to have reaped it if they took it for dead (two node timeouts).
    await new Promise((r) => setTimeout(r, 3000));
    expect(offline).toEqual([]);
    expect((await a!.presence(room.id)).users.sort()).toEqual(users);
    expect([b!.state, c!.state]).toEqual(['online', 'online']);
  }, 60_000);

  it('with Redis down, clients on the sending node still get messages live, presence answers 503, and the others catch up after', async () => {
    const sender = await client('rd-sender', 0);
    const room = await sender.createRoom('channel', 'Redis down');
    const readers: RawSocket[] = [];
    for (const [i, node] of [0, 1].entries()) {
      const raw = await RawSocket.open(cluster.nodes[node]!.wsUrl);
      expect((await raw.call({ id: 1, cmd: 'auth', token: await token(`rd-r${i}`) })).ok).toBe(true);
      expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
      readers.push(raw);
    }
    const [local, remote] = readers as [RawSocket, RawSocket];
    const base = (await sender.history(room.id)).last;
    const seqs = (r: RawSocket) =>
      r.frames
        .filter((f) => f.ev === 'message')
        .map((f) => f.data as Message)
        .filter((m) => m.room === room.id && m.seq > base)
        .map((m) => m.seq);
    let last = 0;
    await cluster.redis!.stop();
    try {
      for (let i = 0; i < 3; i++) last = (await sender.send(room.id, `down${i}`)).seq;
      await waitFor(() => seqs(local).length >= 3, 3000, 'live delivery on the sending node');
      const res = await fetch(`${cluster.nodes[0]!.url}/api/v1/rooms/${room.id}/presence`, {
        headers: { authorization: `Bearer ${await token('rd-sender')}` },
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    } finally {
      await cluster.redis!.start();
    }
    await waitFor(() => seqs(remote).length >= 3, 20_000, 'the other node catches up once Redis is back');
    await new Promise((r) => setTimeout(r, 300));
    for (const r of readers) expect(seqs(r)).toEqual(range(base + 1, last));
    for (const r of readers) r.close();
  }, 60_000);

  it('a user who moved to another node while Redis was down is not announced offline when the nodes repair their presence', async () => {
    const watcher = await RawSocket.open(cluster.nodes[0]!.wsUrl);
    expect((await watcher.call({ id: 1, cmd: 'auth', token: await token('rm-watcher') })).ok).toBe(true);
    expect((await watcher.call({ id: 2, cmd: 'create', kind: 'channel', name: 'Moved', room: 'moved-during-outage' })).ok).toBe(true);
    const room = 'moved-during-outage';
    const first = await RawSocket.open(cluster.nodes[0]!.wsUrl);
    expect((await first.call({ id: 1, cmd: 'auth', token: await token('rm-user') })).ok).toBe(true);
    expect((await first.call({ id: 2, cmd: 'join', room })).ok).toBe(true);
    const seen = () =>
      watcher.frames
        .filter((f) => f.ev === 'presence')
        .map((f) => f.data as { room: string; user: string; online: boolean })
        .filter((p) => p.room === room && p.user === 'rm-user')
        .map((p) => p.online);
    await waitFor(() => seen().at(-1) === true, 5000, 'online before the outage');
    const before = seen().length;
    const node1 = cluster.nodes[1]!.process!.pid!;
    await cluster.redis!.stop();
    let second: RawSocket;
    try {
      // Closed while Redis is away: node 0 removes it once Redis is back. The user is back on
      // node 1 meanwhile, which registers it again once Redis is back.
      first.close();
      await new Promise((r) => setTimeout(r, 300));
      second = await RawSocket.open(cluster.nodes[1]!.wsUrl);
      expect((await second.call({ id: 1, cmd: 'auth', token: await token('rm-user') }, 8000)).ok).toBe(true);
    } finally {
      // Node 1 repairs after node 0: it is stopped (for less than the node timeout) while
      // Redis comes back.
      process.kill(node1, 'SIGSTOP');
      try {
        await cluster.redis!.start();
        await new Promise((r) => setTimeout(r, 1000));
      } finally {
        process.kill(node1, 'SIGCONT');
      }
    }
    const presence = async () => ((await watcher.call({ id: `p${Date.now()}`, cmd: 'presence', room })).data as { users: string[] } | undefined)?.users ?? [];
    for (const until = Date.now() + 10_000; !(await presence()).includes('rm-user');) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3500));
    expect(seen().slice(before)).not.toContain(false);
    expect(await presence()).toContain('rm-user');
    second!.close();
    watcher.close();
  }, 60_000);

  it('Redis restarted under load: nodes reconnect, gaps are filled from the store, nothing acknowledged is lost', async () => {
    const sender = await client('rr-sender', 0);
    const room = await sender.createRoom('channel', 'Redis restart');
    // Raw sockets, not the SDK (which would itself ask for a missing range): what the server sends.
    const readers: RawSocket[] = [];
    for (const [i, node] of [1, 2, 0].entries()) {
      const raw = await RawSocket.open(cluster.nodes[node]!.wsUrl);
      expect((await raw.call({ id: 1, cmd: 'auth', token: await token(`rr-r${i}`) })).ok).toBe(true);
      expect((await raw.call({ id: 2, cmd: 'join', room: room.id })).ok).toBe(true);
      readers.push(raw);
    }
    const base = (await sender.history(room.id)).last;
    const seqs = (r: RawSocket) =>
      r.frames
        .filter((f) => f.ev === 'message')
        .map((f) => f.data as Message)
        .filter((m) => m.room === room.id && m.seq > base)
        .map((m) => m.seq);
    const acked: number[] = [];
    const load = steadySends(sender, room.id, 'rr', 10, acked);
    await waitFor(() => acked.length >= 30, 10_000);
    await cluster.redis!.stop();
    await new Promise((r) => setTimeout(r, 700));
    const during = acked.length;
    await cluster.redis!.start();
    await waitFor(() => acked.length >= during + 50, 20_000, 'sends after the restart');
    await load.stop();
    // Sends went on while Redis was down: the store, not the bus, acknowledges.
    expect(during).toBeGreaterThan(30);
    const last = Math.max(...acked);
    for (const r of readers) await waitFor(() => (seqs(r).at(-1) ?? 0) >= last, 20_000, 'readers caught up');
    await new Promise((r) => setTimeout(r, 200));
    for (const r of readers) expect(seqs(r)).toEqual(range(base + 1, last));
    const stored = new Set((await sender.history(room.id, { after: base, limit: 500 })).messages.map((m) => m.seq));
    for (const s of acked) expect(stored.has(s)).toBe(true);
    for (const r of readers) r.close();
  }, 60_000);

  it('SIGKILL of a node under load: its clients resume on the others with no gap or duplicate, nothing acked is lost, its presence expires with leave events', async () => {
    const live = [cluster.nodes[0]!, cluster.nodes[1]!];
    let turn = 0;
    // The victim node first; once it is gone, round-robin over the survivors.
    let victimUp = true;
    const urlFor = () => (victimUp ? cluster.nodes[2]!.url : live[turn++ % live.length]!.url);
    const sender = await client('kill-sender', 0);
    const room = await sender.createRoom('channel', 'Kill');
    const watcher = await client('kill-watcher', 1);
    const movers = [await client('kill-m1', urlFor), await client('kill-m2', urlFor)];
    for (const c of [watcher, ...movers]) await c.join(room.id);
    // A user whose only connection is on the victim and does not come back.
    const ghost = await client('kill-ghost', 2);
    await ghost.join(room.id);
    const ghostRaw = await RawSocket.open(cluster.nodes[2]!.wsUrl);
    expect((await ghostRaw.call({ id: 1, cmd: 'auth', token: await token('kill-ghost') })).ok).toBe(true);
    ghost.close();
    const presence: Array<{ user: string; online: boolean }> = [];
    watcher.on('presence', (p) => {
      if (p.room === room.id) presence.push(p);
    });

    const base = (await sender.history(room.id)).last;
    const got = movers.map((m) => collect(m, room.id));
    const acked: number[] = [];
    const moverAcked: string[] = [];
    const load = steadySends(sender, room.id, 'k', 10, acked);
    // A mover sends too: its sends in flight when the node dies are retried elsewhere, once.
    const moverLoad = steadySends(movers[0]!, room.id, 'm', 25, acked, moverAcked);
    await waitFor(() => acked.length >= 40, 10_000);
    victimUp = false;
    await cluster.nodes[2]!.kill();
    const after = acked.length;
    // Within a few heartbeats the dispatcher stops handing out the dead node.
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 10; i++) {
      const d = (await (await fetch(`${cluster.nodes[0]!.url}/api/v1/dispatch`)).json()) as { url: string };
      expect(d.url).not.toBe(cluster.nodes[2]!.url);
    }
    await waitFor(() => acked.length >= after + 60, 20_000, 'sends after the kill');
    await Promise.all([load.stop(), moverLoad.stop()]);
    const last = Math.max(...acked);
    for (const g of got) await waitFor(() => (g.at(-1)?.seq ?? 0) >= last, 20_000, 'movers caught up');
    await new Promise((r) => setTimeout(r, 200));
    for (const g of got) expect(seqsAfter(g, base)).toEqual(range(base + 1, last));
    for (const m of movers) expect(m.state).toBe('online');
    const history = (await sender.history(room.id, { after: base, limit: 500 })).messages;
    const stored = new Set(history.map((m) => m.seq));
    for (const s of acked) expect(stored.has(s)).toBe(true);
    // Retried sends are stored once.
    const texts = history.map((m) => m.text).filter((t): t is string => t !== undefined);
    expect(texts.length).toBe(new Set(texts).size);
    for (const t of moverAcked) expect(texts).toContain(t);
    // The ghost's presence expires (node timeout 1.5 s) and the watcher on a live node is told.
    await waitFor(() => presence.some((p) => p.user === 'kill-ghost' && !p.online), 10_000, 'ghost leave event');
    expect((await watcher.presence(room.id)).users).not.toContain('kill-ghost');
    // The dispatcher only offers live nodes.
    const d = (await (await fetch(`${cluster.nodes[0]!.url}/api/v1/dispatch`)).json()) as { url: string };
    expect([cluster.nodes[0]!.url, cluster.nodes[1]!.url]).toContain(d.url);
    ghostRaw.close();
  }, 90_000);
});

describe('cluster: node-to-node calls', () => {
  /** The status an upgrade to /cluster with `headers` gets (101 when accepted). */
  const upgrade = (url: string, headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/cluster`, { headers });
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', () => undefined);
    });

  it('each node takes /cluster on its own port, only from holders of the shared secret, only for itself', async () => {
    const url = cluster.nodes[0]!.url;
    expect(await upgrade(url, authHeaders(cluster.secret, 'node-2', 'node-1'))).toBe(101);
    expect(await upgrade(url, authHeaders('not-the-cluster-secret', 'node-2', 'node-1'))).toBe(401);
    expect(await upgrade(url, {})).toBe(401);
    expect(await upgrade(url, authHeaders(cluster.secret, 'node-2', 'node-3'))).toBe(421);
  });
});

describe('cluster: shared policy state between nodes', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const shared = {
      store: { postgres: { url: cluster.postgres.url } },
      bus: { redis: { url: cluster.redis!.url } },
      auth: { secret: cluster.secret },
      api: { keys: ['policy-admin-key-0123456789'] },
      plugins: { rateLimit: { user: { rate: 0.2, burst: 4 } }, wordFilter: { mode: 'reject' } },
    };
    a = await startServer(shared, tempDir());
    b = await startServer(shared, tempDir());
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('a user draws from one rate bucket whichever node it sends through', async () => {
    const ca = await a.client('rl-shared');
    const cb = await b.client('rl-shared');
    const room = await ca.createRoom('group', 'Shared bucket');
    const results = [];
    for (let i = 0; i < 6; i++)
      results.push(
        await (i % 2 ? cb : ca).send(room.id, `m${i}`).then(
          () => 'ok',
          (e: ClientError) => e.code,
        ),
      );
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
  });

  it('a word blocked through one node is refused by the other within seconds', async () => {
    const res = await fetch(`${a.url}/api/v1/admin/words`, {
      method: 'POST',
      headers: { 'x-api-key': 'policy-admin-key-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ words: ['verboten'] }),
    });
    expect(res.status).toBe(200);
    const cb = await b.client('wf-shared');
    const room = await cb.createRoom('group', 'Words');
    // Until node b has re-read the list (every 2 s) the word passes; the shared rate bucket
    // may also ask this user to wait. Neither lasts.
    let code = 'ok';
    const until = Date.now() + 15_000;
    while ((code === 'ok' || code === 'rate_limited') && Date.now() < until) {
      code = await cb.send(room.id, 'this is verboten').then(
        () => 'ok',
        (e: ClientError) => e.code,
      );
      if (code !== 'invalid') await new Promise((r) => setTimeout(r, 700));
    }
    expect(code).toBe('invalid');
  });
});

describe('cluster: dispatch, rebalancing and retention sweeps', () => {
  const nodes: TestServer[] = [];
  const sdk: ParleyClient[] = [];
  beforeAll(async () => {
    const shared = {
      store: { postgres: { url: cluster.postgres.url } },
      // Their own prefix: these nodes form a cluster of their own on the same Redis.
      bus: { redis: { url: cluster.redis!.url, prefix: 'balance:' } },
      auth: { secret: cluster.secret },
      cluster: { heartbeatMs: 250, nodeTimeoutMs: 1500, rebalanceMinAgeMs: 300 },
      retention: { sweepSec: 1 },
    };
    for (let i = 0; i < 2; i++) nodes.push(await startServer(shared, tempDir()));
    // Both have seen each other's heartbeat, sent once each was listening (with its address).
    for (const n of nodes) {
      let seen = 0;
      await waitFor(
        () => {
          void n.parley.bus.nodes.list().then((l) => {
            seen = l.filter((x) => x.url !== '').length;
          });
          return seen === 2;
        },
        10_000,
        'the nodes to see each other',
      );
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of sdk) c.close();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('the dispatcher spreads consecutive clients over the nodes instead of sending them all to one', async () => {
    const picks: string[] = [];
    for (let i = 0; i < 10; i++) picks.push(((await (await fetch(`${nodes[0]!.url}/api/v1/dispatch`)).json()) as { url: string }).url);
    const counts = nodes.map((n) => picks.filter((u) => u === n.url).length);
    expect(counts.reduce((a, b) => a + b)).toBe(10);
    expect(Math.abs(counts[0]! - counts[1]!)).toBeLessThanOrEqual(2);
  });

  it('a node with far more clients than the others asks some of them, a few at a time, to reconnect elsewhere; nobody sees them leave', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const conns = () => nodes.map((n) => n.parley.hub.connectionCount);
    // A watcher on the other node, in a channel every moved client is a member of.
    const watcher = new ParleyClient({ url: b.url, token: await b.token('bal-watcher'), WebSocket: WebSocket as never });
    sdk.push(watcher);
    await watcher.connect();
    const channel = await watcher.createRoom('channel', 'Balance');
    const left: string[] = [];
    watcher.on('presence', (p) => {
      if (p.room === channel.id && !p.online) left.push(p.user);
    });
    for (let i = 0; i < 10; i++) {
      let first = true;
      const c = new ParleyClient({
        // First on node a; afterwards wherever node a's dispatcher says.
        url: async () => {
          if (first) {
            first = false;
            return a.url;
          }
          return ((await (await fetch(`${a.url}/api/v1/dispatch`)).json()) as { url: string }).url;
        },
        token: await a.token(`bal-${i}`),
        WebSocket: WebSocket as never,
        // Asked to move, a client waits up to reconnectMinMs first (spreading the returns).
        reconnectMinMs: 1000,
        reconnectMaxMs: 2000,
      });
      sdk.push(c);
      await c.connect();
      await c.join(channel.id).catch(() => c.join(channel.id));
    }
    const baseline = conns()[1]!;
    let worst = 0;
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      worst = Math.max(worst, sdk.filter((c) => c.state !== 'online').length);
      const [na, nb] = conns();
      // The watcher counts on node b: 7 and 4 of 11 is balanced enough.
      if (nb! - baseline >= 3 && na! <= 7 && sdk.every((c) => c.state === 'online')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [na, nb] = conns();
    expect(nb! - baseline).toBeGreaterThanOrEqual(3);
    expect(na).toBeLessThanOrEqual(7);
    expect(sdk.every((c) => c.state === 'online')).toBe(true);
    // Gradually: never more than a few clients away at once.
    expect(worst).toBeLessThanOrEqual(3);
    expect(b.parley.hub.connectionCount).toBe(nb);
    // A moved client's presence outlives its old connection until it is back on the other node.
    await new Promise((r) => setTimeout(r, 6000));
    expect(left).toEqual([]);
    expect((await watcher.presence(channel.id)).users.sort()).toEqual([...Array.from({ length: 10 }, (_, i) => `bal-${i}`), 'bal-watcher'].sort());
  }, 40_000);

  it('asks clients that come back to it (a fixed address) to move less and less often', async () => {
    const [a] = nodes as [TestServer, TestServer];
    for (const c of sdk.splice(0)) c.close();
    const asked = async () => Number(/^parley_rebalanced_total (\d+)/m.exec(await (await fetch(`${a.url}/metrics`)).text())?.[1] ?? 0);
    const fixed: ParleyClient[] = [];
    for (let i = 0; i < 12; i++) {
      const c = new ParleyClient({ url: a.url, token: await a.token(`fix-${i}`), WebSocket: WebSocket as never, reconnectMinMs: 50, reconnectMaxMs: 100 });
      sdk.push(c);
      fixed.push(c);
      await c.connect();
    }
    // 12 against 0: node a asks one client at a time, and each comes back to it.
    const before = await asked();
    await new Promise((r) => setTimeout(r, 12_000));
    const n = (await asked()) - before;
    // Asking every 3 heartbeats (750 ms) would be about 14 times in 12 s; the waits double instead.
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(6);
    expect(fixed.every((c) => c.state === 'online')).toBe(true);
  }, 30_000);

  it('the retention sweep runs on one node at a time, not on every node', async () => {
    const sweeps = async () => {
      let n = 0;
      for (const node of nodes) {
        const text = await (await fetch(`${node.url}/metrics`)).text();
        n += Number(/^parley_retention_sweeps_total (\d+)/m.exec(text)?.[1] ?? 0);
      }
      return n;
    };
    const start = Date.now();
    const before = await sweeps();
    await new Promise((r) => setTimeout(r, 6000));
    const ran = (await sweeps()) - before;
    // The window, with the reads of the counters (slow on a loaded machine): one sweep per
    // second starts in it, at most one more than its whole seconds. Each of the two nodes
    // sweeping every second on its own would start about twice as many (12 in 6 s).
    const seconds = (Date.now() - start) / 1000;
    expect(ran).toBeGreaterThanOrEqual(4);
    expect(ran, `${ran} sweeps in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });
});

describe('cluster: Redis Cluster of three masters', () => {
  let rc: DevCluster;
  beforeAll(async () => {
    rc = await startDevCluster({ nodes: 2, redisMasters: 3, env: TIMEOUTS });
  }, 120_000);
  afterAll(async () => {
    await rc?.stop();
  }, 60_000);

  it('carries the fan-out of many rooms (spread over the shards) exactly once, in order', async () => {
    const tok = (u: string) => mintToken(validateConfig({ auth: { secret: rc.secret } }), u);
    const mk = async (u: string, i: number) => {
      const c = new ParleyClient({ url: rc.nodes[i]!.url, token: await tok(u), WebSocket: WebSocket as never });
      clients.push(c);
      await c.connect();
      return c;
    };
    const a = await mk('rc-a', 0);
    const b = await mk('rc-b', 1);
    const rooms = [];
    for (let i = 0; i < 8; i++) {
      const r = await a.createRoom('channel', `Shard ${i}`);
      await b.join(r.id);
      rooms.push(r.id);
    }
    const got = collect(b);
    const sends = [];
    for (let k = 0; k < 10; k++) for (const r of rooms) sends.push(a.send(r, `s${k}`));
    await Promise.all(sends);
    await waitFor(() => got.filter((m) => m.kind === 'text').length >= 80, 15_000, 'fan-out over the shards');
    await new Promise((r) => setTimeout(r, 200));
    for (const r of rooms) expect(got.filter((m) => m.room === r && m.kind === 'text').map((m) => m.text)).toEqual(range(0, 9).map((k) => `s${k}`));
    const d = (await (await fetch(`${rc.nodes[1]!.url}/api/v1/dispatch`)).json()) as { url: string; connections: number };
    expect(rc.nodes.map((n) => n.url)).toContain(d.url);
  });

  it('with one master down, rooms on the other shards go on and the dispatcher answers at once', async () => {
    const tok = (u: string) => mintToken(validateConfig({ auth: { secret: rc.secret } }), u);
    const a = new ParleyClient({ url: rc.nodes[0]!.url, token: await tok('rcd-a'), WebSocket: WebSocket as never, requestTimeoutMs: 15_000 });
    const b = new ParleyClient({ url: rc.nodes[1]!.url, token: await tok('rcd-b'), WebSocket: WebSocket as never });
    clients.push(a, b);
    await Promise.all([a.connect(), b.connect()]);
    // The master holding the node list (what the dispatcher reads) goes down.
    const probe = new Redis({ port: rc.redisCluster!.servers[0]!.port, host: '127.0.0.1' });
    const slot = Number(await probe.call('cluster', 'keyslot', 'parley:nodes'));
    const ranges = (await probe.call('cluster', 'slots')) as Array<[number, number, [string, number]]>;
    const portOf = (s: number) => ranges.find(([lo, hi]) => s >= lo && s <= hi)![2][1];
    const victim = rc.redisCluster!.servers.find((s) => s.port === portOf(slot))!;
    // Rooms whose channel lives on another shard.
    const rooms: string[] = [];
    for (let i = 0; rooms.length < 4; i++) {
      const id = `rcd-room-${i}`;
      if (portOf(Number(await probe.call('cluster', 'keyslot', `parley:r:${id}`))) === victim.port) continue;
      await a.createRoom('channel', id, { room: id });
      await b.join(id);
      rooms.push(id);
    }
    probe.disconnect();
    const got = collect(b);
    await victim.stop();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      let t0 = Date.now();
      const d = await fetch(`${rc.nodes[0]!.url}/api/v1/dispatch`);
      expect(d.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(1000);
      t0 = Date.now();
      for (const r of rooms) await a.send(r, 'during');
      expect(Date.now() - t0).toBeLessThan(4000);
      await waitFor(() => got.filter((m) => m.text === 'during').length === rooms.length, 5000, 'live delivery on healthy shards');
    } finally {
      await victim.start();
    }
  }, 60_000);
});
