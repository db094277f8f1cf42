// The rules of src/service/rules.ts, without a database: each decision from the facts it is
// given. The store suites (test/conformance) check the same behaviour through the room log.
import { describe, expect, it } from 'vitest';
import type { Ban, Member, Room } from '../../src/protocol/schema.js';
import {
  checkAdmission,
  checkNotBanned,
  checkRoomCaps,
  checkRoomId,
  decideAccess,
  decideAppend,
  decideBan,
  decideCreate,
  decideDestroy,
  decideInvite,
  decideJoin,
  decideKick,
  decideLeave,
  decideMute,
  decideRole,
  decideUpdate,
  directPeer,
  hasAccess,
  KEPT_HISTORY,
  requireModerator,
  withoutAccess,
  type Actor,
  type AppendFacts,
  type AppendRequest,
} from '../../src/service/rules.js';

const NOW = 1_000_000;
const room = (kind: Room['kind'], over: Partial<Room> = {}): Room => ({
  id: 'r',
  kind,
  name: 'R',
  topic: '',
  createdBy: 'o',
  createdAt: 0,
  lastSeq: 5,
  access: 'blacklist',
  retention: { count: null, days: null },
  ...over,
});
const member = (user: string, role: Member['role'] = 'member', over: Partial<Member> = {}): Member => ({
  room: 'r',
  user,
  role,
  joinedAt: 0,
  joinSeq: 1,
  readSeq: 0,
  ...over,
});
const actor = (id: string, admin = false): Actor => ({ id, name: id, admin });
const ban = (until: number | null, reason = ''): Ban => ({ room: 'r', user: 'x', until, reason, by: 'o', createdAt: 0 });
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};
const details = (fn: () => unknown): unknown => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { details?: unknown }).details;
  }
};

describe('rules: messages', () => {
  const req = (over: Partial<AppendRequest> = {}): AppendRequest => ({ user: 'a', kind: 'text', admin: false, system: false, ...over });
  const facts = (over: Partial<AppendFacts> = {}): AppendFacts => ({
    room: room('group'),
    member: member('a'),
    prior: null,
    target: null,
    blockedBy: null,
    now: NOW,
    ...over,
  });

  it('members write; others are refused unless the server posts; an unknown room is not_found', () => {
    expect(decideAppend(req(), facts())).toEqual({ hiddenFor: null });
    expect(code(() => decideAppend(req(), facts({ member: null })))).toBe('forbidden');
    expect(decideAppend(req({ system: true }), facts({ member: null }))).toEqual({ hiddenFor: null });
    expect(code(() => decideAppend(req(), facts({ room: null })))).toBe('not_found');
  });

  it('a muted member cannot write until the mute ends, but may delete', () => {
    const muted = member('a', 'member', { mutedUntil: NOW + 1 });
    expect(details(() => decideAppend(req(), facts({ member: muted })))).toMatchObject({ reason: 'muted', until: NOW + 1 });
    expect(code(() => decideAppend(req(), facts({ member: member('a', 'member', { mutedUntil: null }) })))).toBe('forbidden');
    expect(decideAppend(req(), facts({ member: member('a', 'member', { mutedUntil: NOW }) }))).toEqual({ hiddenFor: null });
    const own = { kind: 'text' as const, user: 'a', deleted: false };
    expect(decideAppend(req({ kind: 'delete' }), facts({ member: muted, target: own }))).toEqual({ hiddenFor: null });
  });

  it('a key used before answers with the earlier message', () => {
    expect(decideAppend(req(), facts({ prior: 7 }))).toEqual({ duplicate: 7 });
  });

  it('edits, deletes and reactions need a text message of the room that is not deleted', () => {
    for (const kind of ['edit', 'delete', 'reaction'] as const) {
      expect(code(() => decideAppend(req({ kind }), facts()))).toBe('not_found');
      expect(code(() => decideAppend(req({ kind }), facts({ target: { kind: 'join', user: 'a', deleted: false } })))).toBe('not_found');
      expect(code(() => decideAppend(req({ kind }), facts({ target: { kind: 'text', user: 'a', deleted: true } })))).toBe('conflict');
    }
  });

  it('only the author edits; the author, a room moderator or a server administrator deletes', () => {
    const theirs = { kind: 'text' as const, user: 'b', deleted: false };
    expect(code(() => decideAppend(req({ kind: 'edit' }), facts({ target: theirs })))).toBe('forbidden');
    expect(code(() => decideAppend(req({ kind: 'edit' }), facts({ target: theirs, member: member('a', 'owner') })))).toBe('forbidden');
    expect(code(() => decideAppend(req({ kind: 'delete' }), facts({ target: theirs })))).toBe('forbidden');
    expect(decideAppend(req({ kind: 'delete' }), facts({ target: theirs, member: member('a', 'admin') }))).toEqual({ hiddenFor: null });
    expect(decideAppend(req({ kind: 'delete', admin: true }), facts({ target: theirs, member: null }))).toEqual({ hiddenFor: null });
    // A server administrator who is no member only deletes.
    expect(code(() => decideAppend(req({ admin: true }), facts({ member: null })))).toBe('forbidden');
    expect(decideAppend(req({ kind: 'reaction' }), facts({ target: theirs }))).toEqual({ hiddenFor: null });
  });

  it('a direct message from a user the peer blocks is stored hidden for the peer', () => {
    expect(decideAppend(req(), facts({ room: room('direct'), blockedBy: 'b' }))).toEqual({ hiddenFor: 'b' });
    expect(directPeer(['a', 'b'], 'a')).toBe('b');
    expect(directPeer(['a', 'b'], 'c')).toBeNull();
    expect(directPeer(['a'], 'a')).toBeNull();
  });
});

describe('rules: membership', () => {
  const open = { ban: null, listed: { white: false, black: false }, counts: null };

  it('anyone joins a channel unless banned (until the ban ends) or kept out by the access lists; groups are by invitation', () => {
    expect(code(() => decideJoin(room('channel'), actor('a'), null, open, {}, NOW))).toBeUndefined();
    expect(code(() => decideJoin(room('group'), actor('a'), null, open, {}, NOW))).toBe('forbidden');
    expect(code(() => decideJoin(null, actor('a'), null, open, {}, NOW))).toBe('not_found');
    expect(details(() => decideJoin(room('channel'), actor('a'), null, { ...open, ban: ban(NOW + 1, 'spam') }, {}, NOW))).toEqual({
      reason: 'banned',
      until: NOW + 1,
      banReason: 'spam',
    });
    expect(code(() => decideJoin(room('channel'), actor('a'), null, { ...open, ban: ban(NOW) }, {}, NOW))).toBeUndefined();
    expect(details(() => decideJoin(room('channel'), actor('a'), null, { ...open, listed: { white: false, black: true } }, {}, NOW))).toEqual({
      reason: 'access',
    });
    expect(code(() => decideJoin(room('channel', { access: 'whitelist' }), actor('a'), null, open, {}, NOW))).toBe('forbidden');
    expect(code(() => decideJoin(room('channel'), actor('a'), member('a'), open, {}, NOW))).toBe('conflict');
  });

  it('room caps count channels and groups; administrators join past them', () => {
    const full = { ...open, counts: { member: 3, created: 0 } };
    expect(details(() => decideJoin(room('channel'), actor('a'), null, full, { roomsPerUser: 3 }, NOW))).toMatchObject({ reason: 'room_limit', limit: 3 });
    expect(code(() => decideJoin(room('channel'), actor('a', true), null, full, { roomsPerUser: 3 }, NOW))).toBeUndefined();
    expect(details(() => checkRoomCaps({ member: 0, created: 2 }, { roomsCreatedPerUser: 2 }, true))).toMatchObject({ reason: 'rooms_created' });
    expect(code(() => checkRoomCaps({ member: 0, created: 2 }, { roomsCreatedPerUser: 2 }, false))).toBeUndefined();
  });

  it('invitations: any member of a channel, moderators of a group, administrators anywhere but direct rooms', () => {
    const f = { ...open, blocksActor: false };
    expect(code(() => decideInvite(room('channel'), actor('a'), member('a'), null, f, {}, NOW))).toBeUndefined();
    expect(code(() => decideInvite(room('group'), actor('a'), member('a'), null, f, {}, NOW))).toBe('forbidden');
    expect(code(() => decideInvite(room('group'), actor('a'), member('a', 'admin'), null, f, {}, NOW))).toBeUndefined();
    expect(code(() => decideInvite(room('group'), actor('a', true), null, null, f, {}, NOW))).toBeUndefined();
    expect(code(() => decideInvite(room('group'), actor('a'), null, null, f, {}, NOW))).toBe('forbidden');
    expect(code(() => decideInvite(room('direct'), actor('a', true), null, null, f, {}, NOW))).toBe('forbidden');
    expect(details(() => decideInvite(room('channel'), actor('a'), member('a'), null, { ...f, blocksActor: true }, {}, NOW))).toEqual({ reason: 'blocked' });
    // The ban's reason is the banned user's to read, not the inviter's.
    expect(details(() => decideInvite(room('channel'), actor('a'), member('a'), null, { ...f, ban: ban(null, 'secret') }, {}, NOW))).toEqual({
      reason: 'banned',
      until: null,
    });
    expect(code(() => decideInvite(room('channel'), actor('a'), member('a'), member('b'), f, {}, NOW))).toBe('conflict');
  });

  it('members leave, except direct rooms', () => {
    expect(code(() => decideLeave(room('group'), member('a')))).toBeUndefined();
    expect(code(() => decideLeave(room('group'), null))).toBe('forbidden');
    expect(code(() => decideLeave(room('direct'), member('a')))).toBe('forbidden');
  });
});

describe('rules: moderation', () => {
  it('owners and admins moderate; administrators moderate every room as its owner', () => {
    expect(requireModerator(actor('a'), member('a', 'admin'))).toBe('admin');
    expect(requireModerator(actor('a', true), null)).toBe('owner');
    expect(code(() => requireModerator(actor('a'), member('a')))).toBe('forbidden');
    expect(code(() => requireModerator(actor('a'), null))).toBe('forbidden');
  });

  it('a moderator acts only on members of a lower rank', () => {
    expect(code(() => decideKick(room('group'), actor('a'), member('a', 'admin'), member('b')))).toBeUndefined();
    expect(code(() => decideKick(room('group'), actor('a'), member('a', 'admin'), member('b', 'admin')))).toBe('forbidden');
    expect(code(() => decideKick(room('group'), actor('a'), member('a', 'owner'), member('b', 'admin')))).toBeUndefined();
    expect(code(() => decideKick(room('group'), actor('a'), member('a', 'owner'), null))).toBe('not_found');
    expect(code(() => decideKick(room('direct'), actor('a', true), null, member('b')))).toBe('forbidden');
    expect(code(() => decideMute(room('group'), actor('a'), member('a', 'admin'), member('b', 'owner')))).toBe('forbidden');
    // A ban of someone who is not a member needs no rank.
    expect(code(() => decideBan(room('group'), actor('a'), member('a', 'admin'), null))).toBeUndefined();
    expect(code(() => decideBan(room('group'), actor('a'), member('a', 'admin'), member('b', 'admin')))).toBe('forbidden');
  });

  it('only the owner sets roles and deletes the room; it hands the room over before stepping down', () => {
    expect(code(() => decideRole(room('group'), actor('a'), member('a', 'admin'), member('b'), 'b', 'admin'))).toBe('forbidden');
    expect(code(() => decideRole(room('group'), actor('a'), member('a', 'owner'), member('b'), 'b', 'admin'))).toBeUndefined();
    expect(code(() => decideRole(room('group'), actor('a'), member('a', 'owner'), member('a', 'owner'), 'a', 'admin'))).toBe('conflict');
    expect(code(() => decideRole(room('group'), actor('a'), member('a', 'owner'), null, 'b', 'admin'))).toBe('not_found');
    expect(code(() => decideRole(room('direct'), actor('a', true), null, member('b'), 'b', 'admin'))).toBe('forbidden');
    expect(code(() => decideDestroy(room('group'), actor('a'), member('a', 'admin')))).toBe('forbidden');
    expect(code(() => decideDestroy(room('group'), actor('a'), member('a', 'owner')))).toBeUndefined();
  });

  it('settings: moderators, not in direct rooms, something to change, a free channel name', () => {
    const by = actor('a');
    const owner = member('a', 'owner');
    expect(code(() => decideUpdate(room('channel'), by, owner, {}, null))).toBe('invalid');
    expect(code(() => decideUpdate(room('channel'), by, member('a'), { topic: 't' }, null))).toBe('forbidden');
    expect(code(() => decideUpdate(room('direct'), actor('a', true), null, { topic: 't' }, null))).toBe('forbidden');
    expect(details(() => decideUpdate(room('channel'), by, owner, { name: 'X' }, 'other'))).toEqual({ field: 'name' });
    expect(code(() => decideUpdate(room('channel'), by, owner, { name: 'X' }, 'r'))).toBeUndefined();
    expect(code(() => decideUpdate(room('group'), by, owner, { name: 'X' }, 'other'))).toBeUndefined();
    expect(code(() => decideAccess(room('group'), by, owner, undefined, undefined))).toBe('invalid');
  });

  it('access lists: owners and admins always pass; whitelists admit the listed, blacklists all but the listed', () => {
    expect(hasAccess('whitelist', 'admin', { white: false, black: true })).toBe(true);
    expect(hasAccess('whitelist', 'member', { white: true, black: false })).toBe(true);
    expect(hasAccess('whitelist', null, { white: false, black: false })).toBe(false);
    expect(hasAccess('blacklist', 'member', { white: false, black: true })).toBe(false);
    const members = [member('o', 'owner'), member('a'), member('b')];
    expect(withoutAccess('whitelist', members, { white: new Set(['a']), black: new Set() }).map((m) => m.user)).toEqual(['b']);
    expect(withoutAccess('blacklist', members, { white: new Set(), black: new Set(['o', 'b']) }).map((m) => m.user)).toEqual(['b']);
  });

  it('server-wide bans refuse until they end', () => {
    expect(details(() => checkNotBanned({ ...ban(NOW + 1), room: null }, NOW))).toEqual({ reason: 'banned', until: NOW + 1 });
    expect(code(() => checkNotBanned({ ...ban(NOW), room: null }, NOW))).toBeUndefined();
    expect(code(() => checkNotBanned(null, NOW))).toBeUndefined();
    expect(code(() => checkAdmission(null, true, NOW, true))).toBeUndefined();
  });
});

describe('rules: new rooms', () => {
  const free = { exists: false, directTaken: false, keptHistory: false, nameTakenBy: null, counts: null };

  it('an id (or a direct pair) in use is a conflict; so is an id whose deleted room kept its history, except for its pair', () => {
    expect(code(() => decideCreate('group', 'r', free, {}))).toBeUndefined();
    expect(code(() => decideCreate('group', 'r', { ...free, exists: true }, {}))).toBe('conflict');
    expect(code(() => decideCreate('direct', 'r', { ...free, directTaken: true }, {}))).toBe('conflict');
    let message = '';
    try {
      decideCreate('group', 'r', { ...free, keptHistory: true }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(KEPT_HISTORY);
    expect(code(() => decideCreate('direct', 'r', { ...free, keptHistory: true }, {}))).toBeUndefined();
    expect(details(() => decideCreate('channel', 'r', { ...free, nameTakenBy: 'other' }, {}))).toEqual({ field: 'name' });
    expect(details(() => decideCreate('group', 'r', { ...free, counts: { member: 0, created: 1 } }, { roomsCreatedPerUser: 1 }))).toMatchObject({
      reason: 'rooms_created',
    });
  });

  it('ids of direct rooms are reserved', () => {
    expect(code(() => checkRoomId('dm_x'))).toBe('invalid');
    expect(code(() => checkRoomId('general'))).toBeUndefined();
    expect(code(() => checkRoomId(undefined))).toBeUndefined();
  });
});
