// The permission table: for each action, what each role gets, on each transport. It drives
// test/permissions.test.ts (raw WebSocket, raw HTTP and raw MQTT clients against a real node)
// and is written out as the "Permissions" section of docs/protocol.md (the same test fails
// when that section and this table disagree; UPDATE_DOCS=1 rewrites it).
//
// An outcome is `ok`, the error code the action is refused with, or `n/a` where the transport
// has no form of the action. WebSocket and REST run the same service command, so they share
// one outcome; the Chat21 transport (MQTT publishes and the Chat21 REST API) carries the
// actions listed with a `chat21` form, with the same outcome unless `chat21Expect` says.

export const ROLES = ['outsider', 'member', 'muted', 'admin', 'owner', 'banned', 'administrator', 'apiKey', 'blocked', 'serverBanned'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABEL: Record<Role, string> = {
  outsider: 'non-member',
  member: 'member',
  muted: 'muted member',
  admin: 'room admin',
  owner: 'owner',
  banned: 'banned from the room',
  administrator: 'administrator (token)',
  apiKey: 'API key (REST)',
  blocked: 'blocked user (direct room)',
  serverBanned: 'banned server-wide',
};

export const TRANSPORTS = ['ws', 'rest', 'chat21'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export type Outcome = 'ok' | 'forbidden' | 'not_found' | 'conflict' | 'invalid' | 'n/a';

export type ActionId =
  | 'history'
  | 'historyChannel'
  | 'send'
  | 'editOwn'
  | 'editOther'
  | 'deleteOwn'
  | 'deleteOther'
  | 'react'
  | 'invite'
  | 'inviteChannel'
  | 'kick'
  | 'ban'
  | 'mute'
  | 'setRole'
  | 'update'
  | 'destroy'
  | 'joinChannel'
  | 'joinGroup'
  | 'typing'
  | 'read'
  | 'presence'
  | 'search'
  | 'sendThread'
  | 'threadHistory'
  | 'message'
  | 'versions'
  | 'pins'
  | 'pin'
  | 'unpin'
  | 'notifications'
  | 'settings';

export interface Row {
  action: ActionId;
  label: string;
  /** The kind of room the roles hold (the blocked user always acts in its direct room). */
  room: 'group' | 'channel';
  /** The WebSocket command and the REST route that carry it. */
  ws: string;
  rest: string;
  /** The Chat21 form (MQTT topic or Chat21 REST route); absent when Chat21 has none. */
  chat21?: string;
  expect: Record<Role, Outcome>;
  /** Chat21 outcomes that differ from `expect`. */
  chat21Expect?: Partial<Record<Role, Outcome>>;
}

const CODES: Record<string, Outcome> = { ok: 'ok', F: 'forbidden', N: 'not_found', C: 'conflict', I: 'invalid', '-': 'n/a' };

/** Outcomes in ROLES order: ok, F (forbidden), N (not_found), C (conflict), I (invalid), - (n/a). */
function cells(spec: string): Record<Role, Outcome> {
  const words = spec.trim().split(/\s+/);
  if (words.length !== ROLES.length) throw new Error(`permission table: ${words.length} outcomes for ${ROLES.length} roles: ${spec}`);
  return Object.fromEntries(
    ROLES.map((r, i) => {
      const o = CODES[words[i]!];
      if (!o) throw new Error(`permission table: unknown outcome ${words[i]}`);
      return [r, o];
    }),
  ) as Record<Role, Outcome>;
}

// Room messages are in a group unless the action names a channel. "other's" is a message of
// another plain member; kick, ban, mute and set role act on such a member.
//                                                        outsider member muted admin owner banned administrator apiKey blocked serverBanned
export const TABLE: Row[] = [
  {
    action: 'history',
    label: 'read history',
    room: 'group',
    ws: '`history`',
    rest: '`GET /rooms/:room/messages`',
    chat21: '`GET /{me}/conversations/{cw}/messages`',
    expect: cells('F ok ok ok ok F ok ok ok F'),
  },
  {
    action: 'historyChannel',
    label: "read a public channel's history",
    room: 'channel',
    ws: '`history`',
    rest: '`GET /rooms/:room/messages`',
    chat21: '`GET /{me}/conversations/{cw}/messages`',
    expect: cells('ok ok ok ok ok ok ok ok - F'),
  },
  {
    action: 'send',
    label: 'send',
    room: 'group',
    ws: '`send`',
    rest: '`POST /rooms/:room/messages`',
    chat21: '`outgoing/users/{me}/messages/{to}/outgoing`',
    expect: cells('F ok F ok ok F F F ok F'),
  },
  {
    action: 'editOwn',
    label: 'edit own message',
    room: 'group',
    ws: '`edit`',
    rest: '`PATCH /rooms/:room/messages/:seq`',
    expect: cells('F ok F ok ok F F F ok F'),
  },
  {
    action: 'editOther',
    label: "edit another's message",
    room: 'group',
    ws: '`edit`',
    rest: '`PATCH /rooms/:room/messages/:seq`',
    expect: cells('F F F F F F F F F F'),
  },
  {
    action: 'deleteOwn',
    label: 'delete own message',
    room: 'group',
    ws: '`delete`',
    rest: '`DELETE /rooms/:room/messages/:seq`',
    expect: cells('F ok ok ok ok F ok ok ok F'),
  },
  {
    action: 'deleteOther',
    label: "delete another's message",
    room: 'group',
    ws: '`delete`',
    rest: '`DELETE /rooms/:room/messages/:seq`',
    expect: cells('F F F ok ok F ok ok F F'),
  },
  {
    action: 'react',
    label: 'react',
    room: 'group',
    ws: '`react`',
    rest: '`POST /rooms/:room/messages/:seq/reactions`',
    expect: cells('F ok F ok ok F F F ok F'),
  },
  {
    action: 'invite',
    label: 'invite to a group',
    room: 'group',
    ws: '`invite`',
    rest: '`POST /rooms/:room/members`',
    chat21: '`POST /groups/{gid}/members`',
    expect: cells('F F F ok ok F ok ok F F'),
    chat21Expect: { blocked: 'n/a' },
  },
  {
    action: 'inviteChannel',
    label: 'invite to a channel',
    room: 'channel',
    ws: '`invite`',
    rest: '`POST /rooms/:room/members`',
    chat21: '`POST /groups/{gid}/members`',
    expect: cells('F ok ok ok ok F ok ok - F'),
  },
  {
    action: 'kick',
    label: 'kick a member',
    room: 'group',
    ws: '`kick`',
    rest: '`DELETE /rooms/:room/members/:user`',
    chat21: '`DELETE /groups/{gid}/members/{mid}`',
    expect: cells('F F F ok ok F ok ok F F'),
    chat21Expect: { blocked: 'n/a' },
  },
  { action: 'ban', label: 'ban a member', room: 'group', ws: '`ban`', rest: '`POST /rooms/:room/bans`', expect: cells('F F F ok ok F ok ok F F') },
  {
    action: 'mute',
    label: 'mute a member',
    room: 'group',
    ws: '`mute`',
    rest: '`PUT /rooms/:room/members/:user/mute`',
    expect: cells('F F F ok ok F ok ok F F'),
  },
  {
    action: 'setRole',
    label: "set a member's role",
    room: 'group',
    ws: '`role`',
    rest: '`PATCH /rooms/:room/members/:user`',
    expect: cells('F F F F ok F ok ok F F'),
  },
  {
    action: 'update',
    label: 'update the room',
    room: 'group',
    ws: '`update`',
    rest: '`PATCH /rooms/:room`',
    chat21: '`PUT /groups/{gid}`',
    expect: cells('F F F ok ok F ok ok F F'),
    chat21Expect: { blocked: 'n/a' },
  },
  { action: 'destroy', label: 'delete the room', room: 'group', ws: '`destroy`', rest: '`DELETE /rooms/:room`', expect: cells('F F F F ok F ok ok F F') },
  { action: 'joinChannel', label: 'join a channel', room: 'channel', ws: '`join`', rest: '`POST /rooms/:room/join`', expect: cells('ok C C C C F ok ok - F') },
  { action: 'joinGroup', label: 'join a group', room: 'group', ws: '`join`', rest: '`POST /rooms/:room/join`', expect: cells('F F F F F F F F - F') },
  { action: 'typing', label: 'typing', room: 'group', ws: '`typing`', rest: '`POST /rooms/:room/typing`', expect: cells('F ok ok ok ok F F F ok F') },
  {
    action: 'read',
    label: 'move the read marker',
    room: 'group',
    ws: '`read`',
    rest: '`PUT /rooms/:room/read`',
    chat21: '`users/{me}/conversations/{cw}/update`',
    expect: cells('F ok ok ok ok F F F ok F'),
  },
  { action: 'presence', label: 'presence', room: 'group', ws: '`presence`', rest: '`GET /rooms/:room/presence`', expect: cells('F ok ok ok ok F ok ok ok F') },
  { action: 'search', label: 'search the room', room: 'group', ws: '`search`', rest: '`GET /search?room=`', expect: cells('F ok ok ok ok F ok ok ok F') },
  {
    action: 'sendThread',
    label: 'reply in a thread',
    room: 'group',
    ws: '`send` with `thread`',
    rest: '`POST /rooms/:room/messages` with `thread`',
    expect: cells('F ok F ok ok F F F ok F'),
  },
  {
    action: 'threadHistory',
    label: 'read a thread',
    room: 'group',
    ws: '`history` with `thread`',
    rest: '`GET /rooms/:room/messages?thread=`',
    expect: cells('F ok ok ok ok F ok ok ok F'),
  },
  {
    action: 'message',
    label: 'read one message',
    room: 'group',
    ws: '`message`',
    rest: '`GET /rooms/:room/messages/:seq`',
    expect: cells('F ok ok ok ok F ok ok ok F'),
  },
  {
    action: 'versions',
    label: "list a message's versions",
    room: 'group',
    ws: '`versions`',
    rest: '`GET /rooms/:room/messages/:seq/versions`',
    expect: cells('F ok ok ok ok F ok ok ok F'),
  },
  { action: 'pins', label: 'list pins', room: 'group', ws: '`pins`', rest: '`GET /rooms/:room/pins`', expect: cells('F ok ok ok ok F ok ok ok F') },
  { action: 'pin', label: 'pin a message', room: 'group', ws: '`pin`', rest: '`PUT /rooms/:room/pins/:seq`', expect: cells('F F F ok ok F ok ok F F') },
  {
    action: 'unpin',
    label: 'unpin a message',
    room: 'group',
    ws: '`unpin`',
    rest: '`DELETE /rooms/:room/pins/:seq`',
    expect: cells('F F F ok ok F ok ok F F'),
  },
  {
    action: 'notifications',
    label: 'set own notification level',
    room: 'group',
    ws: '`notifications`',
    rest: '`PUT /rooms/:room/notifications`',
    expect: cells('F ok ok ok ok F F F ok F'),
  },
  {
    action: 'settings',
    label: 'change who may mention the room',
    room: 'group',
    ws: '`settings`',
    rest: '`PATCH /rooms/:room/settings`',
    expect: cells('F F F ok ok F ok ok F F'),
  },
];

/** The outcome of one cell: WebSocket and REST share the service's; API keys exist on REST only. */
export function outcome(row: Row, role: Role, transport: Transport): Outcome {
  if (transport === 'chat21') {
    if (!row.chat21 || role === 'apiKey') return 'n/a';
    return row.chat21Expect?.[role] ?? row.expect[role];
  }
  if (transport === 'ws' && role === 'apiKey') return 'n/a';
  return row.expect[role];
}

const SHOW: Record<Outcome, string> = { ok: '✓', forbidden: '✗', not_found: '`not_found`', conflict: '`conflict`', invalid: '`invalid`', 'n/a': '—' };

/** The permission table as the markdown of docs/protocol.md's "Permissions" section. */
export function renderPermissions(): string {
  const head = ['action', 'WebSocket', 'REST', 'Chat21 (MQTT, Chat21 REST)', ...ROLES.map((r) => ROLE_LABEL[r])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of TABLE) {
    const roles = ROLES.map((r) => {
      const main = outcome(row, r, r === 'apiKey' ? 'rest' : 'ws');
      const c21 = outcome(row, r, 'chat21');
      return c21 !== 'n/a' && c21 !== main ? `${SHOW[main]} (Chat21: ${SHOW[c21]})` : SHOW[main];
    });
    lines.push(`| ${[row.label, row.ws, row.rest, row.chat21 ?? '—', ...roles].join(' | ')} |`);
  }
  return lines.join('\n');
}
