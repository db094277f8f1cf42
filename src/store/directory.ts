// The Directory port: what server administrators look up — users and rooms by id or name.
// Read-only; the queries scan (bounded by `limit`), which suits an operator's occasional search.
// Implementations: store/sqlite/directory.ts and store/postgres/directory.ts.
//
// Contract
// - A query matches a user whose id or display name, or a room whose id or name, contains it,
//   without regard to case (ASCII case at least); `%` and `_` are plain characters. An empty
//   query matches everything.
// - Results come in id order, at most `limit`, with `more` true when further ones exist.
// - Direct rooms are never listed: they have no name, and what they hold is two people's.
import type { RoomKind } from '../protocol/schema.js';

export interface DirectoryUser {
  id: string;
  name: string;
  /** The user has a built-in account (else it came with an external token). */
  account: boolean;
  createdAt: number;
}

export interface DirectoryRoom {
  id: string;
  kind: Exclude<RoomKind, 'direct'>;
  name: string;
  topic: string;
  createdBy: string | null;
  createdAt: number;
  members: number;
}

export interface Page<T> {
  items: T[];
  more: boolean;
}

export interface Directory {
  findUsers(query: string, limit: number): Promise<Page<DirectoryUser>>;
  findRooms(query: string, limit: number): Promise<Page<DirectoryRoom>>;
}

/** `query` as a LIKE pattern that matches it anywhere, with `\` escaping the wildcards. */
export function containsPattern(query: string): string {
  return `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
