// The Bus port: fan-out of events between nodes, presence and node liveness. Implementations:
// bus/memory (one node) and bus/redis (cluster mode). The service never knows which one it talks to.
//
// Contract
// - `publish` is fire-and-forget. Messages published to one topic by one node reach every
//   subscriber of that topic (on any node, the publisher's included) in publish order.
//   Across topics there is no ordering. The publisher's own node gets them at once, from
//   `publish` itself, even while the bus cannot reach the other nodes.
// - Delivery is at-most-once: a subscriber may miss messages (a reconnecting Redis). Room
//   messages carry their `seq`, so a receiver detects a gap and fills it from the Store.
// - `subscribe`/`unsubscribe` are idempotent per topic on a node; the hub reference-counts.
// - After the bus lost its connection (or a shard of it) and got it back, `onResync` handlers
//   run once the subscriptions are active again, with the topics that may have lost messages
//   (null: all of them): the hub re-reads those from the Store.
// - No call waits for ever: one that cannot be answered rejects with `unavailable` in bounded
//   time (Redis: bus.redis.commandTimeoutMs).
// - Presence counts connections per user across all nodes: a user is online while at least
//   one of its connections is registered. A node that dies has its entries removed within a
//   bounded time (memory: at once, since the node is the process); the node that removes
//   them calls the `onExpired` handlers for every user that went offline, once. A node that
//   registers its connections again after its entries were lost (Redis lost them, or it was
//   taken for dead while frozen) calls the `onRestored` handlers for every user that came
//   back online, once.
// - `nodes` lists the live nodes with their load (memory: this one), from what the bus last
//   saw: it never waits on the network.
export interface BusMessage {
  /** The event frame, serialised once by the publisher and sent as-is to clients. */
  frame: string;
  /** Seq of the stored room message this frame carries; absent for ephemeral events. */
  seq?: number;
  /** An instruction to every hub that follows the topic (membership changes). */
  control?: Control;
  /** A user who must receive `alt` instead of `frame` (it blocked the sender). */
  hiddenFor?: string;
  alt?: string;
  /** Users who must not receive this ephemeral event at all (they block its user). */
  except?: string[];
}

export type Control =
  /** Start delivering the room to the user's connections, replaying after `after`. */
  | { op: 'follow'; room: string; after: number }
  /**
   * Stop delivering the room to the user's connections: at once, or, with `seq` (the user's
   * leave message), once each connection has been delivered the room up to it. The user's
   * topic may overtake the room's, so the leave may not have arrived yet; a hub fills it from
   * the store instead of waiting.
   */
  | { op: 'unfollow'; room: string; seq?: number }
  /**
   * Close the user's connections after sending them the frame: every one (server-wide ban), or
   * only those authenticated by account session `session`, or all but those of `keep`.
   */
  | { op: 'close'; code: number; reason: string; session?: string; keep?: string }
  /**
   * On a room topic: the store may hold messages of the room that were never published (a
   * commit whose answer was lost). Each hub compares the room's followers with the store, and
   * those behind it catch up.
   */
  | { op: 'recheck' };

export type BusHandler = (topic: string, msg: BusMessage) => void;

export interface Presence {
  /** Registers a connection; resolves true when the user just came online. */
  connect(user: string, conn: string): Promise<boolean>;
  /** Unregisters a connection; resolves true when the user just went offline. */
  disconnect(user: string, conn: string): Promise<boolean>;
  /** The subset of `users` that is online; rejects with `unavailable` when it cannot tell. */
  online(users: string[]): Promise<string[]>;
  /**
   * Sets the handler told about users who went offline without a disconnect this node saw
   * through: their node died (`reaped`), or a connection closed while Redis was away was
   * removed once it was back (`repaired`; other nodes may not have registered their own
   * connections again yet).
   */
  onExpired(handler: (user: string, why: 'reaped' | 'repaired') => void): void;
  /** Sets the handler told about users who came back online because this node registered its connections again. */
  onRestored(handler: (user: string) => void): void;
}

export interface NodeInfo {
  id: string;
  /** URL clients use to reach the node. */
  url: string;
  connections: number;
  /** When the node last reported (ms since epoch). */
  at: number;
}

export interface Nodes {
  /** This node's id. */
  readonly id: string;
  /** What this node reports about itself at each heartbeat. */
  setLocal(info: () => { url: string; connections: number }): void;
  /** Live nodes (their heartbeats are recent), this one included, as last seen: never waits on the network. */
  list(): Promise<NodeInfo[]>;
  /**
   * Claims a task that one node at a time may run (a periodic job): resolves a claim on the
   * one node that gets it, null on the others and when the bus cannot tell. The claim lapses
   * `ms` after it was taken or last renewed.
   */
  claim(task: string, ms: number): Promise<Claim | null>;
}

export interface Claim {
  /** Extends the claim by its `ms` again; resolves false when it was lost (it lapsed). */
  renew(): Promise<boolean>;
}

export interface Bus {
  publish(topic: string, msg: BusMessage): void;
  /**
   * Hands a message to this node's handler only (when the topic is subscribed), as a publish
   * would, without sending it to the other nodes: for a copy of what another node published
   * (the hub drops a seq it has already delivered).
   */
  deliverLocal(topic: string, msg: BusMessage): void;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Sets the one handler that receives messages of subscribed topics. */
  onMessage(handler: BusHandler): void;
  /**
   * Adds a handler run after a reconnect, once subscriptions are active again, with the topics
   * that may have lost messages (null: every topic).
   */
  onResync(handler: (topics: readonly string[] | null) => void): void;
  readonly presence: Presence;
  readonly nodes: Nodes;
  close(): Promise<void>;
}

export const roomTopic = (room: string): string => `r:${room}`;
export const userTopic = (user: string): string => `u:${user}`;
/** Every node subscribes to this topic: notifications to all users. */
export const ALL_TOPIC = 'a:all';
