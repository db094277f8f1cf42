// The text every benchmark message carries, and the per-connection check of what arrives.
// The payload names its room, its sender stream and a counter, so loss, duplication and
// reordering are judged from the message itself whatever ids a target assigns.

/** Monotonic microseconds, the same clock in every worker thread of the process. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

const MARK = 'b|';

export function encodePayload(room: string, sid: string, n: number, sentUs: number, size: number): string {
  const head = `${MARK}${room}|${sid}|${n}|${sentUs}|`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

export interface Payload {
  room: string;
  sid: string;
  n: number;
  sentUs: number;
}

export function decodePayload(text: string): Payload | null {
  if (!text.startsWith(MARK)) return null;
  const p = text.split('|', 5);
  if (p.length < 5) return null;
  return { room: p[1]!, sid: p[2]!, n: Number(p[3]), sentUs: Number(p[4]) };
}

/** One sender stream as one receiver sees it. */
export interface StreamState {
  next: number;
  unique: number;
  /** Counters skipped over; one arriving later is out of order, not a duplicate. */
  missing: Set<number> | null;
}

export const MISSING_CAP = 100_000;

export type Verdict = 'ok' | 'dup' | 'ooo';

/** Records counter `n` of a stream; tells whether it was new in order, a duplicate, or late. */
export function accept(s: StreamState, n: number): Verdict {
  if (n === s.next) {
    s.next++;
    s.unique++;
    return 'ok';
  }
  if (n > s.next) {
    const m = (s.missing ??= new Set());
    for (let k = s.next; k < n && m.size < MISSING_CAP; k++) m.add(k);
    s.next = n + 1;
    s.unique++;
    return 'ok';
  }
  if (s.missing?.delete(n)) {
    s.unique++;
    return 'ooo';
  }
  return 'dup';
}
