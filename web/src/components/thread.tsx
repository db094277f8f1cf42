// The thread panel beside a conversation: a root message, its replies (older ones on demand),
// and a composer that replies in the thread, optionally also to the room.
import { useState } from 'preact/hooks';
import type { Chat } from '../chat.js';
import type { Shown } from '../fold.js';
import { formatFull, formatTime, plural } from '../format.js';
import { Icon } from './icons.js';
import { MessageText } from './text.js';
import { Avatar } from './ui.js';

export function ThreadPanel({ chat }: { chat: Chat }) {
  const view = chat.thread;
  const [text, setText] = useState('');
  const [also, setAlso] = useState(false);
  const [sending, setSending] = useState(false);
  if (!view) return null;
  const replies = chat.threadReplies().filter((m) => m.kind === 'text');
  const root = view.rootMessage;
  const summary = root ? chat.summaryOf(view.room, { seq: root.seq, summary: root.summary }) : undefined;

  async function submit() {
    const t = text.trim();
    if (t === '' || sending) return;
    setSending(true);
    if (await chat.replyInThread(t, also)) {
      setText('');
      setAlso(false);
    }
    setSending(false);
  }

  return (
    <aside id="thread-panel" class="thread-panel" aria-label="Thread">
      <header class="members-head">
        <h2>Thread {summary && <span class="muted">({plural(summary.count, 'reply', 'replies')})</span>}</h2>
        <button type="button" class="icon" aria-label="Close thread" onClick={() => chat.closeThread()}>
          <Icon name="close" />
        </button>
      </header>
      {view.error && (
        <p class="error pad" role="alert">
          {view.error}
        </p>
      )}
      {root && (
        <div class="thread-root">
          <Reply chat={chat} m={{ seq: root.seq, user: root.user, name: root.name, ts: root.ts, text: root.text ?? '', deleted: false }} />
        </div>
      )}
      {!view.complete && !view.loading && (
        <button type="button" class="link pad thread-older" onClick={() => void chat.loadOlderReplies()}>
          Load older replies
        </button>
      )}
      {view.loading && (
        <p class="muted pad" aria-busy="true">
          Loading replies…
        </p>
      )}
      <ol class="thread-replies" aria-label="Replies">
        {replies.map((m) => (
          <li key={m.seq}>
            <Reply chat={chat} m={m} />
          </li>
        ))}
      </ol>
      <form
        class="thread-composer"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label for="thread-composer" class="sr-only">
          Reply in thread
        </label>
        <textarea
          id="thread-composer"
          rows={2}
          placeholder="Reply…"
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              void submit();
            }
          }}
        />
        <div class="thread-composer-row">
          <label class="check">
            <input type="checkbox" checked={also} onChange={(e) => setAlso((e.target as HTMLInputElement).checked)} /> Also send to the room
          </label>
          <button type="submit" disabled={sending || text.trim() === ''}>
            Reply
          </button>
        </div>
      </form>
    </aside>
  );
}

function Reply({ chat, m }: { chat: Chat; m: Pick<Shown, 'seq' | 'user' | 'name' | 'ts' | 'text' | 'deleted'> & { edited?: boolean } }) {
  const name = chat.names.get(m.user) ?? m.name;
  return (
    <div class="thread-msg" data-seq={m.seq}>
      <Avatar id={m.user} name={name} size="sm" />
      <div class="msg-body">
        <div class="msg-head">
          <strong class="name">{name}</strong>{' '}
          <time dateTime={new Date(m.ts).toISOString()} title={formatFull(m.ts)}>
            {formatTime(m.ts)}
          </time>
        </div>
        {m.deleted ? (
          <div class="msg-text deleted">
            <p>This message was deleted.</p>
          </div>
        ) : (
          <div class="msg-text">
            <MessageText text={m.text} me={chat.me.id} />
          </div>
        )}
      </div>
    </div>
  );
}
