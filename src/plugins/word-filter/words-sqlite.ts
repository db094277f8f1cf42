// WordStore on the node's SQLite database (table `blocked_words`, created by the store's
// migrations). Statements run synchronously on the shared connection, each call in its own
// transaction, so they never interleave with the store's group commits.
import type Database from 'better-sqlite3';
import type { WordStore } from './words.js';

export class SqliteWordStore implements WordStore {
  private readonly s;
  private readonly tx: {
    add: (words: string[]) => number;
    replace: (words: string[]) => void;
  };

  constructor(db: Database.Database) {
    this.s = {
      list: db.prepare('SELECT word FROM blocked_words ORDER BY word').pluck(),
      insert: db.prepare('INSERT INTO blocked_words (word, created_at) VALUES (?, ?) ON CONFLICT(word) DO NOTHING'),
      remove: db.prepare('DELETE FROM blocked_words WHERE word = ?'),
      clear: db.prepare('DELETE FROM blocked_words'),
    };
    this.tx = {
      add: db.transaction((words: string[]) => {
        const now = Date.now();
        let added = 0;
        for (const w of words) added += this.s.insert.run(w, now).changes;
        return added;
      }),
      replace: db.transaction((words: string[]) => {
        this.s.clear.run();
        const now = Date.now();
        for (const w of words) this.s.insert.run(w, now);
      }),
    };
  }

  // async so that a database error becomes a rejection, not a synchronous throw.
  async list(): Promise<string[]> {
    return this.s.list.all() as string[];
  }

  async add(words: string[]): Promise<number> {
    return this.tx.add(words);
  }

  async remove(word: string): Promise<boolean> {
    return this.s.remove.run(word).changes > 0;
  }

  async replace(words: string[]): Promise<void> {
    this.tx.replace(words);
  }
}
