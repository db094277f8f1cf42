// Node-to-node calls: a write for a room this node does not own runs on the room's owner.
// They go straight from node to node, not through Redis, so sends are still stored and
// acknowledged while Redis is down: one WebSocket per peer, on the peer's own HTTP port at
// /cluster, opened by the caller.
//
// Authentication: the upgrade request carries the caller's id, the callee's id, a time, and
// an HMAC-SHA256 of the three under a key derived from the shared cluster secret. The callee
// refuses (401, before the upgrade) a wrong HMAC, a time more than AUTH_SKEW_MS away from its
// clock, or a request meant for another node (a url now used by a different node).
//
// Frames are JSON: a call `{id, op: 'submit', args: {room, op, epoch}}`, its answer
// `{id, ok: true, data}` or `{id, ok: false, error: {code, message, details?}}`. Calls are
// pipelined (answers may come in any order); at most maxInFlight are unanswered per peer, the
// rest wait in a bounded queue. Every call ends within timeoutMs: answered, or `unavailable`
// (timeout, connection lost, peer unreachable). A call that ended `unavailable` after it was
// sent may still have run on the peer: its error says so (`details.outcome: "unknown"`, passed
// on to the client), and retries carry the operation's idempotency key. A lost connection is opened
// again on demand, with exponential backoff while the peer stays unreachable.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ErrorCodes, ParleyError, type ErrorCode } from '../errors.js';
import { backoff } from '../client/backoff.js';
import { NotOwnerError, type NodeRef, type Placement } from './placement.js';
import { outcomeUnknown } from '../protocol/outcome.js';
import { turnCork } from '../cork.js';

export const CLUSTER_PATH = '/cluster';
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};
/** Largest difference between the caller's and the callee's clocks an upgrade may show. */
export const AUTH_SKEW_MS = 60_000;
const H_FROM = 'x-parley-node';
const H_TO = 'x-parley-to';
const H_TIME = 'x-parley-time';
const H_AUTH = 'x-parley-auth';
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** Node-to-node calls (the contract the room log codes against). */
export interface Forwarder {
  /**
   * Runs `op` for `room` on `node` (its handler), resolves with its result; rejects with the
   * ParleyError the owner answered, `unavailable` on timeout / lost connection / overload, or
   * NotOwnerError when the receiver does not own the room in its view (refresh and re-route).
   */
  call(node: NodeRef, room: string, op: unknown): Promise<unknown>;
  /** The receiving side: the room log registers its handler. */
  serve(handler: (room: string, op: unknown) => Promise<unknown>): void;
  close(): Promise<void>;
}

export interface WsForwarderOptions {
  /** This node's id (whom peers must address). */
  self: string;
  /** The secret every node of the cluster shares (at least 16 characters). */
  secret: string;
  /**
   * This node's placement: a call for a room it does not own is answered NotOwnerError (after a
   * refresh when the caller acted on a newer epoch), and calls carry its epoch.
   */
  placement?: Pick<Placement, 'view' | 'isLocal' | 'refresh'>;
  /** Longest a call may take, queueing and connecting included (default 5000 ms). */
  timeoutMs?: number;
  /** Calls unanswered at once per peer (default 256); the same bound applies to each incoming connection. */
  maxInFlight?: number;
  /** Calls waiting for an in-flight slot per peer before more are refused `unavailable` (default 4 × maxInFlight). */
  maxQueued?: number;
  /** Largest frame accepted (default 1 MiB). */
  maxFrameBytes?: number;
  /** Wait before the first reconnect; doubles while the peer stays unreachable (default 100 ms, at most 5000 ms). */
  backoffMs?: number;
  maxBackoffMs?: number;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

/** The key calls are signed with: derived from the shared secret, so it signs nothing else. */
function deriveKey(secret: string): Buffer {
  return createHmac('sha256', secret).update('parley cluster forwarding v1').digest();
}

function sign(key: Buffer, from: string, to: string, time: string): string {
  return createHmac('sha256', key).update(`${from}\n${to}\n${time}`).digest('base64url');
}

/** The headers of an upgrade request from `from` to `to`, signed now. */
export function authHeaders(secret: string, from: string, to: string, now = Date.now()): Record<string, string> {
  const time = String(now);
  return { [H_FROM]: from, [H_TO]: to, [H_TIME]: time, [H_AUTH]: sign(deriveKey(secret), from, to, time) };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

interface Pending {
  id: number;
  frame: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeError(e: unknown): ParleyError {
  if (!isObject(e) || typeof e.code !== 'string' || !(e.code in ErrorCodes)) return new ParleyError('internal', 'a peer answered a malformed error');
  const details = isObject(e.details) ? e.details : undefined;
  if (details?.reason === 'not_owner' && typeof details.room === 'string' && typeof details.epoch === 'number') {
    return new NotOwnerError(details.room, details.epoch);
  }
  return new ParleyError(e.code as ErrorCode, typeof e.message === 'string' ? e.message : undefined, details);
}

function encodeError(err: unknown): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
  if (err instanceof NotOwnerError) return { code: err.code, message: err.message, details: { reason: 'not_owner', room: err.room, epoch: err.epoch } };
  if (err instanceof ParleyError) return err.toJSON();
  return { code: 'internal', message: ErrorCodes.internal };
}

/** The caller's side of one peer: one connection, opened on demand. */
class Peer {
  private ws: WebSocket | null = null;
  /** Corks the connection's socket for this turn's calls, once upgraded (see pump). */
  private cork: (() => void) | null = null;
  private open = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, Pending>();
  private readonly queue: Pending[] = [];
  private failures = 0;
  private retryAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private heard = true;
  closed = false;

  constructor(
    readonly node: NodeRef,
    private readonly o: Required<Omit<WsForwarderOptions, 'placement'>> & { placement?: WsForwarderOptions['placement'] },
  ) {}

  call(room: string, op: unknown, epoch: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'the forwarder is closed'));
    if (this.inFlight.size + this.queue.length >= this.o.maxInFlight + this.o.maxQueued) {
      return Promise.reject(new ParleyError('unavailable', `too many calls waiting for node ${this.node.id}`));
    }
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const p: Pending = {
        id,
        resolve,
        reject,
        frame: JSON.stringify({ id, op: 'submit', args: { room, op, epoch } }),
        timer: setTimeout(() => this.timedOut(p), this.o.timeoutMs),
      };
      this.queue.push(p);
      this.pump();
    });
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  private timedOut(p: Pending): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    const sent = this.inFlight.delete(p.id);
    p.reject(new ParleyError('unavailable', `node ${this.node.id} did not answer within ${this.o.timeoutMs} ms`, sent ? outcomeUnknown() : undefined));
    this.pump();
  }

  /** Sends what the in-flight bound allows; connects first when needed. */
  private pump(): void {
    if (this.closed) return;
    if (!this.open) {
      if (this.queue.length > 0) this.connectSoon();
      return;
    }
    if (this.queue.length === 0 || this.inFlight.size >= this.o.maxInFlight) return;
    // Calls made while this turn's socket reads are handled (sends of many clients) leave in
    // one system call: the socket is corked until the event loop's check phase, which runs
    // right after the reads of this turn.
    this.cork?.();
    while (this.queue.length > 0 && this.inFlight.size < this.o.maxInFlight) {
      const p = this.queue.shift()!;
      this.inFlight.set(p.id, p);
      this.ws!.send(p.frame);
    }
  }

  private connectSoon(): void {
    if (this.ws || this.retryTimer) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, wait);
      return;
    }
    this.connect();
  }

  private connect(): void {
    if (this.closed || this.ws) return;
    let url: URL;
    try {
      url = new URL(CLUSTER_PATH, this.node.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      this.fail(new ParleyError('unavailable', `node ${this.node.id} has no usable url`));
      return;
    }
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url, {
      headers: authHeaders(this.o.secret, this.o.self, this.node.id),
      maxPayload: this.o.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.o.timeoutMs,
      // Masking guards browsers' traffic against caching proxies; between nodes an all-zero key
      // (still a masked frame) spares a random key and a copy of every frame.
      generateMask: zeroMask,
    });
    this.ws = ws;
    ws.on('upgrade', (res: IncomingMessage) => {
      this.cork = turnCork(
        () => [res.socket],
        (uncork) => setImmediate(uncork),
      );
    });
    ws.on('open', () => {
      this.open = true;
      this.failures = 0;
      this.heard = true;
      // A link that died without a close (a frozen or unplugged peer) is found by the ping.
      this.pingTimer = setInterval(
        () => {
          if (!this.heard) {
            ws.terminate();
            return;
          }
          this.heard = false;
          ws.ping();
        },
        Math.max(100, this.o.timeoutMs),
      );
      this.pingTimer.unref();
      this.pump();
    });
    ws.on('pong', () => {
      this.heard = true;
    });
    ws.on('message', (data: RawData) => {
      this.heard = true;
      this.onAnswer(data);
    });
    ws.on('unexpected-response', (_req, res) => {
      ws.terminate();
      this.o.log.warn({ node: this.node.id, status: res.statusCode }, 'a peer refused the cluster connection');
    });
    ws.on('error', (err) => this.o.log.debug({ node: this.node.id, err: err.message }, 'cluster connection error'));
    ws.on('close', () => {
      if (this.ws !== ws) return;
      const wasOpen = this.open;
      this.ws = null;
      this.cork = null;
      this.open = false;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      this.fail(
        wasOpen
          ? new ParleyError('unavailable', `connection to node ${this.node.id} lost`, outcomeUnknown())
          : new ParleyError('unavailable', `node ${this.node.id} unreachable`),
        wasOpen,
      );
    });
  }

  /** Calls sent on a connection that ended fail (they may have run); queued ones wait for the next. */
  private fail(err: ParleyError, wasOpen = false): void {
    for (const p of this.inFlight.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.inFlight.clear();
    if (!wasOpen) this.failures++;
    this.retryAt = Date.now() + (this.failures === 0 ? 0 : backoff(this.failures, this.o.backoffMs, this.o.maxBackoffMs));
    this.pump();
  }

  private onAnswer(data: RawData): void {
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      msg = null;
    }
    if (!isObject(msg) || typeof msg.id !== 'number') {
      this.o.log.warn({ node: this.node.id }, 'a peer sent a malformed answer: closing the connection');
      this.ws?.terminate();
      return;
    }
    const p = this.inFlight.get(msg.id);
    if (!p) return; // it timed out meanwhile
    this.inFlight.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok === true) p.resolve(msg.data);
    else p.reject(decodeError(msg.error));
    this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const err = new ParleyError('unavailable', 'the forwarder is closed');
    for (const p of [...this.queue, ...this.inFlight.values()]) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.queue.length = 0;
    this.inFlight.clear();
    this.ws?.terminate();
    this.ws = null;
  }
}

/** Forwarding over WebSockets on each node's own HTTP port. */
export class WsForwarder implements Forwarder {
  private readonly o: Required<Omit<WsForwarderOptions, 'placement'>> & { placement?: WsForwarderOptions['placement'] };
  private readonly key: Buffer;
  private readonly peers = new Map<string, Peer>();
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private handler: ((room: string, op: unknown) => Promise<unknown>) | null = null;
  private closed = false;

  constructor(opts: WsForwarderOptions) {
    if (!NODE_ID.test(opts.self)) throw new ParleyError('invalid', 'node id must be 1 to 64 of A-Z a-z 0-9 _ . -', { field: 'self' });
    if (typeof opts.secret !== 'string' || opts.secret.length < 16)
      throw new ParleyError('invalid', 'the cluster secret must have at least 16 characters', { field: 'secret' });
    const maxInFlight = opts.maxInFlight ?? 256;
    this.o = {
      timeoutMs: 5000,
      maxFrameBytes: 1 << 20,
      backoffMs: 100,
      maxBackoffMs: 5000,
      ...opts,
      maxInFlight,
      maxQueued: opts.maxQueued ?? 4 * maxInFlight,
    };
    for (const k of ['timeoutMs', 'maxInFlight', 'maxQueued', 'maxFrameBytes', 'backoffMs', 'maxBackoffMs'] as const) {
      const v = this.o[k];
      if (!Number.isInteger(v) || v < (k === 'maxQueued' ? 0 : 1)) throw new ParleyError('invalid', `${k} must be a positive integer`, { field: k });
    }
    this.key = deriveKey(opts.secret);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.o.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  }

  call(node: NodeRef, room: string, op: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'the forwarder is closed'));
    let peer = this.peers.get(node.id);
    if (peer && peer.node.url !== node.url) {
      peer.close();
      peer = undefined;
    }
    if (!peer) {
      peer = new Peer(node, this.o);
      this.peers.set(node.id, peer);
    }
    return peer.call(room, op, this.o.placement?.view().epoch ?? 0);
  }

  /** Calls sent to `nodeId` and not answered yet (for metrics and tests). */
  inFlight(nodeId: string): number {
    return this.peers.get(nodeId)?.inFlightCount ?? 0;
  }

  serve(handler: (room: string, op: unknown) => Promise<unknown>): void {
    this.handler = handler;
  }

  /**
   * Takes an HTTP upgrade request for /cluster (returns false for other paths, to be handled by
   * the next taker). Refuses it with 401 unless it is signed with the cluster secret, recent,
   * and meant for this node.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== CLUSTER_PATH) return false;
    const from = header(req, H_FROM);
    const to = header(req, H_TO);
    const time = header(req, H_TIME);
    const auth = header(req, H_AUTH);
    const refuse = (status: string, why: string) => {
      this.o.log.warn({ from, why }, 'cluster connection refused');
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return true;
    };
    if (this.closed) return refuse('503 Service Unavailable', 'closing');
    if (!from || !NODE_ID.test(from) || !to || !time || !/^[0-9]{1,16}$/.test(time) || !auth)
      return refuse('401 Unauthorized', 'missing or malformed credentials');
    const expected = Buffer.from(sign(this.key, from, to, time));
    const given = Buffer.from(auth);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse('401 Unauthorized', 'wrong signature');
    if (Math.abs(Date.now() - Number(time)) > AUTH_SKEW_MS) return refuse('401 Unauthorized', 'signature too old or clocks apart');
    if (to !== this.o.self) return refuse('421 Misdirected Request', `meant for node ${to}`);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, from));
    return true;
  }

  private accept(ws: WebSocket, socket: Duplex, from: string): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    this.sockets.add(ws);
    let running = 0;
    /** Calls waiting to be handed over behind one catching up with a newer view; the last of them. */
    let behind = 0;
    let order: Promise<void> = Promise.resolve();
    // The answers of one group commit are written in one turn: corked, they leave in one
    // system call instead of one each.
    const cork = turnCork(
      () => [socket],
      (uncork) => process.nextTick(uncork),
    );
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('error', (err) => this.o.log.debug({ from, err: err.message }, 'cluster connection error'));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      let msg: unknown;
      try {
        msg = isBinary ? null : JSON.parse(data.toString());
      } catch {
        msg = null;
      }
      const id = isObject(msg) && Number.isSafeInteger(msg.id) ? (msg.id as number) : null;
      if (id === null) {
        ws.close(1008, 'malformed frame');
        return;
      }
      const answer = (body: { ok: true; data: unknown } | { ok: false; error: unknown }) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        cork();
        ws.send(JSON.stringify({ id, ...body }));
      };
      const m = msg as Record<string, unknown>;
      const args = m.args;
      if (
        m.op !== 'submit' ||
        !isObject(args) ||
        typeof args.room !== 'string' ||
        args.room === '' ||
        !('op' in args) ||
        !Number.isSafeInteger(args.epoch) ||
        (args.epoch as number) < 0
      ) {
        answer({ ok: false, error: encodeError(new ParleyError('invalid', 'a call is {id, op: "submit", args: {room, op, epoch}}')) });
        return;
      }
      if (running >= this.o.maxInFlight) {
        answer({ ok: false, error: encodeError(new ParleyError('unavailable', 'too many calls in flight on this connection')) });
        return;
      }
      running++;
      // Calls are handed to the room log in the order they came: one that must first catch up
      // with the caller's newer view holds back those after it (a send may otherwise overtake
      // an earlier send of the same connection).
      let handled: Promise<unknown>;
      const room = args.room;
      const op = args.op;
      const epoch = args.epoch as number;
      if (behind === 0 && !this.mustRefresh(room, epoch)) handled = this.run(room, op);
      else {
        behind++;
        const turn = order.then(() => this.catchUp(room, epoch));
        order = turn.then(
          () => undefined,
          () => undefined,
        );
        handled = turn.then(
          () => {
            behind--;
            return this.run(room, op);
          },
          (err: unknown) => {
            behind--;
            throw err;
          },
        );
      }
      handled
        .then(
          (data) => answer({ ok: true, data: data === undefined ? null : data }),
          (err: unknown) => answer({ ok: false, error: encodeError(err) }),
        )
        .finally(() => {
          running--;
        });
    });
  }

  /** Whether a call acted on a newer view than this node's for a room it does not own here. */
  private mustRefresh(room: string, epoch: number): boolean {
    const placement = this.o.placement;
    return placement !== undefined && !placement.isLocal(room) && epoch > placement.view().epoch;
  }

  private async catchUp(room: string, epoch: number): Promise<void> {
    if (this.mustRefresh(room, epoch)) await this.o.placement!.refresh();
  }

  /** Hands a call to the room log now (synchronously), or refuses it when this node does not own the room. */
  private run(room: string, op: unknown): Promise<unknown> {
    const placement = this.o.placement;
    if (placement && !placement.isLocal(room)) return Promise.reject(new NotOwnerError(room, placement.view().epoch));
    if (!this.handler) return Promise.reject(new ParleyError('unavailable', 'this node does not take forwarded calls yet'));
    return this.handler(room, op);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }
}
