// Who owns a room: rendezvous hashing over a cluster view, and the one-node placement.
import { describe, expect, it } from 'vitest';
import { LocalPlacement, Rendezvous, keepsRoom, makeView, ownerIn, type NodeRef } from '../src/cluster/placement.js';

const nodes = (n: number, from = 0): NodeRef[] => Array.from({ length: n }, (_, i) => ({ id: `node-${i + from}`, url: `http://10.0.0.${i + from}:8080` }));
const rooms = Array.from({ length: 20_000 }, (_, i) => `room-${i.toString(36)}-${(i * 7919) % 1000}`);

function owners(view: readonly NodeRef[]): Map<string, string> {
  const r = new Rendezvous(view);
  return new Map(rooms.map((room) => [room, r.owner(room)!.id]));
}

describe('rendezvous hashing', () => {
  it('spreads rooms evenly over the nodes', () => {
    for (const n of [2, 3, 4, 7]) {
      const counts = new Map<string, number>();
      for (const id of owners(nodes(n)).values()) counts.set(id, (counts.get(id) ?? 0) + 1);
      expect(counts.size).toBe(n);
      for (const c of counts.values()) expect(Math.abs(c - rooms.length / n)).toBeLessThan((rooms.length / n) * 0.06);
    }
  });

  it('a node joining takes about 1/N of the rooms, each from its previous owner, and moves no other', () => {
    for (const n of [1, 2, 3, 5]) {
      const before = owners(nodes(n));
      const after = owners(nodes(n + 1));
      const moved = rooms.filter((room) => before.get(room) !== after.get(room));
      expect(new Set(moved.map((room) => after.get(room)))).toEqual(new Set([`node-${n}`])); // only to the new node
      const share = moved.length / rooms.length;
      expect(Math.abs(share - 1 / (n + 1))).toBeLessThan(0.02);
    }
  });

  it('a node leaving hands out only its own rooms', () => {
    const before = owners(nodes(4));
    const after = owners(nodes(4).filter((x) => x.id !== 'node-2'));
    const moved = rooms.filter((room) => before.get(room) !== after.get(room));
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.every((room) => before.get(room) === 'node-2')).toBe(true);
  });

  it('depends only on the node ids, not their order or urls', () => {
    const a = nodes(4);
    const b = [...a].reverse().map((x) => ({ id: x.id, url: 'http://elsewhere' }));
    expect(owners(makeView(1, a).nodes)).toEqual(owners(makeView(9, b).nodes));
    expect(ownerIn(makeView(1, []), 'x')).toBeUndefined();
  });

  it('a room keeps its cached state only across consecutive epochs where this node owned it in both', () => {
    const v1 = makeView(1, nodes(2));
    const v2 = makeView(2, nodes(3));
    const v4 = makeView(4, nodes(3));
    const stays = rooms.find((r) => ownerIn(v1, r)!.id === 'node-0' && ownerIn(v2, r)!.id === 'node-0')!;
    const moves = rooms.find((r) => ownerIn(v1, r)!.id === 'node-0' && ownerIn(v2, r)!.id === 'node-2')!;
    expect(keepsRoom('node-0', v1, v2, stays)).toBe(true);
    expect(keepsRoom('node-0', v1, v2, moves)).toBe(false);
    expect(keepsRoom('node-0', v2, v4, stays)).toBe(false); // an epoch in between: someone else may have owned it
    expect(keepsRoom('node-1', v1, v2, stays)).toBe(false);
  });
});

describe('one node', () => {
  it('owns every room in epoch 0 and never changes', async () => {
    const p = new LocalPlacement('solo', 'http://127.0.0.1:8080');
    await p.start();
    expect(p.view()).toEqual({ epoch: 0, nodes: [{ id: 'solo', url: 'http://127.0.0.1:8080' }] });
    expect(p.isLocal('any')).toBe(true);
    expect(p.ownerOf('any').id).toBe('solo');
    expect(await p.refresh()).toBe(p.view());
    await p.stop();
  });
});
