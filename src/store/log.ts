// The MessageLog port: what readers see of each room's messages, and each member's read
// marker. Messages are appended only by the room log (writer.ts). Implementations:
// store/sqlite, store/postgres; behaviour suite: test/conformance/log.ts.
//
// Contract
// - Within a room, seqs start at 1 and have no gap (a read of the main timeline or of one
//   thread skips the seqs of the others, so its pages are not consecutive): what a room keeps is one range of seqs
//   ending at its last, because retention cuts a prefix, so a reader that finds `first`
//   above what it asked for knows the whole gap.
// - Reads see every commit whose promise has resolved.
// - With a `viewer`, messages hidden for it (a direct message from a user it blocks) come back
//   as `hidden` placeholders without content.
import type { InboxEntry, Message } from '../protocol/schema.js';

export interface HistoryQuery {
  before?: number;
  after?: number;
  limit: number;
  /** Only the room's main timeline: without thread replies kept to their thread. */
  main?: boolean;
  /** Only this thread: the messages whose root is this seq (the root itself is not one of them). */
  thread?: number;
}

export interface Bounds {
  /** Lowest seq still stored (last + 1 when nothing is stored). */
  first: number;
  last: number;
}

export interface MessageLog {
  /** Messages in seq order: after `after`, or the latest ones before `before` (or the end). */
  history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]>;
  getMessage(room: string, seq: number, viewer?: string): Promise<Message | null>;
  bounds(room: string): Promise<Bounds>;
  /**
   * Moves the member's read marker forward (never back, never past the room's last seq) and
   * returns it; `forbidden` for a user who is not a member. The marker is the member's own,
   * so any node writes it, without the room log.
   */
  markRead(room: string, user: string, seq: number): Promise<number>;
  /**
   * The user's rooms with the last text message and unread count, most recent first. The count
   * looks at no more than the first UNREAD_SCAN messages after the read marker (an index range
   * of the room's seqs); `unreadMore` says whether any message follows them.
   */
  inbox(user: string): Promise<InboxEntry[]>;
}
