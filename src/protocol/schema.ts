// One schema per message shape of the WebSocket protocol: used to validate incoming frames
// and to document them. Shared by the server and the client SDK (types only on the client).
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** User ids come from JWT `sub` claims; room ids from clients or the server. Both are
 * restricted so they are safe in URLs, topics, logs and SQL parameters alike. */
export const USER_ID_PATTERN = '^[A-Za-z0-9_.@|:+-]{1,128}$';
export const ROOM_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
export const userIdRe = new RegExp(USER_ID_PATTERN);
/**
 * The server's own user id: the default author of server-side posts. No token or account may
 * take it; what tells a server post apart is the message's `system` mark, never this id.
 */
export const SYSTEM_USER = 'system';
/** Ids of direct rooms start with this; no other room may use it. */
export const DIRECT_ROOM_PREFIX = 'dm_';
export const isDirectRoom = (room: string): boolean => room.startsWith(DIRECT_ROOM_PREFIX);
export const roomIdRe = new RegExp(ROOM_ID_PATTERN);

export const UserId = Type.String({ pattern: USER_ID_PATTERN, description: 'User id (the JWT `sub`)' });
export const RoomId = Type.String({ pattern: ROOM_ID_PATTERN, description: 'Room id' });
export const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Per-room sequence number' });
export const PositiveSeq = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const IdemKey = Type.String({ minLength: 1, maxLength: 64, description: 'Client-chosen idempotency key' });
export const RoomKind = Type.Union([Type.Literal('channel'), Type.Literal('group'), Type.Literal('direct')]);
export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')]);
export const MessageKind = Type.Union(
  [
    Type.Literal('text'),
    Type.Literal('edit'),
    Type.Literal('delete'),
    Type.Literal('reaction'),
    Type.Literal('join'),
    Type.Literal('leave'),
    Type.Literal('update'),
    Type.Literal('event'),
    Type.Literal('hidden'),
  ],
  {
    description:
      'update: room settings or a role changed; event: a custom application event {ev, data}; hidden: a direct message from a user you blocked (no content)',
  },
);
export const AccessMode = Type.Union([Type.Literal('blacklist'), Type.Literal('whitelist')], {
  description: 'blacklist: everyone but the black list may be a member; whitelist: only the white list (owners and admins always)',
});
export const AccessList = Type.Union([Type.Literal('black'), Type.Literal('white')]);
const Retention = Type.Object(
  {
    count: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 10_000_000 }), Type.Null()])),
    days: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 36500 }), Type.Null()])),
  },
  { additionalProperties: false, description: 'Keep at most `count` messages and/or messages younger than `days`; null removes a limit' },
);
const Seconds = Type.Integer({ minimum: 1, maximum: 100 * 365 * 86400, description: 'Duration in seconds (absent: forever)' });
const Users = Type.Array(UserId, { minItems: 1, maxItems: 1000, uniqueItems: true });
// Every string of every input (these and those inside `data`) is also checked by the text
// and depth rules of validate.ts: no NUL, no lone surrogate, at most MAX_DEPTH levels.
const Name = Type.String({ minLength: 1, maxLength: 100 });
const Topic = Type.String({ maxLength: 500 });
const Text = Type.String({ minLength: 1 });
const Emoji = Type.String({ minLength: 1, maxLength: 32 });
const Data = Type.Record(Type.String(), Type.Unknown());
export const AttachmentId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'Attachment id (from an upload)' });
/** Most attachments one message may carry. */
export const MESSAGE_ATTACHMENTS = 10;
/** What a message carries of each attachment, in `data.attachments` (set by the server only). */
export const AttachmentRef = Type.Object(
  {
    id: AttachmentId,
    name: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    type: Type.String(),
    width: Type.Optional(Type.Integer()),
    height: Type.Optional(Type.Integer()),
  },
  { description: 'An attachment of a message: read it with GET /api/v1/attachments/{id} or a signed URL from /meta' },
);
export type AttachmentRef = Static<typeof AttachmentRef>;

// ---- domain records -------------------------------------------------------------------
export const User = Type.Object({ id: UserId, name: Type.String(), profile: Data });
export const Room = Type.Object({
  id: RoomId,
  kind: RoomKind,
  name: Type.String(),
  topic: Type.String(),
  createdBy: Type.Union([UserId, Type.Null()]),
  createdAt: Type.Integer(),
  lastSeq: Seq,
  access: AccessMode,
  retention: Type.Object({ count: Type.Union([Type.Integer(), Type.Null()]), days: Type.Union([Type.Number(), Type.Null()]) }),
});
export const Ban = Type.Object({
  room: Type.Union([RoomId, Type.Null()], { description: 'null: server-wide' }),
  user: UserId,
  until: Type.Union([Type.Integer(), Type.Null()], { description: 'ms since epoch; null: forever' }),
  reason: Type.String(),
  by: Type.Union([UserId, Type.Null()]),
  createdAt: Type.Integer(),
});
export const Member = Type.Object(
  {
    room: RoomId,
    user: UserId,
    role: Role,
    joinedAt: Type.Integer(),
    joinSeq: PositiveSeq,
    readSeq: Seq,
    mutedUntil: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'muted until (ms; null: forever); absent when not muted' })),
  },
  { description: "joinSeq: seq of the member's join message; readSeq: its read marker" },
);
export const NotifyLevel = Type.Union([Type.Literal('all'), Type.Literal('mentions'), Type.Literal('none')], {
  description: 'Which messages of a room send you a `notify` event: all, only those that mention you, none',
});
export const MentionAll = Type.Union([Type.Literal('moderators'), Type.Literal('members')], {
  description: 'Who may mention the whole room with @room and @here',
});
/** What a reply shows of the message it answers, taken when the reply is sent. */
export const Quote = Type.Object({
  user: UserId,
  name: Type.String(),
  text: Type.Optional(Type.String({ description: "The first characters of the target's text (its latest edit)" })),
  deleted: Type.Optional(Type.Literal(true, { description: 'The target was deleted: no text' })),
});
/** What a thread's root shows of its thread. */
export const ThreadSummary = Type.Object(
  {
    count: Type.Integer({ minimum: 1, description: 'Replies sent in the thread (deleted ones too)' }),
    lastTs: Type.Integer({ description: 'When the latest reply was sent (ms since the epoch)' }),
    users: Type.Array(UserId, { maxItems: 3, description: 'The first repliers, in the order they first replied' }),
  },
  { description: "A thread root's summary" },
);
/** A room message. Edits, deletes and reactions are messages too, pointing at `target`. */
export const Message = Type.Object({
  room: RoomId,
  seq: PositiveSeq,
  kind: MessageKind,
  user: UserId,
  name: Type.String(),
  ts: Type.Integer(),
  text: Type.Optional(Type.String()),
  target: Type.Optional(PositiveSeq),
  data: Type.Optional(Data),
  profile: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The author's public profile (from its JWT), when it has one" })),
  system: Type.Optional(
    Type.Literal(true, {
      description:
        'Posted by the server itself (the server-side `post` API), whatever `user` says; only the server sets it, and clients must show such messages apart',
    }),
  ),
  mentions: Type.Optional(
    Type.Array(UserId, { description: 'Members the text mentions (@user; with @here, the members online when it was sent), set by the server' }),
  ),
  mentionsAll: Type.Optional(Type.Literal('room', { description: 'The text mentions every member (@room), set by the server' })),
  replyTo: Type.Optional(PositiveSeq),
  quote: Type.Optional(Quote),
  thread: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'Seq of the thread root this message belongs to (a thread reply, or an edit, delete or reaction of one)',
    }),
  ),
  alsoToRoom: Type.Optional(Type.Literal(true, { description: "A thread reply shown in the room's main timeline too" })),
  summary: Type.Optional(ThreadSummary),
});
export const InboxEntry = Type.Object({
  room: Room,
  role: Role,
  readSeq: Seq,
  unread: Type.Integer({
    minimum: 0,
    description:
      'Unread messages: texts by others after your read marker (a reply kept to its thread only when you take part in it or it mentions you), among the first 1,000 messages after the marker',
  }),
  unreadMore: Type.Optional(
    Type.Boolean({
      description: 'More than 1,000 messages follow your read marker: `unread` counts only the first 1,000 of them (show it as "N+"). Always set by the server',
    }),
  ),
  last: Type.Union([Message, Type.Null()]),
  mentions: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'Unread messages that mention you, among the first 1,000 messages after your read marker (always set by the server)',
    }),
  ),
  notify: Type.Optional(NotifyLevel),
});
export const Pin = Type.Object({ seq: PositiveSeq, by: UserId, ts: Type.Integer(), message: Message });
export const Version = Type.Object(
  {
    seq: PositiveSeq,
    text: Type.String(),
    ts: Type.Integer(),
  },
  { description: 'One version of a message: the original (seq of the message) or an edit (seq of the edit)' },
);
export type User = Static<typeof User>;
export type Ban = Static<typeof Ban>;
export type AccessMode = Static<typeof AccessMode>;
export type Room = Static<typeof Room>;
export type Member = Static<typeof Member>;
export type Message = Static<typeof Message>;
export type InboxEntry = Static<typeof InboxEntry>;
export type NotifyLevel = Static<typeof NotifyLevel>;
export type MentionAll = Static<typeof MentionAll>;
export type Quote = Static<typeof Quote>;
export type ThreadSummary = Static<typeof ThreadSummary>;
export type Pin = Static<typeof Pin>;
export type Version = Static<typeof Version>;
export type RoomKind = Static<typeof RoomKind>;
export type Role = Static<typeof Role>;
export type MessageKind = Static<typeof MessageKind>;

// ---- commands (client -> server) --------------------------------------------------------
const ReqId = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 64 })]);
const ResumeMap = Type.Record(Type.String({ pattern: ROOM_ID_PATTERN }), Seq, { description: 'room id -> last seq seen' });

function command<N extends string, P extends Record<string, TSchema>>(name: N, props: P, description: string) {
  return Type.Object({ id: ReqId, cmd: Type.Literal(name), ...props }, { additionalProperties: false, description });
}

export const Commands = {
  auth: command(
    'auth',
    { token: Type.String({ minLength: 1, maxLength: 8192 }), resume: Type.Optional(ResumeMap) },
    'Authenticate the connection; optionally resume rooms from the last seq seen.',
  ),
  ping: command('ping', {}, 'Round trip; keeps the connection alive.'),
  create: command(
    'create',
    {
      kind: Type.Union([Type.Literal('channel'), Type.Literal('group')]),
      name: Name,
      topic: Type.Optional(Topic),
      room: Type.Optional(RoomId),
    },
    'Create a channel (public) or group (private). The creator becomes owner.',
  ),
  join: command('join', { room: RoomId }, 'Join a channel.'),
  leave: command('leave', { room: RoomId }, 'Leave a room.'),
  leaveMany: command(
    'leaveMany',
    { rooms: Type.Array(RoomId, { minItems: 1, maxItems: 1000, uniqueItems: true }) },
    'Leave many rooms at once (unwanted invitations, say); rooms that cannot be left are listed with the reason.',
  ),
  rooms: command('rooms', { scope: Type.Optional(Type.Union([Type.Literal('mine'), Type.Literal('public')])) }, 'List your rooms, or public channels.'),
  room: command('room', { room: RoomId }, 'Get one room you can see.'),
  members: command('members', { room: RoomId }, 'List the members of a room.'),
  invite: command('invite', { room: RoomId, user: UserId }, 'Add a user to a group or channel.'),
  direct: command('direct', { user: UserId }, 'Open (or get) the direct room with another user.'),
  send: command(
    'send',
    {
      room: RoomId,
      text: Type.String({ description: 'The text; may be empty when the message carries attachments' }),
      key: Type.Optional(IdemKey),
      data: Type.Optional(Data),
      replyTo: Type.Optional(
        Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Seq of the text message of the same room this one replies to' }),
      ),
      attachments: Type.Optional(
        Type.Array(AttachmentId, {
          minItems: 1,
          maxItems: MESSAGE_ATTACHMENTS,
          uniqueItems: true,
          description: 'Ids of your uploads to this room not sent yet; the message carries them in `data.attachments`',
        }),
      ),
      thread: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: Number.MAX_SAFE_INTEGER,
          description: 'Seq of the thread root: a text message of the same room, not deleted, not itself a thread reply. The message goes to that thread',
        }),
      ),
      alsoToRoom: Type.Optional(Type.Boolean({ description: "With `thread`: show the reply in the room's main timeline too" })),
    },
    'Send a message; acknowledged with its seq once stored. @user, @room and @here in the text mention members.',
  ),
  edit: command('edit', { room: RoomId, target: PositiveSeq, text: Text, key: Type.Optional(IdemKey) }, 'Edit one of your messages (appends an edit).'),
  delete: command('delete', { room: RoomId, target: PositiveSeq, key: Type.Optional(IdemKey) }, 'Delete a message (appends a delete).'),
  react: command(
    'react',
    { room: RoomId, target: PositiveSeq, emoji: Emoji, remove: Type.Optional(Type.Boolean()), key: Type.Optional(IdemKey) },
    'Add or remove a reaction (appends a reaction).',
  ),
  history: command(
    'history',
    {
      room: RoomId,
      before: Type.Optional(PositiveSeq),
      after: Type.Optional(Seq),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
      thread: Type.Optional(
        Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Seq of a thread root: page through that thread instead' }),
      ),
    },
    "Page through history before or after a seq, oldest first: the room's main timeline (without replies kept to their thread), or one thread.",
  ),
  message: command('message', { room: RoomId, seq: PositiveSeq }, 'Get one message of a room by its seq, a reply kept to its thread included.'),
  resume: command('resume', { rooms: ResumeMap }, 'Replay each room after the given seq, then continue live.'),
  typing: command('typing', { room: RoomId, active: Type.Optional(Type.Boolean()) }, 'Tell the room you are typing.'),
  read: command('read', { room: RoomId, seq: Seq }, 'Move your read marker forward.'),
  presence: command('presence', { room: RoomId }, 'Members of the room who are online.'),
  inbox: command('inbox', {}, 'Your rooms with their last message and unread count.'),
  update: command(
    'update',
    {
      room: RoomId,
      name: Type.Optional(Name),
      topic: Type.Optional(Topic),
      access: Type.Optional(AccessMode),
      retention: Type.Optional(Retention),
    },
    "Change a room's name, topic, access mode or retention (owner, admin or administrator).",
  ),
  destroy: command('destroy', { room: RoomId }, 'Delete a room: members lose access at once (owner or administrator).'),
  role: command('role', { room: RoomId, user: UserId, role: Role }, 'Set a member\'s role (owner or administrator; giving "owner" hands the room over).'),
  kick: command(
    'kick',
    { room: RoomId, user: UserId, reason: Type.Optional(Type.String({ maxLength: 500 })) },
    'Remove a member from a room; it may join again (owner, admin or administrator).',
  ),
  mute: command(
    'mute',
    { room: RoomId, user: UserId, seconds: Type.Optional(Seconds), off: Type.Optional(Type.Boolean()) },
    'Stop a member from writing for a while, or for good; `off` lifts it (owner, admin or administrator).',
  ),
  ban: command(
    'ban',
    {
      room: Type.Optional(RoomId),
      user: UserId,
      seconds: Type.Optional(Seconds),
      reason: Type.Optional(Type.String({ maxLength: 500 })),
    },
    'Ban a user from a room (owner, admin or administrator) or server-wide without `room` (administrators).',
  ),
  banMany: command(
    'banMany',
    {
      bans: Type.Array(
        Type.Object(
          {
            user: UserId,
            room: Type.Optional(RoomId),
            seconds: Type.Optional(Seconds),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 1000 },
      ),
    },
    'Server-side: apply a list of bans {user, room?, seconds?} in one call (administrators).',
  ),
  unban: command('unban', { room: Type.Optional(RoomId), user: UserId }, 'Lift a ban.'),
  bans: command('bans', { room: Type.Optional(RoomId) }, 'Active bans of a room, or server-wide ones.'),
  access: command(
    'access',
    {
      room: RoomId,
      list: AccessList,
      add: Type.Optional(Users),
      remove: Type.Optional(Users),
    },
    "Change a room's black or white list; members who lose access are removed at once (owner, admin or administrator).",
  ),
  accessList: command('accessList', { room: RoomId, list: AccessList }, "Read a room's black or white list (owner, admin or administrator)."),
  block: command('block', { user: UserId }, 'Stop receiving direct messages from a user (the user is not told).'),
  unblock: command('unblock', { user: UserId }, 'Lift a block.'),
  blocks: command('blocks', {}, 'Users you block.'),
  notifications: command(
    'notifications',
    { room: RoomId, level: Type.Optional(NotifyLevel) },
    'Read, or set with `level`, which messages of the room send you a `notify` event.',
  ),
  settings: command(
    'settings',
    { room: RoomId, mentionAll: Type.Optional(MentionAll) },
    "Read a room's message settings, or change them (owner, admin or administrator).",
  ),
  pin: command('pin', { room: RoomId, seq: PositiveSeq }, 'Pin a text message of the room (owner, admin or administrator).'),
  unpin: command('unpin', { room: RoomId, seq: PositiveSeq }, 'Unpin a message (owner, admin or administrator).'),
  pins: command('pins', { room: RoomId }, "The room's pinned messages, most recently pinned first."),
  versions: command('versions', { room: RoomId, seq: PositiveSeq }, 'The versions of a text message: the original, then each edit.'),
  search: command(
    'search',
    {
      query: Type.String({ minLength: 1, maxLength: 200 }),
      room: Type.Optional(RoomId),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    },
    'Full-text search of the messages you may read, newest first.',
  ),
  post: command(
    'post',
    {
      rooms: Type.Array(RoomId, { minItems: 1, maxItems: 1000, uniqueItems: true }),
      messages: Type.Array(
        Type.Union([
          Type.Object({ text: Text }, { additionalProperties: false }),
          Type.Object({ ev: Type.String({ minLength: 1, maxLength: 64 }), data: Type.Optional(Type.Unknown()) }, { additionalProperties: false }),
        ]),
        { minItems: 1, maxItems: 100 },
      ),
      as: Type.Optional(Type.Object({ id: UserId, name: Type.Optional(Name) }, { additionalProperties: false })),
      key: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 60,
          description:
            'Idempotency key of the whole post: sent again with the same key, each message already stored is answered with its seq, not stored again (message i of a room is keyed `key.i`)',
        }),
      ),
    },
    'Server-side: post texts or custom events to many rooms at once (administrators).',
  ),
  notify: command(
    'notify',
    {
      users: Type.Optional(Users),
      all: Type.Optional(Type.Literal(true)),
      ev: Type.String({ minLength: 1, maxLength: 64 }),
      data: Type.Optional(Type.Unknown()),
    },
    "Server-side: push a notification to users' notification channels, or to everyone (administrators).",
  ),
} as const;

export type CommandName = keyof typeof Commands;
export type CommandFrame<N extends CommandName = CommandName> = Static<(typeof Commands)[N]>;
export type CommandArgs<N extends CommandName> = Omit<CommandFrame<N>, 'id' | 'cmd'>;

// ---- results (server -> client replies) -------------------------------------------------
export interface SendResult {
  seq: number;
  ts: number;
  duplicate: boolean;
}
export interface AuthResult {
  user: User;
  rooms: Room[];
  /** Room id -> seq of the user's join message (where a client new to the room starts). */
  joined: Record<string, number>;
  /** Room id -> the seq after which this connection receives the room. */
  resumed: Record<string, number>;
  /** Rooms named in `resume` that the user is not a member of. */
  denied: string[];
  heartbeatMs: number;
  /** Commands this connection may have awaiting their reply; sending more closes it (4008). */
  maxInFlight: number;
  /** Limits a client can check before sending: the longest message text (limits.textChars). */
  limits: { textChars: number };
}
export interface HistoryResult {
  messages: Message[];
  first: number;
  last: number;
  /** With `thread`: the thread's root, with its summary. */
  root?: Message;
}
export interface ResumeResult {
  rooms: Record<string, number>;
  denied: string[];
}
export interface CommandResults {
  auth: AuthResult;
  ping: { ts: number };
  create: Room;
  join: { room: Room; member: Member };
  leave: { room: string };
  leaveMany: { left: string[]; skipped: Array<{ room: string; code: string }> };
  rooms: { rooms: Room[] };
  room: Room;
  members: { members: Member[] };
  invite: { member: Member };
  direct: Room;
  send: SendResult;
  edit: SendResult;
  delete: SendResult;
  react: SendResult;
  history: HistoryResult;
  message: Message;
  resume: ResumeResult;
  typing: Record<string, never>;
  read: { room: string; seq: number };
  presence: { room: string; users: string[] };
  inbox: { rooms: InboxEntry[] };
  update: Room;
  destroy: { room: string };
  role: { member: Member };
  kick: { room: string; user: string };
  mute: { member: Member };
  ban: { ban: Ban };
  banMany: { bans: Ban[] };
  unban: { lifted: boolean };
  bans: { bans: Ban[] };
  access: { room: string; list: 'black' | 'white'; users: string[]; removed: string[] };
  accessList: { room: string; list: 'black' | 'white'; users: string[] };
  block: { user: string };
  unblock: { user: string };
  blocks: { users: string[] };
  notifications: { room: string; level: NotifyLevel };
  settings: { room: string; mentionAll: MentionAll };
  pin: { room: string; seq: number; pinned: boolean };
  unpin: { room: string; seq: number; pinned: boolean };
  pins: { room: string; pins: Pin[] };
  versions: { room: string; seq: number; versions: Version[]; deleted: boolean };
  search: { messages: Message[] };
  post: { posted: Array<{ room: string; seq: number }> };
  notify: { delivered: 'users' | 'all' };
}

// ---- frames -----------------------------------------------------------------------------
export interface ReplyOk<T = unknown> {
  id: string | number;
  ok: true;
  data: T;
}
export interface ReplyErr {
  id: string | number | null;
  ok: false;
  error: { code: string; message: string; details?: Record<string, unknown> };
}
export type Reply = ReplyOk | ReplyErr;

/** Push events (server -> client, no `id`). */
export interface EventMap {
  message: Message;
  typing: { room: string; user: string; active: boolean };
  presence: { room: string; user: string; online: boolean };
  read: { room: string; user: string; seq: number };
  /** You were added to a room (`member`) or removed from it (`member: null`). */
  room: { room: string; member: Member | null; reason?: string };
  /** History between from..to (inclusive) can no longer be served (retention). */
  gap: { room: string; from: number; to: number };
  /** The server is closing this connection; `code` says why. */
  goodbye: { code: string; message: string };
  /** A notification from the server-side API on your notification channel. */
  notice: { ev: string; data?: unknown };
  /**
   * A message you should be told about, on every connection of yours, whichever rooms it
   * follows: it mentions you (`mention`, `room`, `here`), or your level for the room is `all`.
   */
  notify: { room: string; seq: number; user: string; name: string; text: string; reason: 'mention' | 'room' | 'here' | 'message' };
  /** A message of the room was pinned or unpinned. */
  pin: { room: string; seq: number; pinned: boolean; by: string };
  /** A thread's summary changed (a reply was stored): `seq` is the root's. */
  thread: { room: string; seq: number; summary: ThreadSummary };
}
export type EventName = keyof EventMap;
export interface EventFrame<E extends EventName = EventName> {
  ev: E;
  data: EventMap[E];
}
