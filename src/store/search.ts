// The SearchStore port: full-text search of room history. Implementations: store/sqlite (an
// FTS5 index in its own file, kept by a worker thread) and store/postgres (tsvector + GIN);
// behaviour suite: test/conformance/search.ts.
//
// Contract
// - Words match whatever their case and diacritics; every word of the query must match; only
//   letters and digits of the query count, so no query syntax reaches the database.
// - Only the current version of a message is found: an edit replaces what its thread matches,
//   a delete removes it.
// - A search sees every message committed before it was called.
import type { Message } from '../protocol/schema.js';

export interface SearchStore {
  /** Full-text search in the given rooms, newest first; hidden messages of `viewer` excluded. */
  search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]>;
}
