import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, rest, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer();
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

describe('MQTT direct messages (Chat21 inbox pattern)', () => {
  it('a direct message reaches the sender with status 100 and the recipient with status 150', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'alice', await s.token('alice', { name: 'Alice' }));
    const b = await Chat21Peer.connect(s.mqttUrl, 'bob', await s.token('bob'));
    await a.send('bob', 'hello bob', { attributes: { projectId: 'p1' }, recipient_fullname: 'Bob B' });
    const mine = await a.waitAdded((m) => m.text === 'hello bob', 'own copy');
    const theirs = await b.waitAdded((m) => m.text === 'hello bob', 'delivered copy');
    expect(a.on('/clientadded')[0]!.topic).toBe(`apps/${APP}/users/alice/messages/bob/clientadded`);
    expect(b.on('/clientadded')[0]!.topic).toBe(`apps/${APP}/users/bob/messages/alice/clientadded`);
    expect(mine).toMatchObject({
      status: 100,
      sender: 'alice',
      recipient: 'bob',
      channel_type: 'direct',
      app_id: APP,
      attributes: { projectId: 'p1' },
      recipient_fullname: 'Bob B',
    });
    expect(theirs).toMatchObject({ status: 150, sender: 'alice', recipient: 'bob', sender_fullname: 'alice', message_id: mine.message_id });
    expect(typeof mine.timestamp).toBe('number');
    await a.close();
    await b.close();
  });
});

describe('MQTT receipts, conversation updates and archive', () => {
  it('a "received" receipt is stored and returned to the sender as status 250', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'carol', await s.token('carol'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'dave', await s.token('dave'));
    await a.send('dave', 'did you get this?');
    const got = await b.waitAdded((m) => m.text === 'did you get this?');
    const id = got.message_id as string;
    await b.publish(`apps/${APP}/users/dave/messages/carol/${id}/update`, { status: 200 });
    await waitFor(() => a.on(`/${id}/clientupdated`).length === 1, 5000, 'return receipt');
    const r = a.on(`/${id}/clientupdated`)[0]!;
    expect(r.topic).toBe(`apps/${APP}/users/carol/messages/dave/${id}/clientupdated`);
    expect(r.body).toEqual({ timelineOf: 'carol', message_id: id, status: 250 });
    // Both inbox copies keep their new status in the history.
    const mine = await rest(s.url, await s.token('carol'), 'GET', '/carol/conversations/dave/messages');
    const theirs = await rest(s.url, await s.token('dave'), 'GET', '/dave/conversations/carol/messages');
    expect((mine.body.result as Array<Record<string, unknown>>)[0]).toMatchObject({ message_id: id, status: 250, timelineOf: 'carol', conversWith: 'dave' });
    expect((theirs.body.result as Array<Record<string, unknown>>)[0]).toMatchObject({ message_id: id, status: 200, timelineOf: 'dave', conversWith: 'carol' });
    // A receipt with another status has no effect and is answered with an error.
    await b.publish(`apps/${APP}/users/dave/messages/carol/${id}/update`, { status: 300 });
    await waitFor(() => b.on('/errors/clienterror').length === 1, 5000, 'error reply');
    expect(b.on('/errors/clienterror')[0]!.body).toMatchObject({ code: 'invalid' });
    expect(a.on('/clientupdated')).toHaveLength(1);
    await a.close();
    await b.close();
  });

  it('a conversation update is echoed to the user, and archive moves the conversation until the next message', async () => {
    const tokE = await s.token('erin');
    const e = await Chat21Peer.connect(s.mqttUrl, 'erin', tokE);
    const f = await Chat21Peer.connect(s.mqttUrl, 'frank', await s.token('frank'));
    await f.send('erin', 'first');
    await e.waitAdded((m) => m.text === 'first');
    let active = await rest(s.url, tokE, 'GET', '/erin/conversations');
    expect(active.body.result).toEqual([
      expect.objectContaining({ conversWith: 'frank', is_new: true, archived: false, last_message_text: 'first', key: 'frank' }),
    ]);

    await e.publish(`apps/${APP}/users/erin/conversations/frank/update`, { is_new: false });
    await waitFor(() => e.on('/conversations/frank/clientupdated').length === 1, 5000, 'conversation update');
    expect(e.on('/conversations/frank/clientupdated')[0]!.body).toEqual({ is_new: false, timelineOf: 'erin', conversWith: 'frank' });
    active = await rest(s.url, tokE, 'GET', '/erin/conversations/frank');
    expect(active.body.result).toEqual([expect.objectContaining({ conversWith: 'frank', is_new: false })]);

    await e.publish(`apps/${APP}/users/erin/conversations/frank/archive`, {});
    await waitFor(() => e.on(`/archived_conversations/frank/clientadded`).length === 1, 5000, 'archived');
    const deleted = e.on('/conversations/frank/clientdeleted');
    expect(deleted).toHaveLength(1);
    expect(deleted[0]!.topic).toBe(`apps/${APP}/users/erin/conversations/frank/clientdeleted`);
    expect(deleted[0]!.body).toMatchObject({ conversWith: 'frank', archived: true, last_message_text: 'first' });
    expect((await rest(s.url, tokE, 'GET', '/erin/conversations')).body.result).toEqual([]);
    expect((await rest(s.url, tokE, 'GET', '/erin/conversations/archived')).body.result).toEqual([
      expect.objectContaining({ conversWith: 'frank', archived: true }),
    ]);
    expect((await rest(s.url, tokE, 'GET', '/erin/archived_conversations/frank')).body.result).toHaveLength(1);
    // Frank's side is untouched, and a new message brings Erin's conversation back.
    expect((await rest(s.url, await s.token('frank'), 'GET', '/frank/conversations')).body.result).toHaveLength(1);
    await f.send('erin', 'second');
    await e.waitAdded((m) => m.text === 'second');
    expect((await rest(s.url, tokE, 'GET', '/erin/conversations')).body.result).toEqual([
      expect.objectContaining({ conversWith: 'frank', archived: false, is_new: true, last_message_text: 'second' }),
    ]);
    expect((await rest(s.url, tokE, 'GET', '/erin/archived_conversations')).body.result).toEqual([]);
    await e.close();
    await f.close();
  });

  it("the REST API sends messages and archives with the raw JWT, and refuses other users' paths", async () => {
    const g = await Chat21Peer.connect(s.mqttUrl, 'gina', await s.token('gina'));
    const tokH = await s.token('hank');
    const sent = await rest(s.url, tokH, 'POST', '/messages', { recipient_id: 'gina', recipient_fullname: 'Gina', sender_fullname: 'Hank', text: 'over http' });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ success: true, result: { text: 'over http', sender: 'hank', recipient: 'gina', status: 100 } });
    await g.waitAdded((m) => m.text === 'over http' && m.status === 150);
    const arch = await rest(s.url, tokH, 'DELETE', '/conversations/gina');
    expect(arch).toEqual({ status: 201, body: { success: true } });
    expect((await rest(s.url, tokH, 'GET', '/hank/conversations/archived')).body.result).toHaveLength(1);
    const other = await rest(s.url, tokH, 'GET', '/gina/conversations');
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ success: false, code: 'forbidden' });
    const noAuth = await fetch(`${s.url}/api/${APP}/hank/conversations`);
    expect(noAuth.status).toBe(401);
    const bad = await rest(s.url, tokH, 'POST', '/messages', { recipient_id: 'gina' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ success: false, code: 'invalid' });
    const inst = await rest(s.url, tokH, 'POST', '/hank/instances/device-1', { platform: 'ios', token: 'abc' });
    expect(inst).toEqual({ status: 200, body: { success: true } });
    // Parley's own API still answers under /api/v1.
    const me = await fetch(`${s.url}/api/v1/me`, { headers: { authorization: `Bearer ${tokH}` } });
    expect(me.status).toBe(200);
    await g.close();
  });
});
