// The Bus conformance suite on a real redis-server and on a real three-master Redis Cluster,
// plus what only a networked bus has: reconnects, dead nodes, shared counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisBus, decodeBusMessage, encodeBusMessage } from '../src/bus/redis/index.js';
import type { BusMessage } from '../src/bus/bus.js';
import { startRedis, startRedisCluster, type RedisClusterServers, type RedisServer } from '../tools/devservers/redis.js';
import { RedisRateCounter } from '../src/plugins/rate-limit/counter-redis.js';
import { RedisLoginLimiter } from '../src/accounts/limiter-redis.js';
import { busConformance } from './conformance/bus.js';
import { waitFor } from './wait.js';

const log = pino({ level: 'silent' });
let redis: RedisServer;
let cluster: RedisClusterServers;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.destroy(), cluster?.destroy()]);
});

const open = (target: { url?: string; cluster?: string[] }, extra: Partial<{ prefix: string; nodeId: string; heartbeatMs: number; nodeTimeoutMs: number }> = {}) => RedisBus.open({
  ...target, prefix: `t${randomBytes(4).toString('hex')}:`, nodeId: `n-${randomBytes(3).toString('hex')}`,
  heartbeatMs: 200, nodeTimeoutMs: 1000, log, ...extra,
});

busConformance('redis', () => open({ url: redis.url }));
busConformance('redis cluster', () => open({ cluster: cluster.nodes }));

describe('Redis bus', () => {
  it('encodes frames without re-escaping them and rejects malformed payloads', () => {
    const m: BusMessage = { frame: '{"type":"message","text":"a\\nb ü"}', seq: 7, hiddenFor: 'bob', alt: '{"x":1}', control: { op: 'unfollow', room: 'r' }, except: ['carol'] };
    const wire = encodeBusMessage(m);
    expect(wire.split('\n')[1]).toContain('"text":"a\\nb ü"');
    expect(decodeBusMessage(wire)).toEqual(m);
    expect(decodeBusMessage('{"f":1}')).toBeNull();
    expect(decodeBusMessage('not json\nx')).toBeNull();
  });

  it('a message published on one node reaches subscribers on the others, in order, across shards', async () => {
    const prefix = `x${randomBytes(3).toString('hex')}:`;
    const [a, b] = await Promise.all([open({ cluster: cluster.nodes }, { prefix }), open({ cluster: cluster.nodes }, { prefix })]);
    const got: string[] = [];
    b.onMessage((t, m) => got.push(`${t}/${m.seq}`));
    const rooms = Array.from({ length: 20 }, (_, i) => `r:room${i}`);
    for (const r of rooms) await b.subscribe(r);
    for (let s = 1; s <= 5; s++) for (const r of rooms) a.publish(r, { frame: '{}', seq: s });
    await waitFor(() => got.length === 100, 10_000);
    for (const r of rooms) expect(got.filter((g) => g.startsWith(`${r}/`))).toEqual([1, 2, 3, 4, 5].map((s) => `${r}/${s}`));
    await Promise.all([a.close(), b.close()]);
  });

  it('after Redis restarts, subscriptions come back and resync handlers run', async () => {
    const own = await startRedis();
    const bus = await open({ url: own.url }, { prefix: 'same:' });
    let resyncs = 0;
    const got: number[] = [];
    bus.onResync(() => resyncs++);
    bus.onMessage((_t, m) => got.push(m.seq!));
    await bus.subscribe('r:a');
    await own.stop();
    await own.start();
    await waitFor(() => resyncs === 1, 15_000);
    const other = await open({ url: own.url }, { prefix: 'same:' });
    other.publish('r:a', { frame: '{}', seq: 1 });
    await waitFor(() => got.length === 1);
    await Promise.all([bus.close(), other.close()]);
    await own.destroy();
  });

  it('the throwaway server starts again at once after kill(), before the killed one has exited', async () => {
    const own = await startRedis();
    for (let i = 0; i < 5; i++) {
      own.kill();
      await own.start();
      const c = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      await c.connect();
      expect(await c.ping()).toBe('PONG');
      c.disconnect();
    }
    await own.destroy();
  });

  it('a node that stops heartbeating has its presence removed by one survivor, which reports who went offline', async () => {
    const prefix = `p${randomBytes(3).toString('hex')}:`;
    const dying = await open({ url: redis.url }, { prefix, nodeTimeoutMs: 600, heartbeatMs: 100 });
    const [s1, s2] = await Promise.all([
      open({ url: redis.url }, { prefix, nodeTimeoutMs: 600, heartbeatMs: 100 }),
      open({ url: redis.url }, { prefix, nodeTimeoutMs: 600, heartbeatMs: 100 }),
    ]);
    const expired: string[] = [];
    s1.presence.onExpired((u) => expired.push(u));
    s2.presence.onExpired((u) => expired.push(u));
    await dying.presence.connect('alice', 'c1');
    await dying.presence.connect('bob', 'c2');
    await s1.presence.connect('bob', 'c3');
    expect((await s1.nodes.list()).map((n) => n.id).sort()).toEqual([dying.nodes.id, s1.nodes.id, s2.nodes.id].sort());
    // Die without saying goodbye: heartbeats stop, connections drop.
    (dying as unknown as { registry: { timer: NodeJS.Timeout } }).registry.timer.close();
    dying.client.disconnect();
    await waitFor(() => expired.length === 1, 5000);
    expect(expired).toEqual(['alice']);
    expect(await s2.presence.online(['alice', 'bob'])).toEqual(['bob']);
    expect((await s2.nodes.list()).map((n) => n.id).sort()).toEqual([s1.nodes.id, s2.nodes.id].sort());
    await Promise.all([s1.close(), s2.close(), dying.close()]);
  });

  it('rate buckets and login windows are shared by every node', async () => {
    const prefix = `c${randomBytes(3).toString('hex')}:`;
    const [a, b] = await Promise.all([open({ cluster: cluster.nodes }, { prefix }), open({ cluster: cluster.nodes }, { prefix })]);
    const ca = new RedisRateCounter(a.client, prefix);
    const cb = new RedisRateCounter(b.client, prefix);
    const limits = [{ key: 'u:alice', rate: 1, burst: 3 }, { key: 'r:room', rate: 1, burst: 100 }];
    const taken = await Promise.all([ca.take(limits), cb.take(limits), ca.take(limits), cb.take(limits), ca.take(limits)]);
    expect(taken.filter((w) => w === 0)).toHaveLength(3);
    expect(taken.filter((w) => w > 0).every((w) => w <= 1000)).toBe(true);
    const la = new RedisLoginLimiter(a.client, prefix, 60_000);
    const lb = new RedisLoginLimiter(b.client, prefix, 60_000);
    const key = [{ key: 'acct:alice', limit: 2 }];
    const tries = await Promise.all([la.attempt(key), lb.attempt(key), la.attempt(key), lb.attempt(key)]);
    expect(tries.filter((w) => w === 0)).toHaveLength(2);
    await la.succeeded(key);
    expect(await lb.attempt(key)).toBe(0);
    expect(await la.attempt(key)).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });
});
