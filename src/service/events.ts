// Domain events: what changed, once it is stored, as one typed stream per node. The service
// emits each where it publishes the change on the bus (see the table in docs/architecture.md);
// webhooks, metrics and plugins subscribe here instead of rebuilding events from command
// arguments. Listeners run synchronously, in the order they subscribed, right after the store
// write and the publish; one that throws is logged and the others still run. The command's
// outcome never depends on a listener: slow work (an HTTP call) belongs in a queue.
import type { Logger } from 'pino';
import type { Ban, Member, Message, Room, ThreadSummary } from '../protocol/schema.js';

/** The transports a command can come through. */
export type TransportName = 'ws' | 'http' | 'mqtt';

/** Who made a change, and through which transport (absent for the server's own work). */
export interface Actor {
  readonly id: string;
  readonly name: string;
  readonly via?: TransportName;
}

/**
 * Why a member is no longer in a room: it left, a moderator removed it (`kicked`) or banned it
 * (`banned`), or the room's access lists stopped admitting it (`evicted`).
 */
export type LeaveReason = 'left' | 'kicked' | 'banned' | 'evicted';

export interface DomainEventMap {
  /**
   * A message was appended to a room: a user's text, edit, delete or reaction, a server post,
   * or the room's own join, leave and update messages. A repeat of an idempotency key stores
   * nothing and emits nothing. `hiddenFor` is the direct peer that blocks the author.
   */
  'message.stored': { message: Message; by: Actor; hiddenFor?: string };
  /** A room was created with its first members (a direct room with both of its users). */
  'room.created': { room: Room; members: Member[]; by: Actor };
  /** A room's name, topic, access mode or retention changed. */
  'room.updated': { room: Room; by: Actor };
  /** A room was deleted; `members` were its members then. */
  'room.deleted': { room: string; members: string[]; by: Actor };
  /** A user joined a channel (`by` is the user) or was invited (`by` is who invited it). */
  'member.joined': { room: string; member: Member; by: Actor };
  /** A member is out of the room; `name` is the member's, `note` the moderator's reason. */
  'member.left': { room: string; user: string; name: string; reason: LeaveReason; note?: string; by: Actor };
  /** A ban was placed on a room (`ban.room`) or server-wide (`ban.room` null). */
  'ban.added': { ban: Ban; by: Actor };
  /** A ban was lifted (only emitted when there was one). */
  'ban.lifted': { room: string | null; user: string; by: Actor };
  /**
   * A reply (seq `reply`, sent by `by`) changed the summary of the thread under `root`: after
   * that reply's `message.stored`, once per reply.
   */
  'thread.updated': { room: string; root: number; reply: number; summary: ThreadSummary; by: Actor };
}

export type DomainEventName = keyof DomainEventMap;
export type DomainListener<E extends DomainEventName> = (event: DomainEventMap[E]) => void;

/** The subscribing side, for plugins and observers. */
export interface DomainEventSource {
  /** Calls `listener` for every event of that name from now on; returns the unsubscribe. */
  on<E extends DomainEventName>(name: E, listener: DomainListener<E>): () => void;
}

export class DomainEvents implements DomainEventSource {
  private readonly listeners: { [E in DomainEventName]?: Array<DomainListener<E>> } = {};

  constructor(private readonly log?: Pick<Logger, 'warn'>) {}

  on<E extends DomainEventName>(name: E, listener: DomainListener<E>): () => void {
    const list = (this.listeners[name] ??= []) as Array<DomainListener<E>>;
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<E extends DomainEventName>(name: E, event: DomainEventMap[E]): void {
    const list = this.listeners[name];
    if (!list) return;
    for (const listener of [...list]) {
      try {
        listener(event);
      } catch (err) {
        this.log?.warn({ err, event: name }, 'domain event listener failed');
      }
    }
  }
}
