// The app shell: signed out shows the account screen; signed in, the header, the room list,
// the open conversation (its id in the path, /r/<room>, so a reload reopens it) and dialogs.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Chat } from '../chat.js';
import { Session } from '../session.js';
import { AuthScreen } from './auth.js';
import { Conversation } from './conversation.js';
import { BrowseChannels, CreateRoom, RoomSettings, UserCard } from './dialogs.js';
import { Icon } from './icons.js';
import { Preferences } from './preferences.js';
import { Admin } from './admin.js';
import { Profile } from './profile.js';
import { SearchBox, SearchResults } from './search.js';
import { Sidebar } from './sidebar.js';
import { loadMarkdown } from './text.js';
import { Avatar, ConfirmHost, useChat, VisuallyHidden } from './ui.js';
import { PinsDialog, VersionsDialog } from './rich.js';
import { notifyChoice } from '../prefs.js';
import { onOpenRoomMessage, registerWorker, subscribePush } from '../push.js';
import { setAvatarSource } from '../avatars.js';

const ROOM_PATH = /^\/r\/([A-Za-z0-9_-]{1,64})\/?$/;

function roomFromPath(): string | null {
  return ROOM_PATH.exec(location.pathname)?.[1] ?? null;
}

export function App() {
  const [notice, setNotice] = useState('');
  const [session, setSession] = useState<Session | null>(() => Session.restore(end));
  function end(reason: string) {
    setSession(null);
    setNotice(reason);
  }
  if (!session)
    return (
      <AuthScreen
        onSession={(s) => {
          setNotice('');
          setSession(s);
        }}
        notice={notice}
        onEnd={end}
      />
    );
  return <ChatScreen key={session.user.id} session={session} />;
}

export type DialogState =
  | { kind: 'create' }
  | { kind: 'browse' }
  | { kind: 'settings'; room: string }
  | { kind: 'user'; user: string; room: string | null }
  | { kind: 'preferences' }
  | { kind: 'profile' }
  | { kind: 'admin' }
  | { kind: 'pins'; room: string }
  | { kind: 'versions'; room: string; seq: number };

function ChatScreen({ session }: { session: Session }) {
  const chat = useMemo(() => new Chat(session), [session]);
  useEffect(() => {
    setAvatarSource(() => session.token());
    chat.start();
    // Message text is Markdown: its renderer loads while the connection is made.
    void loadMarkdown().catch(() => {});
    const keep = () => chat.drafts.flush();
    addEventListener('pagehide', keep);
    // The service worker shows pushes while no tab is open; registering it asks nothing. When
    // notifications are on, this browser's subscription is handed to the server again (it may
    // have been made by another account, or dropped when a session ended).
    void registerWorker().then(() => {
      if (notifyChoice() === 'on' && typeof Notification !== 'undefined' && Notification.permission === 'granted') void subscribePush(() => session.token());
    });
    const stopListening = onOpenRoomMessage((room) => chat.onOpenRoom?.(room));
    return () => {
      stopListening();
      setAvatarSource(null);
      removeEventListener('pagehide', keep);
      chat.stop();
    };
  }, [chat]);
  useChat(chat);
  const [route, setRoute] = useState(roomFromPath);
  const [dialog, setDialog] = useState<DialogState | null>(null);
  const [search, setSearch] = useState<string | null>(null);

  function go(room: string | null) {
    const path = room ? `/r/${room}` : '/';
    if (location.pathname !== path) history.pushState(null, '', path);
    setSearch(null);
    open(room);
  }

  /**
   * The chat opens the room before the page shows it: its first frame has the room's own "New
   * messages" line and place, not those left from the last visit.
   */
  function open(room: string | null) {
    chat.open(room);
    setRoute(room);
  }
  chat.onOpenRoom = go;

  // Signed in (or reloaded): keyboard focus starts in the app, not on the page itself. An open
  // conversation's message box takes it (see Composer); otherwise the room list.
  const focused = useRef(false);
  useEffect(() => {
    if (focused.current || !chat.inboxLoaded) return;
    // The state may run ahead of the page (the effect of an earlier render): wait for the list.
    const first = document.querySelector<HTMLElement>('.sidebar a.room-link');
    if (!first && chat.rooms.size > 0) return;
    focused.current = true;
    if (route || (document.activeElement && document.activeElement !== document.body)) return;
    (first ?? document.querySelector<HTMLElement>('.sidebar-actions button'))?.focus();
  });
  useEffect(() => {
    const onPop = () => open(roomFromPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    chat.open(route);
  }, [chat, route]);
  chat.onRoomGone = () => go(null);

  const unread = [...chat.rooms.values()].reduce((n, e) => n + e.unread, 0);
  useEffect(() => {
    document.title = unread ? `(${unread}) Parley` : 'Parley';
  }, [unread]);

  const close = () => setDialog(null);
  const hasComposer = route !== null && search === null && chat.rooms.has(route);
  return (
    <div class={`app${route || search !== null ? ' has-room' : ''}`}>
      {hasComposer && (
        <a class="skip" href="#composer">
          Skip to message box
        </a>
      )}
      <Header chat={chat} session={session} search={search} onSearch={setSearch} openDialog={setDialog} />
      <div class="body">
        <Sidebar chat={chat} active={route} go={go} openDialog={setDialog} />
        <main class="main" aria-label={search !== null ? 'Search' : 'Conversation'}>
          {search !== null ? (
            <SearchResults
              chat={chat}
              query={search}
              onClose={() => setSearch(null)}
              onOpen={(room, seq) => {
                chat.jumpTo(room, seq);
                go(room);
              }}
            />
          ) : route ? (
            <Conversation key={route} chat={chat} room={route} go={go} openDialog={setDialog} />
          ) : (
            <Welcome chat={chat} openDialog={setDialog} />
          )}
        </main>
      </div>
      <Notices chat={chat} />
      <ConfirmHost />
      {dialog?.kind === 'preferences' && <Preferences token={() => session.token()} onClose={close} />}
      {dialog?.kind === 'admin' && <Admin session={session} onClose={close} />}
      {dialog?.kind === 'profile' && <Profile chat={chat} session={session} onClose={close} />}
      {dialog?.kind === 'create' && <CreateRoom chat={chat} onClose={close} go={go} />}
      {dialog?.kind === 'browse' && <BrowseChannels chat={chat} onClose={close} go={go} />}
      {dialog?.kind === 'settings' && <RoomSettings chat={chat} room={dialog.room} onClose={close} />}
      {dialog?.kind === 'pins' && <PinsDialog chat={chat} room={dialog.room} onClose={close} />}
      {dialog?.kind === 'versions' && <VersionsDialog chat={chat} room={dialog.room} seq={dialog.seq} onClose={close} />}
      {dialog?.kind === 'user' && <UserCard chat={chat} user={dialog.user} room={dialog.room} onClose={close} go={go} />}
    </div>
  );
}

function Header({
  chat,
  session,
  search,
  onSearch,
  openDialog,
}: {
  chat: Chat;
  session: Session;
  search: string | null;
  onSearch: (q: string) => void;
  openDialog: (d: DialogState) => void;
}) {
  const [busy, setBusy] = useState(false);
  return (
    <header class="topbar">
      <span class="brand">
        <span class="logo" aria-hidden="true" />
        Parley
      </span>
      <SearchBox initial={search ?? ''} onSearch={onSearch} />
      <ConnectionStatus chat={chat} />
      <div class="me">
        {session.admin && (
          <button type="button" class="icon" aria-label="Server administration" title="Server administration" onClick={() => openDialog({ kind: 'admin' })}>
            <Icon name="shield" />
          </button>
        )}
        <button type="button" class="icon" aria-label="Preferences" title="Preferences" onClick={() => openDialog({ kind: 'preferences' })}>
          <Icon name="sliders" />
        </button>
        <button type="button" class="ghost me-button" title={`Your profile (@${chat.me.id})`} onClick={() => openDialog({ kind: 'profile' })}>
          <Avatar id={chat.me.id} name={chat.me.name} size="sm" />
          <VisuallyHidden>Your profile: </VisuallyHidden>
          <span class="me-name">{chat.me.name}</span>
        </button>
        <button
          type="button"
          class="ghost logout"
          title="Log out"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            chat.stop();
            void session.logout();
          }}
        >
          <Icon name="logout" />
          <span class="logout-text">Log out</span>
        </button>
      </div>
    </header>
  );
}

/**
 * The connection state in words. A reconnect that succeeds at once (the access token expired
 * and was replaced) is not worth a flash of "reconnecting", so that shows after a moment.
 */
function ConnectionStatus({ chat }: { chat: Chat }) {
  const [, tick] = useState(0);
  const since = useMemo(() => Date.now(), [chat.conn]);
  const recentlyBack = chat.conn === 'online' && Date.now() - chat.backOnlineAt < 4000;
  const settling = chat.conn === 'reconnecting' && Date.now() - since < 800;
  useEffect(() => {
    if (!recentlyBack && !settling) return;
    const t = setTimeout(() => tick((n) => n + 1), recentlyBack ? 4000 - (Date.now() - chat.backOnlineAt) : 810);
    return () => clearTimeout(t);
  });
  let state: string;
  let text: string;
  if (chat.conn === 'online') [state, text] = recentlyBack ? ['back', 'Back online'] : ['online', 'Online'];
  else if (chat.conn === 'reconnecting') [state, text] = settling ? ['online', 'Online'] : ['reconnecting', 'Reconnecting…'];
  else if (chat.conn === 'closed') [state, text] = ['offline', 'Offline'];
  else [state, text] = ['connecting', 'Connecting…'];
  const waiting = chat.pending.filter((p) => p.status === 'sending').length;
  return (
    <div class={`conn conn-${state}`} role="status" data-state={state} title={text}>
      <span class="conn-dot" aria-hidden="true" />
      <span class="conn-text">{text}</span>
      {state === 'reconnecting' && waiting > 0 && <span class="conn-queue">· {waiting} queued</span>}
    </div>
  );
}

function Notices({ chat }: { chat: Chat }) {
  return (
    <div class="notices" aria-live="polite">
      {chat.notices.map((n) => (
        <div key={n.id} class={`toast toast-${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'}>
          <span>{n.text}</span>
          <button type="button" class="icon" aria-label="Dismiss" onClick={() => chat.dismiss(n.id)}>
            <Icon name="close" size={16} />
          </button>
        </div>
      ))}
    </div>
  );
}

function Welcome({ chat, openDialog }: { chat: Chat; openDialog: (d: DialogState) => void }) {
  return (
    <section class="welcome">
      <h1>Welcome, {chat.me.name}</h1>
      <p>Pick a conversation on the left, or start one.</p>
      <div class="row">
        <button type="button" class="primary" onClick={() => openDialog({ kind: 'create' })}>
          Create a room
        </button>
        <button type="button" onClick={() => openDialog({ kind: 'browse' })}>
          Browse channels
        </button>
      </div>
    </section>
  );
}
