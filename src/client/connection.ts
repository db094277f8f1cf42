// The client's WebSocket: which URL and token to open it with (fixed, or a function asked at
// every connect, e.g. the dispatcher), reconnecting with backoff when it drops, and what the
// server's close codes mean for the next attempt.
import { backoff } from './backoff.js';

/** The subset of the WebSocket API the SDK uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** The server refused the token (or none came in time): retrying the same token is pointless. */
export const CLOSE_UNAUTHORIZED = 4001;
/** The node has many more clients than the others: reconnect at once, through `url`, elsewhere. */
export const CLOSE_REBALANCE = 4009;
/** Closed by the client itself to start over (a failed auth, a silent server). */
export const CLOSE_RETRY = 4000;

export interface SocketEvents {
  /** The socket is open; `token` is the one to authenticate with. */
  open(token: string): void;
  frame(text: string): void;
  /** The socket closed (not by `stop`). */
  closed(code: number): void;
  /** Opening failed before a socket existed (the url or token function threw); a retry is scheduled. */
  failed(): void;
}

export interface SocketOptions {
  url: string | (() => string | Promise<string>);
  token: string | (() => string | Promise<string>);
  WebSocket?: WebSocketCtor;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

export function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

export class Socket {
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly opts: SocketOptions,
    private readonly on: SocketEvents,
  ) {}

  get open(): boolean {
    return this.ws !== null && this.ws.readyState === 1;
  }

  write(text: string): void {
    this.ws?.send(text);
  }

  /** Authenticated: the next drop starts the backoff from its shortest wait again. */
  succeeded(): void {
    this.attempt = 0;
  }

  /** Closes the current socket; `closed` follows and decides about reconnecting. */
  drop(code: number, reason: string): void {
    this.ws?.close(code, reason);
  }

  /** Closes for good: no reconnect. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'bye');
  }

  /** Opens again after the backoff (at once, with a little jitter, when asked to move). */
  reconnect(code?: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const delay =
      code === CLOSE_REBALANCE ? Math.random() * this.opts.reconnectMinMs : backoff(++this.attempt, this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  /**
   * While waiting to reconnect, tries at once instead of after the backoff; false when no
   * reconnect was waiting. A failed attempt backs off as before.
   */
  reconnectNow(): boolean {
    if (this.stopped || !this.timer) return false;
    clearTimeout(this.timer);
    this.timer = null;
    void this.connect();
    return true;
  }

  /** Opens the first socket (again, after `stop`). */
  start(): Promise<void> {
    this.stopped = false;
    this.attempt = 0;
    return this.connect();
  }

  private async connect(): Promise<void> {
    let Ctor = this.opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ctor) {
      const name = 'ws';
      Ctor = ((await import(/* @vite-ignore */ name)) as { default: WebSocketCtor }).default;
    }
    if (this.stopped) return;
    let token: string;
    let url: string;
    try {
      token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
      url = typeof this.opts.url === 'function' ? await this.opts.url() : this.opts.url;
    } catch {
      this.on.failed();
      return;
    }
    if (this.stopped) return;
    const ws = new Ctor(wsUrl(url));
    this.ws = ws;
    ws.onopen = () => this.on.open(token);
    ws.onmessage = (ev) => this.on.frame(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.on.closed(ev.code);
    };
  }
}
