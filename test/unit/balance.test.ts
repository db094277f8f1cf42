// Rebalancing decisions from the node list, without a cluster: a node sheds clients only when
// the counts have settled and it stays well above the mean, never during a burst of connects
// whose counts the nodes reported at different moments.
import { describe, expect, it } from 'vitest';
import { Rebalancer, SHED_ROUNDS, toShed } from '../../src/cluster/balance.js';
import type { NodeInfo } from '../../src/bus/bus.js';

const list = (a: number, b: number): NodeInfo[] => [
  { id: 'a', url: 'http://a', connections: a, at: 0 },
  { id: 'b', url: 'http://b', connections: b, at: 0 },
];

describe('rebalancing', () => {
  it('a node far above the mean would shed a few at a time', () => {
    expect(toShed('a', list(100, 10))).toBe(5);
    expect(toShed('a', list(100, 95))).toBe(0);
    expect(toShed('b', list(100, 10))).toBe(0);
  });

  it('moves nobody while clients arrive in numbers, although the reported counts differ by 20% at times', () => {
    const r = new Rebalancer('a');
    let shed = 0;
    let looksUneven = 0;
    // 6,000 clients dealt evenly over two nodes in 30 rounds; each node's count in the list is
    // the one it reported at its last heartbeat, b's one round older than a's.
    for (let round = 1; round <= 30; round++) {
      const nodes = list(round * 100, (round - 1) * 100);
      if (toShed('a', nodes) > 0) looksUneven++;
      shed += r.next(nodes);
    }
    // Judged round by round, node a would have sent clients away in the first rounds.
    expect(looksUneven).toBeGreaterThan(3);
    expect(shed).toBe(0);
  });

  it(`sheds once the excess has held for ${SHED_ROUNDS} settled rounds, then waits again`, () => {
    const r = new Rebalancer('a');
    const rounds: number[] = [];
    let a = 200;
    for (let i = 0; i < 12; i++) {
      const n = r.next(list(a, 20));
      rounds.push(n);
      a -= n;
    }
    // Round 1 has nothing to compare with; rounds 2..4 are settled; the shed changes a's count, so the next ones are not.
    expect(rounds.slice(0, SHED_ROUNDS)).toEqual(Array(SHED_ROUNDS).fill(0));
    expect(rounds[SHED_ROUNDS]).toBeGreaterThan(0);
    expect(rounds.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(a).toBeLessThan(200);
  });
});
