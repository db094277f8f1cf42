// The RoomWriter port: the write side of the room log (src/log). The room log of the node that
// owns a room decides every change to it with the rules (src/service/rules.ts) and hands the
// node's decided changes to `commit` in batches; this port reads the facts those decisions
// need and writes batches. Nothing is decided here. Implementations: store/sqlite,
// store/postgres; behaviour suite: test/conformance/writer.ts.
//
// Contract
// - `commit` is atomic: the whole batch is durably committed when it resolves, and nothing of
//   it is when it rejects. It writes what it is given, in the order of the batch's parts below
//   (deletions of rooms first, then rooms, members, bans, access lists, blocks, messages,
//   thread summaries, mentions added by edits).
// - With an epoch, the batch commits only if that is still the cluster's current epoch
//   (`FencedError` otherwise): a node that lost its rooms can never write after the epoch
//   moved, however late its batch arrives. Without one (a single node) it is not fenced.
// - A message whose (room, user, key) is already stored makes the whole batch reject with
//   `KeyConflictError` and store nothing: the room log learns the earlier message and decides
//   again. Any other unique key taken rejects with `conflict`; a value the database cannot
//   store with `invalid`; the database away or too slow with `unavailable`, in bounded time.
// - Fact reads see every commit whose promise has resolved.
// - After `close` every call rejects with `unavailable`.
import type { Ban, Member, Message, MessageKind, Room, ThreadSummary } from '../protocol/schema.js';

/** A room as its owner loads it before deciding anything about it. */
export interface RoomSnapshot {
  /** The room, or null when none exists. `lastSeq` is as `last` below. */
  room: Room | null;
  /**
   * Highest seq the room id has given out, counting messages removed by retention and the kept
   * history of a deleted room (0 for an id never used): the next message takes last + 1.
   */
  last: number;
  /** Whether messages of a deleted room still hold this id (its history was kept). */
  keptHistory: boolean;
  /** Every member, when the room has at most `smallRoom` of them; null otherwise (read per user). */
  members: Member[] | null;
}

/** What an edit, delete or reaction needs to know of the message it points at. */
export interface TargetRow {
  kind: MessageKind;
  user: string;
  /** A delete points at it. */
  deleted: boolean;
  /** The root of the thread it belongs to (null: none). */
  thread: number | null;
  /** A thread reply shown in the main timeline too. */
  alsoToRoom: boolean;
}

/** A message to store, with what readers never see: its idempotency key and whom it is hidden for. */
export interface MessageRecord {
  message: Message;
  key: string | null;
  hiddenFor: string | null;
}

/**
 * Decided changes, each row named once with its final state. Applied in this order, so a room
 * deleted and created again in one batch, or a member who left and joined again, ends right.
 */
export interface Batch {
  /** Rooms removed with their members, bans and access lists; their messages too unless kept. */
  deleteRooms: Array<{ id: string; keepHistory: boolean }>;
  /** New rooms: `floor` is the last seq of a kept history the room continues (0 otherwise). */
  insertRooms: Array<{ room: Room; directKey: string | null; floor: number }>;
  /** Settings of existing rooms (name, topic, access, retention), as they are now; `renamed`: its name changed. */
  updateRooms: Array<{ room: Room; renamed: boolean }>;
  /** Member rows removed (members who left, or who left and joined again). */
  deleteMembers: Array<{ room: string; user: string }>;
  /** New member rows (read marker 0). */
  insertMembers: Member[];
  /** Role and mute of existing member rows, as they are now. */
  updateMembers: Member[];
  /** Room bans set, or lifted (ban null). */
  bans: Array<{ room: string; user: string; ban: Ban | null }>;
  /** Access list entries added (on) or removed. */
  access: Array<{ room: string; list: 'black' | 'white'; user: string; on: boolean }>;
  /** Blocks set (on) or lifted: `user` blocks `other`. */
  blocks: Array<{ user: string; other: string; on: boolean }>;
  /** New messages, in seq order within each room. */
  messages: MessageRecord[];
  /** Thread summaries as they are now (after this batch's replies), written after the messages. */
  threads: Array<{ room: string; root: number; summary: ThreadSummary }>;
  /** Users an edit newly mentions, added to the mentions kept with the edited message. */
  mentions: Array<{ room: string; seq: number; users: string[] }>;
}

/** A batch that changes nothing, for callers (seeding, tests) that fill in one kind of row. */
export function emptyBatch(): Batch {
  return {
    deleteRooms: [],
    insertRooms: [],
    updateRooms: [],
    deleteMembers: [],
    insertMembers: [],
    updateMembers: [],
    bans: [],
    access: [],
    blocks: [],
    messages: [],
    threads: [],
    mentions: [],
  };
}

/** A batch refused because a message's key was used before by the same user in the same room. */
export class KeyConflictError extends Error {
  constructor() {
    super('an idempotency key of the batch is already stored');
    this.name = 'KeyConflictError';
  }
}

export interface RoomWriter {
  /** Least time between the starts of two commits while writes keep coming (0: every turn). */
  readonly commitIntervalMs: number;
  /** Most decided operations one batch should carry. */
  readonly maxBatch: number;

  loadRoom(id: string, smallRoom: number): Promise<RoomSnapshot>;
  /** The room's ban of the user, in force or expired (null: none). */
  roomBan(room: string, user: string): Promise<Ban | null>;
  /** Whether the user is on the room's white and black lists. */
  listed(room: string, user: string): Promise<{ white: boolean; black: boolean }>;
  /** A room's access lists in full. */
  lists(room: string): Promise<{ white: string[]; black: string[] }>;
  /** Whether `user` blocks `other`. */
  blocks(user: string, other: string): Promise<boolean>;
  target(room: string, seq: number): Promise<TargetRow | null>;
  /** The summary of the thread under this root (null: no reply yet). */
  threadSummary(room: string, root: number): Promise<ThreadSummary | null>;
  /** The message the user stored in the room with this key, if any. */
  keyed(room: string, user: string, key: string): Promise<Message | null>;
  /** The channel holding a channel name key (see channelNameKey), if any. */
  channelNamed(nameKey: string): Promise<string | null>;
  /** The room of a direct pair key, if any. */
  directNamed(directKey: string): Promise<string | null>;

  /** Writes a batch in one transaction; fenced by `epoch` when given (see the contract). */
  commit(batch: Batch, epoch: number | null): Promise<void>;
}
