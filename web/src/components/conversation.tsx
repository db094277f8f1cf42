// The open conversation: its header, the message log (opened at the first unread message,
// paged both ways on scrolling, one tab stop moved through with the arrow keys, read markers
// moved while the newest are on screen), who is typing, and the message box.
import type { JSX, TargetedKeyboardEvent } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { createPortal } from 'preact/compat';
import { describeError, describeJoinError } from '../api.js';
import type { Chat, PendingSend, RoomEntry, UploadItem } from '../chat.js';
import type { AttachmentRef, Upload } from '../../../src/client/index.js';
import type { NotifyLevel } from '../../../src/protocol/schema.js';
import type { Shown } from '../fold.js';
import { dayKey, formatBytes, formatDay, formatFull, formatNumber, formatTime, shownName, plural, roomMention, roomTitle, shorten } from '../format.js';
import { checkText } from '../validate.js';
import type { DialogState } from './app.js';
import { EmojiPicker, QuickReactions } from './emoji-picker.js';
import { MembersPanel } from './members.js';
import { ThreadPanel } from './thread.js';
import { Icon } from './icons.js';
import { MessageText } from './text.js';
import { MentionList, QuoteBlock, mentionAt, suggestions, type Suggestion } from './rich.js';
import { Avatar, confirmAction, pointerIsFine } from './ui.js';
import { plainText } from '../markdown-loader.js';

/** Messages of one author closer than this are shown as one block. */
const GROUP_MS = 5 * 60_000;
/** Closer than this to an end of the loaded history, the next page is loaded. */
const EDGE_PX = 240;

interface Props {
  chat: Chat;
  room: string;
  go: (room: string | null) => void;
  openDialog: (d: DialogState) => void;
}

export function Conversation({ chat, room, go, openDialog }: Props) {
  const entry = chat.rooms.get(room);
  const [showMembers, setShowMembers] = useState(false);
  const threadOpen = chat.thread?.room === room;
  const membersShown = showMembers && !threadOpen;
  const [editing, setEditing] = useState<number | null>(null);
  if (!entry) {
    if (!chat.inboxLoaded)
      return (
        <div class="conv-empty muted" aria-busy="true">
          Loading…
        </div>
      );
    return <NotMember chat={chat} room={room} go={go} />;
  }
  const nameOf = (u: string) => chat.nameOf(u);
  const title = roomTitle(entry, nameOf);
  const openUser = (user: string) => openDialog({ kind: 'user', user, room });
  const online = chat.onlineIn(room);
  const isAdmin = entry.room.kind !== 'direct' && (entry.role === 'owner' || entry.role === 'admin');

  async function leave() {
    const again = entry!.room.kind === 'channel' ? 'You can join it again later.' : 'You can only come back if someone invites you.';
    const alone = chat.members.get(room)?.length === 1;
    const back =
      entry!.role !== 'owner'
        ? again
        : alone
          ? `${again} You are its only member: nobody will run it after you. Delete it instead if it is no longer needed.`
          : `${again} You own it: it passes to its admin who joined first, or else to its member who joined first.`;
    if (!(await confirmAction({ title: `Leave ${title}?`, body: back, action: 'Leave' }))) return;
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

  const subtitle =
    entry.room.kind === 'direct'
      ? !online || !entry.peer
        ? 'Direct conversation'
        : online.has(entry.peer)
          ? 'Online'
          : 'Offline'
      : entry.room.topic || (entry.room.kind === 'channel' ? 'Public channel' : 'Private group');

  // On a phone the room list is off screen: the way back to it tells of other rooms' news.
  let elsewhere = 0;
  for (const [id, e] of chat.rooms) if (id !== room && e.unread > 0) elsewhere++;

  return (
    <div class={`conversation${membersShown ? ' with-members' : ''}`}>
      <header class="conv-head">
        <button
          type="button"
          class="icon back"
          aria-label={elsewhere ? `Back to rooms, ${plural(elsewhere, 'unread room')}` : 'Back to rooms'}
          onClick={() => go(null)}
        >
          <Icon name="back" />
          {elsewhere > 0 && (
            <span class="badge back-badge" aria-hidden="true">
              {elsewhere > 99 ? '99+' : elsewhere}
            </span>
          )}
        </button>
        <div class="conv-title">
          <h1 id="conv-title" title={title}>
            {entry.room.kind === 'channel' && (
              <span aria-hidden="true" class="muted">
                #{' '}
              </span>
            )}
            {entry.room.kind === 'group' && (
              <span class="title-icon" aria-hidden="true">
                <Icon name="lock" size={14} />
              </span>
            )}
            {entry.room.kind === 'direct' && entry.peer ? (
              <button type="button" class="link" onClick={() => openUser(entry.peer!)}>
                {title}
              </button>
            ) : (
              title
            )}
          </h1>
          <p class="topic" title={subtitle}>
            {subtitle}
          </p>
        </div>
        <div class="conv-actions">
          {entry.room.kind !== 'direct' && (
            <button
              type="button"
              aria-expanded={membersShown}
              aria-controls="members-panel"
              onClick={() => {
                // An open thread takes the panel's place: the members replace it.
                if (threadOpen) {
                  chat.closeThread();
                  setShowMembers(true);
                } else setShowMembers((v) => !v);
              }}
            >
              <span class="dot on" aria-hidden="true" /> {online ? `${online.size} online` : 'Members'}
            </button>
          )}
          <NotifyMenu chat={chat} room={room} entry={entry} />
          <button type="button" class="pins-button" onClick={() => openDialog({ kind: 'pins', room })}>
            Pins
          </button>
          {isAdmin && (
            <button type="button" onClick={() => openDialog({ kind: 'settings', room })}>
              Settings
            </button>
          )}
          {entry.room.kind !== 'direct' && (
            <button type="button" onClick={() => void leave()}>
              Leave
            </button>
          )}
        </div>
      </header>
      <div class="conv-main">
        <div class="conv-col">
          <MessageList
            chat={chat}
            room={room}
            entry={entry}
            title={title}
            editing={editing}
            setEditing={setEditing}
            openUser={openUser}
            openDialog={openDialog}
          />
          <TypingLine chat={chat} room={room} />
          <Composer chat={chat} room={room} mention={roomMention(entry, nameOf)} onEditLast={editLast} />
        </div>
        {threadOpen ? (
          <ThreadPanel chat={chat} />
        ) : (
          showMembers && <MembersPanel chat={chat} room={room} entry={entry} openUser={openUser} onClose={() => setShowMembers(false)} />
        )}
      </div>
    </div>
  );
}

const LEVELS: Array<[NotifyLevel, string, string]> = [
  ['all', 'All messages', 'Every new message notifies you'],
  ['mentions', 'Only mentions', 'Only messages that mention you (or the whole room) notify you'],
  ['none', 'Nothing', 'Nothing in this room notifies you'],
];
const LEVEL_ICON = { all: 'bellAll', mentions: 'bell', none: 'bellOff' } as const;

/**
 * The bell in the room header: shows which messages of the room notify me (in the page, in
 * the browser and by Web Push) and opens a menu to change it.
 */
function NotifyMenu({ chat, room, entry }: { chat: Chat; room: string; entry: RoomEntry }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  const current = LEVELS.find((l) => l[0] === entry.notify) ?? LEVELS[1]!;
  useEffect(() => {
    if (!open) return;
    box.current?.querySelector<HTMLElement>('[aria-checked="true"]')?.focus();
    const away = (e: Event) => {
      if (!box.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('pointerdown', away);
    return () => document.removeEventListener('pointerdown', away);
  }, [open]);
  async function choose(level: NotifyLevel) {
    setOpen(false);
    box.current?.querySelector<HTMLElement>('.notify-button')?.focus();
    if (level === entry.notify) return;
    setBusy(true);
    try {
      await chat.setNotifyLevel(room, level);
    } catch (err) {
      chat.notify(`Could not change notifications: ${describeError(err)}`, 'error');
    } finally {
      setBusy(false);
    }
  }
  function onKeyDown(e: KeyboardEvent) {
    const items = Array.from(box.current?.querySelectorAll<HTMLElement>('[role="menuitemradio"]') ?? []);
    const at = items.indexOf(document.activeElement as HTMLElement);
    if (e.key === 'Escape') {
      setOpen(false);
      box.current?.querySelector<HTMLElement>('.notify-button')?.focus();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      items[(at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length]?.focus();
    } else return;
    e.preventDefault();
    e.stopPropagation();
  }
  return (
    <div class="notify-menu" ref={box} onKeyDown={onKeyDown}>
      <button
        type="button"
        class="icon notify-button"
        data-level={entry.notify}
        disabled={busy}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label={`Notifications: ${current[1]}`}
        title={`Notifications: ${current[2]}`}
        onClick={() => setOpen((v) => !v)}
      >
        <Icon name={LEVEL_ICON[entry.notify]} />
      </button>
      {open && (
        <div class="menu" role="menu" aria-label="Notify me of">
          {LEVELS.map(([level, label, hint]) => (
            <button key={level} type="button" role="menuitemradio" aria-checked={level === entry.notify} tabIndex={-1} onClick={() => void choose(level)}>
              <Icon name={LEVEL_ICON[level]} size={16} />
              <span class="menu-text">
                <span>{label}</span>
                <small class="muted">{hint}</small>
              </span>
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

/** A room in the path that the user is not in: a channel can be joined from here. */
function NotMember({ chat, room, go }: { chat: Chat; room: string; go: (room: string | null) => void }) {
  const [info, setInfo] = useState<{ name: string; kind: string; topic: string } | null | 'missing'>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    chat.client.request('room', { room }).then(
      (r) => setInfo(r),
      () => setInfo('missing'),
    );
  }, [room]);
  async function join() {
    try {
      const r = await chat.client.join(room);
      chat.adopt(r.room, 'member');
    } catch (err) {
      setError(describeJoinError(err, info && info !== 'missing' ? info.name : room));
    }
  }
  if (info === null)
    return (
      <div class="conv-empty muted" aria-busy="true">
        Loading…
      </div>
    );
  return (
    <section class="conv-empty">
      {info === 'missing' || info.kind !== 'channel' ? (
        <>
          <h1>Room not found</h1>
          <p>This room does not exist, or it is private and you are not a member.</p>
        </>
      ) : (
        <>
          <h1 class="clip"># {info.name}</h1>
          {info.topic && <p class="muted">{info.topic}</p>}
          <p>You are not a member of this channel.</p>
          <button type="button" class="primary" onClick={() => void join()}>
            Join channel
          </button>
        </>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p>
        <button type="button" class="link" onClick={() => go(null)}>
          Back to your rooms
        </button>
      </p>
    </section>
  );
}

function MessageList({
  chat,
  room,
  entry,
  title,
  editing,
  setEditing,
  openUser,
  openDialog,
}: {
  chat: Chat;
  room: string;
  entry: RoomEntry;
  title: string;
  editing: number | null;
  setEditing: (seq: number | null) => void;
  openUser: (user: string) => void;
  openDialog: (d: DialogState) => void;
}) {
  const tl = chat.timeline(room);
  const items = chat.shown(room);
  // Sends in flight follow the newest message; a window elsewhere in history has no end to follow.
  const pending = tl.latest ? chat.pendingIn(room) : [];
  const ref = useRef<HTMLDivElement>(null);
  /** Follow new messages: the reader is at the bottom of the newest ones. */
  const stick = useRef(true);
  /** Where the reader was before an older page was added above, to keep the view still. */
  const anchor = useRef<{ height: number; top: number } | null>(null);
  /** The placement (tl.placeVersion) the view last carried out. */
  const placedFor = useRef(-1);
  const [atBottom, setAtBottom] = useState(true);
  /** The message that is the list's one tab stop, and the one whose controls are reachable. */
  const [current, setCurrent] = useState<number | null>(null);
  const [inside, setInside] = useState<number | null>(null);
  const focusLast = useRef(false);

  function measure() {
    const el = ref.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    stick.current = bottom && tl.latest;
    setAtBottom(bottom);
    chat.setReading(placedFor.current >= 0 && bottom && tl.latest && document.visibilityState === 'visible');
  }

  function older() {
    const el = ref.current;
    if (!el || !tl.loaded || tl.complete || tl.loadingOlder) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop };
    void chat.loadOlder(room);
  }

  function newer() {
    if (tl.loaded && !tl.latest && !tl.loadingNewer) void chat.loadNewer(room);
  }

  /** Brings the reader where the last open, jump or send asked for. */
  function place(el: HTMLElement) {
    if (tl.place === 'target' && tl.target !== null) {
      const row = el.querySelector<HTMLElement>(`li[data-seq="${tl.target}"]`);
      if (row) {
        row.scrollIntoView({ block: 'center' });
        row.focus({ preventScroll: true });
        setCurrent(tl.target);
        tl.target = null;
        return;
      }
    }
    const divider = tl.place === 'unread' ? el.querySelector<HTMLElement>('.divider') : null;
    if (divider) el.scrollTop = Math.max(0, divider.offsetTop - el.clientHeight / 3);
    else el.scrollTop = el.scrollHeight;
  }

  useLayoutEffect(() => {
    const el = ref.current;
    // Placed once the chat has opened the room (an effect after this render): opening sets where
    // to go, and a search result's target placed before it was then overridden by the unread line.
    if (!el || !tl.loaded || chat.active !== room) return;
    if (placedFor.current !== tl.placeVersion) {
      placedFor.current = tl.placeVersion;
      anchor.current = null;
      place(el);
      if (focusLast.current) {
        focusLast.current = false;
        const rows = el.querySelectorAll<HTMLElement>('li[data-seq]');
        rows[rows.length - 1]?.focus({ preventScroll: true });
      }
    } else if (anchor.current && !tl.loadingOlder) {
      el.scrollTop = el.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    measure();
    // Near an end (or a page too short to scroll): the next page, without waiting for a scroll.
    if (el.scrollTop < EDGE_PX) older();
    if (el.scrollHeight - el.scrollTop - el.clientHeight < EDGE_PX) newer();
  });

  useEffect(() => {
    const onVisibility = () => measure();
    document.addEventListener('visibilitychange', onVisibility);
    // The composer growing or the window resizing must not leave the newest message hidden.
    const ro = new ResizeObserver(() => {
      if (stick.current && ref.current) ref.current.scrollTop = ref.current.scrollHeight;
    });
    if (ref.current) ro.observe(ref.current);
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      ro.disconnect();
      chat.setReading(false);
    };
  }, []);

  function onScroll() {
    measure();
    const el = ref.current;
    if (!el) return;
    if (el.scrollTop < EDGE_PX) older();
    if (el.scrollHeight - el.scrollTop - el.clientHeight < EDGE_PX) newer();
  }

  /** Arrow keys move between messages; Enter reaches a message's controls, Escape comes back. */
  function onKeyDown(e: TargetedKeyboardEvent<HTMLOListElement>) {
    const target = e.target as HTMLElement;
    const row = target.closest<HTMLElement>('li[data-seq]');
    if (!row || e.defaultPrevented) return;
    if (target !== row) {
      if (e.key === 'Escape') {
        e.preventDefault();
        setInside(null);
        row.focus();
      }
      return;
    }
    const rows = Array.from(e.currentTarget.querySelectorAll<HTMLElement>('li[data-seq]'));
    const at = rows.indexOf(row);
    const page = Math.max(1, Math.floor((ref.current?.clientHeight ?? 400) / 60));
    const to = ({ ArrowUp: at - 1, ArrowDown: at + 1, PageUp: at - page, PageDown: at + page, Home: 0, End: rows.length - 1 } as Record<string, number>)[e.key];
    if (to !== undefined) {
      e.preventDefault();
      const next = rows[Math.max(0, Math.min(rows.length - 1, to))];
      next?.focus();
      if (next) next.scrollIntoView({ block: 'nearest' });
      if (e.key === 'End' && !tl.latest) {
        // The newest page replaces this window: focus its last message once it is in.
        focusLast.current = true;
        chat.showLatest(room);
      }
      return;
    }
    if (e.key === 'Enter' || e.key === 'F2') {
      const control = row.querySelector<HTMLElement>('button, a[href], textarea');
      if (control) {
        e.preventDefault();
        setInside(Number(row.dataset.seq));
        control.focus();
      }
    }
  }

  function onFocusIn(e: FocusEvent) {
    const row = (e.target as HTMLElement).closest<HTMLElement>('li[data-seq]');
    if (!row) return;
    const seq = Number(row.dataset.seq);
    setCurrent(seq);
    if (e.target !== row) setInside(seq);
  }

  function onFocusOut(e: FocusEvent) {
    const to = e.relatedTarget as HTMLElement | null;
    if (!to || !to.closest('li[data-seq]')) setInside(null);
  }

  const moderator = entry.role === 'owner' || entry.role === 'admin';
  const dividerBefore = chat.dividerBefore(room);
  const receipts = chat.receipts(room);
  const focusable = items.filter((m) => !(m.kind === 'join' && entry.room.kind === 'direct'));
  const tabStop = current !== null && focusable.some((m) => m.seq === current) ? current : (focusable[focusable.length - 1]?.seq ?? null);
  const rows: JSX.Element[] = [];
  let prev: Shown | undefined;
  for (const m of focusable) {
    const newDay = !prev || dayKey(prev.ts) !== dayKey(m.ts);
    if (newDay)
      rows.push(
        <li key={`d${m.seq}`} class="day">
          <span>{formatDay(m.ts)}</span>
        </li>,
      );
    const divider = m.seq === dividerBefore;
    if (divider)
      rows.push(
        <li key="divider" class="divider">
          <span>New messages</span>
        </li>,
      );
    // A server post never shares a group with a user's messages, so none can pass for part of it.
    const compact =
      !newDay && !divider && prev?.kind === 'text' && m.kind === 'text' && prev.user === m.user && prev.server === m.server && m.ts - prev.ts < GROUP_MS;
    rows.push(
      <MessageItem
        key={m.seq}
        chat={chat}
        room={room}
        m={m}
        compact={compact}
        editing={editing === m.seq}
        canDelete={m.user === chat.me.id || moderator}
        canPin={moderator && entry.room.kind !== 'direct'}
        setEditing={setEditing}
        openUser={openUser}
        openDialog={openDialog}
        tabIndex={m.seq === tabStop ? 0 : -1}
        controlsTab={inside === m.seq ? 0 : -1}
        highlight={m.seq === tl.highlight}
        readers={receipts.get(m.seq)}
      />,
    );
    prev = m;
  }

  const beginning = entry.room.kind === 'direct' ? `This is the beginning of your conversation with ${title}.` : `This is the beginning of ${title}.`;
  const showJump = tl.loaded && (!atBottom || !tl.latest);
  return (
    <div class="messages-wrap">
      <div
        class="messages"
        ref={ref}
        onScroll={onScroll}
        role="log"
        aria-label={`Messages in ${title}`}
        aria-busy={!tl.loaded || tl.loadingOlder || tl.loadingNewer}
      >
        <div class="history-edge" aria-live="polite">
          {tl.loadingOlder ? 'Loading older messages…' : tl.loaded && tl.complete ? beginning : ''}
        </div>
        {!tl.loaded && !tl.error && <p class="muted pad">Loading messages…</p>}
        {tl.error && (
          <p class="error pad" role="alert">
            Could not load messages: {tl.error}
          </p>
        )}
        <ol class="message-list" onKeyDown={onKeyDown} onFocusIn={onFocusIn} onFocusOut={onFocusOut}>
          {rows}
          {pending.map((p) => (
            <PendingItem key={p.key} chat={chat} p={p} />
          ))}
        </ol>
        {tl.loaded && !tl.latest && (
          <div class="history-edge newer" aria-live="polite">
            {tl.loadingNewer ? 'Loading newer messages…' : ''}
          </div>
        )}
      </div>
      {showJump && (
        <button type="button" class="jump" onClick={() => chat.showLatest(room)}>
          {entry.unread > 0 ? `${entry.unreadMore ? `${entry.unread}+ new messages` : plural(entry.unread, 'new message')} ↓` : 'Jump to latest ↓'}
        </button>
      )}
    </div>
  );
}

/** A touch screen: no hover, so a message shows its actions when it has focus. */
const NO_HOVER = typeof matchMedia === 'function' ? matchMedia('(hover: none)') : null;

function systemText(chat: Chat, m: Shown): string {
  const by = typeof m.data?.by === 'string' ? shownName(chat.nameOf(m.data.by)) : null;
  const name = shownName(m.name);
  if (m.kind === 'join') {
    if (m.data?.role === 'owner') return `${name} created the room`;
    return by ? `${by} added ${name}` : `${name} joined`;
  }
  if (m.kind === 'leave') return by ? `${by} removed ${name}` : `${name} left`;
  if (m.kind === 'hidden') return 'A message from a user you blocked';
  const d = m.data ?? {};
  const parts: string[] = [];
  if (typeof d.name === 'string') parts.push(`renamed the room to “${d.name}”`);
  if (typeof d.topic === 'string') parts.push(d.topic ? `changed the topic to “${d.topic}”` : 'cleared the topic');
  if (d.access === 'whitelist') parts.push('made the room invitation-only (white list)');
  if (d.access === 'blacklist') parts.push('opened the room to everyone not on the black list');
  if (d.retention) parts.push('changed how long history is kept');
  if (typeof d.user === 'string' && typeof d.role === 'string') {
    const whom = d.user === chat.me.id ? 'you' : shownName(chat.nameOf(d.user));
    // An owner who leaves hands nothing over: the room passes on.
    if (d.role === 'owner' && d.reason === 'leave') return `The room passed to ${whom} when ${name} left`;
    parts.push(d.role === 'owner' ? `handed the room to ${whom}` : `made ${whom} ${d.role === 'admin' ? 'an admin' : 'a member'}`);
  }
  return `${m.user === chat.me.id ? 'You' : name} ${parts.join(', ') || 'changed the room'}`;
}

function MessageItem({
  chat,
  room,
  m,
  compact,
  editing,
  canDelete,
  canPin,
  setEditing,
  openUser,
  openDialog,
  tabIndex,
  controlsTab,
  highlight,
  readers,
}: {
  chat: Chat;
  room: string;
  m: Shown;
  compact: boolean;
  editing: boolean;
  canDelete: boolean;
  canPin: boolean;
  setEditing: (seq: number | null) => void;
  openUser: (user: string) => void;
  openDialog: (d: DialogState) => void;
  tabIndex: number;
  controlsTab: number;
  highlight: boolean;
  readers: string[] | undefined;
}) {
  const iso = new Date(m.ts).toISOString();
  const cls = highlight ? ' target' : '';
  if (m.kind !== 'text') {
    return (
      <li class={`system${cls}`} data-seq={m.seq} tabIndex={tabIndex}>
        <span>{systemText(chat, m)}</span>{' '}
        <time dateTime={iso} title={formatFull(m.ts)}>
          {formatTime(m.ts)}
        </time>
      </li>
    );
  }
  const mine = m.user === chat.me.id;
  const name = chat.names.get(m.user) ?? m.name;
  function reply() {
    chat.replyTo(room, m);
    // Straight to the message box: on a phone its focus brings up the keyboard.
    document.getElementById('composer')?.focus();
  }
  async function remove() {
    if (await confirmAction({ title: 'Delete this message?', body: 'It is deleted for everyone in the room.', action: 'Delete' })) {
      await chat.remove(room, m.seq);
    }
  }
  return (
    <li
      class={`msg${compact ? ' compact' : ''}${mine ? ' mine' : ''}${m.server ? ' announcement' : ''}${!mine && chat.mentionsMe(m) ? ' mentioned' : ''}${cls}`}
      data-seq={m.seq}
      tabIndex={tabIndex}
      onMouseDown={(e) => {
        // On a touch screen a message given focus shows its actions on a row of their own,
        // which moves the list, and focus moving into the message re-renders it; a tap on one
        // of its controls (the author's name, a reaction, a link, an action) then clicked
        // whatever had moved under the finger. Such a tap leaves focus where it is.
        if (!NO_HOVER?.matches) return;
        if ((e.target as Element).closest('button, a')) e.preventDefault();
      }}
    >
      <div class="msg-gutter">
        {compact ? (
          <time class="hover-time" dateTime={iso} title={formatFull(m.ts)}>
            {formatTime(m.ts)}
          </time>
        ) : (
          <Avatar id={m.user} name={name} />
        )}
      </div>
      <div class="msg-body">
        {compact ? (
          <span class="sr-only">
            {name}
            {m.server ? ' (server)' : ''}, {formatTime(m.ts)}:{' '}
          </span>
        ) : (
          <div class="msg-head">
            <button type="button" class="name link" tabIndex={controlsTab} title={name} onClick={() => openUser(m.user)}>
              {name}
            </button>
            {m.server && (
              <span class="server-tag" title="Posted by this server, not by a user">
                Server
              </span>
            )}
            <time dateTime={iso} title={formatFull(m.ts)}>
              {formatTime(m.ts)}
            </time>
          </div>
        )}
        {m.quote && <QuoteBlock chat={chat} quote={m.quote} />}
        {editing ? (
          <EditForm chat={chat} room={room} m={m} done={() => setEditing(null)} />
        ) : m.deleted ? (
          <div class="msg-text deleted">
            <p>This message was deleted.</p>
          </div>
        ) : (
          <div class="msg-text">
            {(m.text !== '' || m.edited) && (
              <MessageText
                text={m.text}
                linkTabIndex={controlsTab}
                mentions={mentionTokens(m)}
                me={chat.me.id}
                after={
                  m.edited ? (
                    <>
                      {' '}
                      <button
                        type="button"
                        class="edited link"
                        tabIndex={controlsTab}
                        title="Show earlier versions"
                        onClick={() => openDialog({ kind: 'versions', room, seq: m.seq })}
                      >
                        (edited)
                      </button>
                    </>
                  ) : undefined
                }
              />
            )}
            {Array.isArray(m.data?.attachments) && <Attachments chat={chat} files={m.data.attachments as AttachmentRef[]} tabIndex={controlsTab} />}
          </div>
        )}
        {m.reactions.length > 0 && (
          <div class="reactions">
            {m.reactions.map((r) => {
              const me = r.users.includes(chat.me.id);
              const who = r.users.map((u) => (u === chat.me.id ? 'you' : chat.nameOf(u))).join(', ');
              return (
                <button
                  key={r.emoji}
                  type="button"
                  class={`chip${me ? ' mine' : ''}`}
                  aria-pressed={me}
                  title={who}
                  tabIndex={controlsTab}
                  aria-label={`${r.emoji} ${r.users.length}, by ${who}`}
                  onClick={() => void chat.react(room, m.seq, r.emoji, me)}
                >
                  <span aria-hidden="true">
                    <span class="emoji">{r.emoji}</span> {r.users.length}
                  </span>
                </button>
              );
            })}
          </div>
        )}
        <ThreadLink chat={chat} room={room} m={m} tabIndex={controlsTab} />
        {readers && readers.length > 0 && <Receipts chat={chat} readers={readers} />}
      </div>
      {!m.deleted && !editing && (
        <div class="msg-actions" role="toolbar" aria-label={`Actions for the message of ${name}`}>
          <ReactPicker
            tabIndex={controlsTab}
            onPick={(emoji) => {
              const mineAlready = m.reactions.find((r) => r.emoji === emoji)?.users.includes(chat.me.id) ?? false;
              void chat.react(room, m.seq, emoji, mineAlready);
            }}
          />
          <button type="button" class="icon" tabIndex={controlsTab} aria-label="Reply" title="Reply" onClick={() => reply()}>
            <Icon name="reply" />
          </button>
          {m.thread === undefined && (
            <button
              type="button"
              class="icon thread-action"
              tabIndex={controlsTab}
              aria-label="Reply in thread"
              title="Reply in thread"
              onClick={() => void chat.openThread(room, m.seq)}
            >
              <Icon name="thread" />
            </button>
          )}
          {canPin && (
            <button type="button" class="icon" tabIndex={controlsTab} aria-label="Pin message" title="Pin" onClick={() => void chat.pin(room, m.seq, true)}>
              <Icon name="pin" />
            </button>
          )}
          {mine && (
            <button type="button" class="icon" tabIndex={controlsTab} aria-label="Edit message" title="Edit" onClick={() => setEditing(m.seq)}>
              <Icon name="edit" />
            </button>
          )}
          {canDelete && (
            <button type="button" class="icon" tabIndex={controlsTab} aria-label="Delete message" title="Delete" onClick={() => void remove()}>
              <Icon name="trash" />
            </button>
          )}
        </div>
      )}
    </li>
  );
}

/** Under a thread root, "N replies" with the last reply's time; under a reply also sent to the room, its thread. */
function ThreadLink({ chat, room, m, tabIndex }: { chat: Chat; room: string; m: Shown; tabIndex: number }) {
  if (m.thread !== undefined) {
    return (
      <button type="button" class="link thread-link" tabIndex={tabIndex} onClick={() => void chat.openThread(room, m.thread!)}>
        Replied in a thread
      </button>
    );
  }
  const summary = chat.summaryOf(room, m);
  if (!summary) return null;
  return (
    <button
      type="button"
      class="link thread-link"
      tabIndex={tabIndex}
      onClick={() => void chat.openThread(room, m.seq)}
      title={`Last reply ${formatFull(summary.lastTs)}`}
    >
      {plural(summary.count, 'reply', 'replies')}
      <span class="muted"> · {summary.users.map((u) => chat.nameOf(u)).join(', ')}</span>
    </button>
  );
}

/** The "@" tokens of a text the server counted as mentions. */
function mentionTokens(m: Shown): Set<string> {
  const out = new Set(m.mentions);
  if (m.mentionsAll) out.add('room');
  if (m.mentions.length > 0) out.add('here');
  return out;
}

/** Who has read up to this message (small rooms). */
function Receipts({ chat, readers }: { chat: Chat; readers: string[] }) {
  const names = readers.map((u) => chat.nameOf(u));
  const label = `Seen by ${names.length <= 3 ? names.join(', ') : `${names.slice(0, 2).join(', ')} and ${names.length - 2} more`}`;
  return (
    <div class="receipts" role="img" aria-label={label} title={label}>
      {readers.slice(0, 5).map((u) => (
        <Avatar key={u} id={u} name={chat.nameOf(u)} size="xs" />
      ))}
    </div>
  );
}

function ReactPicker({ onPick, tabIndex }: { onPick: (emoji: string) => void; tabIndex: number }) {
  const [open, setOpen] = useState(false);
  const [all, setAll] = useState(false);
  const [up, setUp] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const toggleRef = useRef<HTMLButtonElement>(null);
  function toggle() {
    // Open towards the larger part of the log, so the scroll area does not cut the palette off.
    const log = ref.current?.closest('.messages')?.getBoundingClientRect();
    const at = ref.current?.getBoundingClientRect();
    setUp(!!log && !!at && at.top - log.top > log.bottom - at.bottom);
    setOpen((v) => !v);
  }
  function close() {
    setOpen(false);
    toggleRef.current?.focus();
  }
  useEffect(() => {
    if (!open) return;
    const away = (e: MouseEvent) => {
      if (!ref.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', away);
    return () => document.removeEventListener('mousedown', away);
  }, [open]);
  return (
    <div
      class="picker-wrap"
      ref={ref}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && open) {
          e.stopPropagation();
          e.preventDefault();
          close();
        }
      }}
    >
      <button ref={toggleRef} type="button" class="icon" tabIndex={tabIndex} aria-label="Add reaction" title="React" aria-expanded={open} onClick={toggle}>
        <Icon name="smile" />
      </button>
      {open && (
        <QuickReactions
          up={up}
          onPick={(e) => {
            close();
            onPick(e);
          }}
          onMore={() => {
            close();
            setAll(true);
          }}
        />
      )}
      {/* In the page's body, not in the message's toolbar: on a touch screen the toolbar is
          hidden once focus leaves the message, and a dialog inside it would be drawn at no
          size while still blocking the page. */}
      {all &&
        createPortal(
          <EmojiPicker
            title="Choose an emoji"
            onClose={() => setAll(false)}
            onPick={(e) => {
              setAll(false);
              onPick(e);
            }}
          />,
          document.body,
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
    const bad = checkText(v) ?? tooLong(v.length, chat.textLimit);
    if (bad) return setError(bad);
    if (v !== m.text) await chat.edit(room, m.seq, v);
    done();
  }
  return (
    <form
      class="edit-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label class="sr-only" for={`edit-${m.seq}`}>
        Edit message
      </label>
      <textarea
        id={`edit-${m.seq}`}
        ref={ref}
        value={text}
        rows={2}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `edit-${m.seq}-err` : undefined}
        onInput={(e) => {
          setText(e.currentTarget.value);
          setError(null);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            void save();
          }
          if (e.key === 'Escape') {
            e.preventDefault();
            done();
          }
        }}
      />
      {error && (
        <small id={`edit-${m.seq}-err`} class="error" role="alert">
          {error}
        </small>
      )}
      <div class="row small">
        <button type="submit" class="primary">
          Save
        </button>
        <button type="button" onClick={done}>
          Cancel
        </button>
        <span class="muted key-hint">Enter to save, Escape to cancel</span>
      </div>
    </form>
  );
}

function PendingItem({ chat, p }: { chat: Chat; p: PendingSend }) {
  const offline = chat.conn !== 'online';
  const status = p.status === 'failed' ? `Not sent: ${p.error ?? 'error'}` : offline ? 'Waiting for connection…' : 'Sending…';
  return (
    <li class={`msg mine pending${p.status === 'failed' ? ' failed' : ''}`} data-pending={p.key}>
      <div class="msg-gutter">
        <Avatar id={chat.me.id} name={chat.me.name} />
      </div>
      <div class="msg-body">
        <div class="msg-head">
          <span class="name">{chat.me.name}</span>
          <span class="pending-status" role={p.status === 'failed' ? 'alert' : undefined}>
            {status}
          </span>
        </div>
        <div class="msg-text">
          {p.text && <p>{p.text}</p>}
          {p.attachments && <p class="muted">{plural(p.attachments.length, 'file')}</p>}
        </div>
        {p.status === 'failed' && (
          <div class="row small">
            <button type="button" onClick={() => chat.retry(p.key)}>
              Retry
            </button>
            <button type="button" class="ghost" onClick={() => chat.discard(p.key)}>
              Discard
            </button>
          </div>
        )}
      </div>
    </li>
  );
}

/** A message's files: images as previews that open the original, other files as cards. */
function Attachments({ chat, files, tabIndex }: { chat: Chat; files: AttachmentRef[]; tabIndex: number }) {
  return (
    <ul class="attachments">
      {files.map((f) => (
        <li key={f.id}>
          <AttachmentView chat={chat} f={f} tabIndex={tabIndex} />
        </li>
      ))}
    </ul>
  );
}

function AttachmentView({ chat, f, tabIndex }: { chat: Chat; f: AttachmentRef; tabIndex: number }) {
  const [link, setLink] = useState<Upload | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    chat.fileLink(f.id).then(
      (v) => {
        if (live) setLink(v);
      },
      () => {
        if (live) setFailed(true);
      },
    );
    return () => {
      live = false;
    };
  }, [f.id]);
  const image = f.width !== undefined && f.height !== undefined;
  if (image && !failed) {
    // The box has the image's shape (at most the preview's size) before it loads: no jump.
    const scale = Math.min(1, 360 / Math.max(f.width!, f.height!));
    return (
      <a
        class="attachment-image"
        href={link?.url}
        target="_blank"
        rel="noopener noreferrer"
        tabIndex={tabIndex}
        title={f.name}
        style={{ width: `${Math.round(f.width! * scale)}px`, aspectRatio: `${f.width} / ${f.height}` }}
      >
        {link?.previewUrl && <img src={link.previewUrl} alt={f.name} loading="lazy" />}
      </a>
    );
  }
  return (
    <a class="attachment-card" href={link?.url} download={f.name} tabIndex={tabIndex} aria-disabled={link ? undefined : true}>
      <Icon name="file" size={28} />
      <span class="attachment-meta">
        <span class="attachment-name clip">{f.name}</span>
        <span class="muted">{formatBytes(f.size)}</span>
      </span>
    </a>
  );
}

/** The files the composer holds: progress while uploading, retry when it failed. */
function UploadTray({ chat, room, items }: { chat: Chat; room: string; items: UploadItem[] }) {
  return (
    <ul class="upload-tray" aria-label="Files to send">
      {items.map((u) => (
        <li key={u.local} class={`upload ${u.status}`} data-upload={u.status}>
          {u.thumb ? <img src={u.thumb} alt="" /> : <Icon name="file" size={24} />}
          <span class="attachment-meta">
            <span class="attachment-name clip" title={u.file.name}>
              {u.file.name || 'pasted'}
            </span>
            {u.status === 'uploading' && <progress max={u.file.size || 1} value={u.sent} aria-label={`Uploading ${u.file.name}`} />}
            {u.status === 'done' && <span class="muted">{formatBytes(u.done!.size)}</span>}
            {u.status === 'failed' && (
              <span class="error" role="alert">
                Upload failed: {u.error}
              </span>
            )}
          </span>
          {u.status === 'failed' && (
            <button type="button" onClick={() => chat.retryUpload(room, u.local)}>
              Retry
            </button>
          )}
          <button type="button" class="icon" aria-label={`Remove ${u.file.name}`} title="Remove" onClick={() => chat.dropUpload(room, u.local)}>
            <Icon name="close" size={14} />
          </button>
        </li>
      ))}
    </ul>
  );
}

function TypingLine({ chat, room }: { chat: Chat; room: string }) {
  const names = chat.typingIn(room).map((u) => chat.nameOf(u));
  const text =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : 'Several people are typing…';
  return (
    <div class="typing" aria-live="polite">
      {text}
    </div>
  );
}

/** The limit said before sending: how far over it a text is, or null. */
function tooLong(length: number, limit: number): string | null {
  return length > limit ? `${formatNumber(length - limit)} characters too long (the limit is ${formatNumber(limit)}).` : null;
}

function Composer({ chat, room, mention, onEditLast }: { chat: Chat; room: string; mention: string; onEditLast: () => boolean }) {
  const [text, setText] = useState(() => chat.drafts.get(room));
  const [error, setError] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  const [suggest, setSuggest] = useState<{ start: number; items: Suggestion[]; active: number } | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  const replying = chat.replying.get(room);
  /** Where an emoji from the picker goes: the selection when the picker was opened. */
  const caret = useRef<[number, number]>([0, 0]);
  useEffect(() => {
    if (pointerIsFine()) ref.current?.focus();
  }, [room]);

  function update(v: string) {
    setText(v);
    const at = mentionAt(v, ref.current?.selectionStart ?? v.length);
    const items = at ? suggestions(chat, room, at.query) : [];
    setSuggest(at && items.length > 0 ? { start: at.start, items, active: 0 } : null);
    chat.drafts.set(room, v);
    setError(null);
    if (v.trim()) chat.typingNow(room);
    else chat.stopTyping(room);
  }

  const uploads = chat.uploadsIn(room);
  const fileInput = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);

  function submit() {
    const v = text.trim();
    if (uploads.some((u) => u.status !== 'done')) {
      setError(uploads.some((u) => u.status === 'failed') ? 'An upload failed: retry it or remove it.' : 'Wait for the uploads to finish.');
      return;
    }
    const files = uploads.map((u) => u.done!.id);
    const bad = (files.length > 0 && v === '' ? null : checkText(v)) ?? tooLong(v.length, chat.textLimit);
    if (bad) {
      setError(bad);
      return;
    }
    chat.send(room, v, files);
    setText('');
    setError(null);
  }

  function pickMention(s: Suggestion) {
    if (!suggest) return;
    const el = ref.current;
    const end = el?.selectionStart ?? text.length;
    const token = `@${s.id} `;
    const v = text.slice(0, suggest.start) + token + text.slice(end);
    setText(v);
    chat.drafts.set(room, v);
    setSuggest(null);
    mentionCaret.current = suggest.start + token.length;
  }

  // The caret goes after the picked mention in the same turn as the new text is shown, before
  // any key typed next is read (a later frame would put it back behind what was typed meanwhile).
  const mentionCaret = useRef<number | null>(null);
  useLayoutEffect(() => {
    const at = mentionCaret.current;
    if (at === null) return;
    mentionCaret.current = null;
    ref.current?.focus();
    ref.current?.setSelectionRange(at, at);
  }, [text]);

  function insert(emoji: string) {
    const [from, to] = caret.current;
    const v = text.slice(0, from) + emoji + text.slice(to);
    update(v);
    setPicking(false);
    caret.current = [from + emoji.length, from + emoji.length];
    refocus.current = true;
  }

  // Back in the message box after an emoji is inserted, with the caret after it. This runs
  // after the picker's dialog has closed (which returns focus to its button first).
  const refocus = useRef(false);
  useEffect(() => {
    if (picking || !refocus.current) return;
    refocus.current = false;
    ref.current?.focus();
    ref.current?.setSelectionRange(caret.current[0], caret.current[1]);
  }, [picking]);

  const limit = chat.textLimit;
  const over = tooLong(text.length, limit);
  const near = text.length >= limit * 0.9;
  const described = ['composer-help', near ? 'composer-count' : '', error ? 'composer-err' : ''].filter(Boolean).join(' ');
  return (
    <form
      class={`composer${dragging ? ' dragging' : ''}`}
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        setDragging(false);
        if (!e.dataTransfer?.files.length) return;
        e.preventDefault();
        chat.addFiles(room, Array.from(e.dataTransfer.files));
      }}
    >
      {uploads.length > 0 && <UploadTray chat={chat} room={room} items={uploads} />}
      {error && (
        <small id="composer-err" class="error composer-error" role="alert">
          {error}
        </small>
      )}
      {!error && near && (
        <small id="composer-count" class={`composer-count${over ? ' error' : ''}`} aria-live="polite">
          {over ?? `${formatNumber(text.length)} / ${formatNumber(limit)}`}
        </small>
      )}
      {replying && (
        <div class="replying" role="status">
          <span>
            Replying to <strong>{chat.nameOf(replying.user)}</strong>: {shorten(plainText(replying.text), 80)}
          </span>
          <button type="button" class="icon" aria-label="Cancel reply" title="Cancel reply" onClick={() => chat.replyTo(room, null)}>
            <Icon name="close" />
          </button>
        </div>
      )}
      {suggest && <MentionList items={suggest.items} active={suggest.active} onPick={pickMention} />}
      <label for="composer" class="sr-only">
        Message {mention}
      </label>
      <textarea
        id="composer"
        ref={ref}
        rows={1}
        placeholder={`Message ${shorten(mention, 40)}`}
        value={text}
        aria-describedby={described}
        aria-invalid={error || over ? true : undefined}
        aria-autocomplete="list"
        aria-controls={suggest ? 'mention-list' : undefined}
        aria-expanded={suggest ? true : undefined}
        aria-activedescendant={suggest ? `mention-${suggest.active}` : undefined}
        onInput={(e) => update(e.currentTarget.value)}
        onPaste={(e) => {
          const files = Array.from(e.clipboardData?.files ?? []);
          if (files.length === 0) return;
          e.preventDefault();
          chat.addFiles(room, files);
        }}
        onBlur={() => chat.stopTyping(room)}
        onKeyDown={(e) => {
          if (suggest && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
            e.preventDefault();
            const n = suggest.items.length;
            setSuggest({ ...suggest, active: (suggest.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n });
          } else if (suggest && (e.key === 'Enter' || e.key === 'Tab') && !e.isComposing) {
            e.preventDefault();
            pickMention(suggest.items[suggest.active]!);
          } else if (suggest && e.key === 'Escape') {
            e.preventDefault();
            setSuggest(null);
          } else if (e.key === 'Escape' && replying) {
            e.preventDefault();
            chat.replyTo(room, null);
          } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          } else if (e.key === 'ArrowUp' && text === '' && onEditLast()) {
            e.preventDefault();
          }
        }}
      />
      <span id="composer-help" class="sr-only">
        Enter sends, Shift+Enter starts a new line, Up arrow edits your last message. Markdown works: **bold**, _italic_, `code`.
      </span>
      <input
        ref={fileInput}
        type="file"
        multiple
        hidden
        aria-hidden="true"
        tabIndex={-1}
        data-testid="file-input"
        onChange={(e) => {
          const files = Array.from(e.currentTarget.files ?? []);
          e.currentTarget.value = '';
          if (files.length) chat.addFiles(room, files);
        }}
      />
      <button type="button" class="icon attach-button" aria-label="Attach files" title="Attach files" onClick={() => fileInput.current?.click()}>
        <Icon name="clip" />
      </button>
      <button
        type="button"
        class="icon emoji-button"
        aria-label="Insert emoji"
        title="Insert emoji"
        onClick={() => {
          const el = ref.current;
          caret.current = el ? [el.selectionStart, el.selectionEnd] : [text.length, text.length];
          setPicking(true);
        }}
      >
        <Icon name="smile" />
      </button>
      <button type="submit" class="primary send">
        Send
      </button>
      {picking && <EmojiPicker title="Choose an emoji" onClose={() => setPicking(false)} onPick={insert} />}
    </form>
  );
}
