// Full-text search on PostgreSQL without a text search configuration: the words of a text are
// computed here, as SQLite's unicode61 tokenizer (remove_diacritics) sees them, so results do
// not depend on the server's locale or extensions and both stores find the same messages.

/** The longest word PostgreSQL indexes (bytes); longer ones are left out, as to_tsvector does. */
const MAX_LEXEME_BYTES = 2046;
const MAX_POSITION = 16383;

/** The words of a text for search: runs of letters and digits, lower-cased, without diacritics. */
export function searchWords(text: string): string[] {
  const words =
    text
      .normalize('NFD')
      .replace(/\p{M}/gu, '')
      .toLowerCase()
      .match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [];
  return words.filter((w) => Buffer.byteLength(w) <= MAX_LEXEME_BYTES);
}

/** tsvector literal of a text (words with positions), or null when it has no words. */
export function toTsvector(text: string): string | null {
  const words = searchWords(text);
  if (words.length === 0) return null;
  return words.map((w, i) => `'${w}':${Math.min(i + 1, MAX_POSITION)}`).join(' ');
}

/**
 * tsquery of a user's query: every word must match; a word the tokenizer splits (`a_b`)
 * must match as a phrase. Only letters and digits reach the query, so no query syntax does.
 */
export function toTsquery(query: string): string | null {
  const terms: string[] = [];
  for (const raw of (query.match(/[\p{L}\p{N}_]+/gu) ?? []).slice(0, 16)) {
    const words = searchWords(raw);
    if (words.length === 0) continue;
    terms.push(words.length === 1 ? `'${words[0]}'` : `(${words.map((w) => `'${w}'`).join(' <-> ')})`);
  }
  return terms.length === 0 ? null : terms.join(' & ');
}
