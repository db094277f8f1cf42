// What an error reply says about a write's fate, shared by the server and the SDK (no
// dependencies: the SDK runs in browsers).

/**
 * The `details` of an `unavailable` error whose write may still have been stored: it was
 * handed to the room's owning node, or sent to PostgreSQL, and the answer did not come in
 * time. Sent again with the same
 * key, it is stored once (the SDK does so by itself).
 */
export const outcomeUnknown = (): Record<string, unknown> => ({ outcome: 'unknown' });
export const isOutcomeUnknown = (details: Record<string, unknown> | undefined): boolean => details?.outcome === 'unknown';
