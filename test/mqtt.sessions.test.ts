// MQTT sessions at the wire, with raw `mqtt` clients: a client id belongs to its user, no
// broker session outlives its connection (Parley's store is the durable queue), a user's live
// clients are capped, and a will never runs for a connection the server closed.
import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, rest, sleep, startMqttServer } from './mqtt-helpers.js';

const MAX_CLIENTS = 4;
let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer({
    mqtt: { enabled: true, port: 0, maxClientsPerUser: MAX_CLIENTS },
    plugins: { rateLimit: { enabled: false } },
    accounts: { hashMemoryKib: 8192, hashPasses: 1 },
  });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

/** A raw client that records every publication and its CONNACK. */
async function raw(user: string, opts: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket; got: Array<{ topic: string; text: string }> }> {
  const client = mqtt.connect(s.mqttUrl, { username: 'JWT', password: await s.token(user), reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const got: Array<{ topic: string; text: string }> = [];
  client.on('message', (topic, payload) => got.push({ topic, text: String((JSON.parse(payload.toString()) as { text?: unknown }).text) }));
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, connack, got };
}

const inbox = (user: string): string => `apps/${APP}/users/${user}/#`;

describe('MQTT client ids belong to their user', () => {
  it("a client id taken from a parked session of another user gives nothing of that user's messages", async () => {
    // The owner parks one session while another of its clients stays online (so its
    // messages reach this node's broker).
    const online = await Chat21Peer.connect(s.mqttUrl, 'olga', await s.token('olga'));
    const owner = await raw('olga', { clientId: 'phone-1', clean: false });
    await owner.client.subscribeAsync(inbox('olga'), { qos: 1 });
    await owner.client.endAsync();
    const bob = await Chat21Peer.connect(s.mqttUrl, 'bob', await s.token('bob'));
    for (let i = 0; i < 3; i++) await bob.send('olga', `for olga ${i}`);
    await bob.waitAdded((m) => m.text === 'for olga 2', 'own copy');

    const thief = await raw('mallet', { clientId: 'phone-1', clean: false });
    await sleep(400);
    expect(thief.got).toEqual([]);
    expect(thief.connack.sessionPresent).toBe(false);
    await thief.client.endAsync();
    await online.close();
    // The owner still has every message in the store.
    const hist = await rest(s.url, await s.token('olga'), 'GET', '/olga/conversations/bob/messages');
    expect((hist.body.result as Array<{ text: string }>).map((m) => m.text)).toEqual(['for olga 2', 'for olga 1', 'for olga 0']);
    await bob.close();
  });

  it("a client id in use by another user's live client does not disconnect it", async () => {
    const owner = await raw('oscar', { clientId: 'laptop-7', clean: true });
    await owner.client.subscribeAsync(inbox('oscar'), { qos: 1 });
    let ownerClosed = false;
    owner.client.on('close', () => {
      ownerClosed = true;
    });
    const thief = await raw('mallet', { clientId: 'laptop-7', clean: true });
    await thief.client.subscribeAsync(inbox('mallet'), { qos: 1 });
    await sleep(300);
    expect(ownerClosed).toBe(false);
    // Both sessions keep working, each with its own inbox.
    const bob = await Chat21Peer.connect(s.mqttUrl, 'bobby', await s.token('bobby'));
    await bob.send('oscar', 'to oscar');
    await bob.send('mallet', 'to mallet');
    await waitFor(() => owner.got.some((m) => m.text === 'to oscar') && thief.got.some((m) => m.text === 'to mallet'), 5000, 'both delivered');
    expect(owner.got.map((m) => m.text)).toEqual(['to oscar']);
    expect(thief.got.map((m) => m.text)).toEqual(['to mallet']);
    await owner.client.endAsync();
    await thief.client.endAsync();
    await bob.close();
  });

  it('the same user reusing its client id takes its own session over, as MQTT says', async () => {
    const first = await raw('ulla', { clientId: 'tablet', clean: true });
    let firstClosed = false;
    first.client.on('close', () => {
      firstClosed = true;
    });
    const second = await raw('ulla', { clientId: 'tablet', clean: true });
    await waitFor(() => firstClosed, 5000, 'first session taken over');
    await second.client.endAsync();
  });
});

describe('MQTT sessions are not kept (the store is the durable queue)', () => {
  it('a parked clean=false session gets no queued messages back, and its messages stay in the history', async () => {
    const online = await Chat21Peer.connect(s.mqttUrl, 'petra', await s.token('petra'));
    const parked = await raw('petra', { clientId: 'parked-1', clean: false });
    await parked.client.subscribeAsync(inbox('petra'), { qos: 1 });
    await parked.client.endAsync();
    const sender = await Chat21Peer.connect(s.mqttUrl, 'sam', await s.token('sam'));
    for (let i = 0; i < 200; i++) void sender.send('petra', `queued ${i}`);
    await waitFor(() => sender.added('petra').length === 200, 10_000, 'sender copies');

    const back = await raw('petra', { clientId: 'parked-1', clean: false });
    expect(back.connack.sessionPresent).toBe(false);
    await sleep(400);
    expect(back.got).toEqual([]);
    // A new message reaches the reconnected client once it subscribes again, as with a new session.
    await back.client.subscribeAsync(inbox('petra'), { qos: 1 });
    await sender.send('petra', 'live');
    await waitFor(() => back.got.some((m) => m.text === 'live'), 5000, 'live message');
    expect(back.got.map((m) => m.text)).toEqual(['live']);
    const hist = await rest(s.url, await s.token('petra'), 'GET', '/petra/conversations/sam/messages');
    expect(hist.body.result).toHaveLength(200);
    await back.client.endAsync();
    await online.close();
    await sender.close();
  });

  it('many parked sessions of one user hold nothing: each comes back empty', async () => {
    const online = await Chat21Peer.connect(s.mqttUrl, 'quinn', await s.token('quinn'));
    for (let i = 0; i < 30; i++) {
      const c = await raw('quinn', { clientId: `park-${i}`, clean: false });
      await c.client.subscribeAsync(inbox('quinn'), { qos: 1 });
      await c.client.endAsync();
    }
    const sender = await Chat21Peer.connect(s.mqttUrl, 'sid', await s.token('sid'));
    for (let i = 0; i < 50; i++) void sender.send('quinn', `m${i}`);
    await waitFor(() => sender.added('quinn').length === 50, 10_000, 'sender copies');
    for (let i = 0; i < 30; i += 7) {
      const c = await raw('quinn', { clientId: `park-${i}`, clean: false });
      expect(c.connack.sessionPresent).toBe(false);
      await sleep(100);
      expect(c.got).toEqual([]);
      await c.client.endAsync();
    }
    await online.close();
    await sender.close();
  });

  it(`a user has at most ${MAX_CLIENTS} live MQTT clients on a node; one more is refused`, async () => {
    const open: MqttClient[] = [];
    for (let i = 0; i < MAX_CLIENTS; i++) open.push((await raw('rita', { clientId: `rita-${i}` })).client);
    await expect(raw('rita', { clientId: 'rita-extra' })).rejects.toThrow(/unavailable|refused/i);
    // Another user is unaffected, and a slot frees when a client leaves.
    await (await raw('rolf', { clientId: 'rolf-1' })).client.endAsync();
    await open.pop()!.endAsync();
    let again: MqttClient | null = null;
    for (let i = 0; i < 50 && !again; i++) {
      again = await raw('rita', { clientId: 'rita-again' }).then(
        (c) => c.client,
        () => null,
      );
      if (!again) await sleep(100);
    }
    expect(again).not.toBeNull();
    open.push(again!);
    for (const c of open) await c.endAsync();
    // Over MQTT on WebSocket too, each client that leaves frees its slot.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < MAX_CLIENTS; i++) {
        const c = await Chat21Peer.connect(s.mqttWsUrl, 'rita', await s.token('rita'), { clientId: `rita-ws-${round}-${i}` });
        await c.close();
      }
    }
  });
});

describe('MQTT wills', () => {
  it('the will of a connection closed by a server-wide ban is dropped', async () => {
    const victim = await Chat21Peer.connect(s.mqttUrl, 'vic', await s.token('vic'));
    const banned = await Chat21Peer.connect(s.mqttUrl, 'baxter', await s.token('baxter'), {
      will: {
        topic: `apps/${APP}/outgoing/users/baxter/messages/vic/outgoing`,
        payload: Buffer.from(JSON.stringify({ text: 'from beyond the ban', type: 'text', channel_type: 'direct' })),
        qos: 1,
        retain: false,
      },
    });
    await banned.send('vic', 'before the ban');
    await victim.waitAdded((m) => m.text === 'before the ban');
    const admin = await s.token('root', { admin: true });
    const res = await fetch(`${s.url}/api/v1/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'baxter' }),
    });
    expect(res.status).toBe(201);
    await waitFor(() => banned.closed, 5000, 'banned client closed');
    await sleep(400);
    expect(victim.added().map((m) => m.text)).toEqual(['before the ban']);
    const hist = await rest(s.url, await s.token('vic'), 'GET', '/vic/conversations/baxter/messages');
    expect((hist.body.result as Array<{ text: string }>).map((m) => m.text)).toEqual(['before the ban']);
    await victim.close();
  });

  it('the will of a connection that drops runs as a command, with the checks of a live publish', async () => {
    const victim = await Chat21Peer.connect(s.mqttUrl, 'wilma', await s.token('wilma'));
    // A will with a valid message, and one whose payload fails the message schema.
    for (const [who, payload] of [
      ['walter', { text: 'last words', type: 'text' }],
      ['wendel', { text: 42 }],
    ] as const) {
      const c = await Chat21Peer.connect(s.mqttUrl, who, await s.token(who), {
        will: { topic: `apps/${APP}/outgoing/users/${who}/messages/wilma/outgoing`, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false },
      });
      (c.client.stream as Socket).destroy();
    }
    await victim.waitAdded((m) => m.text === 'last words', 'valid will');
    await sleep(300);
    expect(victim.added().map((m) => m.text)).toEqual(['last words']);
    await victim.close();
  });

  it('a will on a topic the ACL refuses is refused at CONNECT', async () => {
    await expect(
      Chat21Peer.connect(s.mqttUrl, 'wade', await s.token('wade'), {
        will: { topic: `apps/${APP}/outgoing/users/someone-else/messages/wilma/outgoing`, payload: Buffer.from('{"text":"x"}'), qos: 1, retain: false },
      }),
    ).rejects.toThrow(/not authorized/i);
  });
});

describe('MQTT clients of a built-in account', () => {
  const api = async (method: string, path: string, token?: string, body?: unknown) => {
    const r = await fetch(`${s.url}/api/v1${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: (r.status === 204 ? {} : await r.json()) as Record<string, unknown> };
  };
  /** A client of `token` subscribed to its user's inbox; `closed` turns true when the server ends it. */
  const connect = async (user: string, token: string, clientId: string) => {
    const client = mqtt.connect(s.mqttUrl, { username: 'JWT', password: token, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
    const state = { client, closed: false, got: [] as string[] };
    client.on('close', () => (state.closed = true));
    client.on('message', (_t, payload) => state.got.push(String((JSON.parse(payload.toString()) as { text?: unknown }).text)));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(inbox(user));
    return state;
  };

  it('signing out ends the MQTT clients of that session and of no other; ending the other sessions ends theirs', async () => {
    const user = 'mqttsignout';
    const first = (await api('POST', '/auth/register', undefined, { username: user, password: 'correct horse battery' })).body;
    const second = (await api('POST', '/auth/login', undefined, { username: user, password: 'correct horse battery' })).body;
    const third = (await api('POST', '/auth/login', undefined, { username: user, password: 'correct horse battery' })).body;
    const a = await connect(user, first.accessToken as string, 'a');
    const b = await connect(user, second.accessToken as string, 'b');
    const c = await connect(user, third.accessToken as string, 'c');
    expect((await api('POST', '/auth/logout', first.accessToken as string)).status).toBe(204);
    await waitFor(() => a.closed, 5000, "the signed-out session's client closed");
    // A direct message afterwards reaches the sessions still signed in, not the ended one.
    const peer = await s.client('mqttsignout-peer');
    const dm = await peer.direct(user);
    await peer.send(dm.id, 'after sign-out');
    await waitFor(() => b.got.includes('after sign-out') && c.got.includes('after sign-out'), 5000, 'the other sessions still receive');
    expect(a.got).not.toContain('after sign-out');
    expect(b.closed || c.closed).toBe(false);
    // "End every other session" from the second session's token: the third's client ends, its own stays.
    expect((await api('DELETE', '/auth/sessions', second.accessToken as string)).body).toEqual({ ended: 1 });
    await waitFor(() => c.closed, 5000, "the other session's client closed");
    await sleep(200);
    expect(b.closed).toBe(false);
    for (const x of [a, b, c]) x.client.end(true);
  });
});
