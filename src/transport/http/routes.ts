// The REST routes that carry service commands, declared in one table: method and path, where
// each command argument comes from (path, query, body, header), the success status, and the
// response shape. Registration (api.ts) and the OpenAPI document both come from this table.
// Request schemas are the command schemas of src/protocol/schema.ts minus what the path
// carries, so a REST body is validated exactly like the WebSocket frame it becomes.
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import { AccessList, Commands, IdemKey, Message, PositiveSeq, RoomId, UserId, type CommandName, type SendResult } from '../../protocol/schema.js';
import { ParleyError } from '../../errors.js';
import { Results } from './schemas.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The validated parts of a request. */
export interface Parts {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

export interface Outcome {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface CommandRoute {
  method: Method;
  /** Path under /api/v1, fastify syntax (`:room`). */
  url: string;
  cmd: CommandName;
  /** OpenAPI operationId; defaults to the command name (set it where a command has several routes). */
  op?: string;
  tag: string;
  /** Defaults to the command's description. */
  summary?: string;
  params?: TObject;
  query?: TObject;
  body?: TObject;
  headers?: TObject;
  /** Success status (default 200). */
  status?: number;
  /** Success body schema (default: the command's result). */
  response?: TSchema;
  /** The command's arguments from the request. */
  args(p: Parts): Record<string, unknown>;
  /** Shapes the command's result into the reply (default: the result as is). */
  reply?(data: unknown, p: Parts): Outcome;
}

/** A command's arguments minus the envelope and whatever the path carries. */
function argsOf(cmd: CommandName, ...fromPath: string[]): TObject {
  return Type.Omit(Commands[cmd] as unknown as TObject, ['id', 'cmd', ...fromPath]);
}

const P = {
  room: Type.Object({ room: RoomId }),
  user: Type.Object({ user: UserId }),
  roomSeq: Type.Object({ room: RoomId, seq: PositiveSeq }),
  roomUser: Type.Object({ room: RoomId, user: UserId }),
  roomList: Type.Object({ room: RoomId, list: AccessList }),
};

const IdemHeaders = Type.Object({
  'idempotency-key': Type.Optional({ ...IdemKey, description: 'Makes the write idempotent (same as the body "key")' }),
});

/** The idempotency key from the header or the body; both must agree when both are given. */
function idemKey(p: Parts): { key?: string } {
  const header = p.headers['idempotency-key'] as string | undefined;
  const body = p.body.key as string | undefined;
  if (header !== undefined && body !== undefined && header !== body) {
    throw new ParleyError('invalid', 'key: the Idempotency-Key header and the body "key" differ', { field: 'key', in: 'header' });
  }
  const key = header ?? body;
  return key === undefined ? {} : { key };
}

/** A send answers 201 with the new message's location, or 200 when its key was used before. */
function sent(data: unknown, p: Parts): Outcome {
  const r = data as SendResult;
  return { status: r.duplicate ? 200 : 201, body: r, headers: { location: `/api/v1/rooms/${p.params.room as string}/messages/${r.seq}` } };
}
/** Edits, deletes and reactions are messages too: 200 with the location of the one appended. */
function appended(data: unknown, p: Parts): Outcome {
  const r = data as SendResult;
  return { body: r, headers: { location: `/api/v1/rooms/${p.params.room as string}/messages/${r.seq}` } };
}

const room = (p: Parts) => ({ room: p.params.room });
const roomUser = (p: Parts) => ({ room: p.params.room, user: p.params.user });

export const routes: CommandRoute[] = [
  // ---- rooms
  { method: 'POST', url: '/rooms', cmd: 'create', tag: 'rooms', body: argsOf('create'), status: 201, args: (p) => p.body },
  { method: 'GET', url: '/rooms', cmd: 'rooms', tag: 'rooms', summary: 'List your rooms.', args: () => ({ scope: 'mine' }) },
  { method: 'GET', url: '/rooms/public', cmd: 'rooms', op: 'publicRooms', tag: 'rooms', summary: 'List public channels.', args: () => ({ scope: 'public' }) },
  { method: 'GET', url: '/rooms/:room', cmd: 'room', tag: 'rooms', params: P.room, args: room },
  {
    method: 'PATCH',
    url: '/rooms/:room',
    cmd: 'update',
    tag: 'rooms',
    params: P.room,
    body: argsOf('update', 'room'),
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  { method: 'DELETE', url: '/rooms/:room', cmd: 'destroy', tag: 'rooms', params: P.room, args: room },
  { method: 'POST', url: '/rooms/:room/join', cmd: 'join', tag: 'rooms', params: P.room, args: room },
  { method: 'POST', url: '/rooms/:room/leave', cmd: 'leave', tag: 'rooms', params: P.room, args: room },
  { method: 'POST', url: '/rooms/leave', cmd: 'leaveMany', tag: 'rooms', body: argsOf('leaveMany'), args: (p) => p.body },
  { method: 'POST', url: '/direct/:user', cmd: 'direct', tag: 'rooms', params: P.user, args: (p) => ({ user: p.params.user }) },

  // ---- members and moderation
  { method: 'GET', url: '/rooms/:room/members', cmd: 'members', tag: 'members', params: P.room, args: room },
  {
    method: 'POST',
    url: '/rooms/:room/members',
    cmd: 'invite',
    tag: 'members',
    params: P.room,
    body: argsOf('invite', 'room'),
    status: 201,
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  {
    method: 'PATCH',
    url: '/rooms/:room/members/:user',
    cmd: 'role',
    tag: 'members',
    params: P.roomUser,
    body: argsOf('role', 'room', 'user'),
    args: (p) => ({ ...p.body, ...roomUser(p) }),
  },
  {
    method: 'DELETE',
    url: '/rooms/:room/members/:user',
    cmd: 'kick',
    tag: 'members',
    params: P.roomUser,
    query: argsOf('kick', 'room', 'user'),
    args: (p) => ({ ...p.query, ...roomUser(p) }),
  },
  {
    method: 'PUT',
    url: '/rooms/:room/members/:user/mute',
    cmd: 'mute',
    tag: 'members',
    summary: 'Mute a member for `seconds`, or for good (owner, admin or administrator).',
    params: P.roomUser,
    body: argsOf('mute', 'room', 'user', 'off'),
    args: (p) => ({ ...p.body, ...roomUser(p) }),
  },
  {
    method: 'DELETE',
    url: '/rooms/:room/members/:user/mute',
    cmd: 'mute',
    op: 'unmute',
    tag: 'members',
    summary: 'Lift a mute (owner, admin or administrator).',
    params: P.roomUser,
    args: (p) => ({ ...roomUser(p), off: true }),
  },
  {
    method: 'GET',
    url: '/rooms/:room/bans',
    cmd: 'bans',
    tag: 'members',
    summary: 'Active bans of a room (owner, admin or administrator).',
    params: P.room,
    args: room,
  },
  {
    method: 'POST',
    url: '/rooms/:room/bans',
    cmd: 'ban',
    tag: 'members',
    summary: 'Ban a user from a room, removing it if a member (owner, admin or administrator).',
    params: P.room,
    body: argsOf('ban', 'room'),
    status: 201,
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  {
    method: 'DELETE',
    url: '/rooms/:room/bans/:user',
    cmd: 'unban',
    tag: 'members',
    summary: 'Lift a room ban (owner, admin or administrator).',
    params: P.roomUser,
    args: roomUser,
  },
  {
    method: 'GET',
    url: '/rooms/:room/access/:list',
    cmd: 'accessList',
    tag: 'members',
    params: P.roomList,
    args: (p) => ({ room: p.params.room, list: p.params.list }),
  },
  {
    method: 'PATCH',
    url: '/rooms/:room/access/:list',
    cmd: 'access',
    tag: 'members',
    params: P.roomList,
    body: argsOf('access', 'room', 'list'),
    args: (p) => ({ ...p.body, room: p.params.room, list: p.params.list }),
  },
  { method: 'GET', url: '/bans', cmd: 'bans', op: 'serverBans', tag: 'members', summary: 'Active server-wide bans (administrators).', args: () => ({}) },
  {
    method: 'POST',
    url: '/bans',
    cmd: 'ban',
    op: 'serverBan',
    tag: 'members',
    summary: 'Ban a user server-wide; its connections are closed (administrators).',
    body: argsOf('ban', 'room'),
    status: 201,
    args: (p) => p.body,
  },
  {
    method: 'DELETE',
    url: '/bans/:user',
    cmd: 'unban',
    op: 'serverUnban',
    tag: 'members',
    summary: 'Lift a server-wide ban (administrators).',
    params: P.user,
    args: (p) => ({ user: p.params.user }),
  },

  // ---- messages
  {
    method: 'POST',
    url: '/rooms/:room/messages',
    cmd: 'send',
    tag: 'messages',
    params: P.room,
    headers: IdemHeaders,
    body: argsOf('send', 'room'),
    status: 201,
    args: (p) => ({ ...p.body, ...idemKey(p), ...room(p) }),
    reply: sent,
  },
  {
    method: 'GET',
    url: '/rooms/:room/messages',
    cmd: 'history',
    tag: 'messages',
    params: P.room,
    query: argsOf('history', 'room'),
    args: (p) => ({ ...p.query, ...room(p) }),
  },
  {
    method: 'GET',
    url: '/rooms/:room/messages/:seq',
    cmd: 'message',
    tag: 'messages',
    summary: 'Get one message, a reply kept to its thread included.',
    params: P.roomSeq,
    response: Message,
    args: (p) => ({ room: p.params.room, seq: p.params.seq }),
  },
  {
    method: 'PATCH',
    url: '/rooms/:room/messages/:seq',
    cmd: 'edit',
    tag: 'messages',
    params: P.roomSeq,
    headers: IdemHeaders,
    body: argsOf('edit', 'room', 'target'),
    reply: appended,
    args: (p) => ({ ...p.body, ...idemKey(p), room: p.params.room, target: p.params.seq }),
  },
  {
    method: 'DELETE',
    url: '/rooms/:room/messages/:seq',
    cmd: 'delete',
    tag: 'messages',
    params: P.roomSeq,
    headers: IdemHeaders,
    reply: appended,
    args: (p) => ({ ...idemKey(p), room: p.params.room, target: p.params.seq }),
  },
  {
    method: 'POST',
    url: '/rooms/:room/messages/:seq/reactions',
    cmd: 'react',
    tag: 'messages',
    params: P.roomSeq,
    headers: IdemHeaders,
    body: argsOf('react', 'room', 'target'),
    reply: appended,
    args: (p) => ({ ...p.body, ...idemKey(p), room: p.params.room, target: p.params.seq }),
  },
  {
    method: 'GET',
    url: '/rooms/:room/messages/:seq/versions',
    cmd: 'versions',
    tag: 'messages',
    params: P.roomSeq,
    args: (p) => ({ room: p.params.room, seq: p.params.seq }),
  },
  { method: 'GET', url: '/rooms/:room/pins', cmd: 'pins', tag: 'messages', params: P.room, args: room },
  { method: 'PUT', url: '/rooms/:room/pins/:seq', cmd: 'pin', tag: 'messages', params: P.roomSeq, args: (p) => ({ room: p.params.room, seq: p.params.seq }) },
  {
    method: 'DELETE',
    url: '/rooms/:room/pins/:seq',
    cmd: 'unpin',
    tag: 'messages',
    params: P.roomSeq,
    args: (p) => ({ room: p.params.room, seq: p.params.seq }),
  },
  { method: 'GET', url: '/search', cmd: 'search', tag: 'messages', query: argsOf('search'), args: (p) => p.query },

  // ---- read markers, inbox, presence, typing
  {
    method: 'PUT',
    url: '/rooms/:room/read',
    cmd: 'read',
    tag: 'inbox',
    params: P.room,
    body: argsOf('read', 'room'),
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  { method: 'GET', url: '/inbox', cmd: 'inbox', tag: 'inbox', args: () => ({}) },
  {
    method: 'GET',
    url: '/rooms/:room/notifications',
    cmd: 'notifications',
    tag: 'inbox',
    summary: 'Your notification level in the room.',
    params: P.room,
    args: room,
  },
  {
    method: 'PUT',
    url: '/rooms/:room/notifications',
    cmd: 'notifications',
    op: 'setNotifications',
    tag: 'inbox',
    summary: 'Set your notification level in the room: all, mentions or none.',
    params: P.room,
    body: Type.Required(argsOf('notifications', 'room')),
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  {
    method: 'GET',
    url: '/rooms/:room/settings',
    cmd: 'settings',
    tag: 'rooms',
    summary: "The room's message settings (who may use @room and @here).",
    params: P.room,
    args: room,
  },
  {
    method: 'PATCH',
    url: '/rooms/:room/settings',
    cmd: 'settings',
    op: 'updateSettings',
    tag: 'rooms',
    summary: "Change the room's message settings (owner, admin or administrator).",
    params: P.room,
    body: argsOf('settings', 'room'),
    args: (p) => ({ ...p.body, ...room(p) }),
  },
  { method: 'GET', url: '/rooms/:room/presence', cmd: 'presence', tag: 'inbox', params: P.room, args: room },
  {
    method: 'POST',
    url: '/rooms/:room/typing',
    cmd: 'typing',
    tag: 'inbox',
    params: P.room,
    body: argsOf('typing', 'room'),
    args: (p) => ({ ...p.body, ...room(p) }),
  },

  // ---- blocks
  { method: 'GET', url: '/blocks', cmd: 'blocks', tag: 'users', args: () => ({}) },
  { method: 'PUT', url: '/blocks/:user', cmd: 'block', tag: 'users', params: P.user, args: (p) => ({ user: p.params.user }) },
  { method: 'DELETE', url: '/blocks/:user', cmd: 'unblock', tag: 'users', params: P.user, args: (p) => ({ user: p.params.user }) },

  // ---- server-side API for applications (administrator token or API key)
  { method: 'POST', url: '/server/post', cmd: 'post', tag: 'server', body: argsOf('post'), args: (p) => p.body },
  { method: 'POST', url: '/server/notify', cmd: 'notify', tag: 'server', body: argsOf('notify'), args: (p) => p.body },
  { method: 'POST', url: '/server/bans', cmd: 'banMany', tag: 'server', body: argsOf('banMany'), status: 201, args: (p) => p.body },
];

/** The success body schema of a route. */
export function responseOf(r: CommandRoute): TSchema {
  return r.response ?? (Results as Record<string, TSchema>)[r.cmd]!;
}

/** Commands deliberately not carried over HTTP: they only make sense on a live connection. */
export const CONNECTION_ONLY: readonly CommandName[] = ['auth', 'ping', 'resume'];
