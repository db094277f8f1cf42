// The login limiter port: counts failed logins per key (account, client address) in a time
// window so password guessing stops before argon2 runs. The in-memory backend is
// limiter-memory.ts; a Redis one can replace it for clusters without the caller noticing.
//
// Contract
// - `attempt` is checked and counted atomically per key: of N concurrent attempts under a key
//   with `limit` L left, at most L are allowed, so parallel guesses cannot slip past the limit.
// - A refused attempt is not counted (it did no work) and reports how long until every key
//   it named allows attempts again.
// - `succeeded` gives back what an allowed attempt counted, so only failures accumulate:
//   successful logins from a shared address never lock that address out.
export interface LimitKey {
  key: string;
  /** Attempts allowed per window under this key. */
  limit: number;
}

export interface LoginLimiter {
  /** Counts one attempt under every key; resolves 0 when allowed, else milliseconds to wait. */
  attempt(keys: LimitKey[]): Promise<number>;
  /** The allowed attempt under these keys succeeded: forget its count. */
  succeeded(keys: LimitKey[]): Promise<void>;
  close?(): void;
}
