// The Store port: everything Parley keeps durably. Implementations: store/sqlite (embedded
// default) and store/postgres (cluster). The contract below is what every backend keeps and
// what test/conformance/store.ts checks.
//
// Contract
// - Writes (create, join, leave, append, markRead) are atomic: they either happen fully or
//   leave nothing behind, and their promise settles only after the write is durably
//   committed. A rejected write stored nothing.
// - `seq` is allocated per room inside the write that stores the message: within a room it
//   starts at 1, increases by one, and never has a gap or a duplicate, whatever the number of
//   concurrent writers.
// - Writes to one room are committed in the order they were called on one Store instance.
// - Permission rules that depend on stored state (membership, authorship of an edit target)
//   are checked inside the same write, so a concurrent removal can never let a write through.
// - An `append` with a key already used by the same user in the same room stores nothing and
//   returns the original message with `duplicate: true`.
// - Reads see every write whose promise has resolved.
// - Channel names are unique per server by `channelNameKey` (case, width and runs of spaces
//   do not count): creating or renaming a channel to a name whose key another channel has
//   is a `conflict`. Groups and direct rooms are private and may share any name.
// - When the database cannot be reached, calls reject with `unavailable` in bounded time
//   (never hang) and the store recovers by itself once the database answers again. Calls
//   reject, never throw; after `close` every call rejects with `unavailable`.
// - What a room keeps is always one range of seqs ending at its last: removals (retention)
//   cut a prefix, so a reader that finds `first` above what it asked for knows the whole gap.
import type { AccessMode, Ban, InboxEntry, Member, Message, MessageKind, Role, Room, RoomKind, User } from '../protocol/schema.js';

/** Why a room id cannot be used again (the `conflict` message of `createRoom`). */
export const KEPT_HISTORY = 'this room id belongs to a deleted room whose history is kept';
/**
 * Most matches of a query a search looks at, newest first, across every room, before it keeps
 * those of the searched rooms: a search costs the same for a word in every message as for a
 * rare one. Older matches of a very common word are not found; a more precise query finds them.
 */
export const SEARCH_SCAN = 5000;
/**
 * What makes two channel names the same: compatibility forms folded (full-width letters are
 * letters), lower case, spaces trimmed and runs of them made one.
 */
export function channelNameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

export interface NewRoom {
  id: string;
  kind: RoomKind;
  name: string;
  topic: string;
  createdBy: string | null;
  /** Members added with the room, in order; the first `owner` is the creator. */
  members: Array<{ user: string; name: string; role: Role }>;
  /** For direct rooms: the canonical pair key; a second room with the same key is a conflict. */
  directKey?: string;
}

export interface NewMessage {
  room: string;
  user: string;
  name: string;
  kind: Extract<MessageKind, 'text' | 'edit' | 'delete' | 'reaction' | 'event'>;
  text?: string;
  target?: number;
  data?: Record<string, unknown>;
  key?: string;
  /**
   * Posted by the server-side API: no membership needed, and the stored message carries
   * `system: true`, which no other append sets (clients tell server posts apart by it).
   */
  system?: boolean;
  /**
   * Sent by a server administrator, who moderates every room as its owner: a `delete` needs
   * neither membership nor a room role. Other kinds still need membership.
   */
  moderator?: boolean;
  /**
   * In a direct room: the other member, so the store can mark the message hidden for it when
   * it blocks the sender (it then receives a `hidden` placeholder; the sender is not told).
   */
  directPeer?: string;
  /** What the service found in the message: its mentions and the quote it replies to. */
  meta?: MessageMeta;
}

/** Message fields the service works out and the store keeps with the message as they are. */
export type MessageMeta = Partial<Pick<Message, 'mentions' | 'mentionsAll' | 'replyTo' | 'quote'>>;

/** A room setting change; null removes a retention limit. */
export interface RoomPatch {
  name?: string;
  topic?: string;
  access?: AccessMode;
  retentionCount?: number | null;
  retentionDays?: number | null;
}

export interface AppendResult {
  message: Message;
  duplicate: boolean;
  /** Set when the message is hidden for this user (it blocked the sender). */
  hiddenFor?: string;
}

export interface HistoryQuery { before?: number; after?: number; limit: number }

export interface Bounds {
  /** Lowest seq still stored (lastSeq + 1 when nothing is stored). */
  first: number;
  last: number;
}

export interface Store {
  /** Creates or updates the user's name and profile. */
  upsertUser(user: User): Promise<User>;
  getUser(id: string): Promise<User | null>;

  /**
   * Creates a room with its first members, appending one `join` message per member.
   * Rejects with `conflict` if the id (or the direct pair) exists, or if the messages of a
   * deleted room kept by `deleteRoom(id, true)` still hold the id: a new room must never show
   * another room's history. A direct room is the exception: its id belongs to its pair, so
   * the pair's new room continues after the kept messages (its first join takes the next seq).
   * Rejects with `conflict` for a channel whose name another channel has (`details.field: "name"`).
   */
  createRoom(room: NewRoom): Promise<{ room: Room; messages: Message[] }>;
  getRoom(id: string): Promise<Room | null>;
  /** The direct room of a pair key, if one exists. */
  findDirect(directKey: string): Promise<Room | null>;
  /** Rooms the user is a member of. */
  roomsOf(user: string): Promise<Array<{ room: Room; member: Member }>>;
  /**
   * How many channels and groups the user is a member of, and how many of those that exist it
   * created (direct rooms are not counted).
   */
  countRooms(user: string): Promise<{ member: number; created: number }>;
  /** Public channels, by id, `limit` at most, after the given id. */
  publicRooms(limit: number, afterId?: string): Promise<Room[]>;

  getMember(room: string, user: string): Promise<Member | null>;
  members(room: string): Promise<Member[]>;
  /** Adds a member and appends its `join` message; `conflict` if already a member. */
  addMember(room: string, user: string, name: string, role: Role, by: string): Promise<{ member: Member; message: Message }>;
  /** Removes a member and appends its `leave` message; `not_found` if not a member. */
  removeMember(room: string, user: string, name: string, by: string): Promise<Message>;

  /**
   * Appends a message by a member (`forbidden` otherwise). For edit, delete and reaction the
   * target must be a `text` message of the room (`not_found`); edits only by its author,
   * deletes by its author, a room owner/admin or a `moderator` (`forbidden`).
   */
  append(msg: NewMessage): Promise<AppendResult>;
  /**
   * Messages in seq order: after `after`, or the latest ones before `before` (or the end).
   * With `viewer`, messages hidden for it come back as `hidden` placeholders.
   */
  history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]>;
  getMessage(room: string, seq: number, viewer?: string): Promise<Message | null>;
  bounds(room: string): Promise<Bounds>;

  /** Moves the read marker forward (never back, never past lastSeq); returns it. */
  markRead(room: string, user: string, seq: number): Promise<number>;
  /** The user's rooms with last text message and unread count, most recent first. */
  inbox(user: string): Promise<InboxEntry[]>;

  // ---- moderation ---------------------------------------------------------------------------

  /** Applies the patch and appends an `update` message naming what changed; a channel's new name is checked as in `createRoom`. */
  updateRoom(room: string, patch: RoomPatch, by: { user: string; name: string }): Promise<{ room: Room; message: Message }>;
  /** Deletes a room with its members and lists; its history too unless `keepHistory`. Returns the former members. */
  deleteRoom(room: string, keepHistory: boolean): Promise<string[]>;
  /** Sets a role (appending an `update` message); giving `owner` makes the previous owner an admin. */
  setRole(room: string, user: string, role: Role, by: { user: string; name: string }): Promise<{ member: Member; message: Message }>;
  /** Mutes until `until` (ms; null: forever), or lifts it with `off`. */
  setMute(room: string, user: string, until: number | null, off: boolean): Promise<Member>;
  /** Records a ban (room null: server-wide), replacing an earlier one for the same user and room. */
  ban(b: { room: string | null; user: string; until: number | null; reason: string; by: string | null }): Promise<Ban>;
  unban(room: string | null, user: string): Promise<boolean>;
  /** Bans in force at `now` (room null: server-wide ones). */
  bans(room: string | null, now: number): Promise<Ban[]>;
  /** The ban in force for the user in the room, or server-wide when room is null. */
  activeBan(room: string | null, user: string, now: number): Promise<Ban | null>;
  /** Changes a black or white list; resolves with the list after the change. */
  setAccess(room: string, list: 'black' | 'white', add: string[], remove: string[]): Promise<string[]>;
  accessList(room: string, list: 'black' | 'white'): Promise<string[]>;
  /** Whether the room's access mode and lists let the user be a member (owners/admins always). */
  hasAccess(room: string, user: string): Promise<boolean>;
  setBlock(user: string, other: string, blocked: boolean): Promise<void>;
  /** Users `user` blocks. */
  blocksOf(user: string): Promise<string[]>;
  /** Members of the room who block `user` (they receive none of its typing). */
  blockersIn(room: string, user: string): Promise<string[]>;

  // ---- retention and search ------------------------------------------------------------------

  /**
   * Removes messages beyond each room's (or the default) count and age limits; returns how many.
   * An age limit cuts at the first message, in seq order, stamped at or after it: a message
   * stamped earlier but stored later stays, so no hole opens inside the history.
   */
  applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number>;
  /**
   * Full-text search in the given rooms, newest first; hidden messages of `viewer` excluded.
   * Looks at no more than the newest SEARCH_SCAN matches of the query, so its cost is bounded.
   */
  search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]>;

  // ---- health -----------------------------------------------------------------------------

  /** Resolves when the database answers a trivial query; rejects (`unavailable`) otherwise. */
  ping(): Promise<void>;
  /** How many rooms exist, by kind (kinds without rooms are absent). */
  roomCounts(): Promise<Record<string, number>>;

  /** Settles the writes already called (committing them), then closes. */
  close(): Promise<void>;
}
