// Seeds a store with a big history for the history workload, through the store's own write
// path: users by `upsertUser`, rooms, members and messages by `commit` (the RoomWriter port
// the room log writes through), read markers by `markRead`. The rows are exactly those the
// server writes (seqs gap-free per room, an idempotency key per message, the search index
// filled as the server fills it: SQLite's index worker, PostgreSQL's tsvector column); only
// the decisions are skipped, since every change here is one the rules would allow.
//
// The shape: messages go to rooms by a Zipf-like law (a few rooms hold tens of thousands, the
// median room a few dozen), in time order over one year, each from a member of its room; texts
// are words drawn by a Zipf law from a fixed vocabulary, so search terms of known frequency
// exist. One chosen user is a member of `inboxRooms` rooms.
import type { Member, Room } from '../src/protocol/schema.js';
import type { MessageRecord, Store } from '../src/store/store.js';
import { emptyBatch } from '../src/store/writer.js';

export interface HistoryShape {
  messages: number;
  rooms: number;
  users: number;
  /** Rooms of the chosen inbox user. */
  inboxRooms: number;
}

/** What the measurement needs to know of the seeded data. */
export interface Seeded {
  /** Last seq of each room (index = room number). */
  last: Int32Array;
  /** Members of each room: `memberOf[memberStart[r] .. memberStart[r+1]]` (user numbers; the first is the owner). */
  memberStart: Int32Array;
  memberOf: Int32Array;
  memberRows: number;
  /** The user in `inboxRooms` rooms. */
  inboxUser: string;
  /** Timestamp of the first and last message. */
  firstTs: number;
  lastTs: number;
  /** Search terms and how many messages hold each. */
  terms: Array<{ label: string; query: string; messages: number }>;
}

export const roomId = (r: number): string => `r${r}`;
export const userId = (u: number): string => `u${u}`;
export const INBOX_USER = 'inbox-user';
/** The history spans one year, ending an hour before the seed. */
export const SPAN_MS = 365 * 86_400_000;

/** A small, fast, seeded PRNG (mulberry32), so two seeds of one shape are the same data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cumulative weights of ranks 0..n-1 under w(k) = (k + offset)^-s, normalised to 1. */
function zipfCdf(n: number, s: number, offset: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += (k + offset) ** -s;
  for (let k = 0; k < n; k++) cdf[k]! /= sum;
  return cdf;
}

function pick(cdf: Float64Array, x: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const VOCABULARY = 4096;
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'su', 'ta', 'ri', 'po', 'da', 've', 'gu', 'zo', 'he', 'fa', 'bi', 'ny', 'qu', 'xe', 'wa', 'jo'];

/** The vocabulary: distinct made-up words of 2 to 4 syllables (rank 0 is the most frequent). */
function vocabulary(rand: () => number): string[] {
  const words = new Set<string>();
  while (words.size < VOCABULARY) {
    const n = 2 + Math.floor(rand() * 3);
    let w = '';
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
    words.add(w);
  }
  return [...words];
}

/** Word ranks of the searched terms: very common, common, medium, rare, and a two-word query. */
const TERMS: Array<{ label: string; ranks: number[] }> = [
  { label: 'very common word', ranks: [0] },
  { label: 'common word', ranks: [20] },
  { label: 'medium word', ranks: [300] },
  { label: 'rare word', ranks: [4000] },
  { label: 'two words', ranks: [3, 150] },
];

/**
 * `checkpoint`, when given, runs after every 100 batches (500,000 messages): SQLite's WAL does
 * not start over by itself while the search index worker reads behind the seed.
 */
export async function seedHistory(store: Store, shape: HistoryShape, say: (line: string) => void, now = Date.now(), checkpoint?: () => void): Promise<Seeded> {
  const rand = prng(0x5eed);
  const { messages: N, rooms: R, users: U } = shape;
  const inboxRooms = Math.min(shape.inboxRooms, R);

  // ---- users
  say(`users: ${U}`);
  const users = [...Array.from({ length: U }, (_, u) => userId(u)), INBOX_USER];
  for (let i = 0; i < users.length; i += 5000) {
    await Promise.all(
      users.slice(i, i + 5000).map((id) => store.upsertUser({ id, name: id === INBOX_USER ? 'Inbox User' : `User ${id.slice(1)}`, profile: {} })),
    );
  }

  // ---- rooms and members: room r's weight follows its rank; busier rooms have more members.
  const roomCdf = zipfCdf(R, 0.7, 10);
  const memberStart = new Int32Array(R + 1);
  const lists: number[][] = [];
  let memberRows = 0;
  const inboxEvery = R / inboxRooms;
  for (let r = 0; r < R; r++) {
    const share = (roomCdf[r]! - (r > 0 ? roomCdf[r - 1]! : 0)) * R;
    const size = Math.min(U, Math.max(2, Math.round(2 + rand() * 4 + share * 3)));
    const set = new Set<number>([r % U]);
    while (set.size < size) set.add(Math.floor(rand() * U));
    const list = [...set];
    lists.push(list);
    memberStart[r] = memberRows;
    memberRows += list.length;
  }
  memberStart[R] = memberRows;
  const memberOf = new Int32Array(memberRows);
  lists.forEach((l, r) => memberOf.set(l, memberStart[r]));
  const inboxSet = new Set<number>();
  for (let k = 0; k < inboxRooms; k++) inboxSet.add(Math.floor(k * inboxEvery));
  const t0 = now - SPAN_MS - 3_600_000;
  say(`rooms: ${R}, members: ${memberRows + inboxSet.size}`);
  for (let r0 = 0; r0 < R; r0 += 2000) {
    const batch = emptyBatch();
    for (let r = r0; r < Math.min(R, r0 + 2000); r++) {
      const owner = userId(lists[r]![0]!);
      const room: Room = {
        id: roomId(r),
        kind: 'group',
        name: `Room ${r}`,
        topic: '',
        createdBy: owner,
        createdAt: t0,
        lastSeq: 0,
        access: 'blacklist',
        retention: { count: null, days: null },
      };
      batch.insertRooms.push({ room, directKey: null, floor: 0 });
      const member = (user: string, role: Member['role']): Member => ({ room: room.id, user, role, joinedAt: t0, joinSeq: 0, readSeq: 0 });
      lists[r]!.forEach((u, i) => batch.insertMembers.push(member(userId(u), i === 0 ? 'owner' : 'member')));
      if (inboxSet.has(r)) batch.insertMembers.push(member(INBOX_USER, 'member'));
    }
    await store.commit(batch, null);
  }
  memberRows += inboxSet.size;

  // ---- messages, in time order, in batches as the room log commits them
  const words = vocabulary(rand);
  const wordCdf = zipfCdf(VOCABULARY, 1, 2.7);
  const termCounts = TERMS.map(() => 0);
  const last = new Int32Array(R);
  const BATCH = 5000;
  const started = performance.now();
  let lastSay = started;
  let inFlight: Promise<void> = Promise.resolve();
  const tsOf = (i: number): number => t0 + Math.floor((i * SPAN_MS) / Math.max(1, N));
  for (let i0 = 0; i0 < N; i0 += BATCH) {
    const batch = emptyBatch();
    for (let i = i0; i < Math.min(N, i0 + BATCH); i++) {
      const r = pick(roomCdf, rand());
      const seq = ++last[r]!;
      const start = memberStart[r]!;
      const u = memberOf[start + Math.floor(rand() * (memberStart[r + 1]! - start))]!;
      const n = 4 + Math.floor(rand() * 11);
      const ranks: number[] = [];
      for (let k = 0; k < n; k++) ranks.push(pick(wordCdf, rand()));
      TERMS.forEach((t, j) => {
        if (t.ranks.every((x) => ranks.includes(x))) termCounts[j]!++;
      });
      const user = userId(u);
      const rec: MessageRecord = {
        message: { room: roomId(r), seq, kind: 'text', user, name: `User ${u}`, ts: tsOf(i), text: ranks.map((k) => words[k]).join(' ') },
        key: `k${i.toString(36)}`,
        hiddenFor: null,
      };
      batch.messages.push(rec);
    }
    // One batch is written while the next is made (PostgreSQL); SQLite writes synchronously.
    await inFlight;
    inFlight = store.commit(batch, null);
    // SQLite's commits resolve at once: without a turn of the event loop the store never
    // hears that its checkpointer caught up, never starts the WAL over, and the WAL grows
    // with every batch (past 60 GB at 7M messages).
    await new Promise((r) => setImmediate(r));
    if (checkpoint && (i0 / BATCH) % 100 === 99) {
      await inFlight;
      checkpoint();
    }
    const t = performance.now();
    if (t - lastSay > 5000) {
      lastSay = t;
      const done = Math.min(N, i0 + BATCH);
      say(`messages: ${done.toLocaleString('en')} of ${N.toLocaleString('en')} (${Math.round(done / ((t - started) / 1000)).toLocaleString('en')}/s)`);
    }
  }
  await inFlight;

  // ---- the inbox user has read most of its rooms up to near their end, and some not at all
  let k = 0;
  for (const r of inboxSet) {
    if (last[r]! > 0 && k++ % 10 !== 0) await store.markRead(roomId(r), INBOX_USER, Math.max(0, last[r]! - Math.floor(rand() * 20)));
  }

  return {
    last,
    memberStart,
    memberOf,
    memberRows,
    inboxUser: INBOX_USER,
    firstTs: tsOf(0),
    lastTs: tsOf(Math.max(0, N - 1)),
    terms: TERMS.map((t, j) => ({ label: t.label, query: t.ranks.map((x) => words[x]).join(' '), messages: termCounts[j]! })),
  };
}
