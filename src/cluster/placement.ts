// Which node owns a room. Every room has one owning node at a time, the only one that writes
// it; the owner is chosen by rendezvous hashing over the nodes of the current cluster view, an
// epoch-numbered node list every node reads from the same place (placement-postgres.ts). A
// single node owns everything (LocalPlacement). The contract is here; fencing of stale owners
// is in fence.ts, node-to-node calls in forward.ts.
import { ParleyError } from '../errors.js';

/** A node as its peers know it. */
export interface NodeRef {
  readonly id: string;
  /** Where peers reach the node (http[s]://host:port); '' for a node that takes no calls. */
  readonly url: string;
}

/** One epoch of the cluster: the nodes that own rooms in it, sorted by id. Never mutated. */
export interface ClusterView {
  readonly epoch: number;
  readonly nodes: readonly NodeRef[];
}

/**
 * Where rooms are owned, as this node acts on it now.
 *
 * - All nodes that act on the same epoch compute the same owner for every room.
 * - A node's view only moves forward (higher epochs); `onChange` is told of every move it
 *   makes, in order, synchronously, before anything else is routed with the new view.
 * - A view may lag behind the database's: writes are fenced by the epoch (fence.ts), so a
 *   lagging owner's batch fails instead of committing, and the caller `refresh()`es.
 */
export interface Placement {
  /** This node's id. */
  readonly self: string;
  /** The view this node acts on now. */
  view(): ClusterView;
  /** The room's owner in view(); throws `unavailable` when the view has no node. */
  ownerOf(room: string): NodeRef;
  /** Whether this node owns the room in view() (never while it is not a node of that view). */
  isLocal(room: string): boolean;
  /** Called after the view changed (prev, next), before new work is routed with it. */
  onChange(cb: (prev: ClusterView, next: ClusterView) => void): void;
  /** Re-reads the current view (after a fenced batch); resolves with the view now acted on. */
  refresh(): Promise<ClusterView>;
  /** Registers this node (an epoch bump) and watches for changes. */
  start(): Promise<void>;
  /** Deregisters this node (an epoch bump) on a clean shutdown. */
  stop(): Promise<void>;
}

/**
 * The receiving node does not own the room in its view (it refreshed first when the caller's
 * view was newer). The caller refreshes and routes again. `unavailable` if it ever reaches a
 * client: retrying is right.
 */
export class NotOwnerError extends ParleyError {
  constructor(
    readonly room: string,
    readonly epoch: number,
  ) {
    super('unavailable', `this node does not own room ${JSON.stringify(room)} in epoch ${epoch}`);
    this.name = 'NotOwnerError';
  }
}

// ---- rendezvous hashing ------------------------------------------------------------------
// Owner = the node with the highest score(room, node). A node joining takes from each other
// node the rooms it now scores highest on (about 1/N of all), a node leaving hands its rooms
// out evenly, and no other room moves. Scores: FNV-1a of the string, finished with
// MurmurHash3's avalanche step; the room's hash is mixed with each node's precomputed one.

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The nodes of one view with their hashes, to pick owners quickly. */
export class Rendezvous {
  private readonly hashes: Uint32Array;

  constructor(readonly nodes: readonly NodeRef[]) {
    this.hashes = Uint32Array.from(nodes, (n) => fmix32(fnv1a(n.id)));
  }

  /** The room's owner, or undefined when there is no node. Ties go to the lower id. */
  owner(room: string): NodeRef | undefined {
    const r = fmix32(fnv1a(room));
    let best = -1;
    let score = -1;
    for (let i = 0; i < this.hashes.length; i++) {
      const s = fmix32((r ^ this.hashes[i]!) >>> 0);
      if (s > score) {
        score = s;
        best = i;
      }
    }
    return best < 0 ? undefined : this.nodes[best];
  }
}

/** The room's owner in `view` (a pure function of the view: every node computes the same). */
export function ownerIn(view: ClusterView, room: string): NodeRef | undefined {
  return new Rendezvous(view.nodes).owner(room);
}

/**
 * Whether `self` may keep what it holds in memory about `room` (its last seq, members…) when
 * its view moves from `prev` to `next`: only if it owned the room in both and the epochs are
 * consecutive, so nobody else can have written the room in between. Otherwise that state is
 * dropped and read again from the store, which holds everything committed.
 */
export function keepsRoom(self: string, prev: ClusterView, next: ClusterView, room: string): boolean {
  return next.epoch === prev.epoch + 1 && ownerIn(prev, room)?.id === self && ownerIn(next, room)?.id === self;
}

/** Builds a frozen view, nodes sorted by id. */
export function makeView(epoch: number, nodes: readonly NodeRef[]): ClusterView {
  const sorted = nodes.map((n) => Object.freeze({ id: n.id, url: n.url })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return Object.freeze({ epoch, nodes: Object.freeze(sorted) });
}

/** One node (SQLite, or no cluster): it owns every room, epoch 0, no I/O. */
export class LocalPlacement implements Placement {
  private readonly current: ClusterView;

  constructor(
    readonly self: string,
    url = '',
  ) {
    this.current = makeView(0, [{ id: self, url }]);
  }

  view(): ClusterView {
    return this.current;
  }

  ownerOf(_room: string): NodeRef {
    return this.current.nodes[0]!;
  }

  isLocal(_room: string): boolean {
    return true;
  }

  onChange(_cb: (prev: ClusterView, next: ClusterView) => void): void {
    // The view never changes.
  }

  refresh(): Promise<ClusterView> {
    return Promise.resolve(this.current);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
