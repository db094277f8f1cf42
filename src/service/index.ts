// The service runs commands for an authenticated user: hooks, stateless checks, then every
// room-scoped write through the room log (src/log: per-room lanes, rules, group commit), whose
// committed changes it publishes on the bus; reads go to the store. Every transport calls it,
// so a command gives the same answer whichever transport carried it (through the command
// runner, runner.ts); what changed goes out as domain events (events.ts) where it is
// published. The rules themselves (who may do what) are in rules.ts.
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/bus.js';
import { ALL_TOPIC, roomTopic, userTopic } from '../bus/bus.js';
import type { Identity } from '../auth/jwt.js';
import { ParleyError, toParleyError } from '../errors.js';
import { plainName } from '../protocol/validate.js';
import { whileUnavailable, type Conn, type Hub } from '../hub/index.js';
import { backoff } from '../client/backoff.js';
import { eventText } from '../protocol/frames.js';
import { READ_COMMANDS } from '../protocol/reads.js';
import { DIRECT_ROOM_PREFIX, SYSTEM_USER, isDirectRoom, userIdRe } from '../protocol/schema.js';
import type { AuthResult, Ban, CommandArgs, CommandFrame, CommandName, CommandResults, Member, Message, Room, SendResult } from '../protocol/schema.js';
import type { Store } from '../store/store.js';
import { RoomLog, type RoomLogOptions } from '../log/roomlog.js';
import type { AppendResult, By, CommittedEvent, OpOf } from '../log/ops.js';
import { DomainEvents, type Actor, type TransportName } from './events.js';
import { Hooks, type HookContext } from './hooks.js';
import * as rules from './rules.js';
import type { RoomChange } from './rules.js';
import { RichMessages, type Draft, type RichPorts } from './rich.js';
import { TypingGate } from './typing.js';
import { ConnectionCap } from './connections.js';

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
  /** Live connections of one user on this node, all transports together (default 0: no cap). */
  connectionsPerUser?: number;
  /** A user's typing reaches a room at most once per this window (typing.ts; default 2000, 0: every frame). */
  typingIntervalMs?: number;
  /** How the room log keeps room states and reaches other nodes (caps come from above). */
  roomLog?: Omit<RoomLogOptions, 'caps'>;
}

/** Close code for a connection whose user was banned server-wide. */
export const CLOSE_BANNED = 4003;
export { ServerBanError } from './rules.js';

/** Who runs a command, and on which connection (absent for connection-less transports). */
export interface Session {
  user: Identity;
  conn?: Conn;
  /** The transport the command came through (for metrics and domain events). */
  via?: TransportName;
  /**
   * Called once the command's writes are queued in order (a read calls it as it starts). The
   * transport waits for this (or for the command to end) before starting the next command of
   * the same connection, so sends from one connection are stored in the order they were sent.
   */
  admit?: () => void;
  /**
   * The command's frame waited in this node's socket buffers while the node was stopped
   * (StallWatch): it was sent at its client's pace, not in the burst in which it is read.
   */
  backlog?: boolean;
}

type Handler<N extends CommandName> = (s: Session, a: CommandArgs<N>) => Promise<CommandResults[N]>;
type Handlers = { [N in Exclude<CommandName, 'auth' | 'ping'>]: Handler<N> };

const HISTORY_DEFAULT = 50;
/** Longest a typist checked lately waits for the store before going on from that check. */
const TYPING_STORE_WAIT_MS = 1000;
/** How long a room whose commit answer was lost waits for the store before it is compared with it. */
const RECHECK_WITHIN_MS = 10 * 60_000;
/** How long a user found offline by a repair after a Redis outage waits before it is announced so. */
const REPAIR_GRACE_MS = 2500;
/** The second comparison after the first (see recheckOnceStored). */
const RECHECK_AGAIN_MS = 2000;

/** An object keyed by outside input (room ids): no prototype, so no key is inherited. */
const dictionary = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

/** The canonical room id of a direct conversation, the same whoever opens it. */
export function directRoomId(a: string, b: string): { id: string; key: string } {
  const key = [a, b].sort().join('\n');
  return { id: DIRECT_ROOM_PREFIX + createHash('sha256').update(key).digest('base64url').slice(0, 24), key };
}

/** Who a session is, as domain events name it. */
const actorOf = (by: By): Actor => (by.via ? { id: by.id, name: by.name, via: by.via } : { id: by.id, name: by.name });

export class Service {
  readonly hooks = new Hooks();
  /** What changed, once stored: webhooks, metrics and plugins subscribe here. */
  readonly events: DomainEvents;
  /** Every room-scoped write goes through it (on the room's owning node). */
  readonly roomLog: RoomLog;
  private readonly handlers: Handlers;
  private readonly rich: RichMessages;
  private readonly typingGate: TypingGate;
  /** Each authenticated connection of every transport holds a slot of its user here. */
  readonly connections: ConnectionCap;

  /** Last member lists read per room, so presence answers while the store is down. */
  private readonly knownMembers = new LRUCache<string, string[]>({ max: 10_000 });
  /**
   * Per room and typist checked lately (a member then), the members who block it: typing goes
   * on from these while the store is down, a minute at most after the last check.
   */
  private readonly typists = new LRUCache<string, string[]>({ max: 10_000, ttl: 60_000 });
  /** Rooms to compare with the store once it answers again (see recheckOnceStored). */
  private readonly rechecking = new Set<string>();
  private closing = false;
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
    const caps: rules.RoomCaps = {};
    if (opts.roomsPerUser !== undefined) caps.roomsPerUser = opts.roomsPerUser;
    if (opts.roomsCreatedPerUser !== undefined) caps.roomsCreatedPerUser = opts.roomsCreatedPerUser;
    this.roomLog = new RoomLog(store, { ...opts.roomLog, caps });
    this.events = new DomainEvents(log);
    this.roomLog.onCommitted((events) => this.publishEvents(events));
    this.roomLog.onUncertain((rooms) => {
      for (const room of rooms) this.recheckOnceStored(room);
    });
    // A message committed by its room's owner reaches this node's connections at once, also
    // when the bus between the nodes is down (the hub drops the bus's copy as already seen).
    this.roomLog.onRelayed((room, op, result) => {
      if (op.op !== 'append') return;
      const r = result as AppendResult;
      if (!r.duplicate) this.bus.deliverLocal(roomTopic(room), roomFrame(r.message, r.hiddenFor));
    });
    this.rich = new RichMessages(store, ports, bus, this.hooks, log);
    this.connections = new ConnectionCap(opts.connectionsPerUser ?? 0);
    // A state merged within a window goes out when it ends, if the user is still a member.
    this.typingGate = new TypingGate(opts.typingIntervalMs ?? 2000, (user, room, active) => {
      void this.typingBlockers(user, room)
        .then((blockers) => this.publishTyping(user, room, active, blockers))
        .catch((err: unknown) => {
          // A user who left meanwhile is simply not forwarded.
          const left = err instanceof ParleyError && (err.code === 'forbidden' || err.code === 'not_found');
          if (!left) this.log.warn({ err, user, room }, 'typing not forwarded');
        });
    });
    // A node died with this user's last connection: tell its rooms, as a disconnect would.
    // And the other way: a node that was taken for dead registers its connections again.
    // After a Redis outage each node registers its own connections again, in no fixed order: a
    // user who moved to another node meanwhile would be announced offline by one node and
    // online by the other a moment later. An offline found by that repair is checked
    // REPAIR_GRACE_MS later.
    bus.presence.onExpired((user, why) => {
      if (why === 'reaped') return this.announceChange(user, false);
      setTimeout(() => {
        if (!this.closing) this.announceChange(user, false);
      }, REPAIR_GRACE_MS).unref();
    });
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
        this.rememberMembers(
          a.room,
          members.map((m) => m.user),
        );
        return { members };
      },
      invite: (s, a) => this.invite(s, a),
      direct: (s, a) => this.direct(s, a),
      send: async (s, a) => {
        rules.checkText(a.text, this.opts.textChars);
        if (a.text === '' && !a.attachments) throw new ParleyError('invalid', 'text: a message needs a text or attachments', { field: 'text' });
        if (a.alsoToRoom !== undefined && a.thread === undefined) throw new ParleyError('invalid', 'alsoToRoom: only with "thread"', { field: 'alsoToRoom' });
        const draft = await this.rich.draft(s.user, a, async () => (await this.store.getMember(a.room, s.user.id))?.role ?? null);
        return this.append(s, { room: a.room, kind: 'text', text: a.text, key: a.key, data: a.data, thread: a.thread, alsoToRoom: a.alsoToRoom }, draft);
      },
      edit: async (s, a) => {
        rules.checkText(a.text, this.opts.textChars);
        const draft = await this.rich.editDraft(s.user, a, async () => (await this.store.getMember(a.room, s.user.id))?.role ?? null);
        return this.append(s, { room: a.room, kind: 'edit', text: a.text, target: a.target, key: a.key }, draft);
      },
      delete: (s, a) => this.append(s, { room: a.room, kind: 'delete', target: a.target, key: a.key }),
      react: (s, a) =>
        this.append(s, {
          room: a.room,
          kind: 'reaction',
          target: a.target,
          key: a.key,
          data: a.remove ? { emoji: rules.reactionEmoji(a.emoji), remove: true } : { emoji: rules.reactionEmoji(a.emoji) },
        }),
      history: (s, a) => this.history(s, a),
      message: async (s, a) => {
        await this.readable(s, a.room);
        // Any message of the room by its seq: one of the main timeline or one kept to its thread.
        const m = await this.store.getMessage(a.room, a.seq, s.user.id);
        if (!m) throw new ParleyError('not_found', 'no message with this seq in this room', { field: 'seq' });
        return m;
      },
      resume: (s, a) => this.resume(s, a.rooms),
      typing: async (s, a) => {
        const blockers = await this.typingBlockers(s.user.id, a.room);
        const active = a.active ?? true;
        if (this.typingGate.offer(s.user.id, a.room, active)) this.publishTyping(s.user.id, a.room, active, blockers);
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
      pin: async (s, a) => {
        await this.requireModerator(s, a.room);
        return this.rich.pin(s.user, a, true);
      },
      unpin: async (s, a) => {
        await this.requireModerator(s, a.room);
        return this.rich.pin(s.user, a, false);
      },
      pins: async (s, a) => {
        await this.readable(s, a.room);
        return this.rich.pins(s.user, a.room);
      },
      versions: async (s, a) => {
        await this.readable(s, a.room);
        return this.rich.versions(s.user, a);
      },
      update: (s, a) => this.update(s, a),
      destroy: (s, a) => this.destroy(s, a),
      role: (s, a) => this.role(s, a),
      kick: (s, a) => this.kick(s, a),
      mute: (s, a) => this.mute(s, a),
      ban: (s, a) => this.ban(s, a),
      banMany: async (s, a) => {
        rules.requireAdmin(s.user.admin);
        for (const b of a.bans) if (b.room !== undefined) await this.requireRoom(b.room);
        const bans: Ban[] = [];
        for (const b of a.bans) bans.push((await this.ban(s, b)).ban);
        return { bans };
      },
      unban: async (s, a) => {
        if (a.room !== undefined) return this.roomLog.submit<'unban'>(a.room, { op: 'unban', by: this.by(s), user: a.user });
        rules.requireAdmin(s.user.admin);
        const lifted = await this.store.unbanFromServer(a.user);
        if (lifted) this.events.emit('ban.lifted', { room: null, user: a.user, by: actorOf(this.by(s)) });
        return { lifted };
      },
      bans: async (s, a) => {
        if (a.room === undefined) rules.requireAdmin(s.user.admin);
        else await this.requireModerator(s, a.room);
        return { bans: await this.store.bans(a.room ?? null, Date.now()) };
      },
      access: (s, a) => this.access(s, a),
      accessList: async (s, a) => {
        await this.requireModerator(s, a.room);
        return { room: a.room, list: a.list, users: await this.store.accessList(a.room, a.list) };
      },
      block: async (s, a) => this.block(s, a.user, true),
      unblock: async (s, a) => this.block(s, a.user, false),
      blocks: async (s) => ({ users: await this.store.blocksOf(s.user.id) }),
      search: (s, a) => this.search(s, a),
      post: (s, a) => this.post(s, a),
      notify: async (s, a) => {
        rules.requireAdmin(s.user.admin);
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
    // A read changes nothing its connection's later commands could depend on: it lets them
    // start at once instead of holding them until it ends (a slow store would otherwise stack
    // one timeout per read queued ahead of them).
    if (READ_COMMANDS.has(cmd)) s.admit?.();
    if (!this.hooks.has(cmd)) return handler(s, args);
    const ctx: HookContext = s.backlog ? { cmd, user: s.user, args, backlog: true } : { cmd, user: s.user, args };
    return this.hooks.run(
      ctx,
      (a) => handler(s, a),
      toParleyError,
      (h, e) => this.log.warn({ err: e, hook: h.name }, 'after hook failed'),
    );
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
    const now = Date.now();
    rules.checkNotBanned(await this.store.activeBan(null, user, now), now);
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
    if (first)
      this.announce(
        user.id,
        rooms.map((r) => r.id),
        true,
      );
    return {
      user: { id: user.id, name: user.name, profile: user.profile },
      rooms,
      joined,
      resumed,
      denied,
      heartbeatMs: this.opts.heartbeatMs,
      maxInFlight: this.opts.maxInFlight,
      limits: { textChars: this.opts.textChars },
    };
  }

  /**
   * A connection closed. `lingerMs`: its presence stays that long first (a client asked to
   * reconnect elsewhere is back on another node by then, and its users see no leave and join).
   */
  async detach(user: Identity, conn: Conn, lingerMs = 0): Promise<void> {
    this.hub.remove(conn);
    if (lingerMs > 0) await new Promise((r) => setTimeout(r, lingerMs).unref());
    const last = await this.bus.presence.disconnect(user.id, conn.id).catch((err: unknown) => {
      this.log.warn({ err, user: user.id }, 'presence removal deferred');
      return false;
    });
    if (last) await this.announceIfStill(user.id, false);
  }

  /**
   * Announces a presence change that no connect or disconnect of this node made. Another node
   * may announce the opposite change of the same user at about the same time (a frozen node
   * waking while it is reaped): each announces only what is still true once it has the rooms,
   * so the last word is the truth.
   */
  private announceChange(user: string, online: boolean): void {
    this.announceIfStill(user, online).catch((err: unknown) => this.log.warn({ err, user, online }, 'could not announce a presence change'));
  }

  /**
   * Announces a user online or offline in its rooms if that is still true once the rooms are
   * read: a user whose last connection is detached while it connects again (here or on
   * another node) has its online announced by that connection, and must not be announced
   * offline after it.
   */
  private async announceIfStill(user: string, online: boolean): Promise<void> {
    // A node waking from a freeze finds its database sessions ended: read again a moment later.
    const mine = await whileUnavailable(() => this.store.roomsOf(user));
    if ((await this.bus.presence.online([user])).length > 0 !== online) return;
    this.announce(
      user,
      mine.map((r) => r.room.id),
      online,
    );
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
      (online) => {
        for (const user of online) this.announce(user, [room], joined);
      },
      (err: unknown) => this.log.warn({ err, room }, 'presence of a membership change not announced'),
    );
  }

  // ---- rooms --------------------------------------------------------------------------------

  /** Who runs a command, as the room log records it with its operations. */
  private by(s: Session): By {
    const { id, name, admin, profile } = s.user;
    const by: By = Object.keys(profile).length > 0 ? { id, name, admin, profile } : { id, name, admin };
    if (s.via) by.via = s.via;
    return by;
  }

  private async create(s: Session, a: CommandArgs<'create'>): Promise<Room> {
    rules.checkRoomId(a.room);
    const name = shownName(a.name);
    const id = a.room ?? randomBytes(12).toString('base64url');
    const write = () =>
      this.roomLog.submit<'create'>(id, {
        op: 'create',
        by: this.by(s),
        kind: a.kind,
        name,
        topic: plainName(a.topic ?? ''),
        createdBy: s.user.id,
        members: [{ user: s.user.id, name: s.user.name, role: 'owner' }],
      });
    // Administrators (server-side applications) create and join as many rooms as they need.
    const { room } = s.user.admin ? await write() : await this.underRoomCaps(s.user.id, write);
    return room;
  }

  private async join(s: Session, a: CommandArgs<'join'>): Promise<{ room: Room; member: Member }> {
    const write = () => this.roomLog.submit<'join'>(a.room, { op: 'join', by: this.by(s) });
    const { room, member } = s.user.admin ? await write() : await this.underRoomCaps(s.user.id, write);
    return { room, member };
  }

  private async leave(s: Session, a: CommandArgs<'leave'>): Promise<{ room: string }> {
    const { room } = await this.roomLog.submit<'leave'>(a.room, { op: 'leave', by: this.by(s) });
    return { room };
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
   * Runs `write` (a create, join or invite, whose room log checks the user's room caps with
   * the rules before it commits) one at a time per user on this node: each reads the counts
   * only after the previous one committed, so concurrent creates, joins and invites on
   * different rooms, which run on different lanes, cannot all pass the same check.
   */
  private async underRoomCaps<T>(user: string, write: () => Promise<T>): Promise<T> {
    if (this.opts.roomsPerUser === undefined && this.opts.roomsCreatedPerUser === undefined) return write();
    const before = this.roomCapTurns.get(user) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => {
      done = r;
    });
    const turn = before.then(() => mine);
    this.roomCapTurns.set(user, turn);
    await before;
    try {
      return await write();
    } finally {
      done();
      if (this.roomCapTurns.get(user) === turn) this.roomCapTurns.delete(user);
    }
  }

  private async rooms(s: Session, a: CommandArgs<'rooms'>): Promise<{ rooms: Room[] }> {
    if (a.scope === 'public') return { rooms: await this.store.publicRooms(500) };
    return { rooms: (await this.store.roomsOf(s.user.id)).map((r) => r.room) };
  }

  private async invite(s: Session, a: CommandArgs<'invite'>): Promise<{ member: Member }> {
    rules.checkPeer(a.user);
    const { member } = await this.underRoomCaps(a.user, () => this.roomLog.submit<'invite'>(a.room, { op: 'invite', by: this.by(s), user: a.user }));
    return { member };
  }

  private async direct(s: Session, a: CommandArgs<'direct'>): Promise<Room> {
    if (a.user === s.user.id) throw new ParleyError('invalid', 'a direct room needs another user');
    rules.checkPeer(a.user);
    const { id, key } = directRoomId(s.user.id, a.user);
    const existing = await this.store.findDirect(key);
    if (existing) return existing;
    const other = await this.store.getUser(a.user);
    try {
      const { room } = await this.roomLog.submit<'create'>(id, {
        op: 'create',
        by: this.by(s),
        kind: 'direct',
        name: '',
        topic: '',
        createdBy: s.user.id,
        directKey: key,
        members: [
          { user: s.user.id, name: s.user.name, role: 'member' },
          { user: a.user, name: other?.name ?? a.user, role: 'member' },
        ],
      });
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
   * Tells the rest of the server what a committed batch changed, in seq order: messages on
   * their room's topic; a new member's connections follow the room from its join message, a
   * removed member's unfollow it after seeing its leave; then the domain event of each.
   */
  private publishEvents(events: CommittedEvent[]): void {
    for (const e of events) {
      const by = actorOf(e.by);
      switch (e.type) {
        case 'message.stored':
          this.publishMessage(by, e.message, e.hiddenFor ?? undefined);
          break;
        case 'member.joined':
          this.publishMessage(by, e.message);
          this.bus.publish(userTopic(e.member.user), {
            frame: eventText('room', { room: e.room.id, member: e.member }),
            control: { op: 'follow', room: e.room.id, after: e.message.seq - 1 },
          });
          this.announceMembership(e.room.id, [e.member.user], true);
          // The first members of a new room are told as one room.created (below).
          if (!e.created) this.events.emit('member.joined', { room: e.room.id, member: e.member, by });
          break;
        case 'room.created':
          this.events.emit('room.created', { room: e.room, members: e.members, by });
          break;
        case 'member.left': {
          this.publishMessage(by, e.message);
          // The removed member's own clients read the reason as they always have: "kicked: spam".
          const told = e.reason === 'evicted' ? 'access' : e.note ? `${e.reason}: ${e.note}` : e.reason;
          this.bus.publish(userTopic(e.user), {
            frame: eventText('room', { room: e.room, member: null, reason: told }),
            // The user's topic may overtake the room's: its hubs deliver the leave first.
            control: { op: 'unfollow', room: e.room, seq: e.message.seq },
          });
          this.announceMembership(e.room, [e.user], false);
          this.events.emit('member.left', { room: e.room, user: e.user, name: e.message.name, reason: e.reason, ...(e.note ? { note: e.note } : {}), by });
          break;
        }
        case 'room.updated':
          this.events.emit('room.updated', { room: e.room, by });
          break;
        case 'room.deleted':
          for (const user of e.members) {
            this.bus.publish(userTopic(user), {
              frame: eventText('room', { room: e.room, member: null, reason: 'deleted' }),
              control: { op: 'unfollow', room: e.room },
            });
          }
          this.events.emit('room.deleted', { room: e.room, members: e.members, by });
          break;
        case 'ban.added':
          this.events.emit('ban.added', { ban: e.ban, by });
          break;
        case 'ban.lifted':
          this.events.emit('ban.lifted', { room: e.room, user: e.user, by });
          break;
        case 'thread.updated':
          // After the reply itself (same batch, in order): members update the root's summary.
          this.bus.publish(roomTopic(e.room), { frame: eventText('thread', { room: e.room, seq: e.root, summary: e.summary }) });
          this.events.emit('thread.updated', { room: e.room, root: e.root, reply: e.reply, summary: e.summary, by });
          break;
      }
    }
  }

  // ---- messages -------------------------------------------------------------------------------

  private async append(
    s: Session,
    m: {
      room: string;
      kind: 'text' | 'edit' | 'delete' | 'reaction';
      text?: string;
      target?: number;
      key?: string;
      data?: Record<string, unknown>;
      thread?: number;
      alsoToRoom?: boolean;
    },
    draft?: Draft,
  ): Promise<SendResult> {
    if (m.text !== undefined) rules.checkText(m.text, this.opts.textChars);
    if (m.data !== undefined) rules.checkData(m.data, this.opts.textChars);
    const op: OpOf<'append'> = { op: 'append', by: this.by(s), kind: m.kind };
    if (m.text !== undefined) op.text = m.text;
    if (m.target !== undefined) op.target = m.target;
    if (m.key !== undefined) op.key = m.key;
    if (m.data !== undefined) op.data = m.data;
    if (m.thread !== undefined) op.thread = m.thread;
    if (m.alsoToRoom) op.alsoToRoom = true;
    if (draft && Object.keys(draft.meta).length > 0) op.meta = draft.meta;
    // Queued on the room's lane now, so the connection's next command may start.
    const pending = this.roomLog.submit<'append'>(m.room, op);
    s.admit?.();
    const { message, duplicate, hiddenFor } = await pending;
    // Published when committed (publishEvents); the notifications follow it.
    if (!duplicate && draft) void this.rich.notify(message, draft, async () => (await this.store.members(m.room)).map((x) => x.user), hiddenFor);
    return { seq: message.seq, ts: message.ts, duplicate };
  }

  /** Publishes a stored message on its room's topic, then tells the domain event's listeners. */
  private publishMessage(by: Actor, m: Message, hiddenFor?: string): void {
    this.bus.publish(roomTopic(m.room), roomFrame(m, hiddenFor));
    this.events.emit('message.stored', hiddenFor ? { message: m, by, hiddenFor } : { message: m, by });
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
    return rules.directPeer(pair, me) ?? undefined;
  }
  private readonly directPairs = new LRUCache<string, [string, string]>({ max: 100_000 });

  private async history(s: Session, a: CommandArgs<'history'>) {
    await this.readable(s, a.room);
    if (a.before !== undefined && a.after !== undefined) throw new ParleyError('invalid', 'give "before" or "after", not both');
    const limit = a.limit ?? HISTORY_DEFAULT;
    const q = a.after !== undefined ? { after: a.after, limit } : { before: a.before, limit };
    if (a.thread !== undefined) {
      const root = await this.store.getMessage(a.room, a.thread, s.user.id);
      if (!root || root.kind !== 'text' || root.thread !== undefined) {
        throw new ParleyError('not_found', 'thread: no thread root with this seq in this room', { field: 'thread' });
      }
      const [messages, { first, last }] = await Promise.all([this.store.history(a.room, { ...q, thread: a.thread }, s.user.id), this.store.bounds(a.room)]);
      return { messages, first, last, root };
    }
    // The main timeline: thread replies not also sent to the room are read with their thread.
    const messages = await this.store.history(a.room, { ...q, main: true }, s.user.id);
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

  // ---- reads: who may see what (the rules are in rules.ts) ------------------------------------

  private async requireRoom(id: string): Promise<Room> {
    return rules.requireRoom(await this.store.getRoom(id));
  }

  /**
   * Checks that the typist is a member and reads who blocks it. While the store is down, a
   * typist checked within the last minute goes on with what was read then (typing indicators
   * need no write); one not checked lately gets `unavailable`. A store slow to answer (frozen,
   * overloaded) holds such a typist up for TYPING_STORE_WAIT_MS at most: it goes on from what
   * was read then, and the check, once answered, refreshes it.
   */
  private async typingBlockers(user: string, room: string): Promise<string[]> {
    const key = `${room}\n${user}`;
    const check = this.checkTypist(user, room, key);
    const known = this.typists.get(key);
    if (!known) return check;
    // Answered later, its outcome only refreshes (or drops) the cached entry.
    check.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), TYPING_STORE_WAIT_MS);
    });
    try {
      return (await Promise.race([check, slow])) ?? known;
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkTypist(user: string, room: string, key: string): Promise<string[]> {
    try {
      if (!(await this.store.getMember(room, user))) {
        await this.requireRoom(room);
        rules.requireMember(null);
      }
      const blockers = await this.store.blockersIn(room, user);
      this.typists.set(key, blockers);
      return blockers;
    } catch (err) {
      const known = this.typists.get(key);
      if (err instanceof ParleyError && err.code === 'unavailable' && known) return known;
      if (err instanceof ParleyError && (err.code === 'forbidden' || err.code === 'not_found')) this.typists.delete(key);
      throw err;
    }
  }

  private publishTyping(user: string, room: string, active: boolean, blockers: string[]): void {
    // Members who block the typist never see it typing, in any room.
    const frame = eventText('typing', { room, user, active });
    this.bus.publish(roomTopic(room), blockers.length > 0 ? { frame, except: blockers } : { frame });
  }

  private async requireMember(s: Session, roomId: string): Promise<Member> {
    const member = await this.store.getMember(roomId, s.user.id);
    if (member) return member;
    await this.requireRoom(roomId);
    return rules.requireMember(null);
  }

  /** Members read their rooms; anyone signed in may read a public channel; administrators all. */
  private async readable(s: Session, roomId: string): Promise<{ room: Room; member: Member | null }> {
    const room = await this.requireRoom(roomId);
    const member = await this.store.getMember(roomId, s.user.id);
    rules.checkReadable(room.kind, member, s.user.admin);
    return { room, member };
  }

  /**
   * Owners and admins of the room moderate it; administrators moderate every room (as owner).
   * Public: integrations (Chat21) check moderation with this, not with a copy.
   */
  async requireModerator(s: Pick<Session, 'user'>, roomId: string): Promise<{ room: Room; role: Member['role'] }> {
    const room = await this.requireRoom(roomId);
    const role = rules.requireModerator(s.user, s.user.admin ? null : await this.store.getMember(roomId, s.user.id));
    return { room, role };
  }

  /**
   * Refuses a change of many members whole, before its first step, when the rules refuse any
   * of its steps: a banned, blocking, capped or unlisted user to add, a member of higher rank
   * to remove. The room's owner decides it in the room's lane and writes nothing; the steps
   * then run as invite and kick commands, so hooks see each of them. Public: integrations
   * (Chat21's member lists) check with this.
   */
  async checkMembers(s: Session, roomId: string, add: string[], remove: string[]): Promise<void> {
    const bad = [...add, ...remove].find((u) => !userIdRe.test(u));
    if (bad !== undefined) throw new ParleyError('invalid', `not a user id: ${JSON.stringify(bad.slice(0, 140))}`, { field: 'members' });
    if (add.includes(SYSTEM_USER)) throw new ParleyError('invalid', `"${SYSTEM_USER}" is the server's own id, not a user`, { field: 'members' });
    await this.roomLog.submit<'admits'>(roomId, { op: 'admits', by: this.by(s), add: [...new Set(add)], remove: [...new Set(remove)] });
  }

  // ---- moderation ---------------------------------------------------------------------------

  private async update(s: Session, a: CommandArgs<'update'>): Promise<Room> {
    const change: RoomChange = {};
    if (a.name !== undefined) change.name = shownName(a.name);
    if (a.topic !== undefined) change.topic = plainName(a.topic);
    if (a.access !== undefined) change.access = a.access;
    if (a.retention !== undefined) {
      change.retention = {};
      if (a.retention.count !== undefined) change.retention.count = a.retention.count;
      if (a.retention.days !== undefined) change.retention.days = a.retention.days;
    }
    return (await this.roomLog.submit<'update'>(a.room, { op: 'update', by: this.by(s), change })).room;
  }

  private async destroy(s: Session, a: CommandArgs<'destroy'>): Promise<{ room: string }> {
    const { room } = await this.roomLog.submit<'destroy'>(a.room, { op: 'destroy', by: this.by(s), keepHistory: this.opts.keepDeletedRoomHistory ?? false });
    return { room };
  }

  private async role(s: Session, a: CommandArgs<'role'>): Promise<{ member: Member }> {
    const { member } = await this.roomLog.submit<'role'>(a.room, { op: 'role', by: this.by(s), user: a.user, role: a.role });
    return { member };
  }

  private async kick(s: Session, a: CommandArgs<'kick'>): Promise<{ room: string; user: string }> {
    const op: OpOf<'kick'> = { op: 'kick', by: this.by(s), user: a.user };
    if (a.reason !== undefined) op.reason = a.reason;
    const { room, user } = await this.roomLog.submit<'kick'>(a.room, op);
    return { room, user };
  }

  private mute(s: Session, a: CommandArgs<'mute'>): Promise<{ member: Member }> {
    const until = a.seconds === undefined ? null : Date.now() + a.seconds * 1000;
    return this.roomLog.submit<'mute'>(a.room, { op: 'mute', by: this.by(s), user: a.user, until, off: a.off === true });
  }

  private async ban(s: Session, a: CommandArgs<'ban'>): Promise<{ ban: Ban }> {
    const until = a.seconds === undefined ? null : Date.now() + a.seconds * 1000;
    if (a.room === undefined) {
      rules.requireAdmin(s.user.admin);
      const ban = await this.store.banFromServer({ user: a.user, until, reason: a.reason ?? '', by: s.user.id });
      this.bus.publish(userTopic(a.user), {
        frame: eventText('goodbye', { code: 'forbidden', message: 'you are banned from this server' }),
        control: { op: 'close', code: CLOSE_BANNED, reason: 'banned' },
      });
      this.events.emit('ban.added', { ban, by: actorOf(this.by(s)) });
      return { ban };
    }
    return this.roomLog.submit<'ban'>(a.room, { op: 'ban', by: this.by(s), user: a.user, until, reason: a.reason ?? '' });
  }

  private access(s: Session, a: CommandArgs<'access'>) {
    const op: OpOf<'access'> = { op: 'access', by: this.by(s), list: a.list };
    if (a.add !== undefined) op.add = a.add;
    if (a.remove !== undefined) op.remove = a.remove;
    return this.roomLog.submit<'access'>(a.room, op);
  }

  /** Blocks belong to the direct room of the pair, whether it exists or not. */
  private block(s: Session, user: string, on: boolean): Promise<{ user: string }> {
    if (user === s.user.id) throw new ParleyError('invalid', 'you cannot block yourself');
    return this.roomLog.submit<'block'>(directRoomId(s.user.id, user).id, { op: 'block', by: this.by(s), user, on });
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
    rules.requireAdmin(s.user.admin);
    for (const room of a.rooms) await this.requireRoom(room);
    for (const m of a.messages) if ('text' in m) rules.checkText(m.text, this.opts.textChars);
    const as = a.as ?? { id: SYSTEM_USER, name: 'System' };
    const by: By = { id: as.id, name: as.name ?? as.id, admin: true };
    if (s.via) by.via = s.via;
    const pending: Array<Promise<{ message: Message }>> = [];
    for (const room of a.rooms) {
      a.messages.forEach((m, i) => {
        const op: OpOf<'append'> =
          'text' in m
            ? { op: 'append', by, kind: 'text', text: m.text, system: true }
            : { op: 'append', by, kind: 'event', data: m.data === undefined ? { ev: m.ev } : { ev: m.ev, data: m.data }, system: true };
        // A post answered with its outcome unknown is sent again with its key: stored once.
        if (a.key !== undefined) op.key = `${a.key}.${i}`;
        pending.push(this.roomLog.submit<'append'>(room, op));
      });
    }
    s.admit?.();
    const results = await Promise.all(pending);
    return { posted: results.map((r) => ({ room: r.message.room, seq: r.message.seq })) };
  }

  /**
   * A commit of the room went out and its answer did not come: if it was stored, its messages
   * were never published, and its members would see them only with the room's next message.
   * Once the store answers again, every node compares the room's followers with it (those
   * behind catch up from the store, as after a bus outage), and once more RECHECK_AGAIN_MS
   * later (a database waking from a freeze may answer the read before it commits what it had
   * been sent). Tried with Parley's backoff (250 ms doubling to 5 s) for RECHECK_WITHIN_MS at
   * most; a store away longer leaves it to the next message or reconnect.
   */
  private recheckOnceStored(room: string): void {
    if (this.rechecking.has(room) || this.closing) return;
    this.rechecking.add(room);
    const deadline = Date.now() + RECHECK_WITHIN_MS;
    const attempt = (n: number): void => {
      this.store.bounds(room).then(
        () => {
          this.rechecking.delete(room);
          const recheck = () => this.bus.publish(roomTopic(room), { frame: '', control: { op: 'recheck' } });
          recheck();
          setTimeout(() => {
            if (!this.closing) recheck();
          }, RECHECK_AGAIN_MS).unref();
        },
        () => {
          const wait = backoff(n, 250, 5000);
          if (this.closing || Date.now() + wait > deadline) {
            this.rechecking.delete(room);
            return;
          }
          setTimeout(() => attempt(n + 1), wait).unref();
        },
      );
    };
    attempt(1);
  }

  /** Settles the writes already taken, then takes no more. */
  close(): Promise<void> {
    this.closing = true;
    this.typingGate.close();
    return this.roomLog.close();
  }
}

/** A stored message on its room's topic; a member who blocks the sender gets a placeholder. */
function roomFrame(m: Message, hiddenFor?: string): BusMessage {
  if (!hiddenFor) return { frame: eventText('message', m), seq: m.seq };
  const placeholder: Message = { room: m.room, seq: m.seq, kind: 'hidden', user: m.user, name: m.name, ts: m.ts };
  return { frame: eventText('message', m), seq: m.seq, hiddenFor, alt: eventText('message', placeholder) };
}

/** A room's name as kept (see plainName); `invalid` when nothing is left of it. */
function shownName(raw: string): string {
  const name = plainName(raw);
  if (name === '') throw new ParleyError('invalid', 'name: must not be blank', { field: 'name' });
  return name;
}
