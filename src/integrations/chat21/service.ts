// Chat21 semantics on top of Parley's commands, shared by the Chat21 MQTT topics and the
// Chat21-compatible REST routes. Every write goes through `Service.exec` (hooks, permission
// checks, store, bus), and moderation is the service's own check (`requireModerator`); the
// Chat21-only state (archives, group attributes, instances) lives in the Chat21Store port.
// Mapping (docs/chat21.md): a direct conversation is Parley's direct room of the pair, a group
// is a group room, a message's inbox copies are the room message seen from each member, and
// the received/return-receipt statuses are read markers.
import { randomUUID } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import {
  Commands,
  DIRECT_ROOM_PREFIX,
  isDirectRoom,
  roomIdRe,
  userIdRe,
  type CommandArgs,
  type CommandFrame,
  type CommandName,
  type CommandResults,
  type Member,
  type Message,
  type Room,
} from '../../protocol/schema.js';
import { truncateText, validate } from '../../protocol/validate.js';
import { directRoomId, type Service, type Session } from '../../service/index.js';
import type { Store } from '../../store/store.js';
import {
  STATUS,
  attachmentOf,
  groupIdOf,
  parseMessageId,
  roomOfGroupId,
  toChat21,
  toChat21Docs,
  type Chat21Extras,
  type Chat21Message,
  type OutgoingMessage,
  type View,
} from './protocol.js';
import type { Chat21Store } from './store.js';

/**
 * Who runs a Chat21 operation: the user, the transport it came through, and (for the one
 * operation whose order matters, an MQTT send) the admission callback of its command lane.
 */
export type Caller = Pick<Session, 'user' | 'via' | 'admit'>;

/** Who sends the Chat21 notifications (an administrator identity no account can take). */
export const CHAT21_IDENTITY: Readonly<Identity> = Object.freeze({ id: 'parley:chat21', name: 'Chat21', profile: {}, admin: true });

/** Notices on a user's notification channel that the MQTT endpoint turns into Chat21 topics. */
export const NOTICE = {
  receipt: 'chat21.receipt',
  conversation: 'chat21.conversation',
  archived: 'chat21.archived',
  group: 'chat21.group',
} as const;

export interface Chat21Group {
  uid: string;
  name: string;
  appId: string;
  owner: string | null;
  members: Record<string, 1>;
  createdOn: number;
  updatedOn: number;
  attributes: Record<string, unknown>;
}

export interface Chat21Conversation extends Partial<Chat21Message> {
  timelineOf: string;
  conversWith: string;
  key: string;
  is_new: boolean;
  archived: boolean;
  last_message_text: string;
}

const HISTORY_LIMIT = 200;
const MAX_CACHE = 100_000;
/**
 * How long a node trusts a group name it read. A rename reaches the nodes that follow the room
 * (its update message), a deletion its members' nodes; a node that heard of neither reads the
 * name again after this.
 */
const NAME_TTL_MS = 60_000;

export class Chat21Service {
  /** Group room -> name, forgotten when the room changes or is deleted, and after NAME_TTL_MS. */
  private readonly names = new LRUCache<string, string>({ max: MAX_CACHE, ttl: NAME_TTL_MS });
  /** Direct rooms known to exist (they are never deleted). */
  private readonly knownDirect = new LRUCache<string, true>({ max: MAX_CACHE });

  constructor(
    private readonly service: Pick<Service, 'exec' | 'requireModerator' | 'directPeer' | 'checkMembers'>,
    private readonly store: Pick<Store, 'getRoom'>,
    private readonly state: Chat21Store,
    readonly appId: string,
    /** Instances (devices) kept per user (`chat21.instancesPerUser`). */
    private readonly instancesPerUser: number,
    /** A signed URL of an attachment for a reader, put in the Chat21 `metadata.src` of files. */
    private readonly link?: (attachment: string, reader: string) => string,
  ) {}

  /**
   * Runs one Parley command for the caller, validated against its schema as a frame from a
   * client would be. Only the command that `admits` gets the caller's admission callback.
   */
  private async exec<N extends CommandName>(c: Caller, cmd: N, args: CommandArgs<N>, admits = false): Promise<CommandResults[N]> {
    const frame = validate(Commands[cmd] as TSchema, { id: 0, cmd, ...args }, cmd);
    const s = this.session(c);
    if (admits && c.admit) s.admit = c.admit;
    return this.service.exec(s, frame as CommandFrame) as Promise<CommandResults[N]>;
  }

  private notify(users: string[], ev: string, data: Record<string, unknown>): Promise<unknown> {
    const unique = [...new Set(users)].filter((u) => userIdRe.test(u));
    if (unique.length === 0) return Promise.resolve();
    return this.exec({ user: CHAT21_IDENTITY }, 'notify', { users: unique, ev, data });
  }

  // ---- conversations and views ------------------------------------------------------------

  /**
   * The room of `me`'s conversation with `cw`: the room of a group id (one containing
   * "group-"), else the direct room with the user `cw` — never a room that shares its id.
   */
  conversation(me: Identity, cw: string): { room: string; direct: boolean } {
    const room = roomOfGroupId(cw);
    if (room !== null) return { room, direct: false };
    if (!userIdRe.test(cw)) throw new ParleyError('invalid', 'conversation id must be a user or group id', { field: 'conversWith' });
    if (cw === me.id) throw new ParleyError('invalid', 'a direct conversation needs another user');
    return { room: directRoomId(me.id, cw).id, direct: true };
  }

  /** The room a group id names; the groups API also takes a plain room id. */
  private groupRoom(gid: string): string {
    return roomOfGroupId(gid) ?? gid;
  }

  /** How `me` sees messages of `room`: the conversation id and whether it is direct. */
  async viewOf(me: string, room: string): Promise<View> {
    if (isDirectRoom(room)) {
      const peer = await this.service.directPeer(room, me);
      if (peer === undefined) throw new ParleyError('not_found', 'direct room has no pair');
      return { app: this.appId, me, conversWith: peer, direct: true, ...this.linksFor(me) };
    }
    let name = this.names.get(room);
    if (name === undefined) {
      name = (await this.store.getRoom(room))?.name ?? room;
      this.names.set(room, name);
    }
    return { app: this.appId, me, conversWith: groupIdOf(room), direct: false, groupName: name, ...this.linksFor(me) };
  }

  private linksFor(me: string): Pick<View, 'link'> {
    const link = this.link;
    return link ? { link: (id) => link(id, me) } : {};
  }

  /** Called when a room's settings changed (its name may have). */
  forget(room: string): void {
    this.names.delete(room);
  }

  /**
   * Called when a room was deleted: what Chat21 kept for it (its attributes, the archive marks
   * of its conversation) goes with it, so a room created again with the same id — by anyone —
   * starts clean instead of inheriting them.
   */
  roomDeleted(room: string): Promise<void> {
    this.names.delete(room);
    this.knownDirect.delete(room);
    return this.state.removeRoom(room);
  }

  // ---- messages -----------------------------------------------------------------------------

  /**
   * Sends a Chat21 message from `me` to a user (direct) or a group. A group is named by an id
   * containing "group-", or by `channel_type: "group"` with a room id. Unlike Chat21, the group
   * must exist (or be inline, with a "group-" id) and the sender must be a member.
   */
  async send(c: Caller, to: string, msg: OutgoingMessage): Promise<Chat21Message> {
    const me = c.user;
    const extras: Chat21Extras = {};
    if (msg.type !== undefined && msg.type !== 'text') extras.type = msg.type;
    // Kept as sent (an empty object or string too); null or absent reads back as null.
    if (msg.attributes) extras.attributes = msg.attributes;
    if (msg.metadata !== undefined && msg.metadata !== null) extras.metadata = msg.metadata;
    if (msg.recipient_fullname) extras.recipient_fullname = msg.recipient_fullname;
    if (msg.sender_fullname && msg.sender_fullname !== me.name) extras.sender_fullname = msg.sender_fullname;
    if (msg.timestamp !== undefined) extras.timestamp = msg.timestamp;
    // An image or file whose metadata.src is a Parley upload carries it (see attachmentOf).
    const attachment = attachmentOf(msg);
    // Chat21 takes an attachment without a caption; Parley's messages need a text or attachments.
    let text = msg.text ?? '';
    if (text === '' && !attachment) {
      if (!extras.type) throw new ParleyError('invalid', 'message: text: a text message needs a text', { field: 'text' });
      text = `[${extras.type}]`;
      extras.noText = true;
    }
    const gid = roomOfGroupId(to);
    const group = gid !== null || msg.channel_type === 'group' || msg.group !== undefined;
    let room: string;
    if (group) {
      if (msg.group && gid === null) {
        throw new ParleyError('invalid', `an inline group needs a group id (one containing "group-"), not "${to.slice(0, 80)}"`, { field: 'recipient' });
      }
      room = gid ?? to;
      if (!roomIdRe.test(room) || isDirectRoom(room)) throw new ParleyError('invalid', `"${to.slice(0, 80)}" is not a valid group id`, { field: 'recipient' });
      if (msg.group) await this.inlineGroup(c, room, msg);
    } else {
      if (!userIdRe.test(to)) throw new ParleyError('invalid', `"${to.slice(0, 80)}" is not a valid user id`, { field: 'recipient' });
      if (to === me.id) throw new ParleyError('invalid', 'a direct message needs another user', { field: 'recipient' });
      room = await this.directRoom(c, to);
    }
    const args: CommandArgs<'send'> = { room, text };
    if (Object.keys(extras).length > 0) args.data = { chat21: extras };
    if (attachment) args.attachments = [attachment];
    let seq: number;
    let ts: number;
    try {
      ({ seq, ts } = await this.exec(c, 'send', args, true));
    } catch (err) {
      if (group && err instanceof ParleyError && (err.code === 'forbidden' || err.code === 'not_found') && !(await this.store.getRoom(room))) {
        throw new ParleyError('not_found', `unknown group "${to.slice(0, 80)}": create it first (POST /groups) or send an inline group`, {
          group: to.slice(0, 80),
        });
      }
      throw err;
    }
    c.admit?.();
    const m: Message = { room, seq, kind: 'text', user: me.id, name: me.name, ts, text };
    if (args.data) m.data = args.data;
    return toChat21(m, await this.viewOf(me.id, room), group ? STATUS.DELIVERED : STATUS.SENT)!;
  }

  private async directRoom(c: Caller, to: string): Promise<string> {
    const { id } = directRoomId(c.user.id, to);
    if (this.knownDirect.has(id)) return id;
    const room = await this.exec(c, 'direct', { user: to });
    this.knownDirect.set(room.id, true);
    return room.id;
  }

  /** Chat21's volatile group: made a group room on first use, with the sender as owner. */
  private async inlineGroup(c: Caller, id: string, msg: OutgoingMessage): Promise<void> {
    if (await this.store.getRoom(id)) return;
    const members = Object.keys(msg.group!.members).filter((u) => u !== c.user.id);
    try {
      await this.exec(c, 'create', { kind: 'group', name: truncateText(msg.recipient_fullname ?? id, 100) || id, room: id });
    } catch (err) {
      if (err instanceof ParleyError && err.code === 'conflict') return;
      throw err;
    }
    await this.addToNew(c, id, members);
  }

  /**
   * Adds the listed members to a group just created by `c`, all or none: a list the rules
   * refuse (a user who blocks the creator, or is at a room cap) takes the group away again.
   */
  private async addToNew(c: Caller, room: string, members: string[]): Promise<void> {
    if (members.length === 0) return;
    try {
      await this.service.checkMembers(this.session(c), room, members, []);
    } catch (err) {
      await this.exec(c, 'destroy', { room }).catch(() => undefined);
      throw err;
    }
    for (const u of members) await this.exec(c, 'invite', { room, user: u });
  }

  private session(c: Caller): Session {
    const s: Session = { user: c.user };
    if (c.via) s.via = c.via;
    return s;
  }

  /** A "received" receipt (status 200): moves the read marker; the sender gets 250 (direct). */
  async receipt(c: Caller, cw: string, id: string): Promise<void> {
    const me = c.user;
    const { room, direct } = this.conversation(me, cw);
    const { room: idRoom, seq } = parseMessageId(id);
    if (idRoom !== room) throw new ParleyError('invalid', 'the message is not in this conversation', { field: 'message_id' });
    await this.exec(c, 'read', { room, seq });
    if (!direct) return;
    const [m] = (await this.exec(c, 'history', { room, after: seq - 1, limit: 1 })).messages;
    if (!m || m.seq !== seq || m.kind !== 'text' || m.user === me.id) return;
    await this.notify([m.user], NOTICE.receipt, { conversWith: me.id, message_id: id });
  }

  /** `is_new: false` marks the conversation read; the patch is echoed to the user's clients. */
  async updateConversation(c: Caller, cw: string, patch: { is_new: boolean }): Promise<void> {
    const { room } = this.conversation(c.user, cw);
    if (patch.is_new === false) await this.exec(c, 'read', { room, seq: Number.MAX_SAFE_INTEGER });
    else await this.exec(c, 'room', { room });
    await this.notify([c.user.id], NOTICE.conversation, { conversWith: cw, patch });
  }

  /** Archives the conversation until its next message. */
  async archive(c: Caller, cw: string): Promise<Chat21Conversation> {
    const me = c.user;
    const { room } = this.conversation(me, cw);
    const r = await this.exec(c, 'room', { room });
    await this.state.archive(me.id, room, r.lastSeq);
    const conversation = (await this.conversations(c, true, room))[0] ?? {
      timelineOf: me.id,
      conversWith: cw,
      key: cw,
      is_new: false,
      archived: true,
      last_message_text: '',
    };
    await this.notify([me.id], NOTICE.archived, { conversWith: cw, conversation });
    return conversation;
  }

  /** Active or archived conversations, newest first (200 at most), or the one of `onlyRoom`. */
  async conversations(c: Caller, archived: boolean, onlyRoom?: string): Promise<Chat21Conversation[]> {
    const me = c.user;
    const { rooms } = await this.exec(c, 'inbox', {});
    const marks = await this.state.archived(me.id);
    const out: Chat21Conversation[] = [];
    for (const e of rooms) {
      if (onlyRoom !== undefined && e.room.id !== onlyRoom) continue;
      if (!e.last && e.room.kind === 'direct') continue;
      const mark = marks.get(e.room.id);
      const isArchived = mark !== undefined && mark >= (e.last?.seq ?? 0);
      if (isArchived !== archived) continue;
      const view = await this.viewOf(me.id, e.room.id);
      const status = !e.last
        ? STATUS.DELIVERED
        : e.last.user === me.id
          ? view.direct
            ? STATUS.SENT
            : STATUS.DELIVERED
          : e.readSeq >= e.last.seq
            ? STATUS.RECEIVED
            : STATUS.DELIVERED;
      const doc = e.last ? (toChat21Docs(e.last, view, status).at(-1) ?? null) : null;
      out.push({
        ...(doc ?? {
          timestamp: e.room.createdAt,
          channel_type: view.direct ? 'direct' : 'group',
          recipient: view.conversWith,
          recipient_fullname: view.groupName ?? view.conversWith,
        }),
        timelineOf: me.id,
        conversWith: view.conversWith,
        key: view.conversWith,
        is_new: e.unread > 0,
        archived: isArchived,
        last_message_text: doc?.text ?? '',
      });
    }
    out.sort((a, b) => (b.timestamp ?? 0) - (a.timestamp ?? 0));
    return out.slice(0, HISTORY_LIMIT);
  }

  /** The conversation's last 200 messages, newest first, with each copy's status ([] when there is none). */
  async messages(c: Caller, cw: string): Promise<Chat21Message[]> {
    const me = c.user;
    const { room } = this.conversation(me, cw);
    let messages: Message[];
    let members: Member[];
    try {
      [{ messages }, { members }] = await Promise.all([this.exec(c, 'history', { room, limit: HISTORY_LIMIT }), this.exec(c, 'members', { room })]);
    } catch (err) {
      // No conversation yet (or none the user is in): Chat21 answers an empty timeline, and
      // clients load it before the first message.
      if (err instanceof ParleyError && err.code === 'not_found') return [];
      throw err;
    }
    const read = new Map(members.map((m) => [m.user, m.readSeq]));
    const view = await this.viewOf(me.id, room);
    const mine = read.get(me.id) ?? 0;
    const out: Chat21Message[] = [];
    for (const m of messages) {
      let status: number;
      if (m.user === me.id) {
        status = view.direct ? ((read.get(view.conversWith) ?? 0) >= m.seq ? STATUS.RETURN_RECEIPT : STATUS.SENT) : STATUS.DELIVERED;
      } else status = mine >= m.seq ? STATUS.RECEIVED : STATUS.DELIVERED;
      out.push(...toChat21Docs(m, view, status));
    }
    return out.reverse();
  }

  /**
   * Messages of a group before the member joined, for its history replay (oldest first): the
   * text messages and the info messages ("Group created", joins, leaves), as Chat21 replays the
   * group's whole timeline.
   */
  async replay(me: Identity, room: string, joinSeq: number): Promise<Chat21Message[]> {
    if (joinSeq <= 1 || isDirectRoom(room)) return [];
    const { messages } = await this.exec({ user: me }, 'history', { room, before: joinSeq, limit: HISTORY_LIMIT });
    const view = await this.viewOf(me.id, room);
    const out: Chat21Message[] = [];
    for (const m of messages) {
      for (const doc of toChat21Docs(m, view, STATUS.DELIVERED)) {
        doc.attributes = { ...doc.attributes, sendnotification: false };
        doc.__history = 'true';
        out.push(doc);
      }
    }
    return out;
  }

  // ---- groups -------------------------------------------------------------------------------

  private async groupOf(room: Room, members: Member[]): Promise<Chat21Group> {
    const owner = members.find((m) => m.role === 'owner')?.user ?? room.createdBy;
    return {
      uid: groupIdOf(room.id),
      name: room.name,
      appId: this.appId,
      owner,
      members: Object.fromEntries(members.map((m) => [m.user, 1 as const])),
      createdOn: room.createdAt,
      updatedOn: Date.now(),
      attributes: await this.state.groupAttributes(room.id),
    };
  }

  async group(c: Caller, gid: string): Promise<Chat21Group> {
    const id = this.groupRoom(gid);
    const room = await this.exec(c, 'room', { room: id });
    if (room.kind === 'direct') throw new ParleyError('not_found', 'no such group');
    return this.groupOf(room, (await this.exec(c, 'members', { room: id })).members);
  }

  private async notifyGroup(users: Iterable<string>, group: Chat21Group, key: string, parameters: Record<string, unknown>): Promise<void> {
    await this.notify([...users], NOTICE.group, { group: { ...group, notification: { messagelabel: { key, parameters } } } });
  }

  async createGroup(
    c: Caller,
    g: { group_name: string; group_id?: string; group_members?: Record<string, unknown> | null; attributes?: Record<string, unknown> | null },
  ): Promise<Chat21Group> {
    const id = g.group_id === undefined ? `group-${randomUUID()}` : this.groupRoom(g.group_id);
    if (isDirectRoom(id)) throw new ParleyError('invalid', `group ids starting with "${DIRECT_ROOM_PREFIX}" are reserved`, { field: 'group_id' });
    await this.exec(c, 'create', { kind: 'group', name: g.group_name, room: id });
    await this.addToNew(
      c,
      id,
      Object.keys(g.group_members ?? {}).filter((u) => u !== c.user.id),
    );
    if (g.attributes) await this.state.setGroupAttributes(id, g.attributes);
    this.forget(id);
    return this.group(c, id);
  }

  async join(c: Caller, gid: string, member: string): Promise<Chat21Group> {
    await this.exec(c, 'invite', { room: this.groupRoom(gid), user: member });
    const group = await this.group(c, gid);
    await this.notifyGroup(Object.keys(group.members), group, 'MEMBER_JOINED_GROUP', { member_id: member });
    return group;
  }

  async leave(c: Caller, gid: string, member: string): Promise<Chat21Group> {
    const before = await this.group(c, gid);
    const room = this.groupRoom(gid);
    if (member === c.user.id) await this.exec(c, 'leave', { room });
    else await this.exec(c, 'kick', { room, user: member });
    const members = { ...before.members };
    delete members[member];
    const group = { ...before, members, updatedOn: Date.now() };
    await this.notifyGroup(Object.keys(before.members), group, 'MEMBER_LEFT_GROUP', { member_id: member });
    return group;
  }

  async setMembers(c: Caller, gid: string, wanted: Record<string, unknown>): Promise<Chat21Group> {
    const before = await this.group(c, gid);
    const room = this.groupRoom(gid);
    await this.service.requireModerator(c, room);
    const added = Object.keys(wanted).filter((u) => !Object.hasOwn(before.members, u));
    const removed = Object.keys(before.members).filter((u) => !Object.hasOwn(wanted, u) && u !== before.owner && u !== c.user.id);
    // The whole list or nothing: every step is decided before the first is taken.
    await this.service.checkMembers(this.session(c), room, added, removed);
    for (const u of added) await this.exec(c, 'invite', { room, user: u });
    for (const u of removed) await this.exec(c, 'kick', { room, user: u });
    const group = await this.group(c, gid);
    await this.notifyGroup([...Object.keys(before.members), ...added], group, added.length > 0 ? 'MEMBER_JOINED_GROUP' : 'MEMBER_LEFT_GROUP', {
      added,
      removed,
    });
    return group;
  }

  async rename(c: Caller, gid: string, name: string): Promise<Chat21Group> {
    const room = this.groupRoom(gid);
    await this.exec(c, 'update', { room, name });
    this.forget(room);
    const group = await this.group(c, gid);
    await this.notifyGroup(Object.keys(group.members), group, 'DATA_UPDATED_GROUP', { group_name: name });
    return group;
  }

  async setAttributes(c: Caller, gid: string, attributes: Record<string, unknown>): Promise<Chat21Group> {
    const room = this.groupRoom(gid);
    await this.service.requireModerator(c, room);
    if (JSON.stringify(attributes).length > 16_384) throw new ParleyError('too_large', 'attributes are larger than 16 KiB');
    await this.state.setGroupAttributes(room, attributes);
    const group = await this.group(c, gid);
    await this.notifyGroup(Object.keys(group.members), group, 'ATTRIBUTES_UPDATED_GROUP', {});
    return group;
  }

  async saveInstance(c: Caller, instance: string, data: Record<string, unknown>): Promise<void> {
    if (JSON.stringify(data).length > 4096) throw new ParleyError('too_large', 'instance data is larger than 4 KiB');
    // Bounded per user: one more replaces the user's least recently saved instance.
    await this.state.saveInstance(c.user.id, instance, data, this.instancesPerUser);
  }
}
