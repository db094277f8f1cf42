// Response shapes of the REST API: the command results of src/protocol/schema.ts as TypeBox
// schemas, built from its record schemas (Room, Member, Message…), so REST output is
// serialised and documented from one definition. A compile-time check below fails the build
// when one of them drifts from `CommandResults`.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import {
  AccessList,
  Ban,
  InboxEntry,
  Member,
  MentionAll,
  Message,
  NotifyLevel,
  Pin,
  PositiveSeq,
  Room,
  RoomId,
  Seq,
  User,
  UserId,
  Version,
  type CommandResults,
} from '../../protocol/schema.js';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({
        description: 'Stable error code: invalid, unauthorized, forbidden, not_found, conflict, too_large, rate_limited, unavailable, internal',
      }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { description: 'Error' },
);

export const Me = Type.Object(
  {
    id: UserId,
    name: Type.String(),
    profile: Type.Record(Type.String(), Type.Unknown()),
    admin: Type.Boolean({ description: 'True for administrator tokens and API keys' }),
  },
  { description: 'The authenticated user' },
);

const SendResult = Type.Object({
  seq: PositiveSeq,
  ts: Type.Integer(),
  duplicate: Type.Boolean({ description: 'true when the idempotency key was used before; nothing new was stored' }),
});

/** One schema per command result, for the commands the REST API carries. */
export const Results = {
  create: Room,
  join: Type.Object({ room: Room, member: Member }),
  leave: Type.Object({ room: RoomId }),
  leaveMany: Type.Object({
    left: Type.Array(RoomId, { description: 'rooms left' }),
    skipped: Type.Array(Type.Object({ room: RoomId, code: Type.String({ description: 'why: not_found, forbidden (not a member, a direct room)…' }) })),
  }),
  rooms: Type.Object({ rooms: Type.Array(Room) }),
  room: Room,
  members: Type.Object({ members: Type.Array(Member) }),
  invite: Type.Object({ member: Member }),
  direct: Room,
  send: SendResult,
  edit: SendResult,
  delete: SendResult,
  react: SendResult,
  history: Type.Object({
    messages: Type.Array(Message),
    first: Type.Integer({ description: 'lowest seq still stored' }),
    last: Seq,
    root: Type.Optional(Message),
  }),
  typing: Type.Object({}),
  read: Type.Object({ room: RoomId, seq: Seq }),
  presence: Type.Object({ room: RoomId, users: Type.Array(UserId) }),
  inbox: Type.Object({ rooms: Type.Array(InboxEntry) }),
  update: Room,
  destroy: Type.Object({ room: RoomId }),
  role: Type.Object({ member: Member }),
  kick: Type.Object({ room: RoomId, user: UserId }),
  mute: Type.Object({ member: Member }),
  ban: Type.Object({ ban: Ban }),
  banMany: Type.Object({ bans: Type.Array(Ban) }),
  unban: Type.Object({ lifted: Type.Boolean({ description: 'false when there was no such ban' }) }),
  bans: Type.Object({ bans: Type.Array(Ban) }),
  access: Type.Object({
    room: RoomId,
    list: AccessList,
    users: Type.Array(UserId),
    removed: Type.Array(UserId, { description: 'members removed because they lost access' }),
  }),
  accessList: Type.Object({ room: RoomId, list: AccessList, users: Type.Array(UserId) }),
  block: Type.Object({ user: UserId }),
  unblock: Type.Object({ user: UserId }),
  blocks: Type.Object({ users: Type.Array(UserId) }),
  search: Type.Object({ messages: Type.Array(Message) }),
  notifications: Type.Object({ room: RoomId, level: NotifyLevel }),
  settings: Type.Object({ room: RoomId, mentionAll: MentionAll }),
  pin: Type.Object({ room: RoomId, seq: PositiveSeq, pinned: Type.Boolean() }),
  unpin: Type.Object({ room: RoomId, seq: PositiveSeq, pinned: Type.Boolean() }),
  pins: Type.Object({ room: RoomId, pins: Type.Array(Pin) }),
  versions: Type.Object({
    room: RoomId,
    seq: PositiveSeq,
    versions: Type.Array(Version, { description: 'the original first, then each edit; empty when deleted' }),
    deleted: Type.Boolean(),
  }),
  post: Type.Object({ posted: Type.Array(Type.Object({ room: RoomId, seq: PositiveSeq })) }),
  notify: Type.Object({ delivered: Type.Union([Type.Literal('users'), Type.Literal('all')]) }),
} satisfies { [N in keyof CommandResults]?: TSchema };

export const UserResult = User;

// Fails to compile, naming the command, when a result schema and CommandResults disagree.
type Drift = {
  [N in keyof typeof Results]: [Static<(typeof Results)[N]>] extends [CommandResults[N]]
    ? [CommandResults[N]] extends [Static<(typeof Results)[N]>]
      ? never
      : N
    : N;
}[keyof typeof Results];
const noDrift: [Drift] extends [never] ? true : Drift = true;
void noDrift;
