// The Chat21 wire shapes: one TypeBox schema per payload a Chat21 client sends (MQTT publish
// or REST body), checked by the protocol's one validation (src/protocol/validate.ts), and the
// conversion of Parley messages into the message documents Chat21 clients read. Used by the
// Chat21 MQTT topics, the Chat21 REST routes and the Chat21 service.
import { Type, type Static } from '@sinclair/typebox';
import { ParleyError } from '../../errors.js';
import type { AttachmentRef, Message } from '../../protocol/schema.js';
import { USER_ID_PATTERN, ROOM_ID_PATTERN, isDirectRoom, roomIdRe } from '../../protocol/schema.js';

/** Message statuses of Chat21 (status 300 "seen" is defined by Chat21 but never produced). */
export const STATUS = { SENT: 100, DELIVERED: 150, RECEIVED: 200, RETURN_RECEIPT: 250 } as const;

export const Json = Type.Record(Type.String(), Type.Unknown());
/**
 * Members keyed by user id. A key that is not a user id makes the whole payload `invalid`
 * (a record's key pattern alone would let other keys through), so a member list is checked
 * whole before any of it is applied.
 */
const Members = Type.Record(Type.String({ pattern: USER_ID_PATTERN }), Type.Unknown(), { maxProperties: 1000, additionalProperties: false });

/**
 * An outgoing message, as `chat21client.sendMessage` builds it. Unknown fields are ignored.
 * The text may be empty or missing for a message of another type than "text" (an image or
 * file whose `metadata` says it all); Chat21Service.send checks that.
 */
export const OutgoingMessage = Type.Object({
  text: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  recipient_fullname: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
  sender_fullname: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
  attributes: Type.Optional(Type.Union([Json, Type.Null()])),
  metadata: Type.Optional(Type.Union([Json, Type.String({ maxLength: 2000 }), Type.Null()])),
  channel_type: Type.Optional(Type.Union([Type.Literal('direct'), Type.Literal('group')])),
  timestamp: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  group: Type.Optional(Type.Object({ members: Members })),
});
export type OutgoingMessage = Static<typeof OutgoingMessage>;

/** `users/{me}/messages/{cw}/{id}/update`: only the "received" receipt is accepted. */
export const MessageUpdate = Type.Object({ status: Type.Literal(STATUS.RECEIVED) });
/** `users/{me}/conversations/{cw}/update`: only `is_new` can be patched. */
export const ConversationUpdate = Type.Object({ is_new: Type.Boolean() }, { additionalProperties: false });
export type ConversationUpdate = Static<typeof ConversationUpdate>;

// ---- conversation ids ---------------------------------------------------------------------
//
// Chat21's rule: a conversation id that contains "group-" names a group; any other id names a
// user, and the conversation with a user is always the direct room of the pair, whatever rooms
// exist. A group or channel room whose id does not contain "group-" is therefore seen by Chat21
// clients under the id `group-~<room>`: "~" is in neither room nor user ids, so that id can
// never be a room's own id or a user's.
const GROUP_MARK = 'group-';
const ALIAS = 'group-~';

/** The Chat21 id of a group or channel room. */
export function groupIdOf(room: string): string {
  return room.includes(GROUP_MARK) ? room : ALIAS + room;
}

/** The room a Chat21 group id names; null when the id names a user (it has no "group-"). */
export function roomOfGroupId(id: string): string | null {
  if (!id.includes(GROUP_MARK)) return null;
  const room = id.startsWith(ALIAS) ? id.slice(ALIAS.length) : id;
  if (!roomIdRe.test(room) || isDirectRoom(room)) throw new ParleyError('invalid', `"${id.slice(0, 80)}" is not a valid group id`, { field: 'group' });
  return room;
}

const GroupName = Type.String({ minLength: 1, maxLength: 100 });
export const GroupId = Type.String({
  pattern: `^(${ALIAS})?${ROOM_ID_PATTERN.slice(1)}`,
  description: 'Group id: a Parley room id, or `group-~` and the room id (how Chat21 sees rooms whose id has no "group-")',
});
export const NewGroup = Type.Object({
  group_name: GroupName,
  group_id: Type.Optional(GroupId),
  // chat21client.groupCreate sends what it is given: null means none.
  group_members: Type.Optional(Type.Union([Members, Type.Null()])),
  attributes: Type.Optional(Type.Union([Json, Type.Null()])),
});
export const JoinGroup = Type.Object({ member_id: Type.String({ pattern: USER_ID_PATTERN }) });
export const SetMembers = Type.Object({ members: Members });
export const RenameGroup = Type.Object({ group_name: GroupName });
export const GroupAttributes = Type.Object({ attributes: Json });
/** `POST /{app}/messages`: the REST send. */
export const RestMessage = Type.Object({
  recipient_id: Type.String({ minLength: 1, maxLength: 128 }),
  recipient_fullname: Type.Optional(Type.String({ maxLength: 200 })),
  sender_fullname: Type.Optional(Type.String({ maxLength: 200 })),
  text: Type.Optional(Type.String()),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  channel_type: Type.Optional(Type.Union([Type.Literal('direct'), Type.Literal('group')])),
  attributes: Type.Optional(Json),
  metadata: Type.Optional(Type.Union([Json, Type.String({ maxLength: 2000 })])),
  timestamp: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
});

/** Parses a JSON payload (MQTT publish), `invalid` when it is not JSON. */
/** Refuses bytes that are not UTF-8 rather than turning them into U+FFFD. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function parseJson(payload: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    throw new ParleyError('invalid', 'payload is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ParleyError('invalid', 'payload is not valid JSON');
  }
}

/** What Parley keeps of a Chat21 message beside the text, in the message's `data.chat21`. */
export interface Chat21Extras {
  type?: string;
  attributes?: Record<string, unknown>;
  metadata?: Record<string, unknown> | string;
  recipient_fullname?: string;
  sender_fullname?: string;
  timestamp?: number;
  /** The client sent no text (an attachment): Parley's text is a "[type]" placeholder. */
  noText?: true;
}

/** A message as Chat21 clients read it: one inbox copy, with its status. */
export interface Chat21Message {
  text: string;
  type: string;
  sender: string;
  sender_fullname: string;
  recipient: string;
  recipient_fullname: string;
  attributes: Record<string, unknown> | null;
  metadata: Record<string, unknown> | string | null;
  channel_type: 'direct' | 'group';
  message_id: string;
  app_id: string;
  timestamp: number;
  status: number;
  timelineOf: string;
  conversWith: string;
  __history?: 'true';
}

/**
 * A Chat21 message id names its Parley message: `<room>.<seq>` (room ids have no dot). The
 * second document of a group's first message (its creator's join) is `<room>.1.joined`.
 */
export const messageId = (room: string, seq: number): string => `${room}.${seq}`;
const CREATOR_JOINED = '.joined';
export function parseMessageId(id: string): { room: string; seq: number } {
  const m = /^([A-Za-z0-9_-]{1,64})\.([0-9]{1,16})(?:\.joined)?$/.exec(id);
  const seq = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(seq) || seq < 1) {
    throw new ParleyError('invalid', 'unknown message id', { field: 'message_id' });
  }
  return { room: m[1]!, seq };
}

/** Where a message is seen from: whose inbox, the conversation, and whether it is direct. */
export interface View {
  app: string;
  me: string;
  conversWith: string;
  direct: boolean;
  groupName?: string;
  /** A URL of an attachment that `me` may open without a header (a signed URL). */
  link?: (attachment: string) => string;
}

// ---- attachments ----------------------------------------------------------------------------
//
// Chat21 shows one file per message: `type` "image" or "file", and `metadata` {src, name, type,
// size, width?, height?, uid}. A Parley message carrying attachments (data.attachments) is
// shown by its first one, `src` a signed URL for the reader; a Chat21 image or file message
// whose `metadata.src` is the URL of a Parley upload carries that upload.

const ATTACHMENT_URL = /\/api\/v1\/attachments\/([A-Za-z0-9_-]{22})(?:[/?#]|$)/;

/** The Parley upload an outgoing Chat21 image or file names in `metadata.src`, if any. */
export function attachmentOf(msg: { type?: string; metadata?: unknown }): string | null {
  if (msg.type !== 'image' && msg.type !== 'file') return null;
  const src = (msg.metadata as { src?: unknown } | null | undefined)?.src;
  return typeof src === 'string' ? (ATTACHMENT_URL.exec(src)?.[1] ?? null) : null;
}

function attachmentMetadata(f: AttachmentRef, view: View): Record<string, unknown> {
  return {
    src: view.link ? view.link(f.id) : `/api/v1/attachments/${f.id}`,
    name: f.name,
    type: f.type,
    size: f.size,
    ...(f.width !== undefined ? { width: f.width, height: f.height } : {}),
    uid: f.id,
  };
}

const INFO: Record<string, string> = { join: 'MEMBER_JOINED_GROUP', leave: 'MEMBER_LEFT_GROUP' };

/**
 * A client's message attributes without what makes Chat21 clients show a message as a server
 * notice ("X joined the group"): a `subtype` starting with "info" and the `messagelabel` that
 * names the notice's text. Only the server writes notices (its join and leave documents, and
 * messages posted by the server-side API, which carry the `system` mark); anything else a
 * client sent is kept.
 */
export function clientAttributes(a: Record<string, unknown>): Record<string, unknown> {
  const info = typeof a.subtype === 'string' && a.subtype.toLowerCase().startsWith('info');
  if (!info && !Object.hasOwn(a, 'messagelabel')) return a;
  return Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'messagelabel' && !(k === 'subtype' && info)));
}

/**
 * The Chat21 documents of a Parley message in `view`, oldest first: none for messages Chat21
 * has no form for (edits, deletes, reactions, custom events, hidden placeholders, direct
 * joins), one for a text message or a group join or leave (a Chat21 "info" message from
 * `system`). A group's first message, its creator's join, is two: Chat21's "Group created"
 * (GROUP_CREATED) and the creator's own "joined group on creation" (MEMBER_JOINED_GROUP,
 * message id `<room>.1.joined`), as chat21-http-server sends both.
 */
export function toChat21Docs(m: Message, view: View, status: number): Chat21Message[] {
  const base = {
    message_id: messageId(m.room, m.seq),
    app_id: view.app,
    timestamp: m.ts,
    status,
    timelineOf: view.me,
    conversWith: view.conversWith,
  };
  if (m.kind === 'text') {
    const x = (m.data?.chat21 ?? {}) as Chat21Extras;
    const file = (m.data?.attachments as AttachmentRef[] | undefined)?.[0];
    const recipient = view.direct ? (m.user === view.me ? view.conversWith : view.me) : view.conversWith;
    return [
      {
        text: x.noText ? '' : (m.text ?? ''),
        type: x.type ?? (file ? (file.width !== undefined ? 'image' : 'file') : 'text'),
        sender: m.user,
        sender_fullname: x.sender_fullname ?? m.name,
        recipient,
        recipient_fullname: x.recipient_fullname ?? (view.direct ? recipient : (view.groupName ?? recipient)),
        // As sent: a client's null (or a message from another transport: none) stays null.
        attributes: x.attributes ? (m.system ? x.attributes : clientAttributes(x.attributes)) : null,
        metadata: file ? { ...(typeof x.metadata === 'object' ? x.metadata : {}), ...attachmentMetadata(file, view) } : (x.metadata ?? null),
        channel_type: view.direct ? 'direct' : 'group',
        ...base,
        timestamp: x.timestamp ?? m.ts,
      },
    ];
  }
  const key = INFO[m.kind];
  if (view.direct || !key) return [];
  const info = (k: string, text: string, parameters: Record<string, string>, id = base.message_id): Chat21Message => ({
    text,
    type: 'text',
    sender: 'system',
    sender_fullname: 'System',
    recipient: view.conversWith,
    recipient_fullname: view.groupName ?? view.conversWith,
    attributes: { subtype: 'info', updateconversation: true, messagelabel: { key: k, parameters } },
    metadata: '',
    channel_type: 'group',
    ...base,
    message_id: id,
  });
  const member = { member_id: m.user, fullname: m.name };
  if (m.kind === 'join' && m.seq === 1) {
    return [
      info('GROUP_CREATED', 'Group created', { creator: m.user }),
      info(key, `${m.name} joined group on creation`, member, `${base.message_id}${CREATOR_JOINED}`),
    ];
  }
  return [info(key, key === 'MEMBER_JOINED_GROUP' ? `${m.name} added to group` : `${m.name} removed from group`, member)];
}

/** The main Chat21 document of a Parley message (see toChat21Docs), or null when it has none. */
export function toChat21(m: Message, view: View, status: number): Chat21Message | null {
  return toChat21Docs(m, view, status)[0] ?? null;
}
