// Every decision Parley makes about who may do what, as pure functions of (request, facts):
// no I/O, no clock of their own. The room log calls them with the facts its room state holds
// (src/log), the service with facts it read; stores only read facts and write. Each rule lives
// here once; test/unit/rules.test.ts checks them without a database.
import { ParleyError } from '../errors.js';
import {
  DIRECT_ROOM_PREFIX,
  isDirectRoom,
  SYSTEM_USER,
  type AccessMode,
  type Ban,
  type Member,
  type MessageKind,
  type Role,
  type Room,
  type RoomKind,
  type ThreadSummary,
} from '../protocol/schema.js';

/** Who outranks whom: a moderator acts only on members of a lower rank. */
export const ROLE_RANK: Readonly<Record<Role, number>> = { owner: 2, admin: 1, member: 0 };

/** Who acts: a user, and whether it is a server administrator (administrator token or API key). */
export interface Actor {
  id: string;
  name: string;
  admin: boolean;
}

// ---- server-wide ------------------------------------------------------------------------

export function requireAdmin(admin: boolean): void {
  if (!admin) throw new ParleyError('forbidden', 'this needs an administrator token or API key');
}

export function checkText(text: string, limit: number): void {
  if (text.length > limit) throw new ParleyError('too_large', `text is longer than ${limit} characters`, { limit });
}

export function checkData(data: Record<string, unknown>, limit: number): void {
  if (JSON.stringify(data).length > limit) throw new ParleyError('too_large', 'data is too large');
}

/** A ban is in force until it expires (`until` null: forever). */
export const banInForce = (ban: Ban | null, now: number): ban is Ban => ban !== null && (ban.until === null || ban.until > now);

/**
 * The refusal of a user banned server-wide. Its wire form is `forbidden` with
 * `details.reason: "banned"`; the class lets the command runner close the connection without
 * reading the details.
 */
export class ServerBanError extends ParleyError {
  constructor(until: number | null) {
    super('forbidden', 'you are banned from this server', { reason: 'banned', until });
  }
}

/** Refuses a user under a server-wide ban (checked at every authentication). */
export function checkNotBanned(ban: Ban | null, now: number): void {
  if (banInForce(ban, now)) throw new ServerBanError(ban.until);
}

/** Room ids of direct rooms (DIRECT_ROOM_PREFIX) are theirs alone. */
export function checkRoomId(id: string | undefined): void {
  if (id !== undefined && isDirectRoom(id)) {
    throw new ParleyError('invalid', `room ids starting with "${DIRECT_ROOM_PREFIX}" are reserved for direct rooms`, { field: 'room' });
  }
}

// ---- rooms and roles --------------------------------------------------------------------

export function requireRoom<R extends Pick<Room, 'kind'>>(room: R | null): R {
  if (!room) throw new ParleyError('not_found', 'room not found');
  return room;
}

/** Members act in their rooms; `not a member` otherwise (the room exists). */
export function requireMember(member: Member | null): Member {
  if (!member) throw new ParleyError('forbidden', 'not a member of this room');
  return member;
}

/** Members read their rooms; anyone signed in reads a public channel; administrators all. */
export function checkReadable(kind: RoomKind, member: Member | null, admin: boolean): void {
  if (!member && kind !== 'channel' && !admin) throw new ParleyError('forbidden', 'not a member of this room');
}

/**
 * Owners and admins of a room moderate it; server administrators moderate every room as its
 * owner, member or not. Returns the role the actor moderates with.
 */
export function requireModerator(actor: Pick<Actor, 'admin'>, me: Member | null): Role {
  if (actor.admin) return 'owner';
  if (!me) throw new ParleyError('forbidden', 'not a member of this room');
  if (me.role === 'member') throw new ParleyError('forbidden', 'only owners and admins can do this');
  return me.role;
}

/** A moderator acts on members of lower rank only (owners on admins, admins on members). */
export function requireOutranks(role: Role, target: Member | null): Member {
  if (!target) throw new ParleyError('not_found', 'not a member of this room');
  if (ROLE_RANK[target.role] >= ROLE_RANK[role]) throw new ParleyError('forbidden', `a ${role} cannot do this to a ${target.role}`);
  return target;
}

/** Whether a room's access mode and lists let a user be a member (owners and admins always). */
export function hasAccess(mode: AccessMode, role: Role | null, listed: { white: boolean; black: boolean }): boolean {
  if (role !== null && role !== 'member') return true;
  return mode === 'whitelist' ? listed.white : !listed.black;
}

/**
 * Refuses users the room bans or its access lists keep out. The ban's reason is for the
 * banned user only (`self`), not for a member inviting them.
 */
export function checkAdmission(ban: Ban | null, access: boolean, now: number, self: boolean): void {
  if (banInForce(ban, now)) {
    const details = self && ban.reason ? { reason: 'banned', until: ban.until, banReason: ban.reason } : { reason: 'banned', until: ban.until };
    throw new ParleyError('forbidden', self ? 'you are banned from this room' : 'banned from this room', details);
  }
  if (!access) throw new ParleyError('forbidden', "the room's access list does not admit this user", { reason: 'access' });
}

export interface RoomCaps {
  /** Channels and groups a user may be a member of. */
  roomsPerUser?: number;
  /** Channels and groups a user may have created that still exist. */
  roomsCreatedPerUser?: number;
}

/** Whether a user's room counts are needed to decide (no cap, no count to read). */
export const capsApply = (caps: RoomCaps, creating: boolean): boolean =>
  caps.roomsPerUser !== undefined || (creating && caps.roomsCreatedPerUser !== undefined);

/**
 * Refuses one more channel or group past `roomsPerUser`, and (when `creating`) one more
 * created past `roomsCreatedPerUser`: one user must not grow another's room list (and its
 * `auth` reply) without bound, nor the server's.
 */
export function checkRoomCaps(counts: { member: number; created: number }, caps: RoomCaps, creating: boolean): void {
  const { roomsPerUser, roomsCreatedPerUser } = caps;
  if (creating && roomsCreatedPerUser !== undefined && counts.created >= roomsCreatedPerUser) {
    throw new ParleyError('forbidden', `at most ${roomsCreatedPerUser} rooms created per user; delete one first`, {
      reason: 'rooms_created',
      limit: roomsCreatedPerUser,
    });
  }
  if (roomsPerUser !== undefined && counts.member >= roomsPerUser) {
    throw new ParleyError('forbidden', `a user may be a member of at most ${roomsPerUser} rooms`, { reason: 'room_limit', limit: roomsPerUser });
  }
}

// ---- membership ------------------------------------------------------------------------

/** What a new member needs to be let in: the room's ban of it, the access lists, its counts. */
export interface AdmissionFacts {
  ban: Ban | null;
  listed: { white: boolean; black: boolean };
  /** Null when no cap applies. */
  counts: { member: number; created: number } | null;
}

/** A user joins a channel by itself. */
export function decideJoin(room: Room | null, actor: Actor, me: Member | null, f: AdmissionFacts, caps: RoomCaps, now: number): void {
  const r = requireRoom(room);
  if (r.kind !== 'channel') throw new ParleyError('forbidden', 'only channels can be joined; groups are by invitation');
  checkAdmission(f.ban, hasAccess(r.access, me?.role ?? null, f.listed), now, true);
  // Administrators (server-side applications) join as many rooms as they need.
  if (!actor.admin && f.counts) checkRoomCaps(f.counts, caps, false);
  if (me) throw new ParleyError('conflict', 'already a member');
}

/** A member adds another user: anyone in a channel, moderators in a group, administrators anywhere. */
/**
 * The server's own id (`system`, the author of system messages) is never a member: nobody can
 * invite it or open a direct room with it. No token can be issued for it.
 */
export function checkPeer(user: string): void {
  if (user === SYSTEM_USER) throw new ParleyError('invalid', `"${SYSTEM_USER}" is the server's own id, not a user`, { field: 'user' });
}

export function decideInvite(
  room: Room | null,
  actor: Actor,
  me: Member | null,
  target: Member | null,
  f: AdmissionFacts & { blocksActor: boolean },
  caps: RoomCaps,
  now: number,
): void {
  const r = requireRoom(room);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be invited to a direct room');
  if (!actor.admin) {
    const mine = requireMember(me);
    if (r.kind === 'group' && mine.role === 'member') throw new ParleyError('forbidden', 'only owners and admins invite to a group');
  }
  checkAdmission(f.ban, hasAccess(r.access, target?.role ?? null, f.listed), now, false);
  // A user who blocks another accepts no invitation from it.
  if (f.blocksActor) throw new ParleyError('forbidden', 'this user does not accept invitations from you', { reason: 'blocked' });
  if (f.counts) checkRoomCaps(f.counts, caps, false);
  if (target) throw new ParleyError('conflict', 'already a member');
}

export function decideLeave(room: Room | null, me: Member | null): void {
  const r = requireRoom(room);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'a direct room cannot be left');
  requireMember(me);
}

/**
 * Who takes a room its owner leaves (a room is never left without an owner while it has
 * members): the admin who joined first, else the member who joined first; null when nobody
 * stays. `others` are the members staying.
 */
export function successor(others: readonly Member[]): Member | null {
  let heir: Member | null = null;
  for (const m of others) {
    if (m.role === 'owner') return null; // another owner remains
    const rank = (x: Member) => (x.role === 'admin' ? 0 : 1);
    if (!heir || rank(m) < rank(heir) || (rank(m) === rank(heir) && m.joinSeq < heir.joinSeq)) heir = m;
  }
  return heir;
}

export function decideKick(room: Room | null, actor: Actor, me: Member | null, target: Member | null): void {
  const r = requireRoom(room);
  const role = requireModerator(actor, me);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be removed from a direct room');
  requireOutranks(role, target);
}

/** A room ban; a member it names is removed as well (a moderator of higher rank only). */
export function decideBan(room: Room | null, actor: Actor, me: Member | null, target: Member | null): void {
  const r = requireRoom(room);
  const role = requireModerator(actor, me);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'nobody can be banned from a direct room');
  if (target) requireOutranks(role, target);
}

export function decideModerate(room: Room | null, actor: Actor, me: Member | null): Role {
  requireRoom(room);
  return requireModerator(actor, me);
}

export function decideMute(room: Room | null, actor: Actor, me: Member | null, target: Member | null): void {
  requireRoom(room);
  requireOutranks(requireModerator(actor, me), target);
}

export function decideRole(room: Room | null, actor: Actor, me: Member | null, target: Member | null, user: string, role: Role): void {
  const r = requireRoom(room);
  if (requireModerator(actor, me) !== 'owner') throw new ParleyError('forbidden', 'only the owner sets roles');
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no roles');
  if (user === actor.id && role !== 'owner') throw new ParleyError('conflict', 'hand the room to another member first');
  if (!target) throw new ParleyError('not_found', 'not a member');
}

export interface RoomChange {
  name?: string;
  topic?: string;
  access?: AccessMode;
  retention?: { count?: number | null; days?: number | null };
}

export function decideUpdate(room: Room | null, actor: Actor, me: Member | null, change: RoomChange, nameTakenBy: string | null): void {
  const r = requireRoom(room);
  requireModerator(actor, me);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no settings');
  if (change.name === undefined && change.topic === undefined && change.access === undefined && change.retention === undefined) {
    throw new ParleyError('invalid', 'nothing to change');
  }
  if (change.name !== undefined && r.kind === 'channel') checkChannelName(nameTakenBy, r.id);
}

export function decideDestroy(room: Room | null, actor: Actor, me: Member | null): void {
  requireRoom(room);
  if (requireModerator(actor, me) !== 'owner') throw new ParleyError('forbidden', 'only the owner can delete a room');
}

export function decideAccess(room: Room | null, actor: Actor, me: Member | null, add: string[] | undefined, remove: string[] | undefined): void {
  const r = requireRoom(room);
  requireModerator(actor, me);
  if (r.kind === 'direct') throw new ParleyError('forbidden', 'direct rooms have no access lists');
  if (!add && !remove) throw new ParleyError('invalid', 'give "add" and/or "remove"');
}

/** The members a room's access rules no longer admit (owners and admins always stay). */
export function withoutAccess(mode: AccessMode, members: Member[], lists: { white: ReadonlySet<string>; black: ReadonlySet<string> }): Member[] {
  return members.filter((m) => !hasAccess(mode, m.role, { white: lists.white.has(m.user), black: lists.black.has(m.user) }));
}

/** A channel name whose key another channel holds is taken (see channelNameKey). */
export function checkChannelName(takenBy: string | null, room: string): void {
  if (takenBy !== null && takenBy !== room) throw new ParleyError('conflict', 'a channel with this name exists', { field: 'name' });
}

/** Why a room id cannot be used again (the `conflict` message of a create). */
export const KEPT_HISTORY = 'this room id belongs to a deleted room whose history is kept';

/**
 * A new room: its id (and a direct room's pair) must be free, and a deleted room whose
 * history is kept still owns its id, so a new room never shows another room's history. A
 * direct room is the exception: its id belongs to its pair, so the pair's new room continues
 * after the kept messages.
 */
export function decideCreate(
  kind: RoomKind,
  id: string,
  f: { exists: boolean; directTaken: boolean; keptHistory: boolean; nameTakenBy: string | null; counts: { member: number; created: number } | null },
  caps: RoomCaps,
): void {
  if (f.counts) checkRoomCaps(f.counts, caps, true);
  if (f.exists || f.directTaken) throw new ParleyError('conflict', 'room already exists');
  if (f.keptHistory && kind !== 'direct') throw new ParleyError('conflict', KEPT_HISTORY);
  if (kind === 'channel') checkChannelName(f.nameTakenBy, id);
}

// ---- messages ---------------------------------------------------------------------------

/**
 * A reaction's emoji as it is kept: without a variation selector 16 (U+FE0F) after a character
 * that is drawn as an emoji anyway (Emoji_Presentation), so "👍" and "👍\uFE0F", which look the
 * same, count as one reaction.
 */
export function reactionEmoji(emoji: string): string {
  return emoji.replace(/(\p{Emoji_Presentation})\uFE0F/gu, '$1');
}

/** What an edit, delete or reaction points at, as the room log knows it. */
export interface TargetFacts {
  kind: MessageKind;
  user: string;
  deleted: boolean;
  /** The root of the thread the message belongs to (absent or null: none). */
  thread?: number | null;
  /** A thread reply shown in the main timeline too. */
  alsoToRoom?: boolean;
}

export interface AppendRequest {
  user: string;
  kind: Extract<MessageKind, 'text' | 'edit' | 'delete' | 'reaction' | 'event'>;
  /** A server administrator: deletes any message, member or not. */
  admin: boolean;
  /** Posted by the server-side API: no membership needed. */
  system: boolean;
  /** A text sent to the thread of this root. */
  thread?: number;
}

export interface AppendFacts {
  room: Pick<Room, 'kind'> | null;
  member: Member | null;
  /** Seq of the message stored earlier with the same key by the same user, if any. */
  prior: number | null;
  /** For edit, delete and reaction: the target, or null when there is no such message. */
  target: TargetFacts | null;
  /** For a thread reply: its root, or null when there is no such message. */
  root?: TargetFacts | null;
  /** In a direct room: the other member when it blocks the sender. */
  blockedBy: string | null;
  now: number;
}

export type AppendDecision = { duplicate: number } | { hiddenFor: string | null };

export const isTargeted = (kind: MessageKind): boolean => kind === 'edit' || kind === 'delete' || kind === 'reaction';

/**
 * May this message be appended? Members write in their rooms unless muted (deletes pass a
 * mute); a key used before by the same user answers with the earlier message; edits,
 * deletes and reactions need a text message of the room that is not deleted; only its author
 * edits it; its author, a room owner or admin, or a server administrator deletes it. A direct
 * message from a user the peer blocks is stored hidden for the peer.
 */
export function decideAppend(m: AppendRequest, f: AppendFacts): AppendDecision {
  requireRoom(f.room);
  const moderates = m.admin && m.kind === 'delete';
  if (!f.member && !m.system && !moderates) throw new ParleyError('forbidden', 'not a member of this room');
  const muted = f.member?.mutedUntil;
  if (muted !== undefined && (muted === null || muted > f.now) && m.kind !== 'delete') {
    throw new ParleyError('forbidden', 'you are muted in this room', { reason: 'muted', until: muted });
  }
  if (f.prior !== null) return { duplicate: f.prior };
  if (isTargeted(m.kind)) {
    const t = f.target;
    if (!t || t.kind !== 'text') throw new ParleyError('not_found', 'target message not found');
    if (t.deleted) throw new ParleyError('conflict', 'target message was deleted');
    if (m.kind === 'edit' && t.user !== m.user) throw new ParleyError('forbidden', 'only the author can edit a message');
    if (m.kind === 'delete' && t.user !== m.user && !moderates && (!f.member || f.member.role === 'member')) {
      throw new ParleyError('forbidden', 'only the author or a room admin can delete a message');
    }
  }
  if (m.thread !== undefined) checkThreadRoot(f.root ?? null);
  return { hiddenFor: f.blockedBy };
}

// ---- threads ----------------------------------------------------------------------------

/** Participants a thread's summary names. */
export const THREAD_SUMMARY_USERS = 3;

/**
 * A thread's root is a text message of the room that is still there and is not itself a
 * thread reply (threads do not nest).
 */
export function checkThreadRoot(root: TargetFacts | null): void {
  if (!root || root.kind !== 'text') throw new ParleyError('not_found', 'thread: no text message with this seq in this room', { field: 'thread' });
  if (root.thread != null) throw new ParleyError('invalid', 'thread: a thread reply cannot start a thread; reply to its root', { field: 'thread' });
  if (root.deleted) throw new ParleyError('conflict', 'thread: the root message was deleted', { field: 'thread' });
}

/** A thread's summary once one more reply, by `user` at `ts`, is stored. */
export function nextSummary(prev: ThreadSummary | null, user: string, ts: number): ThreadSummary {
  const users = prev ? [...prev.users] : [];
  if (users.length < THREAD_SUMMARY_USERS && !users.includes(user)) users.push(user);
  return { count: (prev?.count ?? 0) + 1, lastTs: ts, users };
}

/** The other member of a direct room, when `me` is one of its two members. */
export function directPeer(members: readonly string[], me: string): string | null {
  if (members.length !== 2) return null;
  const [a, b] = members as [string, string];
  return a === me ? b : b === me ? a : null;
}
