// The operations a room's owner runs on it, and for each: the facts it needs (`prepare`) and
// what it decides and writes (`apply`). Operations are plain data, so a node that does not own
// the room forwards them as they are. Decisions are the rules' (src/service/rules.ts); this
// file turns them into records (store/writer.ts) and into the events published once the
// records are committed.
import { ParleyError } from '../errors.js';
import type { Ban, Member, Message, Role, Room, RoomKind, ThreadSummary } from '../protocol/schema.js';
import {
  capsApply,
  decideAccess,
  decideAppend,
  nextSummary,
  decideBan,
  decideCreate,
  decideDestroy,
  decideInvite,
  decideJoin,
  decideKick,
  decideLeave,
  successor,
  decideModerate,
  decideMute,
  decideRole,
  decideUpdate,
  directPeer,
  isTargeted,
  withoutAccess,
  type Actor,
  type RoomCaps,
  type RoomChange,
} from '../service/rules.js';
import { channelNameKey, type MessageMeta } from '../store/store.js';
import type { RoomStore } from '../store/rooms.js';
import type { UserStore } from '../store/users.js';
import type { RoomWriter } from '../store/writer.js';
import type { LeaveReason, TransportName } from '../service/events.js';
import type { BatchBuilder } from './batch.js';
import { keyOf, type RoomState } from './state.js';

/** Who runs an operation: the actor, with the public profile shown with its messages. */
export interface By extends Actor {
  profile?: Record<string, unknown>;
  /** The transport the command came through (for domain events). */
  via?: TransportName;
}

export type AppendKind = 'text' | 'edit' | 'delete' | 'reaction' | 'event';

export type RoomOp =
  | {
      op: 'append';
      by: By;
      kind: AppendKind;
      text?: string;
      target?: number;
      data?: Record<string, unknown>;
      key?: string;
      system?: boolean;
      /** What the service found in the message (its mentions, the quote it replies to), stored with it. */
      meta?: MessageMeta;
      /** A text sent to the thread of this root; `alsoToRoom`: shown in the main timeline too. */
      thread?: number;
      alsoToRoom?: boolean;
    }
  | {
      op: 'create';
      by: By;
      kind: RoomKind;
      name: string;
      topic: string;
      createdBy: string | null;
      directKey?: string;
      /** Members added with the room, in order; the first `owner` is the creator. */
      members: Array<{ user: string; name: string; role: Role }>;
    }
  | { op: 'join'; by: By }
  | { op: 'invite'; by: By; user: string }
  | { op: 'leave'; by: By }
  | { op: 'kick'; by: By; user: string; reason?: string }
  | { op: 'ban'; by: By; user: string; until: number | null; reason: string }
  | { op: 'unban'; by: By; user: string }
  | { op: 'mute'; by: By; user: string; until: number | null; off: boolean }
  | { op: 'role'; by: By; user: string; role: Role }
  | { op: 'update'; by: By; change: RoomChange }
  | { op: 'destroy'; by: By; keepHistory: boolean }
  | { op: 'access'; by: By; list: 'black' | 'white'; add?: string[]; remove?: string[] }
  /** On the direct room of the pair, whether it exists or not: `by` blocks `user` (or lifts it). */
  | { op: 'block'; by: By; user: string; on: boolean }
  /**
   * Decides, writing nothing, whether `by` may invite every user of `add` and remove every one
   * of `remove`: a change of many members is refused whole before its first step is taken.
   */
  | { op: 'admits'; by: By; add: string[]; remove: string[] };

export type OpName = RoomOp['op'];
export type OpOf<N extends OpName> = Extract<RoomOp, { op: N }>;

export interface AppendResult {
  message: Message;
  duplicate: boolean;
  /** Set when the message is hidden for this user (it blocks the sender). */
  hiddenFor?: string;
}

export interface OpResults {
  append: AppendResult;
  create: { room: Room; messages: Message[] };
  join: { room: Room; member: Member; message: Message };
  invite: { member: Member; message: Message };
  leave: { room: string; message: Message };
  kick: { room: string; user: string; message: Message };
  ban: { ban: Ban };
  unban: { lifted: boolean };
  mute: { member: Member };
  role: { member: Member; message: Message };
  update: { room: Room; message: Message };
  destroy: { room: string; members: string[] };
  access: { room: string; list: 'black' | 'white'; users: string[]; removed: string[] };
  block: { user: string };
  admits: { add: string[]; remove: string[] };
}

/**
 * What a committed operation changed, as the rest of the server learns it: emitted once,
 * by the room's owner, after the commit, in seq order. (The service publishes them.)
 */
export type RoomEvent =
  /** A message other than a join or leave (text, edit, delete, reaction, event, update). */
  | { type: 'message.stored'; message: Message; hiddenFor: string | null }
  /** `created`: one of the first members of a new room (the room.created event that follows names them all). */
  | { type: 'member.joined'; room: Room; member: Member; message: Message; created?: boolean }
  | { type: 'room.created'; room: Room; members: Member[] }
  /** `note`: the moderator's reason of a kick or ban. */
  | { type: 'member.left'; room: string; user: string; reason: LeaveReason; note?: string; message: Message }
  | { type: 'room.updated'; room: Room }
  | { type: 'room.deleted'; room: string; members: string[] }
  | { type: 'ban.added'; ban: Ban }
  | { type: 'ban.lifted'; room: string; user: string }
  /** The reply `reply` changed the summary of the thread under `root`. */
  | { type: 'thread.updated'; room: string; root: number; reply: number; summary: ThreadSummary };

/** An event as the room log hands it out once committed: with who ran the operation. */
export type CommittedEvent = RoomEvent & { by: By };

/** Facts an operation needs that are not its room's (read once, kept with the operation). */
export interface OpFacts {
  counts?: { member: number; created: number } | null;
  nameTakenBy?: string | null;
  directTaken?: boolean;
  userName?: string;
  blocksActor?: boolean;
  /** The message stored earlier with the append's key, learnt after the store found the key taken. */
  prior?: Message | null;
  /** Names of the members an access change removes, for their leave messages. */
  names?: Record<string, string>;
  /** For each user a change of many members would add: whether it blocks the actor, its room counts. */
  adding?: Record<string, { blocksActor: boolean; counts: { member: number; created: number } | null }>;
}

/** The store ports the room log reads and writes through. */
export type LogStore = RoomWriter & Pick<RoomStore, 'getMember' | 'members' | 'countRooms'> & Pick<UserStore, 'getUser'>;
/** What the room log reads of the store to decide: every read of LogStore. */
export type FactReader = Omit<LogStore, 'commit' | 'commitIntervalMs' | 'maxBatch'>;

/** Facts an operation asks for; those the room state lacks are read before it is decided. */
export interface Prep {
  member(user: string): void;
  allMembers(): void;
  ban(user: string): void;
  listed(user: string): void;
  lists(): void;
  target(seq: number): void;
  /** The summary of the thread under this root. */
  thread(root: number): void;
  block(user: string, other: string): void;
  fact<K extends keyof OpFacts>(name: K, load: () => Promise<OpFacts[K]>): void;
}

export interface Ctx {
  caps: RoomCaps;
  store: FactReader;
}

export function prepare(op: RoomOp, room: string, s: RoomState, facts: OpFacts, p: Prep, ctx: Ctx): void {
  const me = op.by.id;
  const counts = (user: string, creating: boolean) => {
    if (capsApply(ctx.caps, creating)) p.fact('counts', () => ctx.store.countRooms(user));
  };
  const userName = (user: string) => p.fact('userName', async () => (await ctx.store.getUser(user))?.name ?? user);
  switch (op.op) {
    case 'append': {
      p.member(me);
      if (op.target !== undefined && isTargeted(op.kind) && op.target <= s.last) p.target(op.target);
      if (op.thread !== undefined && op.kind === 'text' && op.thread <= s.last) {
        p.target(op.thread);
        p.thread(op.thread);
      }
      if (s.room?.kind === 'direct') {
        const members = s.allMembers();
        if (!members) p.allMembers();
        else {
          const peer = directPeer(
            members.map((m) => m.user),
            me,
          );
          if (peer) p.block(peer, me);
        }
      }
      return;
    }
    case 'create':
      // Direct rooms count against no cap.
      if (!op.by.admin && op.kind !== 'direct') counts(me, true);
      if (op.directKey !== undefined) {
        const k = op.directKey;
        p.fact('directTaken', async () => (await ctx.store.directNamed(k)) !== null);
      }
      if (op.kind === 'channel') p.fact('nameTakenBy', () => ctx.store.channelNamed(channelNameKey(op.name)));
      return;
    case 'join':
      p.member(me);
      p.ban(me);
      p.listed(me);
      if (!op.by.admin) counts(me, false);
      return;
    case 'invite':
      p.member(me);
      p.member(op.user);
      p.ban(op.user);
      p.listed(op.user);
      p.fact('blocksActor', () => ctx.store.blocks(op.user, me));
      counts(op.user, false);
      userName(op.user);
      return;
    case 'leave':
      p.member(me);
      // An owner who leaves hands the room on: to whom depends on every member.
      if (s.member(me)?.role === 'owner') p.allMembers();
      return;
    case 'kick':
    case 'ban':
      p.member(me);
      p.member(op.user);
      userName(op.user);
      return;
    case 'unban':
      p.member(me);
      p.ban(op.user);
      return;
    case 'mute':
      p.member(me);
      p.member(op.user);
      return;
    case 'role':
      p.member(me);
      p.member(op.user);
      if (op.role === 'owner') p.allMembers();
      return;
    case 'update':
      p.member(me);
      if (op.change.name !== undefined && s.room?.kind === 'channel') {
        const n = op.change.name;
        p.fact('nameTakenBy', () => ctx.store.channelNamed(channelNameKey(n)));
      }
      if (op.change.access !== undefined) evicteeNames(op, s, p, ctx);
      return;
    case 'destroy':
      p.member(me);
      p.allMembers();
      return;
    case 'access':
      p.member(me);
      evicteeNames(op, s, p, ctx);
      return;
    case 'block':
      return;
    case 'admits': {
      p.member(me);
      for (const u of [...op.add, ...op.remove]) p.member(u);
      for (const u of op.add) {
        p.ban(u);
        p.listed(u);
      }
      const caps = capsApply(ctx.caps, false);
      p.fact('adding', async () =>
        Object.fromEntries(
          await Promise.all(
            op.add.map(
              async (u) =>
                [
                  u,
                  {
                    blocksActor: await ctx.store.blocks(u, me),
                    counts: caps ? await ctx.store.countRooms(u) : null,
                  },
                ] as const,
            ),
          ),
        ),
      );
      return;
    }
  }
  void room;
}

/** The members an access change would remove (once members and lists are known), and their names. */
function evicteeNames(op: OpOf<'update'> | OpOf<'access'>, s: RoomState, p: Prep, ctx: Ctx): void {
  const members = s.allMembers();
  if (!members) p.allMembers();
  if (!s.lists) p.lists();
  if (!members || !s.lists || !s.room) return;
  const users = evictees(op, s.room, members, s.lists).map((m) => m.user);
  p.fact('names', async () =>
    Object.fromEntries(await Promise.all(users.map(async (u): Promise<[string, string]> => [u, (await ctx.store.getUser(u))?.name ?? u]))),
  );
}

/** Who an access change removes: members of plain rank whom the new mode or lists no longer admit. */
function evictees(op: OpOf<'update'> | OpOf<'access'>, room: Room, members: Member[], lists: { white: Set<string>; black: Set<string> }): Member[] {
  if (op.op === 'update') return withoutAccess(op.change.access ?? room.access, members, lists);
  const changed = { white: new Set(lists.white), black: new Set(lists.black) };
  for (const u of op.add ?? []) changed[op.list].add(u);
  for (const u of op.remove ?? []) changed[op.list].delete(u);
  return withoutAccess(room.access, members, changed);
}

/** What deciding an operation gave: its result (or a read to make once committed), its events. */
export interface Applied {
  result?: unknown;
  /** For a duplicate append: the earlier message, read once this batch is committed. */
  later?: () => Promise<unknown>;
  events: RoomEvent[];
}

/** The ids of the uploads a message's data carries (`data.attachments`, set by the server). */
function carriedUploads(data: unknown): string[] {
  const list = (data as { attachments?: unknown } | undefined)?.attachments;
  if (!Array.isArray(list)) return [];
  return list.flatMap((a) => (typeof (a as { id?: unknown } | null)?.id === 'string' ? [(a as { id: string }).id] : []));
}

const known = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new Error(`room log: ${what} was not prepared`);
  return v;
};

/**
 * Decides one operation on the room's state, at `now`: throws the rules' refusal, or records
 * its changes in the state and the batch and says what to answer and publish.
 */
export function apply(op: RoomOp, room: string, s: RoomState, f: OpFacts, b: BatchBuilder, ctx: Ctx, now: number): Applied {
  const by = op.by;
  const me = () => known(s.member(by.id), 'the actor');
  const target = (user: string) => known(s.member(user), 'the member');
  switch (op.op) {
    case 'append': {
      const key = op.key ?? null;
      const peer =
        s.room?.kind === 'direct'
          ? directPeer(
              (s.allMembers() ?? []).map((m) => m.user),
              by.id,
            )
          : null;
      const thread = op.kind === 'text' ? op.thread : undefined;
      const targetOf = (seq: number | undefined) => (seq === undefined ? null : seq > s.last ? null : known(s.targets.get(seq), 'the target'));
      const target = isTargeted(op.kind) ? targetOf(op.target) : null;
      const d = decideAppend(
        { user: by.id, kind: op.kind, admin: by.admin, system: op.system === true, ...(thread !== undefined ? { thread } : {}) },
        {
          room: s.room,
          member: me(),
          now,
          prior: f.prior ? f.prior.seq : key === null ? null : (s.keys.get(keyOf(by.id, key)) ?? null),
          target,
          root: targetOf(thread),
          blockedBy: peer !== null && known(s.blocks.get(`${peer}\n${by.id}`), 'the block') ? peer : null,
        },
      );
      if ('duplicate' in d) {
        const prior = f.prior;
        return {
          events: [],
          later: async () => {
            const m = prior ?? (await ctx.store.keyed(room, by.id, key!));
            if (!m) throw new ParleyError('conflict', 'the message stored with this key is gone');
            return { message: m, duplicate: true };
          },
        };
      }
      const uploads = carriedUploads(op.data);
      if (uploads.some((id) => s.carried.has(id))) throw new ParleyError('conflict', 'this attachment was sent already', { field: 'attachments' });
      const message: Message = { room, seq: s.last + 1, kind: op.kind, user: by.id, name: by.name, ts: now };
      if (op.system) message.system = true;
      if (op.text !== undefined) message.text = op.text;
      if (op.target !== undefined) message.target = op.target;
      if (op.data !== undefined) message.data = op.data;
      if (op.meta !== undefined) Object.assign(message, metaOf(op.meta));
      // A thread reply names its root; an edit, delete or reaction of one belongs to the same thread.
      const inThread =
        thread !== undefined
          ? { root: thread, alsoToRoom: op.alsoToRoom === true }
          : target?.thread
            ? { root: target.thread, alsoToRoom: target.alsoToRoom === true }
            : null;
      if (inThread) {
        message.thread = inThread.root;
        if (inThread.alsoToRoom) message.alsoToRoom = true;
      }
      b.message(message, key, d.hiddenFor);
      s.stored(message.seq, message.kind, by.id, key, op.target, inThread);
      s.carry(uploads, message.seq);
      if (op.kind === 'edit' && op.target !== undefined && message.mentions) b.mentionsAdded(room, op.target, message.mentions);
      const shown = by.profile && Object.keys(by.profile).length > 0 ? { ...message, profile: by.profile } : message;
      const events: RoomEvent[] = [{ type: 'message.stored', message: shown, hiddenFor: d.hiddenFor }];
      if (thread !== undefined) {
        const summary = nextSummary(known(s.threads.get(thread), 'the thread'), by.id, now);
        s.summarised(thread, summary);
        b.threadSummarised(room, thread, summary);
        events.push({ type: 'thread.updated', room, root: thread, reply: message.seq, summary });
      }
      return {
        result: d.hiddenFor ? { message, duplicate: false, hiddenFor: d.hiddenFor } : { message, duplicate: false },
        events,
      };
    }
    case 'create': {
      decideCreate(
        op.kind,
        room,
        {
          exists: s.room !== null,
          directTaken: f.directTaken ?? false,
          keptHistory: s.keptHistory,
          nameTakenBy: f.nameTakenBy ?? null,
          counts: f.counts ?? null,
        },
        ctx.caps,
      );
      const created: Room = {
        id: room,
        kind: op.kind,
        name: op.name,
        topic: op.topic,
        createdBy: op.createdBy,
        createdAt: now,
        lastSeq: s.last,
        access: 'blacklist',
        retention: { count: null, days: null },
      };
      b.roomCreated(created, op.directKey ?? null, s.last, false);
      s.room = created;
      s.keptHistory = false;
      forgetRoomFacts(s);
      const events: RoomEvent[] = [];
      const messages: Message[] = [];
      const members: Member[] = [];
      for (const m of op.members) {
        const { member, message } = addMember(s, b, room, m.user, m.name, m.role, op.createdBy ?? m.user, now);
        messages.push(message);
        members.push(member);
        events.push({ type: 'member.joined', room: created, member, message, created: true });
      }
      events.push({ type: 'room.created', room: roomNow(s), members });
      return { result: { room: roomNow(s), messages }, events };
    }
    case 'join': {
      decideJoin(s.room, by, me(), admission(s, by.id, f), ctx.caps, now);
      const { member, message } = addMember(s, b, room, by.id, by.name, 'member', by.id, now);
      return { result: { room: roomNow(s), member, message }, events: [{ type: 'member.joined', room: s.room!, member, message }] };
    }
    case 'invite': {
      decideInvite(s.room, by, me(), target(op.user), { ...admission(s, op.user, f), blocksActor: known(f.blocksActor, 'the block') }, ctx.caps, now);
      const { member, message } = addMember(s, b, room, op.user, known(f.userName, 'the name'), 'member', by.id, now);
      return { result: { member, message }, events: [{ type: 'member.joined', room: s.room!, member, message }] };
    }
    case 'leave': {
      const leaving = me();
      decideLeave(s.room, leaving);
      const left = removeMember(s, b, room, by.id, by.name, by.id, 'left', undefined, now);
      const events: RoomEvent[] = [left];
      const heir = leaving?.role === 'owner' ? successor(known(s.allMembers() ?? undefined, 'the members')) : null;
      if (heir) {
        setRole(s, b, room, heir, 'owner');
        // `reason`: passed on by the owner's leave, not handed over with `role`.
        const message = next(s, b, room, 'update', by, now, { user: heir.user, role: 'owner', reason: 'leave' });
        events.push({ type: 'message.stored', message, hiddenFor: null });
      }
      return { result: { room, message: left.message }, events };
    }
    case 'kick': {
      decideKick(s.room, by, me(), target(op.user));
      const left = removeMember(s, b, room, op.user, known(f.userName, 'the name'), by.id, 'kicked', op.reason, now);
      return { result: { room, user: op.user, message: left.message }, events: [left] };
    }
    case 'ban': {
      const t = target(op.user);
      decideBan(s.room, by, me(), t);
      const ban: Ban = { room, user: op.user, until: op.until, reason: op.reason, by: by.id, createdAt: now };
      b.banChanged(room, op.user, ban);
      s.bans.set(op.user, ban);
      const events: RoomEvent[] = [{ type: 'ban.added', ban }];
      if (t) events.push(removeMember(s, b, room, op.user, known(f.userName, 'the name'), by.id, 'banned', op.reason, now));
      return { result: { ban }, events };
    }
    case 'unban': {
      decideModerate(s.room, by, me());
      const lifted = known(s.bans.get(op.user), 'the ban') !== null;
      if (lifted) {
        b.banChanged(room, op.user, null);
        s.bans.set(op.user, null);
      }
      return { result: { lifted }, events: lifted ? [{ type: 'ban.lifted', room, user: op.user }] : [] };
    }
    case 'mute': {
      const before = target(op.user);
      decideMute(s.room, by, me(), before);
      const { mutedUntil: _, ...rest } = before!;
      const member: Member = op.off ? rest : { ...rest, mutedUntil: op.until };
      b.memberChanged(room, op.user, before, member, false);
      s.setMember(op.user, member);
      return { result: { member }, events: [] };
    }
    case 'role': {
      const before = target(op.user);
      decideRole(s.room, by, me(), before, op.user, op.role);
      if (op.role === 'owner') {
        for (const m of known(s.allMembers() ?? undefined, 'the members')) {
          if (m.role === 'owner' && m.user !== op.user) setRole(s, b, room, m, 'admin');
        }
      }
      const member = setRole(s, b, room, s.member(op.user)!, op.role);
      const message = next(s, b, room, 'update', by, now, { user: op.user, role: op.role });
      return { result: { member, message }, events: [{ type: 'message.stored', message, hiddenFor: null }] };
    }
    case 'update': {
      decideUpdate(s.room, by, me(), op.change, f.nameTakenBy ?? null);
      const c = op.change;
      const r = s.room!;
      const updated: Room = {
        ...r,
        ...(c.name !== undefined ? { name: c.name } : {}),
        ...(c.topic !== undefined ? { topic: c.topic } : {}),
        ...(c.access !== undefined ? { access: c.access } : {}),
        retention: {
          count: c.retention?.count !== undefined ? c.retention.count : r.retention.count,
          days: c.retention?.days !== undefined ? c.retention.days : r.retention.days,
        },
      };
      const gone = c.access !== undefined ? evictees(op, r, known(s.allMembers() ?? undefined, 'the members'), known(s.lists ?? undefined, 'the lists')) : [];
      s.room = updated;
      b.roomUpdated(updated, c.name !== undefined);
      const message = next(s, b, room, 'update', by, now, changeSummary(c));
      const answer = roomNow(s);
      const events: RoomEvent[] = [{ type: 'message.stored', message, hiddenFor: null }];
      events.push({ type: 'room.updated', room: answer });
      for (const m of gone) events.push(removeMember(s, b, room, m.user, known(f.names, 'the names')[m.user] ?? m.user, by.id, 'evicted', undefined, now));
      return { result: { room: answer, message }, events };
    }
    case 'destroy': {
      decideDestroy(s.room, by, me());
      const members = known(s.allMembers() ?? undefined, 'the members').map((m) => m.user);
      b.roomDeleted(room, op.keepHistory);
      s.room = null;
      s.keptHistory = op.keepHistory;
      if (!op.keepHistory) {
        s.last = 0;
        s.keys.clear();
        s.targets.clear();
      }
      forgetRoomFacts(s);
      return { result: { room, members }, events: [{ type: 'room.deleted', room, members }] };
    }
    case 'access': {
      decideAccess(s.room, by, me(), op.add, op.remove);
      const lists = known(s.lists ?? undefined, 'the lists');
      const gone = evictees(op, s.room!, known(s.allMembers() ?? undefined, 'the members'), lists);
      for (const u of op.add ?? []) if (!lists[op.list].has(u)) setListed(s, b, room, op.list, u, true);
      for (const u of op.remove ?? []) if (lists[op.list].has(u)) setListed(s, b, room, op.list, u, false);
      const names = known(f.names, 'the names');
      const events = gone.map((m) => removeMember(s, b, room, m.user, names[m.user] ?? m.user, by.id, 'evicted', undefined, now));
      const users = [...lists[op.list]].sort();
      return { result: { room, list: op.list, users, removed: gone.map((m) => m.user) }, events };
    }
    case 'block': {
      b.blockChanged(by.id, op.user, op.on);
      s.blocks.set(`${by.id}\n${op.user}`, op.on);
      return { result: { user: op.user }, events: [] };
    }
    case 'admits': {
      const adding = known(f.adding, 'the users to add');
      const each = (user: string, decide: () => void): void => {
        try {
          decide();
        } catch (err) {
          // Which user of the list was refused, so the caller can say so.
          if (err instanceof ParleyError) throw new ParleyError(err.code, `${user}: ${err.message}`, { ...err.details, user });
          throw err;
        }
      };
      for (const u of op.add) {
        const a = known(adding[u], 'the user to add');
        each(u, () =>
          decideInvite(
            s.room,
            by,
            me(),
            target(u),
            {
              ban: known(s.bans.get(u), 'the ban'),
              listed: known(s.listedAs(u), 'the lists'),
              counts: a.counts,
              blocksActor: a.blocksActor,
            },
            ctx.caps,
            now,
          ),
        );
      }
      for (const u of op.remove) each(u, () => decideKick(s.room, by, me(), target(u)));
      return { result: { add: op.add, remove: op.remove }, events: [] };
    }
  }
}

/** The room as readers see it: with its last seq. */
const roomNow = (s: RoomState): Room => ({ ...s.room!, lastSeq: s.last });

function admission(s: RoomState, user: string, f: OpFacts) {
  return { ban: known(s.bans.get(user), 'the ban'), listed: known(s.listedAs(user), 'the lists'), counts: f.counts ?? null };
}

/** A room created (again) under an id starts with no members, bans or lists. */
function forgetRoomFacts(s: RoomState): void {
  s.members.clear();
  s.membersComplete = true;
  s.bans.clear();
  s.listed.clear();
  s.lists = { white: new Set(), black: new Set() };
  s.generation++;
}

/** Appends a message the room itself writes (join, leave, update) and returns it. */
function next(
  s: RoomState,
  b: BatchBuilder,
  room: string,
  kind: 'join' | 'leave' | 'update',
  by: { id: string; name: string },
  now: number,
  data?: Record<string, unknown>,
): Message {
  const message: Message = { room, seq: s.last + 1, kind, user: by.id, name: by.name, ts: now };
  if (data !== undefined) message.data = data;
  b.message(message, null, null);
  s.stored(message.seq, kind, by.id, null, undefined);
  return message;
}

function addMember(s: RoomState, b: BatchBuilder, room: string, user: string, name: string, role: Role, by: string, now: number) {
  const message = next(s, b, room, 'join', { id: user, name }, now, by !== user ? { role, by } : { role });
  const member: Member = { room, user, role, joinedAt: now, joinSeq: message.seq, readSeq: 0 };
  b.memberChanged(room, user, s.member(user) ?? null, member, true);
  s.setMember(user, member);
  return { member, message };
}

function removeMember(
  s: RoomState,
  b: BatchBuilder,
  room: string,
  user: string,
  name: string,
  by: string,
  reason: LeaveReason,
  note: string | undefined,
  now: number,
): Extract<RoomEvent, { type: 'member.left' }> {
  const message = next(s, b, room, 'leave', { id: user, name }, now, by !== user ? { by } : undefined);
  b.memberChanged(room, user, s.member(user) ?? null, null, false);
  s.setMember(user, null);
  return note ? { type: 'member.left', room, user, reason, note, message } : { type: 'member.left', room, user, reason, message };
}

function setRole(s: RoomState, b: BatchBuilder, room: string, before: Member, role: Role): Member {
  const member: Member = { ...before, role };
  b.memberChanged(room, before.user, before, member, false);
  s.setMember(before.user, member);
  return member;
}

function setListed(s: RoomState, b: BatchBuilder, room: string, list: 'black' | 'white', user: string, on: boolean): void {
  b.accessChanged(room, list, user, on);
  s.setListed(list, user, on);
}

/** The data of an `update` message: what changed, as the client sees it. */
export function changeSummary(c: RoomChange): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (c.name !== undefined) data.name = c.name;
  if (c.topic !== undefined) data.topic = c.topic;
  if (c.access !== undefined) data.access = c.access;
  if (c.retention !== undefined) {
    const r: Record<string, unknown> = {};
    if (c.retention.count !== undefined) r.count = c.retention.count;
    if (c.retention.days !== undefined) r.days = c.retention.days;
    data.retention = r;
  }
  return data;
}

/** The meta fields of a message, and nothing else: an operation from another node is plain data. */
function metaOf(m: MessageMeta): MessageMeta {
  const meta: MessageMeta = {};
  if (m.mentions !== undefined) meta.mentions = m.mentions;
  if (m.mentionsAll !== undefined) meta.mentionsAll = m.mentionsAll;
  if (m.replyTo !== undefined) meta.replyTo = m.replyTo;
  if (m.quote !== undefined) meta.quote = m.quote;
  return meta;
}
