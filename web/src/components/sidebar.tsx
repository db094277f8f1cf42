// The room list (the inbox): every room with its last message and unread count, most recent
// first, plus the ways into new conversations.
import type { TargetedKeyboardEvent } from 'preact';
import { useState } from 'preact/hooks';
import type { Chat, RoomEntry } from '../chat.js';
import { formatShort, shownName, plural, roomTitle } from '../format.js';
import { plainText } from '../markdown-loader.js';
import { setNotifyChoice } from '../prefs.js';
import type { DialogState } from './app.js';
import { Icon } from './icons.js';
import { useMarkdown } from './text.js';
import { turnOnNotifications } from './preferences.js';
import { Avatar, UserIdForm } from './ui.js';

export function Sidebar({
  chat,
  active,
  go,
  openDialog,
}: {
  chat: Chat;
  active: string | null;
  go: (room: string | null) => void;
  openDialog: (d: DialogState) => void;
}) {
  const rooms = chat.sortedRooms();
  const nameOf = (u: string) => chat.nameOf(u);
  // Previews read as drawn once the Markdown renderer is there.
  useMarkdown();

  // Arrow keys move between rooms, as in any list; Tab leaves the list.
  function onKeyDown(e: TargetedKeyboardEvent<HTMLUListElement>) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
    const links = Array.from(e.currentTarget.querySelectorAll<HTMLAnchorElement>('a.room-link'));
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    const next = e.key === 'Home' ? 0 : e.key === 'End' ? links.length - 1 : Math.max(0, Math.min(links.length - 1, at + (e.key === 'ArrowDown' ? 1 : -1)));
    links[next]?.focus();
    e.preventDefault();
  }

  return (
    <aside class="sidebar" aria-label="Rooms">
      <div class="sidebar-actions">
        <button type="button" class="primary" onClick={() => openDialog({ kind: 'create' })}>
          New room
        </button>
        <button type="button" onClick={() => openDialog({ kind: 'browse' })}>
          Browse channels
        </button>
      </div>
      <DirectForm chat={chat} go={go} />
      {chat.offerNotifications && <NotifyOffer chat={chat} />}
      <nav aria-label="Your rooms">
        {!chat.inboxLoaded && <p class="muted pad">Loading rooms…</p>}
        {chat.inboxLoaded && rooms.length === 0 && <p class="muted pad">No rooms yet. Create one or browse channels.</p>}
        <ul class="room-list" onKeyDown={onKeyDown}>
          {rooms.map((e) => (
            <RoomItem key={e.room.id} chat={chat} entry={e} active={e.room.id === active} go={go} nameOf={nameOf} />
          ))}
        </ul>
      </nav>
    </aside>
  );
}

function preview(chat: Chat, e: RoomEntry): string {
  const m = e.last;
  if (!m) return e.room.kind === 'channel' ? 'Channel' : e.room.kind === 'group' ? 'Private group' : 'No messages yet';
  if (m.kind === 'delete') return 'Message deleted';
  if (m.kind === 'hidden') return 'Hidden message';
  const who = m.system ? 'Server' : m.user === chat.me.id ? 'You' : chat.nameOf(m.user);
  const files = Array.isArray(m.data?.attachments) ? (m.data.attachments as Array<{ name: string }>) : [];
  // A message of files only is previewed by their names.
  const text = (m.text && plainText(m.text)) || files.map((f) => f.name).join(', ');
  return `${shownName(who)}: ${files.length > 0 && !m.text ? '📎 ' : ''}${text.replace(/\s+/g, ' ')}`;
}

function RoomItem({
  chat,
  entry,
  active,
  go,
  nameOf,
}: {
  chat: Chat;
  entry: RoomEntry;
  active: boolean;
  go: (room: string) => void;
  nameOf: (u: string) => string;
}) {
  const title = roomTitle(entry, nameOf);
  const online = entry.room.kind === 'direct' && entry.peer ? (chat.onlineIn(entry.room.id)?.has(entry.peer) ?? false) : undefined;
  const icon = entry.room.kind === 'channel' ? 'hash' : entry.room.kind === 'group' ? 'lock' : null;
  // The link is named by what it shows (its name first), with the unread count for screen readers.
  return (
    <li>
      <a
        class={`room-link${active ? ' active' : ''}${entry.unread ? ' unread' : ''}`}
        href={`/r/${entry.room.id}`}
        aria-current={active ? 'page' : undefined}
        data-room={entry.room.id}
        onClick={(e) => {
          if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          go(entry.room.id);
        }}
      >
        {icon ? (
          <span class="avatar avatar-md room-icon" aria-hidden="true">
            <Icon name={icon} />
          </span>
        ) : (
          <Avatar id={entry.peer ?? entry.room.id} name={title} online={online} />
        )}
        <span class="room-text">
          <span class="room-top">
            <span class="room-name" title={title}>
              {title}
              {entry.unread > 0 && (
                <span class="sr-only">, {entry.unreadMore ? `${entry.unread}+ unread messages` : plural(entry.unread, 'unread message')}</span>
              )}
              {entry.mentions > 0 && <span class="sr-only">, {plural(entry.mentions, 'unread mention')}</span>}
            </span>
            {entry.last && (
              <time class="room-time" dateTime={new Date(entry.last.ts).toISOString()}>
                {formatShort(entry.last.ts)}
              </time>
            )}
          </span>
          <span class="room-bottom">
            <span class="room-preview">{preview(chat, entry)}</span>
            {entry.mentions > 0 && (
              <span class="badge mention-badge" aria-hidden="true">
                @{entry.mentions > 99 ? '99+' : entry.mentions}
              </span>
            )}
            {entry.unread > 0 && (
              <span class="badge" aria-hidden="true">
                {entry.unread > 99 ? '99+' : `${entry.unread}${entry.unreadMore ? '+' : ''}`}
              </span>
            )}
          </span>
        </span>
      </a>
    </li>
  );
}

/** After the first direct message: the offer of browser notifications, asked only if taken. */
function NotifyOffer({ chat }: { chat: Chat }) {
  const [problem, setProblem] = useState<string | null>(null);
  const done = () => {
    chat.offerNotifications = false;
    chat.changed();
  };
  return (
    <div class="offer" role="region" aria-label="Notifications">
      <p>Get a notification when someone messages you directly while Parley is in the background?</p>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <div class="row small">
        <button type="button" class="primary" onClick={() => void turnOnNotifications(() => chat.token()).then((p) => (p ? setProblem(p) : done()))}>
          Turn on
        </button>
        <button
          type="button"
          class="ghost"
          onClick={() => {
            setNotifyChoice('off');
            done();
          }}
        >
          Not now
        </button>
      </div>
    </div>
  );
}

/** Opens the direct conversation with a user named by id, after checking the user exists. */
function DirectForm({ chat, go }: { chat: Chat; go: (room: string) => void }) {
  return (
    <UserIdForm
      chat={chat}
      id="direct-user"
      cls="direct-form"
      label="Message a user"
      action="Open"
      check={(id) => (id === chat.me.id ? 'That is you. Enter someone else’s user id.' : null)}
      onUser={async (found) => {
        go((await chat.directWith(found.id)).id);
      }}
    />
  );
}
