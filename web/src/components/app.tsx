// The app shell: signed out shows the account screen; signed in, the header, the room list,
// the open conversation (its id in the path, /r/<room>, so a reload reopens it) and dialogs.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Chat } from '../chat.js';
import { Session } from '../session.js';
import { AuthScreen } from './auth.js';
import { Conversation } from './conversation.js';
import { BrowseChannels, CreateRoom, RoomSettings, UserCard } from './dialogs.js';
import { Icon } from './icons.js';
import { Sidebar } from './sidebar.js';
import { Avatar, useChat } from './ui.js';

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
  if (!session) return <AuthScreen onSession={(s) => { setNotice(''); setSession(s); }} notice={notice} onEnd={end} />;
  return <ChatScreen key={session.user.id} session={session} />;
}

export type DialogState =
  | { kind: 'create' }
  | { kind: 'browse' }
  | { kind: 'settings'; room: string }
  | { kind: 'user'; user: string; room: string | null };

function ChatScreen({ session }: { session: Session }) {
  const chat = useMemo(() => new Chat(session), [session]);
  useEffect(() => {
    chat.start();
    return () => chat.stop();
  }, [chat]);
  useChat(chat);
  const [route, setRoute] = useState(roomFromPath);
  const [dialog, setDialog] = useState<DialogState | null>(null);

  function go(room: string | null) {
    const path = room ? `/r/${room}` : '/';
    if (location.pathname !== path) history.pushState(null, '', path);
    setRoute(room);
  }
  useEffect(() => {
    const onPop = () => setRoute(roomFromPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => { chat.open(route); }, [chat, route]);
  chat.onRoomGone = () => go(null);

  const unread = [...chat.rooms.values()].reduce((n, e) => n + e.unread, 0);
  useEffect(() => {
    document.title = unread ? `(${unread}) Parley` : 'Parley';
  }, [unread]);

  const close = () => setDialog(null);
  return (
    <div class={`app${route ? ' has-room' : ''}`}>
      <a class="skip" href="#composer">Skip to message box</a>
      <Header chat={chat} session={session} />
      <div class="body">
        <Sidebar chat={chat} active={route} go={go} openDialog={setDialog} />
        <main class="main" aria-label="Conversation">
          {route
            ? <Conversation key={route} chat={chat} room={route} go={go} openDialog={setDialog} />
            : <Welcome chat={chat} openDialog={setDialog} />}
        </main>
      </div>
      <Notices chat={chat} />
      {dialog?.kind === 'create' && <CreateRoom chat={chat} onClose={close} go={go} />}
      {dialog?.kind === 'browse' && <BrowseChannels chat={chat} onClose={close} go={go} />}
      {dialog?.kind === 'settings' && <RoomSettings chat={chat} room={dialog.room} onClose={close} />}
      {dialog?.kind === 'user' && <UserCard chat={chat} user={dialog.user} room={dialog.room} onClose={close} go={go} />}
    </div>
  );
}

function Header({ chat, session }: { chat: Chat; session: Session }) {
  const [busy, setBusy] = useState(false);
  return (
    <header class="topbar">
      <span class="brand"><span class="logo" aria-hidden="true" />Parley</span>
      <ConnectionStatus chat={chat} />
      <div class="me">
        <Avatar id={chat.me.id} name={chat.me.name} size="sm" />
        <span class="me-name" title={chat.me.id}>{chat.me.name}</span>
        <button type="button" class="ghost" disabled={busy} onClick={() => { setBusy(true); chat.stop(); void session.logout(); }}>
          Log out
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
    <div class={`conn conn-${state}`} role="status" data-state={state}>
      <span class="conn-dot" aria-hidden="true" />
      <span class="conn-text">{text}</span>
      {state === 'reconnecting' && waiting > 0 && <span class="conn-queue">{waiting} queued</span>}
    </div>
  );
}

function Notices({ chat }: { chat: Chat }) {
  return (
    <div class="notices" aria-live="polite">
      {chat.notices.map((n) => (
        <div key={n.id} class={`toast toast-${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'}>
          <span>{n.text}</span>
          <button type="button" class="icon" aria-label="Dismiss" onClick={() => chat.dismiss(n.id)}><Icon name="close" size={16} /></button>
        </div>
      ))}
    </div>
  );
}

function Welcome({ chat, openDialog }: { chat: Chat; openDialog: (d: DialogState) => void }) {
  return (
    <section class="welcome">
      <h2>Welcome, {chat.me.name}</h2>
      <p>Pick a conversation on the left, or start one.</p>
      <div class="row">
        <button type="button" class="primary" onClick={() => openDialog({ kind: 'create' })}>Create a room</button>
        <button type="button" onClick={() => openDialog({ kind: 'browse' })}>Browse channels</button>
      </div>
    </section>
  );
}
