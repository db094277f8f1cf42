// The one backoff of Parley's retries: the SDK's reconnects and resends, and the webhook
// deliveries. Doubling from `base`, capped at `max`, with jitter (the upper half of the
// range), so clients that lost the same server do not all come back at the same moment.

/** The wait before attempt `n + 1` (n ≥ 1). */
export function backoff(n: number, base: number, max: number, random: () => number = Math.random): number {
  const full = Math.min(max, base * 2 ** Math.max(0, n - 1));
  return Math.round(full / 2 + random() * (full / 2));
}
