// MQTT clients that stop reading, at the wire with a raw TCP client: every byte queued to a
// client (deliveries and error replies) counts toward `limits.slowConsumerBytes`, publishes in
// flight per client are capped, and past either the client is disconnected — while every
// other client keeps getting its messages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, RawMqtt, sleep, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer({ mqtt: { enabled: true, port: 0, maxInflight: 50 }, limits: { slowConsumerBytes: 1024 * 1024 } });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

const mqttClients = (): number => s.parley.mqtt!.transport.connectionCount;

async function api(token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${s.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('MQTT slow consumers', () => {
  it('a client that stops reading while its publishes draw error replies is disconnected', async () => {
    const before = mqttClients();
    const raw = await RawMqtt.connect(s.mqttUrl, await s.token('stella'), 'stella-1');
    await raw.subscribe(`apps/${APP}/users/stella/#`);
    raw.pause();
    await waitFor(() => mqttClients() === before + 1, 5000, 'registered');
    // Each publish (an unknown operation) is answered on errors/clienterror, echoing its topic.
    const topic = `apps/${APP}/users/stella/${'x'.repeat(400)}`;
    for (let i = 0; i < 30_000 && !raw.closed && mqttClients() > before; i++) {
      if (!(await raw.publish(topic, '{}'))) break;
    }
    await waitFor(() => mqttClients() === before, 10_000, 'stalled client disconnected');
    raw.destroy();
  });

  it("deliveries to a stalled client do not hold up anyone else's, and the stalled client is disconnected", async () => {
    const admin = await s.token('root', { admin: true });
    const before = mqttClients();
    const raw = await RawMqtt.connect(s.mqttUrl, await s.token('stan'), 'stan-1');
    await raw.subscribe(`apps/${APP}/users/stan/#`);
    raw.pause();
    expect((await api(admin, 'POST', '/rooms', { kind: 'group', name: 'Busy', room: 'group-busy' })).status).toBe(201);
    expect((await api(admin, 'POST', '/rooms/group-busy/members', { user: 'stan' })).status).toBe(201);
    const a = await Chat21Peer.connect(s.mqttUrl, 'bea', await s.token('bea'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'ben', await s.token('ben'));
    await waitFor(() => mqttClients() === before + 3, 5000, 'registered');

    const big = 'y'.repeat(4000);
    let sent = 0;
    for (let round = 0; round < 40 && mqttClients() > before + 2; round++) {
      const res = await api(admin, 'POST', '/server/post', { rooms: ['group-busy'], messages: Array.from({ length: 100 }, () => ({ text: big })) });
      expect(res.status).toBe(200);
      sent += 100;
      // Meanwhile two other users talk, and their messages arrive at once.
      const text = `ping ${round}`;
      await a.send('ben', text);
      const t0 = Date.now();
      await b.waitAdded((m) => m.text === text, text);
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    await waitFor(() => mqttClients() === before + 2, 10_000, `stalled client disconnected (after ${sent} messages)`);
    raw.destroy();
    await a.close();
    await b.close();
  });
});

describe('MQTT publishes in flight', () => {
  it('a client that pipelines more publishes than the cap is disconnected; others are unaffected', async () => {
    const before = mqttClients();
    const raw = await RawMqtt.connect(s.mqttUrl, await s.token('pia'), 'pia-1');
    await raw.subscribe(`apps/${APP}/users/pia/#`);
    await waitFor(() => mqttClients() === before + 1, 5000, 'registered');
    const out = `apps/${APP}/outgoing/users/pia/messages/paul/outgoing`;
    const burst = Array.from({ length: 400 }, (_, i) => raw.publish(out, JSON.stringify({ text: `m${i}`, type: 'text' })));
    await Promise.all(burst);
    await waitFor(() => raw.closed || mqttClients() === before, 10_000, 'disconnected');
    const ok = await Chat21Peer.connect(s.mqttUrl, 'paula', await s.token('paula'));
    await ok.send('paul', 'still fine');
    await ok.waitAdded((m) => m.text === 'still fine');
    await sleep(50);
    await ok.close();
    raw.destroy();
  });
});
