// One WebSocket connection as the hub and the command runner see it: its user, its command
// lane, and the one write path every frame takes (shared events and replies alike), which
// counts unsent bytes against the slow-consumer limit and corks each turn's writes into one
// system call.
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Identity } from '../../auth/jwt.js';
import type { Conn, SharedFrame } from '../../hub/index.js';
import { Lane } from '../../service/runner.js';
import { textFrame, textFrameHeader } from './frame.js';

/** Connection ids: unique per process without a UUID string per connection. */
const NODE_TAG = randomBytes(4).toString('base64url') + '.';
let connCounter = 0;

export class Connection implements Conn {
  readonly id = `${NODE_TAG}${(++connCounter).toString(36)}`;
  user = '';
  identity: Identity | null = null;
  /** The account session of the token, set with `user`. */
  session: string | undefined = undefined;
  /** Something arrived (a frame or a pong) since the last heartbeat visit. */
  alive = true;
  /** Commands of this connection run in arrival order up to admission. */
  readonly lane = new Lane();
  /** Commands received whose reply is not written yet. */
  inFlight = 0;
  /** When an unauthenticated connection is closed (ms since epoch). */
  authDeadline = 0;
  /** An auth frame is being checked: the wait is the server's, not the client's. */
  authing = false;
  /** Asked to reconnect elsewhere (4009): its presence outlives it a moment. */
  rebalanced = false;
  readonly openedAt = Date.now();
  /** Cancels the token-expiry watch. */
  stopExpiry: (() => void) | null = null;
  /** Gives back the user's connection slot (limits.connectionsPerUser), once authenticated. */
  releaseSlot: (() => void) | null = null;
  closed = false;
  private corked = false;
  /** Unsent bytes when this turn's writes began to be corked, and reply bytes corked since. */
  private unreadBefore = 0;
  private repliedThisTurn = 0;

  /**
   * `socket` is the one the upgrade came on, which ws writes its own frames to. Every frame of
   * ours is written to it directly, already framed, so one count covers all of them. This is
   * safe because permessage-deflate is off (the server never negotiates it): ws's Sender then
   * writes synchronously (its close frame too) and never holds frames back that these could
   * overtake.
   */
  constructor(
    readonly ws: WebSocket,
    private readonly socket: Duplex,
    readonly remote: string,
    private readonly limit: number,
    private readonly onOverflow: (c: Connection) => void,
  ) {}

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

const uncorkQueue: Connection[] = [];
function uncorkAll(): void {
  const batch = uncorkQueue.splice(0);
  for (const c of batch) c.uncork();
}
