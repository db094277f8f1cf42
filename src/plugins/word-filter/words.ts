// The WordStore port: the blocked words administered by API. Implementations: words-sqlite.ts
// (the `blocked_words` table of the node's SQLite database).
//
// Contract
// - Words are stored in the form `normalizeWord` returns (NFC, lower case); callers pass that form.
// - Each call is atomic: `replace` leaves either the old list or the new one, never a mix.
// - `list` sees every change whose promise has resolved.
export interface WordStore {
  list(): Promise<string[]>;
  /** Adds the words not yet listed; returns how many were new. */
  add(words: string[]): Promise<number>;
  /** Removes one word; false when it was not listed. */
  remove(word: string): Promise<boolean>;
  /** Replaces the whole list. */
  replace(words: string[]): Promise<void>;
}
