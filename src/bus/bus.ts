// The Bus port: fan-out of events between nodes, presence and node liveness. Implementations:
// bus/memory (one node) and bus/redis (cluster mode). The service never knows which one it talks to.
//
// Contract
// - `publish` is fire-and-forget. Messages published to one topic by one node reach every
//   subscriber of that topic (on any node, the publisher's included) in publish order.
//   Across topics there is no ordering.
// - Delivery is at-most-once: a subscriber may miss messages (a reconnecting Redis). Room
//   messages carry their `seq`, so a receiver detects a gap and fills it from the Store.
// - `subscribe`/`unsubscribe` are idempotent per topic on a node; the hub reference-counts.
// - After the bus lost its connection and got it back, `onResync` handlers run once the
//   subscriptions are active again: anything published meanwhile may be lost, so the hub
//   re-reads what it follows from the Store.
// - Presence counts connections per user across all nodes: a user is online while at least
//   one of its connections is registered. A node that dies has its entries removed within a
//   bounded time (memory: at once, since the node is the process); the node that removes
//   them calls the `onExpired` handlers for every user that went offline, once.
// - `nodes` lists the live nodes with their load (memory: this one).
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
  /** Stop delivering the room to the user's connections. */
  | { op: 'unfollow'; room: string }
  /**
   * Close the user's connections after sending them the frame: every one (server-wide ban), or
   * only those authenticated by account session `session`, or all but those of `keep`.
   */
  | { op: 'close'; code: number; reason: string; session?: string; keep?: string };

export type BusHandler = (topic: string, msg: BusMessage) => void;

export interface Presence {
  /** Registers a connection; resolves true when the user just came online. */
  connect(user: string, conn: string): Promise<boolean>;
  /** Unregisters a connection; resolves true when the user just went offline. */
  disconnect(user: string, conn: string): Promise<boolean>;
  /** The subset of `users` that is online. */
  online(users: string[]): Promise<string[]>;
  /** Sets the handler told about users who went offline because their node died. */
  onExpired(handler: (user: string) => void): void;
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
  /** Live nodes, this one included. */
  list(): Promise<NodeInfo[]>;
}

export interface Bus {
  publish(topic: string, msg: BusMessage): void;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Sets the one handler that receives messages of subscribed topics. */
  onMessage(handler: BusHandler): void;
  /** Adds a handler run after a reconnect, once subscriptions are active again. */
  onResync(handler: () => void): void;
  readonly presence: Presence;
  readonly nodes: Nodes;
  close(): Promise<void>;
}

export const roomTopic = (room: string): string => `r:${room}`;
export const userTopic = (user: string): string => `u:${user}`;
/** Every node subscribes to this topic: notifications to all users. */
export const ALL_TOPIC = 'a:all';
