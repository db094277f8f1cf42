// The hub: which local connections follow which room, and delivery to them. Each bus message
// is turned into bytes once and the same buffer is written to every local follower. It keeps
// the per-connection "exactly once, in seq order" promise: a follower that sees a seq gap (or
// resumes from an older seq) catches up from the store before anything newer reaches it.
import type { Bus, BusMessage, Control } from '../bus/bus.js';
import { ALL_TOPIC, roomTopic, userTopic } from '../bus/bus.js';
import type { Bounds, Store } from '../store/store.js';
import { isDirectRoom } from '../protocol/schema.js';
import type { Message } from '../protocol/schema.js';
import { encodeEvent } from '../protocol/frames.js';
import { ParleyError } from '../errors.js';
import { backoff } from '../client/backoff.js';

/**
 * One event on its way to many connections: the payload is serialised once, and each
 * transport may cache its wire encoding on the object (`wire`), so framing happens once too.
 */
export interface SharedFrame {
  readonly payload: Buffer;
  wire?: Buffer;
}

/** A client connection as the hub sees it; transports adapt their sockets to this. */
export interface Conn {
  readonly id: string;
  readonly user: string;
  /** The account session that authenticated the connection, if any. */
  readonly session?: string | undefined;
  send(frame: SharedFrame): void;
  /** Bytes queued but not yet written to the network. */
  bufferedAmount(): number;
  close(code: number, reason: string): void;
  /**
   * A connection that carries several clients of its user, each authenticated on its own (an
   * MQTT inbox), closes only those whose account session `match`es: a close meant for one
   * session (its sign-out) reaches that session's clients and no other.
   */
  closeSessions?(match: (session: string | undefined) => boolean, code: number, reason: string): void;
}

interface Held {
  seq: number;
  data: SharedFrame;
}

interface Follow {
  conn: Conn;
  room: string;
  /** Highest seq delivered to this connection. */
  last: number;
  /** Live messages held back while catching up from the store; null when live. */
  held: Held[] | null;
  /** Payload bytes in `held`, counted in its connection's total while the follow lasts. */
  heldBytes: number;
  /** The follow ends once `last` reaches this seq (the member's leave), then `ended` runs. */
  until?: number;
  /** Set while the follow waits for a gap to fill from the bus (see GAP_WAIT_MS). */
  gapTimer?: ReturnType<typeof setTimeout>;
  ended?: () => void;
}

export interface HubOptions {
  /** Unsent bytes after which a connection is dropped as a slow consumer. */
  slowConsumerBytes: number;
  /** Messages read from the store per catch-up page. */
  pageSize?: number;
  onSlowConsumer?: (conn: Conn) => void;
  /** Counts message frames written to connections (metrics). */
  onDelivered?: (n: number) => void;
}

export const CLOSE_SLOW_CONSUMER = 4008;

/** Whether a close instruction is meant for a connection of this account session (see Control). */
function closes(c: Extract<Control, { op: 'close' }>, session: string | undefined): boolean {
  if (c.session !== undefined) return session === c.session;
  if (c.keep !== undefined) return session !== c.keep;
  return true;
}
/**
 * Live messages held for one follower while it replays from the store, at most. Their bytes
 * count with the connection's unsent ones against the slow-consumer limit as well.
 */
const MAX_HELD = 50_000;

/**
 * How long a follower that saw a message ahead of the next one waits for the missing ones on
 * the bus before reading them from the store. In a cluster the gap is nearly always a reorder,
 * not a loss: a node delivers a send it forwarded as soon as the room's owner answers, and the
 * bus's copies of the room's earlier messages may come a moment after it.
 */
const GAP_WAIT_MS = 50;

/** Catch-up reads tried again while the store answers `unavailable`, before the follower is closed. */
const READ_ATTEMPTS = 4;

/**
 * A store read (a catch-up page, the rooms of a presence change), tried again (after 100, 200, 400 ms) while the store is `unavailable`: a
 * node woken after a freeze finds its database sessions ended by the node that took its
 * rooms, and the pool needs a moment to open new ones. Closing every follower of the room
 * on the first failed read would send them all to reconnect for a blip.
 */
export async function whileUnavailable<T>(read: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await read();
    } catch (err) {
      if (n >= READ_ATTEMPTS || !(err instanceof ParleyError) || err.code !== 'unavailable') throw err;
      await new Promise((r) =>
        setTimeout(
          r,
          backoff(n, 100, 400, () => 1),
        ),
      );
    }
  }
}

export class Hub {
  private readonly rooms = new Map<string, Map<Conn, Follow>>();
  private readonly users = new Map<string, Set<Conn>>();
  private readonly follows = new Map<Conn, Map<string, Follow>>();
  /** Connections being closed as slow consumers: nothing more is written to them. */
  private readonly dropping = new WeakSet<Conn>();
  private readonly pageSize: number;
  /**
   * Store reads in flight, shared: followers of a room that catch up from the same seq (a hot
   * room after a bus reconnect) wait for one read instead of each making its own.
   */
  private readonly reading = new Map<string, Promise<Message[]>>();
  private readonly bounding = new Map<string, Promise<Bounds>>();
  /**
   * Bytes of live messages held for each connection's follows that replay from the store. They
   * are owed to the connection as much as its unsent bytes are: a reader that stalls during a
   * replay is dropped once both together pass the slow-consumer limit.
   */
  private readonly heldBytes = new Map<Conn, number>();

  constructor(
    private readonly bus: Bus,
    private readonly store: Store,
    private readonly opts: HubOptions,
  ) {
    this.pageSize = opts.pageSize ?? 256;
    bus.onMessage((topic, msg) => this.onBus(topic, msg));
    bus.onResync((topics) => this.resync(topics));
    void bus.subscribe(ALL_TOPIC);
  }

  /**
   * The bus may have lost messages of these topics (all when null): each followed room among
   * them is compared with the store and followers behind it catch up; each local user among
   * them has its rooms compared with its memberships, so missed follow/unfollow instructions
   * are applied.
   */
  resync(topics: readonly string[] | null = null): void {
    const rooms = topics === null ? [...this.rooms.keys()] : topics.filter((t) => t.startsWith('r:')).map((t) => t.slice(2));
    const users = topics === null ? [...this.users.keys()] : topics.filter((t) => t.startsWith('u:')).map((t) => t.slice(2));
    for (const room of rooms) if (this.rooms.has(room)) void this.recheckRoom(room);
    for (const user of users) if (this.users.has(user)) void this.recheckUser(user);
  }

  /** The room's bounds, one store read for every caller while it is in flight. */
  private bounds(room: string): Promise<Bounds> {
    let p = this.bounding.get(room);
    if (!p) {
      p = whileUnavailable(() => this.store.bounds(room)).finally(() => this.bounding.delete(room));
      this.bounding.set(room, p);
    }
    return p;
  }

  /**
   * A page of the room after `after`, shared by every follower reading the same page. Only a
   * direct room can hold messages hidden for one of its two members, so only there is the
   * page read for each member.
   */
  private page(room: string, after: number, user: string): Promise<Message[]> {
    const viewer = isDirectRoom(room) ? user : undefined;
    const key = `${room}\n${after}\n${viewer ?? ''}`;
    let p = this.reading.get(key);
    if (!p) {
      p = whileUnavailable(() => this.store.history(room, { after, limit: this.pageSize }, viewer)).finally(() => this.reading.delete(key));
      this.reading.set(key, p);
    }
    return p;
  }

  /** Followers of the room that are behind the store's last seq replay the difference. */
  private async recheckRoom(room: string): Promise<void> {
    let last: number;
    try {
      last = (await this.bounds(room)).last;
    } catch {
      return; /* store down: the next message shows the gap */
    }
    const subs = this.rooms.get(room);
    if (!subs) return;
    for (const f of subs.values()) {
      if (f.held === null && f.last < last) {
        f.held = [];
        void this.catchUp(f);
      }
    }
  }

  private async recheckUser(user: string): Promise<void> {
    let mine: Awaited<ReturnType<Store['roomsOf']>>;
    try {
      mine = await this.store.roomsOf(user);
    } catch {
      return;
    }
    const rooms = new Map(mine.map((r) => [r.room.id, r.member.joinSeq]));
    for (const conn of this.users.get(user) ?? []) {
      const followed = this.follows.get(conn);
      if (!followed) continue;
      for (const room of [...followed.keys()]) if (!rooms.has(room)) this.unfollow(conn, room);
      for (const [room, joinSeq] of rooms) if (!followed.has(room)) this.follow(conn, room, joinSeq - 1, joinSeq);
    }
  }

  get connectionCount(): number {
    return this.follows.size;
  }

  /** Registers an authenticated connection and subscribes to its user's topic. */
  async add(conn: Conn): Promise<void> {
    this.follows.set(conn, new Map());
    let set = this.users.get(conn.user);
    if (!set) {
      this.users.set(conn.user, (set = new Set()));
      set.add(conn);
      await this.bus.subscribe(userTopic(conn.user));
    } else set.add(conn);
  }

  /** Forgets a connection and everything it followed. */
  remove(conn: Conn): void {
    const mine = this.follows.get(conn);
    if (!mine) return;
    for (const room of [...mine.keys()]) this.unfollow(conn, room);
    this.follows.delete(conn);
    const set = this.users.get(conn.user);
    if (set) {
      set.delete(conn);
      if (set.size === 0) {
        this.users.delete(conn.user);
        void this.bus.unsubscribe(userTopic(conn.user));
      }
    }
  }

  isFollowing(conn: Conn, room: string): boolean {
    return this.follows.get(conn)?.has(room) ?? false;
  }

  localConnections(user: string): Conn[] {
    return [...(this.users.get(user) ?? [])];
  }

  /**
   * Delivers the room to `conn` from seq `after + 1` on. `lastKnown` is the room's last seq as
   * read by the caller: when it is not ahead of `after` the follow goes live at once,
   * otherwise the gap is replayed from the store first. Re-following resets the position.
   */
  follow(conn: Conn, room: string, after: number, lastKnown: number): void {
    const mine = this.follows.get(conn);
    if (!mine) return;
    let subs = this.rooms.get(room);
    if (!subs) {
      this.rooms.set(room, (subs = new Map<Conn, Follow>()));
      // A message published before the subscription took effect would be missed until the
      // next one: once subscribed, compare with the store.
      void this.bus.subscribe(roomTopic(room)).then(() => this.recheckRoom(room));
    }
    const before = mine.get(room);
    if (before) this.release(before);
    const f: Follow = { conn, room, last: after, held: null, heldBytes: 0 };
    subs.set(conn, f);
    mine.set(room, f);
    if (lastKnown > after) {
      f.held = [];
      void this.catchUp(f);
    }
  }

  unfollow(conn: Conn, room: string): void {
    const mine = this.follows.get(conn);
    const f = mine?.get(room);
    if (!mine || !f) return;
    mine.delete(room);
    this.release(f);
    const subs = this.rooms.get(room);
    if (!subs) return;
    subs.delete(conn);
    if (subs.size === 0) {
      this.rooms.delete(room);
      void this.bus.unsubscribe(roomTopic(room));
    }
  }

  /**
   * Stops delivering the room to `conn` once it has been delivered everything up to `seq` (a
   * removed member's own leave message), then runs `then`. A connection already past `seq`, or
   * not following the room, stops at once; one that is not there yet reads the rest from the
   * store rather than wait for the bus, which may bring it late or never. Nothing after `seq`
   * is delivered.
   */
  unfollowAfter(conn: Conn, room: string, seq: number, then: () => void): void {
    const f = this.follows.get(conn)?.get(room);
    if (!f || f.last >= seq) {
      this.unfollow(conn, room);
      then();
      return;
    }
    const before = f.ended;
    f.until = Math.min(seq, f.until ?? seq);
    f.ended = before
      ? () => {
          before();
          then();
        }
      : then;
    if (f.held === null) {
      f.held = [];
      void this.catchUp(f);
    }
  }

  /** Ends a follow that reached its `until`; true when it did. */
  private ending(f: Follow): boolean {
    if (f.until === undefined || f.last < f.until) return false;
    this.unfollow(f.conn, f.room);
    const then = f.ended;
    f.ended = undefined;
    then?.();
    return true;
  }

  private write(conn: Conn, data: SharedFrame): boolean {
    if (this.dropping.has(conn)) return false;
    if (conn.bufferedAmount() > this.opts.slowConsumerBytes) {
      this.drop(conn);
      return false;
    }
    conn.send(data);
    return true;
  }

  private onBus(topic: string, msg: BusMessage): void {
    const data: SharedFrame = { payload: Buffer.from(msg.frame) };
    if (topic.startsWith('r:')) {
      if (msg.control?.op === 'recheck') void this.recheckRoom(topic.slice(2));
      else this.deliverRoom(topic.slice(2), msg.seq, data, msg.hiddenFor, msg.alt, msg.except);
    } else if (topic.startsWith('u:')) this.deliverUser(topic.slice(2), msg.control, data);
    else if (topic === ALL_TOPIC) for (const conn of this.follows.keys()) this.write(conn, data);
  }

  private drop(conn: Conn): void {
    if (this.dropping.has(conn)) return;
    this.dropping.add(conn);
    this.opts.onSlowConsumer?.(conn);
    conn.close(CLOSE_SLOW_CONSUMER, 'slow consumer: resume from your last seq');
  }

  private deliverRoom(room: string, seq: number | undefined, shared: SharedFrame, hiddenFor?: string, alt?: string, except?: string[]): void {
    const subs = this.rooms.get(room);
    if (!subs) return;
    const altData: SharedFrame | null = hiddenFor !== undefined && alt !== undefined ? { payload: Buffer.from(alt) } : null;
    let delivered = 0;
    for (const f of subs.values()) {
      const data = altData && f.conn.user === hiddenFor ? altData : shared;
      if (seq === undefined) {
        if (!except?.includes(f.conn.user)) this.write(f.conn, data);
      } else if (f.held) {
        f.held.push({ seq, data });
        f.heldBytes += data.payload.length;
        const held = this.countHeld(f.conn, data.payload.length);
        // Live traffic outrunning a replay (or a reader stalled in one) would grow without
        // bound: past the limits, drop; the client resumes from its last seq.
        if (f.held.length > MAX_HELD || held + f.conn.bufferedAmount() > this.opts.slowConsumerBytes) this.drop(f.conn);
        else if (f.gapTimer) this.fillGap(f);
      } else if (seq === f.last + 1) {
        f.last = seq;
        if (this.write(f.conn, data)) delivered++;
        this.ending(f);
      } else if (seq > f.last + 1) {
        // Held until the messages before it come: from the bus within GAP_WAIT_MS (a reorder),
        // else from the store (lost on the way: a bus reconnect).
        this.hold(f, [{ seq, data }]);
        f.gapTimer = setTimeout(() => {
          f.gapTimer = undefined;
          if (this.alive(f) && f.held) void this.catchUp(f);
        }, GAP_WAIT_MS);
        f.gapTimer.unref?.();
      }
      // seq <= last: already delivered; dropped so nothing arrives twice.
    }
    if (delivered > 0) this.opts.onDelivered?.(delivered);
  }

  private deliverUser(user: string, control: Control | undefined, data: SharedFrame): void {
    const conns = this.users.get(user);
    if (!conns) return;
    for (const conn of [...conns]) {
      if (control?.op === 'close' && conn.closeSessions) {
        conn.closeSessions((session) => closes(control, session), control.code, control.reason);
        continue;
      }
      if (control?.op === 'close' && !closes(control, conn.session)) continue;
      if (control?.op === 'follow') this.follow(conn, control.room, control.after, control.after + 1);
      else if (control?.op === 'unfollow' && control.seq !== undefined) {
        // The notice of the removal follows the leave message.
        this.unfollowAfter(conn, control.room, control.seq, () => this.write(conn, data));
        continue;
      } else if (control?.op === 'unfollow') this.unfollow(conn, control.room);
      this.write(conn, data);
      if (control?.op === 'close') conn.close(control.code, control.reason);
    }
  }

  /**
   * A follow waiting for a gap delivers the held messages that now continue its sequence; once
   * none is left it is live again without reading the store. A follow that is to end at a
   * member's leave leaves the rest to the catch-up its timer starts.
   */
  private fillGap(f: Follow): void {
    const held = f.held!;
    const i = this.releaseHeld(f, held);
    if (i === null) return;
    if (i === held.length && f.until === undefined) {
      clearTimeout(f.gapTimer);
      f.gapTimer = undefined;
      this.hold(f, null);
    } else this.hold(f, held.slice(i));
  }

  /**
   * Writes, in seq order, the held messages that continue `f`'s sequence (skipping those it
   * already has). Returns the index in the sorted `held` of the first one left, or null once
   * the follow ended (its member's leave delivered) or its connection is being dropped.
   */
  private releaseHeld(f: Follow, held: Held[]): number | null {
    held.sort((a, b) => a.seq - b.seq);
    let i = 0;
    while (i < held.length && held[i]!.seq <= f.last) i++;
    let delivered = 0;
    let stopped = false;
    for (; i < held.length && held[i]!.seq === f.last + 1; i++) {
      f.last = held[i]!.seq;
      stopped = !this.write(f.conn, held[i]!.data);
      if (stopped) break;
      delivered++;
      stopped = this.ending(f);
      if (stopped) break;
    }
    if (delivered > 0) this.opts.onDelivered?.(delivered);
    return stopped ? null : i;
  }

  /** Sets what `f` holds back (null: it is live), keeping its connection's total. */
  private hold(f: Follow, held: Held[] | null): void {
    let bytes = 0;
    if (held && this.alive(f)) for (const h of held) bytes += h.data.payload.length;
    this.countHeld(f.conn, bytes - f.heldBytes);
    f.held = held;
    f.heldBytes = bytes;
  }

  /** Takes a follow that ends out of its connection's held total. */
  private release(f: Follow): void {
    this.countHeld(f.conn, -f.heldBytes);
    f.heldBytes = 0;
  }

  /** Adds to the connection's held bytes and returns the new total. */
  private countHeld(conn: Conn, delta: number): number {
    if (delta === 0) return this.heldBytes.get(conn) ?? 0;
    const total = (this.heldBytes.get(conn) ?? 0) + delta;
    if (total > 0) this.heldBytes.set(conn, total);
    else this.heldBytes.delete(conn);
    return total;
  }

  private alive(f: Follow): boolean {
    return this.follows.get(f.conn)?.get(f.room) === f;
  }

  /** Replays from the store after f.last, then releases held live messages in order. */
  private async catchUp(f: Follow): Promise<void> {
    try {
      let first = true;
      for (;;) {
        if (first) {
          first = false;
          const b = await this.bounds(f.room);
          if (!this.alive(f)) return;
          if (b.first > f.last + 1) {
            this.write(f.conn, { payload: encodeEvent('gap', { room: f.room, from: f.last + 1, to: b.first - 1 }) });
            f.last = b.first - 1;
          }
        }
        const page = await this.page(f.room, f.last, f.conn.user);
        if (!this.alive(f)) return;
        for (const m of page) {
          if (m.seq <= f.last) continue;
          if (f.until !== undefined && m.seq > f.until) {
            // Past the member's leave (which retention removed): nothing more is its to see.
            f.last = f.until;
            this.ending(f);
            return;
          }
          // Replay no faster than the socket drains, so a long gap never trips the slow-consumer limit.
          if (f.conn.bufferedAmount() > this.opts.slowConsumerBytes / 2) {
            await this.drained(f.conn);
            if (!this.alive(f)) return;
          }
          f.last = m.seq;
          if (!this.write(f.conn, { payload: encodeEvent('message', m) })) return;
          this.opts.onDelivered?.(1);
          if (this.ending(f)) return;
        }
        if (page.length === this.pageSize) continue;
        // Store exhausted: release held messages that continue the sequence.
        const held = f.held!;
        const i = this.releaseHeld(f, held);
        if (i === null) return;
        if (i === held.length) {
          if (f.until !== undefined) {
            // The leave is committed, so the store has it; a store that has nothing more
            // (retention removed it) ends the follow rather than wait.
            if (page.length === 0) {
              f.last = f.until;
              this.ending(f);
              return;
            }
            this.hold(f, []);
            continue;
          }
          this.hold(f, null);
          return;
        }
        // Still a hole before the next held message: it is committed, read again.
        this.hold(f, held.slice(i));
      }
    } catch {
      if (this.alive(f)) f.conn.close(1011, 'catch-up failed: resume from your last seq');
    }
  }

  /** Waits until the connection's send buffer is below a quarter of the slow-consumer limit. */
  private async drained(conn: Conn): Promise<void> {
    while (conn.bufferedAmount() > this.opts.slowConsumerBytes / 4 && this.follows.has(conn)) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
