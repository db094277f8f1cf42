// Folds a room's append-only history into what is shown: edits, deletes and reactions are
// messages of their own that point at a `target`; here they change the message they target.
import type { Message, Quote, ThreadSummary } from '../../src/client/index.js';

export interface Reaction {
  emoji: string;
  users: string[];
}

export interface Shown {
  seq: number;
  kind: 'text' | 'join' | 'leave' | 'update' | 'hidden';
  user: string;
  name: string;
  ts: number;
  text: string;
  edited: boolean;
  deleted: boolean;
  reactions: Reaction[];
  data: Record<string, unknown> | undefined;
  /** Posted by the server itself (the message's `system` mark), whatever its author's name. */
  server: boolean;
  /** Members the text mentions (set by the server), and whether it mentions the whole room. */
  mentions: string[];
  mentionsAll: boolean;
  /** The message this one replies to, as quoted when the reply was sent. */
  replyTo?: number;
  quote?: Quote;
  /** A thread reply: the root's seq (shown in the main timeline only when also sent to the room). */
  thread?: number;
  /** A thread root: its summary as read with it. */
  summary?: ThreadSummary;
}

const SHOWN = new Set(['text', 'join', 'leave', 'update', 'hidden']);

/** A thread reply that stays in its thread, out of the room's main timeline. */
export const threadOnly = (m: Message): boolean => m.thread !== undefined && m.alsoToRoom !== true;

/**
 * `messages` in any order; the result is in seq order. `main`: the room's main timeline, so
 * thread replies kept to their thread (and what points at them) are left out.
 */
export function fold(messages: Iterable<Message>, opts: { main?: boolean } = {}): Shown[] {
  const sorted = [...messages].sort((a, b) => a.seq - b.seq);
  const out: Shown[] = [];
  const bySeq = new Map<number, Shown>();
  const reactions = new Map<number, Map<string, Set<string>>>();
  for (const m of sorted) {
    if (opts.main && threadOnly(m)) continue;
    if (SHOWN.has(m.kind)) {
      const s: Shown = {
        seq: m.seq,
        kind: m.kind as Shown['kind'],
        user: m.user,
        name: m.name,
        ts: m.ts,
        text: m.text ?? '',
        edited: false,
        deleted: false,
        reactions: [],
        data: m.data,
        server: m.system === true,
        mentions: m.mentions ?? [],
        mentionsAll: m.mentionsAll === 'room',
      };
      if (m.replyTo !== undefined && m.quote) {
        s.replyTo = m.replyTo;
        s.quote = m.quote;
      }
      if (m.thread !== undefined) s.thread = m.thread;
      if (m.summary) s.summary = m.summary;
      out.push(s);
      bySeq.set(m.seq, s);
      continue;
    }
    // A target older than what is loaded is folded when that older page arrives.
    const target = m.target === undefined ? undefined : bySeq.get(m.target);
    if (!target || target.deleted) continue;
    if (m.kind === 'edit') {
      target.text = m.text ?? '';
      target.edited = true;
    } else if (m.kind === 'delete') {
      target.deleted = true;
      target.text = '';
      reactions.delete(target.seq);
    } else if (m.kind === 'reaction') {
      const emoji = typeof m.data?.emoji === 'string' ? m.data.emoji : null;
      if (!emoji) continue;
      let byEmoji = reactions.get(target.seq);
      if (!byEmoji) reactions.set(target.seq, (byEmoji = new Map<string, Set<string>>()));
      let users = byEmoji.get(emoji);
      if (!users) byEmoji.set(emoji, (users = new Set()));
      if (m.data?.remove === true) users.delete(m.user);
      else users.add(m.user);
    }
  }
  for (const [seq, byEmoji] of reactions) {
    const s = bySeq.get(seq)!;
    // Map order is the order each emoji was first used: chips do not reorder as counts change.
    s.reactions = [...byEmoji].filter(([, users]) => users.size > 0).map(([emoji, users]) => ({ emoji, users: [...users] }));
  }
  return out;
}
