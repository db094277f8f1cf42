// MQTT transport (aedes) on TCP and on a WebSocket path of the HTTP port. It adapts bytes:
// clients authenticate with a JWT as the password and are admitted by the service; every
// subscribe and publish is checked against the topic ACL of the application the topics belong
// to (`MqttApp`: Chat21's, in integrations/chat21/mqtt.ts); a publish becomes that
// application's operation, run through the command runner in arrival order per client.
// Deliveries never go from one client to another here: each user's inbox is a hub connection
// opened by the application, and its publications are written to that user's subscribed
// clients only.
//
// Sessions: a client id is scoped by its user (another user's client with the same id is a
// different session), and no broker session outlives its connection: Parley's store is the
// durable queue, so every CONNECT is taken as a clean session and nothing is queued offline.
import { createServer, type Server } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { Aedes, type Client, type ConnectPacket, type PublishPacket, type Subscription, type AuthenticateError } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from 'pino';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError, toParleyError } from '../../errors.js';
import type { Conn } from '../../hub/index.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Service } from '../../service/index.js';
import { Lane, watchExpiry, type CommandRunner, type TransportSession } from '../../service/runner.js';
import { guardPackets } from './packet-guard.js';

/** What an inbox writes through: publications to the user's clients on this node, or their end. */
export interface InboxIO {
  /** Writes a publication to the user's clients on this node that subscribed to its topic. */
  publish(topic: string, payload: Buffer): void;
  /** Disconnects the user's clients on this node (ban, slow consumer). */
  disconnect(code: number, reason: string): void;
  /** Disconnects the user's clients on this node whose account session `match`es (a sign-out). */
  disconnectSessions(match: (session: string | undefined) => boolean, reason: string): void;
}

/**
 * The meaning of an application's topics: who may publish and subscribe where, what a
 * publish asks for, and how a user's room events become publications. The transport keeps
 * the connections, sessions and limits; the application keeps the topics.
 */
export interface MqttApp<Op> {
  /** Refuses (throws a ParleyError) a user the application's topics cannot serve. */
  checkUser(identity: Identity): void;
  /** What a publish by `user` on `topic` asks for, or null when the ACL refuses it (wills included). */
  publishOp(topic: string, user: string): Op | null;
  /** Whether `user` may subscribe to `filter`. */
  mayRead(filter: string, user: string): boolean;
  /** Topics only the server publishes: only those are forwarded to clients. */
  serverTopic(topic: string): boolean;
  /** The command a publish is timed and counted as; null for one accepted without effect. */
  command(op: Op): string | null;
  /** Runs a publish for its client's session (`admit` once its writes are queued in order). */
  run(s: TransportSession, op: Op, payload: Buffer): Promise<void>;
  /** Where the errors of a user's publishes are written, to the publishing client only. */
  errorTopic(user: string): string;
  /** The user's inbox on this node: a hub connection whose events become publications. */
  openInbox(identity: Identity, io: InboxIO): Conn;
}

/** Where clients of Parley's own protocol connect; MQTT clients that ask for MQTT are taken there too. */
const PARLEY_WS_PATH = '/ws';
const asksForMqtt = (req: IncomingMessage): boolean =>
  String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .some((p) => /^mqtt(v3\.1)?$/i.test(p.trim()));

export interface MqttOptions {
  host: string;
  port: number;
  /** MQTT over WebSocket on the HTTP port; '' for none. */
  wsPath: string;
  maxPayloadBytes: number;
  /** Live clients of one user on this node; one more is refused (CONNACK 0x03). */
  maxClientsPerUser: number;
  /** Publishes of one client received and not finished; one more disconnects it. */
  maxInflight: number;
  /**
   * Topic filters one client may hold; one more is refused (SUBACK 0x80). Every publication
   * to the user is matched against each filter of each of its clients.
   */
  maxSubscriptions: number;
  /** Bytes queued to one client and not yet written out; past it the client is disconnected. */
  slowConsumerBytes: number;
  /** Open MQTT/TCP connections per client address; further ones are closed at once (0: no cap). */
  connectionsPerAddress: number;
  /** Time a new MQTT/TCP or MQTT-over-WebSocket connection has to send its CONNECT. */
  connectTimeoutMs: number;
}

interface ClientState {
  identity: Identity;
  /** Publishes of this client run in arrival order up to admission. */
  lane: Lane;
  /** Cancels the token-expiry watch. */
  stopExpiry: () => void;
  /** Granted topic filters and their QoS: a publication goes to the client only where one matches. */
  filters: Map<string, number>;
  /** Publishes received and not yet finished. */
  inflight: number;
  /** Bytes handed to the client's connection whose write has not completed. */
  queued: number;
  /** Why the server closed this client (ban, slow consumer, ...): its will is then dropped. */
  evicted: string | null;
}

/** The outcome of checking a CONNECT (token, ban, will, the user's client count), for `authenticate`. */
type Admission = { state: ClientState } | { error: ParleyError };

interface UserInbox {
  inbox: Conn;
  identity: Identity;
  clients: Set<Client>;
  attached: Promise<void>;
}

/** A user's client id on the broker: ids are per user, and user ids hold no "/". */
const scopedId = (user: string, clientId: string): string => `${user}/${clientId || randomUUID()}`;
/** Bytes a publication takes on the wire, near enough for the slow-consumer bound. */
const wireBytes = (topic: string, payload: Buffer): number => topic.length + payload.length + 8;

/** CONNACK return codes of refused CONNECTs (4: bad user name or password). */
const CONNACK_CODE: Partial<Record<ParleyError['code'], 2 | 3 | 4 | 5>> = { invalid: 2, rate_limited: 3, unavailable: 3, internal: 3, forbidden: 5 };

function authError(message: string, code: 2 | 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code });
}

/**
 * Whether a topic filter (MQTT wildcards `+` and a final `#`) matches a topic name. Filters
 * here have passed the application's `mayRead`.
 */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export class MqttTransport<Op> {
  private broker!: Aedes;
  private tcp: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly states = new WeakMap<Client, ClientState>();
  /** CONNECTs checked in preConnect, answered in authenticate. */
  private readonly admissions = new WeakMap<Client, Admission>();
  /** Per user, its scoped client ids on this node and how many connections hold each. */
  private readonly sessions = new Map<string, Map<string, number>>();
  private readonly inboxes = new Map<string, UserInbox>();
  /** Detaches in flight, awaited at shutdown. */
  private readonly pending = new Set<Promise<void>>();
  private closing = false;

  constructor(
    private readonly service: Pick<Service, 'attach' | 'detach' | 'admit' | 'checkNotBanned' | 'connections'>,
    private readonly runner: Pick<CommandRunner, 'timed'>,
    private readonly app: MqttApp<Op>,
    private readonly verify: Verifier,
    private readonly opts: MqttOptions,
    private readonly log: Logger,
    private readonly metrics?: Pick<Metrics, 'error' | 'denied' | 'refused'>,
  ) {}

  get connectionCount(): number {
    return this.broker?.connectedClients ?? 0;
  }

  /** Starts the broker and the TCP listener; resolves with the bound TCP port. */
  async listen(): Promise<number> {
    this.broker = await Aedes.createBroker({
      heartbeatInterval: 60_000,
      connectTimeout: this.opts.connectTimeoutMs,
      // Client ids are scoped by user (user id + "/" + the id sent), so MQTT 3.1's 23-character
      // bound on what the client sends is checked before scoping, not on the scoped id.
      maxClientsIdLength: 65_535,
      preConnect: (c, packet, done) => this.preConnect(c, packet, done),
      authenticate: (c, _u, _p, done) => this.authenticate(c, done),
      authorizeSubscribe: (c, s, done) => this.authorizeSubscribe(c, s, done),
      authorizePublish: (c, p, done) => this.authorizePublish(c, p, done),
      // Only the server's own publications reach clients; a client's publish is a command.
      authorizeForward: (_c, p) => (this.app.serverTopic(p.topic) ? p : null),
    });
    this.broker.on('clientReady', (c) => this.clientReady(c));
    this.broker.on('clientDisconnect', (c) => this.clientGone(c));
    this.broker.on('unsubscribe', (filters, c) => {
      const st = this.states.get(c);
      for (const f of filters) st?.filters.delete(f);
    });
    this.broker.on('clientError', (c, err) => this.log.debug({ err, client: c.id }, 'mqtt client error'));
    this.broker.on('connectionError', (c, err) => this.log.debug({ err, client: c?.id }, 'mqtt connection error'));
    if (this.opts.wsPath) {
      this.wss = new WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        clientTracking: false,
        maxPayload: this.opts.maxPayloadBytes + 64 * 1024,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
    }
    const open = new Map<string, number>();
    const cap = this.opts.connectionsPerAddress;
    const tcp = createServer((socket) => {
      socket.on('error', () => {
        /* reported by aedes */
      });
      // As on the HTTP port: one address holds at most `cap` connections, counted by the socket's address.
      if (cap > 0) {
        const address = socket.remoteAddress ?? '';
        const n = open.get(address) ?? 0;
        if (n >= cap) {
          this.log.debug({ address, cap }, 'mqtt connection refused: too many from this address');
          socket.destroy();
          return;
        }
        open.set(address, n + 1);
        socket.once('close', () => {
          const left = (open.get(address) ?? 1) - 1;
          if (left > 0) open.set(address, left);
          else open.delete(address);
        });
      }
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
    if (path !== this.opts.wsPath && !(path === PARLEY_WS_PATH && asksForMqtt(req))) return false;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => {
        /* reported by aedes */
      });
      this.broker.handle(stream, req);
    });
    return true;
  }

  // ---- authentication ---------------------------------------------------------------------

  /**
   * Checks a CONNECT before aedes registers the client: the token, the service's admission (a
   * server-wide ban), the application's own rule for the user, the will topic (the ACL applies
   * to it as to a publish), and the user's client count on this node. An admitted client's id
   * is scoped by its user and its session made clean; the outcome is answered in
   * `authenticate`, so refusals get their CONNACK code.
   */
  private preConnect(client: Client, packet: ConnectPacket, done: (e: Error | null, ok: boolean) => void): void {
    const token = packet.password?.toString('utf8').trim() ?? '';
    const admit = async (): Promise<ClientState> => {
      if (!token) throw new ParleyError('unauthorized', 'send a JWT as the MQTT password');
      const identity = await this.verify(token);
      this.app.checkUser(identity);
      await this.service.admit(identity);
      if (packet.protocolVersion === 3 && packet.clientId.length > 23) throw new ParleyError('invalid', 'MQTT 3.1 client ids have 23 characters at most');
      if (packet.will && !this.app.publishOp(packet.will.topic, identity.id)) {
        throw new ParleyError('forbidden', "the will's topic is outside your own topics");
      }
      packet.clientId = scopedId(identity.id, packet.clientId);
      packet.clean = true;
      this.holdSession(client, identity.id, packet.clientId);
      return { identity, lane: new Lane(), stopExpiry: () => undefined, filters: new Map(), inflight: 0, queued: 0, evicted: null };
    };
    admit()
      .then(
        (state) => {
          this.admissions.set(client, { state });
        },
        (err: unknown) => {
          this.admissions.set(client, { error: toParleyError(err) });
        },
      )
      .finally(() => done(null, true));
  }

  /**
   * Counts the connection against its user's MQTT clients and its connections of every
   * transport (limits.connectionsPerUser) until it closes; `rate_limited` past either cap.
   */
  private holdSession(client: Client, user: string, id: string): void {
    let mine = this.sessions.get(user);
    // Reusing one of its own ids takes that session over (MQTT-3.1.4-2): not one more client.
    const takeover = mine?.has(id) === true;
    if (mine && !takeover && mine.size >= this.opts.maxClientsPerUser) {
      throw new ParleyError('rate_limited', `at most ${this.opts.maxClientsPerUser} MQTT clients per user on this node`);
    }
    let releaseSlot: () => void;
    try {
      releaseSlot = this.service.connections.hold(user, takeover);
    } catch (err) {
      this.metrics?.refused('mqtt', 'per_user');
      throw err;
    }
    if (!mine) this.sessions.set(user, (mine = new Map<string, number>()));
    mine.set(id, (mine.get(id) ?? 0) + 1);
    const release = (): void => {
      releaseSlot();
      const n = (mine.get(id) ?? 1) - 1;
      if (n > 0) mine.set(id, n);
      else mine.delete(id);
      if (mine.size === 0 && this.sessions.get(user) === mine) this.sessions.delete(user);
    };
    if (client.conn.destroyed) release();
    else client.conn.once('close', release);
  }

  private authenticate(client: Client, done: (e: AuthenticateError | null, ok: boolean | null) => void): void {
    const a = this.admissions.get(client) ?? { error: new ParleyError('unauthorized', 'send a JWT as the MQTT password') };
    this.admissions.delete(client);
    if ('error' in a) {
      const e = a.error;
      this.log.info({ code: e.code, reason: e.message }, 'mqtt connection refused');
      this.metrics?.error(e.code, 'mqtt');
      done(authError(e.message, CONNACK_CODE[e.code] ?? 4), null);
      return;
    }
    const st = a.state;
    st.stopExpiry = watchExpiry(st.identity, () => {
      this.log.info({ user: st.identity.id, client: client.id }, 'mqtt token expired; disconnecting');
      this.evict(client, st, 'token expired');
    });
    this.states.set(client, st);
    done(null, true);
  }

  /** Closes a client on the server's decision; its will is dropped. */
  private evict(client: Client, st: ClientState, reason: string): void {
    if (st.evicted === null) st.evicted = reason;
    client.close();
  }

  private clientReady(client: Client): void {
    const st = this.states.get(client);
    if (!st) return;
    const user = st.identity.id;
    let entry = this.inboxes.get(user);
    if (!entry) {
      const inbox = this.app.openInbox(st.identity, {
        publish: (topic, payload) => {
          for (const c of this.inboxes.get(user)?.clients ?? []) this.deliver(c, topic, payload, 1);
        },
        disconnect: (code, reason) => {
          this.log.info({ user, code, reason }, "mqtt: disconnecting the user's clients");
          this.retire(user, inbox, reason);
        },
        disconnectSessions: (match, reason) => {
          const entry = this.inboxes.get(user);
          if (entry?.inbox !== inbox) return;
          for (const c of entry.clients) {
            const st = this.states.get(c);
            if (st && match(st.identity.session)) this.evict(c, st, reason);
          }
        },
      });
      const created: UserInbox = { inbox, identity: st.identity, clients: new Set(), attached: Promise.resolve() };
      created.attached = this.service.attach(st.identity, inbox).then(
        () => undefined,
        (err: unknown) => {
          this.log.warn({ err, user }, 'mqtt inbox could not attach; disconnecting');
          this.retire(user, inbox, 'inbox not attached');
        },
      );
      this.inboxes.set(user, (entry = created));
    }
    entry.clients.add(client);
  }

  /**
   * The server ends a user's inbox on this node (ban, slow inbox, failed attach): its clients
   * are evicted, and a client that connects afterwards gets a new inbox.
   */
  private retire(user: string, inbox: Conn, reason: string): void {
    const entry = this.inboxes.get(user);
    if (entry?.inbox !== inbox) return;
    this.inboxes.delete(user);
    for (const c of entry.clients) {
      const st = this.states.get(c);
      if (st) this.evict(c, st, reason);
    }
    this.detach(user, entry);
  }

  private detach(user: string, entry: UserInbox): void {
    const p = entry.attached
      .then(() => this.service.detach(entry.identity, entry.inbox))
      .catch((err: unknown) => {
        this.log.warn({ err, user }, 'mqtt inbox detach failed');
      });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * Writes a publication to one client if one of its subscriptions matches (at most at `qos`,
   * downgraded to the subscription's). The bytes count until the write completes; a client
   * that lets more than `slowConsumerBytes` pile up is disconnected, and what it held is freed.
   */
  private deliver(client: Client, topic: string, payload: Buffer, qos: 0 | 1): void {
    const st = this.states.get(client);
    if (!st || st.evicted !== null || client.closed) return;
    let granted = -1;
    for (const [filter, q] of st.filters) if (q > granted && matches(filter, topic)) granted = q;
    if (granted < 0) return;
    if (st.queued > this.opts.slowConsumerBytes) {
      this.log.warn({ user: st.identity.id, client: client.id, queued: st.queued }, 'mqtt: dropping a slow consumer');
      this.evict(client, st, 'slow consumer');
      return;
    }
    const n = wireBytes(topic, payload);
    st.queued += n;
    client.publish({ cmd: 'publish', topic, payload, qos: Math.min(qos, granted) as 0 | 1, retain: false, dup: false }, () => {
      st.queued -= n;
    });
  }

  private clientGone(client: Client): void {
    const st = this.states.get(client);
    if (!st) return;
    st.stopExpiry();
    const user = st.identity.id;
    const entry = this.inboxes.get(user);
    if (!entry?.clients.delete(client) || entry.clients.size > 0) return;
    this.inboxes.delete(user);
    this.detach(user, entry);
  }

  // ---- ACL ------------------------------------------------------------------------------

  private denied(client: Client, st: ClientState | undefined, action: 'publish' | 'subscribe', topic: string): void {
    this.log.warn({ user: st?.identity.id, client: client.id, action, topic: topic.slice(0, 256) }, 'mqtt: topic refused by the ACL');
    this.metrics?.denied('mqtt', action);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, done: (e: Error | null, s?: Subscription | null) => void): void {
    const st = this.states.get(client);
    if (!st || !this.app.mayRead(sub.topic, st.identity.id)) {
      this.denied(client, st, 'subscribe', sub.topic);
      done(null, null); // SUBACK 0x80: refused, the connection stays
      return;
    }
    if (!st.filters.has(sub.topic) && st.filters.size >= this.opts.maxSubscriptions) {
      this.log.warn(
        { user: st.identity.id, client: client.id, topic: sub.topic.slice(0, 256) },
        'mqtt: subscription refused, the client holds the most allowed',
      );
      done(null, null);
      return;
    }
    st.filters.set(sub.topic, sub.qos);
    done(null, sub);
  }

  /**
   * Every publish of a client, its will included (aedes asks here for the will of a closed
   * client), passes the ACL and runs as a command with the same checks. The will of a client
   * the server closed (ban, expiry, slow consumer, refused publish, shutdown) is dropped.
   */
  private authorizePublish(client: Client | null, packet: PublishPacket, done: (e?: Error | null) => void): void {
    const st = client ? this.states.get(client) : undefined;
    if (client && st && this.closing) st.evicted ??= 'server shutting down';
    if (client && st && st.evicted !== null) {
      if (client.closed) this.log.info({ user: st.identity.id, client: client.id, reason: st.evicted }, 'mqtt: will dropped');
      done(new Error(`connection closed by the server: ${st.evicted}`));
      return;
    }
    const op = st ? this.app.publishOp(packet.topic, st.identity.id) : null;
    if (!client || !st || op === null) {
      if (client) this.denied(client, st, 'publish', packet.topic);
      if (client && st) st.evicted = 'publish refused by the ACL';
      // MQTT 3.1.1 has no negative acknowledgement: the broker closes the connection.
      done(new Error('publish refused by the topic ACL'));
      return;
    }
    packet.retain = false;
    const cmd = this.app.command(op);
    if (cmd === null) {
      done(null);
      return;
    }
    if (st.inflight >= this.opts.maxInflight) {
      this.log.warn({ user: st.identity.id, client: client.id, limit: this.opts.maxInflight }, 'mqtt: too many publishes in flight; disconnecting');
      this.evict(client, st, 'too many publishes in flight');
      done(new Error('too many publishes in flight'));
      return;
    }
    st.inflight++;
    const will = client.closed;
    void st.lane
      .submit((admit) =>
        this.run(client, st, cmd, op, packet, will, admit).finally(() => {
          st.inflight--;
        }),
      )
      .then(() => done(null));
  }

  // ---- commands -----------------------------------------------------------------------------

  /**
   * Runs one publish as the application's operation, timed as `cmd`; resolves once it has
   * ended (a failure is answered to the client on its error topic). A will runs only if the
   * user is not banned server-wide meanwhile (a live client of a banned user is closed, so
   * cannot publish).
   */
  private run(client: Client, st: ClientState, cmd: string, op: Op, packet: PublishPacket, will: boolean, admit: () => void): Promise<void> {
    const me = st.identity;
    return this.runner
      .timed('mqtt', cmd, async () => {
        if (will) await this.service.checkNotBanned(me.id);
        if (st.evicted !== null) throw new ParleyError('forbidden', `connection closed by the server: ${st.evicted}`);
        const payload = packet.payload as Buffer;
        if (payload.length > this.opts.maxPayloadBytes) {
          throw new ParleyError('too_large', `payload exceeds ${this.opts.maxPayloadBytes} bytes`, { limit: this.opts.maxPayloadBytes });
        }
        await this.app.run({ user: me, via: 'mqtt', admit }, op, payload);
      })
      .catch((err: unknown) => {
        const e = toParleyError(err);
        if (e.code === 'internal') this.log.error({ err, user: me.id, topic: packet.topic }, 'mqtt publish failed');
        else this.log.info({ user: me.id, topic: packet.topic.slice(0, 256), code: e.code, reason: e.message }, 'mqtt publish refused');
        this.replyError(client, st, packet.topic, e);
      });
  }

  /** Tells the publishing client (only it) why its publish had no effect. */
  private replyError(client: Client, st: ClientState, topic: string, e: ParleyError): void {
    const payload = Buffer.from(JSON.stringify({ ...e.toJSON(), topic: topic.slice(0, 512) }));
    this.deliver(client, this.app.errorTopic(st.identity.id), payload, 0);
  }

  /** Disconnects every client (their wills are dropped) and stops listening. */
  async close(): Promise<void> {
    this.closing = true;
    this.wss?.close();
    if (this.broker) await new Promise<void>((r) => this.broker.close(() => r()));
    if (this.tcp) await new Promise<void>((r) => this.tcp!.close(() => r()));
    await Promise.all([...this.pending]);
  }
}
