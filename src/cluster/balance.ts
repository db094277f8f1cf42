// Spreading clients over the nodes of a cluster: which node the dispatcher hands out, and how
// many of its clients a node well above the mean asks to reconnect elsewhere. Both work from
// the node list the bus last saw (fresh heartbeats only), never waiting on the network.
// Each node reports its count at its own heartbeat, so while clients arrive or leave in
// numbers the counts in the list were taken at different moments; a node sheds clients only
// once the counts have settled and it has stayed above the mean for several rounds.
import type { NodeInfo } from '../bus/bus.js';

/**
 * Picks nodes for new clients by "power of two random choices": two live nodes at random, the
 * less loaded of them. A node's load is its reported connection count plus what this
 * dispatcher handed it out since that report, so a burst of clients (everyone displaced by a
 * node that died) spreads at once instead of all going to the node that looked emptiest.
 */
export class Dispatcher {
  /** Hand-outs per node since its report stamped `at`. */
  private readonly handed = new Map<string, { at: number; n: number }>();

  constructor(private readonly random: () => number = Math.random) {}

  pick(nodes: readonly NodeInfo[]): NodeInfo | null {
    const live = nodes.filter((n) => n.url !== '');
    if (live.length === 0) return null;
    const i = Math.floor(this.random() * live.length);
    let j = Math.floor(this.random() * (live.length - 1));
    if (j >= i) j++;
    const a = live[i]!;
    const b = live[j] ?? a;
    const la = this.load(a);
    const lb = this.load(b);
    const chosen = la < lb || (la === lb && this.random() < 0.5) ? a : b;
    const h = this.handed.get(chosen.id);
    this.handed.set(chosen.id, { at: chosen.at, n: h && h.at === chosen.at ? h.n + 1 : 1 });
    if (this.handed.size > 4 * live.length + 16) this.forgetGone(live);
    return chosen;
  }

  private load(n: NodeInfo): number {
    const h = this.handed.get(n.id);
    return n.connections + (h && h.at === n.at ? h.n : 0);
  }

  private forgetGone(live: readonly NodeInfo[]): void {
    const ids = new Set(live.map((n) => n.id));
    for (const id of this.handed.keys()) if (!ids.has(id)) this.handed.delete(id);
  }
}

/**
 * How many clients node `self` should ask to move now: none unless it is well above the mean
 * (by 2 connections and 10 % at least); otherwise a few, at most 5 % of its connections, so
 * load moves gradually and the counts can catch up between two rounds.
 */
export function toShed(self: string, nodes: readonly NodeInfo[]): number {
  if (nodes.length < 2) return 0;
  const mine = nodes.find((n) => n.id === self)?.connections ?? 0;
  const mean = nodes.reduce((sum, n) => sum + n.connections, 0) / nodes.length;
  const excess = mine - mean;
  if (excess < Math.max(2, mean * 0.1)) return 0;
  return Math.max(1, Math.min(Math.ceil(excess / 2), Math.ceil(mine * 0.05)));
}

/** Rounds in a row a node must be well above the mean, with settled counts, before it sheds. */
export const SHED_ROUNDS = 3;

/** Longest pause, in doublings of `rounds`, after clients asked to move kept coming back. */
const MAX_BACKOFF = 5;

/**
 * Asked once per heartbeat round with the node list: how many clients node `self` should ask
 * to move now (see toShed), but only when every node's count moved by less than 5% (and 2
 * connections) since the round before, and the excess held for `rounds` settled rounds in a
 * row. A burst of connections (a load balancer dealing thousands of clients, everyone
 * displaced by a node that died) therefore moves nobody while it lasts.
 *
 * Clients that reconnect to a fixed address come back to this node when asked to move. When
 * most of those asked last time came back, asking again would only make them reconnect: the
 * node waits twice as many rounds as before each time (up to 2^MAX_BACKOFF times `rounds`),
 * and asks as usual again once a round's clients stay away.
 */
export class Rebalancer {
  private prev = new Map<string, number>();
  private streak = 0;
  private round = 0;
  /** Clients asked to move the last time this node asked, and how many of them came back since. */
  private asked = 0;
  private back = 0;
  /** Times in a row most of those asked came back; no asking before round `resumeAt`. */
  private misses = 0;
  private resumeAt = 0;

  constructor(
    private readonly self: string,
    private readonly rounds = SHED_ROUNDS,
  ) {}

  /** `returned`: clients asked to move that reconnected to this node since the last round. */
  next(nodes: readonly NodeInfo[], returned = 0): number {
    this.round++;
    this.back += returned;
    const settled =
      nodes.length === this.prev.size &&
      nodes.every((n) => {
        const p = this.prev.get(n.id);
        return p !== undefined && Math.abs(n.connections - p) <= Math.max(2, p * 0.05);
      });
    this.prev = new Map(nodes.map((n) => [n.id, n.connections]));
    const n = toShed(this.self, nodes);
    if (n === 0 || !settled) {
      this.streak = 0;
      return 0;
    }
    if (++this.streak < this.rounds) return 0;
    this.streak = 0;
    if (this.asked > 0) {
      this.misses = this.back * 2 >= this.asked ? Math.min(this.misses + 1, MAX_BACKOFF) : 0;
      this.asked = 0;
      if (this.misses > 0) this.resumeAt = this.round + this.rounds * 2 ** this.misses;
    }
    return this.round < this.resumeAt ? 0 : n;
  }

  /** How many clients were asked to move after `next` said to (fewer when too few are old enough). */
  moved(asked: number): void {
    if (asked === 0) return;
    this.asked = asked;
    this.back = 0;
  }
}
