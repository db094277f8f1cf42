// A load-generator thread: holds a share of the client connections, opens them, runs the
// setup commands it is given, sends on schedule, and checks every delivery it receives
// (loss, duplication, order) while probes record send-to-receipt latency.
import { parentPort } from 'node:worker_threads';
import { SignJWT } from 'jose';
import { drivers } from './drivers/index.js';
import type { ClientConn } from './drivers/driver.js';
import { encodeHistogram, newHistogram, type Histogram } from './hist.js';
import { accept, decodePayload, encodePayload, nowUs, type StreamState } from './payload.js';
import type { CollectResult, ConnSpec, FromWorker, OpenResult, SenderSpec, SentResult, StepSpec, StreamEnd, TargetInfo, ToWorker } from './types.js';

interface Client {
  spec: ConnSpec;
  conn: ClientConn | null;
  /** Sender streams of the current step seen by this connection, by "room|sid". */
  streams: Map<string, StreamState>;
  own: string;
  closed: boolean;
}

const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

let clients: Client[] = [];
const byIndex = new Map<number, Client>();
/** Logical room id -> the id the target gave it. */
let actual: Record<string, string> = {};

let stepId = -1;
let stepPrefix = '';
let sent = 0;
let acked = 0;
let received = 0;
let frames = 0;
let expected = 0;
let duplicated = 0;
let outOfOrder = 0;
let late = 0;
let closedEarly = 0;
let latency: Histogram = newHistogram();

function onText(c: Client, text: string): void {
  frames++;
  const p = decodePayload(text);
  if (!p) return;
  if (!p.sid.startsWith(stepPrefix)) {
    late++;
    return;
  }
  const key = `${p.room}|${p.sid}`;
  let s = c.streams.get(key);
  if (!s) c.streams.set(key, (s = { next: 1, unique: 0, missing: null }));
  const v = accept(s, p.n);
  if (v === 'dup') {
    duplicated++;
    return;
  }
  if (v === 'ooo') outOfOrder++;
  received++;
  // A connection's own echo is not a delivery to a recipient; it still counts for loss.
  if (c.spec.probe && p.sid !== c.own) latency.recordValue(Math.max(1, nowUs() - p.sentUs));
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const run = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}

async function open(t: TargetInfo, conns: ConnSpec[], concurrency: number): Promise<OpenResult> {
  const key = new TextEncoder().encode(t.secret);
  const connect = drivers[t.name];
  // A cluster's connections each go to their own node, as a load balancer would send them.
  const targetOf = (c: ConnSpec): TargetInfo => (c.node !== undefined && t.ports ? { ...t, port: t.ports[c.node]! } : t);
  // Tokens are minted before connecting so signing does not count as connecting.
  const tokens = await Promise.all(
    conns.map((c) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(c.user).setIssuedAt().setExpirationTime('2h').sign(key)),
  );
  clients = conns.map((spec) => ({ spec, conn: null, streams: new Map(), own: '', closed: false }));
  for (const c of clients) byIndex.set(c.spec.index, c);
  const result: OpenResult = { opened: 0, failed: 0, connectMs: [], wallMs: 0 };
  const start = performance.now();
  await mapLimit(
    clients.map((c, i) => [c, tokens[i]!] as const),
    concurrency,
    async ([c, token]) => {
      const t0 = performance.now();
      try {
        c.conn = await connect({
          target: targetOf(c.spec),
          user: c.spec.user,
          token,
          localAddress: c.spec.localAddress,
          onText: (_room, text) => onText(c, text),
          onClose: () => {
            if (!c.closed) closedEarly++;
            c.closed = true;
          },
        });
        result.opened++;
        result.connectMs.push(performance.now() - t0);
      } catch (err) {
        result.failed++;
        result.firstError ??= (err as Error).message;
      }
    },
  );
  result.wallMs = performance.now() - start;
  return result;
}

function live(index: number): ClientConn {
  const c = byIndex.get(index);
  if (!c?.conn) throw new Error(`connection ${index} is not open`);
  return c.conn;
}

// ---- sending ---------------------------------------------------------------------------

interface Sender {
  conn: ClientConn;
  room: string;
  actualRoom: string;
  sid: string;
  n: number;
  failed: number;
  inflight: number;
}

/** An acknowledgement later than this is a timeout: the SDK gives up on a send after 10 s. */
const ACK_TIMEOUT_US = 10_000_000;

async function runStep(step: StepSpec, rate: number | 'max', specs: SenderSpec[]): Promise<SentResult> {
  const senders: Sender[] = specs.map((s) => ({
    conn: live(s.conn),
    room: s.room,
    actualRoom: actual[s.room] ?? s.room,
    sid: `${stepPrefix}${s.conn}`,
    n: 0,
    failed: 0,
    inflight: 0,
  }));
  let errors = 0;
  let slowAcks = 0;
  let firstError: string | undefined;
  let firstSendUs = 0;
  let lastSendUs = 0;
  let outstanding = 0;
  let allAcked: (() => void) | null = null;
  const localAck = newHistogram();

  const sendOne = (s: Sender, onAcked?: () => void): void => {
    const n = ++s.n;
    const t = nowUs();
    if (firstSendUs === 0) firstSendUs = t;
    lastSendUs = t;
    s.inflight++;
    outstanding++;
    sent++;
    s.conn.send(s.actualRoom, encodePayload(s.room, s.sid, n, t, step.size), (err) => {
      s.inflight--;
      outstanding--;
      if (err) {
        s.failed++;
        errors++;
        firstError ??= err;
      } else {
        acked++;
        const us = Math.max(1, nowUs() - t);
        if (us > ACK_TIMEOUT_US) slowAcks++;
        localAck.recordValue(us);
      }
      onAcked?.();
      if (outstanding === 0) allAcked?.();
    });
  };

  if (senders.length > 0) {
    const endAt = performance.now() + step.durationMs;
    if (rate === 'max') {
      await new Promise<void>((resolve) => {
        let running = senders.length;
        const pump = (s: Sender): void => {
          if (performance.now() >= endAt) {
            if (s.inflight === 0 && --running === 0) resolve();
            return;
          }
          while (s.inflight < step.window) sendOne(s, () => pump(s));
        };
        // A sender whose acks stop coming must not hold the step open forever.
        setTimeout(resolve, step.durationMs + 30_000).unref();
        for (const s of senders) pump(s);
      });
    } else if (rate > 0) {
      const start = performance.now();
      let due = 0;
      // Coarse ticks at low rates keep the generator's own CPU use (and noise) down.
      const tickMs = Math.max(1, Math.min(10, Math.floor(1000 / rate)));
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const now = performance.now();
          const elapsed = Math.min(now, endAt) - start;
          const target = Math.floor((rate * elapsed) / 1000);
          // Open loop: what fell due while the thread was busy is sent now, not skipped.
          for (; due < target; due++) {
            sendOne(senders[senders.length === 1 ? 0 : Math.floor(Math.random() * senders.length)]!);
          }
          if (now >= endAt) {
            clearInterval(timer);
            resolve();
          }
        }, tickMs);
      });
    }
  }
  // Acks still owed are waited for, within bounds, so they count.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      allAcked = resolve;
      setTimeout(resolve, 15_000).unref();
    });
  }
  const streams: StreamEnd[] = senders.map((s) => [s.room, s.sid, s.n, s.failed]);
  // Sends still unanswered after the wait above are timeouts too.
  const timeouts = slowAcks + outstanding;
  return { streams, sent, acked, errors, timeouts, firstError, ack: encodeHistogram(localAck), firstSendUs, lastSendUs };
}

/** Per (connection, stream): what it should have received; loss is the shortfall. */
function collect(ends: Map<string, StreamEnd[]>): CollectResult {
  let lost = 0;
  for (const c of clients) {
    for (const room of c.spec.rooms) {
      for (const [, sid, last, failed] of ends.get(room) ?? []) {
        const s = c.streams.get(`${room}|${sid}`);
        lost += Math.max(0, last - failed - (s?.unique ?? 0));
      }
    }
  }
  return { expected, received, lost, duplicated, outOfOrder, late, latency: encodeHistogram(latency), closedEarly };
}

let ends = new Map<string, StreamEnd[]>();

async function handle(m: ToWorker): Promise<unknown> {
  switch (m.t) {
    case 'open':
      return open(m.target, m.conns, m.concurrency);
    case 'owners': {
      const ids: Record<string, string> = {};
      for (const r of m.rooms) ids[r.id] = await live(r.members[0]!).createRoom(r, r.users);
      return ids;
    }
    case 'members': {
      actual = m.actual;
      const jobs: Array<[number, (typeof m.rooms)[number]]> = [];
      for (const r of m.rooms) for (const i of r.members.slice(1)) if (byIndex.has(i)) jobs.push([i, r]);
      await mapLimit(jobs, 64, ([i, r]) => live(i).joinRoom(r, r.actual));
      return jobs.length;
    }
    case 'step': {
      stepId = m.stepId;
      stepPrefix = `s${stepId}.`;
      sent = acked = received = duplicated = outOfOrder = late = expected = 0;
      latency = newHistogram();
      for (const c of clients) {
        c.streams.clear();
        c.own = `${stepPrefix}${c.spec.index}`;
      }
      return runStep(m.step, m.rate, m.senders);
    }
    case 'expect': {
      ends = new Map();
      for (const e of m.streams) {
        let list = ends.get(e[0]);
        if (!list) ends.set(e[0], (list = []));
        list.push(e);
      }
      expected = 0;
      for (const c of clients) for (const room of c.spec.rooms) for (const [, , last, failed] of ends.get(room) ?? []) expected += last - failed;
      return expected;
    }
    case 'collect':
      return collect(ends);
    case 'close': {
      // The thread is reused for the next run: forget everything of this one.
      for (const c of clients) {
        c.closed = true;
        c.conn?.close();
      }
      const n = clients.length;
      clients = [];
      byIndex.clear();
      actual = {};
      ends = new Map();
      closedEarly = 0;
      return n;
    }
  }
}

port.on('message', (m: ToWorker) => {
  handle(m).then(
    (data) => post({ t: 'reply', rid: m.rid, ok: true, data }),
    (err: unknown) => post({ t: 'reply', rid: m.rid, ok: false, error: (err as Error).message ?? String(err) }),
  );
});

setInterval(() => post({ t: 'tick', sent, acked, received, frames, expected }), 250).unref();
