// The full-text search index of the SQLite store, kept out of the commits of sends. Sends only
// give each text, edit and delete message a growing `fts_id`; a worker thread with its own
// connections reads those messages in `fts_id` order and applies them to an FTS5 table in a
// separate database file (`<file>-search.db`), in batches. FTS5's segment merges, which made
// some group commits many times longer, now run beside the event loop, and the index's write
// lock is not the messages' write lock. The index is derived data: its cursor is stored with
// it, so after a crash it resumes from there, and a lost file is rebuilt from the messages.
//
// A search waits until the index has caught up with every message stored before it, so it
// sees what any resolved write stored, as the Store contract says. An index that cannot catch
// up in time (being rebuilt after its file was lost, or its worker failed) makes the search
// fail with `unavailable` rather than answer from part of the messages.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';

/** Statements of the indexer, for the database holding the index (`fts`) and the one holding the messages (`msgs`). */
function statements(fts: string, msgs: string): Record<string, string> {
  return {
    schema: `CREATE VIRTUAL TABLE IF NOT EXISTS ${fts}.messages_fts USING fts5(text, room_id UNINDEXED, seq UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');
      CREATE TABLE IF NOT EXISTS ${fts}.search_state (k TEXT PRIMARY KEY, v INTEGER NOT NULL);`,
    ops: `SELECT fts_id, room_id, seq, kind, text, target FROM ${msgs}.messages WHERE fts_id > ? ORDER BY fts_id LIMIT ?`,
    insert: `INSERT OR REPLACE INTO ${fts}.messages_fts (rowid, text, room_id, seq) VALUES (?, ?, ?, ?)`,
    // An edit or a delete takes the earlier versions of its thread out of the index.
    deleteThread: `DELETE FROM ${fts}.messages_fts WHERE rowid IN (SELECT fts_id FROM ${msgs}.messages
      WHERE room_id = ? AND (seq = ? OR (target = ? AND kind = 'edit')) AND fts_id IS NOT NULL AND fts_id < ?)`,
    cursor: `SELECT coalesce((SELECT v FROM ${fts}.search_state WHERE k = 'cursor'), 0)`,
    setCursor: `INSERT INTO ${fts}.search_state (k, v) VALUES ('cursor', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`,
    // Messages removed by retention or with their room leave their index rows behind; searches
    // join with the messages, so those rows are never shown, and this clears them.
    prune: `DELETE FROM ${fts}.messages_fts WHERE rowid IN (SELECT f.rowid FROM ${fts}.messages_fts f
      WHERE NOT EXISTS (SELECT 1 FROM ${msgs}.messages m WHERE m.room_id = f.room_id AND m.seq = f.seq))`,
  };
}

/** Most messages applied per index transaction. */
const BATCH = 2000;
/**
 * How long the worker rests when it found nothing more to index. Long rests make big batches
 * (fewer FTS5 segments, less CPU taken from the event loop's core on a small machine); a search
 * wakes it at once.
 */
const IDLE_MS = 500;

// Plain CommonJS run by eval, so it works the same from the sources (tests) and from dist/.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.lib);
const q = workerData.sql;
const db = new Database(workerData.searchFile);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
db.prepare('ATTACH DATABASE ? AS p').run(workerData.file);
db.exec(q.schema);
const s = {};
for (const k of ['ops', 'insert', 'deleteThread', 'cursor', 'setCursor', 'prune']) s[k] = db.prepare(q[k]);
s.cursor.pluck();
let cursor = s.cursor.get();
let closing = false;
let timer = null;
const apply = db.transaction((ops) => {
  for (const o of ops) {
    if (o.kind === 'edit' || o.kind === 'delete') s.deleteThread.run(o.room_id, o.target, o.target, o.fts_id);
    if ((o.kind === 'text' || o.kind === 'edit') && o.text !== null) s.insert.run(o.fts_id, o.text, o.room_id, o.seq);
    cursor = o.fts_id;
  }
  s.setCursor.run(cursor);
});
function step() {
  timer = null;
  if (closing) return;
  let more = false;
  try {
    const ops = s.ops.all(cursor, ${BATCH});
    if (ops.length > 0) apply(ops);
    more = ops.length === ${BATCH};
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
  parentPort.postMessage({ indexed: cursor });
  timer = setTimeout(step, more ? 0 : workerData.idleMs);
}
parentPort.on('message', (m) => {
  if (m === 'poke') { if (timer) { clearTimeout(timer); step(); } return; }
  if (m === 'prune') { try { s.prune.run(); } catch (err) { /* the next prune retries */ } return; }
  if (m === 'close') {
    closing = true;
    if (timer) clearTimeout(timer);
    db.close();
    parentPort.close();
  }
});
step();
`;

/** How long a search waits for the index to catch up before it answers `unavailable`. */
export const SEARCH_WAIT_MS = 2000;

export interface SearchIndexer {
  /**
   * Resolves true once every message with an fts_id up to `id` is in the index, or false when
   * that did not happen within `maxWaitMs` (or the indexer failed).
   */
  caughtUp(id: number, maxWaitMs?: number): Promise<boolean>;
  /** Some messages were removed: clear their index rows (in the background). */
  pruned(): void;
  close(): Promise<void>;
}

/** Creates the index database and attaches it to the store's connection as `search`. */
export function attachSearchIndex(db: Database.Database, file: string): string {
  const searchFile = file === ':memory:' ? ':memory:' : `${file}-search.db`;
  db.prepare('ATTACH DATABASE ? AS search').run(searchFile);
  if (searchFile !== ':memory:') db.pragma('search.journal_mode = WAL');
  db.exec(statements('search', 'main').schema!);
  return searchFile;
}

/** The worker-thread indexer of a file database. */
export class WorkerSearchIndexer implements SearchIndexer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private indexed = 0;
  private waiters: Array<{ id: number; resolve: (ok: boolean) => void }> = [];
  private repoke: ReturnType<typeof setTimeout> | null = null;
  private failed = false;

  constructor(file: string, searchFile: string, idleMs = IDLE_MS) {
    const lib = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { lib, file, searchFile, idleMs, sql: statements('main', 'p') } });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: { indexed?: number }) => {
      if (typeof m.indexed !== 'number') return;
      this.indexed = m.indexed;
      this.waiters = this.waiters.filter((w) => {
        if (w.id > this.indexed) return true;
        w.resolve(true);
        return false;
      });
      // A search still waits for messages whose commit had not landed yet: look again shortly.
      if (this.waiters.length > 0 && !this.repoke) {
        this.repoke = setTimeout(() => {
          this.repoke = null;
          this.worker.postMessage('poke');
        }, 5);
      }
    });
    // A failing indexer must not take the server down: searches then answer `unavailable`.
    this.worker.on('error', () => {
      this.failed = true;
      for (const w of this.waiters.splice(0)) w.resolve(false);
    });
  }

  caughtUp(id: number, maxWaitMs = SEARCH_WAIT_MS): Promise<boolean> {
    if (this.indexed >= id) return Promise.resolve(true);
    if (this.failed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        id,
        resolve: (ok: boolean) => {
          clearTimeout(t);
          resolve(ok);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, maxWaitMs);
      this.waiters.push(w);
      this.worker.postMessage('poke');
    });
  }

  pruned(): void {
    this.worker.postMessage('prune');
  }

  async close(): Promise<void> {
    if (this.repoke) clearTimeout(this.repoke);
    for (const w of this.waiters.splice(0)) w.resolve(false);
    this.worker.postMessage('close');
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([this.exited, timeout]);
    await this.worker.terminate();
  }
}

/** The indexer of an in-memory database: the same steps, on the store's own connection. */
export class InlineSearchIndexer implements SearchIndexer {
  private readonly s: Record<string, Database.Statement>;
  private cursor: number;

  constructor(private readonly db: Database.Database) {
    const q = statements('search', 'main');
    this.s = Object.fromEntries(['ops', 'insert', 'deleteThread', 'cursor', 'setCursor', 'prune'].map((k) => [k, db.prepare(q[k]!)]));
    this.cursor = this.s.cursor!.pluck().get() as number;
  }

  caughtUp(id: number): Promise<boolean> {
    while (this.cursor < id) {
      const ops = this.s.ops!.all(this.cursor, BATCH) as Array<{
        fts_id: number;
        room_id: string;
        seq: number;
        kind: string;
        text: string | null;
        target: number | null;
      }>;
      if (ops.length === 0) break;
      this.db.transaction(() => {
        for (const o of ops) {
          if (o.kind === 'edit' || o.kind === 'delete') this.s.deleteThread!.run(o.room_id, o.target, o.target, o.fts_id);
          if ((o.kind === 'text' || o.kind === 'edit') && o.text !== null) this.s.insert!.run(o.fts_id, o.text, o.room_id, o.seq);
          this.cursor = o.fts_id;
        }
        this.s.setCursor!.run(this.cursor);
      })();
    }
    return Promise.resolve(true);
  }

  pruned(): void {
    this.s.prune!.run();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
