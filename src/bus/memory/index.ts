// In-memory Bus for a single node: publish hands the message straight to the local handler,
// so ordering per topic is the call order. Presence is a connection count per user.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Bus, BusHandler, BusMessage, Claim, NodeInfo, Nodes, Presence } from '../bus.js';

class MemoryPresence implements Presence {
  private readonly conns = new Map<string, Set<string>>();

  connect(user: string, conn: string): Promise<boolean> {
    let set = this.conns.get(user);
    const first = !set;
    if (!set) this.conns.set(user, (set = new Set()));
    set.add(conn);
    return Promise.resolve(first);
  }

  disconnect(user: string, conn: string): Promise<boolean> {
    const set = this.conns.get(user);
    if (!set || !set.delete(conn)) return Promise.resolve(false);
    if (set.size > 0) return Promise.resolve(false);
    this.conns.delete(user);
    return Promise.resolve(true);
  }

  online(users: string[]): Promise<string[]> {
    return Promise.resolve(users.filter((u) => this.conns.has(u)));
  }

  /** Connections live and die with this process: nothing ever expires or comes back. */
  onExpired(): void {}
  onRestored(): void {}
}

/** A default node id: host name, process id and a random suffix, unique per start. */
export const defaultNodeId = (): string => `${hostname().replace(/[^A-Za-z0-9_.-]/g, '') || 'node'}-${process.pid}-${randomBytes(3).toString('hex')}`;

class LocalNodes implements Nodes {
  private local: () => { url: string; connections: number } = () => ({ url: '', connections: 0 });
  constructor(readonly id: string) {}
  setLocal(info: () => { url: string; connections: number }): void {
    this.local = info;
  }
  list(): Promise<NodeInfo[]> {
    return Promise.resolve([{ id: this.id, ...this.local(), at: Date.now() }]);
  }
  /** The only node runs every task. */
  claim(): Promise<Claim> {
    return Promise.resolve({ renew: () => Promise.resolve(true) });
  }
}

export class MemoryBus implements Bus {
  readonly presence: Presence = new MemoryPresence();
  readonly nodes: Nodes;
  private readonly topics = new Set<string>();
  private handler: BusHandler = () => {};

  constructor(nodeId: string = defaultNodeId()) {
    this.nodes = new LocalNodes(nodeId);
  }

  publish(topic: string, msg: BusMessage): void {
    this.deliverLocal(topic, msg);
  }

  deliverLocal(topic: string, msg: BusMessage): void {
    if (this.topics.has(topic)) this.handler(topic, msg);
  }

  subscribe(topic: string): Promise<void> {
    this.topics.add(topic);
    return Promise.resolve();
  }

  unsubscribe(topic: string): Promise<void> {
    this.topics.delete(topic);
    return Promise.resolve();
  }

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  /** Nothing is ever missed in one process. */
  onResync(): void {}

  close(): Promise<void> {
    this.topics.clear();
    return Promise.resolve();
  }
}
