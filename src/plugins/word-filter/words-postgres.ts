// WordStore on PostgreSQL (table `blocked_words`, created by the PostgreSQL store's
// migrations), on the store's pool: every node of a cluster sees the same list. `add` and
// `remove` are single statements; `replace` is one transaction, so a reader sees the old list
// or the new one, never a mix. Words compare case-insensitively, as in SQLite.
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import { query, toStoreError, transaction } from '../../store/postgres/pool.js';
import type { WordStore } from './words.js';

function words(v: unknown): string[] {
  if (!Array.isArray(v) || v.some((w) => typeof w !== 'string' || w === '')) {
    throw new ParleyError('invalid', 'words must be a list of non-empty strings', { field: 'words' });
  }
  return v as string[];
}

export class PostgresWordStore implements WordStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async list(): Promise<string[]> {
    return (await this.query<{ word: string }>('SELECT word FROM blocked_words ORDER BY word')).rows.map((r) => r.word);
  }

  async add(list: string[]): Promise<number> {
    words(list);
    if (list.length === 0) return 0;
    // Duplicates within the call count once (DISTINCT ON the index expression).
    const { rowCount } = await this.query(
      `INSERT INTO blocked_words (word, created_at)
      SELECT DISTINCT ON (lower(w)) w, $2::bigint FROM unnest($1::text[]) AS w
      ON CONFLICT ((lower(word))) DO NOTHING`,
      [list, Date.now()],
    );
    return rowCount ?? 0;
  }

  async remove(word: string): Promise<boolean> {
    if (typeof word !== 'string' || word === '') throw new ParleyError('invalid', 'word must be a non-empty string', { field: 'word' });
    const { rowCount } = await this.query('DELETE FROM blocked_words WHERE lower(word) = lower($1)', [word]);
    return (rowCount ?? 0) > 0;
  }

  async replace(list: string[]): Promise<void> {
    words(list);
    await transaction(this.pool, async (client) => {
      await client.query('DELETE FROM blocked_words');
      await client.query(
        `INSERT INTO blocked_words (word, created_at)
        SELECT DISTINCT ON (lower(w)) w, $2::bigint FROM unnest($1::text[]) AS w`,
        [list, Date.now()],
      );
    }).catch((err: unknown) => {
      throw toStoreError(err);
    });
  }
}
