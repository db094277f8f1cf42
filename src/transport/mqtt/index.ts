// MQTT transport (aedes) on TCP and on a WebSocket path of the HTTP port, speaking the Chat21
// inbox pattern (docs/chat21.md). Clients authenticate with a JWT as the password; every
// subscribe and publish is checked against the topic ACL (topics.ts); a publish becomes a
// Chat21Service call run in arrival order per client. Deliveries never go from one client to
// another here: each user's inbox is a hub connection (inbox.ts) fed by the bus.
import { createServer, type Server } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Aedes, type Client, type PublishPacket, type Subscription, type AuthenticateError } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from 'pino';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError, toParleyError } from '../../errors.js';
import { ConversationUpdate, MessageUpdate, OutgoingMessage, check, parseJson } from '../../protocol/chat21.js';
import type { Chat21Service } from '../../service/chat21.js';
import type { Service } from '../../service/index.js';
import type { Metrics } from '../http/metrics.js';
import { Inbox } from './inbox.js';
import { guardPackets } from './packet-guard.js';
import { SERVER_SUFFIXES, inboxBase, mayRead, parsePublish, type PublishOp } from './topics.js';


/** Where Chat21 clients expect MQTT over WebSocket. */
const CHAT21_WS_PATH = '/ws';
const asksForMqtt = (req: IncomingMessage): boolean =>
  String(req.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => /^mqtt(v3\.1)?$/i.test(p.trim()));

export interface MqttOptions {
  host: string;
  port: number;
  /** MQTT over WebSocket on the HTTP port; '' for none. */
  wsPath: string;
  maxPayloadBytes: number;
}

interface ClientState {
  identity: Identity;
  /** Publishes of this client run in arrival order up to admission. */
  tail: Promise<void>;
  expiry: NodeJS.Timeout | null;
}

interface UserInbox {
  inbox: Inbox;
  clients: Set<Client>;
  attached: Promise<void>;
}

const NODE_TAG = randomBytes(4).toString('base64url') + '.';
const OP_COMMAND: Record<PublishOp['op'], string> = {
  outgoing: 'send', receipt: 'read', conversation: 'read', archive: 'archive', presence: 'presence', unknown: 'unknown',
};

function authError(message: string, code: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

export class MqttTransport {
  private broker!: Aedes;
  private tcp: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly states = new WeakMap<Client, ClientState>();
  private readonly inboxes = new Map<string, UserInbox>();
  /** Detaches in flight, awaited at shutdown. */
  private readonly pending = new Set<Promise<void>>();
  private readonly app: string;

  constructor(
    private readonly service: Pick<Service, 'attach' | 'detach' | 'checkNotBanned'>,
    private readonly chat21: Chat21Service,
    private readonly verify: Verifier,
    private readonly opts: MqttOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.app = chat21.appId;
  }

  get connectionCount(): number {
    return this.broker?.connectedClients ?? 0;
  }

  /** Starts the broker and the TCP listener; resolves with the bound TCP port. */
  async listen(): Promise<number> {
    this.broker = await Aedes.createBroker({
      heartbeatInterval: 60_000,
      authenticate: (c, _u, p, done) => this.authenticate(c, p, done),
      authorizeSubscribe: (c, s, done) => this.authorizeSubscribe(c, s, done),
      authorizePublish: (c, p, done) => this.authorizePublish(c, p, done),
      // Only the server's own publications reach clients; a client's publish is a command.
      authorizeForward: (_c, p) => (SERVER_SUFFIXES.has(p.topic.slice(p.topic.lastIndexOf('/') + 1)) ? p : null),
    });
    this.broker.on('clientReady', (c) => this.clientReady(c));
    this.broker.on('clientDisconnect', (c) => this.clientGone(c));
    this.broker.on('clientError', (c, err) => this.log.debug({ err, client: c.id }, 'mqtt client error'));
    this.broker.on('connectionError', (c, err) => this.log.debug({ err, client: c?.id }, 'mqtt connection error'));
    if (this.opts.wsPath) {
      this.wss = new WebSocketServer({
        noServer: true, perMessageDeflate: false, clientTracking: false,
        maxPayload: this.opts.maxPayloadBytes + 64 * 1024,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
    }
    const tcp = createServer((socket) => {
      socket.on('error', () => { /* reported by aedes */ });
      // Same bound as MQTT over WebSocket: the payload limit plus room for topic and header.
      guardPackets(socket, this.opts.maxPayloadBytes + 64 * 1024, () => {
        this.metrics?.error('too_large', 'mqtt');
        this.log.warn({ remote: socket.remoteAddress }, 'mqtt packet over the size limit: connection closed');
      });
      this.broker.handle(socket);
    });
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const addr = tcp.address();
    return typeof addr === 'object' && addr ? addr.port : this.opts.port;
  }

  /**
   * Takes an HTTP upgrade on the MQTT WebSocket path, and on `/ws` when the client asks for
   * the MQTT subprotocol (`mqtt`, `mqttv3.1`): Chat21 deployments serve MQTT over WebSocket on
   * `/ws`, and Parley's own protocol there never asks for a subprotocol. False when not ours.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const wss = this.wss;
    if (!wss) return false;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== this.opts.wsPath && !(path === CHAT21_WS_PATH && asksForMqtt(req))) return false;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => { /* reported by aedes */ });
      this.broker.handle(stream, req);
    });
    return true;
  }

  // ---- authentication ---------------------------------------------------------------------

  private authenticate(client: Client, password: Buffer | undefined, done: (e: AuthenticateError | null, ok: boolean | null) => void): void {
    const token = password?.toString('utf8').trim() ?? '';
    if (!token) {
      this.metrics?.error('unauthorized', 'mqtt');
      done(authError('send a JWT as the MQTT password', 4), null);
      return;
    }
    this.verify(token).then(async (identity) => {
      if (identity.id.includes('+')) throw new ParleyError('unauthorized', 'user ids with "+" cannot have an MQTT inbox');
      await this.service.checkNotBanned(identity.id);
      const state: ClientState = { identity, tail: Promise.resolve(), expiry: null };
      if (identity.exp !== undefined) {
        const ms = Math.min(identity.exp * 1000 - Date.now(), 2 ** 31 - 1);
        state.expiry = setTimeout(() => {
          this.log.info({ user: identity.id, client: client.id }, 'mqtt token expired; disconnecting');
          client.close();
        }, Math.max(0, ms));
        state.expiry.unref();
      }
      this.states.set(client, state);
      done(null, true);
    }, (err: unknown) => { throw err; }).catch((err: unknown) => {
      const e = toParleyError(err);
      this.log.info({ client: client.id, code: e.code, reason: e.message }, 'mqtt authentication refused');
      this.metrics?.error(e.code, 'mqtt');
      done(authError(e.message, e.code === 'forbidden' ? 5 : 4), null);
    });
  }

  private clientReady(client: Client): void {
    const st = this.states.get(client);
    if (!st) return;
    const user = st.identity.id;
    let entry = this.inboxes.get(user);
    if (!entry) {
      const inbox = new Inbox(st.identity, {
        chat21: this.chat21,
        publish: (topic, payload) => this.broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => undefined),
        buffered: () => {
          let max = 0;
          for (const c of this.inboxes.get(user)?.clients ?? []) max = Math.max(max, (c.conn as Duplex).writableLength ?? 0);
          return max;
        },
        disconnect: (code, reason) => {
          this.log.info({ user, code, reason }, 'mqtt: disconnecting the user\'s clients');
          for (const c of this.inboxes.get(user)?.clients ?? []) c.close();
        },
        log: this.log,
      }, NODE_TAG);
      entry = { inbox, clients: new Set(), attached: Promise.resolve() };
      const e = entry;
      e.attached = this.service.attach(st.identity, inbox).then(() => undefined, (err: unknown) => {
        this.log.warn({ err, user }, 'mqtt inbox could not attach; disconnecting');
        for (const c of e.clients) c.close();
      });
      this.inboxes.set(user, entry);
    }
    entry.clients.add(client);
  }

  private clientGone(client: Client): void {
    const st = this.states.get(client);
    if (!st) return;
    if (st.expiry) clearTimeout(st.expiry);
    const user = st.identity.id;
    const entry = this.inboxes.get(user);
    if (!entry?.clients.delete(client) || entry.clients.size > 0) return;
    this.inboxes.delete(user);
    const p = entry.attached.then(() => this.service.detach(st.identity, entry.inbox)).catch((err: unknown) => {
      this.log.warn({ err, user }, 'mqtt inbox detach failed');
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  // ---- ACL ------------------------------------------------------------------------------

  private denied(client: Client, st: ClientState | undefined, action: 'publish' | 'subscribe', topic: string): void {
    this.log.warn({ user: st?.identity.id, client: client.id, action, topic: topic.slice(0, 256) }, 'mqtt: topic refused by the ACL');
    this.metrics?.denied('mqtt', action);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, done: (e: Error | null, s?: Subscription | null) => void): void {
    const st = this.states.get(client);
    if (!st || !mayRead(sub.topic, this.app, st.identity.id)) {
      this.denied(client, st, 'subscribe', sub.topic);
      done(null, null); // SUBACK 0x80: refused, the connection stays
      return;
    }
    done(null, sub);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (e?: Error | null) => void): void {
    const st = client ? this.states.get(client) : undefined;
    const op = st ? parsePublish(packet.topic, this.app, st.identity.id) : null;
    if (!client || !st || !op) {
      if (client) this.denied(client, st, 'publish', packet.topic);
      // MQTT 3.1.1 has no negative acknowledgement: the broker closes the connection.
      done(new Error('publish refused by the topic ACL'));
      return;
    }
    packet.retain = false;
    if (op.op === 'presence') {
      done(null);
      return;
    }
    const run = (): Promise<void> => this.run(client, st, op, packet);
    st.tail = st.tail.then(run, run);
    st.tail.then(() => done(null), () => done(null));
  }

  // ---- commands -----------------------------------------------------------------------------

  /** Runs one publish; resolves once it is admitted (its writes queued in order) or has ended. */
  private run(client: Client, st: ClientState, op: PublishOp, packet: PublishPacket): Promise<void> {
    let admit!: () => void;
    const admitted = new Promise<void>((r) => { admit = r; });
    const t0 = performance.now();
    const cmd = OP_COMMAND[op.op];
    const me = st.identity;
    const done = (async () => {
      const payload = packet.payload as Buffer;
      if (payload.length > this.opts.maxPayloadBytes) {
        throw new ParleyError('too_large', `payload exceeds ${this.opts.maxPayloadBytes} bytes`, { limit: this.opts.maxPayloadBytes });
      }
      switch (op.op) {
        case 'outgoing':
          await this.chat21.send(me, op.to, check(OutgoingMessage, parseJson(payload), 'message'), admit);
          break;
        case 'receipt':
          check(MessageUpdate, parseJson(payload), 'update');
          await this.chat21.receipt(me, op.conversWith, op.messageId);
          break;
        case 'conversation':
          await this.chat21.updateConversation(me, op.conversWith, check(ConversationUpdate, parseJson(payload), 'conversation update'));
          break;
        case 'archive':
          if (payload.length > 0) parseJson(payload);
          await this.chat21.archive(me, op.conversWith);
          break;
        default:
          throw new ParleyError('invalid', 'no such operation: see docs/chat21.md for the topics');
      }
      this.metrics?.command(cmd, 'mqtt', performance.now() - t0);
    })().catch((err: unknown) => {
      const e = toParleyError(err);
      this.metrics?.command(cmd, 'mqtt', performance.now() - t0, e.code);
      if (e.code === 'internal') this.log.error({ err, user: me.id, topic: packet.topic }, 'mqtt publish failed');
      else this.log.info({ user: me.id, topic: packet.topic.slice(0, 256), code: e.code, reason: e.message }, 'mqtt publish refused');
      this.replyError(client, packet.topic, e);
    });
    return Promise.race([admitted, done]);
  }

  /** Tells the publishing client (only it) why its publish had no effect. */
  private replyError(client: Client, topic: string, e: ParleyError): void {
    const st = this.states.get(client);
    if (!st || client.closed) return;
    const payload = Buffer.from(JSON.stringify({ ...e.toJSON(), topic: topic.slice(0, 512) }));
    client.publish({ cmd: 'publish', topic: `${inboxBase(this.app, st.identity.id)}/errors/clienterror`, payload, qos: 0, retain: false, dup: false }, () => undefined);
  }

  /** Disconnects every client and stops listening. */
  async close(): Promise<void> {
    this.wss?.close();
    if (this.broker) await new Promise<void>((r) => this.broker.close(() => r()));
    if (this.tcp) await new Promise<void>((r) => this.tcp!.close(() => r()));
    await Promise.all([...this.pending]);
  }
}
