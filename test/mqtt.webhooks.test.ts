import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { Chat21Peer, startMqttServer } from './mqtt-helpers.js';

const got: Array<{ headers: Record<string, unknown>; body: Record<string, unknown> }> = [];
let hook: Server;
let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  hook = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const port = (hook.address() as { port: number }).port;
  s = await startMqttServer({
    plugins: {
      webhooks: { eventNames: 'chat21', endpoints: [{ url: `http://127.0.0.1:${port}/c21`, secret: 'webhook-secret-0123456789', events: ['message.sent'] }] },
    },
  });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
  await new Promise<void>((r) => hook.close(() => r()));
});

describe('webhooks with Chat21 event names', () => {
  it('a message sent over MQTT is posted as a Chat21 "message-sent" event', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'una', await s.token('una'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'vic', await s.token('vic'));
    await a.send('vic', 'hook me');
    const copy = await b.waitAdded((m) => m.text === 'hook me');
    await waitFor(() => got.length === 1, 5000, 'webhook delivery');
    expect(got[0]!.headers['x-parley-event']).toBe('message-sent');
    expect(got[0]!.body).toMatchObject({
      event_type: 'message-sent',
      app_id: 'tilechat',
      message_id: copy.message_id,
      data: { text: 'hook me', user: 'una', kind: 'text' },
    });
    expect(typeof got[0]!.body.createdAt).toBe('number');
    await a.close();
    await b.close();
  });
});
