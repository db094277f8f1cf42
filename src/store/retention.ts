// The RetentionStore port: removal of old messages by each room's (or the default) limits.
// Implementations: store/sqlite, store/postgres; behaviour suite: test/conformance/retention.ts.
//
// Contract
// - Retention removes a prefix of each room's history and nothing else, so what a room keeps
//   is one range of seqs ending at its last; a room's last seq outlives its messages, so a
//   seq is never given out twice.
// - An age limit cuts at the first message, in seq order, stamped at or after it: a message
//   stamped earlier but stored later stays, so no hole opens inside the history.
// - It runs beside the room log's commits without holding them up, on any node: removing a
//   prefix changes nothing a room's owner decides with.
export interface RetentionStore {
  /** Removes messages beyond each room's (or the default) count and age limits; returns how many. */
  applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number>;
}
