// The service runs commands for an authenticated user: validation beyond the schema,
// permission checks, hooks, then the store, then the bus, then the domain event (events.ts).
// Every transport calls it through the command runner (runner.ts), so a command gives the
// same answer whichever transport carried it.
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { ALL_TOPIC, roomTopic, userTopic } from '../bus/bus.js';
import type { Identity } from '../auth/jwt.js';
import { ParleyError, toParleyError } from '../errors.js';
import type { Conn, Hub } from '../hub/index.js';
import { eventText } from '../protocol/frames.js';
import { DIRECT_ROOM_PREFIX, SYSTEM_USER, isDirectRoom } from '../protocol/schema.js';
import type {
  AuthResult, Ban, CommandArgs, CommandFrame, CommandName, CommandResults, Member, Message, Room, SendResult,
} from '../protocol/schema.js';
import type { Store } from '../store/store.js';
import { DomainEvents, type Actor, type LeaveReason, type TransportName } from './events.js';
import { Hooks, type HookContext } from './hooks.js';
import { moderatorRole, requireOutrank } from './permissions.js';
import { RichMessages, type Draft, type RichPorts } from './rich.js';

export interface ServiceOptions {
  textChars: number;
  heartbeatMs: number;
  /** Commands a connection may have awaiting their reply (told to clients in the auth reply). */
  maxInFlight: number;
  /** Keep the messages of deleted rooms instead of removing them. */
  keepDeletedRoomHistory?: boolean;
  /** Channels and groups a user may be a member of (default: no cap). */
  roomsPerUser?: number;
  /** Channels and groups a user may have created that still exist (default: no cap). */
  roomsCreatedPerUser?: number;
}

/** Close code for a connection whose user was banned server-wide. */
export const CLOSE_BANNED = 4003;

/**
 * The refusal of a user banned server-wide. Its wire form is `forbidden` with
 * `details.reason: "banned"`; the class lets the runner decide to close the connection
 * without reading the details.
 */
export class ServerBanError extends ParleyError {
  constructor(until: number | null) {
    super('forbidden', 'you are banned from this server', { reason: 'banned', until });
  }
}

/** Who runs a command, and on which connection (absent for connection-less transports). */
export interface Session {
  user: Identity;
  conn?: Conn;
  /** The transport the command came through (for metrics and domain events). */
  via?: TransportName;
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

/** An object keyed by outside input (room ids): no prototype, so no key is inherited. */
const dictionary = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

/** The canonical room id of a direct conversation, the same whoever opens it. */
export function directRoomId(a: string, b: string): { id: string; key: string } {
  const key = [a, b].sort().join('\n');
  return { id: DIRECT_ROOM_PREFIX + createHash('sha256').update(key).digest('base64url').slice(0, 24), key };
}

/** Who a session is, as domain events name it. */
const actor = (s: Session): Actor => (s.via ? { id: s.user.id, name: s.user.name, via: s.via } : { id: s.user.id, name: s.user.name });

export class Service {
  readonly hooks = new Hooks();
  /** What changed, once stored: webhooks, metrics and plugins subscribe here. */
  readonly events: DomainEvents;
  private readonly handlers: Handlers;
  private readonly rich: RichMessages;

  /** Last member lists read per room, so presence answers while the store is down. */
  private readonly knownMembers = new LRUCache<string, string[]>({ max: 10_000 });
  /** Per user, the last room-cap check and insert queued (see underRoomCaps). */
  private readonly roomCapTurns = new Map<string, Promise<void>>();

  private rememberMembers(room: string, users: string[]): void {
    this.knownMembers.set(room, users);
  }

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly hub: Hub,
    private readonly opts: ServiceOptions,
    private readonly log: Logger,
    ports: RichPorts,
  ) {
    this.events = new DomainEvents(log);
    this.rich = new RichMessages(store, ports, bus, this.hooks, log);
    // A node died with this user's last connection: tell its rooms, as a disconnect would.
    // And the other way: a node that was taken for dead registers its connections again.
    bus.presence.onExpired((user) => this.announceChange(user, false));
    bus.presence.onRestored((user) => this.announceChange(user, true));
    this.handlers = {
      create: (s, a) => this.create(s, a),
      join: (s, a) => this.join(s, a),
      leave: (s, a) => this.leave(s, a),
      leaveMany: (s, a) => this.leaveMany(s, a),
      rooms: (s, a) => this.rooms(s, a),
      room: async (s, a) => (await this.readable(s, a.room)).room,
      members: async (s, a) => {
        await this.readable(s, a.room);
        const members = await this.store.members(a.room);
        this.rememberMembers(a.room, members.map((m) => m.user));
        return { members };
      },
      invite: (s, a) => this.invite(s, a),
      direct: (s, a) => this.direct(s, a),
      send: async (s, a) => {
        this.checkText(a.text);
        if (a.text === '' && !a.attachments) throw new ParleyError('invalid', 'text: a message needs a text or attachments', { field: 'text' });
        const draft = await this.rich.draft(s.user, a, async () => (await this.store.getMember(a.room, s.user.id))?.role ?? null);
        return this.append(s, { room: a.room, kind: 'text', text: a.text, key: a.key, data: a.data }, draft);
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
        // Members who block the typist never see it typing, in any room.
        const blockers = await this.store.blockersIn(a.room, s.user.id);
        const frame = eventText('typing', { room: a.room, user: s.user.id, active: a.active ?? true });
        this.bus.publish(roomTopic(a.room), blockers.length > 0 ? { frame, except: blockers } : { frame });
        return {};
      },
      read: async (s, a) => {
        s.admit?.();
        const seq = await this.store.markRead(a.room, s.user.id, a.seq);
        this.bus.publish(roomTopic(a.room), { frame: eventText('read', { room: a.room, user: s.user.id, seq }) });
        return { room: a.room, seq };
      },
      presence: async (s, a) => {
        let users: string[];
        try {
          await this.readable(s, a.room);
          users = (await this.store.members(a.room)).map((m) => m.user);
          this.rememberMembers(a.room, users);
        } catch (err) {
          // The store is down: presence lives in the bus, so answer a member from the last
          // member list this node read.
          const known = this.knownMembers.get(a.room);
          if (!(err instanceof ParleyError && err.code === 'unavailable') || !known?.includes(s.user.id)) throw err;
          users = known;
        }
        return { room: a.room, users: await this.bus.presence.online(users) };
      },
      inbox: async (s) => this.rich.inbox(s.user.id, await this.store.inbox(s.user.id)),
      notifications: async (s, a) => {
        await this.requireMember(s, a.room);
        return this.rich.notificationLevel(s.user, a, isDirectRoom(a.room) ? 'direct' : 'group');
      },
      settings: async (s, a) => {
        if (a.mentionAll === undefined) await this.readable(s, a.room);
        else if ((await this.requireModerator(s, a.room)).room.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no settings');
        return this.rich.settings(a);
      },
      pin: async (s, a) => { await this.requireModerator(s, a.room); return this.rich.pin(s.user, a, true); },
      unpin: async (s, a) => { await this.requireModerator(s, a.room); return this.rich.pin(s.user, a, false); },
      pins: async (s, a) => { await this.readable(s, a.room); return this.rich.pins(s.user, a.room); },
      versions: async (s, a) => { await this.readable(s, a.room); return this.rich.versions(s.user, a); },
      update: (s, a) => this.update(s, a),
      destroy: (s, a) => this.destroy(s, a),
      role: (s, a) => this.role(s, a),
      kick: (s, a) => this.kick(s, a),
      mute: (s, a) => this.mute(s, a),
      ban: (s, a) => this.ban(s, a),
      banMany: async (s, a) => {
        this.requireAdmin(s);
        for (const b of a.bans) if (b.room !== undefined) await this.requireRoom(b.room);
        const bans: Ban[] = [];
        for (const b of a.bans) bans.push((await this.ban(s, b)).ban);
        return { bans };
      },
      unban: async (s, a) => {
        if (a.room === undefined) this.requireAdmin(s);
        else await this.requireModerator(s, a.room);
        const lifted = await this.store.unban(a.room ?? null, a.user);
        if (lifted) this.events.emit('ban.lifted', { room: a.room ?? null, user: a.user, by: actor(s) });
        return { lifted };
      },
      bans: async (s, a) => {
        if (a.room === undefined) this.requireAdmin(s);
        else await this.requireModerator(s, a.room);
        return { bans: await this.store.bans(a.room ?? null, Date.now()) };
      },
      access: (s, a) => this.access(s, a),
      accessList: async (s, a) => {
        await this.requireModerator(s, a.room);
        return { room: a.room, list: a.list, users: await this.store.accessList(a.room, a.list) };
      },
      block: async (s, a) => {
        if (a.user === s.user.id) throw new ParleyError('invalid', 'you cannot block yourself');
        await this.store.setBlock(s.user.id, a.user, true);
        return { user: a.user };
      },
      unblock: async (s, a) => {
        await this.store.setBlock(s.user.id, a.user, false);
        return { user: a.user };
      },
      blocks: async (s) => ({ users: await this.store.blocksOf(s.user.id) }),
      search: (s, a) => this.search(s, a),
      post: (s, a) => this.post(s, a),
      notify: async (s, a) => {
        this.requireAdmin(s);
        const frame = eventText('notice', a.data === undefined ? { ev: a.ev } : { ev: a.ev, data: a.data });
        if (a.all) {
          this.bus.publish(ALL_TOPIC, { frame });
          return { delivered: 'all' as const };
        }
        if (!a.users) throw new ParleyError('invalid', 'give "users" or "all": true');
        for (const u of a.users) this.bus.publish(userTopic(u), { frame });
        return { delivered: 'users' as const };
      },
    };
  }

  /** Runs one validated command frame (not `auth`) for the session. */
  async exec(s: Session, frame: CommandFrame): Promise<unknown> {
    const { id: _id, cmd, ...args } = frame as CommandFrame & Record<string, unknown>;
    if (cmd === 'ping') return { ts: Date.now() };
    if (cmd === 'auth') throw new ParleyError('conflict', 'already authenticated');
    const handler = this.handlers[cmd] as (s: Session, a: unknown) => Promise<unknown>;
    if (!this.hooks.has(cmd)) return handler(s, args);
    const ctx: HookContext = { cmd, user: s.user, args };
    return this.hooks.run(ctx, (a) => handler(s, a), toParleyError,
      (h, e) => this.log.warn({ err: e, hook: h.name }, 'after hook failed'));
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  /**
   * Attaches an authenticated connection: records the user, follows every room it belongs to
   * (replaying after the seqs named in `resume`), and announces it online.
   */
  async attach(user: Identity, conn: Conn, resume: Record<string, number> = {}): Promise<AuthResult> {
    await this.admit(user);
    await this.hub.add(conn);
    try {
      return await this.followAll(user, conn, resume);
    } catch (err) {
      this.hub.remove(conn);
      throw err;
    }
  }

  /**
   * Admits an authenticated identity, on every transport and every authentication: refuses a
   * user banned server-wide (ServerBanError), then records the user's name and profile.
   */
  async admit(user: Identity): Promise<void> {
    await this.checkNotBanned(user.id);
    await this.store.upsertUser({ id: user.id, name: user.name, profile: user.profile });
  }

  /** Refuses users under a server-wide ban (ServerBanError). */
  async checkNotBanned(user: string): Promise<void> {
    const ban = await this.store.activeBan(null, user, Date.now());
    if (ban) throw new ServerBanError(ban.until);
  }

  private async followAll(user: Identity, conn: Conn, resume: Record<string, number>): Promise<AuthResult> {
    const mine = await this.store.roomsOf(user.id);
    // Keyed by room ids, which clients choose: no prototype, so a room named "constructor"
    // or "__proto__" is a room like any other.
    const asked = new Map(Object.entries(resume));
    const resumed = dictionary<number>();
    const joined = dictionary<number>();
    const rooms: Room[] = [];
    for (const { room, member } of mine) {
      joined[room.id] = member.joinSeq;
      const seq = asked.get(room.id);
      const after = seq === undefined ? room.lastSeq : Math.min(seq, room.lastSeq);
      this.hub.follow(conn, room.id, after, room.lastSeq);
      resumed[room.id] = after;
      rooms.push(room);
    }
    const denied = [...asked.keys()].filter((r) => !Object.hasOwn(resumed, r));
    // Presence is best effort: a bus that does not answer must not refuse the connection.
    const first = await this.bus.presence.connect(user.id, conn.id).catch((err: unknown) => {
      this.log.warn({ err, user: user.id }, 'presence not recorded');
      return false;
    });
    if (first) this.announce(user.id, rooms.map((r) => r.id), true);
    return {
      user: { id: user.id, name: user.name, profile: user.profile }, rooms, joined, resumed, denied,
      heartbeatMs: this.opts.heartbeatMs, maxInFlight: this.opts.maxInFlight, limits: { textChars: this.opts.textChars },
    };
  }

  async detach(user: Identity, conn: Conn): Promise<void> {
    this.hub.remove(conn);
    const last = await this.bus.presence.disconnect(user.id, conn.id).catch((err: unknown) => {
      this.log.warn({ err, user: user.id }, 'presence removal deferred');
      return false;
    });
    if (last) {
      const mine = await this.store.roomsOf(user.id);
      this.announce(user.id, mine.map((r) => r.room.id), false);
    }
  }

  /**
   * Announces a presence change that no connect or disconnect of this node made. Another node
   * may announce the opposite change of the same user at about the same time (a frozen node
   * waking while it is reaped): each announces only what is still true once it has the rooms,
   * so the last word is the truth.
   */
  private announceChange(user: string, online: boolean): void {
    void (async () => {
      const mine = await this.store.roomsOf(user);
      if ((await this.bus.presence.online([user])).length > 0 !== online) return;
      this.announce(user, mine.map((r) => r.room.id), online);
    })().catch((err: unknown) => this.log.warn({ err, user, online }, 'could not announce a presence change'));
  }

  private announce(user: string, rooms: string[], online: boolean): void {
    for (const room of rooms) {
      this.bus.publish(roomTopic(room), { frame: eventText('presence', { room, user, online }) });
    }
  }

  /**
   * A member who enters or leaves a room while online changes who is online there: the room
   * is told, as when a member connects or disconnects. Best effort, like all presence.
   */
  private announceMembership(room: string, users: string[], joined: boolean): void {
    this.bus.presence.online(users).then(
      (online) => { for (const user of online) this.announce(user, [room], joined); },
      (err: unknown) => this.log.warn({ err, room }, 'presence of a membership change not announced'),
    );
  }

  // ---- rooms --------------------------------------------------------------------------------

  private async create(s: Session, a: CommandArgs<'create'>): Promise<Room> {
    if (a.room !== undefined && isDirectRoom(a.room)) throw new ParleyError('invalid', `room ids starting with "${DIRECT_ROOM_PREFIX}" are reserved for direct rooms`, { field: 'room' });
    // Administrators (server-side applications) create and join as many rooms as they need.
    const id = a.room ?? randomBytes(12).toString('base64url');
    const write = () => this.store.createRoom({
      id, kind: a.kind, name: a.name, topic: a.topic ?? '', createdBy: s.user.id,
      members: [{ user: s.user.id, name: s.user.name, role: 'owner' }],
    });
    const { room, messages } = s.user.admin ? await write() : await this.underRoomCaps(s.user.id, true, write);
    this.memberAdded(s, room, messages, true);
    return room;
  }

  private async join(s: Session, a: CommandArgs<'join'>): Promise<{ room: Room; member: Member }> {
    const room = await this.requireRoom(a.room);
    if (room.kind !== 'channel') throw new ParleyError('forbidden', 'only channels can be joined; groups are by invitation');
    await this.checkAdmission(room.id, s.user.id, true);
    const write = () => this.store.addMember(room.id, s.user.id, s.user.name, 'member', s.user.id);
    const { member, message } = s.user.admin ? await write() : await this.underRoomCaps(s.user.id, false, write);
    this.memberAdded(s, room, [message]);
    return { room: { ...room, lastSeq: message.seq }, member };
  }

  private async leave(s: Session, a: CommandArgs<'leave'>): Promise<{ room: string }> {
    const room = await this.requireRoom(a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'a direct room cannot be left');
    await this.requireMember(s, room.id);
    const message = await this.store.removeMember(room.id, s.user.id, s.user.name, s.user.id);
    this.memberRemoved(s, message, 'left');
    return { room: room.id };
  }

  /** Leaves every listed room it can, at once; the others are reported with their error code. */
  private async leaveMany(s: Session, a: CommandArgs<'leaveMany'>): Promise<CommandResults['leaveMany']> {
    const outcomes = await Promise.allSettled(a.rooms.map((room) => this.leave(s, { room })));
    const left: string[] = [];
    const skipped: Array<{ room: string; code: string }> = [];
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') left.push(a.rooms[i]!);
      else skipped.push({ room: a.rooms[i]!, code: toParleyError(o.reason).code });
    });
    return { left, skipped };
  }

  /**
   * Refuses to add the user to one more channel or group past `roomsPerUser`, and (when
   * `creating`) to let it create one more past `roomsCreatedPerUser`: one user must not grow
   * another's room list (and its `auth` reply) without bound, nor the server's.
   */
  /**
   * Checks the room caps of `user` and runs `write` (the insert they guard) one at a time per
   * user on this node, so concurrent creates, joins and invites cannot all pass the same check.
   */
  private async underRoomCaps<T>(user: string, creating: boolean, write: () => Promise<T>): Promise<T> {
    const before = this.roomCapTurns.get(user) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => { done = r; });
    const turn = before.then(() => mine);
    this.roomCapTurns.set(user, turn);
    await before;
    try {
      await this.checkRoomCaps(user, creating);
      return await write();
    } finally {
      done();
      if (this.roomCapTurns.get(user) === turn) this.roomCapTurns.delete(user);
    }
  }

  private async checkRoomCaps(user: string, creating: boolean): Promise<void> {
    const { roomsPerUser, roomsCreatedPerUser } = this.opts;
    if (roomsPerUser === undefined && (!creating || roomsCreatedPerUser === undefined)) return;
    const n = await this.store.countRooms(user);
    if (creating && roomsCreatedPerUser !== undefined && n.created >= roomsCreatedPerUser) {
      throw new ParleyError('forbidden', `at most ${roomsCreatedPerUser} rooms created per user; delete one first`, { reason: 'rooms_created', limit: roomsCreatedPerUser });
    }
    if (roomsPerUser !== undefined && n.member >= roomsPerUser) {
      throw new ParleyError('forbidden', `a user may be a member of at most ${roomsPerUser} rooms`, { reason: 'room_limit', limit: roomsPerUser });
    }
  }

  private async rooms(s: Session, a: CommandArgs<'rooms'>): Promise<{ rooms: Room[] }> {
    if (a.scope === 'public') return { rooms: await this.store.publicRooms(500) };
    return { rooms: (await this.store.roomsOf(s.user.id)).map((r) => r.room) };
  }

  private async invite(s: Session, a: CommandArgs<'invite'>): Promise<{ member: Member }> {
    const room = await this.requireRoom(a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be invited to a direct room');
    // Administrators moderate every room as its owner, without being members.
    if (!s.user.admin) {
      const me = await this.requireMember(s, room.id);
      if (room.kind === 'group' && me.role === 'member') throw new ParleyError('forbidden', 'only owners and admins invite to a group');
    }
    await this.checkAdmission(room.id, a.user);
    // A user who blocks another accepts no invitation from it.
    if ((await this.store.blocksOf(a.user)).includes(s.user.id)) {
      throw new ParleyError('forbidden', 'this user does not accept invitations from you', { reason: 'blocked' });
    }
    const user = await this.store.getUser(a.user);
    const { member, message } = await this.underRoomCaps(a.user, false, () => this.store.addMember(room.id, a.user, user?.name ?? a.user, 'member', s.user.id));
    this.memberAdded(s, room, [message]);
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
      this.memberAdded(s, room, messages, true);
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

  /**
   * Publishes join messages, then tells each new member's connections to follow the room.
   * `created`: these are the first members of a new room (one `room.created` event), otherwise
   * each is a `member.joined`.
   */
  private memberAdded(s: Session, room: Room, joins: Message[], created = false): void {
    const by = actor(s);
    for (const m of joins) this.publishMessage(by, m);
    const members: Member[] = [];
    for (const m of joins) {
      const member: Member = { room: room.id, user: m.user, role: (m.data?.role as Member['role']) ?? 'member', joinedAt: m.ts, joinSeq: m.seq, readSeq: 0 };
      members.push(member);
      this.bus.publish(userTopic(m.user), {
        frame: eventText('room', { room: room.id, member }),
        control: { op: 'follow', room: room.id, after: m.seq - 1 },
      });
    }
    this.announceMembership(room.id, joins.map((m) => m.user), true);
    if (created) this.events.emit('room.created', { room, members, by });
    else for (const member of members) this.events.emit('member.joined', { room: room.id, member, by });
  }

  private memberRemoved(s: Session, leave: Message, reason: LeaveReason, note?: string): void {
    const by = actor(s);
    this.publishMessage(by, leave);
    // The removed member's own clients read the reason as they always have: "kicked: spam".
    const told = reason === 'evicted' ? 'access' : note ? `${reason}: ${note}` : reason;
    this.bus.publish(userTopic(leave.user), {
      frame: eventText('room', { room: leave.room, member: null, reason: told }),
      control: { op: 'unfollow', room: leave.room },
    });
    this.announceMembership(leave.room, [leave.user], false);
    this.events.emit('member.left', { room: leave.room, user: leave.user, name: leave.name, reason, ...(note ? { note } : {}), by });
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
  }, draft?: Draft): Promise<SendResult> {
    const msg = { room: m.room, user: s.user.id, name: s.user.name, kind: m.kind } as Parameters<Store['append']>[0];
    // Administrators moderate every room as its owner: they delete without being members.
    if (s.user.admin && m.kind === 'delete') msg.moderator = true;
    if (m.text !== undefined) msg.text = m.text;
    if (m.target !== undefined) msg.target = m.target;
    if (m.key !== undefined) msg.key = m.key;
    if (m.data !== undefined) {
      if (JSON.stringify(m.data).length > this.opts.textChars) throw new ParleyError('too_large', 'data is too large');
      msg.data = m.data;
    }
    if (draft && Object.keys(draft.meta).length > 0) msg.meta = draft.meta;
    if (isDirectRoom(m.room)) {
      const peer = await this.directPeer(m.room, s.user.id);
      if (peer) msg.directPeer = peer;
    }
    const pending = this.store.append(msg);
    s.admit?.();
    const { message, duplicate, hiddenFor } = await pending;
    if (!duplicate) {
      if (Object.keys(s.user.profile).length > 0) message.profile = s.user.profile;
      this.publishMessage(actor(s), message, hiddenFor);
      if (draft) void this.rich.notify(message, draft, async () => (await this.store.members(m.room)).map((x) => x.user), hiddenFor);
    }
    return { seq: message.seq, ts: message.ts, duplicate };
  }

  /**
   * The other member of a direct room, undefined when `me` is not one of its two (members
   * never change, so this is cached). Public: the Chat21 integration reads it too.
   */
  async directPeer(room: string, me: string): Promise<string | undefined> {
    let pair = this.directPairs.get(room);
    if (!pair) {
      const members = await this.store.members(room);
      if (members.length !== 2) return undefined;
      pair = [members[0]!.user, members[1]!.user];
      this.directPairs.set(room, pair);
    }
    return pair[0] === me ? pair[1] : pair[1] === me ? pair[0] : undefined;
  }
  private readonly directPairs = new LRUCache<string, [string, string]>({ max: 100_000 });

  /** Publishes a stored message on its room's topic, then tells the domain event's listeners. */
  private publishMessage(by: Actor, m: Message, hiddenFor?: string): void {
    if (hiddenFor) {
      const placeholder: Message = { room: m.room, seq: m.seq, kind: 'hidden', user: m.user, name: m.name, ts: m.ts };
      this.bus.publish(roomTopic(m.room), { frame: eventText('message', m), seq: m.seq, hiddenFor, alt: eventText('message', placeholder) });
      this.events.emit('message.stored', { message: m, by, hiddenFor });
    } else {
      this.bus.publish(roomTopic(m.room), { frame: eventText('message', m), seq: m.seq });
      this.events.emit('message.stored', { message: m, by });
    }
  }

  private async history(s: Session, a: CommandArgs<'history'>) {
    await this.readable(s, a.room);
    if (a.before !== undefined && a.after !== undefined) throw new ParleyError('invalid', 'give "before" or "after", not both');
    const limit = a.limit ?? HISTORY_DEFAULT;
    const messages = await this.store.history(a.room, a.after !== undefined ? { after: a.after, limit } : { before: a.before, limit }, s.user.id);
    const { first, last } = await this.store.bounds(a.room);
    return { messages, first, last };
  }

  private async resume(s: Session, rooms: Record<string, number>) {
    if (!s.conn) throw new ParleyError('invalid', 'resume needs a live connection');
    const out = dictionary<number>();
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

  /** Members read their rooms; anyone signed in may read a public channel; administrators all. */
  private async readable(s: Session, roomId: string): Promise<{ room: Room; member: Member | null }> {
    const room = await this.requireRoom(roomId);
    const member = await this.store.getMember(roomId, s.user.id);
    if (!member && room.kind !== 'channel' && !s.user.admin) throw new ParleyError('forbidden', 'not a member of this room');
    return { room, member };
  }

  private requireAdmin(s: Session): void {
    if (!s.user.admin) throw new ParleyError('forbidden', 'this needs an administrator token or API key');
  }

  /**
   * Owners and admins of the room moderate it; administrators moderate every room (as owner).
   * Public: integrations (Chat21) check moderation with this, not with a copy.
   */
  async requireModerator(s: Pick<Session, 'user'>, roomId: string): Promise<{ room: Room; role: Member['role'] }> {
    const room = await this.requireRoom(roomId);
    const me = s.user.admin ? null : await this.store.getMember(roomId, s.user.id);
    return { room, role: moderatorRole(s.user, me) };
  }

  /** A moderator may act on members of lower rank only (owners on admins, admins on members). */
  private async requireOutranks(role: Member['role'], roomId: string, target: string): Promise<Member> {
    const t = await this.store.getMember(roomId, target);
    if (!t) throw new ParleyError('not_found', 'not a member of this room');
    requireOutrank(role, t.role);
    return t;
  }

  /**
   * Refuses users the room bans or its access lists keep out. The ban's reason is for the
   * banned user only (`self`), not for a member inviting them.
   */
  private async checkAdmission(roomId: string, user: string, self = false): Promise<void> {
    const ban = await this.store.activeBan(roomId, user, Date.now());
    if (ban) {
      const details = self && ban.reason ? { reason: 'banned', until: ban.until, banReason: ban.reason } : { reason: 'banned', until: ban.until };
      throw new ParleyError('forbidden', self ? 'you are banned from this room' : 'banned from this room', details);
    }
    if (!(await this.store.hasAccess(roomId, user))) throw new ParleyError('forbidden', 'the room\'s access list does not admit this user', { reason: 'access' });
  }

  // ---- moderation ---------------------------------------------------------------------------

  private async update(s: Session, a: CommandArgs<'update'>): Promise<Room> {
    const { room } = await this.requireModerator(s, a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no settings');
    if (a.name === undefined && a.topic === undefined && a.access === undefined && a.retention === undefined) {
      throw new ParleyError('invalid', 'nothing to change');
    }
    const patch: Parameters<Store['updateRoom']>[1] = {};
    if (a.name !== undefined) patch.name = a.name;
    if (a.topic !== undefined) patch.topic = a.topic;
    if (a.access !== undefined) patch.access = a.access;
    if (a.retention?.count !== undefined) patch.retentionCount = a.retention.count;
    if (a.retention?.days !== undefined) patch.retentionDays = a.retention.days;
    const { room: updated, message } = await this.store.updateRoom(room.id, patch, { user: s.user.id, name: s.user.name });
    this.publishMessage(actor(s), message);
    this.events.emit('room.updated', { room: updated, by: actor(s) });
    if (a.access !== undefined) await this.evictWithoutAccess(s, room.id);
    return updated;
  }

  private async destroy(s: Session, a: CommandArgs<'destroy'>): Promise<{ room: string }> {
    const { room, role } = await this.requireModerator(s, a.room);
    if (role !== 'owner') throw new ParleyError('forbidden', 'only the owner can delete a room');
    const members = await this.store.deleteRoom(room.id, this.opts.keepDeletedRoomHistory ?? false);
    for (const user of members) {
      this.bus.publish(userTopic(user), {
        frame: eventText('room', { room: room.id, member: null, reason: 'deleted' }),
        control: { op: 'unfollow', room: room.id },
      });
    }
    this.events.emit('room.deleted', { room: room.id, members, by: actor(s) });
    return { room: room.id };
  }

  private async role(s: Session, a: CommandArgs<'role'>): Promise<{ member: Member }> {
    const { room, role } = await this.requireModerator(s, a.room);
    if (role !== 'owner') throw new ParleyError('forbidden', 'only the owner sets roles');
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no roles');
    if (a.user === s.user.id && a.role !== 'owner') throw new ParleyError('conflict', 'hand the room to another member first');
    const { member, message } = await this.store.setRole(room.id, a.user, a.role, { user: s.user.id, name: s.user.name });
    this.publishMessage(actor(s), message);
    return { member };
  }

  private async kick(s: Session, a: CommandArgs<'kick'>): Promise<{ room: string; user: string }> {
    const { room, role } = await this.requireModerator(s, a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be removed from a direct room');
    await this.requireOutranks(role, room.id, a.user);
    await this.removeMember(s, room.id, a.user, 'kicked', a.reason);
    return { room: room.id, user: a.user };
  }

  private async removeMember(s: Session, room: string, user: string, reason: LeaveReason, note?: string): Promise<void> {
    const u = await this.store.getUser(user);
    const message = await this.store.removeMember(room, user, u?.name ?? user, s.user.id);
    this.memberRemoved(s, message, reason, note);
  }

  private async mute(s: Session, a: CommandArgs<'mute'>): Promise<{ member: Member }> {
    const { room, role } = await this.requireModerator(s, a.room);
    await this.requireOutranks(role, room.id, a.user);
    const until = a.seconds === undefined ? null : Date.now() + a.seconds * 1000;
    return { member: await this.store.setMute(room.id, a.user, until, a.off === true) };
  }

  private async ban(s: Session, a: CommandArgs<'ban'>): Promise<{ ban: Ban }> {
    const until = a.seconds === undefined ? null : Date.now() + a.seconds * 1000;
    if (a.room === undefined) {
      this.requireAdmin(s);
      const ban = await this.store.ban({ room: null, user: a.user, until, reason: a.reason ?? '', by: s.user.id });
      this.bus.publish(userTopic(a.user), {
        frame: eventText('goodbye', { code: 'forbidden', message: 'you are banned from this server' }),
        control: { op: 'close', code: CLOSE_BANNED, reason: 'banned' },
      });
      this.events.emit('ban.added', { ban, by: actor(s) });
      return { ban };
    }
    const { room, role } = await this.requireModerator(s, a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be banned from a direct room');
    const target = await this.store.getMember(room.id, a.user);
    if (target) await this.requireOutranks(role, room.id, a.user);
    const ban = await this.store.ban({ room: room.id, user: a.user, until, reason: a.reason ?? '', by: s.user.id });
    this.events.emit('ban.added', { ban, by: actor(s) });
    if (target) await this.removeMember(s, room.id, a.user, 'banned', a.reason);
    return { ban };
  }

  private async access(s: Session, a: CommandArgs<'access'>) {
    const { room } = await this.requireModerator(s, a.room);
    if (room.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no access lists');
    if (!a.add && !a.remove) throw new ParleyError('invalid', 'give "add" and/or "remove"');
    const users = await this.store.setAccess(room.id, a.list, a.add ?? [], a.remove ?? []);
    const removed = await this.evictWithoutAccess(s, room.id);
    return { room: room.id, list: a.list, users, removed };
  }

  /** Removes, at once and everywhere, the members the room's access rules no longer admit. */
  private async evictWithoutAccess(s: Session, room: string): Promise<string[]> {
    const removed: string[] = [];
    for (const m of await this.store.members(room)) {
      if (m.role !== 'member' || (await this.store.hasAccess(room, m.user))) continue;
      try {
        await this.removeMember(s, room, m.user, 'evicted');
        removed.push(m.user);
      } catch (err) {
        if (!(err instanceof ParleyError && err.code === 'not_found')) throw err;
      }
    }
    return removed;
  }

  // ---- search and server-side API -------------------------------------------------------------

  private async search(s: Session, a: CommandArgs<'search'>) {
    let rooms: string[];
    if (a.room !== undefined) {
      await this.readable(s, a.room);
      rooms = [a.room];
    } else {
      rooms = (await this.store.roomsOf(s.user.id)).map((r) => r.room.id);
    }
    return { messages: await this.store.search(s.user.id, a.query, rooms, a.limit ?? 20) };
  }

  private async post(s: Session, a: CommandArgs<'post'>) {
    this.requireAdmin(s);
    for (const room of a.rooms) await this.requireRoom(room);
    for (const m of a.messages) if ('text' in m) this.checkText(m.text);
    const as = a.as ?? { id: SYSTEM_USER, name: 'System' };
    const pending: Array<Promise<{ message: Message }>> = [];
    for (const room of a.rooms) {
      for (const m of a.messages) {
        pending.push(this.store.append('text' in m
          ? { room, user: as.id, name: as.name ?? as.id, kind: 'text', text: m.text, system: true }
          : { room, user: as.id, name: as.name ?? as.id, kind: 'event', data: m.data === undefined ? { ev: m.ev } : { ev: m.ev, data: m.data }, system: true }));
      }
    }
    s.admit?.();
    const results = await Promise.all(pending);
    for (const r of results) this.publishMessage(actor(s), r.message);
    return { posted: results.map((r) => ({ room: r.message.room, seq: r.message.seq })) };
  }
}
