import { SignJWT } from 'jose';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, rest, sleep, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer({ mqtt: { enabled: true, port: 0, maxPayloadBytes: 1024 } });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

describe('MQTT topic ACL and authentication', () => {
  it("subscribing to another user's inbox is refused and counted; nothing of it arrives", async () => {
    const spy = await Chat21Peer.connect(s.mqttUrl, 'mallory', await s.token('mallory'));
    const victim = await Chat21Peer.connect(s.mqttUrl, 'victor', await s.token('victor'));
    for (const filter of [`apps/${APP}/users/victor/#`, `apps/${APP}/users/+/messages/#`, '#', `apps/${APP}/#`, `apps/other/users/mallory/#`]) {
      const err = await spy.client.subscribeAsync(filter).then(
        () => null,
        (e: { packet?: { granted?: number[] } }) => e,
      );
      expect(err?.packet?.granted, filter).toEqual([128]);
    }
    expect(spy.closed).toBe(false);
    const sender = await Chat21Peer.connect(s.mqttUrl, 'walt', await s.token('walt'));
    await sender.send('victor', 'private to victor');
    await victim.waitAdded((m) => m.text === 'private to victor');
    await sleep(150);
    expect(spy.received).toEqual([]);
    expect(await metric('parley_acl_denied_total{transport="mqtt",action="subscribe"}')).toMatch(/ 5$/);
    for (const p of [spy, victim, sender]) await p.close();
  });

  it("publishing into another user's outgoing or inbox subtree closes the connection and delivers nothing", async () => {
    const victim = await Chat21Peer.connect(s.mqttUrl, 'vera', await s.token('vera'));
    const target = await Chat21Peer.connect(s.mqttUrl, 'tom', await s.token('tom'));
    for (const topic of [
      `apps/${APP}/outgoing/users/vera/messages/tom/outgoing`,
      `apps/${APP}/users/vera/conversations/tom/archive`,
      `apps/${APP}/users/mick/messages/tom/clientadded`,
    ]) {
      const spy = await Chat21Peer.connect(s.mqttUrl, 'mick', await s.token('mick'));
      spy.client.publish(topic, JSON.stringify({ text: 'forged', type: 'text', channel_type: 'direct' }), { qos: 0 });
      await waitFor(() => spy.closed, 5000, `disconnect after ${topic}`);
    }
    await sleep(150);
    expect(target.received).toEqual([]);
    expect(victim.received).toEqual([]);
    expect((await rest(s.url, await s.token('tom'), 'GET', '/tom/conversations')).body.result).toEqual([]);
    expect(await metric('parley_acl_denied_total{transport="mqtt",action="publish"}')).toMatch(/ 3$/);
    await victim.close();
    await target.close();
  });

  it('an expired, forged or missing token is refused at connect', async () => {
    const expired = await s.token('ivan', { expiresIn: -60 });
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ivan')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-server-secret-at-all'));
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"ivan"}').toString('base64url')}.`;
    for (const password of [expired, forged, none, '']) {
      await expect(mqtt.connectAsync(s.mqttUrl, { username: 'JWT', password, reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(
        /Bad username or password|Not authorized|Connection refused/i,
      );
    }
  });

  it('a connection is closed when its token expires', async () => {
    const peer = await Chat21Peer.connect(s.mqttUrl, 'kim', await s.token('kim', { expiresIn: 2 }));
    await waitFor(() => peer.closed, 8000, 'close at expiry');
  });
});

describe('MQTT subscriptions per client', () => {
  it('a client holds at most mqtt.maxSubscriptions filters; one more is refused, the connection stays', async () => {
    // Every publication to a user is matched against each filter of each of its clients: an
    // unbounded list held memory and slowed every delivery to that user.
    const peer = await Chat21Peer.connect(s.mqttUrl, 'hoarder', await s.token('hoarder'));
    const own = (i: number) => `apps/${APP}/users/hoarder/messages/x${i}/#`;
    const granted = await peer.client.subscribeAsync(Array.from({ length: 99 }, (_, i) => own(i)));
    expect(granted.map((g) => g.qos)).toEqual(Array.from({ length: 99 }, () => 0));
    // With the peer's own inbox filter, that is 100: the next new one is refused.
    const refused = await peer.client.subscribeAsync(own(100)).then(
      () => null,
      (e: { packet?: { granted?: number[] } }) => e,
    );
    expect(refused?.packet?.granted).toEqual([128]);
    // A filter it holds may be subscribed again, and one given up makes room for another.
    expect((await peer.client.subscribeAsync(own(5)))[0]?.qos).toBe(0);
    await peer.client.unsubscribeAsync(own(5));
    expect((await peer.client.subscribeAsync(own(100)))[0]?.qos).toBe(0);
    expect(peer.closed).toBe(false);
    const sender = await Chat21Peer.connect(s.mqttUrl, 'giver', await s.token('giver'));
    await sender.send('hoarder', 'still delivered');
    await peer.waitAdded((m) => m.text === 'still delivered');
    for (const p of [peer, sender]) await p.close();
  });
});

describe('MQTT bad payloads', () => {
  it('malformed and oversized payloads are refused with an error reply and have no effect', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'nina', await s.token('nina'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'omar', await s.token('omar'));
    const out = `apps/${APP}/outgoing/users/nina/messages/omar/outgoing`;
    await a.publish(out, '{not json');
    await a.publish(out, JSON.stringify([1, 2]));
    await a.publish(out, { text: 42 });
    await a.publish(out, { text: '' });
    await a.publish(out, { text: 'x'.repeat(2000) });
    await a.publish(`apps/${APP}/users/nina/conversations/omar/update`, { is_new: false, evil: true });
    await a.publish(`apps/${APP}/users/nina/messages/omar/nope.1/update`, { status: 200 });
    await a.publish(`apps/${APP}/users/nina/whatever`, {});
    await waitFor(() => a.on('/errors/clienterror').length === 8, 5000, 'eight error replies');
    expect(a.on('/errors/clienterror').map((r) => r.body.code)).toEqual([
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'too_large',
      'invalid',
      'invalid',
      'invalid',
    ]);
    expect(a.closed).toBe(false);
    // The connection still works, and nothing of the above was stored or delivered.
    await a.send('omar', 'valid one');
    await b.waitAdded((m) => m.text === 'valid one');
    const hist = await rest(s.url, await s.token('omar'), 'GET', '/omar/conversations/nina/messages');
    expect((hist.body.result as Array<Record<string, unknown>>).map((m) => m.text)).toEqual(['valid one']);
    expect(b.added()).toHaveLength(1);
    await a.close();
    await b.close();
  });
});

describe('MQTT packet size on TCP', () => {
  it('a packet announcing more than the limit ends the connection before it is buffered; others are unaffected', async () => {
    const { createConnection } = await import('node:net');
    const port = Number(new URL(s.mqttUrl).port);
    const sock = createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let closed = false;
    sock.on('close', () => {
      closed = true;
    });
    sock.on('error', () => {});
    // PUBLISH with a remaining length of 50 MiB (varint 0x80 0x80 0x80 0x19), then 256 KiB of it.
    sock.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x19]));
    for (let i = 0; i < 4 && !closed; i++) sock.write(Buffer.alloc(64 * 1024, 1));
    await waitFor(() => closed, 5000, 'connection closed by the server');
    const ok = await Chat21Peer.connect(s.mqttUrl, 'paul', await s.token('paul'));
    expect(ok.closed).toBe(false);
    await ok.close();
  });

  it('follows packet boundaries across chunks', async () => {
    const { PacketGuard } = await import('../src/transport/mqtt/packet-guard.js');
    const g = new PacketGuard(200);
    // Two packets (lengths 3 and 130, the second's length in two bytes), split at odd places.
    const bytes = Buffer.concat([Buffer.from([0x30, 3, 1, 2, 3, 0x30, 0x82, 0x01]), Buffer.alloc(130, 7)]);
    for (const cut of [1, 2, 6, 7, 50]) {
      const h = new PacketGuard(200);
      expect(h.accept(bytes.subarray(0, cut)) && h.accept(bytes.subarray(cut))).toBe(true);
    }
    expect(g.accept(Buffer.from([0x30, 0xc9, 0x01]))).toBe(false); // 201 > 200
    expect(new PacketGuard(1 << 30).accept(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toBe(false); // 5-byte length
  });
});
