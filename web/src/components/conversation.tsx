// The open conversation: its header, the message log (older pages load on scrolling up, new
// messages follow at the bottom, read markers move while the newest are on screen), who is
// typing, and the message box.
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../api.js';
import type { Chat, PendingSend, RoomEntry } from '../chat.js';
import type { Shown } from '../fold.js';
import { dayKey, formatDay, formatFull, formatTime, plural, roomTitle } from '../format.js';
import { checkText } from '../validate.js';
import type { DialogState } from './app.js';
import { MembersPanel } from './members.js';
import { Icon } from './icons.js';
import { Avatar } from './ui.js';

const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];
/** Messages of one author closer than this are shown as one block. */
const GROUP_MS = 5 * 60_000;

interface Props { chat: Chat; room: string; go: (room: string | null) => void; openDialog: (d: DialogState) => void }

export function Conversation({ chat, room, go, openDialog }: Props) {
  const entry = chat.rooms.get(room);
  const [showMembers, setShowMembers] = useState(false);
  const [editing, setEditing] = useState<number | null>(null);
  if (!entry) {
    if (!chat.inboxLoaded) return <div class="conv-empty muted" aria-busy="true">Loading…</div>;
    return <NotMember chat={chat} room={room} go={go} />;
  }
  const nameOf = (u: string) => chat.nameOf(u);
  const title = roomTitle(entry, nameOf);
  const openUser = (user: string) => openDialog({ kind: 'user', user, room });
  const online = chat.presence.get(room);
  const isAdmin = entry.room.kind !== 'direct' && (entry.role === 'owner' || entry.role === 'admin');

  async function leave() {
    if (!confirm(`Leave “${title}”? You can ${entry!.room.kind === 'channel' ? 'join again later' : 'only come back if invited'}.`)) return;
    try {
      await chat.client.leave(room);
      go(null);
    } catch (err) {
      chat.notify(`Could not leave: ${describeError(err)}`, 'error');
    }
  }

  function editLast(): boolean {
    const mine = chat.shown(room).filter((m) => m.kind === 'text' && m.user === chat.me.id && !m.deleted);
    const last = mine[mine.length - 1];
    if (!last) return false;
    setEditing(last.seq);
    return true;
  }

  const subtitle = entry.room.kind === 'direct'
    ? (entry.peer && online?.has(entry.peer) ? 'Online' : 'Offline')
    : entry.room.topic || (entry.room.kind === 'channel' ? 'Public channel' : 'Private group');

  return (
    <div class={`conversation${showMembers ? ' with-members' : ''}`}>
      <header class="conv-head">
        <button type="button" class="icon back" aria-label="Back to rooms" onClick={() => go(null)}><Icon name="back" /></button>
        <div class="conv-title">
          <h1 id="conv-title">
            {entry.room.kind === 'channel' && <span aria-hidden="true" class="muted"># </span>}
            {entry.room.kind === 'direct' && entry.peer
              ? <button type="button" class="link" onClick={() => openUser(entry.peer!)}>{title}</button>
              : title}
          </h1>
          <p class="topic" title={subtitle}>{subtitle}</p>
        </div>
        <div class="conv-actions">
          {entry.room.kind !== 'direct' && (
            <button type="button" aria-expanded={showMembers} aria-controls="members-panel" onClick={() => setShowMembers((v) => !v)}>
              <span class="dot on" aria-hidden="true" /> {online ? `${online.size} online` : 'Members'}
            </button>
          )}
          {isAdmin && <button type="button" onClick={() => openDialog({ kind: 'settings', room })}>Settings</button>}
          {entry.room.kind !== 'direct' && <button type="button" class="ghost" onClick={() => void leave()}>Leave</button>}
        </div>
      </header>
      <div class="conv-main">
        <div class="conv-col">
          <MessageList chat={chat} room={room} entry={entry} title={title} editing={editing} setEditing={setEditing} openUser={openUser} />
          <TypingLine chat={chat} room={room} />
          <Composer chat={chat} room={room} title={entry.room.kind === 'direct' ? title : `#${title}`} onEditLast={editLast} />
        </div>
        {showMembers && <MembersPanel chat={chat} room={room} entry={entry} openUser={openUser} onClose={() => setShowMembers(false)} />}
      </div>
    </div>
  );
}

/** A room in the path that the user is not in: a channel can be joined from here. */
function NotMember({ chat, room, go }: { chat: Chat; room: string; go: (room: string | null) => void }) {
  const [info, setInfo] = useState<{ name: string; kind: string; topic: string } | null | 'missing'>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    chat.client.request('room', { room }).then((r) => setInfo(r), () => setInfo('missing'));
  }, [room]);
  async function join() {
    try {
      const r = await chat.client.join(room);
      chat.adopt(r.room, 'member');
    } catch (err) {
      setError(describeError(err));
    }
  }
  if (info === null) return <div class="conv-empty muted" aria-busy="true">Loading…</div>;
  return (
    <section class="conv-empty">
      {info === 'missing' || info.kind !== 'channel'
        ? <p>This room does not exist, or it is private and you are not a member.</p>
        : (<>
          <h2># {info.name}</h2>
          {info.topic && <p class="muted">{info.topic}</p>}
          <p>You are not a member of this channel.</p>
          <button type="button" class="primary" onClick={() => void join()}>Join channel</button>
        </>)}
      {error && <p class="error" role="alert">{error}</p>}
      <p><button type="button" class="link" onClick={() => go(null)}>Back to your rooms</button></p>
    </section>
  );
}

function MessageList({ chat, room, entry, title, editing, setEditing, openUser }: {
  chat: Chat; room: string; entry: RoomEntry; title: string; editing: number | null;
  setEditing: (seq: number | null) => void; openUser: (user: string) => void;
}) {
  const tl = chat.timeline(room);
  const items = chat.shown(room);
  const pending = chat.pendingIn(room);
  const ref = useRef<HTMLDivElement>(null);
  /** Follow new messages: the reader is at the bottom. */
  const stick = useRef(true);
  /** Where the reader was before an older page was added above, to keep the view still. */
  const anchor = useRef<{ height: number; top: number } | null>(null);
  const placed = useRef(false);
  const [atBottom, setAtBottom] = useState(true);

  function measure() {
    const el = ref.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    stick.current = bottom;
    setAtBottom(bottom);
    chat.setReading(placed.current && bottom && document.visibilityState === 'visible');
  }

  function older() {
    const el = ref.current;
    if (!el || !tl.loaded || tl.complete || tl.loadingOlder) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop };
    void chat.loadOlder(room);
  }

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !tl.loaded) return;
    if (!placed.current) {
      placed.current = true;
      const divider = el.querySelector<HTMLElement>('.divider');
      if (divider) el.scrollTop = Math.max(0, divider.offsetTop - el.clientHeight / 3);
      else el.scrollTop = el.scrollHeight;
    } else if (anchor.current && !tl.loadingOlder) {
      el.scrollTop = el.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    measure();
    // A first page that does not fill the screen cannot be scrolled up to get more.
    if (el.scrollHeight <= el.clientHeight + 1) older();
  });

  useEffect(() => {
    const onVisibility = () => measure();
    document.addEventListener('visibilitychange', onVisibility);
    // The composer growing or the window resizing must not leave the newest message hidden.
    const ro = new ResizeObserver(() => { if (stick.current && ref.current) ref.current.scrollTop = ref.current.scrollHeight; });
    if (ref.current) ro.observe(ref.current);
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      ro.disconnect();
      chat.setReading(false);
    };
  }, []);

  function onScroll() {
    measure();
    if (ref.current && ref.current.scrollTop < 240) older();
  }

  function jumpToLatest() {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
  }

  const moderator = entry.role === 'owner' || entry.role === 'admin';
  const rows: JSX.Element[] = [];
  let prev: Shown | undefined;
  for (const m of items) {
    if (m.kind === 'join' && entry.room.kind === 'direct') continue;
    const newDay = !prev || dayKey(prev.ts) !== dayKey(m.ts);
    if (newDay) rows.push(<li key={`d${m.seq}`} class="day" role="separator"><span>{formatDay(m.ts)}</span></li>);
    const divider = tl.divider !== null && m.seq > tl.divider && (!prev || prev.seq <= tl.divider);
    if (divider) rows.push(<li key="divider" class="divider" role="separator" aria-label="New messages"><span>New messages</span></li>);
    // A server post never shares a group with a user's messages, so none can pass for part of it.
    const compact = !newDay && !divider && prev?.kind === 'text' && m.kind === 'text' && prev.user === m.user
      && prev.server === m.server && m.ts - prev.ts < GROUP_MS;
    rows.push(
      <MessageItem key={m.seq} chat={chat} room={room} m={m} compact={compact} editing={editing === m.seq}
        canDelete={m.user === chat.me.id || moderator} setEditing={setEditing} openUser={openUser} />,
    );
    prev = m;
  }

  return (
    <div class="messages-wrap">
      <div class="messages" ref={ref} onScroll={onScroll} role="log" aria-label={`Messages in ${title}`} tabIndex={0}
        aria-busy={!tl.loaded || tl.loadingOlder}>
        <div class="history-edge" aria-live="polite">
          {tl.loadingOlder ? 'Loading older messages…' : tl.loaded && tl.complete ? `This is the beginning of ${title}.` : ''}
        </div>
        {!tl.loaded && !tl.error && <p class="muted pad">Loading messages…</p>}
        {tl.error && <p class="error pad" role="alert">Could not load messages: {tl.error}</p>}
        <ol class="message-list">
          {rows}
          {pending.map((p) => <PendingItem key={p.key} chat={chat} p={p} />)}
        </ol>
      </div>
      {!atBottom && (
        <button type="button" class="jump" onClick={jumpToLatest}>
          {entry.unread > 0 ? `${plural(entry.unread, 'new message')} ↓` : 'Jump to latest ↓'}
        </button>
      )}
    </div>
  );
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

/** Text with its web addresses as links; everything stays text (Preact escapes it). */
function linkify(text: string): Array<string | JSX.Element> {
  const out: Array<string | JSX.Element> = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    // Punctuation that ends a sentence is not part of the address.
    const trail = /[.,;:!?)\]]+$/.exec(url)?.[0] ?? '';
    url = url.slice(0, url.length - trail.length);
    const start = match.index;
    out.push(text.slice(at, start));
    out.push(<a key={start} href={url} target="_blank" rel="noopener noreferrer nofollow">{url}</a>);
    at = start + url.length;
  }
  out.push(text.slice(at));
  return out;
}

function systemText(chat: Chat, m: Shown): string {
  const by = typeof m.data?.by === 'string' ? chat.nameOf(m.data.by) : null;
  if (m.kind === 'join') {
    if (m.data?.role === 'owner') return `${m.name} created the room`;
    return by ? `${by} added ${m.name}` : `${m.name} joined`;
  }
  if (m.kind === 'leave') return by ? `${by} removed ${m.name}` : `${m.name} left`;
  if (m.kind === 'hidden') return 'A message from a user you blocked';
  const d = m.data ?? {};
  const parts: string[] = [];
  if (typeof d.name === 'string') parts.push(`renamed the room to “${d.name}”`);
  if (typeof d.topic === 'string') parts.push(d.topic ? `changed the topic to “${d.topic}”` : 'cleared the topic');
  if (d.access === 'whitelist') parts.push('made the room invitation-only (white list)');
  if (d.access === 'blacklist') parts.push('opened the room to everyone not on the black list');
  if (d.retention) parts.push('changed how long history is kept');
  if (typeof d.user === 'string' && typeof d.role === 'string') {
    parts.push(d.role === 'owner' ? `handed the room to ${chat.nameOf(d.user)}` : `made ${chat.nameOf(d.user)} ${d.role === 'admin' ? 'an admin' : 'a member'}`);
  }
  return `${m.name} ${parts.join(', ') || 'changed the room'}`;
}

function MessageItem({ chat, room, m, compact, editing, canDelete, setEditing, openUser }: {
  chat: Chat; room: string; m: Shown; compact: boolean; editing: boolean; canDelete: boolean;
  setEditing: (seq: number | null) => void; openUser: (user: string) => void;
}) {
  const iso = new Date(m.ts).toISOString();
  if (m.kind !== 'text') {
    return (
      <li class="system" data-seq={m.seq}>
        <span>{systemText(chat, m)}</span> <time dateTime={iso} title={formatFull(m.ts)}>{formatTime(m.ts)}</time>
      </li>
    );
  }
  const mine = m.user === chat.me.id;
  const name = chat.names.get(m.user) ?? m.name;
  async function remove() {
    if (!confirm('Delete this message for everyone?')) return;
    await chat.remove(room, m.seq);
  }
  return (
    <li class={`msg${compact ? ' compact' : ''}${mine ? ' mine' : ''}${m.server ? ' announcement' : ''}`} data-seq={m.seq}>
      <div class="msg-gutter">
        {compact
          ? <time class="hover-time" dateTime={iso} title={formatFull(m.ts)}>{formatTime(m.ts)}</time>
          : (
            <button type="button" class="avatar-btn" tabIndex={-1} aria-hidden="true" onClick={() => openUser(m.user)}>
              <Avatar id={m.user} name={name} />
            </button>
          )}
      </div>
      <div class="msg-body">
        {compact
          ? <span class="sr-only">{name}{m.server ? ' (server)' : ''}, {formatTime(m.ts)}: </span>
          : (
            <div class="msg-head">
              <button type="button" class="name link" onClick={() => openUser(m.user)}>{name}</button>
              {m.server && <span class="server-tag" title="Posted by this server, not by a user">Server</span>}
              <time dateTime={iso} title={formatFull(m.ts)}>{formatTime(m.ts)}</time>
            </div>
          )}
        {editing
          ? <EditForm chat={chat} room={room} m={m} done={() => setEditing(null)} />
          : m.deleted
            ? <p class="msg-text deleted">This message was deleted.</p>
            : <p class="msg-text">{linkify(m.text)}{m.edited && <span class="edited"> (edited)</span>}</p>}
        {m.reactions.length > 0 && (
          <div class="reactions">
            {m.reactions.map((r) => {
              const me = r.users.includes(chat.me.id);
              const who = r.users.map((u) => (u === chat.me.id ? 'you' : chat.nameOf(u))).join(', ');
              return (
                <button key={r.emoji} type="button" class={`chip${me ? ' mine' : ''}`} aria-pressed={me} title={who}
                  aria-label={`${r.emoji} ${r.users.length}, by ${who}`}
                  onClick={() => void chat.react(room, m.seq, r.emoji, me)}>
                  <span aria-hidden="true">{r.emoji} {r.users.length}</span>
                </button>
              );
            })}
          </div>
        )}
      </div>
      {!m.deleted && !editing && (
        <div class="msg-actions" role="toolbar" aria-label={`Actions for the message of ${name}`}>
          <ReactPicker onPick={(emoji) => {
            const mineAlready = m.reactions.find((r) => r.emoji === emoji)?.users.includes(chat.me.id) ?? false;
            void chat.react(room, m.seq, emoji, mineAlready);
          }} />
          {mine && <button type="button" class="icon" aria-label="Edit message" title="Edit" onClick={() => setEditing(m.seq)}><Icon name="edit" /></button>}
          {canDelete && <button type="button" class="icon" aria-label="Delete message" title="Delete" onClick={() => void remove()}><Icon name="trash" /></button>}
        </div>
      )}
    </li>
  );
}

function ReactPicker({ onPick }: { onPick: (emoji: string) => void }) {
  const [open, setOpen] = useState(false);
  const [up, setUp] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  function toggle() {
    // Open towards the larger part of the log, so the scroll area does not cut the palette off.
    const log = ref.current?.closest('.messages')?.getBoundingClientRect();
    const at = ref.current?.getBoundingClientRect();
    setUp(!!log && !!at && at.top - log.top > log.bottom - at.bottom);
    setOpen((v) => !v);
  }
  useEffect(() => {
    if (!open) return;
    ref.current?.querySelector<HTMLButtonElement>('button')?.focus();
    const away = (e: MouseEvent) => { if (!ref.current?.contains(e.target as Node)) setOpen(false); };
    document.addEventListener('mousedown', away);
    return () => document.removeEventListener('mousedown', away);
  }, [open]);
  return (
    <div class="picker-wrap" ref={ref} onKeyDown={(e) => { if (e.key === 'Escape') { e.stopPropagation(); setOpen(false); } }}>
      <button type="button" class="icon" aria-label="Add reaction" title="React" aria-expanded={open} onClick={toggle}><Icon name="smile" /></button>
      {open && (
        <div class={`picker${up ? ' up' : ''}`} role="group" aria-label="Reactions">
          {EMOJI.map((e) => (
            <button key={e} type="button" class="icon" aria-label={`React with ${e}`} onClick={() => { setOpen(false); onPick(e); }}>{e}</button>
          ))}
        </div>
      )}
    </div>
  );
}

function EditForm({ chat, room, m, done }: { chat: Chat; room: string; m: Shown; done: () => void }) {
  const [text, setText] = useState(m.text);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const el = ref.current!;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);
  async function save() {
    const v = text.trim();
    const bad = checkText(v);
    if (bad) return setError(bad);
    if (v !== m.text) await chat.edit(room, m.seq, v);
    done();
  }
  return (
    <form class="edit-form" onSubmit={(e) => { e.preventDefault(); void save(); }}>
      <label class="sr-only" for={`edit-${m.seq}`}>Edit message</label>
      <textarea id={`edit-${m.seq}`} ref={ref} value={text} rows={2}
        aria-invalid={error ? true : undefined} aria-describedby={error ? `edit-${m.seq}-err` : undefined}
        onInput={(e) => { setText(e.currentTarget.value); setError(null); }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); void save(); }
          if (e.key === 'Escape') { e.preventDefault(); done(); }
        }} />
      {error && <small id={`edit-${m.seq}-err`} class="error" role="alert">{error}</small>}
      <div class="row small">
        <button type="submit" class="primary">Save</button>
        <button type="button" onClick={done}>Cancel</button>
        <span class="muted">Enter to save, Escape to cancel</span>
      </div>
    </form>
  );
}

function PendingItem({ chat, p }: { chat: Chat; p: PendingSend }) {
  const offline = chat.conn !== 'online';
  const status = p.status === 'failed' ? `Not sent: ${p.error ?? 'error'}` : offline ? 'Waiting for connection…' : 'Sending…';
  return (
    <li class={`msg mine pending${p.status === 'failed' ? ' failed' : ''}`} data-pending={p.key}>
      <div class="msg-gutter"><Avatar id={chat.me.id} name={chat.me.name} /></div>
      <div class="msg-body">
        <div class="msg-head">
          <span class="name">{chat.me.name}</span>
          <span class="pending-status" role={p.status === 'failed' ? 'alert' : undefined}>{status}</span>
        </div>
        <p class="msg-text">{p.text}</p>
        {p.status === 'failed' && (
          <div class="row small">
            <button type="button" onClick={() => chat.retry(p.key)}>Retry</button>
            <button type="button" class="ghost" onClick={() => chat.discard(p.key)}>Discard</button>
          </div>
        )}
      </div>
    </li>
  );
}

function TypingLine({ chat, room }: { chat: Chat; room: string }) {
  const names = chat.typingIn(room).map((u) => chat.nameOf(u));
  const text = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
  return <div class="typing" aria-live="polite">{text}</div>;
}

/** Drafts per room, kept while switching rooms. */
const drafts = new Map<string, string>();

function Composer({ chat, room, title, onEditLast }: { chat: Chat; room: string; title: string; onEditLast: () => boolean }) {
  const [text, setText] = useState(() => drafts.get(room) ?? '');
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    // A phone would open its keyboard over the messages just opened; only focus with a mouse.
    if (matchMedia('(pointer: fine)').matches) ref.current?.focus();
  }, [room]);

  function submit() {
    const v = text.trim();
    const bad = checkText(v);
    if (bad) {
      setError(bad);
      return;
    }
    chat.send(room, v);
    setText('');
    drafts.delete(room);
    setError(null);
  }

  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      {error && <small id="composer-err" class="error composer-error" role="alert">{error}</small>}
      <label for="composer" class="sr-only">Message {title}</label>
      <textarea id="composer" ref={ref} rows={1} placeholder={`Message ${title}`} value={text}
        aria-describedby={error ? 'composer-help composer-err' : 'composer-help'} aria-invalid={error ? true : undefined}
        onInput={(e) => {
          const v = e.currentTarget.value;
          setText(v);
          drafts.set(room, v);
          setError(null);
          if (v.trim()) chat.typingNow(room);
          else chat.stopTyping(room);
        }}
        onBlur={() => chat.stopTyping(room)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          } else if (e.key === 'ArrowUp' && text === '' && onEditLast()) {
            e.preventDefault();
          }
        }} />
      <span id="composer-help" class="sr-only">Enter sends, Shift+Enter starts a new line, Up arrow edits your last message.</span>
      <button type="submit" class="primary send">Send</button>
    </form>
  );
}
