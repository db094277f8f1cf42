// The service runs commands for an authenticated user: validation beyond the schema,
// permission checks, hooks, then the store, then the bus. Every transport calls it, so a
// command gives the same answer whichever transport carried it.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { roomTopic, userTopic } from '../bus/bus.js';
import type { Identity } from '../auth/jwt.js';
import { ParleyError, toParleyError } from '../errors.js';
import type { Conn, Hub } from '../hub/index.js';
import { eventText } from '../protocol/frames.js';
import type {
  AuthResult, CommandArgs, CommandFrame, CommandName, CommandResults, Member, Message, Room, SendResult,
} from '../protocol/schema.js';
import type { Store } from '../store/store.js';
import { Hooks, type HookContext } from './hooks.js';

export interface ServiceOptions {
  textChars: number;
  heartbeatMs: number;
}

/** Who runs a command, and on which connection (absent for connection-less transports). */
export interface Session {
  user: Identity;
  conn?: Conn;
  /**
   * Called once the command's writes are queued in order. The transport waits for this (or
   * for the command to end) before starting the next command of the same connection, so
   * sends from one connection are stored in the order they were sent.
   */
  admit?: () => void;
}

type Handler<N extends CommandName> = (s: Session, a: CommandArgs<N>) => Promise<CommandResults[N]>;
type Handlers = { [N in Exclude<CommandName, 'auth' | 'ping'>]: Handler<N> };

const HISTORY_DEFAULT = 50;

/** The canonical room id of a direct conversation, the same whoever opens it. */
export function directRoomId(a: string, b: string): { id: string; key: string } {
  const key = [a, b].sort().join('\n');
  return { id: 'dm_' + createHash('sha256').update(key).digest('base64url').slice(0, 24), key };
}

export class Service {
  readonly hooks = new Hooks();
  private readonly handlers: Handlers;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly hub: Hub,
    private readonly opts: ServiceOptions,
    private readonly log: Logger,
  ) {
    this.handlers = {
      create: (s, a) => this.create(s, a),
      join: (s, a) => this.join(s, a),
      leave: (s, a) => this.leave(s, a),
      rooms: (s, a) => this.rooms(s, a),
      room: async (s, a) => (await this.readable(s, a.room)).room,
      members: async (s, a) => {
        await this.readable(s, a.room);
        return { members: await this.store.members(a.room) };
      },
      invite: (s, a) => this.invite(s, a),
      direct: (s, a) => this.direct(s, a),
      send: (s, a) => {
        this.checkText(a.text);
        return this.append(s, { room: a.room, kind: 'text', text: a.text, key: a.key, data: a.data });
      },
      edit: (s, a) => {
        this.checkText(a.text);
        return this.append(s, { room: a.room, kind: 'edit', text: a.text, target: a.target, key: a.key });
      },
      delete: (s, a) => this.append(s, { room: a.room, kind: 'delete', target: a.target, key: a.key }),
      react: (s, a) => this.append(s, {
        room: a.room, kind: 'reaction', target: a.target, key: a.key,
        data: a.remove ? { emoji: a.emoji, remove: true } : { emoji: a.emoji },
      }),
      history: (s, a) => this.history(s, a),
      resume: (s, a) => this.resume(s, a.rooms),
      typing: async (s, a) => {
        await this.requireMember(s, a.room);
        this.bus.publish(roomTopic(a.room), { frame: eventText('typing', { room: a.room, user: s.user.id, active: a.active ?? true }) });
        return {};
      },
      read: async (s, a) => {
        s.admit?.();
        const seq = await this.store.markRead(a.room, s.user.id, a.seq);
        this.bus.publish(roomTopic(a.room), { frame: eventText('read', { room: a.room, user: s.user.id, seq }) });
        return { room: a.room, seq };
      },
      presence: async (s, a) => {
        await this.readable(s, a.room);
        const members = await this.store.members(a.room);
        return { room: a.room, users: await this.bus.presence.online(members.map((m) => m.user)) };
      },
      inbox: async (s) => ({ rooms: await this.store.inbox(s.user.id) }),
    };
  }

  /** Runs one validated command frame (not `auth`) for the session. */
  async exec(s: Session, frame: CommandFrame): Promise<unknown> {
    const { id: _id, cmd, ...args } = frame as CommandFrame & Record<string, unknown>;
    if (cmd === 'ping') return { ts: Date.now() };
    if (cmd === 'auth') throw new ParleyError('conflict', 'already authenticated');
    const handler = this.handlers[cmd] as (s: Session, a: unknown) => Promise<unknown>;
    if (this.hooks.size === 0) return handler(s, args);
    const ctx: HookContext = { cmd, user: s.user, args };
    try {
      await this.hooks.before(ctx);
      const result = await handler(s, ctx.args);
      await this.hooks.after(ctx, { result }, (h, e) => this.log.warn({ err: e, hook: h.name }, 'after hook failed'));
      return result;
    } catch (err) {
      const error = toParleyError(err);
      await this.hooks.after(ctx, { error }, (h, e) => this.log.warn({ err: e, hook: h.name }, 'after hook failed'));
      throw err;
    }
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  /**
   * Attaches an authenticated connection: records the user, follows every room it belongs to
   * (replaying after the seqs named in `resume`), and announces it online.
   */
  async attach(user: Identity, conn: Conn, resume: Record<string, number> = {}): Promise<AuthResult> {
    await this.store.upsertUser({ id: user.id, name: user.name, profile: user.profile });
    await this.hub.add(conn);
    const mine = await this.store.roomsOf(user.id);
    const resumed: Record<string, number> = {};
    const joined: Record<string, number> = {};
    const rooms: Room[] = [];
    for (const { room, member } of mine) {
      joined[room.id] = member.joinSeq;
      const asked = resume[room.id];
      const after = asked === undefined ? room.lastSeq : Math.min(asked, room.lastSeq);
      this.hub.follow(conn, room.id, after, room.lastSeq);
      resumed[room.id] = after;
      rooms.push(room);
    }
    const denied = Object.keys(resume).filter((r) => !(r in resumed));
    if (await this.bus.presence.connect(user.id, conn.id)) this.announce(user.id, rooms.map((r) => r.id), true);
    return { user: { id: user.id, name: user.name, profile: user.profile }, rooms, joined, resumed, denied, heartbeatMs: this.opts.heartbeatMs };
  }

  async detach(user: Identity, conn: Conn): Promise<void> {
    this.hub.remove(conn);
    if (await this.bus.presence.disconnect(user.id, conn.id)) {
      const mine = await this.store.roomsOf(user.id);
      this.announce(user.id, mine.map((r) => r.room.id), false);
    }
  }

  private announce(user: string, rooms: string[], online: boolean): void {
    for (const room of rooms) {
      this.bus.publish(roomTopic(room), { frame: eventText('presence', { room, user, online }) });
    }
  }

  // ---- rooms --------------------------------------------------------------------------------

  private async create(s: Session, a: CommandArgs<'create'>): Promise<Room> {
    const id = a.room ?? randomBytes(12).toString('base64url');
    const { room, messages } = await this.store.createRoom({
      id, kind: a.kind, name: a.name, topic: a.topic ?? '', createdBy: s.user.id,
      members: [{ user: s.user.id, name: s.user.name, role: 'owner' }],
    });
    this.memberAdded(room, messages);
    return room;
  }

  private async join(s: Session, a: CommandArgs<'join'>): Promise<{ room: Room; member: Member }> {
    const room = await this.requireRoom(a.room);
    if (room.kind !== 'channel') throw new ParleyError('forbidden', 'only channels can be joined; groups are by invitation');
    const { member, message } = await this.store.addMember(room.id, s.user.id, s.user.name, 'member', s.user.id);
    this.memberAdded(room, [message]);
    return { room: { ...room, lastSeq: message.seq }, member };
  }

  private async leave(s: Session, a: CommandArgs<'leave'>): Promise<{ room: string }> {
    const room = await this.requireRoom(a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'a direct room cannot be left');
    await this.requireMember(s, room.id);
    const message = await this.store.removeMember(room.id, s.user.id, s.user.name, s.user.id);
    this.memberRemoved(message, 'left');
    return { room: room.id };
  }

  private async rooms(s: Session, a: CommandArgs<'rooms'>): Promise<{ rooms: Room[] }> {
    if (a.scope === 'public') return { rooms: await this.store.publicRooms(500) };
    return { rooms: (await this.store.roomsOf(s.user.id)).map((r) => r.room) };
  }

  private async invite(s: Session, a: CommandArgs<'invite'>): Promise<{ member: Member }> {
    const room = await this.requireRoom(a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be invited to a direct room');
    const me = await this.requireMember(s, room.id);
    if (room.kind === 'group' && me.role === 'member') throw new ParleyError('forbidden', 'only owners and admins invite to a group');
    const user = await this.store.getUser(a.user);
    const { member, message } = await this.store.addMember(room.id, a.user, user?.name ?? a.user, 'member', s.user.id);
    this.memberAdded(room, [message]);
    return { member };
  }

  private async direct(s: Session, a: CommandArgs<'direct'>): Promise<Room> {
    if (a.user === s.user.id) throw new ParleyError('invalid', 'a direct room needs another user');
    const { id, key } = directRoomId(s.user.id, a.user);
    const existing = await this.store.findDirect(key);
    if (existing) return existing;
    const other = await this.store.getUser(a.user);
    try {
      const { room, messages } = await this.store.createRoom({
        id, kind: 'direct', name: '', topic: '', createdBy: s.user.id, directKey: key,
        members: [
          { user: s.user.id, name: s.user.name, role: 'member' },
          { user: a.user, name: other?.name ?? a.user, role: 'member' },
        ],
      });
      this.memberAdded(room, messages);
      return room;
    } catch (err) {
      // Both users opened it at once: the other call won; answer with its room.
      if (err instanceof ParleyError && err.code === 'conflict') {
        const won = await this.store.findDirect(key);
        if (won) return won;
      }
      throw err;
    }
  }

  /** Publishes join messages, then tells each new member's connections to follow the room. */
  private memberAdded(room: Room, joins: Message[]): void {
    for (const m of joins) this.publishMessage(m);
    for (const m of joins) {
      const member: Member = { room: room.id, user: m.user, role: (m.data?.role as Member['role']) ?? 'member', joinedAt: m.ts, joinSeq: m.seq, readSeq: 0 };
      this.bus.publish(userTopic(m.user), {
        frame: eventText('room', { room: room.id, member }),
        control: { op: 'follow', room: room.id, after: m.seq - 1 },
      });
    }
  }

  private memberRemoved(leave: Message, reason: string): void {
    this.publishMessage(leave);
    this.bus.publish(userTopic(leave.user), {
      frame: eventText('room', { room: leave.room, member: null, reason }),
      control: { op: 'unfollow', room: leave.room },
    });
  }

  // ---- messages -------------------------------------------------------------------------------

  private checkText(text: string): void {
    if (text.length > this.opts.textChars) {
      throw new ParleyError('too_large', `text is longer than ${this.opts.textChars} characters`, { limit: this.opts.textChars });
    }
  }

  private async append(s: Session, m: {
    room: string; kind: 'text' | 'edit' | 'delete' | 'reaction'; text?: string; target?: number;
    key?: string; data?: Record<string, unknown>;
  }): Promise<SendResult> {
    const msg = { room: m.room, user: s.user.id, name: s.user.name, kind: m.kind } as Parameters<Store['append']>[0];
    if (m.text !== undefined) msg.text = m.text;
    if (m.target !== undefined) msg.target = m.target;
    if (m.key !== undefined) msg.key = m.key;
    if (m.data !== undefined) {
      if (JSON.stringify(m.data).length > this.opts.textChars) throw new ParleyError('too_large', 'data is too large');
      msg.data = m.data;
    }
    const pending = this.store.append(msg);
    s.admit?.();
    const { message, duplicate } = await pending;
    if (!duplicate) this.publishMessage(message);
    return { seq: message.seq, ts: message.ts, duplicate };
  }

  private publishMessage(m: Message): void {
    this.bus.publish(roomTopic(m.room), { frame: eventText('message', m), seq: m.seq });
  }

  private async history(s: Session, a: CommandArgs<'history'>) {
    await this.readable(s, a.room);
    if (a.before !== undefined && a.after !== undefined) throw new ParleyError('invalid', 'give "before" or "after", not both');
    const limit = a.limit ?? HISTORY_DEFAULT;
    const messages = await this.store.history(a.room, a.after !== undefined ? { after: a.after, limit } : { before: a.before, limit });
    const { first, last } = await this.store.bounds(a.room);
    return { messages, first, last };
  }

  private async resume(s: Session, rooms: Record<string, number>) {
    if (!s.conn) throw new ParleyError('invalid', 'resume needs a live connection');
    const out: Record<string, number> = {};
    const denied: string[] = [];
    for (const [id, seq] of Object.entries(rooms)) {
      const [room, member] = await Promise.all([this.store.getRoom(id), this.store.getMember(id, s.user.id)]);
      if (!room || !member) {
        denied.push(id);
        continue;
      }
      const after = Math.min(seq, room.lastSeq);
      this.hub.follow(s.conn, id, after, room.lastSeq);
      out[id] = after;
    }
    return { rooms: out, denied };
  }

  // ---- permission helpers ------------------------------------------------------------------

  private async requireRoom(id: string): Promise<Room> {
    const room = await this.store.getRoom(id);
    if (!room) throw new ParleyError('not_found', 'room not found');
    return room;
  }

  private async requireMember(s: Session, roomId: string): Promise<Member> {
    const member = await this.store.getMember(roomId, s.user.id);
    if (member) return member;
    await this.requireRoom(roomId);
    throw new ParleyError('forbidden', 'not a member of this room');
  }

  /** Members read their rooms; anyone signed in may read a public channel. */
  private async readable(s: Session, roomId: string): Promise<{ room: Room; member: Member | null }> {
    const room = await this.requireRoom(roomId);
    const member = await this.store.getMember(roomId, s.user.id);
    if (!member && room.kind !== 'channel') throw new ParleyError('forbidden', 'not a member of this room');
    return { room, member };
  }
}
