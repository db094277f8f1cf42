// WebSocket transport on /ws: takes the HTTP upgrades, turns frames into service commands and
// writes the replies. It holds no business rules: commands run through the command runner
// (service/runner.ts) in arrival order up to their admission, and the service decides. Each
// connection authenticates with an `auth` frame (or ?token= on the URL); connection.ts holds
// a connection's write path, heartbeat.ts spreads the pings over the interval.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError, toParleyError } from '../../errors.js';
import { CLOSE_SLOW_CONSUMER } from '../../hub/index.js';
import type { Metrics } from '../../observability/metrics.js';
import { encodeEvent, parseFrame } from '../../protocol/frames.js';
import type { CommandFrame } from '../../protocol/schema.js';
import type { Service } from '../../service/index.js';
import { StallWatch, watchExpiry, type CommandRunner, type TransportSession } from '../../service/runner.js';
import { Connection } from './connection.js';
import { HeartbeatWheel } from './heartbeat.js';

/** The token was refused (invalid, expired) or never sent: a client must not retry it as is. */
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_GOING_AWAY = 1001;
/** The server could not finish the authentication in time (a slow store or bus): retry later. */
export const CLOSE_TRY_AGAIN = 1013;
/** This node has many more clients than the others: reconnect, through the dispatcher, elsewhere. */
export const CLOSE_REBALANCE = 4009;
/** How long the presence of a connection asked to move stays, while its client reconnects elsewhere. */
const REBALANCE_PRESENCE_MS = 5000;
/** A user asked to move that authenticates here again within this long came back (see `returned`). */
const RETURN_WINDOW_MS = 30_000;
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

export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Connection>();
  private readonly pendingAuth = new Set<Connection>();
  /** Users asked to move (rebalancing) in the last RETURN_WINDOW_MS, and when; how many came back. */
  private readonly askedToMove = new Map<string, number>();
  private returnedCount = 0;
  private readonly authSweeper: NodeJS.Timeout;
  private readonly heartbeat: HeartbeatWheel<Connection>;
  private readonly stalls = new StallWatch();

  constructor(
    private readonly service: Pick<Service, 'attach' | 'detach' | 'connections'>,
    private readonly runner: CommandRunner,
    private readonly verify: Verifier,
    private readonly opts: WsOptions,
    private readonly log: Logger,
    private readonly metrics?: Pick<Metrics, 'overload' | 'error' | 'refused'>,
  ) {
    // Frames up to 16x the limit are read and answered with `too_large`; beyond that ws
    // closes the connection with 1009 without buffering the rest.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.frameBytes * 16, perMessageDeflate: false, clientTracking: false });
    this.heartbeat = new HeartbeatWheel(opts.heartbeatMs, (c) => this.beat(c));
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
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, req, url.searchParams.get('token')));
    });
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private accept(ws: WebSocket, socket: Duplex, req: IncomingMessage, token: string | null): void {
    const c = new Connection(ws, socket, req.socket.remoteAddress ?? '', this.opts.slowConsumerBytes, (conn) => this.overloaded(conn, 'slow_consumer'));
    this.conns.add(c);
    this.heartbeat.add(c);
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('message', (data, isBinary) => this.onFrame(c, data, isBinary));
    ws.on('close', () => void this.onClose(c));
    ws.on('error', (err) => this.log.debug({ err, conn: c.id }, 'socket error'));
    // One sweep over the connections still authenticating replaces a timer per connection.
    c.authDeadline = Date.now() + this.opts.authTimeoutMs;
    this.pendingAuth.add(c);
    if (token) void c.lane.submit(() => this.auth(c, { id: 0, cmd: 'auth', token }, true));
  }

  /**
   * Closes a connection that holds more than its limits allow (4008, as the hub closes a slow
   * consumer); the client reconnects and resumes from its last seq.
   */
  private overloaded(c: Connection, reason: 'slow_consumer' | 'in_flight'): void {
    if (c.closed) return;
    this.log.warn({ conn: c.id, user: c.user, reason, inFlight: c.inFlight, buffered: c.bufferedAmount() }, 'closing an overloaded connection');
    this.metrics?.overload('ws', reason);
    c.close(
      CLOSE_SLOW_CONSUMER,
      reason === 'slow_consumer' ? 'slow consumer: resume from your last seq' : `more than ${this.opts.maxInFlight} commands awaiting a reply`,
    );
  }

  private onFrame(c: Connection, data: RawData, isBinary: boolean): void {
    // A closing connection runs nothing more: what it sent is dropped with it.
    if (c.closed) return;
    c.alive = true;
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
    const replied = (): void => {
      c.inFlight--;
    };
    // Read now, but sent while this node was stopped? Noted as the frame is read, before it waits in the lane.
    const backlog = this.stalls.backlog();
    void c.lane.submit((admit) => (frame.cmd === 'auth' ? this.auth(c, frame, false) : this.run(c, frame, admit, backlog)).finally(replied));
  }

  /** Runs a command; resolves once its reply is written (or dropped with the connection). */
  private run(c: Connection, frame: CommandFrame, admit: () => void, backlog: boolean): Promise<void> {
    if (c.closed) return Promise.resolve();
    if (!c.identity) {
      this.reply(c, frame.id, new ParleyError('unauthorized', 'send an "auth" frame first'));
      return Promise.resolve();
    }
    const session: TransportSession = backlog ? { user: c.identity, conn: c, admit, via: 'ws', backlog } : { user: c.identity, conn: c, admit, via: 'ws' };
    return this.runner.exec(session, frame).then(
      (data) => this.reply(c, frame.id, null, data),
      (err: unknown) => this.fail(c, frame.id, err),
    );
  }

  private async auth(c: Connection, frame: CommandFrame<'auth'>, fromUrl: boolean): Promise<void> {
    if (c.identity) {
      this.reply(c, frame.id, new ParleyError('conflict', 'already authenticated'));
      return;
    }
    c.authing = true;
    try {
      await this.authenticate(c, frame, fromUrl);
    } finally {
      c.authing = false;
    }
  }

  private async authenticate(c: Connection, frame: CommandFrame<'auth'>, fromUrl: boolean): Promise<void> {
    let identity: Identity;
    try {
      identity = await this.verify(frame.token);
    } catch (err) {
      const e = toParleyError(err);
      // 4001 says the token is bad; a verifier that could not check it (keys unreachable) is not that.
      if (fromUrl) this.goodbye(c, e.code === 'unavailable' || e.code === 'internal' ? CLOSE_TRY_AGAIN : CLOSE_UNAUTHORIZED, e.code, e.message);
      else this.reply(c, frame.id, e);
      return;
    }
    if (c.closed) return;
    try {
      // Held until the connection closes (onClose), or given back if attaching fails.
      c.releaseSlot = this.service.connections.hold(identity.id);
    } catch (err) {
      const e = toParleyError(err);
      this.metrics?.refused('ws', 'per_user');
      this.reply(c, frame.id, e);
      this.goodbye(c, CLOSE_SLOW_CONSUMER, e.code, e.message);
      return;
    }
    c.user = identity.id;
    c.session = identity.session;
    try {
      const result = await this.service.attach(identity, c, frame.resume);
      c.identity = identity;
      this.cameBack(identity.id);
      if (c.closed) {
        await this.service.detach(identity, c);
        return;
      }
      this.reply(c, frame.id, null, result);
    } catch (err) {
      c.releaseSlot?.();
      c.releaseSlot = null;
      const close = this.runner.closeCodeFor(err);
      if (close !== null) {
        const e = toParleyError(err);
        this.reply(c, frame.id, e);
        this.goodbye(c, close, e.code, e.message);
      } else this.fail(c, frame.id, err);
      return;
    }
    this.pendingAuth.delete(c);
    c.stopExpiry = watchExpiry(identity, () => this.goodbye(c, CLOSE_UNAUTHORIZED, 'unauthorized', 'token expired'));
  }

  /**
   * Closes connections that did not authenticate in time: with 4001 those that sent no token,
   * with 1013 (try again later) those whose token the server is still checking — the delay is
   * the server's (a slow store or bus), and 4001 would tell a client its token is bad.
   */
  private sweepAuth(): void {
    const now = Date.now();
    for (const c of this.pendingAuth) {
      if (c.identity) this.pendingAuth.delete(c);
      else if (now >= c.authDeadline) {
        this.pendingAuth.delete(c);
        if (c.authing) this.goodbye(c, CLOSE_TRY_AGAIN, 'unavailable', 'authentication is taking too long: try again later');
        else this.goodbye(c, CLOSE_UNAUTHORIZED, 'unauthorized', 'authentication timed out');
      }
    }
  }

  /**
   * Asks up to `n` authenticated clients connected for at least `minAgeMs` to reconnect
   * elsewhere (close code 4009); resolves how many were asked. Picked at random, so no
   * client is always the one that moves.
   */
  shed(n: number, minAgeMs: number): number {
    const now = Date.now();
    for (const [user, at] of this.askedToMove) if (now - at > RETURN_WINDOW_MS) this.askedToMove.delete(user);
    const candidates = [...this.conns].filter((c) => c.identity && !c.closed && now - c.openedAt >= minAgeMs);
    let asked = 0;
    while (asked < n && candidates.length > 0) {
      const i = Math.floor(Math.random() * candidates.length);
      const c = candidates[i]!;
      candidates[i] = candidates[candidates.length - 1]!;
      candidates.pop();
      c.rebalanced = true;
      this.askedToMove.set(c.identity!.id, now);
      this.goodbye(c, CLOSE_REBALANCE, 'unavailable', 'this node is busier than the others: reconnect elsewhere');
      asked++;
    }
    return asked;
  }

  /** Clients asked to move that came back to this node since the last call (a fixed address, say). */
  returned(): number {
    const n = this.returnedCount;
    this.returnedCount = 0;
    return n;
  }

  private cameBack(user: string): void {
    if (this.askedToMove.size === 0) return;
    const at = this.askedToMove.get(user);
    if (at === undefined) return;
    this.askedToMove.delete(user);
    if (Date.now() - at <= RETURN_WINDOW_MS) this.returnedCount++;
  }

  private fail(c: Connection, id: string | number | null, err: unknown): void {
    const e = toParleyError(err);
    if (e.code === 'internal') this.log.error({ err, conn: c.id }, 'command failed');
    this.reply(c, id, e);
  }

  private reply(c: Connection, id: string | number | null, error: ParleyError | null, data?: unknown): void {
    // Errors of commands were counted by the runner; these are the ones outside any command.
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
    this.heartbeat.remove(c);
    c.stopExpiry?.();
    c.releaseSlot?.();
    this.conns.delete(c);
    if (c.identity) {
      try {
        await this.service.detach(c.identity, c, c.rebalanced ? REBALANCE_PRESENCE_MS : 0);
      } catch (err) {
        this.log.warn({ err, conn: c.id }, 'detach failed');
      }
    }
  }

  /**
   * A connection's heartbeat, once per interval: one that sent nothing (no frame, no pong)
   * since the previous visit is terminated; the others are pinged.
   */
  private beat(c: Connection): void {
    if (!c.alive) {
      c.ws.terminate();
      return;
    }
    c.alive = false;
    c.ws.ping();
  }

  /** Closes every connection with 1001 so clients reconnect elsewhere, and stops. */
  async close(): Promise<void> {
    this.heartbeat.stop();
    clearInterval(this.authSweeper);
    this.stalls.close();
    for (const c of this.conns) this.goodbye(c, CLOSE_GOING_AWAY, 'unavailable', 'server shutting down');
    const deadline = Date.now() + 3000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.terminate();
    this.wss.close();
  }
}
