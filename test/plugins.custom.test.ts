// The example plugin of docs/plugins.md, run on a real node: a plugin written against the
// public API only (hooks, a validator, an admin route), given to createParley in code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { Type } from '@sinclair/typebox';
import { collect, removeDir, tempDir, testConfig, waitFor } from './helpers.js';
import { createParley, type Parley } from '../src/server.js';
import { mintToken } from '../src/auth/jwt.js';
import { ParleyClient, type ClientError } from '../src/client/index.js';
import { ParleyError } from '../src/errors.js';
import { commandHook, messageValidator } from '../src/service/hooks.js';
import { requireAdmin } from '../src/plugins/admin.js';
import type { Plugin } from '../src/plugins/plugin.js';

// ---- the example, as in docs/plugins.md ---------------------------------------------------

/** `/me waves` becomes an action message; other slash commands are refused; sends are counted. */
function slashCommands(): Plugin {
  const counts = new Map<string, number>();
  let guard: ReturnType<typeof requireAdmin>;
  return {
    name: 'slash-commands',
    init(ctx) {
      guard = requireAdmin({ verify: ctx.verify, apiKeys: ctx.config.api.keys });
    },
    hooks: [
      messageValidator('slash-commands', (m) => {
        if (!m.text.startsWith('/')) return;
        if (m.cmd === 'send' && m.text.startsWith('/me ')) return { text: m.text.slice(4), data: { ...m.data, action: true } };
        throw new ParleyError('invalid', `unknown command ${m.text.split(' ')[0]}`, { reason: 'unknown_command' });
      }),
      commandHook({
        name: 'count-messages',
        commands: ['send'],
        after(ctx, { result }) {
          if (result && !result.duplicate) counts.set(ctx.args.room, (counts.get(ctx.args.room) ?? 0) + 1);
        },
      }),
    ],
    routes(app) {
      app.get(
        '/stats/rooms/:room',
        {
          preHandler: guard,
          schema: { params: Type.Object({ room: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }) },
        },
        async (req) => {
          const { room } = req.params as { room: string };
          return { room, messages: counts.get(room) ?? 0 };
        },
      );
    },
  };
}

// ---- the test -------------------------------------------------------------------------------

let parley: Parley;
let dir: string;
const clients: ParleyClient[] = [];

beforeAll(async () => {
  dir = tempDir();
  parley = await createParley(testConfig(dir), { logger: pino({ level: 'silent' }), plugins: [slashCommands()] });
  await parley.listen();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await parley.close();
  removeDir(dir);
});

async function client(user: string, admin = false) {
  const c = new ParleyClient({ url: parley.url, token: await mintToken(parley.config, user, { admin }), WebSocket: WebSocket as never });
  clients.push(c);
  await c.connect();
  return c;
}

describe('a plugin written against the public API', () => {
  it('rewrites, rejects and counts messages, and serves its own admin route', async () => {
    // Built-in plugins (the rate limiter is on by default) come first, then those given in code.
    expect(parley.plugins.map((p) => p.name)).toEqual(['rate-limit', 'slash-commands']);
    const a = await client('sc-a');
    const room = await a.createRoom('channel', 'Slash', { room: 'slash' });
    const seen = collect(a, room.id);
    await a.send(room.id, '/me waves');
    await a.send(room.id, 'plain');
    const refused = await a.send(room.id, '/shrug').then(
      () => null,
      (e: ClientError) => e,
    );
    expect(refused).toMatchObject({ code: 'invalid', details: { reason: 'unknown_command' } });
    await waitFor(() => seen.filter((m) => m.kind === 'text').length === 2);
    expect(seen.filter((m) => m.kind === 'text').map((m) => [m.text, m.data ?? null])).toEqual([
      ['waves', { action: true }],
      ['plain', null],
    ]);

    const get = async (token?: string) => {
      const res = await fetch(`${parley.url}/api/v1/stats/rooms/slash`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { status: res.status, body: (await res.json()) as unknown };
    };
    expect(await get(await mintToken(parley.config, 'boss', { admin: true }))).toEqual({ status: 200, body: { room: 'slash', messages: 2 } });
    expect((await get(await mintToken(parley.config, 'sc-a'))).status).toBe(403);
    expect((await get()).status).toBe(401);
  });
});
