// Parley client SDK for Node and the browser: typed commands over the WebSocket protocol,
// automatic reconnect with backoff, resume of every room from the last seq seen, duplicate
// suppression, request timeouts and an offline queue. Depends on no server code.
import type {
  AuthResult, CommandArgs, CommandName, CommandResults, EventMap, EventName, MentionAll, Message, NotifyLevel, Room, SendResult,
} from '../protocol/schema.js';

/** The subset of the WebSocket API the SDK uses (browser WebSocket and `ws` both fit). */
interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
type WebSocketCtor = new (url: string) => WebSocketLike;

export type ConnectionState = 'idle' | 'connecting' | 'online' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /**
   * Server base URL (http://host:port) or the WebSocket URL (ws://host:port/ws), or a function
   * giving one, called on every connect: with several nodes it can ask `/api/v1/dispatch` or
   * go round a list, so a client whose node died reconnects to another.
   */
  url: string | (() => string | Promise<string>);
  /** A token, or a function returning a fresh one (called on every connect). */
  token: string | (() => string | Promise<string>);
  /** WebSocket implementation; defaults to the global one, then the `ws` package. */
  WebSocket?: WebSocketCtor;
  /** Milliseconds before an unanswered request fails with `timeout`. */
  requestTimeoutMs?: number;
  /** Reconnect backoff bounds in milliseconds. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Last seq seen per room, e.g. restored from storage; the server replays what follows. */
  resume?: Record<string, number>;
}

export class ClientError extends Error {
  constructor(readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = 'ClientError';
  }
}

export interface ClientEvents extends EventMap {
  state: { state: ConnectionState; error?: ClientError };
  /** A custom application event posted to a room by the server-side API (kind "event"). */
  custom: { room: string; seq: number; ev: string; data?: unknown; user: string; ts: number };
  /** Authenticated (first time or after a reconnect). */
  ready: AuthResult;
  /** A token from the token function was refused; the client keeps retrying with a fresh one. */
  authError: ClientError;
}

interface Pending {
  cmd: CommandName;
  frame: Record<string, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: ClientError) => void;
  timer?: ReturnType<typeof setTimeout>;
  sent: boolean;
}

/** Auth errors that mean the token itself was refused (anything else is retried). */
const REFUSED: ReadonlySet<string> = new Set(['unauthorized', 'forbidden', 'invalid']);

/** Commands that are safe to send again after a reconnect (reads, or writes with a key). */
const RETRY = new Set<CommandName>(['send', 'edit', 'delete', 'react', 'read', 'history', 'rooms', 'room', 'members',
  'presence', 'inbox', 'direct', 'ping', 'resume', 'notifications', 'settings', 'pin', 'unpin', 'pins', 'versions']);
const KEYED = new Set<CommandName>(['send', 'edit', 'delete', 'react']);

function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

export class ParleyClient {
  state: ConnectionState = 'idle';
  /** Why the client closed itself (a rejected token), if it did. */
  lastError: ClientError | null = null;
  /** The signed-in user once authenticated. */
  user: AuthResult['user'] | null = null;
  /** Last seq delivered per room: what the client resumes from. */
  readonly lastSeq = new Map<string, number>();
  /** Rooms the user belongs to, as last reported. */
  readonly rooms = new Map<string, Room>();

  private ws: WebSocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Pending[] = [];
  private readonly listeners = new Map<string, Set<(data: never) => void>>();
  private attempt = 0;
  private everReady = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatMs = 30000;
  /**
   * Requests the server lets one connection have awaiting a reply (from its auth reply); more
   * wait in the queue, since the server closes a connection that sends beyond it.
   */
  private maxInFlight = Infinity;
  /** Ids sent on this connection whose reply has not come, timed-out ones included. */
  private readonly outstanding = new Set<number>();
  private readyWaiters: Array<{ resolve: () => void; reject: (e: ClientError) => void }> = [];
  private readonly opts: Required<Omit<ClientOptions, 'WebSocket' | 'resume'>> & Pick<ClientOptions, 'WebSocket'>;

  constructor(opts: ClientOptions) {
    this.opts = { requestTimeoutMs: 10000, reconnectMinMs: 250, reconnectMaxMs: 10000, ...opts };
    for (const [room, seq] of Object.entries(opts.resume ?? {})) this.lastSeq.set(room, seq);
  }

  // ---- events ---------------------------------------------------------------------------------

  on<E extends keyof ClientEvents>(ev: E, fn: (data: ClientEvents[E]) => void): () => void {
    let set = this.listeners.get(ev);
    if (!set) this.listeners.set(ev, (set = new Set()));
    set.add(fn as (data: never) => void);
    return () => set.delete(fn as (data: never) => void);
  }

  private emit<E extends keyof ClientEvents>(ev: E, data: ClientEvents[E]): void {
    for (const fn of this.listeners.get(ev) ?? []) {
      try {
        (fn as (d: ClientEvents[E]) => void)(data);
      } catch (err) {
        setTimeout(() => { throw err; });
      }
    }
  }

  // ---- connection -------------------------------------------------------------------------------

  /** Connects and authenticates; resolves when online. Reconnects on its own afterwards. */
  connect(): Promise<void> {
    if (this.state === 'online') return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    if (this.state === 'idle' || this.state === 'closed') {
      this.setState('connecting');
      void this.open();
    }
    return p;
  }

  /** Closes for good; pending requests fail with `closed`. */
  close(): void {
    this.setState('closed', this.lastError ?? undefined);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'bye');
    const err = new ClientError('closed', 'client closed');
    for (const p of [...this.pending.values(), ...this.queue]) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.queue.length = 0;
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
  }

  /** Drops the socket without closing the client, as a network failure would. */
  dropConnection(): void {
    this.ws?.close(4000, 'dropped by client');
  }

  /** Re-reads the state after an await (TypeScript narrows it otherwise). */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private setState(state: ConnectionState, error?: ClientError): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', error ? { state, error } : { state });
  }

  private async open(): Promise<void> {
    let Ctor = this.opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ctor) {
      const name = 'ws';
      Ctor = ((await import(/* @vite-ignore */ name)) as { default: WebSocketCtor }).default;
    }
    if (this.isClosed()) return;
    let token: string;
    let url: string;
    try {
      token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
      url = typeof this.opts.url === 'function' ? await this.opts.url() : this.opts.url;
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.isClosed()) return;
    const ws = new Ctor(wsUrl(url));
    this.ws = ws;
    ws.onopen = () => {
      // fromEntries defines own properties, so a room named "__proto__" is sent like any other.
      const resume = Object.fromEntries(this.lastSeq);
      const id = this.nextId++;
      const auth: Pending = {
        cmd: 'auth', frame: { id, cmd: 'auth', token, resume }, sent: true,
        resolve: (r) => this.onReady(r as AuthResult),
        reject: (e) => this.onAuthFailed(e),
      };
      this.pending.set(id, auth);
      this.arm(id, auth);
      ws.send(JSON.stringify(auth.frame));
    };
    ws.onmessage = (ev) => this.onFrame(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onDisconnect(ev.code);
    };
  }

  private onReady(r: AuthResult): void {
    this.attempt = 0;
    this.user = r.user;
    this.heartbeatMs = r.heartbeatMs;
    this.maxInFlight = typeof r.maxInFlight === 'number' && r.maxInFlight > 0 ? r.maxInFlight : Infinity;
    this.rooms.clear();
    for (const room of r.rooms) this.rooms.set(room.id, room);
    // Replayed messages may arrive before this reply and have moved lastSeq on already; only
    // rooms new to this client take a starting point. On a reconnect, a room joined while
    // offline is replayed from its join message, so nothing sent meanwhile is missed; on the
    // first connect the client starts from now and reads older messages with `history`.
    const joinedOffline = new Map<string, number>();
    for (const [room, seq] of Object.entries(r.resumed)) {
      if (this.lastSeq.has(room)) continue;
      // Room ids are keys here: read own properties only ("constructor" is a room id too).
      const joinSeq = Object.hasOwn(r.joined, room) ? r.joined[room] : undefined;
      if (this.everReady && joinSeq !== undefined && joinSeq <= seq) {
        this.lastSeq.set(room, joinSeq - 1);
        joinedOffline.set(room, joinSeq - 1);
      } else this.lastSeq.set(room, seq);
    }
    this.everReady = true;
    for (const room of r.denied) {
      this.lastSeq.delete(room);
      this.emit('room', { room, member: null, reason: 'denied' });
    }
    this.setState('online');
    this.touch();
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.emit('ready', r);
    if (joinedOffline.size > 0) void this.request('resume', { rooms: Object.fromEntries(joinedOffline) }).catch(() => {});
    this.flushQueue();
  }

  private onAuthFailed(e: ClientError): void {
    // The server could not check the token just now (its database is away, a timeout, a
    // limit): nothing is wrong with the token, so try again later and keep connect() waiting.
    if (!REFUSED.has(e.code)) {
      this.emit('authError', e);
      this.ws?.close(4000, 'auth not possible now; retrying');
      return;
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(e);
    // A static token that is rejected will not get better: stop. A token function may.
    if (typeof this.opts.token === 'string') {
      this.lastError = e;
      this.close();
    } else {
      this.emit('authError', e);
      this.ws?.close(4000, 'auth failed');
    }
  }

  private onDisconnect(code: number): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    // In-flight requests: retry the safe ones after reconnecting, fail the others.
    const inflight = [...this.pending.values()].filter((p) => p.cmd !== 'auth');
    this.pending.clear();
    this.outstanding.clear();
    const lost = new ClientError('unavailable', 'connection lost before the reply');
    const retry: Pending[] = [];
    for (const p of inflight) {
      if (p.timer) clearTimeout(p.timer);
      if (RETRY.has(p.cmd)) {
        p.sent = false;
        retry.push(p);
      } else p.reject(lost);
    }
    this.queue.unshift(...retry);
    if (this.state === 'closed') return;
    if (code === 4001 && typeof this.opts.token === 'string') {
      this.lastError = new ClientError('unauthorized', 'token rejected or expired');
      this.close();
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed') return;
    this.setState('reconnecting');
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * base / 2;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  /**
   * While waiting to reconnect, tries at once instead of after the backoff: for when the
   * application knows the network or the server is back (the browser's `online` event, a
   * health check that answers). A failed attempt backs off as before.
   */
  reconnectNow(): void {
    if (this.state !== 'reconnecting' || !this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    void this.open();
  }

  /** Sends a ping when the server has been silent for a heartbeat; no answer means reconnect. */
  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.state !== 'online') return;
      this.request('ping', {}).catch(() => this.ws?.close(4000, 'server silent'));
    }, this.heartbeatMs);
  }

  private onFrame(text: string): void {
    this.touch();
    let f: { id?: number; ok?: boolean; data?: unknown; error?: { code: string; message: string; details?: Record<string, unknown> }; ev?: EventName };
    try {
      f = JSON.parse(text) as typeof f;
    } catch {
      return;
    }
    if (f.ev) {
      this.onEvent(f.ev, f.data);
      return;
    }
    if (typeof f.id !== 'number') return;
    if (this.outstanding.delete(f.id)) this.flushQueue();
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    if (p.timer) clearTimeout(p.timer);
    if (f.ok) p.resolve(f.data);
    else p.reject(new ClientError(f.error?.code ?? 'internal', f.error?.message ?? 'error', f.error?.details));
  }

  private onEvent(ev: EventName, data: unknown): void {
    if (ev === 'message') {
      const m = data as Message;
      const last = this.lastSeq.get(m.room) ?? 0;
      if (m.seq <= last) return; // already seen: suppressed
      if (m.seq > last + 1 && this.lastSeq.has(m.room)) {
        // The server promises no gaps; if one shows up anyway, ask for the missing part.
        void this.request('resume', { rooms: { [m.room]: last } }).catch(() => {});
        return;
      }
      this.lastSeq.set(m.room, m.seq);
      const room = this.rooms.get(m.room);
      if (room) room.lastSeq = m.seq;
      if (m.kind === 'event') {
        // Application events go to their own handler instead of appearing as chat messages.
        const d = m.data as { ev: string; data?: unknown };
        this.emit('custom', { room: m.room, seq: m.seq, ev: d.ev, data: d.data, user: m.user, ts: m.ts });
        return;
      }
    } else if (ev === 'room') {
      const r = data as EventMap['room'];
      if (r.member === null) {
        this.rooms.delete(r.room);
        this.lastSeq.delete(r.room);
      } else if (!this.rooms.has(r.room)) {
        void this.request('room', { room: r.room }).then((room) => this.rooms.set(room.id, room), () => {});
      }
    } else if (ev === 'gap') {
      const g = data as EventMap['gap'];
      this.lastSeq.set(g.room, g.to);
    }
    this.emit(ev, data as never);
  }

  // ---- requests -------------------------------------------------------------------------------

  /** Sends any command; resolves with its result or rejects with a ClientError. */
  request<N extends CommandName>(cmd: N, args: CommandArgs<N>): Promise<CommandResults[N]> {
    if (this.state === 'closed') return Promise.reject(new ClientError('closed', 'client closed'));
    const frame: Record<string, unknown> = { ...args, cmd };
    if (KEYED.has(cmd) && frame.key === undefined) frame.key = randomKey();
    return new Promise((resolve, reject) => {
      const p: Pending = { cmd, frame, resolve: resolve as (v: unknown) => void, reject, sent: false };
      if (this.state === 'online' && this.queue.length === 0 && this.outstanding.size < this.maxInFlight) this.transmit(p);
      else if (cmd === 'typing') resolve({} as CommandResults[N]); // ephemeral: not worth queueing
      else this.queue.push(p);
    });
  }

  private transmit(p: Pending): void {
    const id = this.nextId++;
    p.frame.id = id;
    p.sent = true;
    this.pending.set(id, p);
    this.outstanding.add(id);
    this.arm(id, p);
    this.ws!.send(JSON.stringify(p.frame));
  }

  private arm(id: number, p: Pending): void {
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      this.pending.delete(id);
      p.reject(new ClientError('timeout', `no reply to "${p.cmd}" within ${this.opts.requestTimeoutMs} ms`));
    }, this.opts.requestTimeoutMs);
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this.state === 'online' && this.ws && this.outstanding.size < this.maxInFlight) {
      this.transmit(this.queue.shift()!);
    }
  }

  // ---- typed helpers --------------------------------------------------------------------------

  /** Sends a text; `replyTo` names the seq of the room's message it answers. */
  send(room: string, text: string, opts: { key?: string; data?: Record<string, unknown>; replyTo?: number } = {}): Promise<SendResult> {
    return this.request('send', { room, text, ...opts });
  }
  edit(room: string, target: number, text: string): Promise<SendResult> {
    return this.request('edit', { room, target, text });
  }
  deleteMessage(room: string, target: number): Promise<SendResult> {
    return this.request('delete', { room, target });
  }
  react(room: string, target: number, emoji: string, remove = false): Promise<SendResult> {
    return this.request('react', remove ? { room, target, emoji, remove } : { room, target, emoji });
  }
  createRoom(kind: 'channel' | 'group', name: string, opts: { topic?: string; room?: string } = {}): Promise<Room> {
    return this.request('create', { kind, name, ...opts });
  }
  join(room: string) { return this.request('join', { room }); }
  leave(room: string) { return this.request('leave', { room }); }
  /** Leaves many rooms at once; the reply lists those left and those skipped, with why. */
  leaveMany(rooms: string[]) { return this.request('leaveMany', { rooms }); }
  invite(room: string, user: string) { return this.request('invite', { room, user }); }
  direct(user: string): Promise<Room> { return this.request('direct', { user }); }
  history(room: string, q: { before?: number; after?: number; limit?: number } = {}) {
    return this.request('history', { room, ...q });
  }
  typing(room: string, active = true) { return this.request('typing', { room, active }); }
  markRead(room: string, seq: number) { return this.request('read', { room, seq }); }
  presence(room: string) { return this.request('presence', { room }); }
  inbox() { return this.request('inbox', {}); }
  listRooms(scope: 'mine' | 'public' = 'mine') { return this.request('rooms', { scope }); }
  members(room: string) { return this.request('members', { room }); }
  search(query: string, opts: { room?: string; limit?: number } = {}) { return this.request('search', { query, ...opts }); }
  updateRoom(room: string, patch: Omit<CommandArgs<'update'>, 'room'>) { return this.request('update', { room, ...patch }); }
  kick(room: string, user: string, reason?: string) { return this.request('kick', reason ? { room, user, reason } : { room, user }); }
  ban(user: string, opts: { room?: string; seconds?: number; reason?: string } = {}) { return this.request('ban', { user, ...opts }); }
  mute(room: string, user: string, seconds?: number) { return this.request('mute', seconds ? { room, user, seconds } : { room, user }); }
  block(user: string) { return this.request('block', { user }); }
  /** Your notification level in a room; sets it first when `level` is given. */
  notifications(room: string, level?: NotifyLevel) { return this.request('notifications', level ? { room, level } : { room }); }
  /** A room's message settings; changes them first when `mentionAll` is given (moderators). */
  roomSettings(room: string, mentionAll?: MentionAll) { return this.request('settings', mentionAll ? { room, mentionAll } : { room }); }
  pin(room: string, seq: number) { return this.request('pin', { room, seq }); }
  unpin(room: string, seq: number) { return this.request('unpin', { room, seq }); }
  pins(room: string) { return this.request('pins', { room }); }
  /** A text message's versions: the original, then each edit. */
  versions(room: string, seq: number) { return this.request('versions', { room, seq }); }
  unblock(user: string) { return this.request('unblock', { user }); }
}

export type { AuthResult, Message, Pin, Quote, Room, SendResult, Version } from '../protocol/schema.js';
