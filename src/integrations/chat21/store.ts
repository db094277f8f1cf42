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

export interface Chat21Store {
  /** Marks the user's conversation in `room` archived up to `seq` (never moves back). */
  archive(user: string, room: string, seq: number): Promise<void>;
  /** room id -> archived-up-to seq, for the user's archived conversations. */
  archived(user: string): Promise<Map<string, number>>;
  /** Replaces the Chat21 attributes of a group room. */
  setGroupAttributes(room: string, attributes: Record<string, unknown>): Promise<void>;
  /** The attributes of a group room ({} when none were set). */
  groupAttributes(room: string): Promise<Record<string, unknown>>;
  /** Records a push-notification instance (device) of a user; `data` replaces earlier data. */
  saveInstance(user: string, instance: string, data: Record<string, unknown>): Promise<void>;
}
