// Where the client is in each of its rooms: the last seq delivered per room (what it resumes
// from after a reconnect), the rooms it belongs to, and the rules that keep delivery to the
// application exactly once and in order (duplicates dropped, a gap asked for again).
import type { AuthResult, EventMap, Message, Room } from '../protocol/schema.js';

/** What to do with a message event. */
export type MessageVerdict =
  | { kind: 'deliver' }
  /** Seen already: drop it. */
  | { kind: 'duplicate' }
  /** Messages are missing before it: ask the server to resume the room after `after`. */
  | { kind: 'gap'; after: number };

export class Cursor {
  /** Last seq delivered per room: what the client resumes from. */
  readonly lastSeq = new Map<string, number>();
  /** Rooms the user belongs to, as last reported. */
  readonly rooms = new Map<string, Room>();
  private everReady = false;

  constructor(resume: Record<string, number> = {}) {
    for (const [room, seq] of Object.entries(resume)) this.lastSeq.set(room, seq);
  }

  /** The `resume` argument of an `auth`. */
  resumeArgs(): Record<string, number> {
    // fromEntries defines own properties, so a room named "__proto__" is sent like any other.
    return Object.fromEntries(this.lastSeq);
  }

  /**
   * Takes in an auth reply. Returns the rooms joined while the client was offline, each with
   * the seq to replay after (from its join message), and the rooms the server refused.
   */
  ready(r: AuthResult): { joinedOffline: Map<string, number>; denied: string[] } {
    this.rooms.clear();
    for (const room of r.rooms) this.rooms.set(room.id, room);
    // Replayed messages may arrive before this reply and have moved lastSeq on already; only
    // rooms new to this client take a starting point. On a reconnect, a room joined while
    // offline is replayed from its join message, so nothing sent meanwhile is missed; on the
    // first connect the client starts from now and reads older messages with `history`.
    const joinedOffline = new Map<string, number>();
    for (const [room, seq] of Object.entries(r.resumed)) {
      if (this.lastSeq.has(room)) continue;
      // Room ids are keys here: read own properties only ("constructor" is a room id too).
      const joinSeq = Object.hasOwn(r.joined, room) ? r.joined[room] : undefined;
      if (this.everReady && joinSeq !== undefined && joinSeq <= seq) {
        this.lastSeq.set(room, joinSeq - 1);
        joinedOffline.set(room, joinSeq - 1);
      } else this.lastSeq.set(room, seq);
    }
    this.everReady = true;
    for (const room of r.denied) this.lastSeq.delete(room);
    return { joinedOffline, denied: r.denied };
  }

  message(m: Message): MessageVerdict {
    const last = this.lastSeq.get(m.room) ?? 0;
    if (m.seq <= last) return { kind: 'duplicate' };
    // The server promises no gaps; if one shows up anyway, ask for the missing part.
    if (m.seq > last + 1 && this.lastSeq.has(m.room)) return { kind: 'gap', after: last };
    this.lastSeq.set(m.room, m.seq);
    const room = this.rooms.get(m.room);
    if (room) room.lastSeq = m.seq;
    return { kind: 'deliver' };
  }

  /** A membership change; resolves true when the room is new and its details must be fetched. */
  membership(r: EventMap['room']): boolean {
    if (r.member === null) {
      this.rooms.delete(r.room);
      this.lastSeq.delete(r.room);
      return false;
    }
    return !this.rooms.has(r.room);
  }

  /** Retention removed messages the client had not seen: it continues after them. */
  gap(g: EventMap['gap']): void {
    this.lastSeq.set(g.room, g.to);
  }
}
