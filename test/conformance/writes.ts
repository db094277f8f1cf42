// Writes for the store suites, made the one way the server makes them: through a room log
// (src/log) over the store under test. Each call names its actor; `by` acts as a server
// administrator where the suite sets rooms up (creating, adding, removing, moderating), so the
// rules let the set-up through and the suites check what the store keeps. Appends act as the
// user they name, so the message rules are checked as a member would meet them.
import type { Ban, Member, Message, MessageKind, Role, Room, RoomKind } from '../../src/protocol/schema.js';
import type { MessageMeta, Store } from '../../src/store/store.js';
import { RoomLog, type RoomLogOptions } from '../../src/log/roomlog.js';
import type { AppendResult, By, OpOf } from '../../src/log/ops.js';
import { hasAccess } from '../../src/service/rules.js';
import { directRoomId } from '../../src/service/index.js';

export interface NewRoom {
  id: string;
  kind: RoomKind;
  name: string;
  topic: string;
  createdBy: string | null;
  members: Array<{ user: string; name: string; role: Role }>;
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
  system?: boolean;
  /** A server administrator: deletes in any room. */
  moderator?: boolean;
  /** Mentions and the quote of the message it replies to, kept with the message. */
  meta?: MessageMeta;
  /** A text sent to the thread of this root (shown in the main timeline too with alsoToRoom). */
  thread?: number;
  alsoToRoom?: boolean;
}

export interface RoomPatch {
  name?: string;
  topic?: string;
  access?: 'blacklist' | 'whitelist';
  retentionCount?: number | null;
  retentionDays?: number | null;
}

type Extra = ReturnType<typeof writeCalls>;
export type Writes<S extends Store = Store> = Omit<S, keyof Extra> & Extra;

const admin = (id: string, name = id): By => ({ id, name, admin: true });

/** The store with write calls through a room log of its own; `close` settles the log first. */
export function roomLogWrites<S extends Store>(store: S, opts: RoomLogOptions = {}): Writes<S> {
  const extra = writeCalls(store, new RoomLog(store, opts));
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && Object.hasOwn(extra, prop)) return extra[prop as keyof Extra];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as Writes<S>;
}

function writeCalls(store: Store, log: RoomLog) {
  return {
    log,
    createRoom: (r: NewRoom): Promise<{ room: Room; messages: Message[] }> => {
      const op: OpOf<'create'> = {
        op: 'create',
        by: admin(r.createdBy ?? 'system'),
        kind: r.kind,
        name: r.name,
        topic: r.topic,
        createdBy: r.createdBy,
        members: r.members,
      };
      if (r.directKey !== undefined) op.directKey = r.directKey;
      return log.submit<'create'>(r.id, op);
    },
    append: (m: NewMessage): Promise<AppendResult> => {
      const op: OpOf<'append'> = { op: 'append', by: { id: m.user, name: m.name, admin: m.moderator === true }, kind: m.kind };
      if (m.text !== undefined) op.text = m.text;
      if (m.target !== undefined) op.target = m.target;
      if (m.data !== undefined) op.data = m.data;
      if (m.key !== undefined) op.key = m.key;
      if (m.system) op.system = true;
      if (m.meta !== undefined) op.meta = m.meta;
      if (m.thread !== undefined) op.thread = m.thread;
      if (m.alsoToRoom) op.alsoToRoom = true;
      return log.submit<'append'>(m.room, op);
    },
    /** Adds `user` as `by` would invite it, then gives it `role` when that is not `member`. */
    addMember: async (room: string, user: string, _name: string, role: Role, by: string): Promise<{ member: Member; message: Message }> => {
      const added = log.submit<'invite'>(room, { op: 'invite', by: admin(by), user });
      if (role === 'member') return added;
      const { message } = await added;
      const { member } = await log.submit<'role'>(room, { op: 'role', by: admin(by), user, role });
      return { member, message };
    },
    removeMember: async (room: string, user: string, _name: string, by: string): Promise<Message> =>
      (await log.submit<'kick'>(room, { op: 'kick', by: admin(by), user })).message,
    updateRoom: (room: string, p: RoomPatch, by: { user: string; name: string }): Promise<{ room: Room; message: Message }> => {
      const change: OpOf<'update'>['change'] = {};
      if (p.name !== undefined) change.name = p.name;
      if (p.topic !== undefined) change.topic = p.topic;
      if (p.access !== undefined) change.access = p.access;
      if (p.retentionCount !== undefined || p.retentionDays !== undefined) {
        change.retention = {};
        if (p.retentionCount !== undefined) change.retention.count = p.retentionCount;
        if (p.retentionDays !== undefined) change.retention.days = p.retentionDays;
      }
      return log.submit<'update'>(room, { op: 'update', by: admin(by.user, by.name), change });
    },
    deleteRoom: async (room: string, keepHistory: boolean): Promise<string[]> =>
      (await log.submit<'destroy'>(room, { op: 'destroy', by: admin('root'), keepHistory })).members,
    setRole: (room: string, user: string, role: Role, by: { user: string; name: string }) =>
      log.submit<'role'>(room, { op: 'role', by: admin(by.user, by.name), user, role }),
    setMute: async (room: string, user: string, until: number | null, off: boolean): Promise<Member> =>
      (await log.submit<'mute'>(room, { op: 'mute', by: admin('root'), user, until, off })).member,
    ban: async (b: { room: string | null; user: string; until: number | null; reason: string; by: string | null }): Promise<Ban> => {
      if (b.room === null) return store.banFromServer(b);
      return (await log.submit<'ban'>(b.room, { op: 'ban', by: admin(b.by ?? 'root'), user: b.user, until: b.until, reason: b.reason })).ban;
    },
    unban: async (room: string | null, user: string): Promise<boolean> => {
      if (room === null) return store.unbanFromServer(user);
      return (await log.submit<'unban'>(room, { op: 'unban', by: admin('root'), user })).lifted;
    },
    setAccess: async (room: string, list: 'black' | 'white', add: string[], remove: string[]): Promise<string[]> =>
      (await log.submit<'access'>(room, { op: 'access', by: admin('root'), list, add, remove })).users,
    /** Blocks belong to the direct room of the pair (as the service writes them). */
    setBlock: async (user: string, other: string, on: boolean): Promise<void> => {
      await log.submit<'block'>(directRoomId(user, other).id, { op: 'block', by: { id: user, name: user, admin: false }, user: other, on });
    },
    /** Whether the room's access mode and lists admit the user (the rule, on the stored facts). */
    hasAccess: async (room: string, user: string): Promise<boolean> => {
      const r = await store.getRoom(room);
      if (!r) return false;
      const [member, listed] = await Promise.all([store.getMember(room, user), store.listed(room, user)]);
      return hasAccess(r.access, member?.role ?? null, listed);
    },
    close: async (): Promise<void> => {
      await log.close();
      await store.close();
    },
  };
}
