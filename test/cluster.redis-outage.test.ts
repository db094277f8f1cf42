// Sends during a Redis outage, with the default configuration (the rate limiter on): a node
// process on PostgreSQL and Redis, raw WebSocket clients. PostgreSQL is the source of truth, so
// a send is stored and acknowledged while Redis is frozen or gone; the rate limiter, whose
// shared buckets are in Redis, still bounds each user meanwhile, with buckets of the node's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevCluster, type DevCluster } from '../tools/devservers/cluster.js';
import { validateConfig } from '../src/config.js';
import { mintToken } from '../src/auth/jwt.js';
import { RawSocket } from './helpers.js';

// The rate limiter keeps its default (on); Redis calls give up after 500 ms.
const ENV = { PARLEY_BUS_REDIS_COMMAND_TIMEOUT_MS: '500', PARLEY_CLUSTER_REBALANCE: 'false', PARLEY_LOG_LEVEL: 'warn' };

let cluster: DevCluster;
const sockets: RawSocket[] = [];
let ids = 0;

beforeAll(async () => {
  cluster = await startDevCluster({ nodes: 1, env: ENV });
}, 120_000);
afterAll(async () => {
  for (const s of sockets) s.close();
  await cluster?.stop();
});

async function socket(user: string): Promise<RawSocket> {
  const ws = await RawSocket.open(cluster.nodes[0]!.wsUrl);
  sockets.push(ws);
  const token = await mintToken(validateConfig({ auth: { secret: cluster.secret } }), user);
  expect((await ws.call({ id: `a${++ids}`, cmd: 'auth', token })).ok).toBe(true);
  return ws;
}

async function call(ws: RawSocket, frame: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const id = `c${++ids}`;
  ws.sendText(JSON.stringify({ ...frame, id }));
  return ws.reply(id, timeoutMs);
}

describe('cluster: sends while Redis is away, rate limiter on', () => {
  it('sends are acknowledged while Redis is frozen or down, and a flood is still refused', async () => {
    const ws = await socket('ro-user');
    const room = 'redis-outage';
    expect((await call(ws, { cmd: 'create', kind: 'channel', name: room, room })).ok).toBe(true);
    expect((await call(ws, { cmd: 'send', room, text: 'before', key: 'before' })).ok).toBe(true);

    const redis = cluster.redis!;
    const pid = redis.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 5; i++) {
        const r = await call(ws, { cmd: 'send', room, text: `frozen-${i}`, key: `frozen-${i}` });
        expect(r.ok, `send ${i} while Redis is frozen: ${JSON.stringify(r)}`).toBe(true);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    redis.kill();
    await redis.exited();
    try {
      const r = await call(ws, { cmd: 'send', room, text: 'down', key: 'down' });
      expect(r.ok, `send while Redis is down: ${JSON.stringify(r)}`).toBe(true);
      // The limit still holds (10 a second, 50 at once by default): a burst of 60
      // (below the 64 commands a connection may have in flight) is cut short.
      const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => call(ws, { cmd: 'send', room, text: `flood-${i}`, key: `flood-${i}` })));
      const refused = burst.filter((b) => !b.ok).map((b) => (b.error as { code: string }).code);
      expect(refused.length).toBeGreaterThan(0);
      expect(new Set(refused)).toEqual(new Set(['rate_limited']));
    } finally {
      await redis.start();
    }
    const h = await call(ws, { cmd: 'history', room, limit: 500 });
    const texts = (h.data as { messages: Array<{ text?: string }> }).messages.map((m) => m.text);
    for (const t of ['before', 'frozen-0', 'frozen-4', 'down']) expect(texts).toContain(t);
  }, 60_000);
});
