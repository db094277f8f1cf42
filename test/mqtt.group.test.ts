import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, rest, sleep, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer();
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

const label = (m: Record<string, unknown>) => ((m.attributes as Record<string, unknown> | undefined)?.messagelabel as { key?: string } | undefined)?.key;

describe('MQTT groups', () => {
  it('create, send, join with replay, set members and leave, with their notifications', async () => {
    const tok = { ann: await s.token('ann'), ben: await s.token('ben'), cat: await s.token('cat'), dan: await s.token('dan') };
    const ann = await Chat21Peer.connect(s.mqttUrl, 'ann', tok.ann);
    const ben = await Chat21Peer.connect(s.mqttUrl, 'ben', tok.ben);
    const cat = await Chat21Peer.connect(s.mqttUrl, 'cat', tok.cat);
    const dan = await Chat21Peer.connect(s.mqttUrl, 'dan', tok.dan);
    const gid = 'group-team1';

    const created = await rest(s.url, tok.ann, 'POST', '/groups', {
      group_id: gid,
      group_name: 'Team',
      group_members: { ben: 1 },
      attributes: { color: 'red' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      success: true,
      group: { uid: gid, name: 'Team', owner: 'ann', members: { ann: 1, ben: 1 }, attributes: { color: 'red' }, appId: APP },
    });
    // System info messages: the group was created, ben joined.
    await ben.waitAdded((m) => label(m) === 'MEMBER_JOINED_GROUP', 'join info');
    await ann.waitAdded((m) => label(m) === 'GROUP_CREATED', 'created info');
    const info = ann.added(gid).find((m) => label(m) === 'MEMBER_JOINED_GROUP')!;
    expect(info).toMatchObject({ sender: 'system', recipient: gid, channel_type: 'group', attributes: { subtype: 'info' } });

    await ann.send(gid, 'before cat');
    // Every member gets a status-150 copy, the sender included.
    for (const p of [ann, ben]) {
      const m = await p.waitAdded((x) => x.text === 'before cat');
      expect(m).toMatchObject({ status: 150, sender: 'ann', recipient: gid, channel_type: 'group', conversWith: gid });
    }
    expect(ann.on('/clientadded').filter((r) => r.body.text === 'before cat')[0]!.topic).toBe(`apps/${APP}/users/ann/messages/${gid}/clientadded`);

    // Join: everyone (cat included) gets groups/clientupdated; cat gets the history first.
    const joined = await rest(s.url, tok.ann, 'POST', `/groups/${gid}/members`, { member_id: 'cat' });
    expect(joined.body).toMatchObject({ success: true, result: { members: { ann: 1, ben: 1, cat: 1 } } });
    for (const p of [ann, ben, cat]) {
      await waitFor(() => p.on(`/groups/${gid}/clientupdated`).length === 1, 5000, `${p.user} group update`);
      expect(p.on(`/groups/${gid}/clientupdated`)[0]!.body).toMatchObject({
        uid: gid,
        members: { ann: 1, ben: 1, cat: 1 },
        notification: { messagelabel: { key: 'MEMBER_JOINED_GROUP', parameters: { member_id: 'cat' } } },
      });
    }
    const replayed = await cat.waitAdded((m) => m.text === 'before cat', 'history replay');
    expect(replayed).toMatchObject({ __history: 'true', status: 150, attributes: { sendnotification: false } });
    await cat.waitAdded((m) => label(m) === 'MEMBER_JOINED_GROUP');
    expect(dan.received).toEqual([]);

    // Set members: dan in, ben out.
    const set = await rest(s.url, tok.ann, 'PUT', `/groups/${gid}/members`, { members: { ann: 1, cat: 1, dan: 1 } });
    expect(set.body).toMatchObject({ success: true, result: { members: { ann: 1, cat: 1, dan: 1 } } });
    await waitFor(() => ben.on(`/groups/${gid}/clientupdated`).length === 2, 5000, 'ben told of set members');
    await dan.waitAdded((m) => m.text === 'before cat' && m.__history === 'true', 'dan replay');
    await ann.send(gid, 'after set');
    await dan.waitAdded((m) => m.text === 'after set');
    await cat.waitAdded((m) => m.text === 'after set');
    await sleep(200);
    expect(ben.added().some((m) => m.text === 'after set')).toBe(false);

    // Leave: cat leaves; old members (cat included) are told; cat gets nothing more.
    const left = await rest(s.url, tok.cat, 'DELETE', `/groups/${gid}/members/cat`);
    expect(left.body).toMatchObject({ success: true, result: { members: { ann: 1, dan: 1 } } });
    for (const p of [ann, cat, dan]) {
      await waitFor(
        () =>
          p.on(`/groups/${gid}/clientupdated`).some((r) => (r.body.notification as { messagelabel: { key: string } }).messagelabel.key === 'MEMBER_LEFT_GROUP'),
        5000,
        `${p.user} told of leave`,
      );
    }
    await ann.waitAdded((m) => label(m) === 'MEMBER_LEFT_GROUP');
    await ann.send(gid, 'after leave');
    await dan.waitAdded((m) => m.text === 'after leave');
    await sleep(200);
    expect(cat.added().some((m) => m.text === 'after leave')).toBe(false);

    // Rename and attributes notify the members; the group reads back.
    await rest(s.url, tok.ann, 'PUT', `/groups/${gid}`, { group_name: 'Team B' });
    await rest(s.url, tok.ann, 'PUT', `/groups/${gid}/attributes`, { attributes: { color: 'blue' } });
    await waitFor(
      () => dan.on(`/groups/${gid}/clientupdated`).some((r) => r.body.name === 'Team B' && (r.body.attributes as { color: string }).color === 'blue'),
      5000,
      'rename and attributes',
    );
    const g = await rest(s.url, tok.dan, 'GET', `/groups/${gid}`);
    expect(g.body).toMatchObject({ success: true, result: { uid: gid, name: 'Team B', attributes: { color: 'blue' }, members: { ann: 1, dan: 1 } } });
    // Only owners and admins change a group.
    expect((await rest(s.url, tok.dan, 'PUT', `/groups/${gid}/attributes`, { attributes: { x: 1 } })).status).toBe(403);
    expect((await rest(s.url, tok.cat, 'GET', `/groups/${gid}`)).status).toBe(403);
    for (const p of [ann, ben, cat, dan]) await p.close();
  });

  it('a non-member cannot post into a group, and an unknown group is refused with a clear error', async () => {
    const tokO = await s.token('olga');
    const olga = await Chat21Peer.connect(s.mqttUrl, 'olga', tokO);
    const eve = await Chat21Peer.connect(s.mqttUrl, 'eve', await s.token('eve'));
    await rest(s.url, tokO, 'POST', '/groups', { group_id: 'group-private', group_name: 'Private' });
    await eve.send('group-private', 'let me in');
    await waitFor(() => eve.on('/errors/clienterror').length === 1, 5000, 'forbidden reply');
    expect(eve.on('/errors/clienterror')[0]!.body).toMatchObject({
      code: 'forbidden',
      topic: `apps/${APP}/outgoing/users/eve/messages/group-private/outgoing`,
    });
    await eve.send('group-nowhere', 'anyone?');
    await waitFor(() => eve.on('/errors/clienterror').length === 2, 5000, 'not found reply');
    expect(eve.on('/errors/clienterror')[1]!.body).toMatchObject({ code: 'not_found', message: expect.stringContaining('unknown group') });
    await sleep(150);
    expect(eve.added()).toEqual([]);
    expect(olga.added().some((m) => m.text === 'let me in')).toBe(false);
    const hist = await rest(s.url, tokO, 'GET', '/olga/conversations/group-private/messages');
    expect((hist.body.result as Array<Record<string, unknown>>).filter((m) => m.sender === 'eve')).toEqual([]);
    await olga.close();
    await eve.close();
  });

  it('an inline group fans out to its members and the sender', async () => {
    const p = await Chat21Peer.connect(s.mqttUrl, 'pam', await s.token('pam'));
    const q = await Chat21Peer.connect(s.mqttUrl, 'quin', await s.token('quin'));
    const r = await Chat21Peer.connect(s.mqttUrl, 'rob', await s.token('rob'));
    await p.send('group-inline1', 'inline hello', { group: { members: { quin: 1, rob: 1 } } });
    for (const peer of [p, q, r]) {
      const m = await peer.waitAdded((x) => x.text === 'inline hello');
      expect(m).toMatchObject({ status: 150, sender: 'pam', recipient: 'group-inline1', channel_type: 'group' });
    }
    for (const peer of [p, q, r]) await peer.close();
  });

  it('messages sent through the Chat21 REST API count as messages in, as those over MQTT do', async () => {
    const tok = { eve: await s.token('eve'), fay: await s.token('fay') };
    const eve = await Chat21Peer.connect(s.mqttUrl, 'eve', tok.eve);
    const messagesIn = async (transport: string): Promise<number> => {
      const line = (await (await fetch(`${s.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`parley_messages_in_total{transport="${transport}"}`));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const before = { http: await messagesIn('http'), mqtt: await messagesIn('mqtt') };
    for (let i = 0; i < 2; i++) expect((await rest(s.url, tok.fay, 'POST', '/messages', { recipient_id: 'eve', text: `rest ${i}` })).status).toBe(200);
    await eve.waitAdded((m) => m.text === 'rest 1', 'the second REST message');
    await eve.send('fay', 'over mqtt');
    await eve.waitAdded((m) => m.text === 'over mqtt', 'its own copy');
    expect(await messagesIn('http')).toBe(before.http + 2);
    expect(await messagesIn('mqtt')).toBe(before.mqtt + 1);
    await eve.close();
  });
});
