// The pins port: a room's pinned messages. Implementations: store/sqlite/pins.ts and
// store/postgres/pins.ts, on the Store's database.
//
// Contract
// - Each method is one atomic write or read; a write's promise settles after it is durable.
// - A message is pinned at most once; pinning it again changes nothing and returns false.
// - `pin` refuses with `conflict` when the room already has `max` pins, within the same write.
// - Pins belong to their room: deleting the room removes them. `pins` leaves out messages
//   that were deleted (a `delete` message targets them) or removed by retention.
export interface PinRecord {
  seq: number;
  by: string;
  ts: number;
}

export interface PinStore {
  /** Pins a message; false when it was pinned already. */
  pin(room: string, seq: number, by: string, ts: number, max: number): Promise<boolean>;
  /** Unpins a message; false when it was not pinned. */
  unpin(room: string, seq: number): Promise<boolean>;
  /** The room's pins whose message is still there, most recently pinned first. */
  pins(room: string): Promise<PinRecord[]>;
}
