// The UserStore port: users as Parley knows them (id, display name, public profile from the
// last token seen) and the blocks between them. Implementations: store/sqlite, store/postgres;
// behaviour suite: test/conformance/users.ts.
//
// Contract
// - `upsertUser` creates or replaces the user's name and profile; reads see it once resolved.
// - Blocks are written by the room log (through the direct room of the pair, see writer.ts);
//   this port only reads them.
import type { User } from '../protocol/schema.js';

export interface UserStore {
  /** Creates or updates the user's name and profile. */
  upsertUser(user: User): Promise<User>;
  getUser(id: string): Promise<User | null>;
  /** Users `user` blocks, by id. */
  blocksOf(user: string): Promise<string[]>;
  /** Members of the room who block `user` (they receive none of its typing), by id. */
  blockersIn(room: string, user: string): Promise<string[]>;
}
