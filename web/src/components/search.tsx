// Searching the messages of all one's rooms: the box in the top bar and the results, each
// with its room, author and time; choosing one opens the room at that message, with what
// surrounds it loaded.
import type { Message } from '../../../src/client/index.js';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api.js';
import type { Chat } from '../chat.js';
import { formatFull, formatShort, plural, roomMention } from '../format.js';
import { Icon } from './icons.js';
import { plainText } from '../markdown-loader.js';

export function SearchBox({ onSearch, initial }: { onSearch: (q: string) => void; initial: string }) {
  const [q, setQ] = useState(initial);
  useEffect(() => setQ(initial), [initial]);
  return (
    <form
      class="search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        if (q.trim()) onSearch(q.trim());
      }}
    >
      <input type="search" aria-label="Search messages" placeholder="Search" value={q} maxLength={200} onInput={(e) => setQ(e.currentTarget.value)} />
    </form>
  );
}

/** The words of the query marked in a result's text. */
function marked(text: string, query: string): Array<string | JSX.Element> {
  const words = query
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  if (words.length === 0) return [text];
  const re = new RegExp(`(${words.join('|')})`, 'giu');
  return text.split(re).map((part, i) => (i % 2 === 1 ? <mark key={i}>{part}</mark> : part));
}

export function SearchResults({
  chat,
  query,
  onOpen,
  onClose,
}: {
  chat: Chat;
  query: string;
  onOpen: (room: string, seq: number) => void;
  onClose: () => void;
}) {
  const [results, setResults] = useState<Message[] | null>(null);
  const [error, setError] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    let live = true;
    setResults(null);
    setError('');
    // "Retry shortly" (the index catching up with what was just sent, a busy server) is done by
    // the SDK, and "Searching…" stays meanwhile.
    chat.client.search(query, { limit: 50 }).then(
      (r) => {
        if (live) setResults(r.messages);
      },
      (err) => {
        if (live) setError(describeError(err));
      },
    );
    heading.current?.focus();
    return () => {
      live = false;
    };
  }, [query]);
  const nameOf = (u: string) => chat.nameOf(u);
  return (
    <section class="search-results" aria-label="Search results">
      <header class="search-head">
        <h1 ref={heading} tabIndex={-1}>
          Results for “{query}”
        </h1>
        <button type="button" class="icon" aria-label="Close search" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      <p class="muted pad" role="status">
        {error
          ? ''
          : results === null
            ? chat.conn === 'online'
              ? 'Searching…'
              : 'You are offline. The search runs when the connection is back.'
            : results.length === 0
              ? 'No message matches. Search finds whole words in the rooms you are in.'
              : plural(results.length, 'message')}
      </p>
      {error && (
        <p class="error pad" role="alert">
          Could not search: {error}
        </p>
      )}
      <ul class="result-list">
        {(results ?? []).map((m) => {
          const entry = chat.rooms.get(m.room);
          // An edit is found by its new text; the message it changed is the one to show.
          const seq = m.kind === 'edit' && m.target ? m.target : m.seq;
          return (
            <li key={`${m.room}-${m.seq}`}>
              <button type="button" class="result" onClick={() => onOpen(m.room, seq)}>
                <span class="result-head">
                  <span class="result-room">{entry ? roomMention(entry, nameOf) : m.room}</span>
                  <span class="result-who">{nameOf(m.user) || m.name}</span>
                  <time dateTime={new Date(m.ts).toISOString()} title={formatFull(m.ts)}>
                    {formatShort(m.ts)}
                  </time>
                </span>
                <span class="result-text">{marked(plainText(m.text ?? ''), query)}</span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
