// Regressions found by driving the real chat21client.js (v0.1.12.6 and v0.1.11, on mqtt 4 and 5)
// against Parley. Each test speaks the raw topics and REST calls exactly as that client does
// (payload shapes, QoS 0 publishes, the raw JWT in Authorization) with our own npm `mqtt` code.
import sharp from 'sharp';
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

type Doc = Record<string, unknown>;
const label = (m: Doc) => (m.attributes as Doc | null)?.messagelabel as { key?: string; parameters?: Record<string, string> } | undefined;

/** chat21client.sendMessage: every field present (undefined ones dropped by JSON), QoS 0. */
function clientSend(p: Chat21Peer, to: string, text: unknown, type: unknown, attributes: unknown, metadata: unknown, channelType: string): Promise<unknown> {
  const payload = JSON.stringify({ text, type, recipient_fullname: to, sender_fullname: p.user, attributes, metadata, channel_type: channelType });
  return p.client.publishAsync(`apps/${APP}/outgoing/users/${p.user}/messages/${to}/outgoing`, payload, { qos: 0, retain: false });
}

/** chat21client.groupCreate: POST /tilechat/groups with the raw JWT and what it was given. */
const groupCreate = (token: string, name: string, id: string | undefined, members: unknown) =>
  rest(s.url, token, 'POST', '/groups', { group_name: name, group_id: id, group_members: members });

describe('real chat21client compatibility', () => {
  it('attributes and metadata come back as sent: null stays null, objects and "" are kept', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'cc_a', await s.token('cc_a'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'cc_b', await s.token('cc_b'));
    await clientSend(a, 'cc_b', 'nulls', 'text', null, null, 'direct');
    await clientSend(a, 'cc_b', 'empties', 'text', {}, '', 'direct');
    await clientSend(a, 'cc_b', 'objects', 'text', { projectId: 'p' }, { src: 'x' }, 'direct');
    const nulls = await b.waitAdded((m) => m.text === 'nulls');
    // chat21 test 17 matches the conversation-added message with `!conv.attributes`.
    expect(nulls.attributes).toBeNull();
    expect(nulls.metadata).toBeNull();
    expect(await b.waitAdded((m) => m.text === 'empties')).toMatchObject({ attributes: {}, metadata: '' });
    expect(await b.waitAdded((m) => m.text === 'objects')).toMatchObject({ attributes: { projectId: 'p' }, metadata: { src: 'x' } });
    const hist = (await rest(s.url, await s.token('cc_b'), 'GET', '/cc_b/conversations/cc_a/messages')).body.result as Doc[];
    expect(hist.find((m) => m.text === 'nulls')).toMatchObject({ attributes: null, metadata: null });
    const convs = (await rest(s.url, await s.token('cc_a'), 'GET', '/cc_a/conversations')).body.result as Doc[];
    expect(convs[0]).toMatchObject({ conversWith: 'cc_b', last_message_text: 'objects', attributes: { projectId: 'p' } });
    await a.close();
    await b.close();
  });

  it('an attachment may have an empty text; a text message may not', async () => {
    const a = await Chat21Peer.connect(s.mqttUrl, 'cc_c', await s.token('cc_c'));
    const b = await Chat21Peer.connect(s.mqttUrl, 'cc_d', await s.token('cc_d'));
    await clientSend(a, 'cc_d', '', 'image', null, { src: 'http://x/y.png', width: 10, height: 20 }, 'direct');
    const img = await b.waitAdded((m) => m.type === 'image');
    expect(img).toMatchObject({ text: '', type: 'image', metadata: { src: 'http://x/y.png', width: 10, height: 20 }, status: 150 });
    const hist = (await rest(s.url, await s.token('cc_d'), 'GET', '/cc_d/conversations/cc_c/messages')).body.result as Doc[];
    expect(hist[0]).toMatchObject({ text: '', type: 'image' });
    await clientSend(a, 'cc_d', '', 'text', null, null, 'direct');
    await waitFor(() => a.on('/errors/clienterror').length === 1, 5000, 'empty text refused');
    expect(a.on('/errors/clienterror')[0]!.body).toMatchObject({ code: 'invalid', details: { field: 'text' } });
    await a.close();
    await b.close();
  });

  it('a Parley upload sent as a Chat21 image reaches Chat21 and Parley clients as the file, with a signed src per reader', async () => {
    const tok = { a: await s.token('cc_up'), b: await s.token('cc_down'), m: await s.token('cc_mallory') };
    const a = await Chat21Peer.connect(s.mqttUrl, 'cc_up', tok.a);
    const b = await Chat21Peer.connect(s.mqttUrl, 'cc_down', tok.b);
    const api = async (token: string, method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}) => {
      const r = await fetch(`${s.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...headers }, body: body ?? null });
      return (await r.json()) as Doc;
    };
    const room = (await api(tok.a, 'POST', '/direct/cc_down')).id as string;
    const png = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#123' } })
      .png()
      .toBuffer();
    const up = await api(tok.a, 'POST', `/rooms/${room}/attachments`, new Uint8Array(png), { 'content-type': 'image/png', 'x-filename': 'pic.png' });
    await clientSend(a, 'cc_down', '', 'image', null, { src: `${s.url}${up.url as string}`, width: 30, height: 20 }, 'direct');
    const img = await b.waitAdded((m) => m.type === 'image');
    expect(img).toMatchObject({ text: '', type: 'image', metadata: { name: 'pic.png', type: 'image/png', size: up.size, width: 30, height: 20, uid: up.id } });
    const src = (img.metadata as { src: string }).src;
    expect(src.startsWith(`${s.url}/api/v1/attachments/${up.id as string}?u=cc_down&`)).toBe(true);
    const file = await fetch(src);
    expect(file.status).toBe(200);
    expect((await sharp(Buffer.from(await file.arrayBuffer())).metadata()).width).toBe(30);
    // Parley's own clients see the message carrying the upload; the upload is bound to it.
    const hist = await api(tok.b, 'GET', `/rooms/${room}/messages`);
    const sent = (hist.messages as Doc[]).at(-1)!;
    expect(sent).toMatchObject({ text: '', data: { attachments: [{ id: up.id, name: 'pic.png', type: 'image/png', width: 30, height: 20 }] } });
    expect((await api(tok.a, 'GET', `/attachments/${up.id as string}/meta`)).message).toBe(sent.seq);
    // A file sent by a Parley client reaches the Chat21 client as a "file".
    const doc = await api(tok.b, 'POST', `/rooms/${room}/attachments`, 'some notes', { 'content-type': 'text/plain', 'x-filename': 'notes.txt' });
    await api(tok.b, 'POST', `/rooms/${room}/messages`, JSON.stringify({ text: 'the notes', attachments: [doc.id] }), { 'content-type': 'application/json' });
    const card = await a.waitAdded((m) => m.text === 'the notes');
    expect(card).toMatchObject({ type: 'file', metadata: { name: 'notes.txt', type: 'text/plain', size: 10, uid: doc.id } });
    expect((card.metadata as { src: string }).src).toContain('u=cc_up&');
    // Someone else's upload named in metadata.src is refused, and nothing is sent.
    const m = await Chat21Peer.connect(s.mqttUrl, 'cc_mallory', tok.m);
    await clientSend(m, 'cc_down', '', 'image', null, { src: `${s.url}/api/v1/attachments/${doc.id as string}` }, 'direct');
    await waitFor(() => m.on('/errors/clienterror').length === 1, 5000, 'foreign upload refused');
    expect(m.on('/errors/clienterror')[0]!.body).toMatchObject({ code: 'not_found', details: { attachment: doc.id } });
    await a.close();
    await b.close();
    await m.close();
  });

  it('group creation sends GROUP_CREATED and a MEMBER_JOINED_GROUP for every member, the creator included (chat21 test 4)', async () => {
    const tok = { o: await s.token('cc_owner'), m: await s.token('cc_mem') };
    const owner = await Chat21Peer.connect(s.mqttUrl, 'cc_owner', tok.o);
    const mem = await Chat21Peer.connect(s.mqttUrl, 'cc_mem', tok.m);
    const gid = 'group-cc4';
    expect((await groupCreate(tok.o, 'cc4', gid, { cc_mem: 1 })).status).toBe(201);
    const want = (p: Chat21Peer) =>
      waitFor(
        () => {
          const ls = p.added(gid).map(label);
          return (
            ls.some((l) => l?.key === 'GROUP_CREATED' && l.parameters?.creator === 'cc_owner') &&
            ls.some((l) => l?.key === 'MEMBER_JOINED_GROUP' && l.parameters?.member_id === 'cc_owner') &&
            ls.some((l) => l?.key === 'MEMBER_JOINED_GROUP' && l.parameters?.member_id === 'cc_mem')
          );
        },
        5000,
        `${p.user}: the three info messages`,
      );
    await want(owner);
    await want(mem);
    const joined = owner.added(gid).find((m) => label(m)?.parameters?.member_id === 'cc_owner')!;
    expect(joined).toMatchObject({ sender: 'system', text: 'cc_owner joined group on creation', message_id: `${gid}.1.joined`, recipient: gid });
    // The history holds both documents of the first message (newest first), and a receipt for
    // either id is accepted.
    const hist = (await rest(s.url, tok.o, 'GET', `/cc_owner/conversations/${gid}/messages`)).body.result as Doc[];
    expect(hist.slice(-2).map((m) => label(m)?.key)).toEqual(['MEMBER_JOINED_GROUP', 'GROUP_CREATED']);
    await mem.client.publishAsync(`apps/${APP}/users/cc_mem/messages/${gid}/${gid}.1.joined/update`, JSON.stringify({ status: 200 }), { qos: 0 });
    await sleep(200);
    expect(mem.on('/errors/clienterror')).toEqual([]);
    await owner.close();
    await mem.close();
  });

  it('a joining member gets the whole timeline replayed, info messages included (chat21 tests 10, 11)', async () => {
    const tok = { o: await s.token('cc_o2'), m: await s.token('cc_m2'), n: await s.token('cc_n2') };
    const owner = await Chat21Peer.connect(s.mqttUrl, 'cc_o2', tok.o);
    const newbie = await Chat21Peer.connect(s.mqttUrl, 'cc_n2', tok.n);
    const gid = 'group-cc11';
    await groupCreate(tok.o, 'cc11', gid, { cc_o2: 1, cc_m2: 1 });
    await clientSend(owner, gid, 'first message', 'text', null, null, 'group');
    await owner.waitAdded((m) => m.text === 'first message');
    await rest(s.url, tok.o, 'POST', `/groups/${gid}/members`, { member_id: 'cc_n2' });
    await waitFor(
      () => {
        const docs = newbie.added(gid);
        return (
          docs.some((m) => m.text === 'first message' && m.__history === 'true') &&
          docs.some((m) => label(m)?.key === 'GROUP_CREATED' && m.__history === 'true') &&
          ['cc_o2', 'cc_m2', 'cc_n2'].every((u) => docs.some((m) => label(m)?.key === 'MEMBER_JOINED_GROUP' && label(m)?.parameters?.member_id === u))
        );
      },
      5000,
      'replayed timeline',
    );
    const replayed = newbie.added(gid).filter((m) => m.__history === 'true');
    expect(replayed.map((m) => label(m)?.key ?? m.text)).toEqual(['GROUP_CREATED', 'MEMBER_JOINED_GROUP', 'MEMBER_JOINED_GROUP', 'first message']);
    for (const m of replayed) expect(m).toMatchObject({ status: 150, attributes: { sendnotification: false } });
    await owner.close();
    await newbie.close();
  });

  it('history of a conversation that does not exist yet is empty, not an error (lastMessages)', async () => {
    const tok = await s.token('cc_lonely');
    expect(await rest(s.url, tok, 'GET', '/cc_lonely/conversations/cc_stranger/messages')).toEqual({ status: 200, body: { success: true, result: [] } });
    expect(await rest(s.url, tok, 'GET', '/cc_lonely/conversations/group-nowhere-cc/messages')).toEqual({ status: 200, body: { success: true, result: [] } });
    expect(await rest(s.url, tok, 'GET', '/cc_lonely/conversations/cc_stranger')).toEqual({ status: 200, body: { success: true, result: [] } });
  });

  it('groupCreate with null members (or no id) creates the group', async () => {
    const tok = await s.token('cc_solo');
    const r = await groupCreate(tok, 'solo', 'group-cc-solo', null);
    expect(r).toMatchObject({ status: 201, body: { success: true, group: { uid: 'group-cc-solo', members: { cc_solo: 1 }, owner: 'cc_solo' } } });
    const r2 = await groupCreate(tok, 'no id', undefined, { cc_other: 1 });
    expect(r2.status).toBe(201);
    expect((r2.body.group as Doc).uid).toMatch(/^group-/);
  });
});
