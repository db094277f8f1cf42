// The workloads as plans: which connections exist, which rooms they are members of, and the
// measured steps (rate, duration, senders). Sizes come from the options, with a quick variant
// small enough for a one-minute run of everything. The cluster workload's plan also says which
// node each connection goes to; its rates are chosen while it runs (bench/cluster.ts).
import type { ClusterShape, CompareWorkload, ConnSpec, RoomSpec, SenderSpec, StepSpec, WorkloadName } from './types.js';

export interface WorkloadOptions {
  quick: boolean;
  /** Seconds per measured step (each workload has its own default). */
  duration?: number;
  /** Messages per second: one rate, or the sweep of `fanout` / the fixed steps of `ingest`. */
  rates?: number[];
  members?: number;
  publishers?: number;
  probes?: number;
  rooms?: number;
  roomSize?: number;
  senders?: number;
  window?: number;
  connections?: number;
  /** Seconds the idle connections are held (connections workload). */
  idle?: number;
  /** Text bytes per message. */
  size?: number;
  /** Cluster: node counts to measure, one run each (default 1,2,3,4). */
  clusterNodes?: number[];
  /** Cluster: CPU quota of each node, in cores. */
  nodeCpu?: number;
  /** Cluster: room shapes to measure. */
  shapes?: ClusterShape[];
  /** History: messages, users, the fresh database's messages (0: none), stores, requests per query, seconds before the sweep. */
  historyMessages?: number;
  historyUsers?: number;
  historyFresh?: number;
  historyStores?: Array<'sqlite' | 'postgres'>;
  samples?: number;
  sweepSec?: number;
}

export interface Plan {
  workload: WorkloadName;
  description: string;
  conns: ConnSpec[];
  rooms: RoomSpec[];
  steps: StepSpec[];
  /** Stop at the first step the target cannot keep up with (rate sweeps). */
  sweep: boolean;
  heartbeatMs?: number;
  idleMs?: number;
  /** Sizes used, for the report. */
  params: Record<string, number | string>;
}

/** Client sockets are spread over several loopback source addresses so ports never run out. */
export const LOCAL_ADDRESSES = 8;
const localAddress = (i: number): string => `127.0.0.${2 + (i % LOCAL_ADDRESSES)}`;

function conns(n: number, probe: (i: number) => boolean): ConnSpec[] {
  return Array.from({ length: n }, (_, i) => ({ index: i, user: `u${i}`, probe: probe(i), rooms: [], localAddress: localAddress(i) }));
}

function room(id: string, kind: RoomSpec['kind'], members: number[], all: ConnSpec[]): RoomSpec {
  for (const m of members) all[m]!.rooms.push(id);
  return { id, kind, members };
}

const seconds = (o: WorkloadOptions, full: number, quick: number): number => Math.round((o.duration ?? (o.quick ? quick : full)) * 1000);

function step(name: string, rate: number | 'max', durationMs: number, senders: SenderSpec[], o: WorkloadOptions, window = 1): StepSpec {
  return { name, rate, window, durationMs, senders, size: o.size ?? 100 };
}

function chat21(o: WorkloadOptions): Plan {
  const c = conns(2, () => true);
  const rooms = [room('d1', 'direct', [0, 1], c), room('g1', 'group', [0, 1], c)];
  const rate = o.rates?.[0] ?? 60;
  const d = seconds(o, 10, 1);
  // Both users talk, so each one's latency is measured on the other's deliveries.
  const both = (r: string): SenderSpec[] => [
    { conn: 0, room: r },
    { conn: 1, room: r },
  ];
  return {
    workload: 'chat21',
    sweep: false,
    conns: c,
    rooms,
    description: `Chat21's benchmark: two users, direct messages at ${rate} msg/s, then a group at ${rate} msg/s`,
    steps: [step('direct', rate, d, both('d1'), o), step('group', rate, d, both('g1'), o)],
    params: { users: 2, rate, durationS: d / 1000 },
  };
}

function fanout(o: WorkloadOptions): Plan {
  const m = o.members ?? (o.quick ? 100 : 1000);
  const p = Math.min(m, o.publishers ?? (o.quick ? 2 : 4));
  const extra = o.probes ?? 16;
  // Publishers plus probes spread evenly over the member list (late joiners included).
  const probeEvery = Math.max(1, Math.floor(m / Math.max(1, extra)));
  const c = conns(m, (i) => i < p || i % probeEvery === probeEvery - 1);
  const rooms = [
    room(
      'f1',
      'channel',
      c.map((x) => x.index),
      c,
    ),
  ];
  const rates = o.rates ?? (o.quick ? [20, 100] : [10, 25, 50, 100, 200]);
  const d = seconds(o, 5, 1);
  const pubs = Array.from({ length: p }, (_, i) => ({ conn: i, room: 'f1' }));
  return {
    workload: 'fanout',
    sweep: true,
    conns: c,
    rooms,
    description: `one room of ${m} members, ${p} publishers, rate sweep ${rates.join(', ')} msg/s`,
    steps: rates.map((r) => step(`${r}/s`, r, d, pubs, o)),
    params: { members: m, publishers: p, rates: rates.join(','), durationS: d / 1000 },
  };
}

function rooms(o: WorkloadOptions): Plan {
  const n = o.rooms ?? (o.quick ? 100 : 1000);
  const k = o.roomSize ?? 5;
  // One probe per room; every member may be picked as a sender.
  const c = conns(n * k, (i) => i % k === 0);
  const rs = Array.from({ length: n }, (_, r) =>
    room(
      `r${r}`,
      'channel',
      Array.from({ length: k }, (_, j) => r * k + j),
      c,
    ),
  );
  const rate = o.rates?.[0] ?? (o.quick ? 500 : 2000);
  const d = seconds(o, 10, 1.5);
  const senders = rs.flatMap((r) => r.members.map((m) => ({ conn: m, room: r.id })));
  return {
    workload: 'rooms',
    sweep: false,
    conns: c,
    rooms: rs,
    description: `${n} rooms x ${k} members, random senders, ${rate} msg/s overall`,
    steps: [step(`${rate}/s`, rate, d, senders, o)],
    params: { rooms: n, roomSize: k, rate, durationS: d / 1000 },
  };
}

function ingest(o: WorkloadOptions): Plan {
  const s = o.senders ?? (o.quick ? 10 : 50);
  const c = conns(s, () => true);
  // One room per sender: storage work without fan-out.
  const rs = c.map((x) => room(`i${x.index}`, 'channel', [x.index], c));
  const senders = rs.map((r) => ({ conn: r.members[0]!, room: r.id }));
  const w = o.window ?? 32;
  const fixed = o.rates ?? (o.quick ? [1000] : [5000]);
  const d = seconds(o, 8, 1);
  return {
    workload: 'ingest',
    sweep: false,
    conns: c,
    rooms: rs,
    description: `${s} senders, each with its own room; as fast as acks allow (${w} in flight each), then fixed ${fixed.join(', ')}/s`,
    steps: [step('max', 'max', d, senders, o, w), ...fixed.map((r) => step(`${r}/s`, r, d, senders, o))],
    params: { senders: s, window: w, rates: fixed.join(','), durationS: d / 1000 },
  };
}

function connections(o: WorkloadOptions): Plan {
  const n = o.connections ?? (o.quick ? 1000 : 19000);
  const k = o.roomSize ?? 10;
  const c = conns(n, () => false);
  const rs: RoomSpec[] = [];
  for (let r = 0; r * k < n; r++)
    rs.push(
      room(
        `c${r}`,
        'channel',
        c.slice(r * k, (r + 1) * k).map((x) => x.index),
        c,
      ),
    );
  // Long enough for V8 to collect what setup left behind (authentication, joins): a 12 s hold
  // measured up to 40% more RSS per connection at 19,800 than a 40 s one, all of it garbage.
  const idleMs = Math.round((o.idle ?? (o.quick ? 1 : 40)) * 1000);
  return {
    workload: 'connections',
    sweep: false,
    conns: c,
    rooms: rs,
    steps: [],
    description: `${n} idle authenticated connections, ${k} per room, heartbeats every 5 s, held ${idleMs / 1000} s`,
    heartbeatMs: 5000,
    idleMs,
    params: { connections: n, roomSize: k, idleS: idleMs / 1000, heartbeatS: 5 },
  };
}

export const plans: Record<CompareWorkload, (o: WorkloadOptions) => Plan> = { chat21, fanout, rooms, ingest, connections };

/** A small seeded generator (mulberry32), so a shape puts the same members on the same nodes in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ClusterPlan extends Plan {
  shape: ClusterShape;
  nodes: number;
  /** Length of a measured step. */
  stepMs: number;
  /** The measured step at `rate` msg/s over all senders (the sweep picks the rates). */
  stepAt(rate: number): StepSpec;
}

/**
 * The cluster workload's room shapes on `nodes` nodes. Every connection goes straight to one
 * node, the nodes holding equal shares, as a load balancer would spread them.
 *  - small: many rooms of a few members, each member on a node picked at random, so most
 *    messages cross nodes and the rooms of a batch rarely meet on another node;
 *  - hot: a few busy rooms with members on every node, so every node writes into every room.
 */
export function clusterPlan(shape: ClusterShape, nodes: number, o: WorkloadOptions): ClusterPlan {
  const d = seconds(o, 10, 2);
  let c: ConnSpec[];
  let rs: RoomSpec[];
  if (shape === 'small') {
    const n = o.rooms ?? (o.quick ? 200 : 2000);
    const k = o.roomSize ?? 3;
    c = conns(n * k, (i) => i % k === 0);
    // A seeded shuffle dealt round the nodes: equal counts, random placement.
    const order = c.map((x) => x.index);
    const rnd = seeded(16);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    order.forEach((conn, i) => {
      c[conn]!.node = i % nodes;
    });
    rs = Array.from({ length: n }, (_, r) =>
      room(
        `s${r}`,
        'channel',
        Array.from({ length: k }, (_, j) => r * k + j),
        c,
      ),
    );
  } else {
    const n = 10;
    const k = Math.max(nodes, 6);
    // Consecutive members go to consecutive nodes: with k >= nodes every room has members on every node.
    c = conns(n * k, () => true);
    for (const x of c) x.node = x.index % nodes;
    rs = Array.from({ length: n }, (_, r) =>
      room(
        `h${r}`,
        'channel',
        Array.from({ length: k }, (_, j) => r * k + j),
        c,
      ),
    );
  }
  const senders = rs.flatMap((r) => r.members.map((m) => ({ conn: m, room: r.id })));
  const size = rs[0]!.members.length;
  return {
    workload: 'cluster',
    shape,
    nodes,
    sweep: true,
    conns: c,
    rooms: rs,
    steps: [],
    description:
      shape === 'small'
        ? `${rs.length} rooms x ${size} members on ${nodes} node(s), members placed at random, random senders`
        : `${rs.length} hot rooms x ${size} members, members on every one of ${nodes} node(s), random senders`,
    params: { shape, nodes, rooms: rs.length, roomSize: size, connections: c.length, durationS: d / 1000 },
    stepMs: d,
    stepAt: (rate) => step(`${rate}/s`, rate, d, senders, o),
  };
}
