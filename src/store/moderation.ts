// The ModerationStore port: bans and access lists as committed. Room bans and access lists
// are written by the room log (writer.ts) with the room's other changes; server-wide bans are
// nobody's room, so they are written here. Implementations: store/sqlite, store/postgres;
// behaviour suite: test/conformance/moderation.ts.
//
// Contract
// - A ban is in force until `until` (ms; null: forever); a new ban of the same user in the
//   same place replaces the earlier one.
// - Reads see every commit whose promise has resolved.
import type { Ban } from '../protocol/schema.js';

export interface ModerationStore {
  /** Records a server-wide ban, replacing an earlier one of the same user. */
  banFromServer(b: { user: string; until: number | null; reason: string; by: string | null }): Promise<Ban>;
  /** Lifts a server-wide ban; whether there was one. */
  unbanFromServer(user: string): Promise<boolean>;
  /** Bans in force at `now` (room null: server-wide ones), oldest first. */
  bans(room: string | null, now: number): Promise<Ban[]>;
  /** The ban in force for the user in the room, or server-wide when room is null. */
  activeBan(room: string | null, user: string, now: number): Promise<Ban | null>;
  /** A room's black or white list, by user id. */
  accessList(room: string, list: 'black' | 'white'): Promise<string[]>;
}
