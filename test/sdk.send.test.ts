// A send through the SDK ends in a definite state: acknowledged (stored once) or refused.
// A slow reply is not a failure — the SDK keeps the send, retries it with its idempotency key
// until the server answers, and tells the caller the key, so a retry by the caller cannot
// store the message twice either.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { removeDir, tempDir, testConfig } from './helpers.js';
import { createParley, type Parley } from '../src/server.js';
import { mintToken } from '../src/auth/jwt.js';
import { ParleyClient } from '../src/client/index.js';
import { commandHook } from '../src/service/hooks.js';
import type { Plugin } from '../src/plugins/plugin.js';

/** Holds the first attempt of each send whose text starts with "slow" for `ms`, as a busy server would. */
function slowFirstAttempt(ms: number): Plugin {
  const seen = new Set<string>();
  return {
    name: 'slow-first-attempt',
    hooks: [
      commandHook({
        name: 'slow-first-attempt',
        commands: ['send'],
        async before(ctx) {
          const key = ctx.args.key ?? '';
          if (!ctx.args.text.startsWith('slow') || seen.has(key)) return;
          seen.add(key);
          await new Promise((r) => setTimeout(r, ms));
        },
      }),
    ],
  };
}

let parley: Parley;
let dir: string;
const clients: ParleyClient[] = [];

beforeAll(async () => {
  dir = tempDir();
  parley = await createParley(testConfig(dir), { logger: pino({ level: 'silent' }), plugins: [slowFirstAttempt(1500)] });
  await parley.listen();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await parley.close();
  removeDir(dir);
});

async function client(user: string): Promise<ParleyClient> {
  const c = new ParleyClient({ url: parley.url, token: await mintToken(parley.config, user), WebSocket: WebSocket as never, requestTimeoutMs: 300 });
  clients.push(c);
  await c.connect();
  return c;
}

describe('SDK sends', () => {
  it('a send whose reply comes after the request timeout is acknowledged, not failed, and stored once', async () => {
    const a = await client('slow-sender');
    const room = await a.createRoom('group', 'Slow');
    const sending = a.send(room.id, 'slow one');
    const r = await sending;
    expect(r.seq).toBeGreaterThan(0);
    expect(typeof sending.key).toBe('string');
    const texts = (await a.history(room.id)).messages.map((m) => m.text).filter((t) => t !== undefined);
    expect(texts).toEqual(['slow one']);
  });

  it('the key a send was given is the one it is stored under: sending again with it stores nothing new', async () => {
    const a = await client('key-sender');
    const room = await a.createRoom('group', 'Keys');
    const first = a.send(room.id, 'hello');
    const { seq } = await first;
    const again = await a.send(room.id, 'hello', { key: first.key });
    expect(again).toMatchObject({ seq, duplicate: true });
  });

  it('a refused send is rejected with the refusal, once', async () => {
    const a = await client('refused-sender');
    const other = await client('refused-owner');
    const room = await other.createRoom('group', 'Closed');
    await expect(a.send(room.id, 'x')).rejects.toMatchObject({ code: 'forbidden' });
  });
});
