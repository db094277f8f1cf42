// Chat21 conversation ids at the wire (raw mqtt clients, raw HTTP): a conversation id that
// names a user is always the direct conversation with that user, whatever rooms exist; only
// ids that read as group ids (they contain "group-") name rooms.
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

async function api(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${await s.token(user)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('Chat21 conversation ids cannot be squatted', () => {
  it('a channel whose id is a user id does not take over the direct conversation with that user', async () => {
    const alice = await Chat21Peer.connect(s.mqttUrl, 'sq_alice', await s.token('sq_alice'));
    const bob = await Chat21Peer.connect(s.mqttUrl, 'sq_bob', await s.token('sq_bob'));
    await bob.send('sq_alice', 'hello from bob');
    const got = await alice.waitAdded((m) => m.text === 'hello from bob');

    // Eve creates a public channel named after Bob, adds Alice and posts in it.
    expect((await api('sq_eve', 'POST', '/rooms', { kind: 'channel', name: 'Bob', room: 'sq_bob' })).status).toBe(201);
    expect((await api('sq_eve', 'POST', '/rooms/sq_bob/members', { user: 'sq_alice' })).status).toBe(201);
    expect((await api('sq_eve', 'POST', '/rooms/sq_bob/messages', { text: 'I am bob now' })).status).toBe(201);
    const fake = await alice.waitAdded((m) => m.text === 'I am bob now', 'channel message');
    expect(fake.conversWith).not.toBe('sq_bob');
    expect(fake).toMatchObject({ channel_type: 'group', sender: 'sq_eve' });
    const tokA = await s.token('sq_alice');

    // History and conversation detail: the direct conversation.
    const hist = await rest(s.url, tokA, 'GET', '/sq_alice/conversations/sq_bob/messages');
    expect((hist.body.result as Array<{ text: string }>).map((m) => m.text)).toEqual(['hello from bob']);
    const detail = await rest(s.url, tokA, 'GET', '/sq_alice/conversations/sq_bob');
    expect(detail.body.result).toEqual([expect.objectContaining({ conversWith: 'sq_bob', channel_type: 'direct', last_message_text: 'hello from bob' })]);

    // A receipt reaches Bob as a return receipt.
    await alice.publish(`apps/${APP}/users/sq_alice/messages/sq_bob/${String(got.message_id)}/update`, { status: 200 });
    await waitFor(() => bob.on(`/${String(got.message_id)}/clientupdated`).length === 1, 5000, 'return receipt');

    // Marking read and archiving act on the direct conversation.
    await alice.publish(`apps/${APP}/users/sq_alice/conversations/sq_bob/update`, { is_new: false });
    await waitFor(() => alice.on('/conversations/sq_bob/clientupdated').length === 1, 5000, 'conversation update');
    await alice.publish(`apps/${APP}/users/sq_alice/conversations/sq_bob/archive`, {});
    await waitFor(() => alice.on('/archived_conversations/sq_bob/clientadded').length === 1, 5000, 'archived');
    expect(alice.on('/archived_conversations/sq_bob/clientadded')[0]!.body).toMatchObject({ channel_type: 'direct', last_message_text: 'hello from bob' });
    const archived = await rest(s.url, tokA, 'GET', '/sq_alice/conversations/archived');
    expect(archived.body.result).toEqual([expect.objectContaining({ conversWith: 'sq_bob', channel_type: 'direct' })]);
    expect(alice.on('/errors/clienterror')).toEqual([]);
    // The channel is still Alice's conversation, under its group id.
    const active = await rest(s.url, tokA, 'GET', '/sq_alice/conversations');
    expect(active.body.result).toEqual([expect.objectContaining({ conversWith: fake.conversWith, channel_type: 'group', last_message_text: 'I am bob now' })]);
    await alice.close();
    await bob.close();
  });

  it('a message to a user id with an inline group is refused and creates no room', async () => {
    const eve = await Chat21Peer.connect(s.mqttUrl, 'sq_eve2', await s.token('sq_eve2'));
    await eve.send('sq_carl', 'hijack', { channel_type: 'group', group: { members: { sq_eve2: 1, sq_dan: 1 } } });
    await waitFor(() => eve.on('/errors/clienterror').length === 1, 5000, 'error reply');
    expect(eve.on('/errors/clienterror')[0]!.body).toMatchObject({ code: 'invalid' });
    expect((await api('sq_eve2', 'GET', '/rooms/sq_carl')).status).toBe(404);
    // Carl's direct conversations still work.
    const dan = await Chat21Peer.connect(s.mqttUrl, 'sq_dan', await s.token('sq_dan'));
    const carl = await Chat21Peer.connect(s.mqttUrl, 'sq_carl', await s.token('sq_carl'));
    await dan.send('sq_carl', 'hi carl');
    expect(await carl.waitAdded((m) => m.text === 'hi carl')).toMatchObject({ channel_type: 'direct', conversWith: 'sq_dan' });
    await sleep(50);
    for (const p of [eve, dan, carl]) await p.close();
  });
});
