// The RateCounter port: token buckets the rate limiter draws from. Implementations:
// counter-memory.ts (one node); a Redis one (a Lua script over the same keys) for a cluster.
//
// Contract
// - A bucket holds at most `burst` tokens and gains `rate` tokens per second; an unknown
//   bucket starts full.
// - `take` is all-or-nothing over the buckets it names: either one token is taken from each
//   (and it returns 0), or none is taken and it returns the milliseconds after which the
//   emptiest of them has a token again. A refused command therefore costs nothing, and a
//   room's bucket is not drained by a user whose own bucket refuses.
// - Each call is atomic with respect to other calls on the same keys.
export interface BucketLimit {
  key: string;
  /** Tokens per second (may be fractional). */
  rate: number;
  /** Capacity. */
  burst: number;
}

export interface RateCounter {
  take(buckets: readonly BucketLimit[]): number | Promise<number>;
  close?(): void | Promise<void>;
}
