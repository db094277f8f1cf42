import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from './helpers.js';
import { APP, Chat21Peer, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => { s = await startMqttServer(); });
afterAll(async () => { await s.close(); removeDir(s.dataDir); });

describe('MQTT direct messages (Chat21 inbox pattern)', () => {
  it('a direct message reaches the sender with status 100 and the recipient with status 150', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'alice', await s.token('alice', { name: 'Alice' }));
    const b = await Chat21Peer.connect(s.mqttUrl, 'bob', await s.token('bob'));
    await a.send('bob', 'hello bob', { attributes: { projectId: 'p1' }, recipient_fullname: 'Bob B' });
    const mine = await a.waitAdded((m) => m.text === 'hello bob', 'own copy');
    const theirs = await b.waitAdded((m) => m.text === 'hello bob', 'delivered copy');
    expect(a.on('/clientadded')[0]!.topic).toBe(`apps/${APP}/users/alice/messages/bob/clientadded`);
    expect(b.on('/clientadded')[0]!.topic).toBe(`apps/${APP}/users/bob/messages/alice/clientadded`);
    expect(mine).toMatchObject({ status: 100, sender: 'alice', recipient: 'bob', channel_type: 'direct', app_id: APP, attributes: { projectId: 'p1' }, recipient_fullname: 'Bob B' });
    expect(theirs).toMatchObject({ status: 150, sender: 'alice', recipient: 'bob', sender_fullname: 'alice', message_id: mine.message_id });
    expect(typeof mine.timestamp).toBe('number');
    await a.close();
    await b.close();
  });
});
