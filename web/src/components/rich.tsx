// Rich message parts of a conversation: the quote a reply shows, the pinned messages, a
// message's earlier versions, and member suggestions while typing "@" in the message box.
import { useEffect, useState } from 'preact/hooks';
import { describeError } from '../api.js';
import type { Chat } from '../chat.js';
import type { Shown } from '../fold.js';
import { formatFull, formatTime, shownName, shorten } from '../format.js';
import type { Version } from '../../../src/client/index.js';
import { Dialog } from './ui.js';
import { plainText } from '../markdown-loader.js';

/** What a reply answers: the quoted author and text, or that it was deleted. */
export function QuoteBlock({ chat, quote }: { chat: Chat; quote: NonNullable<Shown['quote']> }) {
  const name = chat.names.get(quote.user) ?? quote.name;
  return (
    <div class="quote">
      <span class="sr-only">In reply to </span>
      <strong>{shownName(name)}</strong> {quote.deleted ? <em class="muted">deleted message</em> : <span>{shorten(plainText(quote.text ?? ''), 120)}</span>}
    </div>
  );
}

export function PinsDialog({ chat, room, onClose }: { chat: Chat; room: string; onClose: () => void }) {
  useEffect(() => {
    void chat.loadPins(room);
  }, [room]);
  const pins = chat.pins.get(room);
  const role = chat.myRole(room);
  const moderator = role === 'owner' || role === 'admin';
  return (
    <Dialog title="Pinned messages" onClose={onClose} cls="pins-dialog">
      {!pins ? (
        <p class="muted" aria-busy="true">
          Loading…
        </p>
      ) : pins.length === 0 ? (
        <p class="muted">Nothing is pinned in this room.</p>
      ) : (
        <ul class="pins-list">
          {pins.map((p) => (
            <li key={p.seq} data-seq={p.seq}>
              <div class="pin-head">
                <strong>{chat.names.get(p.message.user) ?? p.message.name}</strong>{' '}
                <time dateTime={new Date(p.message.ts).toISOString()} title={formatFull(p.message.ts)}>
                  {formatTime(p.message.ts)}
                </time>
              </div>
              <p class="pin-text">{shorten(plainText(p.message.text ?? ''), 300)}</p>
              {moderator && (
                <button type="button" class="ghost" onClick={() => void chat.pin(room, p.seq, false)}>
                  Unpin
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}

export function VersionsDialog({ chat, room, seq, onClose }: { chat: Chat; room: string; seq: number; onClose: () => void }) {
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    chat.client.versions(room, seq).then(
      (r) => setVersions(r.versions),
      (err: unknown) => setError(describeError(err)),
    );
  }, [room, seq]);
  return (
    <Dialog title="Earlier versions" onClose={onClose} cls="versions-dialog">
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : !versions ? (
        <p class="muted" aria-busy="true">
          Loading…
        </p>
      ) : (
        <ol class="versions-list">
          {versions.map((v, i) => (
            <li key={v.seq}>
              <span class="muted">{i === 0 ? 'Original' : i === versions.length - 1 ? 'Current' : `Edit ${i}`}, </span>
              <time dateTime={new Date(v.ts).toISOString()}>{formatFull(v.ts)}</time>
              <p class="version-text">{v.text}</p>
            </li>
          ))}
        </ol>
      )}
    </Dialog>
  );
}

/** The "@name" being typed just before the caret, with where it starts. */
export function mentionAt(text: string, caret: number): { start: number; query: string } | null {
  const m = /(^|[\s(])@([A-Za-z0-9_.@|:+-]*)$/.exec(text.slice(0, caret));
  if (!m) return null;
  return { start: caret - m[2]!.length - 1, query: m[2]! };
}

export interface Suggestion {
  id: string;
  label: string;
}

/** Members (and @room, @here for those who may use them) whose id or name starts with the query. */
export function suggestions(chat: Chat, room: string, query: string): Suggestion[] {
  const q = query.toLowerCase();
  const out: Suggestion[] = [];
  for (const m of chat.members.get(room) ?? []) {
    if (m.user === chat.me.id) continue;
    const name = chat.nameOf(m.user);
    if (
      m.user.toLowerCase().startsWith(q) ||
      name
        .toLowerCase()
        .split(/\s+/)
        .some((w) => w.startsWith(q))
    )
      out.push({ id: m.user, label: name });
  }
  const role = chat.myRole(room);
  if (role === 'owner' || role === 'admin') {
    for (const id of ['room', 'here']) if (id.startsWith(q)) out.push({ id, label: id === 'room' ? 'Everyone in the room' : 'Everyone online' });
  }
  return out.slice(0, 8);
}

export function MentionList({ items, active, onPick }: { items: Suggestion[]; active: number; onPick: (s: Suggestion) => void }) {
  return (
    <ul id="mention-list" class="mention-list" role="listbox" aria-label="Members to mention">
      {items.map((s, i) => (
        <li
          key={s.id}
          id={`mention-${i}`}
          role="option"
          aria-selected={i === active}
          // Picking must not take the focus from the message box.
          onMouseDown={(e) => {
            e.preventDefault();
            onPick(s);
          }}
        >
          <strong>{s.label}</strong> <span class="muted">@{s.id}</span>
        </li>
      ))}
    </ul>
  );
}
