import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, rest, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer();
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

describe('MQTT and WebSocket clients share the same conversations', () => {
  it('a direct message sent over MQTT reaches the WebSocket client, and the other way round, in one history', async () => {
    const ws = await s.client('wendy');
    const m = await Chat21Peer.connect(s.mqttUrl, 'max', await s.token('max'));
    const room = await ws.direct('max');
    const got = collect(ws, room.id);
    await m.send('wendy', 'from mqtt');
    await waitFor(() => got.some((x) => x.text === 'from mqtt'), 5000, 'ws receives');
    expect(got.find((x) => x.text === 'from mqtt')).toMatchObject({ room: room.id, user: 'max', kind: 'text' });
    await ws.send(room.id, 'from ws');
    const back = await m.waitAdded((x) => x.text === 'from ws');
    expect(back).toMatchObject({ sender: 'wendy', recipient: 'max', status: 150, channel_type: 'direct', conversWith: 'wendy' });
    expect(m.on('/clientadded').find((r) => r.body.text === 'from ws')!.topic).toBe(`apps/${APP}/users/max/messages/wendy/clientadded`);
    const hist = await ws.history(room.id, { limit: 10 });
    expect(hist.messages.filter((x) => x.kind === 'text').map((x) => x.text)).toEqual(['from mqtt', 'from ws']);
    await m.close();
  });

  it('a group room created over WebSocket is a Chat21 group for MQTT members, both ways (its Chat21 id reads as a group id)', async () => {
    const ws = await s.client('gwen');
    const m = await Chat21Peer.connect(s.mqttUrl, 'gus', await s.token('gus'));
    const room = await ws.createRoom('group', 'Mixed', { room: 'mixed1' });
    await ws.invite(room.id, 'gus');
    await m.waitAdded((x) => x.attributes !== undefined && (x.attributes as { subtype?: string }).subtype === 'info', 'join info');
    const got = collect(ws, room.id);
    await m.send('mixed1', 'hello group', { channel_type: 'group' });
    await waitFor(() => got.some((x) => x.text === 'hello group'), 5000, 'ws receives group message');
    await ws.send(room.id, 'hi gus');
    expect(await m.waitAdded((x) => x.text === 'hi gus')).toMatchObject({
      sender: 'gwen',
      recipient: 'group-~mixed1',
      conversWith: 'group-~mixed1',
      channel_type: 'group',
      status: 150,
      recipient_fullname: 'Mixed',
    });
    expect(m.on('/clientadded', '/messages/group-~mixed1/').length).toBeGreaterThan(0);
    const conv = await rest(s.url, await s.token('gus'), 'GET', '/gus/conversations');
    expect(conv.body.result).toEqual([expect.objectContaining({ conversWith: 'group-~mixed1', last_message_text: 'hi gus', is_new: true })]);
    // The Chat21 id works wherever a conversation or group id goes.
    await m.send('group-~mixed1', 'by its chat21 id');
    await waitFor(() => got.some((x) => x.text === 'by its chat21 id'), 5000, 'ws receives it');
    expect((await rest(s.url, await s.token('gus'), 'GET', '/groups/group-~mixed1')).body.result).toMatchObject({ uid: 'group-~mixed1', name: 'Mixed' });
    const hist = await rest(s.url, await s.token('gus'), 'GET', '/gus/conversations/group-~mixed1/messages');
    expect((hist.body.result as Array<{ text: string }>)[0]!.text).toBe('by its chat21 id');
    await m.close();
  });
});

describe('MQTT over WebSocket', () => {
  it('a client on ws://host/mqtt sends and receives like one on TCP', async () => {
    const overWs = await Chat21Peer.connect(s.mqttWsUrl, 'wanda', await s.token('wanda'));
    const overTcp = await Chat21Peer.connect(s.mqttUrl, 'ted', await s.token('ted'));
    await overWs.send('ted', 'via websocket');
    await overTcp.waitAdded((x) => x.text === 'via websocket' && x.status === 150);
    await overTcp.send('wanda', 'via tcp');
    await overWs.waitAdded((x) => x.text === 'via tcp' && x.status === 150);
    await overWs.waitAdded((x) => x.text === 'via websocket' && x.status === 100);
    // The ACL applies on WebSocket too.
    const err = await overWs.client.subscribeAsync(`apps/${APP}/users/ted/#`).then(
      () => null,
      (e: { packet?: { granted?: number[] } }) => e,
    );
    expect(err?.packet?.granted).toEqual([128]);
    await overWs.close();
    await overTcp.close();
  });

  it("a Chat21 client pointed at ws://host/ws (Chat21's own path) gets MQTT, while Parley's protocol keeps /ws", async () => {
    const chat21Path = `${s.url.replace('http', 'ws')}/ws`;
    const a = await Chat21Peer.connect(chat21Path, 'wsa', await s.token('wsa'));
    const b = await Chat21Peer.connect(s.mqttWsUrl, 'wsb', await s.token('wsb'));
    await a.send('wsb', 'over /ws');
    await b.waitAdded((x) => x.text === 'over /ws' && x.status === 150);
    const native = await s.client('wsa');
    expect((await native.listRooms()).rooms.some((r) => r.kind === 'direct')).toBe(true);
    await a.close();
    await b.close();
  });
});
