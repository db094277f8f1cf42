// Everything Parley keeps durably, as small ports with one contract each:
//
//   users.ts       UserStore        users and their blocks (read)
//   rooms.ts       RoomStore        rooms and members as committed (read)
//   log.ts         MessageLog       history, bounds, read markers, inbox
//   moderation.ts  ModerationStore  bans and access lists (read), server-wide bans
//   writer.ts      RoomWriter       the room log's facts and its batch commits (the only writer
//                                   of rooms, members, messages, room bans, access lists, blocks)
//   search.ts      SearchStore      full-text search
//   retention.ts   RetentionStore   removal of old messages
//   Health (below)                  liveness and shutdown
//
// Implementations: store/sqlite (embedded default) and store/postgres (cluster) implement them
// all (`Store`); each port has its behaviour suite in test/conformance/<port>.ts that both run.
// What every port keeps:
// - Calls reject, never throw. When the database cannot be reached they reject with
//   `unavailable` in bounded time (never hang), and the store recovers by itself once the
//   database answers again; after `close` every call rejects with `unavailable`.
// - Channel names are unique per server by `channelNameKey` (case, width and runs of spaces do
//   not count). Groups and direct rooms are private and may share any name.
import type { Message } from '../protocol/schema.js';
import type { MessageLog } from './log.js';
import type { ModerationStore } from './moderation.js';
import type { RetentionStore } from './retention.js';
import type { RoomStore } from './rooms.js';
import type { SearchStore } from './search.js';
import type { UserStore } from './users.js';
import type { RoomWriter } from './writer.js';

export type { Bounds, HistoryQuery, MessageLog } from './log.js';
export type { ModerationStore } from './moderation.js';
export type { RetentionStore } from './retention.js';
export type { RoomStore } from './rooms.js';
export type { SearchStore } from './search.js';
export type { UserStore } from './users.js';
export type { Batch, MessageRecord, RoomSnapshot, RoomWriter, TargetRow } from './writer.js';
export { KeyConflictError } from './writer.js';

/**
 * Most matches of a query a search looks at, newest first, across every room, before it keeps
 * those of the searched rooms: a search costs the same for a word in every message as for a
 * rare one. Older matches of a very common word are not found; a more precise query finds them.
 */
export const SEARCH_SCAN = 5000;
/**
 * Most messages after a member's read marker the inbox looks at to count its unread ones: a
 * room with any number of unread messages costs the same read. Past them the entry says
 * `unreadMore` and its `unread` counts the first UNREAD_SCAN only (a client shows "N+").
 */
export const UNREAD_SCAN = 1000;
/**
 * What makes two channel names the same: compatibility forms folded (full-width letters are
 * letters), characters that draw nothing left out (zero-width spaces and joiners, soft hyphens,
 * fillers: Unicode's default ignorables), lower case, spaces trimmed and runs of them made
 * one. Keys are stored when a channel is named, so a change here applies to names given after
 * it. Look-alike letters of other scripts (a Cyrillic "о" for a Latin "o") are not folded.
 */
export function channelNameKey(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Default_Ignorable_Code_Point}/gu, '')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}

/** Message fields the service works out and the store keeps with the message as they are. */
export type MessageMeta = Partial<Pick<Message, 'mentions' | 'mentionsAll' | 'replyTo' | 'quote' | 'thread' | 'alsoToRoom'>>;

export interface Health {
  /** Resolves when the database answers a trivial query; rejects (`unavailable`) otherwise. */
  ping(): Promise<void>;
  /** Settles the writes already called (committing them), then closes. */
  close(): Promise<void>;
}

/** Every port of a backend together. */
export interface Store extends UserStore, RoomStore, MessageLog, ModerationStore, RoomWriter, SearchStore, RetentionStore, Health {}
