// What the owner of a room knows about it between commits. The owning node is the only writer
// of everything in here (the room row, members and their roles and mutes, room bans, access
// lists, the messages and their keys, blocks of a direct pair), so its cache stays true as long
// as the node owns the room: each decision updates it, and facts it lacks are read from the
// store once. It is dropped whenever that could stop being true: a batch that failed, an
// ownership change, or room for others (least recently used first).
import type { Ban, Member, MessageKind, Room, ThreadSummary } from '../protocol/schema.js';
import type { RoomSnapshot } from '../store/writer.js';
import type { TargetFacts } from '../service/rules.js';

/** Recent idempotency keys and message facts kept per room (older ones are read from the store). */
const MAX_KEYS = 4096;
const MAX_TARGETS = 1024;
/** Known members of a large room kept between batches (the cache starts over past it). */
const MAX_MEMBERS = 20_000;
/**
 * Users whose room ban and list entries are kept between batches (each cache starts over past
 * it). Anyone may name any user in a command that is then refused (an `unban` by a non-member),
 * and the facts are read before the decision.
 */
export const MAX_USER_FACTS = 4096;

export const keyOf = (user: string, key: string): string => `${user}\n${key}`;

export class RoomState {
  room: Room | null;
  /** Highest seq given out; the next message takes last + 1. */
  last: number;
  keptHistory: boolean;
  /** Members by user; null: known not to be one. Holds every member when `membersComplete`. */
  readonly members = new Map<string, Member | null>();
  membersComplete: boolean;
  /** The room's ban of each user (in force or not); null: none. */
  readonly bans = new Map<string, Ban | null>();
  /** Whether each user is on the white and black lists. */
  readonly listed = new Map<string, { white: boolean; black: boolean }>();
  /** Both lists in full, once read. */
  lists: { white: Set<string>; black: Set<string> } | null = null;
  /** Recent keys: user + key -> seq of the message stored with it. */
  readonly keys = new Map<string, number>();
  /** Recent messages an edit, delete or reaction may point at; null: no such message. */
  readonly targets = new Map<number, TargetFacts | null>();
  /** Summaries of recent threads by root seq; null: no reply yet. */
  readonly threads = new Map<number, ThreadSummary | null>();
  /**
   * Uploads carried by recent messages: attachment id -> seq. A send naming one is refused even
   * before the upload's record is bound to the first message (older ones: the record says).
   */
  readonly carried = new Map<string, number>();
  /** `user\nother` -> whether user blocks other (direct rooms: the pair's blocks). */
  readonly blocks = new Map<string, boolean>();
  /** Changes whenever cached facts are forgotten, so a read started before cannot fill them. */
  generation = 0;

  constructor(s: RoomSnapshot) {
    this.room = s.room;
    this.last = s.last;
    this.keptHistory = s.keptHistory;
    this.membersComplete = s.members !== null;
    for (const m of s.members ?? []) this.members.set(m.user, m);
  }

  /** A member as known, undefined when it must be read first. */
  member(user: string): Member | null | undefined {
    const m = this.members.get(user);
    if (m !== undefined || !this.membersComplete) return m;
    return null;
  }

  /** Every member, when known. */
  allMembers(): Member[] | null {
    if (!this.membersComplete) return null;
    const out: Member[] = [];
    for (const m of this.members.values()) if (m) out.push(m);
    return out.sort((a, b) => a.joinSeq - b.joinSeq);
  }

  listedAs(user: string): { white: boolean; black: boolean } | undefined {
    if (this.lists) return { white: this.lists.white.has(user), black: this.lists.black.has(user) };
    return this.listed.get(user);
  }

  setMember(user: string, m: Member | null): void {
    this.members.set(user, m);
  }

  setListed(list: 'black' | 'white', user: string, on: boolean): void {
    const known = this.listedAs(user);
    if (known) this.listed.set(user, { ...known, [list]: on });
    else this.listed.delete(user);
    if (this.lists) {
      if (on) this.lists[list].add(user);
      else this.lists[list].delete(user);
    }
  }

  /** Records a message this room stored, for later edits, deletes, reactions and retries. */
  stored(
    seq: number,
    kind: MessageKind,
    user: string,
    key: string | null,
    target: number | undefined,
    thread: { root: number; alsoToRoom: boolean } | null = null,
  ): void {
    this.last = seq;
    if (key !== null) {
      this.keys.set(keyOf(user, key), seq);
      if (this.keys.size > MAX_KEYS) this.keys.delete(this.keys.keys().next().value!);
    }
    this.targets.set(seq, { kind, user, deleted: false, thread: thread?.root ?? null, alsoToRoom: thread?.alsoToRoom ?? false });
    if (this.targets.size > MAX_TARGETS) this.targets.delete(this.targets.keys().next().value!);
    if (kind === 'delete' && target !== undefined) {
      const t = this.targets.get(target);
      if (t) t.deleted = true;
    }
  }

  /** Records the uploads message `seq` carries. */
  carry(ids: readonly string[], seq: number): void {
    for (const id of ids) {
      this.carried.set(id, seq);
      if (this.carried.size > MAX_KEYS) this.carried.delete(this.carried.keys().next().value!);
    }
  }

  /** Records a thread's summary after a reply. */
  summarised(root: number, summary: ThreadSummary): void {
    this.threads.delete(root);
    this.threads.set(root, summary);
    if (this.threads.size > MAX_TARGETS) this.threads.delete(this.threads.keys().next().value!);
  }

  /** Between batches: keeps the caches of users' facts bounded (they are read again when needed). */
  trim(): void {
    let forgot = false;
    if (!this.membersComplete && this.members.size > MAX_MEMBERS) {
      this.members.clear();
      forgot = true;
    }
    if (this.bans.size > MAX_USER_FACTS) {
      this.bans.clear();
      forgot = true;
    }
    if (this.listed.size > MAX_USER_FACTS) {
      this.listed.clear();
      forgot = true;
    }
    if (forgot) this.generation++;
  }
}
