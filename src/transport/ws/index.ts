// WebSocket transport on /ws: turns frames into service commands and writes replies. It holds
// no business rules. Each connection authenticates with an `auth` frame (or ?token= on the
// URL), then its commands run in arrival order up to the point their writes are queued.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError, toParleyError } from '../../errors.js';
import type { Conn, SharedFrame } from '../../hub/index.js';
import { textFrame, textFrameHeader } from './frame.js';
import type { Metrics } from '../http/metrics.js';
import { encodeEvent, parseFrame } from '../../protocol/frames.js';
import type { CommandFrame } from '../../protocol/schema.js';
import { CLOSE_BANNED, type Service } from '../../service/index.js';
import { CLOSE_SLOW_CONSUMER } from '../../hub/index.js';

export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_GOING_AWAY = 1001;
export const WS_PATH = '/ws';

export interface WsOptions {
  frameBytes: number;
  authTimeoutMs: number;
  heartbeatMs: number;
  /** Unsent bytes (events and replies alike) after which a connection is closed with 4008. */
  slowConsumerBytes: number;
  /** Commands a connection may have awaiting their reply; one more closes it with 4008. */
  maxInFlight: number;
}

interface Stats { connections: number; framesIn: number }

class Connection implements Conn {
  readonly id = `${NODE_TAG}${(++connCounter).toString(36)}`;
  user = '';
  identity: Identity | null = null;
  /** The account session of the token, set with `user`. */
  session: string | undefined = undefined;
  alive = true;
  /** Commands of this connection run in arrival order up to admission. */
  tail: Promise<void> = Promise.resolve();
  /** Commands received whose reply is not written yet. */
  inFlight = 0;
  /** When an unauthenticated connection is closed (ms since epoch). */
  authDeadline = 0;
  /** When the token expires (ms since epoch), and the timer armed once that is near. */
  expiresAt = 0;
  expiryTimer: NodeJS.Timeout | null = null;
  closed = false;
  private readonly socket: Duplex;
  private corked = false;
  /** Unsent bytes when this turn's writes began to be corked, and reply bytes corked since. */
  private unreadBefore = 0;
  private repliedThisTurn = 0;
  constructor(readonly ws: WebSocket, readonly remote: string, private readonly limit: number, private readonly onOverflow: (c: Connection) => void) {
    // ws keeps its socket private; every frame (shared events and replies) is written to it
    // directly, already framed, so one count covers all of them. This is safe because
    // permessage-deflate is off (the server never negotiates it): ws's Sender then writes
    // synchronously (its close frame too) and never holds frames back that these could overtake.
    this.socket = (ws as unknown as { _socket: Duplex })._socket;
  }
  send(frame: SharedFrame): void {
    if (!this.writable()) return;
    frame.wire ??= textFrame(frame.payload);
    this.socket.write(frame.wire);
  }
  /** Replies and other one-off frames: header and payload, corked into one system call. */
  reply(data: string): void {
    if (!this.writable()) return;
    const payload = Buffer.from(data);
    const header = textFrameHeader(payload.length);
    this.repliedThisTurn += header.length + payload.length;
    this.socket.write(header);
    this.socket.write(payload);
  }
  /**
   * Whether a frame may be written now; the one check every frame passes. Once more than the
   * slow-consumer limit waits unsent the connection is closed instead: a peer that does not
   * read cannot make the server hold more than that (and one frame) for it, whether the bytes
   * are events or replies to its own commands.
   */
  private writable(): boolean {
    if (this.closed || this.ws.readyState !== 1 || !this.socket.writable) return false;
    // Bytes corked in this turn have not been offered to the kernel yet. What counts is what the
    // peer left unread before it, plus the replies to its own commands: a burst of events shared
    // with every follower (one group commit's fan-out) is not this peer's doing, but pipelined
    // commands answered in one turn are.
    if ((this.corked ? this.unreadBefore + this.repliedThisTurn : this.socket.writableLength) > this.limit) {
      this.onOverflow(this);
      return false;
    }
    this.cork();
    return true;
  }
  /**
   * Writes made by one callback and the promise continuations it sets off (a group commit's
   * whole fan-out and its replies, say) leave in one system call per socket. The uncork runs
   * from the next-tick queue, which Node drains only once the microtask queue is empty: right
   * after that work, not after the rest of the event-loop turn (a setImmediate queued from a
   * commit would wait for every socket read of the next poll phase).
   */
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.unreadBefore = this.socket.writableLength;
    this.repliedThisTurn = 0;
    this.socket.cork();
    uncorkQueue.push(this);
    if (uncorkQueue.length === 1) process.nextTick(uncorkAll);
  }
  uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }
  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
    // A peer that does not answer the close handshake is cut off, and what was queued for it
    // is released.
    const t = setTimeout(() => this.ws.terminate(), 2000);
    t.unref();
  }
}

/** Connection ids: unique per process without a UUID string per connection. */
const NODE_TAG = randomBytes(4).toString('base64url') + '.';
let connCounter = 0;

const uncorkQueue: Connection[] = [];
function uncorkAll(): void {
  const batch = uncorkQueue.splice(0);
  for (const c of batch) c.uncork();
}

export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Connection>();
  private readonly pendingAuth = new Set<Connection>();
  private readonly authSweeper: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  readonly stats: Stats = { connections: 0, framesIn: 0 };

  constructor(
    private readonly service: Service,
    private readonly verify: Verifier,
    private readonly opts: WsOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    // Frames up to 16x the limit are read and answered with `too_large`; beyond that ws
    // closes the connection with 1009 without buffering the rest.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.frameBytes * 16, perMessageDeflate: false, clientTracking: false });
    this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
    this.heartbeat.unref();
    this.authSweeper = setInterval(() => this.sweepAuth(), Math.max(50, Math.min(1000, opts.authTimeoutMs / 4)));
    this.authSweeper.unref();
  }

  /**
   * Takes over HTTP upgrade requests for the WebSocket path of `server`. `other` may take
   * upgrades for other paths first (it returns true when it did).
   */
  attach(server: Server, other?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (other?.(req, socket, head)) return;
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== WS_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, url.searchParams.get('token')));
    });
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private accept(ws: WebSocket, req: IncomingMessage, token: string | null): void {
    const c = new Connection(ws, req.socket.remoteAddress ?? '', this.opts.slowConsumerBytes, (conn) => this.overloaded(conn, 'slow_consumer'));
    this.conns.add(c);
    this.stats.connections = this.conns.size;
    ws.on('pong', () => { c.alive = true; });
    ws.on('message', (data, isBinary) => this.onFrame(c, data, isBinary));
    ws.on('close', () => void this.onClose(c));
    ws.on('error', (err) => this.log.debug({ err, conn: c.id }, 'socket error'));
    // One sweep over the connections still authenticating replaces a timer per connection.
    c.authDeadline = Date.now() + this.opts.authTimeoutMs;
    this.pendingAuth.add(c);
    if (token) c.tail = c.tail.then(() => this.auth(c, { id: 0, cmd: 'auth', token }, true));
  }

  /**
   * Closes a connection that holds more than its limits allow (4008, as the hub closes a slow
   * consumer); the client reconnects and resumes from its last seq.
   */
  private overloaded(c: Connection, reason: 'slow_consumer' | 'in_flight'): void {
    if (c.closed) return;
    this.log.warn({ conn: c.id, user: c.user, reason, inFlight: c.inFlight, buffered: c.bufferedAmount() }, 'closing an overloaded connection');
    this.metrics?.overload('ws', reason);
    c.close(CLOSE_SLOW_CONSUMER, reason === 'slow_consumer'
      ? 'slow consumer: resume from your last seq'
      : `more than ${this.opts.maxInFlight} commands awaiting a reply`);
  }

  private onFrame(c: Connection, data: RawData, isBinary: boolean): void {
    // A closing connection runs nothing more: what it sent is dropped with it.
    if (c.closed) return;
    c.alive = true;
    this.stats.framesIn++;
    const buf = data as Buffer;
    if (buf.length > this.opts.frameBytes) {
      this.reply(c, null, new ParleyError('too_large', `frame exceeds ${this.opts.frameBytes} bytes`, { limit: this.opts.frameBytes }));
      return;
    }
    if (isBinary) {
      this.reply(c, null, new ParleyError('invalid', 'binary frames are not accepted; send JSON text'));
      return;
    }
    const parsed = parseFrame(buf.toString('utf8'));
    if (!parsed.frame) {
      this.reply(c, parsed.id, parsed.error!);
      return;
    }
    const frame = parsed.frame;
    if (c.inFlight >= this.opts.maxInFlight) {
      this.overloaded(c, 'in_flight');
      return;
    }
    c.inFlight++;
    const replied = (): void => { c.inFlight--; };
    c.tail = c.tail.then(() => (frame.cmd === 'auth'
      ? this.auth(c, frame as CommandFrame<'auth'>, false).finally(replied)
      : this.run(c, frame, replied)));
  }

  /**
   * Starts a command; resolves when it is admitted (writes queued) or has finished.
   * `replied` runs once its reply is written (or dropped with the connection).
   */
  private run(c: Connection, frame: CommandFrame, replied: () => void): Promise<void> {
    if (c.closed) {
      replied();
      return Promise.resolve();
    }
    if (!c.identity) {
      this.reply(c, frame.id, new ParleyError('unauthorized', 'send an "auth" frame first'));
      replied();
      return Promise.resolve();
    }
    let admit!: () => void;
    const admitted = new Promise<void>((r) => { admit = r; });
    const t0 = performance.now();
    const done = this.service.exec({ user: c.identity, conn: c, admit }, frame).then(
      (data) => {
        this.metrics?.command(frame.cmd, 'ws', performance.now() - t0);
        if (frame.cmd === 'post') this.metrics?.received('ws', (data as { posted: unknown[] }).posted.length);
        this.reply(c, frame.id, null, data);
      },
      (err) => {
        this.metrics?.command(frame.cmd, 'ws', performance.now() - t0, toParleyError(err).code);
        this.fail(c, frame.id, err);
      },
    ).finally(replied);
    return Promise.race([admitted, done]);
  }

  private async auth(c: Connection, frame: CommandFrame<'auth'>, fromUrl: boolean): Promise<void> {
    if (c.identity) {
      this.reply(c, frame.id, new ParleyError('conflict', 'already authenticated'));
      return;
    }
    let identity: Identity;
    try {
      identity = await this.verify(frame.token);
    } catch (err) {
      const e = toParleyError(err);
      if (fromUrl) this.goodbye(c, CLOSE_UNAUTHORIZED, e.code, e.message);
      else this.reply(c, frame.id, e);
      return;
    }
    if (c.closed) return;
    c.user = identity.id;
    c.session = identity.session;
    try {
      const result = await this.service.attach(identity, c, frame.resume);
      c.identity = identity;
      if (c.closed) {
        await this.service.detach(identity, c);
        return;
      }
      this.reply(c, frame.id, null, result);
    } catch (err) {
      const e = toParleyError(err);
      if (e.details?.reason === 'banned') {
        this.reply(c, frame.id, e);
        this.goodbye(c, CLOSE_BANNED, e.code, e.message);
      } else this.fail(c, frame.id, err);
      return;
    }
    this.pendingAuth.delete(c);
    if (identity.exp !== undefined) {
      c.expiresAt = identity.exp * 1000;
      this.armExpiry(c);
    }
  }

  /** Arms the expiry timer once the token expires within a heartbeat (checked at each beat). */
  private armExpiry(c: Connection): void {
    if (c.expiryTimer || c.expiresAt === 0 || c.closed) return;
    const ms = c.expiresAt - Date.now();
    if (ms > this.opts.heartbeatMs) return;
    c.expiryTimer = setTimeout(() => this.goodbye(c, CLOSE_UNAUTHORIZED, 'unauthorized', 'token expired'), Math.max(0, ms));
    c.expiryTimer.unref();
  }

  private sweepAuth(): void {
    const now = Date.now();
    for (const c of this.pendingAuth) {
      if (c.identity) this.pendingAuth.delete(c);
      else if (now >= c.authDeadline) {
        this.pendingAuth.delete(c);
        this.goodbye(c, CLOSE_UNAUTHORIZED, 'unauthorized', 'authentication timed out');
      }
    }
  }

  private fail(c: Connection, id: string | number | null, err: unknown): void {
    const e = toParleyError(err);
    if (e.code === 'internal') this.log.error({ err, conn: c.id }, 'command failed');
    this.reply(c, id, e);
  }

  private reply(c: Connection, id: string | number | null, error: ParleyError | null, data?: unknown): void {
    if (error && (id === null || !c.identity)) this.metrics?.error(error.code, 'ws');
    const frame = error ? { id, ok: false, error: error.toJSON() } : { id, ok: true, data };
    c.reply(JSON.stringify(frame));
  }

  private goodbye(c: Connection, code: number, reason: string, message: string): void {
    c.send({ payload: encodeEvent('goodbye', { code: reason, message }) });
    c.close(code, message.slice(0, 120));
  }

  private async onClose(c: Connection): Promise<void> {
    c.closed = true;
    this.pendingAuth.delete(c);
    if (c.expiryTimer) clearTimeout(c.expiryTimer);
    this.conns.delete(c);
    this.stats.connections = this.conns.size;
    if (c.identity) {
      try {
        await this.service.detach(c.identity, c);
      } catch (err) {
        this.log.warn({ err, conn: c.id }, 'detach failed');
      }
    }
  }

  private beat(): void {
    for (const c of this.conns) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
      if (c.expiresAt !== 0) this.armExpiry(c);
    }
  }

  /** Closes every connection with 1001 so clients reconnect elsewhere, and stops. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.authSweeper);
    for (const c of this.conns) this.goodbye(c, CLOSE_GOING_AWAY, 'unavailable', 'server shutting down');
    const deadline = Date.now() + 3000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
    this.wss.close();
  }
}
