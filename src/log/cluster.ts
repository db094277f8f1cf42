// The room log's view of the cluster (src/cluster): which node owns a room (placement), the
// epoch a batch is fenced with, and node-to-node calls to a room's owner (forwarding). A
// node keeps a room's state across a view change only when it owned the room in both views
// and the epochs are consecutive: then no other node can have written the room in between.
import { FencedError } from '../cluster/fence.js';
import type { Forwarder } from '../cluster/forward.js';
import { NotOwnerError, Rendezvous, type ClusterView, type Placement } from '../cluster/placement.js';
import type { RoomOp } from './ops.js';
import type { ClusterRouting } from './roomlog.js';

export function clusterRouting(placement: Placement, forwarder: Pick<Forwarder, 'call'>): ClusterRouting {
  return {
    isLocal: (room) => placement.isLocal(room),
    epoch: () => placement.view().epoch,
    forward: (room: string, op: RoomOp) => forwarder.call(placement.ownerOf(room), room, op),
    refresh: async () => {
      await placement.refresh();
    },
    onChange: (cb) => placement.onChange((prev, next) => cb(keeps(placement, prev, next))),
    isFenced: (err) => err instanceof FencedError,
    isNotOwner: (err) => err instanceof NotOwnerError,
    notOwner: (room) => new NotOwnerError(room, placement.view().epoch),
  };
}

/** Which rooms' states survive the move from `prev` to `next`. */
function keeps(placement: Placement, prev: ClusterView, next: ClusterView): (room: string) => boolean {
  if (next.epoch !== prev.epoch + 1) return () => false;
  const before = new Rendezvous(prev.nodes);
  return (room) => placement.isLocal(room) && before.owner(room)?.id === placement.self;
}
