// Heartbeats spread over the interval: a wheel of slots, one visited per tick, each holding an
// equal share of the connections (dealt round-robin as they arrive, so a burst of reconnects
// spreads too). Every connection is still visited once per interval, but a node never pings
// all of them in one turn of the event loop: with thousands of connections on a small CPU
// share, that burst (and the burst of pongs after it) delayed command replies behind it.

/** About how often a slot is visited; the number of slots follows from the interval. */
const TICK_MS = 100;
const MAX_SLOTS = 1000;

export class HeartbeatWheel<T> {
  private readonly slots: Array<Set<T>>;
  private readonly slotOf = new Map<T, number>();
  private readonly timer: NodeJS.Timeout;
  /** The slot the next tick visits, and the slot the next item joins. */
  private hand = 0;
  private deal = 0;

  /** Calls `visit` for each item once per `intervalMs`, a slot of items per tick. */
  constructor(
    intervalMs: number,
    private readonly visit: (item: T) => void,
  ) {
    const n = Math.max(1, Math.min(MAX_SLOTS, Math.round(intervalMs / TICK_MS)));
    this.slots = Array.from({ length: n }, () => new Set<T>());
    this.timer = setInterval(() => this.tick(), intervalMs / n);
    this.timer.unref();
  }

  get size(): number {
    return this.slotOf.size;
  }

  add(item: T): void {
    if (this.slotOf.has(item)) return;
    const slot = this.deal;
    this.deal = (this.deal + 1) % this.slots.length;
    this.slots[slot]!.add(item);
    this.slotOf.set(item, slot);
  }

  remove(item: T): void {
    const slot = this.slotOf.get(item);
    if (slot === undefined) return;
    this.slotOf.delete(item);
    this.slots[slot]!.delete(item);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const slot = this.slots[this.hand]!;
    this.hand = (this.hand + 1) % this.slots.length;
    for (const item of [...slot]) this.visit(item);
  }
}
