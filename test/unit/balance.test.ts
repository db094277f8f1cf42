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

  it('asks less and less often while the clients it asks come back, and as usual once they stay away', () => {
    const r = new Rebalancer('a');
    const asks: number[] = [];
    let back = 0;
    // Clients with a fixed address: every one asked to move reconnects here, so a's count stays.
    for (let round = 1; round <= 120; round++) {
      const n = r.next(list(200, 20), back);
      r.moved(n);
      back = n;
      if (n > 0) asks.push(round);
    }
    // Asking every SHED_ROUNDS rounds would be 40 times; the gaps grow instead.
    expect(asks.length).toBeLessThanOrEqual(6);
    const gaps = asks.slice(1).map((x, i) => x - asks[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
    // Then the clients asked stay away (a load balancer or the dispatcher places them): back to every SHED_ROUNDS rounds.
    let a = 200;
    const later: number[] = [];
    for (let round = 121; round <= 400 && later.length < 4; round++) {
      const n = r.next(list(a, 20), 0);
      r.moved(n);
      a -= n;
      if (n > 0) later.push(round);
    }
    expect(later.length).toBe(4);
    expect(later[3]! - later[2]!).toBeLessThanOrEqual(2 * SHED_ROUNDS);
  });
});
