// After a restart on the same data directory, a single node still serves what rich messages
// stored: a sent file and its preview (to members only), the message that carries it, a
// thread with its replies and its root's summary, and the main timeline without the replies
// kept to their thread.
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { RawSocket, removeDir, startServer, tempDir, type TestServer } from './helpers.js';

const dataDir = tempDir('parley-restart-rich-');
let srv: TestServer;
const start = () => startServer({ plugins: { rateLimit: { enabled: false } } }, dataDir);

afterAll(async () => {
  await srv?.close();
  removeDir(dataDir);
});

interface Msg {
  seq: number;
  text?: string;
  thread?: number;
  summary?: { count: number; users: string[] };
  data?: { attachments?: Array<{ id: string }> };
}

async function wire(user: string): Promise<{ call: (cmd: string, args?: Record<string, unknown>) => Promise<Record<string, unknown>>; close: () => void }> {
  const raw = await RawSocket.open(srv.wsUrl);
  let id = 0;
  const call = async (cmd: string, args: Record<string, unknown> = {}) => {
    const r = await raw.call({ id: ++id, cmd, ...args });
    expect(r.ok, `${cmd}: ${JSON.stringify(r)}`).toBe(true);
    return r.data as Record<string, unknown>;
  };
  await call('auth', { token: await srv.token(user) });
  return { call, close: () => raw.close() };
}

const get = async (path: string, user: string) => {
  const r = await fetch(`${srv.url}${path}`, { headers: { authorization: `Bearer ${await srv.token(user)}` } });
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()), type: r.headers.get('content-type') };
};

describe('a single node restarted on its data directory', () => {
  it('still serves sent files and their previews, and threads with their summaries', async () => {
    srv = await start();
    const ann = await wire('ann');
    const room = (await ann.call('create', { kind: 'group', name: 'Kept' })).id as string;
    await ann.call('invite', { room, user: 'bob' });
    const image = await sharp({ create: { width: 800, height: 400, channels: 3, background: '#48c' } })
      .png()
      .toBuffer();
    const up = await fetch(`${srv.url}/api/v1/rooms/${room}/attachments`, {
      method: 'POST',
      body: new Uint8Array(image),
      headers: { authorization: `Bearer ${await srv.token('ann')}`, 'content-type': 'image/png', 'x-filename': 'chart.png' },
    });
    expect(up.status).toBe(201);
    const file = (await up.json()) as { id: string; previewUrl?: string };
    const withFile = (await ann.call('send', { room, text: 'the chart', attachments: [file.id] })).seq as number;
    const root = (await ann.call('send', { room, text: 'thoughts?' })).seq as number;
    const bob = await wire('bob');
    const reply = (await bob.call('send', { room, text: 'looks good', thread: root })).seq as number;
    const shared = (await bob.call('send', { room, text: 'for everyone', thread: root, alsoToRoom: true })).seq as number;
    const previewBefore = await get(`/api/v1/attachments/${file.id}/preview`, 'bob');
    expect(previewBefore.status).toBe(200);
    ann.close();
    bob.close();
    await srv.close();

    srv = await start();
    const again = await wire('bob');
    // The file, its preview and the message that carries it.
    const back = await get(`/api/v1/attachments/${file.id}`, 'bob');
    expect(back.status).toBe(200);
    expect(back.bytes.equals(image)).toBe(true);
    const preview = await get(`/api/v1/attachments/${file.id}/preview`, 'bob');
    expect(preview.status).toBe(200);
    expect(preview.bytes.equals(previewBefore.bytes)).toBe(true);
    expect((await get(`/api/v1/attachments/${file.id}`, 'eve')).status).toBe(403);
    const main = (await again.call('history', { room, after: withFile - 1 })).messages as Msg[];
    expect(main.map((m) => m.seq)).toEqual([withFile, root, shared]);
    expect(main[0]!.data!.attachments![0]!.id).toBe(file.id);
    expect(main[1]!.summary).toMatchObject({ count: 2, users: ['bob'] });
    // The thread, with its root.
    const thread = await again.call('history', { room, thread: root });
    expect((thread.messages as Msg[]).map((m) => m.seq)).toEqual([reply, shared]);
    expect((thread.root as Msg).seq).toBe(root);
    again.close();
  });
});
