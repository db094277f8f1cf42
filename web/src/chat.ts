// The app's state of one signed-in user, kept current from the SDK: the inbox of rooms with
// unread counts, each room's loaded history, sends in flight, drafts, typing, presence,
// members and their read markers. Components read it and re-render when it says it changed.
import { ParleyClient, type ConnectionState, type Message, type Room, type Upload } from '../../src/client/index.js';
import type { InboxEntry, Member, NotifyLevel, Pin, Role, ThreadSummary, User } from '../../src/protocol/schema.js';
import { defaultLevel } from '../../src/service/mentions.js';
import { api, describeError, describeRemoval, type ApiUser } from './api.js';
import { fold, threadOnly, type Shown } from './fold.js';
import { shorten } from './format.js';
import { Drafts, notifyChoice } from './prefs.js';
import type { Session } from './session.js';
import { plainText } from './markdown-loader.js';

export interface RoomEntry {
  room: Room;
  role: Role;
  readSeq: number;
  unread: number;
  /** More messages follow the read marker than the server counted: `unread` is a floor ("N+"). */
  unreadMore: boolean;
  /** Unread messages that mention me (or the whole room). */
  mentions: number;
  /** The last text message (as the server's inbox counts it). */
  last: Message | null;
  /** Direct rooms: the other member. */
  peer?: string;
  /** Which messages notify me: all, only mentions, none (the server's default until changed). */
  notify: NotifyLevel;
}

/** The open thread panel: a root and the loaded part of its thread, oldest first. */
export interface ThreadView {
  room: string;
  root: number;
  rootMessage: Message | null;
  raw: Map<number, Message>;
  loading: boolean;
  /** Nothing older in the thread. */
  complete: boolean;
  error?: string;
  version: number;
}

/**
 * The loaded part of a room's history: a window of consecutive messages, `first` to `last`,
 * which may start anywhere (at the first unread message, at a search result) and grows both
 * ways as the reader scrolls. Live messages are held in `raw` too; those beyond a hole after
 * `last` are shown once the pages between are loaded.
 */
export interface Timeline {
  raw: Map<number, Message>;
  /** The window, or null before anything is loaded. */
  first: number | null;
  last: number | null;
  loaded: boolean;
  /** A window is being loaded (live messages are kept meanwhile). */
  loading: boolean;
  loadingOlder: boolean;
  loadingNewer: boolean;
  /** Nothing older exists (or can be served). */
  complete: boolean;
  /** The window reaches the room's newest message. */
  latest: boolean;
  /** The "New messages" line goes above the first message of others after this seq. */
  unreadAfter: number | null;
  /** Where the view should bring the reader when it next places the window. */
  place: 'unread' | 'bottom' | 'target';
  /** Bumped whenever the view should place the window again. */
  placeVersion: number;
  /** A message to bring into view and focus (a search result), then cleared by the view. */
  target: number | null;
  /** A message drawn highlighted (the last one jumped to). */
  highlight: number | null;
  version: number;
  /** Responses of a window replaced meanwhile are dropped. */
  generation: number;
  shown?: { version: number; items: Shown[] };
  error?: string;
}

/** A file being uploaded from the composer, before the message that carries it is sent. */
export interface UploadItem {
  local: string;
  file: File;
  status: 'uploading' | 'done' | 'failed';
  sent: number;
  error?: string;
  done?: Upload;
  /** A local object URL to show an image before it is sent. */
  thumb?: string;
}

export interface PendingSend {
  key: string;
  room: string;
  text: string;
  attachments?: string[];
  ts: number;
  status: 'sending' | 'failed';
  error?: string;
  /** The seq the server acknowledged, or the own message that probably is this one. */
  seq?: number;
  guess?: number;
  /** The message this one answers. */
  replyTo?: number;
}

export interface Notice {
  id: number;
  text: string;
  kind: 'info' | 'error';
}

const TYPING_TTL_MS = 6_000;
const TYPING_RESEND_MS = 3_000;
const PAGE = 50;
/** How soon a page without animation frames (hidden) draws a change. */
const HIDDEN_RENDER_MS = 100;
/** Messages loaded before the first unread one (or a search result), for context. */
const CONTEXT = 25;
/** Rooms up to this size show who has read up to where. */
export const RECEIPTS_MAX_MEMBERS = 10;
const RANK: Record<Role, number> = { owner: 3, admin: 2, member: 1 };

export class Chat {
  readonly client: ParleyClient;
  conn: ConnectionState = 'idle';
  /** When the connection came back after being lost (for "back online"). */
  backOnlineAt = 0;
  me: User;
  inboxLoaded = false;
  readonly rooms = new Map<string, RoomEntry>();
  readonly timelines = new Map<string, Timeline>();
  pending: PendingSend[] = [];
  readonly typing = new Map<string, Map<string, number>>();
  readonly presence = new Map<string, Set<string>>();
  readonly members = new Map<string, Member[]>();
  /** Pinned messages of the rooms whose pins were asked for. */
  readonly pins = new Map<string, Pin[]>();
  /** Per room, the message the composer answers. */
  readonly replying = new Map<string, Shown>();
  /** Thread summaries told by `thread` events since the roots were read, by room and root seq. */
  readonly summaries = new Map<string, ThreadSummary>();
  /** The thread shown beside the conversation, if any. */
  thread: ThreadView | null = null;
  readonly names = new Map<string, string>();
  notices: Notice[] = [];
  /** The open conversation, and whether its newest messages are on screen. */
  active: string | null = null;
  reading = false;
  /** Called when the open room is gone (left, removed, deleted). */
  onRoomGone: (room: string) => void = () => {};
  /** Called to show a room (a notification was clicked). */
  onOpenRoom: (room: string) => void = () => {};
  /** A direct message came while notifications were never offered: offer them. */
  offerNotifications = false;
  /** The longest text the server accepts (told in the auth reply). */
  textLimit = 4000;
  readonly drafts: Drafts;

  private listeners = new Set<() => void>();
  private scheduled = false;
  private lostConnection = false;
  private inboxRun: Promise<void> | null = null;
  private inboxAgain = false;
  private typingSent = new Map<string, number>();
  private typingTimer: ReturnType<typeof setTimeout> | null = null;
  private nameLookups = new Set<string>();
  private membersTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private noticeId = 0;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly presenceAsked = new Map<string, number>();
  private readonly membersAsked = new Map<string, number>();
  /** Rooms whose read marker is being sent, with the newer seq to send next (or null). */
  private readonly readSending = new Map<string, number | null>();
  private readonly pendingKey: string;

  /** A valid access token of the session (for the app's own REST calls). */
  token(): Promise<string> {
    return this.session.token();
  }

  constructor(private readonly session: Session) {
    this.me = { id: session.user.id, name: session.user.name, profile: session.user.profile };
    this.names.set(this.me.id, this.me.name);
    this.pendingKey = `parley.pending.${this.me.id}`;
    this.drafts = new Drafts(this.me.id);
    this.client = new ParleyClient({
      url: location.origin,
      token: () => session.tokenForConnection(),
      // A restarted server is found again within a few seconds.
      reconnectMaxMs: 4_000,
    });
    const c = this.client;
    c.on('state', ({ state }) => this.onState(state));
    c.on('ready', (r) => {
      session.connected();
      this.me = r.user;
      this.names.set(r.user.id, r.user.name);
      if (typeof r.limits?.textChars === 'number') this.textLimit = r.limits.textChars;
      void this.refreshInbox();
      // Presence and membership changes made while offline came as no event: ask again.
      for (const room of new Set([...this.presence.keys(), ...(this.active ? [this.active] : [])])) void this.loadPresence(room);
      if (this.active && this.members.has(this.active)) void this.loadMembers(this.active);
      this.typing.clear();
      this.changed();
    });
    c.on('message', (m) => this.onMessage(m));
    c.on('pin', (e) => {
      if (this.pins.has(e.room)) void this.loadPins(e.room);
    });
    c.on('thread', (e) => {
      this.summaries.set(`${e.room}\n${e.seq}`, e.summary);
      const tl = this.timelines.get(e.room);
      if (tl) tl.version++;
      if (this.thread && this.thread.room === e.room && this.thread.root === e.seq && this.thread.rootMessage) {
        this.thread.rootMessage = { ...this.thread.rootMessage, summary: e.summary };
        this.thread.version++;
      }
      this.changed();
    });
    c.on('notify', (n) => this.onNotify(n));
    c.on('room', (e) => this.onRoomEvent(e.room, e.member, e.reason));
    c.on('typing', (e) => this.onTyping(e.room, e.user, e.active));
    c.on('presence', (e) => {
      const set = this.presence.get(e.room);
      if (!set) return;
      if (e.online) set.add(e.user);
      else set.delete(e.user);
      this.changed();
    });
    c.on('read', (e) => {
      if (e.user !== this.me.id) {
        const member = this.members.get(e.room)?.find((m) => m.user === e.user);
        if (member && e.seq > member.readSeq) {
          member.readSeq = e.seq;
          this.changed();
        }
        return;
      }
      // Read in another window.
      if (this.readUpTo(e.room, e.seq)) this.changed();
    });
    c.on('gap', (g) => {
      const tl = this.timelines.get(g.room);
      if (tl && tl.first !== null && tl.last !== null && tl.first <= g.to + 1) {
        for (const seq of tl.raw.keys()) if (seq <= g.to) tl.raw.delete(seq);
        tl.first = Math.min(g.to + 1, tl.last + 1);
        if (tl.last < tl.first) tl.last = tl.first - 1;
        tl.complete = true;
        tl.version++;
        this.changed();
      }
    });
    c.on('goodbye', (g) => {
      if (g.code !== 'unauthorized' && g.code !== 'unavailable') this.notify(`Disconnected by the server: ${g.message}`, 'error');
    });
  }

  // ---- lifecycle and change notification --------------------------------------------------

  start(): void {
    addEventListener('online', this.onBrowserOnline);
    this.restorePending();
    this.client.connect().catch(() => {
      // The SDK keeps trying; the connection state tells the user.
    });
  }

  stop(): void {
    removeEventListener('online', this.onBrowserOnline);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.drafts.flush();
    this.client.close();
    if (this.typingTimer) clearTimeout(this.typingTimer);
    for (const t of this.membersTimers.values()) clearTimeout(t);
    this.listeners.clear();
  }

  /** Changes your display name; messages you send from now on carry it. */
  async rename(name: string): Promise<void> {
    const user = await this.session.setName(name);
    this.me = { ...this.me, name: user.name };
    this.names.set(user.id, user.name);
    this.changed();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Coalesces changes into one render per animation frame. A microtask would not: every
   * WebSocket frame is a task of its own, so a burst of hundreds of messages (another device
   * sending, a page catching up after being busy) would draw the whole conversation once per
   * message, each time slower than the frames arrive, and the page would not answer for as
   * long as the backlog lasts. A hidden page gets no animation frames: a timer draws it (its
   * title counts the unread messages).
   */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      if (!this.scheduled) return;
      this.scheduled = false;
      cancelAnimationFrame(frame);
      clearTimeout(timer);
      for (const fn of this.listeners) fn();
    };
    const frame = requestAnimationFrame(flush);
    const timer = setTimeout(flush, HIDDEN_RENDER_MS);
  }

  notify(text: string, kind: Notice['kind'] = 'info'): void {
    const n = { id: ++this.noticeId, text, kind };
    this.notices = [...this.notices.slice(-3), n];
    this.changed();
    setTimeout(() => this.dismiss(n.id), kind === 'error' ? 8_000 : 5_000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
    this.changed();
  }

  /** Who is online in the room, or null while this page is not connected and cannot know. */
  onlineIn(room: string): Set<string> | null {
    return this.conn === 'online' ? (this.presence.get(room) ?? null) : null;
  }

  /**
   * While reconnecting, asks the node every second whether it is ready (a request far cheaper
   * than a WebSocket handshake) and reconnects as soon as it is, instead of waiting out the
   * SDK's backoff: a restarted server is found again within about a second.
   */
  private probe(): void {
    if (this.probeTimer) return;
    const tick = async () => {
      this.probeTimer = null;
      if (this.conn !== 'reconnecting') return;
      try {
        const r = await fetch('/readyz', { cache: 'no-store' });
        if (r.ok) this.client.reconnectNow();
      } catch {
        // Still away.
      }
      if (this.conn === 'reconnecting') this.probeTimer = setTimeout(() => void tick(), 1000);
    };
    this.probeTimer = setTimeout(() => void tick(), 1000);
  }

  private readonly onBrowserOnline = (): void => this.client.reconnectNow();

  private onState(state: ConnectionState): void {
    if (state === 'reconnecting') {
      this.lostConnection = true;
      this.probe();
    }
    if (state === 'online' && this.lostConnection) {
      this.lostConnection = false;
      this.backOnlineAt = Date.now();
    }
    this.conn = state;
    this.changed();
  }

  // ---- names -----------------------------------------------------------------------------

  nameOf(user: string): string {
    const n = this.names.get(user);
    if (n === undefined) this.lookUpName(user);
    return n || user;
  }

  private lookUpName(user: string): void {
    if (this.nameLookups.has(user)) return;
    this.nameLookups.add(user);
    void this.session
      .token()
      .then((token) => api<ApiUser>('GET', `/users/${encodeURIComponent(user)}`, { token }))
      .then((u) => {
        this.names.set(u.id, u.name);
        this.changed();
      })
      .catch(() => {
        this.names.set(user, user);
      });
  }

  /** Looks a user up by id; null when there is none. */
  async findUser(user: string): Promise<ApiUser | null> {
    try {
      const u = await api<ApiUser>('GET', `/users/${encodeURIComponent(user)}`, { token: await this.session.token() });
      this.names.set(u.id, u.name);
      return u;
    } catch (err) {
      if ((err as { code?: string }).code === 'not_found') return null;
      throw err;
    }
  }

  // ---- inbox -----------------------------------------------------------------------------

  /** Reloads the room list; calls made while one runs are folded into one more run. */
  refreshInbox(): Promise<void> {
    if (this.inboxRun) {
      this.inboxAgain = true;
      return this.inboxRun;
    }
    this.inboxRun = (async () => {
      do {
        this.inboxAgain = false;
        try {
          const { rooms } = await this.client.inbox();
          this.applyInbox(rooms);
        } catch (err) {
          if ((err as { code?: string }).code !== 'closed') this.notify(`Could not load your rooms: ${describeError(err)}`, 'error');
        }
      } while (this.inboxAgain);
      this.inboxRun = null;
    })();
    return this.inboxRun;
  }

  private applyInbox(entries: InboxEntry[]): void {
    const next = new Map<string, RoomEntry>();
    for (const e of entries) {
      const old = this.rooms.get(e.room.id);
      const entry: RoomEntry = {
        room: e.room,
        role: e.role,
        readSeq: e.readSeq,
        unread: e.unread,
        unreadMore: e.unreadMore === true,
        mentions: e.mentions ?? 0,
        last: e.last,
        notify: e.notify ?? defaultLevel(e.room.kind),
      };
      if (old) {
        entry.peer = old.peer;
        // A message that arrived live after the server counted is already counted here.
        if (old.last && (!e.last || old.last.seq > e.last.seq)) {
          entry.last = old.last;
          entry.unread = old.unread;
          entry.unreadMore = old.unreadMore;
          entry.mentions = old.mentions;
        }
        entry.readSeq = Math.max(entry.readSeq, old.readSeq);
        if (old.room.lastSeq > entry.room.lastSeq) entry.room = { ...entry.room, lastSeq: old.room.lastSeq };
      }
      if (e.last) this.names.set(e.last.user, e.last.name);
      next.set(e.room.id, entry);
      if (e.room.kind === 'direct' && !entry.peer) void this.findPeer(entry);
    }
    this.rooms.clear();
    for (const [id, e] of next) this.rooms.set(id, e);
    this.inboxLoaded = true;
    const active = this.active ? this.rooms.get(this.active) : undefined;
    if (active) {
      // A room opened before the inbox was known (a reload on its page) gets its line now,
      // and opens at its first unread message.
      const tl = this.timeline(active.room.id);
      if (tl.unreadAfter === null && active.unread > 0 && !this.reading) tl.unreadAfter = active.readSeq;
      if (this.reading) this.markRead(active.room.id);
    }
    if (this.active && !this.timeline(this.active).loaded && !this.timeline(this.active).loading) this.startLoad(this.active);
    this.changed();
  }

  private async findPeer(entry: RoomEntry): Promise<void> {
    try {
      const { members } = await this.client.members(entry.room.id);
      const peer = members.find((m) => m.user !== this.me.id)?.user;
      const current = this.rooms.get(entry.room.id);
      if (peer && current) {
        current.peer = peer;
        this.nameOf(peer);
        void this.loadPresence(entry.room.id);
        this.changed();
      }
    } catch {
      // Shown as "Direct conversation" until the next inbox load.
    }
  }

  /** Rooms, most recent activity first. */
  sortedRooms(): RoomEntry[] {
    return [...this.rooms.values()].sort((a, b) => (b.last?.ts ?? b.room.createdAt) - (a.last?.ts ?? a.room.createdAt));
  }

  // ---- live events -------------------------------------------------------------------------

  private onMessage(m: Message): void {
    if (m.kind === 'text' || m.kind === 'join' || m.kind === 'leave') this.names.set(m.user, m.name);
    const tl = this.timelines.get(m.room);
    // A room whose history is not in the page loads it when opened; only a window (or one
    // being loaded, whose page may end before this message) keeps live messages.
    if (tl && (tl.loaded || tl.loading)) {
      tl.raw.set(m.seq, m);
      this.extend(m.room, tl);
      tl.version++;
    }
    const th = this.thread;
    if (th && th.room === m.room && m.thread === th.root) {
      th.raw.set(m.seq, m);
      th.version++;
    }
    const entry = this.rooms.get(m.room);
    if (entry) {
      if (m.seq > entry.room.lastSeq) entry.room = { ...entry.room, lastSeq: m.seq };
      const here = this.active === m.room;
      if (m.kind === 'text' && threadOnly(m)) {
        // Whether it counts as unread depends on who takes part in its thread: the server knows.
        if (here && this.reading) this.markRead(m.room);
        else if (m.user !== this.me.id) void this.refreshInbox();
      } else if (m.kind === 'text') {
        entry.last = m;
        // Sending in the open room reads it up to what one sent, wherever the view is scrolled.
        if (here && (this.reading || m.user === this.me.id)) this.markRead(m.room);
        else if (m.user === this.me.id) {
          // Sent from here before moving to another room, or from another device: read up to it.
          if (this.readUpTo(m.room, m.seq)) this.sendRead(m.room, m.seq);
        } else {
          entry.unread++;
          if (m.mentionsAll === 'room' || m.mentions?.includes(this.me.id)) entry.mentions++;
          if (here && tl && tl.unreadAfter === null) tl.unreadAfter = m.seq - 1;
        }
        this.maybeNotify(m, entry);
      } else if (entry.last && m.target === entry.last.seq && (m.kind === 'edit' || m.kind === 'delete')) {
        entry.last = m.kind === 'edit' ? { ...entry.last, text: m.text ?? '' } : { ...entry.last, text: '', kind: 'delete' };
      } else if (m.kind === 'update') {
        void this.reloadRoom(m.room, m.data);
      }
    }
    if (m.kind === 'join' || m.kind === 'leave' || (m.kind === 'update' && m.data?.role)) this.reloadMembers(m.room);
    // A pinned message edited or deleted: the pins shown (and kept) take the change.
    if ((m.kind === 'edit' || m.kind === 'delete') && this.pins.get(m.room)?.some((p) => p.seq === m.target)) void this.loadPins(m.room);
    // A member who left is no longer online here, whatever else they do.
    if (m.kind === 'leave') this.presence.get(m.room)?.delete(m.user);
    this.typing.get(m.room)?.delete(m.user);
    this.settlePending(m);
    this.changed();
  }

  private async reloadRoom(room: string, data: Record<string, unknown> | undefined): Promise<void> {
    const entry = this.rooms.get(room);
    if (!entry) return;
    if (data?.user === this.me.id && typeof data.role === 'string') entry.role = data.role as Role;
    try {
      const fresh = await this.client.request('room', { room });
      const now = this.rooms.get(room);
      if (now) now.room = { ...fresh, lastSeq: Math.max(fresh.lastSeq, now.room.lastSeq) };
      this.changed();
    } catch {
      // Gone meanwhile: the room event says so.
    }
  }

  private onRoomEvent(room: string, member: Member | null, reason?: string): void {
    if (member) {
      void this.refreshInbox();
      return;
    }
    const entry = this.rooms.get(room);
    this.rooms.delete(room);
    this.timelines.delete(room);
    this.members.delete(room);
    this.presence.delete(room);
    if (entry && reason && reason !== 'left') {
      this.notify(describeRemoval(entry.room.kind === 'direct' ? 'A conversation' : `“${entry.room.name}”`, reason), 'error');
    }
    if (this.active === room) this.onRoomGone(room);
    this.changed();
  }

  private onTyping(room: string, user: string, active: boolean): void {
    if (user === this.me.id) return;
    let users = this.typing.get(room);
    if (!users) this.typing.set(room, (users = new Map<string, number>()));
    if (active) users.set(user, Date.now() + TYPING_TTL_MS);
    else users.delete(user);
    this.sweepTyping();
    this.changed();
  }

  /** Typing that was not renewed in time has stopped (its "stop" may never come). */
  private sweepTyping(): void {
    if (this.typingTimer) clearTimeout(this.typingTimer);
    const now = Date.now();
    let next = Infinity;
    for (const users of this.typing.values()) {
      for (const [u, until] of users) {
        if (until <= now) users.delete(u);
        else next = Math.min(next, until);
      }
    }
    if (next !== Infinity) {
      this.typingTimer = setTimeout(
        () => {
          this.sweepTyping();
          this.changed();
        },
        next - now + 10,
      );
    }
  }

  typingIn(room: string): string[] {
    return [...(this.typing.get(room)?.keys() ?? [])];
  }

  // ---- a conversation ------------------------------------------------------------------------

  timeline(room: string): Timeline {
    let tl = this.timelines.get(room);
    if (!tl) {
      tl = {
        raw: new Map(),
        first: null,
        last: null,
        loaded: false,
        loading: false,
        loadingOlder: false,
        loadingNewer: false,
        complete: false,
        latest: false,
        unreadAfter: null,
        place: 'unread',
        placeVersion: 0,
        target: null,
        highlight: null,
        version: 0,
        generation: 0,
      };
      this.timelines.set(room, tl);
    }
    return tl;
  }

  /** The window's messages as shown (edits, deletes and reactions folded in). */
  shown(room: string): Shown[] {
    const tl = this.timeline(room);
    if (tl.shown?.version !== tl.version) {
      const inWindow: Message[] = [];
      if (tl.first !== null && tl.last !== null) for (const [seq, m] of tl.raw) if (seq >= tl.first && seq <= tl.last) inWindow.push(m);
      tl.shown = { version: tl.version, items: fold(inWindow, { main: true }) };
    }
    return tl.shown.items;
  }

  /** The newest seq of the room known to this page. */
  private newestSeq(room: string): number {
    return Math.max(this.rooms.get(room)?.room.lastSeq ?? 0, this.client.lastSeq.get(room) ?? 0);
  }

  /** Grows the window over held live messages that now follow it; notes whether it reached the end. */
  private extend(room: string, tl: Timeline): void {
    if (tl.last === null) return;
    while (tl.raw.has(tl.last + 1)) tl.last++;
    if (tl.last >= this.newestSeq(room)) tl.latest = true;
  }

  /** Where the "New messages" line goes: above the first message of others after the marker. */
  dividerBefore(room: string): number | null {
    const tl = this.timeline(room);
    if (tl.unreadAfter === null) return null;
    return this.shown(room).find((m) => m.seq > tl.unreadAfter! && m.kind === 'text' && m.user !== this.me.id)?.seq ?? null;
  }

  /**
   * Who has read up to each shown message, in rooms of up to RECEIPTS_MAX_MEMBERS members:
   * a member is listed under the last message at or before its read marker.
   */
  receipts(room: string): Map<number, string[]> {
    const out = new Map<number, string[]>();
    const members = this.members.get(room);
    const tl = this.timeline(room);
    if (!members || members.length > RECEIPTS_MAX_MEMBERS) return out;
    const items = this.shown(room).filter((m) => m.kind === 'text');
    if (items.length === 0 || tl.last === null) return out;
    for (const member of members) {
      if (member.user === this.me.id || member.readSeq < items[0]!.seq) continue;
      if (member.readSeq > tl.last && !tl.latest) continue;
      let at: number | null = null;
      for (const m of items) {
        if (m.seq > member.readSeq) break;
        at = m.seq;
      }
      if (at !== null) out.set(at, [...(out.get(at) ?? []), member.user]);
    }
    return out;
  }

  /** Opens a conversation: at its first unread message (or the newest), who is online, its members. */
  open(room: string | null): void {
    if (this.active === room) return;
    this.active = room;
    this.reading = false;
    if (!room) {
      this.changed();
      return;
    }
    const tl = this.timeline(room);
    const entry = this.rooms.get(room);
    tl.unreadAfter = entry && entry.unread > 0 ? entry.readSeq : null;
    tl.place = tl.target !== null ? 'target' : 'unread';
    tl.placeVersion++;
    // Before the inbox is known the read marker is not: the inbox starts the load.
    if (!tl.loaded && !tl.loading && this.inboxLoaded) this.startLoad(room);
    void this.loadPresence(room);
    void this.loadMembers(room);
    this.changed();
  }

  /** Loads the first window of a room: around a target, at the first unread, or the newest. */
  private startLoad(room: string): void {
    const tl = this.timeline(room);
    const entry = this.rooms.get(room);
    if (tl.target !== null) void this.loadWindow(room, tl.target);
    else if (entry && entry.unread > 0 && this.newestSeq(room) - entry.readSeq > PAGE * 2 - CONTEXT) void this.loadWindow(room, entry.readSeq + 1);
    else void this.loadWindow(room, null);
  }

  /** Drops the window (the next load starts a new one). */
  private reset(tl: Timeline): void {
    tl.generation++;
    tl.raw.clear();
    tl.first = tl.last = null;
    tl.loaded = tl.loading = tl.loadingOlder = tl.loadingNewer = tl.complete = tl.latest = false;
    tl.error = undefined;
    tl.version++;
  }

  /** Loads a window of history starting a little before `around`, or the newest (null). */
  private async loadWindow(room: string, around: number | null): Promise<void> {
    const tl = this.timeline(room);
    const generation = ++tl.generation;
    tl.loading = true;
    try {
      const h = await this.client.history(room, around === null ? { limit: PAGE * 2 } : { after: Math.max(0, around - 1 - CONTEXT), limit: PAGE * 2 });
      if (generation !== tl.generation) return;
      for (const m of h.messages) tl.raw.set(m.seq, m);
      this.noteNames(h.messages);
      if (h.messages.length > 0) {
        tl.first = h.messages[0]!.seq;
        tl.last = h.messages[h.messages.length - 1]!.seq;
      } else {
        // Nothing there (retention emptied the room): the window starts after what was.
        tl.first = around === null ? h.last + 1 : Math.max(around, h.first);
        tl.last = tl.first - 1;
      }
      // The main timeline skips thread replies: a short page, or the newest, reaches the end.
      if (around === null || h.messages.length < PAGE * 2) tl.last = Math.max(tl.last, h.last);
      tl.complete = tl.first <= h.first;
      tl.latest = tl.last >= h.last;
      this.extend(room, tl);
      tl.loaded = true;
      tl.error = undefined;
      tl.placeVersion++;
      this.prunePending(room);
    } catch (err) {
      if (generation === tl.generation) tl.error = describeError(err);
    } finally {
      if (generation === tl.generation) {
        tl.loading = false;
        tl.version++;
        this.changed();
      }
    }
  }

  async loadOlder(room: string): Promise<void> {
    const tl = this.timeline(room);
    if (!tl.loaded || tl.loadingOlder || tl.complete || tl.first === null) return;
    const generation = tl.generation;
    tl.loadingOlder = true;
    this.changed();
    try {
      const h = await this.client.history(room, { before: tl.first, limit: PAGE });
      if (generation !== tl.generation) return;
      for (const m of h.messages) tl.raw.set(m.seq, m);
      this.noteNames(h.messages);
      if (h.messages.length > 0) tl.first = Math.min(tl.first, h.messages[0]!.seq);
      tl.complete = h.messages.length < PAGE || tl.first <= h.first;
      tl.version++;
    } catch (err) {
      if (generation === tl.generation) this.notify(`Could not load older messages: ${describeError(err)}`, 'error');
    } finally {
      if (generation === tl.generation) tl.loadingOlder = false;
      this.changed();
    }
  }

  async loadNewer(room: string): Promise<void> {
    const tl = this.timeline(room);
    if (!tl.loaded || tl.loadingNewer || tl.latest || tl.last === null) return;
    const generation = tl.generation;
    tl.loadingNewer = true;
    this.changed();
    try {
      const h = await this.client.history(room, { after: tl.last, limit: PAGE });
      if (generation !== tl.generation) return;
      for (const m of h.messages) tl.raw.set(m.seq, m);
      this.noteNames(h.messages);
      if (h.messages.length > 0) tl.last = Math.max(tl.last, h.messages[h.messages.length - 1]!.seq);
      if (h.messages.length < PAGE) tl.last = Math.max(tl.last, h.last);
      if (tl.last >= h.last) tl.latest = true;
      this.extend(room, tl);
      tl.version++;
    } catch (err) {
      if (generation === tl.generation) this.notify(`Could not load newer messages: ${describeError(err)}`, 'error');
    } finally {
      if (generation === tl.generation) tl.loadingNewer = false;
      this.changed();
    }
  }

  /** Shows a message (a search result) with what surrounds it, loading that part if needed. */
  jumpTo(room: string, seq: number): void {
    const tl = this.timeline(room);
    tl.target = seq;
    tl.highlight = seq;
    tl.place = 'target';
    tl.placeVersion++;
    const inWindow = tl.loaded && tl.first !== null && tl.last !== null && seq >= tl.first && seq <= tl.last;
    if (!inWindow) {
      this.reset(tl);
      // An open room loads at once; another loads when opened (open() sees the target).
      if (this.active === room) void this.loadWindow(room, seq);
    }
    tl.version++;
    this.changed();
  }

  /** Brings the reader to the newest messages, loading them if the window is elsewhere. */
  showLatest(room: string): void {
    const tl = this.timeline(room);
    tl.place = 'bottom';
    tl.placeVersion++;
    tl.target = null;
    if (!tl.latest && !tl.loading) {
      this.reset(tl);
      void this.loadWindow(room, null);
    }
    tl.version++;
    this.changed();
  }

  private noteNames(messages: Message[]): void {
    for (const m of messages) if (!this.names.has(m.user) && m.kind !== 'hidden') this.names.set(m.user, m.name);
  }

  private async loadPresence(room: string): Promise<void> {
    // Only the last answer counts: an earlier one (asked before joining) may come later.
    const asked = (this.presenceAsked.get(room) ?? 0) + 1;
    this.presenceAsked.set(room, asked);
    try {
      const { users } = await this.client.presence(room);
      if (this.presenceAsked.get(room) !== asked) return;
      this.presence.set(room, new Set(users));
      this.changed();
    } catch {
      // Without it nobody is shown online; the next open asks again.
    }
  }

  private async loadMembers(room: string): Promise<void> {
    const asked = (this.membersAsked.get(room) ?? 0) + 1;
    this.membersAsked.set(room, asked);
    try {
      const { members } = await this.client.members(room);
      if (this.membersAsked.get(room) !== asked) return;
      this.members.set(room, members);
      for (const m of members) this.nameOf(m.user);
      // A fresh list has my role too: an owner who hands the room over is told only who owns it.
      const entry = this.rooms.get(room);
      const mine = members.find((m) => m.user === this.me.id);
      if (entry && mine) entry.role = mine.role;
      this.changed();
    } catch {
      // The panel says it could not load them.
    }
  }

  /** Members change in bursts (a list edit removes many): reload once after the burst. */
  private reloadMembers(room: string): void {
    if (!this.members.has(room) || this.membersTimers.has(room)) return;
    this.membersTimers.set(
      room,
      setTimeout(() => {
        this.membersTimers.delete(room);
        if (this.rooms.has(room)) void this.loadMembers(room);
      }, 150),
    );
  }

  /** The open conversation's newest messages are (or are not) on screen. */
  setReading(reading: boolean): void {
    if (this.reading === reading) return;
    this.reading = reading;
    if (reading && this.active) this.markRead(this.active);
  }

  markRead(room: string): void {
    const entry = this.rooms.get(room);
    if (!entry) return;
    const seq = Math.max(entry.room.lastSeq, this.client.lastSeq.get(room) ?? 0);
    if (seq <= entry.readSeq && entry.unread === 0) return;
    entry.readSeq = Math.max(entry.readSeq, seq);
    entry.unread = 0;
    entry.unreadMore = false;
    entry.mentions = 0;
    this.changed();
    this.sendRead(room, seq);
  }

  /**
   * Moves my read marker in a room up to `seq` here, without telling the server; false when it
   * was there already. The unread count is exact only when everything was read: otherwise the
   * inbox is asked again.
   */
  private readUpTo(room: string, seq: number): boolean {
    const entry = this.rooms.get(room);
    if (!entry || seq <= entry.readSeq) return false;
    entry.readSeq = seq;
    if (!entry.last || seq >= entry.last.seq) {
      entry.unread = 0;
      entry.unreadMore = false;
      entry.mentions = 0;
    } else void this.refreshInbox();
    return true;
  }

  /**
   * One read marker on its way per room; meanwhile only the newest seq waits. Messages read
   * as they arrive in a burst then move the marker a few times instead of once each (every
   * move is a write, and in a small room an event to each member).
   */
  private sendRead(room: string, seq: number): void {
    if (this.readSending.has(room)) {
      this.readSending.set(room, Math.max(this.readSending.get(room) ?? 0, seq));
      return;
    }
    this.readSending.set(room, null);
    void this.client
      .markRead(room, seq)
      .catch(() => {
        // A marker that did not move is moved by the next read.
      })
      .finally(() => {
        const next = this.readSending.get(room);
        this.readSending.delete(room);
        if (next != null && next > seq) this.sendRead(room, next);
      });
  }

  myRole(room: string): Role | null {
    return this.rooms.get(room)?.role ?? null;
  }

  /** Whether I may moderate `user` in `room` (owners and admins act on lower ranks). */
  canModerate(room: string, user: string): boolean {
    const mine = this.myRole(room);
    if (!mine || mine === 'member' || user === this.me.id) return false;
    const entry = this.rooms.get(room);
    if (entry?.room.kind === 'direct') return false;
    const theirs = this.members.get(room)?.find((m) => m.user === user)?.role ?? 'member';
    return RANK[mine] > RANK[theirs];
  }

  // ---- writing ----------------------------------------------------------------------------

  // ---- attachments --------------------------------------------------------------------------

  /** Files the composer of each room is uploading or holds ready to send. */
  readonly uploads = new Map<string, UploadItem[]>();

  uploadsIn(room: string): UploadItem[] {
    return this.uploads.get(room) ?? [];
  }

  /** Starts uploading files (picked, pasted or dropped) to a room. */
  addFiles(room: string, files: Iterable<File>): void {
    const list = [...this.uploadsIn(room)];
    for (const file of files) {
      const item: UploadItem = { local: crypto.randomUUID(), file, status: 'uploading', sent: 0 };
      if (file.type.startsWith('image/')) item.thumb = URL.createObjectURL(file);
      list.push(item);
      this.startUpload(room, item);
    }
    this.uploads.set(room, list);
    this.changed();
  }

  retryUpload(room: string, local: string): void {
    const item = this.uploadsIn(room).find((u) => u.local === local);
    if (!item || item.status !== 'failed') return;
    this.startUpload(room, item);
    this.changed();
  }

  /** Takes a file out of the composer (an upload already made is left to expire unsent). */
  dropUpload(room: string, local: string): void {
    const list = this.uploadsIn(room);
    const item = list.find((u) => u.local === local);
    if (item?.thumb) URL.revokeObjectURL(item.thumb);
    this.uploads.set(
      room,
      list.filter((u) => u !== item),
    );
    this.changed();
  }

  private startUpload(room: string, item: UploadItem): void {
    item.status = 'uploading';
    item.sent = 0;
    item.error = undefined;
    this.client
      .upload(room, item.file, {
        name: item.file.name || 'pasted',
        onProgress: (sent) => {
          item.sent = sent;
          this.changed();
        },
      })
      .then(
        (done) => {
          item.done = done;
          item.status = 'done';
          this.changed();
        },
        (err: unknown) => {
          item.status = 'failed';
          item.error = describeError(err);
          this.changed();
        },
      );
  }

  /** Signed URLs of attachments, fetched once per id and renewed when they expire. */
  private readonly fileLinks = new Map<string, Promise<Upload>>();

  fileLink(id: string): Promise<Upload> {
    let p = this.fileLinks.get(id);
    if (!p) {
      p = this.session.token().then((token) => api<Upload>('GET', `/attachments/${id}/meta`, { token }));
      p.then(
        (v) => setTimeout(() => this.fileLinks.delete(id), Math.max(0, v.expiresAt - Date.now() - 60_000)),
        () => this.fileLinks.delete(id),
      );
      this.fileLinks.set(id, p);
    }
    return p;
  }

  /** Sends a message; the reader is brought to the newest messages, where it will show. */
  send(room: string, text: string, attachments?: string[]): void {
    const p: PendingSend = { key: crypto.randomUUID(), room, text, ts: Date.now(), status: 'sending', ...(attachments?.length ? { attachments } : {}) };
    if (attachments?.length) {
      for (const u of this.uploadsIn(room)) if (u.thumb) URL.revokeObjectURL(u.thumb);
      this.uploads.delete(room);
    }
    const answering = this.replying.get(room);
    if (answering) p.replyTo = answering.seq;
    this.replying.delete(room);
    this.pending = [...this.pending, p];
    this.savePending();
    this.stopTyping(room);
    this.drafts.set(room, '');
    this.transmit(p);
    if (this.active === room) this.showLatest(room);
    this.changed();
  }

  retry(key: string): void {
    const p = this.pending.find((x) => x.key === key);
    if (!p) return;
    p.status = 'sending';
    p.error = undefined;
    this.savePending();
    this.transmit(p);
    this.changed();
  }

  discard(key: string): void {
    this.pending = this.pending.filter((x) => x.key !== key);
    this.savePending();
    this.changed();
  }

  /** The SDK queues it while offline and resends it with the same key after a lost reply. */
  private transmit(p: PendingSend): void {
    this.client
      .send(p.room, p.text, {
        key: p.key,
        ...(p.attachments ? { attachments: p.attachments } : {}),
        ...(p.replyTo !== undefined ? { replyTo: p.replyTo } : {}),
      })
      .then(
        (r) => {
          p.seq = r.seq;
          if (this.timelines.get(p.room)?.raw.has(r.seq)) this.pending = this.pending.filter((x) => x !== p);
          this.savePending();
          this.changed();
        },
        (err: unknown) => {
          if ((err as { code?: string }).code === 'closed') return;
          p.status = 'failed';
          p.error = describeError(err);
          this.savePending();
          this.changed();
        },
      );
  }

  /** Own sends still to show: not yet matched by a message of the room's history. */
  pendingIn(room: string): PendingSend[] {
    const raw = this.timelines.get(room)?.raw;
    return this.pending.filter((p) => p.room === room && !(p.seq !== undefined && raw?.has(p.seq)) && !(p.guess !== undefined && raw?.has(p.guess)));
  }

  /**
   * The message of an own send usually arrives just before its acknowledgement; matching it by
   * text in send order keeps the two from both showing for that moment.
   */
  private settlePending(m: Message): void {
    if (m.user !== this.me.id || m.kind !== 'text') return;
    const acked = this.pending.find((p) => p.seq === m.seq);
    if (acked) {
      this.pending = this.pending.filter((p) => p !== acked);
      this.savePending();
      return;
    }
    const guess = this.pending.find((p) => p.room === m.room && p.seq === undefined && p.guess === undefined && p.status === 'sending' && p.text === m.text);
    if (guess) guess.guess = m.seq;
  }

  /** Acknowledged sends whose message came with a history page are done. */
  private prunePending(room: string): void {
    const raw = this.timeline(room).raw;
    this.pending = this.pending.filter((p) => p.room !== room || p.seq === undefined || !raw.has(p.seq));
  }

  private savePending(): void {
    try {
      const open = this.pending.filter((p) => p.seq === undefined);
      if (open.length) localStorage.setItem(this.pendingKey, JSON.stringify(open));
      else localStorage.removeItem(this.pendingKey);
    } catch {
      // Storage full or blocked: sends still go out, they just do not survive a reload.
    }
  }

  /** Sends not acknowledged before a reload go out again under their keys: at most once. */
  private restorePending(): void {
    let saved: PendingSend[] = [];
    try {
      const v = JSON.parse(localStorage.getItem(this.pendingKey) ?? '[]') as unknown;
      if (Array.isArray(v)) {
        saved = (v as Array<Partial<PendingSend> | null>).filter(
          (p): p is PendingSend => typeof p?.key === 'string' && typeof p.room === 'string' && typeof p.text === 'string' && typeof p.ts === 'number',
        );
      }
    } catch {
      saved = [];
    }
    this.pending = saved.map((p) => ({
      key: p.key,
      room: p.room,
      text: p.text,
      ts: p.ts,
      status: p.status === 'failed' ? 'failed' : 'sending',
      error: p.error,
      ...(Array.isArray(p.attachments) && p.attachments.every((a) => typeof a === 'string') ? { attachments: p.attachments } : {}),
      ...(typeof p.replyTo === 'number' ? { replyTo: p.replyTo } : {}),
    }));
    for (const p of this.pending) if (p.status === 'sending') this.transmit(p);
  }

  async edit(room: string, seq: number, text: string): Promise<void> {
    await this.act(() => this.client.edit(room, seq, text), 'Could not edit');
  }

  async remove(room: string, seq: number): Promise<void> {
    await this.act(() => this.client.deleteMessage(room, seq), 'Could not delete');
  }

  async react(room: string, seq: number, emoji: string, remove: boolean): Promise<void> {
    await this.act(() => this.client.react(room, seq, emoji, remove), 'Could not react');
  }

  // ---- threads ------------------------------------------------------------------------------

  /** A root's summary: the latest told by a `thread` event, else the one read with it. */
  summaryOf(room: string, m: Pick<Shown, 'seq' | 'summary'>): ThreadSummary | undefined {
    return this.summaries.get(`${room}\n${m.seq}`) ?? m.summary;
  }

  /** Shows the thread under `root` beside the conversation, loading its newest replies. */
  async openThread(room: string, root: number): Promise<void> {
    const view: ThreadView = { room, root, rootMessage: null, raw: new Map(), loading: true, complete: false, version: 0 };
    this.thread = view;
    this.changed();
    try {
      const h = await this.client.history(room, { thread: root, limit: PAGE });
      if (this.thread !== view) return;
      for (const m of h.messages) view.raw.set(m.seq, m);
      this.noteNames(h.messages);
      view.rootMessage = h.root ?? null;
      view.complete = h.messages.length < PAGE;
    } catch (err) {
      if (this.thread === view) view.error = describeError(err);
    } finally {
      view.loading = false;
      view.version++;
      this.changed();
    }
  }

  /** Loads the page of replies before those shown. */
  async loadOlderReplies(): Promise<void> {
    const view = this.thread;
    if (!view || view.loading || view.complete) return;
    const first = Math.min(...view.raw.keys());
    view.loading = true;
    this.changed();
    try {
      const h = await this.client.history(view.room, { thread: view.root, before: first, limit: PAGE });
      for (const m of h.messages) view.raw.set(m.seq, m);
      this.noteNames(h.messages);
      view.complete = h.messages.length < PAGE;
    } catch (err) {
      this.notify(`Could not load older replies: ${describeError(err)}`, 'error');
    } finally {
      view.loading = false;
      view.version++;
      this.changed();
    }
  }

  closeThread(): void {
    this.thread = null;
    this.changed();
  }

  /** The open thread's replies as shown (edits, deletes and reactions folded in). */
  threadReplies(): Shown[] {
    return this.thread ? fold(this.thread.raw.values()) : [];
  }

  /** Replies in the open thread; `alsoToRoom` shows the reply in the room's timeline too. */
  async replyInThread(text: string, alsoToRoom: boolean): Promise<boolean> {
    const view = this.thread;
    if (!view) return false;
    try {
      await this.client.send(view.room, text, alsoToRoom ? { thread: view.root, alsoToRoom: true } : { thread: view.root });
      return true;
    } catch (err) {
      this.notify(`Could not send the reply: ${describeError(err)}`, 'error');
      return false;
    }
  }

  /** Answer a message with the next send of its room (null: stop answering). */
  replyTo(room: string, m: Shown | null): void {
    if (m) this.replying.set(room, m);
    else this.replying.delete(room);
    this.changed();
  }

  async loadPins(room: string): Promise<void> {
    try {
      this.pins.set(room, (await this.client.pins(room)).pins);
      this.changed();
    } catch (err) {
      this.notify(`Could not load the pinned messages: ${describeError(err)}`, 'error');
    }
  }

  async pin(room: string, seq: number, pinned: boolean): Promise<void> {
    await this.act(() => (pinned ? this.client.pin(room, seq) : this.client.unpin(room, seq)), pinned ? 'Could not pin' : 'Could not unpin');
  }

  /** Whether a shown message mentions me, by name or with the whole room. */
  mentionsMe(m: Shown): boolean {
    return m.mentionsAll || m.mentions.includes(this.me.id);
  }

  private async act(fn: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.notify(`${what}: ${describeError(err)}`, 'error');
    }
  }

  /**
   * A message that mentions me in a room other than a direct one (those notify as messages):
   * a browser notification while the page is hidden, if the user turned them on.
   */
  private onNotify(n: { room: string; seq: number; user: string; name: string; text: string; reason: string }): void {
    const entry = this.rooms.get(n.room);
    if (!entry || entry.room.kind === 'direct') return;
    const who = n.name || this.nameOf(n.user);
    this.showNotification(n.room, n.reason === 'message' ? `${who} in ${entry.room.name}` : `${who} mentioned you`, plainText(n.text));
  }

  private showNotification(room: string, title: string, body: string): void {
    const can = typeof Notification !== 'undefined';
    if (notifyChoice() !== 'on' || !can || Notification.permission !== 'granted' || document.visibilityState !== 'hidden') return;
    try {
      const n = new Notification(title, { body: shorten(body, 200), tag: `parley-${room}`, icon: '/favicon.svg' });
      n.onclick = () => {
        window.focus();
        this.onOpenRoom(room);
        n.close();
      };
    } catch {
      // Some browsers only show notifications from a service worker: then there are none.
    }
  }

  /**
   * A direct message from someone else: a browser notification while the page is hidden, if
   * the user turned them on; the first one ever also offers to turn them on.
   */
  private maybeNotify(m: Message, entry: RoomEntry): void {
    if (m.user === this.me.id || entry.room.kind !== 'direct' || Date.now() - m.ts > 60_000) return;
    const can = typeof Notification !== 'undefined';
    const choice = notifyChoice();
    if (choice === null && can && Notification.permission === 'default' && !this.offerNotifications) {
      this.offerNotifications = true;
      this.changed();
    }
    if (choice !== 'on' || !can || Notification.permission !== 'granted' || document.visibilityState !== 'hidden' || entry.notify === 'none') return;
    try {
      const n = new Notification(m.name || this.nameOf(m.user), {
        body: shorten(plainText(m.text ?? ''), 200),
        tag: `parley-${m.room}`,
        icon: '/favicon.svg',
      });
      n.onclick = () => {
        window.focus();
        this.onOpenRoom(m.room);
        n.close();
      };
    } catch {
      // Some browsers only show notifications from a service worker: then there are none.
    }
  }

  typingNow(room: string): void {
    const last = this.typingSent.get(room) ?? 0;
    if (Date.now() - last < TYPING_RESEND_MS) return;
    this.typingSent.set(room, Date.now());
    if (this.client.state === 'online') void this.client.typing(room, true).catch(() => {});
  }

  stopTyping(room: string): void {
    if (!this.typingSent.has(room)) return;
    this.typingSent.delete(room);
    if (this.client.state === 'online') void this.client.typing(room, false).catch(() => {});
  }

  // ---- rooms --------------------------------------------------------------------------------

  /** Adds a room the user just entered, without waiting for the inbox to be reloaded. */
  adopt(room: Room, role: Role): void {
    if (!this.rooms.has(room.id)) {
      this.rooms.set(room.id, { room, role, readSeq: room.lastSeq, unread: 0, unreadMore: false, mentions: 0, last: null, notify: defaultLevel(room.kind) });
      if (room.kind === 'direct') void this.findPeer(this.rooms.get(room.id)!);
      // History read before joining was not followed live: it may have a hole. Start over.
      const tl = this.timelines.get(room.id);
      if (tl?.loaded || tl?.loading) {
        this.reset(tl);
        tl.place = 'bottom';
        if (this.active === room.id) void this.loadWindow(room.id, null);
      }
      // Who is online was not followed before joining either.
      if (this.active === room.id) {
        void this.loadPresence(room.id);
        void this.loadMembers(room.id);
      }
    }
    void this.refreshInbox();
    this.changed();
  }

  /** Sets which messages of the room notify me; the entry shows it once the server agreed. */
  async setNotifyLevel(room: string, level: NotifyLevel): Promise<void> {
    const r = await this.client.notifications(room, level);
    const entry = this.rooms.get(room);
    if (entry) entry.notify = r.level;
    this.changed();
  }

  async directWith(user: string): Promise<Room> {
    const room = await this.client.direct(user);
    this.adopt(room, 'member');
    const entry = this.rooms.get(room.id);
    if (entry && !entry.peer) entry.peer = user;
    return room;
  }
}
