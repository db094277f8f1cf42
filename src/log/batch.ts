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

export class BatchBuilder {
  private readonly rooms = new Map<string, RoomChange>();
  private readonly members = new Map<string, MemberChange & { room: string; user: string }>();
  private readonly bans = new Map<string, { room: string; user: string; ban: Ban | null }>();
  private readonly access = new Map<string, { room: string; list: 'black' | 'white'; user: string; on: boolean }>();
  private readonly blocks = new Map<string, { user: string; other: string; on: boolean }>();
  private messages: MessageRecord[] = [];
  private readonly threads = new Map<string, { room: string; root: number; summary: ThreadSummary }>();
  private readonly mentions: Array<{ room: string; seq: number; users: string[] }> = [];

  get isEmpty(): boolean {
    return (
      this.messages.length === 0 &&
      this.rooms.size === 0 &&
      this.members.size === 0 &&
      this.threads.size === 0 &&
      this.mentions.length === 0 &&
      this.bans.size === 0 &&
      this.access.size === 0 &&
      this.blocks.size === 0
    );
  }

  roomCreated(room: Room, directKey: string | null, floor: number, existed: boolean): void {
    const c = this.rooms.get(room.id);
    if (c) Object.assign(c, { fresh: true, now: room, directKey, floor });
    else this.rooms.set(room.id, { existed, renamed: false, fresh: true, now: room, directKey, floor, keepHistory: true });
  }

  roomUpdated(room: Room, renamed: boolean): void {
    const c = this.rooms.get(room.id);
    if (c) {
      c.now = room;
      c.renamed ||= renamed;
    } else {
      this.rooms.set(room.id, { existed: true, renamed, fresh: false, now: room, directKey: null, floor: 0, keepHistory: true });
    }
  }

  /** A deleted room takes its members, bans and lists along, and its messages unless kept. */
  roomDeleted(id: string, keepHistory: boolean): void {
    const c = this.rooms.get(id);
    if (c) {
      c.now = null;
      c.keepHistory = keepHistory;
    } else {
      this.rooms.set(id, { existed: true, renamed: false, fresh: false, now: null, directKey: null, floor: 0, keepHistory });
    }
    for (const [k, m] of this.members) if (m.room === id) this.members.delete(k);
    for (const [k, b] of this.bans) if (b.room === id) this.bans.delete(k);
    for (const [k, a] of this.access) if (a.room === id) this.access.delete(k);
    if (!keepHistory) {
      this.messages = this.messages.filter((r) => r.message.room !== id);
      for (const [k, t] of this.threads) if (t.room === id) this.threads.delete(k);
    }
  }

  /** `before` is the member as the room state knew it before this change (null: none). */
  memberChanged(room: string, user: string, before: Member | null, now: Member | null, fresh: boolean): void {
    const k = pair(room, user);
    const c = this.members.get(k);
    if (c) {
      c.now = now;
      if (fresh) c.fresh = true;
      if (!now) c.fresh = false;
    } else {
      this.members.set(k, { room, user, existed: before !== null, fresh: fresh && now !== null, now });
    }
  }

  banChanged(room: string, user: string, ban: Ban | null): void {
    this.bans.set(pair(room, user), { room, user, ban });
  }

  accessChanged(room: string, list: 'black' | 'white', user: string, on: boolean): void {
    this.access.set(`${room}\n${list}\n${user}`, { room, list, user, on });
  }

  blockChanged(user: string, other: string, on: boolean): void {
    this.blocks.set(pair(user, other), { user, other, on });
  }

  message(message: Message, key: string | null, hiddenFor: string | null): void {
    this.messages.push({ message, key, hiddenFor });
  }

  /** A thread's summary as it is after a reply of this batch (the last one written wins). */
  threadSummarised(room: string, root: number, summary: ThreadSummary): void {
    this.threads.set(pair(room, String(root)), { room, root, summary });
  }

  /** An edit mentions these users, whom the message it edits did not. */
  mentionsAdded(room: string, seq: number, users: string[]): void {
    this.mentions.push({ room, seq, users });
  }

  build(): Batch {
    const b: Batch = {
      ...emptyBatch(),
      bans: [...this.bans.values()],
      access: [...this.access.values()],
      blocks: [...this.blocks.values()],
      messages: this.messages,
      threads: [...this.threads.values()],
      mentions: this.mentions,
    };
    for (const [id, c] of this.rooms) {
      // A room deleted (or deleted and created again) in this batch: its old row goes first.
      if (c.existed && (c.now === null || c.fresh)) b.deleteRooms.push({ id, keepHistory: c.keepHistory });
      if (c.now && c.fresh) b.insertRooms.push({ room: c.now, directKey: c.directKey, floor: c.floor });
      else if (c.now && c.existed) b.updateRooms.push({ room: c.now, renamed: c.renamed });
    }
    for (const m of this.members.values()) {
      if (m.existed && (m.now === null || m.fresh)) b.deleteMembers.push({ room: m.room, user: m.user });
      if (m.now && m.fresh) b.insertMembers.push(m.now);
      else if (m.now && m.existed) b.updateMembers.push(m.now);
    }
    return b;
  }
}
