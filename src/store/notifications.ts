// The notifications port: per-member notification levels, who may mention a whole room, and
// unread mentions. The mentions themselves are kept with each message (Message.mentions,
// stored by the Store's append); this port only reads them. Implementations:
// store/sqlite/notifications.ts and store/postgres/notifications.ts, on the Store's database.
//
// Contract
// - Each method is one atomic write or read; a write's promise settles after it is durable.
// - Levels and settings belong to their room: deleting the room removes them.
// - `unreadMentions` counts, per room of the user, the text messages after its read marker,
//   by someone else, that name it in `mentions` or mention the whole room (`mentionsAll`),
//   among the first UNREAD_SCAN messages after the marker (those the inbox counts in).
// - `threadParticipants` reads who takes part in a thread up to a reply: the root's author and
//   the authors of the thread's text replies before it (deleted ones too), once each.
import type { MentionAll, NotifyLevel } from '../protocol/schema.js';

export interface NotificationStore {
  /** The member's level in the room, or null when it never set one (the default applies). */
  level(room: string, user: string): Promise<NotifyLevel | null>;
  setLevel(room: string, user: string, level: NotifyLevel): Promise<void>;
  /** Every level set in the room, by user. */
  levels(room: string): Promise<Map<string, NotifyLevel>>;
  /** The member's levels in the given rooms, by room (rooms where it never set one are absent): one read for an inbox. */
  levelsIn(user: string, rooms: readonly string[]): Promise<Map<string, NotifyLevel>>;
  /** Who may use @room and @here, or null when the room never set it (the default applies). */
  mentionAll(room: string): Promise<MentionAll | null>;
  setMentionAll(room: string, who: MentionAll): Promise<void>;
  /** room id -> unread messages mentioning the user (rooms without any are absent). */
  unreadMentions(user: string): Promise<Map<string, number>>;
  /** The root's author and the authors of text replies in its thread with a seq below `before`. */
  threadParticipants(room: string, root: number, before: number): Promise<string[]>;
}
