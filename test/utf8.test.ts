// Bytes that are not UTF-8 are refused at the wire with `invalid`, never stored as U+FFFD:
// in a REST body and in an MQTT payload, as a WebSocket text frame is closed with 1007.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP, Chat21Peer, rest, startMqttServer } from './mqtt-helpers.js';
import { waitFor, type TestServer } from './helpers.js';

let s: TestServer & { mqttUrl: string };
beforeAll(async () => {
  s = await startMqttServer();
});
afterAll(async () => {
  await s?.close();
});

/** `{"text":"caf<0xE9>"}`: Latin-1 bytes where UTF-8 is required. */
const latin1 = (before: string, after: string) => Buffer.concat([Buffer.from(before), Buffer.from([0xe9, 0xff]), Buffer.from(after)]);

describe('invalid UTF-8', () => {
  it('a REST body is refused with invalid and nothing is stored', async () => {
    const token = await s.token('utfa');
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${s.url}/api/v1/rooms`, { method: 'POST', headers: h, body: JSON.stringify({ kind: 'channel', name: 'utf' }) });
    const room = ((await created.json()) as { id: string }).id;
    const r = await fetch(`${s.url}/api/v1/rooms/${room}/messages`, { method: 'POST', headers: h, body: latin1('{"text":"caf', '"}') });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('invalid');
    const history = await fetch(`${s.url}/api/v1/rooms/${room}/messages`, { headers: h });
    expect(((await history.json()) as { messages: unknown[] }).messages.filter((m) => (m as { kind: string }).kind === 'text')).toEqual([]);
  });

  it('an MQTT payload is refused with invalid and nothing is delivered', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'utfb', await s.token('utfb'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'utfc', await s.token('utfc'));
    await a.publish(
      `apps/${APP}/outgoing/users/utfb/messages/utfc/outgoing`,
      latin1('{"text":"caf', '","type":"text","channel_type":"direct","sender_fullname":"b","recipient_fullname":"c"}'),
    );
    await waitFor(() => a.on('/errors/clienterror').length === 1, 5000, 'error reply');
    expect(a.on('/errors/clienterror')[0]!.body).toMatchObject({ code: 'invalid' });
    const conv = await rest(s.url, await s.token('utfc'), 'GET', '/utfc/conversations/utfb/messages');
    expect(conv.body.result ?? []).toEqual([]);
    await a.close();
    await b.close();
  });
});
