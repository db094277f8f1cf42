// The Chat21 state port: what Chat21 clients expect that Parley's rooms and messages do not
// already hold. Everything else of the Chat21 model maps onto the Store (see
// docs/chat21.md): inbox copies are room messages, statuses are read markers, groups are
// group rooms. Implementations: store-sqlite.ts (single node) and store-postgres.ts (clusters).
//
// Contract
// - Each method is one atomic write or read; a write's promise settles after it is durable.
// - `archive` keeps the highest seq per (user, room): a conversation is archived while no
//   message newer than that seq exists, so a new message un-archives it without a write.
// - Group attributes are an opaque JSON object per room, replaced as a whole.
// - A user keeps at most `max` instances: saving one more removes the user's least recently
//   saved others, so a device list that churns (apps reinstalled, browsers cleared) stays
//   bounded without refusing the device in hand. Saving an instance id the user has is an
//   update and makes it the most recent.
// - `removeRoom` forgets everything kept for a room — its attributes and every user's archive
//   mark — so a room created again with the same id starts clean: neither its new owner sees
//   the old attributes nor a former member the old conversation as archived.

export interface Chat21Store {
  /** Marks the user's conversation in `room` archived up to `seq` (never moves back). */
  archive(user: string, room: string, seq: number): Promise<void>;
  /** room id -> archived-up-to seq, for the user's archived conversations. */
  archived(user: string): Promise<Map<string, number>>;
  /** Replaces the Chat21 attributes of a group room. */
  setGroupAttributes(room: string, attributes: Record<string, unknown>): Promise<void>;
  /** The attributes of a group room ({} when none were set). */
  groupAttributes(room: string): Promise<Record<string, unknown>>;
  /**
   * Records a push-notification instance (device) of a user; `data` replaces earlier data.
   * Keeps the user's `max` most recently saved instances (see the contract).
   */
  saveInstance(user: string, instance: string, data: Record<string, unknown>, max: number): Promise<void>;
  /** The user's instance ids, most recently saved first. */
  instances(user: string): Promise<string[]>;
  /** Forgets the Chat21 state of a deleted room (see the contract). */
  removeRoom(room: string): Promise<void>;
}
