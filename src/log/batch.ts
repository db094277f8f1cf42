// Gathers the changes the room log decides during one batch and turns them into the store's
// Batch (store/writer.ts): each row once, with its final state, so a member who left and joined
// again, or a room deleted and created again within one batch, is written right by a fixed
// order of statements.
import type { Ban, Member, Message, Room, ThreadSummary } from '../protocol/schema.js';
import { emptyBatch, type Batch, type MessageRecord } from '../store/writer.js';

interface MemberChange {
  /** A row existed before the batch. */
  existed: boolean;
  /** The row was (re)inserted during the batch. */
  fresh: boolean;
  now: Member | null;
}

interface RoomChange {
  existed: boolean;
  renamed: boolean;
  fresh: boolean;
  now: Room | null;
  directKey: string | null;
  floor: number;
  keepHistory: boolean;
}

const pair = (a: string, b: string) => `${a}\n${b}`;
const values = <T>(m: Map<string, T> | null): T[] => (m ? [...m.values()] : []);

function dropRoom(m: Map<string, { room: string }> | null, room: string): void {
  if (m) for (const [k, v] of m) if (v.room === room) m.delete(k);
}

export class BatchBuilder {
  // Made on first use: most batches hold messages only, and a builder is made per batch.
  private rooms: Map<string, RoomChange> | null = null;
  private members: Map<string, MemberChange & { room: string; user: string }> | null = null;
  private bans: Map<string, { room: string; user: string; ban: Ban | null }> | null = null;
  private access: Map<string, { room: string; list: 'black' | 'white'; user: string; on: boolean }> | null = null;
  private blocks: Map<string, { user: string; other: string; on: boolean }> | null = null;
  private messages: MessageRecord[] = [];
  private threads: Map<string, { room: string; root: number; summary: ThreadSummary }> | null = null;
  private readonly mentions: Array<{ room: string; seq: number; users: string[] }> = [];

  get isEmpty(): boolean {
    return (
      this.messages.length === 0 &&
      !this.rooms?.size &&
      !this.members?.size &&
      !this.threads?.size &&
      this.mentions.length === 0 &&
      !this.bans?.size &&
      !this.access?.size &&
      !this.blocks?.size
    );
  }

  roomCreated(room: Room, directKey: string | null, floor: number, existed: boolean): void {
    const c = this.rooms?.get(room.id);
    if (c) Object.assign(c, { fresh: true, now: room, directKey, floor });
    else (this.rooms ??= new Map()).set(room.id, { existed, renamed: false, fresh: true, now: room, directKey, floor, keepHistory: true });
  }

  roomUpdated(room: Room, renamed: boolean): void {
    const c = this.rooms?.get(room.id);
    if (c) {
      c.now = room;
      c.renamed ||= renamed;
    } else {
      (this.rooms ??= new Map()).set(room.id, { existed: true, renamed, fresh: false, now: room, directKey: null, floor: 0, keepHistory: true });
    }
  }

  /** A deleted room takes its members, bans and lists along, and its messages unless kept. */
  roomDeleted(id: string, keepHistory: boolean): void {
    const c = this.rooms?.get(id);
    if (c) {
      c.now = null;
      c.keepHistory = keepHistory;
    } else {
      (this.rooms ??= new Map()).set(id, { existed: true, renamed: false, fresh: false, now: null, directKey: null, floor: 0, keepHistory });
    }
    dropRoom(this.members, id);
    dropRoom(this.bans, id);
    dropRoom(this.access, id);
    if (!keepHistory) {
      this.messages = this.messages.filter((r) => r.message.room !== id);
      dropRoom(this.threads, id);
    }
  }

  /** `before` is the member as the room state knew it before this change (null: none). */
  memberChanged(room: string, user: string, before: Member | null, now: Member | null, fresh: boolean): void {
    const k = pair(room, user);
    const c = this.members?.get(k);
    if (c) {
      c.now = now;
      if (fresh) c.fresh = true;
      if (!now) c.fresh = false;
    } else {
      (this.members ??= new Map()).set(k, { room, user, existed: before !== null, fresh: fresh && now !== null, now });
    }
  }

  banChanged(room: string, user: string, ban: Ban | null): void {
    (this.bans ??= new Map()).set(pair(room, user), { room, user, ban });
  }

  accessChanged(room: string, list: 'black' | 'white', user: string, on: boolean): void {
    (this.access ??= new Map()).set(`${room}\n${list}\n${user}`, { room, list, user, on });
  }

  blockChanged(user: string, other: string, on: boolean): void {
    (this.blocks ??= new Map()).set(pair(user, other), { user, other, on });
  }

  message(message: Message, key: string | null, hiddenFor: string | null): void {
    this.messages.push({ message, key, hiddenFor });
  }

  /** A thread's summary as it is after a reply of this batch (the last one written wins). */
  threadSummarised(room: string, root: number, summary: ThreadSummary): void {
    (this.threads ??= new Map()).set(pair(room, String(root)), { room, root, summary });
  }

  /** An edit mentions these users, whom the message it edits did not. */
  mentionsAdded(room: string, seq: number, users: string[]): void {
    this.mentions.push({ room, seq, users });
  }

  build(): Batch {
    const b: Batch = {
      ...emptyBatch(),
      bans: values(this.bans),
      access: values(this.access),
      blocks: values(this.blocks),
      messages: this.messages,
      threads: values(this.threads),
      mentions: this.mentions,
    };
    for (const [id, c] of this.rooms ?? []) {
      // A room deleted (or deleted and created again) in this batch: its old row goes first.
      if (c.existed && (c.now === null || c.fresh)) b.deleteRooms.push({ id, keepHistory: c.keepHistory });
      if (c.now && c.fresh) b.insertRooms.push({ room: c.now, directKey: c.directKey, floor: c.floor });
      else if (c.now && c.existed) b.updateRooms.push({ room: c.now, renamed: c.renamed });
    }
    for (const m of this.members?.values() ?? []) {
      if (m.existed && (m.now === null || m.fresh)) b.deleteMembers.push({ room: m.room, user: m.user });
      if (m.now && m.fresh) b.insertMembers.push(m.now);
      else if (m.now && m.existed) b.updateMembers.push(m.now);
    }
    return b;
  }
}
