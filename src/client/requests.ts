// Requests and their replies: ids, the queue of requests made while offline, timeouts, and
// what happens to requests in flight when the connection is lost.
//
// A write that carries an idempotency key (send, edit, delete, react) always ends in a
// definite state: acknowledged or refused by the server. It never fails with `timeout` — a
// slow reply may still come, and the message would then be stored although reported failed —
// but is sent again with the same key, after a growing wait, until the server answers (an
// `unavailable` that says its outcome is unknown is no answer either); the
// server stores it once whichever copy arrives first. One refused `unavailable` (nothing
// stored, a transient state: a dead node's rooms moving, the database away) is sent again the
// same way for `retryUnavailableMs` after it first went out, then fails with the refusal.
// (`rate_limited` is not sent again: a refused write sent again after the bucket refilled is
// stored after the room's later writes that were already on their way and found a token.)
// Only `close()` ends it otherwise (with `closed`), and the caller holds the key to send it
// again later. Until such a write is answered, the keyed writes of its room not yet sent wait
// behind it, so they are stored after it (those already sent when it was refused may be
// stored before it).
//
// A read (history, search, the rooms…) refused `unavailable` (the database or the room's node
// away for a moment, the search index catching up) or `rate_limited` with a `retryAfterMs` is
// asked again the same way for `retryUnavailableMs`, after the wait the server named when it
// named one, then fails with the refusal: an app shows "loading" through a failover, not an
// error.
import type { CommandName } from '../protocol/schema.js';
import { isOutcomeUnknown } from '../protocol/outcome.js';
import { READ_COMMANDS } from '../protocol/reads.js';
import { backoff } from './backoff.js';
import { ClientError } from './errors.js';

/** Commands that are safe to send again after a reconnect (reads, or writes with a key). */
const RETRY = new Set<CommandName>([
  'send',
  'edit',
  'delete',
  'react',
  'read',
  'history',
  'message',
  'search',
  'rooms',
  'room',
  'members',
  'presence',
  'inbox',
  'direct',
  'ping',
  'resume',
  'notifications',
  'settings',
  'pin',
  'unpin',
  'pins',
  'versions',
]);
/** Writes that carry an idempotency key. */
export const KEYED: ReadonlySet<CommandName> = new Set<CommandName>(['send', 'edit', 'delete', 'react']);
/** Longest wait before a refused read is asked again. */
const READ_RETRY_MAX_MS = 2000;

export function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

interface Pending {
  cmd: CommandName;
  frame: Record<string, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: ClientError) => void;
  timer?: ReturnType<typeof setTimeout>;
  /** Ids it was sent under on the current connection (a keyed write sent again has several). */
  ids: number[];
  /** Times it was sent on the current connection without a reply. */
  attempts: number;
  /** When it was started, among this client's requests. */
  order: number;
  /** When it was first written (ms since the epoch). */
  firstSent?: number;
}

/** How the requests reach the server. */
export interface Link {
  /** Whether a request may be written now (online and nothing queued before it). */
  ready(): boolean;
  write(text: string): void;
}

export interface ReplyFrame {
  id?: number;
  ok?: boolean;
  data?: unknown;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

export class Requests {
  private nextId = 1;
  private nextOrder = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Pending[] = [];
  /** Requests waiting to be sent again after a refusal for now (see retryIn), or an answer that left a write's fate unknown. */
  private readonly resting = new Set<Pending>();
  /** Keyed writes sent again after such an answer (resting, or sent) and not answered since: their rooms' later writes wait. */
  private readonly unsure = new Set<Pending>();
  /** Ids written on this connection whose reply has not come, timed-out ones included. */
  private readonly outstanding = new Set<number>();
  /**
   * Requests the server lets one connection have awaiting a reply (from its auth reply); more
   * wait in the queue, since the server closes a connection that sends beyond it.
   */
  private maxInFlight = Infinity;

  constructor(
    private readonly link: Link,
    private readonly timeoutMs: number,
    private readonly retryUnavailableMs = 0,
  ) {}

  /** Starts a request: written now when possible, else queued until `flush`. */
  start(cmd: CommandName, frame: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const p: Pending = { cmd, frame, resolve, reject, ids: [], attempts: 0, order: this.nextOrder++ };
      if (this.link.ready() && this.queue.length === 0 && this.outstanding.size < this.maxInFlight && !this.behindUnsure(p)) this.transmit(p);
      else if (cmd === 'typing')
        resolve({}); // ephemeral: not worth queueing
      else {
        this.queue.push(p);
        // Queued behind writes that wait for an unanswered one: the others may go now.
        if (this.unsure.size > 0) this.flush();
      }
    });
  }

  /** Writes a request at once, ahead of the queue (the `auth` of a new connection). */
  now(cmd: CommandName, frame: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => this.transmit({ cmd, frame, resolve, reject, ids: [], attempts: 0, order: this.nextOrder++ }));
  }

  /** The server's cap on requests awaiting a reply per connection (none: no cap). */
  limit(maxInFlight: unknown): void {
    this.maxInFlight = typeof maxInFlight === 'number' && maxInFlight > 0 ? maxInFlight : Infinity;
  }

  /** Settles the request a reply frame answers; false when it answers none. */
  reply(f: ReplyFrame): boolean {
    if (typeof f.id !== 'number') return false;
    // A slot is free: the queue moves on once the write this answers is settled or resting, so
    // none of its room's later writes goes out ahead of it.
    const freed = this.outstanding.delete(f.id);
    const p = this.pending.get(f.id);
    if (!p) {
      if (freed) this.flush();
      return false;
    }
    this.settled(p);
    const wait = f.ok ? null : this.retryIn(p, f.error);
    if (wait !== null) {
      this.again(p, wait);
      if (freed) this.flush();
      return true;
    }
    if (f.ok) p.resolve(f.data);
    else p.reject(new ClientError(f.error?.code ?? 'internal', f.error?.message ?? 'error', f.error?.details));
    // The writes that waited behind it may go.
    const released = this.unsure.delete(p);
    if (freed || released) this.flush();
    return true;
  }

  /**
   * When a refused request is to be sent again: a keyed write whose fate the server could not
   * tell, or one refused `unavailable` within `retryUnavailableMs`; a read refused `unavailable`,
   * or `rate_limited` with the wait named, within the same time. Undefined: after a growing
   * wait; null: not again.
   */
  private retryIn(p: Pending, error: ReplyFrame['error']): number | undefined | null {
    if (!error) return null;
    const recent = Date.now() - (p.firstSent ?? 0) < this.retryUnavailableMs;
    if (KEYED.has(p.cmd)) return error.code === 'unavailable' && (isOutcomeUnknown(error.details) || recent) ? undefined : null;
    if (!READ_COMMANDS.has(p.cmd)) return null;
    // A read is asked again within the window, the last time at its end, not after it.
    const left = (p.firstSent ?? 0) + this.retryUnavailableMs - Date.now();
    if (left <= 0) return null;
    const named = error.details?.retryAfterMs;
    const after = typeof named === 'number' && named >= 0 ? named : undefined;
    if (error.code === 'unavailable') return Math.min(after ?? backoff(p.attempts, 250, READ_RETRY_MAX_MS), READ_RETRY_MAX_MS, left);
    return error.code === 'rate_limited' && after !== undefined ? Math.min(after, READ_RETRY_MAX_MS, left) : null;
  }

  /**
   * A request refused for now, or a keyed write the server could not tell the fate of (handed
   * to another node that did not answer): sent again (a write with its key) after `wait`, or
   * after a growing wait, as one that got no reply. Only a keyed write holds back its room's
   * later writes meanwhile.
   */
  private again(p: Pending, wait?: number): void {
    this.resting.add(p);
    if (KEYED.has(p.cmd)) this.unsure.add(p);
    setTimeout(
      () => {
        if (!this.resting.delete(p)) return;
        // Back in its place: before the requests started after it.
        const at = this.queue.findIndex((q) => q.order > p.order);
        this.queue.splice(at === -1 ? this.queue.length : at, 0, p);
        this.flush();
      },
      wait ?? backoff(p.attempts, Math.min(1000, this.timeoutMs), this.timeoutMs),
    );
  }

  /** Writes the queued requests, in order, while the link is ready (but none behind an unanswered write of its room). */
  flush(): void {
    if (this.unsure.size === 0) {
      while (this.queue.length > 0 && this.link.ready() && this.outstanding.size < this.maxInFlight) this.transmit(this.queue.shift()!);
      return;
    }
    for (let i = 0; i < this.queue.length && this.link.ready() && this.outstanding.size < this.maxInFlight;) {
      const p = this.queue[i]!;
      if (this.behindUnsure(p)) i++;
      else {
        this.queue.splice(i, 1);
        this.transmit(p);
      }
    }
  }

  /** Whether `p` is a keyed write of a room with an earlier keyed write whose outcome is unknown. */
  private behindUnsure(p: Pending): boolean {
    if (this.unsure.size === 0 || !KEYED.has(p.cmd)) return false;
    for (const q of this.unsure) if (q.order < p.order && q.frame.room === p.frame.room) return true;
    return false;
  }

  /** The connection is gone: requests in flight that are safe to repeat wait for the next one, the others fail. */
  connectionLost(): void {
    this.outstanding.clear();
    const inflight = [...new Set(this.pending.values())].filter((p) => p.cmd !== 'auth');
    for (const p of new Set(this.pending.values())) if (p.cmd === 'auth') this.settled(p);
    const lost = new ClientError('unavailable', 'connection lost before the reply');
    const retry: Pending[] = [];
    for (const p of inflight) {
      this.settled(p);
      if (RETRY.has(p.cmd)) {
        p.attempts = 0;
        retry.push(p);
      } else p.reject(lost);
    }
    this.queue.unshift(...retry);
  }

  /** Fails every request, in flight or queued. */
  failAll(err: ClientError): void {
    for (const p of [...new Set(this.pending.values()), ...this.queue, ...this.resting]) {
      this.settled(p);
      p.reject(err);
    }
    this.queue.length = 0;
    this.resting.clear();
    this.unsure.clear();
  }

  private settled(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    for (const id of p.ids) this.pending.delete(id);
    p.ids = [];
  }

  private transmit(p: Pending): void {
    const id = this.nextId++;
    p.frame.id = id;
    p.ids.push(id);
    p.attempts++;
    p.firstSent ??= Date.now();
    this.pending.set(id, p);
    if (p.cmd !== 'auth') this.outstanding.add(id);
    this.arm(p);
    this.link.write(JSON.stringify(p.frame));
  }

  /**
   * Waits for the reply. A keyed write that gets none is sent again with its key (the earlier
   * copies' replies still count), each wait longer than the last; anything else fails with
   * `timeout`.
   */
  private arm(p: Pending): void {
    const wait = p.attempts <= 1 ? this.timeoutMs : backoff(p.attempts - 1, 2 * this.timeoutMs, 8 * this.timeoutMs);
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (p.ids.length === 0) return;
      if (KEYED.has(p.cmd)) {
        if (this.link.ready() && this.outstanding.size < this.maxInFlight) this.transmit(p);
        else this.arm(p);
        return;
      }
      this.settled(p);
      p.reject(new ClientError('timeout', `no reply to "${p.cmd}" within ${this.timeoutMs} ms`));
    }, wait);
  }
}
