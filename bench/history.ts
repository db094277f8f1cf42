// The history workload (Parley only): a node on a big history. A store is seeded with N
// messages over R rooms and U users (history-seed.ts), on SQLite (one node) and on PostgreSQL
// (the cluster store, with Redis), then the server is started on it and measured: time from
// start to serving, history pages (newest and deep), search, the inbox of a user in 500
// rooms, bytes on disk per message, and the latency of live traffic while a retention sweep
// removes the oldest tenth of the history. The same runs on a fresh (small) database, side
// by side.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { startRedis, type RedisServer } from '../tools/devservers/redis.js';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import type { Store } from '../src/store/store.js';
import { newHistogram, summarize, type Histogram, type LatencySummary } from './hist.js';
import { machineTicks, memory } from './proc.js';
import type { BenchOptions, RunResult } from './run.js';
import { startTarget, SECRET, type RunningTarget } from './targets.js';
import { prng, roomId, seedHistory, SPAN_MS, userId, type HistoryShape, type Seeded } from './history-seed.js';

export type HistoryStore = 'sqlite' | 'postgres';
export const HISTORY_STORES: readonly HistoryStore[] = ['sqlite', 'postgres'];

export interface HistoryPlan {
  big: HistoryShape;
  /** The fresh database measured beside it (null: not measured). */
  fresh: HistoryShape | null;
  stores: HistoryStore[];
  /** Requests per measured query kind. */
  samples: number;
  /** Share of the history the retention sweep removes (the oldest messages). */
  retentionShare: number;
  /** Rooms with live traffic (a sender and a receiver each) and messages per second in all. */
  liveRooms: number;
  liveRate: number;
  /** Seconds of live traffic before the sweep is due. */
  sweepSec: number;
}

export interface QueryFigures {
  kind: string;
  latency: LatencySummary | null;
  failed: number;
  firstError?: string;
  detail?: string;
}

export interface HistoryFigures {
  store: HistoryStore;
  scale: 'fresh' | 'big';
  shape: HistoryShape;
  memberRows: number;
  seedS: number;
  seedPerSec: number;
  startToHealthzMs: number;
  startToAuthMs: number;
  /** Start of the server with retention set, whose sweep runs after `sweepSec`. */
  restartToHealthzMs: number;
  queries: QueryFigures[];
  disk: { bytes: number; perMessage: number; parts: Record<string, number> };
  live: {
    before: { ack: LatencySummary | null; delivery: LatencySummary | null };
    during: { ack: LatencySummary | null; delivery: LatencySummary | null };
    sent: number;
    acked: number;
    delivered: number;
    failed: number;
    firstError?: string;
    removed: number;
    sweepS: number | null;
    retentionDays: number;
  };
  serverRssMiB: number;
  machine: { loadavg1: number; stealPct: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

export function historyPlan(
  o: Pick<BenchOptions, 'quick' | 'rooms' | 'historyMessages' | 'historyUsers' | 'historyFresh' | 'historyStores' | 'samples' | 'sweepSec'>,
): HistoryPlan {
  const big: HistoryShape = o.quick
    ? { messages: o.historyMessages ?? 200_000, rooms: o.rooms ?? 2_000, users: o.historyUsers ?? 2_000, inboxRooms: 500 }
    : { messages: o.historyMessages ?? 10_000_000, rooms: o.rooms ?? 100_000, users: o.historyUsers ?? 100_000, inboxRooms: 500 };
  const freshMessages = o.historyFresh ?? 20_000;
  return {
    big,
    fresh: freshMessages > 0 ? { messages: freshMessages, rooms: Math.min(big.rooms, 1_000), users: Math.min(big.users, 1_000), inboxRooms: 500 } : null,
    stores: o.historyStores ?? [...HISTORY_STORES],
    samples: o.samples ?? (o.quick ? 100 : 400),
    retentionShare: 0.1,
    liveRooms: 4,
    liveRate: 40,
    sweepSec: o.sweepSec ?? (o.quick ? 8 : 20),
  };
}

interface Infra {
  pg: PgServer;
  redis: RedisServer;
  admin: pg.Client;
}

export async function runHistory(o: BenchOptions, stamp: string): Promise<RunResult[]> {
  const plan = historyPlan(o);
  const runs: RunResult[] = [];
  let infra: Infra | null = null;
  // The seeding store's writes wait on timers that do not hold the process open by themselves.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    for (const store of plan.stores) {
      if (store === 'postgres' && !infra) infra = await startInfra();
      for (const [scale, shape] of [
        ['fresh', plan.fresh],
        ['big', plan.big],
      ] as const) {
        if (!shape) continue;
        runs.push(await runOne(store, scale, shape, plan, o, stamp, infra));
      }
    }
  } finally {
    clearInterval(keepAlive);
    if (infra) {
      await infra.admin.end().catch(() => undefined);
      await Promise.all([infra.pg.destroy().catch(() => undefined), infra.redis.destroy().catch(() => undefined)]);
    }
  }
  return runs;
}

async function startInfra(): Promise<Infra> {
  const [pgs, redis] = await Promise.all([
    startPostgres({ settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } }),
    startRedis(),
  ]);
  const admin = new pg.Client({ connectionString: pgs.url.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  return { pg: pgs, redis, admin };
}

async function runOne(
  store: HistoryStore,
  scale: 'fresh' | 'big',
  shape: HistoryShape,
  plan: HistoryPlan,
  o: BenchOptions,
  stamp: string,
  infra: Infra | null,
): Promise<RunResult> {
  const tag = `history/${store}/${scale}`;
  const say = (line: string, final = false): void => o.progress?.(`[${tag}] ${line}`, final);
  const result: RunResult = {
    workload: 'history',
    target: 'parley',
    label: `parley ${store} ${scale}`,
    node: process.versions.node,
    description: `${shape.messages.toLocaleString('en')} messages over ${shape.rooms.toLocaleString('en')} rooms and ${shape.users.toLocaleString('en')} users on ${store}`,
    params: { ...shape, store, scale, samples: plan.samples },
    connections: plan.liveRooms * 2,
    setup: { connectS: 0, connectsPerSec: 0, connectMs: null, roomsS: 0, failed: 0 },
    memory: { rssBeforeMiB: 0, rssAfterSetupMiB: 0, rssAfterMiB: 0, peakMiB: 0, perConnectionKiB: null },
    steps: [],
  };
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-history-'));
  const db = `history_${scale}`;
  const url = infra ? infra.pg.url.replace(/\/[^/]+$/, `/${db}`) : '';
  const m0 = machineTicks();
  let target: RunningTarget | null = null;
  try {
    // ---- seed
    if (infra) {
      await infra.admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await infra.admin.query(`CREATE DATABASE "${db}"`);
    }
    const seedStarted = performance.now();
    const st: Store = infra ? await PostgresStore.open({ url, maxBatch: 5000 }) : new SqliteStore({ file: join(dataDir, 'parley.db'), synchronous: 'normal' });
    // The seeding connection keeps the tables in memory: rows land where the server's would.
    if (st instanceof SqliteStore) st.db.pragma('cache_size = -1000000');
    let seeded: Seeded;
    try {
      // Every 500,000 messages the WAL is copied and cut back (waiting for the index worker's reads).
      const truncate = st instanceof SqliteStore ? () => void st.db.pragma('wal_checkpoint(TRUNCATE)') : undefined;
      seeded = await seedHistory(st, shape, (l) => say(`seeding ${l}`), Date.now(), truncate);
      if (st instanceof SqliteStore) await searchCaughtUp(st, say);
    } finally {
      await st.close();
    }
    if (infra) {
      // What autovacuum does on a live server, done now so plans and sizes are settled.
      say('VACUUM ANALYZE');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('VACUUM ANALYZE');
      await c.query('CHECKPOINT');
      await c.end();
    }
    const seedS = (performance.now() - seedStarted) / 1000;
    say(`seeded in ${round(seedS)} s (${Math.round(shape.messages / seedS).toLocaleString('en')} messages/s)`, true);
    const disk = infra ? await pgSize(infra.admin, db, url) : filesSize(dataDir);

    // ---- start and measure the reads
    const logBase = join(o.outDir, 'logs', `${stamp.replace(/[:.]/g, '-')}-history-${store}-${scale}`);
    const env: Record<string, string> = infra
      ? { PARLEY_STORE_POSTGRES_URL: url, PARLEY_BUS_REDIS_URL: infra.redis.url, PARLEY_CLUSTER_NODE_ID: 'node-1' }
      : { PARLEY_STORE_SQLITE_SYNCHRONOUS: o.synchronous };
    if (infra) await flushRedis(infra.redis.url);
    const started = performance.now();
    target = await startTarget('parley', { logFile: `${logBase}.log`, dataDir, env, startTimeoutMs: 30 * 60_000 });
    const base = `http://127.0.0.1:${target.port}`;
    const healthz = (await firstOk(`${base}/healthz`)) - started;
    const tokens = new Tokens();
    const ws = await openWs(base, await tokens.of(seeded.inboxUser));
    const auth = performance.now() - started;
    ws.terminate();
    say(`serving after ${Math.round(healthz)} ms (/healthz), WebSocket auth after ${Math.round(auth)} ms`, true);
    const queries = await measureQueries(base, seeded, shape, plan, tokens, say);
    result.memory.rssAfterSetupMiB = round(memory(target.pid).rssKiB / 1024);
    await target.stop();
    target = null;

    // ---- live traffic while retention removes the oldest share of the history
    const days = round(((1 - plan.retentionShare) * SPAN_MS) / 86_400_000, 4);
    if (infra) await flushRedis(infra.redis.url);
    const restarted = performance.now();
    target = await startTarget('parley', {
      logFile: `${logBase}-retention.log`,
      dataDir,
      env,
      startTimeoutMs: 30 * 60_000,
      settings: [`retention.days=${days}`, `retention.sweepSec=${plan.sweepSec}`],
    });
    const restartHealthz = (await firstOk(`http://127.0.0.1:${target.port}/healthz`)) - restarted;
    // The sweep timer starts as the server begins to listen.
    const live = await liveDuringSweep(`http://127.0.0.1:${target.port}`, seeded, plan, tokens, restarted + restartHealthz, say);
    result.memory.rssAfterMiB = round(memory(target.pid).rssKiB / 1024);
    result.memory.peakMiB = round(memory(target.pid).hwmKiB / 1024);
    const m1 = machineTicks();
    const figures: HistoryFigures = {
      store,
      scale,
      shape,
      memberRows: seeded.memberRows,
      seedS: round(seedS),
      seedPerSec: Math.round(shape.messages / seedS),
      startToHealthzMs: Math.round(healthz),
      startToAuthMs: Math.round(auth),
      restartToHealthzMs: Math.round(restartHealthz),
      queries,
      disk: { ...disk, perMessage: round(disk.bytes / Math.max(1, shape.messages)) },
      live: { ...live, retentionDays: days },
      serverRssMiB: result.memory.rssAfterSetupMiB,
      machine: { loadavg1: round(loadavg()[0]!, 2), stealPct: round(((m1.stealMs - m0.stealMs) / Math.max(1, m1.totalMs - m0.totalMs)) * 100, 2) },
    };
    result.history = figures;
    say(
      `done: ${figures.disk.perMessage} bytes/message, live ack p99 ${live.before.ack?.p99Ms ?? '-'} ms before the sweep, ` +
        `${live.during.ack?.p99Ms ?? '-'} ms during it (${live.removed} removed in ${live.sweepS ?? '?'} s)`,
      true,
    );
  } catch (err) {
    result.error = (err as Error).message;
    say(`failed: ${result.error}`, true);
  } finally {
    await target?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    if (infra) await infra.admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
  }
  return result;
}

/** Waits until SQLite's search index (a worker thread) holds every seeded message. */
async function searchCaughtUp(st: SqliteStore, say: (l: string) => void): Promise<void> {
  for (;;) {
    try {
      await st.search('u0', 'caughtup', ['r0'], 1);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'unavailable') throw err;
      say('waiting for the search index to catch up');
    }
  }
}

function filesSize(dir: string): { bytes: number; parts: Record<string, number> } {
  const parts: Record<string, number> = {};
  let bytes = 0;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith('parley.db')) continue;
    const n = statSync(join(dir, f)).size;
    parts[f] = n;
    bytes += n;
  }
  return { bytes, parts };
}

async function pgSize(admin: pg.Client, db: string, url: string): Promise<{ bytes: number; parts: Record<string, number> }> {
  const {
    rows: [d],
  } = await admin.query<{ n: string }>('SELECT pg_database_size($1) AS n', [db]);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ rel: string; n: string }>(`SELECT c.relname AS rel, pg_total_relation_size(c.oid) AS n FROM pg_class c
      JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'public' AND c.relkind IN ('r', 'i')
      ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 8`);
    return { bytes: Number(d!.n), parts: Object.fromEntries(rows.map((r) => [r.rel, Number(r.n)])) };
  } finally {
    await c.end();
  }
}

async function flushRedis(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  await r.flushall();
  r.disconnect();
}

/** Polls until the URL answers 2xx; returns the time (performance.now()) it first did. */
async function firstOk(url: string, timeoutMs = 30 * 60_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return performance.now();
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(10);
  }
}

class Tokens {
  private readonly key = new TextEncoder().encode(SECRET);
  private readonly cache = new Map<string, string>();
  async of(user: string): Promise<string> {
    let t = this.cache.get(user);
    if (!t) {
      t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt().setExpirationTime('2h').sign(this.key);
      this.cache.set(user, t);
    }
    return t;
  }
}

function openWs(base: string, token: string): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ id: 'auth', cmd: 'auth', token })));
    ws.on('message', function first(d) {
      const f = JSON.parse(d.toString()) as { id?: string; ok?: boolean };
      if (f.id !== 'auth') return;
      ws.off('message', first);
      if (f.ok) resolve(ws);
      else reject(new Error(`auth refused: ${d.toString()}`));
    });
  });
}

/** Sequential GETs (one client on an otherwise idle server): latency of each, and failures. */
async function timeGets(kind: string, base: string, reqs: Array<{ path: string; token: string }>, detail?: string): Promise<QueryFigures> {
  const h = newHistogram();
  let failed = 0;
  let firstError: string | undefined;
  // The first requests of a kind (cold pages, JIT) are not measured.
  for (const q of reqs.slice(0, Math.min(10, Math.ceil(reqs.length / 10)))) {
    await fetch(`${base}/api/v1${q.path}`, { headers: { authorization: `Bearer ${q.token}` } })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  }
  for (const q of reqs) {
    const t = performance.now();
    try {
      const r = await fetch(`${base}/api/v1${q.path}`, { headers: { authorization: `Bearer ${q.token}` } });
      const body = await r.text();
      if (!r.ok) throw new Error(`HTTP ${r.status} ${body.slice(0, 200)}`);
      h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    } catch (err) {
      failed++;
      firstError ??= `${q.path}: ${(err as Error).message}`;
    }
  }
  return { kind, latency: summarize(h), failed, ...(firstError ? { firstError } : {}), ...(detail ? { detail } : {}) };
}

async function measureQueries(
  base: string,
  s: Seeded,
  shape: HistoryShape,
  plan: HistoryPlan,
  tokens: Tokens,
  say: (l: string) => void,
): Promise<QueryFigures[]> {
  const rand = prng(42);
  const R = shape.rooms;
  const owner = (r: number): string => userId(s.memberOf[s.memberStart[r]!]!);
  const used = Array.from({ length: R }, (_, r) => r).filter((r) => s.last[r]! > 0);
  const deepRooms = used.filter((r) => s.last[r]! >= 200);
  const any = (list: number[]): number => list[Math.floor(rand() * list.length)]!;
  const n = plan.samples;
  const out: QueryFigures[] = [];
  const newest = await Promise.all(
    Array.from({ length: n }, async () => {
      const r = any(used);
      return { path: `/rooms/${roomId(r)}/messages?limit=50`, token: await tokens.of(owner(r)) };
    }),
  );
  say('history: newest pages');
  out.push(await timeGets('history, newest page', base, newest, `random rooms with messages (${used.length})`));
  const deepFrom = deepRooms.length > 0 ? deepRooms : used;
  const deep = await Promise.all(
    Array.from({ length: n }, async () => {
      const r = any(deepFrom);
      return { path: `/rooms/${roomId(r)}/messages?limit=50&before=${1 + Math.floor(rand() * s.last[r]!)}`, token: await tokens.of(owner(r)) };
    }),
  );
  say('history: deep pages');
  out.push(await timeGets('history, deep page (before)', base, deep, `random seq of rooms with 200+ messages (${deepFrom.length})`));
  const biggest = used.reduce((a, r) => (s.last[r]! > s.last[a]! ? r : a), used[0]!);
  const oldest = await Promise.all(
    Array.from({ length: Math.ceil(n / 4) }, async () => ({
      path: `/rooms/${roomId(biggest)}/messages?limit=50&before=${1 + Math.floor(rand() * 100)}`,
      token: await tokens.of(owner(biggest)),
    })),
  );
  out.push(await timeGets('history, oldest page of the biggest room', base, oldest, `${s.last[biggest]} messages`));
  const inboxToken = await tokens.of(s.inboxUser);
  for (const t of s.terms) {
    say(`search: ${t.label}`);
    const q = encodeURIComponent(t.query);
    out.push(
      await timeGets(
        `search, ${t.label}`,
        base,
        Array.from({ length: Math.ceil(n / 4) }, () => ({ path: `/search?query=${q}&limit=20`, token: inboxToken })),
        `"${t.query}" in ${t.messages.toLocaleString('en')} messages, across the ${Math.min(shape.inboxRooms, R)} rooms of one user`,
      ),
    );
  }
  say('inbox');
  out.push(
    await timeGets(
      'inbox',
      base,
      Array.from({ length: Math.ceil(n / 4) }, () => ({ path: '/inbox', token: inboxToken })),
      `a user in ${Math.min(shape.inboxRooms, R)} rooms`,
    ),
  );
  return out;
}

interface LiveSample {
  at: number;
  ackUs: number;
}

/**
 * Live traffic (a sender and a receiver in each of a few rooms) from a server's start until its
 * first retention sweep has run and a little after; samples before the sweep was due and
 * after are summarised apart.
 */
async function liveDuringSweep(
  base: string,
  s: Seeded,
  plan: HistoryPlan,
  tokens: Tokens,
  startedAt: number,
  say: (l: string) => void,
): Promise<Omit<HistoryFigures['live'], 'retentionDays'>> {
  // Mid-sized rooms with at least two members.
  const rooms: number[] = [];
  const R = s.last.length;
  for (let r = Math.floor(R / 3); r < R && rooms.length < plan.liveRooms; r += Math.max(1, Math.floor(R / 50))) {
    if (s.memberStart[r + 1]! - s.memberStart[r]! >= 2) rooms.push(r);
  }
  const sockets: WebSocket[] = [];
  const acks: LiveSample[] = [];
  const deliveries: LiveSample[] = [];
  let sent = 0;
  let failed = 0;
  let firstError: string | undefined;
  const senders: Array<{ ws: WebSocket; room: string }> = [];
  try {
    for (const r of rooms) {
      const sender = await openWs(base, await tokens.of(userId(s.memberOf[s.memberStart[r]!]!)));
      const receiver = await openWs(base, await tokens.of(userId(s.memberOf[s.memberStart[r]! + 1]!)));
      sockets.push(sender, receiver);
      const pending = new Map<number, number>();
      sender.on('message', (d) => {
        const f = JSON.parse(d.toString()) as { id?: number; ok?: boolean; error?: { code: string } };
        if (typeof f.id !== 'number') return;
        const t = pending.get(f.id);
        pending.delete(f.id);
        if (t === undefined) return;
        if (f.ok) acks.push({ at: t, ackUs: Math.round((performance.now() - t) * 1000) });
        else {
          failed++;
          firstError ??= JSON.stringify(f.error);
        }
      });
      receiver.on('message', (d) => {
        const f = JSON.parse(d.toString()) as { ev?: string; data?: { text?: string } };
        const at = f.ev === 'message' && f.data?.text?.startsWith('live:') ? Number(f.data.text.slice(5)) : NaN;
        if (Number.isFinite(at)) deliveries.push({ at, ackUs: Math.round((performance.now() - at) * 1000) });
      });
      senders.push({ ws: Object.assign(sender, { pending }), room: roomId(r) });
    }
    let id = 0;
    const timer = setInterval(
      () => {
        for (const x of senders) {
          const t = performance.now();
          const sid = ++id;
          (x.ws as WebSocket & { pending: Map<number, number> }).pending.set(sid, t);
          x.ws.send(JSON.stringify({ id: sid, cmd: 'send', room: x.room, text: `live:${t}` }));
          sent++;
        }
      },
      (1000 * senders.length) / plan.liveRate,
    );
    const due = startedAt + plan.sweepSec * 1000;
    say(`live traffic in ${senders.length} rooms; the sweep is due in ${Math.max(0, Math.round((due - performance.now()) / 1000))} s`);
    let removed = 0;
    let doneAt: number | null = null;
    let sweepS: number | null = null;
    const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, 'm').exec(text)?.[1] ?? 0);
    const limit = performance.now() + plan.sweepSec * 1000 + 30 * 60_000;
    while (performance.now() < limit) {
      await sleep(250);
      const text = await fetch(`${base}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      if (metric(text, 'parley_retention_sweeps_total') > 0) {
        removed = metric(text, 'parley_retention_removed_total');
        sweepS = metric(text, 'parley_retention_sweep_seconds_total');
        doneAt = performance.now();
        break;
      }
    }
    await sleep(3000);
    clearInterval(timer);
    await sleep(2000);
    // The sweep ran from (its end - its duration) to its end, as the server measured it; the
    // end is known to the metrics poll's 250 ms.
    const sweepStart = doneAt === null ? due : doneAt - 250 - (sweepS ?? 0) * 1000;
    const split = (xs: LiveSample[]) => {
      const before = newHistogram();
      const during = newHistogram();
      for (const x of xs) {
        const h: Histogram | null = x.at < Math.min(due, sweepStart) ? before : x.at >= sweepStart && (doneAt === null || x.at <= doneAt) ? during : null;
        h?.recordValue(Math.max(1, x.ackUs));
      }
      return { before: summarize(before), during: summarize(during) };
    };
    const a = split(acks);
    const d = split(deliveries);
    return {
      before: { ack: a.before, delivery: d.before },
      during: { ack: a.during, delivery: d.during },
      sent,
      acked: acks.length,
      delivered: deliveries.length,
      failed,
      ...(firstError ? { firstError } : {}),
      removed,
      sweepS: sweepS === null ? null : round(sweepS, 2),
    };
  } finally {
    for (const ws of sockets) ws.terminate();
  }
}

/** The terminal table of history runs. */
export function historyTable(runs: RunResult[]): string {
  const mine = runs.filter((r) => r.workload === 'history');
  if (mine.length === 0) return '';
  const head = ['history', 'messages', 'seed s', 'start ms', 'bytes/msg', ...queryHeads(mine), 'live ack p99 ms', 'during sweep', 'removed', 'sweep s'];
  const rows = mine.map((r) => {
    const h = r.history;
    if (!h) return [r.label, `ERROR ${r.error ?? ''}`];
    return [
      r.label,
      h.shape.messages.toLocaleString('en'),
      String(h.seedS),
      String(h.startToAuthMs),
      String(h.disk.perMessage),
      ...h.queries.map((q) => String(q.latency?.p99Ms ?? (q.failed ? 'ERR' : '-'))),
      String(h.live.before.ack?.p99Ms ?? '-'),
      String(h.live.during.ack?.p99Ms ?? '-'),
      String(h.live.removed),
      String(h.live.sweepS ?? '-'),
    ];
  });
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function queryHeads(runs: RunResult[]): string[] {
  const q = runs.find((r) => r.history)?.history?.queries ?? [];
  return q.map((x) => `${x.kind.replace('history, ', '').replace('search, ', 'search ')} p99`);
}
