// The Bus conformance suite on a real redis-server and on a real three-master Redis Cluster,
// plus what only a networked bus has: reconnects, dead nodes, shared counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { RedisBus, decodeBusMessage, encodeBusMessage } from '../src/bus/redis/index.js';
import type { BusMessage } from '../src/bus/bus.js';
import { startRedis, startRedisCluster, type RedisClusterServers, type RedisServer } from '../tools/devservers/redis.js';
import { RedisRateCounter } from '../src/plugins/rate-limit/counter-redis.js';
import { RedisLoginLimiter } from '../src/accounts/limiter-redis.js';
import { busConformance } from './conformance/bus.js';
import { waitFor } from './wait.js';
import { threadWrites } from './helpers.js';

const log = pino({ level: 'silent' });
let redis: RedisServer;
let cluster: RedisClusterServers;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster(3)]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.destroy(), cluster?.destroy()]);
});

const open = (
  target: { url?: string; cluster?: string[] },
  extra: Partial<{ prefix: string; nodeId: string; heartbeatMs: number; nodeTimeoutMs: number }> = {},
) =>
  RedisBus.open({
    ...target,
    prefix: `t${randomBytes(4).toString('hex')}:`,
    nodeId: `n-${randomBytes(3).toString('hex')}`,
    heartbeatMs: 200,
    nodeTimeoutMs: 1000,
    log,
    ...extra,
  });

/** A bus in a process of its own (test/fixtures/bus-node.ts) with `count` connections registered. */
async function busProcess(
  url: string,
  prefix: string,
  nodeId: string,
  timing: { heartbeatMs: number; nodeTimeoutMs: number },
  count: number,
  user?: string,
): Promise<ChildProcess> {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/fixtures/bus-node.ts',
      url,
      prefix,
      nodeId,
      String(timing.heartbeatMs),
      String(timing.nodeTimeoutMs),
      String(count),
      ...(user ? [user] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.includes('ready') || p.exitCode !== null, 30_000, 'the bus process');
  expect(out).toContain('ready');
  return p;
}

async function kill(p: ChildProcess): Promise<void> {
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}

/**
 * Calls of the given commands (all but those of connection handling when none are named)
 * served by these Redis servers so far. Commands run by scripts count too.
 */
async function calls(ports: number[], names: string[] = []): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    await c.connect();
    const info = await c.info('commandstats');
    c.disconnect();
    for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
      if (names.length > 0 ? names.includes(m[1]!) : !/^(info|hello|ping|client|cluster|command|config)\b/.test(m[1]!)) total += Number(m[2]);
    }
  }
  return total;
}

busConformance('redis', () => open({ url: redis.url }));
busConformance('redis cluster', () => open({ cluster: cluster.nodes }));

describe('Redis bus', () => {
  it('encodes frames without re-escaping them and rejects malformed payloads', () => {
    const m: BusMessage = {
      frame: '{"type":"message","text":"a\\nb ü"}',
      seq: 7,
      hiddenFor: 'bob',
      alt: '{"x":1}',
      control: { op: 'unfollow', room: 'r' },
      except: ['carol'],
    };
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

  it('the publishes of one event-loop turn leave in one write per Redis server, not one each', async () => {
    for (const [name, target, servers] of [
      ['redis', { url: redis.url }, 1],
      ['redis cluster', { cluster: cluster.nodes }, cluster.servers.length],
    ] as const) {
      const prefix = `w${randomBytes(3).toString('hex')}:`;
      const [a, b] = await Promise.all([open(target, { prefix, heartbeatMs: 5000 }), open(target, { prefix, heartbeatMs: 5000 })]);
      const got: string[] = [];
      b.onMessage((t, m) => got.push(`${t}/${m.seq}`));
      const rooms = Array.from({ length: 40 }, (_, i) => `r:w${i}`);
      for (const r of rooms) await b.subscribe(r);
      a.publish('r:w0', { frame: '{}', seq: 0 }); // every shard's connection is open
      await waitFor(() => got.length === 1, 5000);
      const before = threadWrites();
      for (const r of rooms) a.publish(r, { frame: '{}', seq: 1 });
      await new Promise<void>((r) => setImmediate(r));
      const made = threadWrites() - before;
      await waitFor(() => got.length === 41, 5000);
      // One write per server (40 before the cork); the slack is for timers of the four clients in
      // this process (heartbeats, a Redis Cluster client's slot refresh) that fall due in the same
      // loop iteration and write too.
      expect(made, name).toBeLessThanOrEqual(servers + 3);
      await Promise.all([a.close(), b.close()]);
    }
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

  it('a subscribe or unsubscribe made while Redis is down is made once it is back, and the topics it missed are resynced', async () => {
    const own = await startRedis();
    const bus = await open({ url: own.url }, { prefix: 'down:' });
    const resynced: string[] = [];
    const got: string[] = [];
    bus.onResync((topics) => resynced.push(...(topics ?? ['*'])));
    bus.onMessage((t) => got.push(t));
    await bus.subscribe('u:gone');
    own.kill();
    // Made during the outage: ioredis drops the commands after its retries.
    await bus.subscribe('u:late');
    await bus.unsubscribe('u:gone');
    await own.start();
    await waitFor(() => resynced.includes('u:late'), 15_000, 'the late subscription made and its topic resynced');
    const other = await open({ url: own.url }, { prefix: 'down:' });
    for (let i = 0; i < 50 && !got.includes('u:late'); i++) {
      other.publish('u:late', { frame: '{}' });
      other.publish('u:gone', { frame: '{}' });
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(got).toContain('u:late');
    // The topic unsubscribed during the outage is not listened to any more.
    const channels = await (other.client as Redis).pubsub('CHANNELS', 'down:*');
    expect(channels).toContain('down:u:late');
    expect(channels).not.toContain('down:u:gone');
    expect(got).not.toContain('u:gone');
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
    // The list is what the node last saw: within a heartbeat it shows every node.
    let ids: string[] = [];
    await waitFor(
      () => {
        void s1.nodes.list().then((l) => {
          ids = l.map((n) => n.id).sort();
        });
        return ids.length === 3;
      },
      3000,
      'every node listed',
    );
    expect(ids).toEqual([dying.nodes.id, s1.nodes.id, s2.nodes.id].sort());
    // Die without saying goodbye: heartbeats stop, connections drop.
    (dying as unknown as { registry: { timer: NodeJS.Timeout } }).registry.timer.close();
    dying.client.disconnect();
    await waitFor(() => expired.length === 1, 5000);
    expect(expired).toEqual(['alice']);
    expect(await s2.presence.online(['alice', 'bob'])).toEqual(['bob']);
    expect((await s2.nodes.list()).map((n) => n.id).sort()).toEqual([s1.nodes.id, s2.nodes.id].sort());
    await Promise.all([s1.close(), s2.close(), dying.close()]);
  });

  it('a killed node leaves the node list within a few heartbeats, long before its presence times out', async () => {
    const prefix = `k${randomBytes(3).toString('hex')}:`;
    // A generous node timeout, as in production: presence waits for it, the node list must not.
    const timing = { heartbeatMs: 200, nodeTimeoutMs: 8000 };
    const survivor = await open({ url: redis.url }, { prefix, ...timing });
    const dying = await busProcess(redis.url, prefix, 'killed', timing, 1, 'k-user');
    let ids: string[] = [];
    const listed = async () => {
      ids = (await survivor.nodes.list()).map((n) => n.id);
      return ids;
    };
    await waitFor(
      () => {
        void listed();
        return ids.includes('killed');
      },
      3000,
      'the node listed',
    );
    await kill(dying);
    const t0 = Date.now();
    await waitFor(
      () => {
        void listed();
        return !ids.includes('killed');
      },
      6000,
      'the killed node to leave the list',
    );
    // 2.5 heartbeats, plus one for the survivor to notice, plus slack for a busy machine.
    expect(Date.now() - t0).toBeLessThan(2000);
    await survivor.close();
  });

  it('rate buckets and login windows are shared by every node', async () => {
    const prefix = `c${randomBytes(3).toString('hex')}:`;
    const [a, b] = await Promise.all([open({ cluster: cluster.nodes }, { prefix }), open({ cluster: cluster.nodes }, { prefix })]);
    const ca = new RedisRateCounter(a.client, prefix);
    const cb = new RedisRateCounter(b.client, prefix);
    const limits = [
      { key: 'u:alice', rate: 1, burst: 3 },
      { key: 'r:room', rate: 1, burst: 100 },
    ];
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

  it('a node restarted under the same id before it was reaped leaves no presence of its former run behind', async () => {
    const prefix = `i${randomBytes(3).toString('hex')}:`;
    const timing = { heartbeatMs: 100, nodeTimeoutMs: 3000 };
    const survivor = await open({ url: redis.url }, { prefix, ...timing });
    const first = await busProcess(redis.url, prefix, 'same-id', timing, 2, 'rs');
    expect(await survivor.presence.online(['rs0', 'rs1'])).toEqual(['rs0', 'rs1']);
    await kill(first);
    // Back at once under the same id; rs1 reconnects to it, rs0 does not come back.
    const restarted = await open({ url: redis.url }, { prefix, ...timing, nodeId: 'same-id' });
    const offline: string[] = [];
    for (const b of [survivor, restarted]) b.presence.onExpired((u) => offline.push(u));
    await restarted.presence.connect('rs1', 'new-conn');
    await waitFor(() => offline.length > 0, 6000, "the former run's presence to be removed");
    await new Promise((r) => setTimeout(r, 300));
    expect(offline).toEqual(['rs0']);
    expect(await survivor.presence.online(['rs0', 'rs1'])).toEqual(['rs1']);
    await Promise.all([survivor.close(), restarted.close()]);
  });

  it('presence of many users is read in a few Redis commands, not one per user', async () => {
    for (const [name, target, ports] of [
      ['redis', { url: redis.url }, [redis.port]],
      ['redis cluster', { cluster: cluster.nodes }, cluster.servers.map((s) => s.port)],
    ] as const) {
      const bus = await open(target, { heartbeatMs: 5000 });
      const users = Array.from({ length: 300 }, (_, i) => `many${i}`);
      await Promise.all(users.slice(0, 200).map((u) => bus.presence.connect(u, `c-${u}`)));
      const before = await calls([...ports]);
      const online = await bus.presence.online(users);
      const used = (await calls([...ports])) - before;
      expect(online.sort()).toEqual(users.slice(0, 200).sort());
      expect(used, name).toBeLessThanOrEqual(20);
      await bus.close();
    }
  });

  it("a dead node's connections are removed in batches, not one Redis round trip each", async () => {
    const prefix = `b${randomBytes(3).toString('hex')}:`;
    const timing = { heartbeatMs: 100, nodeTimeoutMs: 800 };
    const survivor = await open({ url: redis.url }, { prefix, ...timing });
    const offline = new Set<string>();
    survivor.presence.onExpired((u) => offline.add(u));
    const dying = await busProcess(redis.url, prefix, 'many-conns', timing, 600, 'reap');
    const before = await calls([redis.port], ['evalsha', 'eval']);
    await kill(dying);
    await waitFor(() => offline.size === 600, 20_000, 'every user reported offline');
    expect((await calls([redis.port], ['evalsha', 'eval'])) - before).toBeLessThanOrEqual(60);
    expect(await survivor.presence.online(['reap0', 'reap599'])).toEqual([]);
    await survivor.close();
  });

  it('a task claim stays with one node while it renews it, and passes to another only once it lapses', async () => {
    const prefix = `c${randomBytes(3).toString('hex')}:`;
    const [a, b] = await Promise.all([open({ url: redis.url }, { prefix }), open({ url: redis.url }, { prefix })]);
    const held = await a.nodes.claim('sweep', 1500);
    expect(held).not.toBeNull();
    expect(await b.nodes.claim('sweep', 1500)).toBeNull();
    // A long task renews its claim: well past the first 1.5 s nobody else may start it.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect(await held!.renew()).toBe(true);
      expect(await b.nodes.claim('sweep', 1500)).toBeNull();
    }
    // Not renewed any more: it lapses, another node takes it, and the first one knows it lost it.
    await new Promise((r) => setTimeout(r, 1800));
    const next = await b.nodes.claim('sweep', 1500);
    expect(next).not.toBeNull();
    expect(await held!.renew()).toBe(false);
    expect(await next!.renew()).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it('a Redis Cluster shard that goes down and comes back costs a resync of its own topics only, not a resync storm', async () => {
    const prefix = `s${randomBytes(3).toString('hex')}:`;
    const bus = await open({ cluster: cluster.nodes }, { prefix });
    const topics = Array.from({ length: 30 }, (_, i) => `r:shard-room-${i}`);
    for (const t of topics) await bus.subscribe(t);
    const resyncs: Array<readonly string[] | undefined> = [];
    bus.onResync(((t?: readonly string[]) => {
      resyncs.push(t);
    }) as () => void);
    // The master that serves the first topic's slot goes away for a while.
    const probe = new Redis({ port: cluster.servers[0]!.port, host: '127.0.0.1' });
    const slotOf = async (t: string) => Number(await probe.call('cluster', 'keyslot', `${prefix}${t}`));
    const ranges = (await probe.call('cluster', 'slots')) as Array<[number, number, [string, number]]>;
    const portOf = (slot: number) => ranges.find(([a, b]) => slot >= a && slot <= b)![2][1];
    const victimPort = portOf(await slotOf(topics[0]!));
    const onVictim = new Set<string>();
    for (const t of topics) if (portOf(await slotOf(t)) === victimPort) onVictim.add(t);
    probe.disconnect();
    const healthy = topics.find((t) => !onVictim.has(t))!;
    const got: string[] = [];
    bus.onMessage((t) => got.push(t));
    const victim = cluster.servers.find((s) => s.port === victimPort)!;
    await victim.stop();
    try {
      await new Promise((r) => setTimeout(r, 2500));
      // The other shards go on carrying their topics meanwhile.
      bus.publish(healthy, { frame: '{}', seq: 1 });
      await waitFor(() => got.includes(healthy), 3000, 'a message on a healthy shard');
    } finally {
      await victim.start();
    }
    await waitFor(() => resyncs.length > 0, 20_000, 'a resync once the shard is back');
    await new Promise((r) => setTimeout(r, 1500));
    expect(resyncs.length).toBeLessThanOrEqual(3);
    for (const r of resyncs) expect(r && [...r].sort()).toEqual([...onVictim].sort());
    await bus.close();
    await waitClusterOk();
  });
});

/** Waits until every master of the test cluster reports the cluster as ok again. */
async function waitClusterOk(): Promise<void> {
  for (const s of cluster.servers) {
    const c = new Redis({ port: s.port, host: '127.0.0.1' });
    const until = Date.now() + 20_000;
    while (!/cluster_state:ok/.test(String(await c.call('cluster', 'info'))) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    c.disconnect();
  }
}
