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
 * The terms of a user's query, each a list of words: every term must match; a term of more
 * than one word (`a_b`, which the tokenizer splits) must match as a phrase. Only letters and
 * digits reach the terms, so no query syntax does.
 */
export function queryTerms(query: string): string[][] {
  const terms: string[][] = [];
  for (const raw of (query.match(/[\p{L}\p{N}_]+/gu) ?? []).slice(0, 16)) {
    const words = searchWords(raw);
    if (words.length > 0) terms.push(words);
  }
  return terms;
}

/** tsquery of a user's query (see queryTerms), or null when it has no words. */
export function toTsquery(query: string): string | null {
  const terms = queryTerms(query).map((words) => (words.length === 1 ? `'${words[0]}'` : `(${words.map((w) => `'${w}'`).join(' <-> ')})`));
  return terms.length === 0 ? null : terms.join(' & ');
}

/**
 * How many messages hold a word, estimated from what ANALYZE found in `messages.tsv` (its
 * most common words and their share of the rows): the search uses it to skip an index probe
 * that would read every match of a common word in the whole database.
 */
export class WordCounts {
  private shares = new Map<string, number>();
  private rows = 0;

  /** Takes ANALYZE's figures: the most common words, the share of rows holding each, the rows with words. */
  set(words: readonly string[], shares: readonly number[], rows: number): void {
    const m = new Map<string, number>();
    for (let i = 0; i < words.length && i < shares.length; i++) m.set(words[i]!, shares[i]!);
    this.shares = m;
    this.rows = rows;
  }

  /**
   * About how many messages match every word of the query, as far as the statistics tell:
   * the rows times the product of its words' shares (words taken as independent, as the
   * planner does), 0 when one of them is not among the common ones.
   */
  matches(terms: readonly string[][]): number {
    const words = new Set(terms.flat());
    let share = words.size === 0 ? 0 : 1;
    for (const w of words) share *= this.shares.get(w) ?? 0;
    return share * this.rows;
  }
}
