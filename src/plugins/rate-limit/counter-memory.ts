// In-memory RateCounter for a single node. Buckets that have refilled completely are
// forgotten by a periodic sweep, so memory follows the recently active users and rooms.
import type { BucketLimit, RateCounter } from './counter.js';

interface Bucket {
  tokens: number;
  at: number;
  full: number;
}

export class MemoryRateCounter implements RateCounter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  /** `now` is a monotonic clock in ms (injectable for tests). */
  constructor(
    private readonly now: () => number = () => performance.now(),
    sweepMs = 60_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.buckets.size;
  }

  take(limits: readonly BucketLimit[]): number {
    const t = this.now();
    let wait = 0;
    const states: Bucket[] = [];
    for (const l of limits) {
      let b = this.buckets.get(l.key);
      if (!b) {
        b = { tokens: l.burst, at: t, full: 0 };
        this.buckets.set(l.key, b);
      } else {
        b.tokens = Math.min(l.burst, b.tokens + ((t - b.at) * l.rate) / 1000);
        b.at = t;
      }
      // When this bucket will be full again, so the sweep can drop it from then on.
      b.full = t + ((l.burst - b.tokens + 1) * 1000) / l.rate;
      if (b.tokens < 1) wait = Math.max(wait, Math.ceil(((1 - b.tokens) * 1000) / l.rate));
      states.push(b);
    }
    if (wait > 0) return wait;
    for (const b of states) b.tokens -= 1;
    return 0;
  }

  sweep(): void {
    const t = this.now();
    for (const [k, b] of this.buckets) if (b.full <= t) this.buckets.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.buckets.clear();
  }
}
