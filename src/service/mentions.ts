// Mentions: which members a message text names (@user, @room, @here), who may mention the
// whole room, and who gets a `notify` event for a message. Pure functions: the service reads
// the members, levels and presence they need and hands them in.
import type { MentionAll, Member, Message, NotifyLevel, RoomKind } from '../protocol/schema.js';
import type { MessageMeta } from '../store/store.js';

/** Mentions beyond this many names in one text are not looked at. */
export const MAX_MENTIONS = 50;
/** Characters of a message's text a `notify` event carries. */
export const NOTIFY_TEXT_CHARS = 200;

export interface ParsedMentions {
  names: string[];
  room: boolean;
  here: boolean;
}

// A mention starts at "@" after the start of the text or a character that cannot be part of
// a user id (so "a@b.c" is an address, not a mention) and runs over user id characters.
const MENTION = /(?<![A-Za-z0-9_.@|:+-])@([A-Za-z0-9_.@|:+-]{1,128})/g;
// Code spans and fenced code are shown as written: nothing in them mentions anyone.
const CODE = /```[\s\S]*?(?:```|$)|`[^`\n]*`/g;
// Punctuation a sentence may put right after a name ("@bob, look", "thanks @ann.").
const TRAILING = /[.:|+-]+$/;

/** The words that mention a whole room (`@room`, `@here`): no user may be named so. */
export const ROOM_MENTIONS: readonly string[] = ['room', 'here'];

/** The names a text mentions, in order, without repeats; cheap when the text has no "@". */
export function parseMentions(text: string): ParsedMentions {
  const out: ParsedMentions = { names: [], room: false, here: false };
  if (!text.includes('@')) return out;
  const seen = new Set<string>();
  for (const m of text.replace(CODE, ' ').matchAll(MENTION)) {
    const token = m[1]!;
    for (const name of token === token.replace(TRAILING, '') ? [token] : [token, token.replace(TRAILING, '')]) {
      if (name === ROOM_MENTIONS[0]) out.room = true;
      else if (name === ROOM_MENTIONS[1]) out.here = true;
      else if (name.length > 0 && !seen.has(name) && seen.size < MAX_MENTIONS) {
        seen.add(name);
        out.names.push(name);
      }
    }
  }
  return out;
}

/** Who may use @room and @here when the room never chose: moderators. */
export const DEFAULT_MENTION_ALL: MentionAll = 'moderators';

export function mayMentionAll(setting: MentionAll | null, role: Member['role'] | null, admin: boolean): boolean {
  if (admin || role === 'owner' || role === 'admin') return true;
  return (setting ?? DEFAULT_MENTION_ALL) === 'members' && role !== null;
}

/**
 * The mentions kept with a message: the members named (a name that is no member is just
 * text), with @here the members online, and @room as `mentionsAll`. The author never
 * mentions itself. @room and @here count only when `allowed`.
 */
export function resolveMentions(
  parsed: ParsedMentions,
  members: readonly string[],
  author: string,
  allowed: boolean,
  online: readonly string[] = [],
): MessageMeta {
  const isMember = new Set(members);
  const ids = new Set<string>();
  for (const name of parsed.names) if (isMember.has(name) && name !== author) ids.add(name);
  if (allowed && parsed.here && !parsed.room) for (const u of online) if (isMember.has(u) && u !== author) ids.add(u);
  const meta: MessageMeta = {};
  if (ids.size > 0) meta.mentions = [...ids];
  if (allowed && parsed.room) meta.mentionsAll = 'room';
  return meta;
}

/** A member's level when it never set one: every message of a direct room, mentions elsewhere. */
export const defaultLevel = (kind: RoomKind): NotifyLevel => (kind === 'direct' ? 'all' : 'mentions');

export type NotifyReason = 'mention' | 'room' | 'here' | 'message';

/** A thread reply not also sent to the room: it is not part of the room's main timeline. */
export const keptToThread = (m: Pick<Message, 'thread' | 'alsoToRoom'>): m is Pick<Message, 'alsoToRoom'> & { thread: number } =>
  m.thread !== undefined && m.alsoToRoom !== true;

/**
 * Who gets a `notify` event for a stored message, and why: those it mentions, unless their
 * level is `none`; members whose level is `all` — for a reply kept to its thread, only those
 * who take part in the thread (`participants`: the root's author and earlier repliers), as in
 * Slack and Element. A reply also sent to the room notifies as any message of the room. Never
 * the author, never a member the message is hidden for.
 */
export function recipients(
  m: Pick<Message, 'user' | 'mentions' | 'mentionsAll' | 'thread' | 'alsoToRoom'>,
  parsed: ParsedMentions,
  members: readonly string[],
  levels: ReadonlyMap<string, NotifyLevel>,
  kind: RoomKind,
  opts: { hiddenFor?: string | undefined; participants?: ReadonlySet<string> } = {},
): Map<string, NotifyReason> {
  const out = new Map<string, NotifyReason>();
  const fallback = defaultLevel(kind);
  const level = (u: string) => levels.get(u) ?? fallback;
  const mentioned = new Set(m.mentions ?? []);
  const inThread = keptToThread(m);
  for (const u of members) {
    if (u === m.user || u === opts.hiddenFor) continue;
    const l = level(u);
    if (l === 'none') continue;
    if (m.mentionsAll === 'room') out.set(u, 'room');
    else if (mentioned.has(u)) out.set(u, parsed.names.includes(u) ? 'mention' : 'here');
    else if (l === 'all' && (!inThread || opts.participants?.has(u) === true)) out.set(u, 'message');
  }
  return out;
}
