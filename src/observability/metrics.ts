// Prometheus metrics of one node (prom-client), served at GET /metrics by the HTTP transport.
// Commands are measured in one place, the command runner (service/runner.ts), whichever
// transport carried them; messages in are counted from the service's domain events; the
// transports report only what happens outside commands (bad frames, refused topics, overload).
// Each node has its own registry: several nodes in one process (tests) never clash.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MessageKind, RoomKind } from '../protocol/schema.js';
import type { DomainEventSource, TransportName } from '../service/events.js';

export type { TransportName };

export type PushOutcome = 'sent' | 'failed' | 'dropped' | 'gone' | 'refused';

/** Messages a client (or a server-side post) adds to a room: what "messages in" counts. */
const MESSAGES_IN: ReadonlySet<MessageKind> = new Set<MessageKind>(['text', 'edit', 'delete', 'reaction', 'event']);

export interface MetricSources {
  /** Open client connections per transport, read at scrape time. */
  connections?: () => Partial<Record<TransportName, number>>;
  /** Rooms per kind, read at scrape time. */
  rooms?: () => Promise<Partial<Record<RoomKind, number>>>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'command' | 'transport'>;
  private readonly errors: Counter<'code' | 'transport'>;
  private readonly messagesIn: Counter<'transport'>;
  private readonly messagesOut: Counter;
  private readonly deniedTopics: Counter<'transport' | 'action'>;
  private readonly overloaded: Counter<'transport' | 'reason'>;
  private readonly refusedConns: Counter<'transport' | 'reason'>;
  private readonly sweeps: Counter;
  private readonly swept: Counter;
  private readonly sweepTime: Counter;
  private readonly moved: Counter;
  private readonly pushes: Counter<'outcome'>;

  constructor(sources: MetricSources = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'parley_connections',
      help: 'Open client connections',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (const [t, n] of Object.entries(sources.connections?.() ?? {})) this.set({ transport: t }, n);
      },
    });
    new Gauge({
      name: 'parley_rooms',
      help: 'Rooms in the store',
      labelNames: ['kind'],
      registers,
      async collect() {
        this.reset();
        // A store that does not answer leaves the gauge empty rather than failing the scrape.
        const rooms: Partial<Record<string, number>> = (await sources.rooms?.().catch(() => ({}))) ?? {};
        for (const [k, n] of Object.entries(rooms)) if (n !== undefined) this.set({ kind: k }, n);
      },
    });
    this.messagesIn = new Counter({
      name: 'parley_messages_in_total',
      help: 'Messages accepted from clients (send, edit, delete, react, post)',
      labelNames: ['transport'],
      registers,
    });
    this.messagesOut = new Counter({
      name: 'parley_messages_out_total',
      help: 'Messages written to client connections',
      registers,
    });
    this.latency = new Histogram({
      name: 'parley_command_duration_seconds',
      help: "Time from a command's arrival to its reply",
      labelNames: ['command', 'transport'],
      registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.deniedTopics = new Counter({
      name: 'parley_acl_denied_total',
      help: 'Publishes and subscriptions refused by the topic ACL',
      labelNames: ['transport', 'action'],
      registers,
    });
    this.errors = new Counter({
      name: 'parley_errors_total',
      help: 'Error replies by stable code',
      labelNames: ['code', 'transport'],
      registers,
    });
    this.overloaded = new Counter({
      name: 'parley_connections_overloaded_total',
      help: 'Connections closed for holding too much: unsent bytes (slow_consumer) or commands awaiting a reply (in_flight)',
      labelNames: ['transport', 'reason'],
      registers,
    });
    this.refusedConns = new Counter({
      name: 'parley_connections_refused_total',
      help: 'Connections refused on authentication because their user already holds limits.connectionsPerUser on this node (reason per_user)',
      labelNames: ['transport', 'reason'],
      registers,
    });
    this.sweeps = new Counter({
      name: 'parley_retention_sweeps_total',
      help: 'Retention sweeps run by this node (one node of a cluster per period)',
      registers,
    });
    this.swept = new Counter({ name: 'parley_retention_removed_total', help: "Messages removed by this node's retention sweeps", registers });
    this.sweepTime = new Counter({ name: 'parley_retention_sweep_seconds_total', help: "Time this node's retention sweeps took, start to end", registers });
    this.moved = new Counter({
      name: 'parley_rebalanced_total',
      help: 'Clients this node asked to reconnect elsewhere because it had many more than the others',
      registers,
    });
    this.pushes = new Counter({
      name: 'parley_push_total',
      help: 'Web Push outcomes: sent (accepted by the push service), failed, dropped (queue full), gone (subscription removed on 404/410), refused (subscription removed: its host is not a public address)',
      labelNames: ['outcome'],
      registers,
    });
  }

  /** One Web Push outcome (see PushService.counts). */
  push(outcome: PushOutcome): void {
    this.pushes.inc({ outcome });
  }

  /** A connection was closed because it held more than its limits allow. */
  overload(transport: TransportName, reason: 'slow_consumer' | 'in_flight'): void {
    this.overloaded.inc({ transport, reason });
  }

  /** A connection was refused because its user holds as many as it may. */
  refused(transport: TransportName, reason: 'per_user'): void {
    this.refusedConns.inc({ transport, reason });
  }

  /** A retention sweep ran for `seconds` and removed `removed` messages. */
  retentionSwept(removed: number, seconds: number): void {
    this.sweeps.inc();
    this.sweepTime.inc(seconds);
    if (removed > 0) this.swept.inc(removed);
  }

  /** Clients asked to move to less loaded nodes. */
  rebalanced(n: number): void {
    if (n > 0) this.moved.inc(n);
  }

  /**
   * One command ran for `ms` milliseconds; `errorCode` when it failed. Successful sends, edits,
   * deletes and reactions also count as messages in.
   */
  command(cmd: string, transport: TransportName, ms: number, errorCode?: string): void {
    this.latency.observe({ command: cmd, transport }, ms / 1000);
    if (errorCode) this.errors.inc({ code: errorCode, transport });
  }

  /**
   * Counts the messages stored through each transport (sends, edits, deletes, reactions and
   * server-side posts; not the rooms' own join, leave and update messages, nor a repeat of an
   * idempotency key, which stores nothing).
   */
  follow(events: DomainEventSource): void {
    events.on('message.stored', ({ message, by }) => {
      if (by.via && MESSAGES_IN.has(message.kind)) this.messagesIn.inc({ transport: by.via });
    });
  }

  /** An error answered outside any command (bad frame, failed authentication, bad route). */
  error(code: string, transport: TransportName): void {
    this.errors.inc({ code, transport });
  }

  /** A publish or subscribe outside the user's own topics was refused. */
  denied(transport: TransportName, action: 'publish' | 'subscribe'): void {
    this.deniedTopics.inc({ transport, action });
  }

  /** Messages written to connections (count each message once per connection written to). */
  delivered(n = 1): void {
    if (n > 0) this.messagesOut.inc(n);
  }

  /** Messages in and out since the node started (the admin screen derives rates from them). */
  async totals(): Promise<{ messagesIn: number; messagesOut: number }> {
    const sum = async (c: Counter<string>) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
    return { messagesIn: await sum(this.messagesIn), messagesOut: await sum(this.messagesOut) };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
