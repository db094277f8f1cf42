// Parley client SDK for Node and the browser: typed commands over the WebSocket protocol,
// automatic reconnect with backoff, resume of every room from the last seq seen, duplicate
// suppression, request timeouts, an offline queue, and writes that are retried with their
// idempotency key until the server answers. Depends on no server code.
//
//   connection.ts  the socket: url and token, reconnect backoff, close codes
//   requests.ts    requests and replies: ids, queue, timeouts, resends of keyed writes
//   cursor.ts      the last seq per room and the rooms: resume, duplicates, gaps
//   backoff.ts     the one backoff every retry uses
import type {
  AuthResult,
  CommandArgs,
  CommandName,
  CommandResults,
  EventMap,
  EventName,
  MentionAll,
  Message,
  NotifyLevel,
  Room,
  SendResult,
} from '../protocol/schema.js';
import { CLOSE_RETRY, CLOSE_UNAUTHORIZED, Socket, type WebSocketCtor } from './connection.js';
import { Cursor } from './cursor.js';
import { ClientError } from './errors.js';
import { KEYED, randomKey, Requests, type ReplyFrame } from './requests.js';

export { ClientError } from './errors.js';
export type { WebSocketLike } from './connection.js';

export type ConnectionState = 'idle' | 'connecting' | 'online' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /**
   * Server base URL (http://host:port) or the WebSocket URL (ws://host:port/ws), or a function
   * giving one, called on every connect: with several nodes it can ask `/api/v1/dispatch` or
   * go round a list, so a client whose node died (or that a busy node asks to move) connects
   * to another.
   */
  url: string | (() => string | Promise<string>);
  /** A token, or a function returning a fresh one (called on every connect). */
  token: string | (() => string | Promise<string>);
  /** WebSocket implementation; defaults to the global one, then the `ws` package. */
  WebSocket?: WebSocketCtor;
  /**
   * Milliseconds before an unanswered request fails with `timeout`. Writes with an idempotency
   * key (send, edit, delete, react) do not fail: they are sent again with the same key.
   */
  requestTimeoutMs?: number;
  /**
   * How long after it was first sent a keyed write refused `unavailable` (nothing stored: a
   * node of a cluster died and its rooms are moving, the database is away) is sent again with
   * its key, after a growing wait, before it fails with that refusal; and a read (history,
   * search, rooms, members…) refused `unavailable`, or `rate_limited` with `retryAfterMs`, is
   * asked again, after the wait the server named if any (default 15000; 0: never).
   */
  retryUnavailableMs?: number;
  /** Reconnect backoff bounds in milliseconds. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Last seq seen per room, e.g. restored from storage; the server replays what follows. */
  resume?: Record<string, number>;
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

/**
 * The promise of a write with an idempotency key, and the key: sending the same write again
 * with it (after `close()`, or from storage after a restart) can never store it twice.
 */
export type KeyedPromise<T> = Promise<T> & { readonly key: string };

/** Auth errors that mean the token itself was refused (anything else is retried). */
const REFUSED: ReadonlySet<string> = new Set(['unauthorized', 'forbidden', 'invalid']);

/** The HTTP base (scheme, host, port) of the server a WebSocket or HTTP URL names. */
function httpBase(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  return u.origin;
}

/** An uploaded file as the server shows it to you (see docs/rest.md#attachments). */
export interface Upload {
  id: string;
  room: string;
  uploader: string;
  name: string;
  size: number;
  type: string;
  width?: number;
  height?: number;
  createdAt: number;
  message: number | null;
  /** Signed URLs readable without a header (`<img src>`) until `expiresAt`. */
  url: string;
  previewUrl?: string;
  expiresAt: number;
}

export interface UploadOptions {
  /** The file name (sanitised by the server); a File's own name by default. */
  name?: string;
  /** Called with bytes sent so far and the total while the file goes up (browsers). */
  onProgress?: (sent: number, total: number) => void;
  /** Aborts the upload (it rejects with `aborted`). */
  signal?: AbortSignal;
}

const current = async (v: string | (() => string | Promise<string>)): Promise<string> => (typeof v === 'function' ? v() : v);

export class ParleyClient {
  state: ConnectionState = 'idle';
  /** Why the client closed itself (a rejected token), if it did. */
  lastError: ClientError | null = null;
  /** The signed-in user once authenticated. */
  user: AuthResult['user'] | null = null;

  private readonly cursor: Cursor;
  private readonly socket: Socket;
  private readonly requests: Requests;
  private readonly listeners = new Map<string, Set<(data: never) => void>>();
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatMs = 30000;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: ClientError) => void }> = [];
  private readonly staticToken: boolean;
  /** The server and the token, for the HTTP requests beside the socket (uploads). */
  private readonly target: Pick<ClientOptions, 'url' | 'token'>;

  constructor(opts: ClientOptions) {
    const o = { requestTimeoutMs: 10000, retryUnavailableMs: 15000, reconnectMinMs: 250, reconnectMaxMs: 10000, ...opts };
    this.target = { url: o.url, token: o.token };
    this.staticToken = typeof o.token === 'string';
    this.cursor = new Cursor(o.resume);
    this.requests = new Requests(
      { ready: () => this.state === 'online' && this.socket.open, write: (t) => this.socket.write(t) },
      o.requestTimeoutMs,
      o.retryUnavailableMs,
    );
    this.socket = new Socket(o, {
      open: (token) => this.authenticate(token),
      frame: (text) => this.onFrame(text),
      closed: (code) => this.onDisconnect(code),
      failed: () => this.reconnect(),
    });
  }

  /** Last seq delivered per room: what the client resumes from. */
  get lastSeq(): Map<string, number> {
    return this.cursor.lastSeq;
  }

  /** Rooms the user belongs to, as last reported. */
  get rooms(): Map<string, Room> {
    return this.cursor.rooms;
  }

  // ---- events ---------------------------------------------------------------------------------

  on<E extends keyof ClientEvents>(ev: E, fn: (data: ClientEvents[E]) => void): () => void {
    let set = this.listeners.get(ev);
    if (!set) this.listeners.set(ev, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  private emit<E extends keyof ClientEvents>(ev: E, data: ClientEvents[E]): void {
    for (const fn of this.listeners.get(ev) ?? []) {
      try {
        (fn as (d: ClientEvents[E]) => void)(data);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
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
      void this.socket.start();
    }
    return p;
  }

  /** Closes for good; pending requests fail with `closed` (keyed writes keep their key). */
  close(): void {
    this.setState('closed', this.lastError ?? undefined);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.socket.stop();
    const err = new ClientError('closed', 'client closed');
    this.requests.failAll(err);
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
  }

  /** Drops the socket without closing the client, as a network failure would. */
  dropConnection(): void {
    this.socket.drop(CLOSE_RETRY, 'dropped by client');
  }

  private setState(state: ConnectionState, error?: ClientError): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', error ? { state, error } : { state });
  }

  private authenticate(token: string): void {
    this.requests.now('auth', { cmd: 'auth', token, resume: this.cursor.resumeArgs() }).then(
      (r) => this.onReady(r as AuthResult),
      (e: ClientError) => this.onAuthFailed(e),
    );
  }

  private onReady(r: AuthResult): void {
    this.socket.succeeded();
    this.user = r.user;
    this.heartbeatMs = r.heartbeatMs;
    this.requests.limit(r.maxInFlight);
    const { joinedOffline, denied } = this.cursor.ready(r);
    for (const room of denied) this.emit('room', { room, member: null, reason: 'denied' });
    this.setState('online');
    this.touch();
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.emit('ready', r);
    if (joinedOffline.size > 0) void this.request('resume', { rooms: Object.fromEntries(joinedOffline) }).catch(() => {});
    this.requests.flush();
  }

  private onAuthFailed(e: ClientError): void {
    // The server could not check the token just now (its database is away, a timeout, a
    // limit): nothing is wrong with the token, so try again later and keep connect() waiting.
    if (!REFUSED.has(e.code)) {
      this.emit('authError', e);
      this.socket.drop(CLOSE_RETRY, 'auth not possible now; retrying');
      return;
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(e);
    // A static token that is rejected will not get better: stop. A token function may.
    if (this.staticToken) {
      this.lastError = e;
      this.close();
    } else {
      this.emit('authError', e);
      this.socket.drop(CLOSE_RETRY, 'auth failed');
    }
  }

  private onDisconnect(code: number): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    // In-flight requests: retry the safe ones after reconnecting, fail the others.
    this.requests.connectionLost();
    if (this.state === 'closed') return;
    // The server closes with 4001 only when it refused the token (or none came in time).
    if (code === CLOSE_UNAUTHORIZED && this.staticToken) {
      this.lastError = new ClientError('unauthorized', 'token rejected or expired');
      this.close();
      return;
    }
    this.reconnect(code);
  }

  private reconnect(code?: number): void {
    if (this.state === 'closed') return;
    this.setState('reconnecting');
    this.socket.reconnect(code);
  }

  /**
   * While waiting to reconnect, tries at once instead of after the backoff: for when the
   * application knows the network or the server is back (the browser's `online` event, a
   * health check that answers). A failed attempt backs off as before.
   */
  reconnectNow(): void {
    if (this.state !== 'reconnecting') return;
    this.socket.reconnectNow();
  }

  /** Sends a ping when the server has been silent for a heartbeat; no answer means reconnect. */
  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.state !== 'online') return;
      this.request('ping', {}).catch(() => this.socket.drop(CLOSE_RETRY, 'server silent'));
    }, this.heartbeatMs);
  }

  private onFrame(text: string): void {
    this.touch();
    let f: ReplyFrame & { ev?: EventName };
    try {
      f = JSON.parse(text) as typeof f;
    } catch {
      return;
    }
    if (f.ev) this.onEvent(f.ev, f.data);
    else this.requests.reply(f);
  }

  private onEvent(ev: EventName, data: unknown): void {
    if (ev === 'message') {
      const m = data as Message;
      const verdict = this.cursor.message(m);
      if (verdict.kind === 'duplicate') return;
      if (verdict.kind === 'gap') {
        void this.request('resume', { rooms: { [m.room]: verdict.after } }).catch(() => {});
        return;
      }
      if (m.kind === 'event') {
        // Application events go to their own handler instead of appearing as chat messages.
        const d = m.data as { ev: string; data?: unknown };
        this.emit('custom', { room: m.room, seq: m.seq, ev: d.ev, data: d.data, user: m.user, ts: m.ts });
        return;
      }
    } else if (ev === 'room') {
      const r = data as EventMap['room'];
      if (this.cursor.membership(r)) {
        void this.request('room', { room: r.room }).then(
          (room) => this.cursor.rooms.set(room.id, room),
          () => {},
        );
      }
    } else if (ev === 'gap') {
      this.cursor.gap(data as EventMap['gap']);
    }
    this.emit(ev, data as never);
  }

  // ---- requests -------------------------------------------------------------------------------

  /**
   * Sends any command; resolves with its result or rejects with a ClientError. A write with an
   * idempotency key gets one if it has none, and the promise carries it (`key`).
   */
  request<N extends CommandName>(cmd: N, args: CommandArgs<N>): Promise<CommandResults[N]> & { readonly key?: string } {
    if (this.state === 'closed') return Promise.reject(new ClientError('closed', 'client closed'));
    const frame: Record<string, unknown> = { ...args, cmd };
    if (KEYED.has(cmd) && frame.key === undefined) frame.key = randomKey();
    const p = this.requests.start(cmd, frame) as Promise<CommandResults[N]>;
    return typeof frame.key === 'string' ? Object.assign(p, { key: frame.key }) : p;
  }

  private keyed<N extends 'send' | 'edit' | 'delete' | 'react'>(cmd: N, args: CommandArgs<N>): KeyedPromise<CommandResults[N]> {
    const key = (args as { key?: string }).key ?? randomKey();
    const p = this.request(cmd, { ...args, key });
    return Object.assign(p, { key });
  }

  // ---- typed helpers --------------------------------------------------------------------------

  /**
   * Sends a message; the promise carries its idempotency key (the one given, or a new one).
   * `attachments` names your uploads to the room (see `upload`); the message carries them in
   * `data.attachments`, and the text may then be empty. `replyTo` names the seq of the room's
   * message it answers (a quote reply, in the room's timeline); `thread` the seq of the root
   * whose thread it goes to (shown in the main timeline too with `alsoToRoom`).
   */
  send(
    room: string,
    text: string,
    opts: {
      key?: string;
      data?: Record<string, unknown>;
      attachments?: string[];
      replyTo?: number;
      thread?: number;
      alsoToRoom?: boolean;
    } = {},
  ): KeyedPromise<SendResult> {
    return this.keyed('send', { room, text, ...opts });
  }

  /**
   * Uploads a file to a room over HTTP (POST /api/v1/rooms/{room}/attachments); send its id
   * with a message afterwards. Rejects with the server's error code (`too_large`, `invalid`,
   * `forbidden`, `rate_limited`...), `aborted`, or `unavailable` when the network failed.
   */
  async upload(room: string, file: Blob | Uint8Array, opts: UploadOptions = {}): Promise<Upload> {
    const url = `${httpBase(await current(this.target.url))}/api/v1/rooms/${encodeURIComponent(room)}/attachments`;
    const token = await current(this.target.token);
    const name = opts.name ?? ((file as { name?: string }).name || 'file');
    const type = (file as Blob).type || 'application/octet-stream';
    const headers = { authorization: `Bearer ${token}`, 'content-type': type, 'x-filename': encodeURIComponent(name) };
    const body = file instanceof Uint8Array ? new Blob([file as Uint8Array<ArrayBuffer>]) : file;
    const answer = (status: number, text: string): Upload => {
      let json: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Partial<Upload>;
      try {
        json = JSON.parse(text) as typeof json;
      } catch {
        throw new ClientError('unavailable', `upload failed with HTTP ${status}`);
      }
      if (status >= 400 || json.error) throw new ClientError(json.error?.code ?? 'unavailable', json.error?.message ?? `HTTP ${status}`, json.error?.details);
      return json as Upload;
    };
    const XHR = (globalThis as { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
    if (!XHR) {
      // Node: fetch, without progress events.
      try {
        const r = await fetch(url, { method: 'POST', headers, body, ...(opts.signal ? { signal: opts.signal } : {}) });
        const out = answer(r.status, await r.text());
        opts.onProgress?.(body.size, body.size);
        return out;
      } catch (err) {
        if (err instanceof ClientError) throw err;
        throw new ClientError(opts.signal?.aborted ? 'aborted' : 'unavailable', (err as Error).message);
      }
    }
    return new Promise<Upload>((done, fail) => {
      const xhr = new XHR();
      xhr.open('POST', url);
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.total || body.size);
      xhr.onload = () => {
        try {
          done(answer(xhr.status, xhr.responseText));
        } catch (err) {
          fail(err);
        }
      };
      xhr.onerror = () => fail(new ClientError('unavailable', 'the upload failed: network error'));
      xhr.onabort = () => fail(new ClientError('aborted', 'the upload was aborted'));
      opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(body);
    });
  }
  edit(room: string, target: number, text: string, opts: { key?: string } = {}): KeyedPromise<SendResult> {
    return this.keyed('edit', { room, target, text, ...opts });
  }
  deleteMessage(room: string, target: number, opts: { key?: string } = {}): KeyedPromise<SendResult> {
    return this.keyed('delete', { room, target, ...opts });
  }
  react(room: string, target: number, emoji: string, remove = false, opts: { key?: string } = {}): KeyedPromise<SendResult> {
    return this.keyed('react', remove ? { room, target, emoji, remove, ...opts } : { room, target, emoji, ...opts });
  }
  createRoom(kind: 'channel' | 'group', name: string, opts: { topic?: string; room?: string } = {}): Promise<Room> {
    return this.request('create', { kind, name, ...opts });
  }
  join(room: string) {
    return this.request('join', { room });
  }
  leave(room: string) {
    return this.request('leave', { room });
  }
  /** Leaves many rooms at once; the reply lists those left and those skipped, with why. */
  leaveMany(rooms: string[]) {
    return this.request('leaveMany', { rooms });
  }
  invite(room: string, user: string) {
    return this.request('invite', { room, user });
  }
  direct(user: string): Promise<Room> {
    return this.request('direct', { user });
  }
  /** A page of the room's main timeline, or with `thread` of that thread (the reply has its `root`). */
  history(room: string, q: { before?: number; after?: number; limit?: number; thread?: number } = {}) {
    return this.request('history', { room, ...q });
  }
  /** One message of a room by its seq, a reply kept to its thread included. */
  message(room: string, seq: number) {
    return this.request('message', { room, seq });
  }
  typing(room: string, active = true) {
    return this.request('typing', { room, active });
  }
  markRead(room: string, seq: number) {
    return this.request('read', { room, seq });
  }
  presence(room: string) {
    return this.request('presence', { room });
  }
  inbox() {
    return this.request('inbox', {});
  }
  listRooms(scope: 'mine' | 'public' = 'mine') {
    return this.request('rooms', { scope });
  }
  members(room: string) {
    return this.request('members', { room });
  }
  search(query: string, opts: { room?: string; limit?: number } = {}) {
    return this.request('search', { query, ...opts });
  }
  updateRoom(room: string, patch: Omit<CommandArgs<'update'>, 'room'>) {
    return this.request('update', { room, ...patch });
  }
  kick(room: string, user: string, reason?: string) {
    return this.request('kick', reason ? { room, user, reason } : { room, user });
  }
  ban(user: string, opts: { room?: string; seconds?: number; reason?: string } = {}) {
    return this.request('ban', { user, ...opts });
  }
  mute(room: string, user: string, seconds?: number) {
    return this.request('mute', seconds ? { room, user, seconds } : { room, user });
  }
  /** Sets a member's role (the owner only); `owner` hands the room over, the caller becoming an admin. */
  role(room: string, user: string, role: CommandArgs<'role'>['role']) {
    return this.request('role', { room, user, role });
  }
  block(user: string) {
    return this.request('block', { user });
  }
  /** Your notification level in a room; sets it first when `level` is given. */
  notifications(room: string, level?: NotifyLevel) {
    return this.request('notifications', level ? { room, level } : { room });
  }
  /** A room's message settings; changes them first when `mentionAll` is given (moderators). */
  roomSettings(room: string, mentionAll?: MentionAll) {
    return this.request('settings', mentionAll ? { room, mentionAll } : { room });
  }
  pin(room: string, seq: number) {
    return this.request('pin', { room, seq });
  }
  unpin(room: string, seq: number) {
    return this.request('unpin', { room, seq });
  }
  pins(room: string) {
    return this.request('pins', { room });
  }
  /** A text message's versions: the original, then each edit. */
  versions(room: string, seq: number) {
    return this.request('versions', { room, seq });
  }
  unblock(user: string) {
    return this.request('unblock', { user });
  }
}

export type { AttachmentRef, AuthResult, Message, Pin, Quote, Room, SendResult, ThreadSummary, Version } from '../protocol/schema.js';
