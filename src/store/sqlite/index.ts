// SQLite implementation of every store port (better-sqlite3, WAL): the embedded default, one
// node. Reads run synchronously on the one connection; the room log's batches are written by
// commit.ts in one transaction each, the store's own writes (users, read markers, server-wide
// bans) by group-commit.ts; statements.ts holds the SQL, search-index.ts the full-text index.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ParleyError } from '../../errors.js';
import type { Ban, InboxEntry, Member, Message, Role, Room, ThreadSummary, User } from '../../protocol/schema.js';
import { channelNameKey, type Bounds, type HistoryQuery, type Store } from '../store.js';
import type { Batch, RoomSnapshot, TargetRow } from '../writer.js';
import { DAY_MS, rowToBan, rowToMember, rowToMessage, rowToRoom, type BanRow, type MemberRow, type MessageRow, type RoomRow } from '../rows.js';
import { migrations } from './migrations.js';
import { Checkpointer } from './checkpointer.js';
import { attachSearchIndex, InlineSearchIndexer, WorkerSearchIndexer, type SearchIndexer } from './search-index.js';
import { prepareStatements, type Statements } from './statements.js';
import { GroupCommit } from './group-commit.js';
import { BatchWriter } from './commit.js';

export { rowToMessage } from '../rows.js';

export interface SqliteOptions {
  /** Database file, or ':memory:'. */
  file: string;
  /** 'full' fsyncs every group commit; 'normal' survives a process crash but not power loss. */
  synchronous?: 'full' | 'normal';
  /** Least time between the starts of two commits while writes keep coming (0: every turn). */
  commitIntervalMs?: number;
  /** Checkpoint the WAL from a worker thread instead of inside commits (default true). */
  backgroundCheckpoints?: boolean;
  /** WAL size in pages from which the WAL is made to start over under sustained writes (default 16,384: 64 MB). */
  walRestartPages?: number;
  /** Time between two rounds of the background checkpointer, in ms (default 250). */
  checkpointIntervalMs?: number;
  /** Most messages one retention write removes (default 2,000). */
  retentionBatch?: number;
  /** How long one retention write aims to hold the event loop, in ms (default 2); each write is sized on the last. */
  retentionWriteMs?: number;
}

/** Rooms read per page by a retention sweep. */
const RETENTION_ROOMS = 500;
/** Fewest messages a retention write removes, however slow the disk. */
const RETENTION_MIN = 50;

export class SqliteStore implements Store {
  /** The open database, shared with sibling stores in the same file (accounts, plugins). */
  readonly db: Database.Database;
  readonly commitIntervalMs: number;
  /** Writes of the room log decided into one batch at most (SQLite writes them in microseconds). */
  readonly maxBatch = 5000;
  private readonly retentionBatch: number;
  private readonly retentionWriteMs: number;
  private readonly s: Statements;
  private readonly writes: GroupCommit;
  private readonly batches: BatchWriter;
  private checkpointer: Checkpointer | null = null;
  private readonly indexer: SearchIndexer;
  /** Last fts_id given out (see search-index.ts). */
  private ftsId = 0;
  private closed = false;

  constructor(opts: SqliteOptions) {
    if (opts.file !== ':memory:') mkdirSync(dirname(opts.file), { recursive: true });
    this.commitIntervalMs = opts.commitIntervalMs ?? 0;
    this.retentionBatch = opts.retentionBatch ?? 2000;
    this.retentionWriteMs = opts.retentionWriteMs ?? 2;
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.function('parley_channel_key', { deterministic: true }, (name: unknown) => channelNameKey(String(name)));
    this.migrate();
    if (opts.file !== ':memory:' && opts.backgroundCheckpoints !== false) {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new Checkpointer(opts.file, {
        onCaughtUp: () => this.finishCheckpoint(),
        restartFrames: opts.walRestartPages,
        intervalMs: opts.checkpointIntervalMs,
      });
    }
    const searchFile = attachSearchIndex(this.db, opts.file);
    this.s = prepareStatements(this.db);
    this.ftsId = this.s.maxFtsId.get() as number;
    this.indexer = opts.file === ':memory:' ? new InlineSearchIndexer(this.db) : new WorkerSearchIndexer(opts.file, searchFile);
    this.writes = new GroupCommit(this.db, this.commitIntervalMs, () => this.closed);
    this.batches = new BatchWriter(this.db, this.s, () => ++this.ftsId);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > migrations.length) {
      throw new Error(`database schema version ${version} is newer than this Parley (${migrations.length})`);
    }
    for (let v = version; v < migrations.length; v++) {
      this.db.transaction(() => {
        this.db.exec(migrations[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** See checkpointer.ts: copies the frames committed since the checkpointer's last copy. */
  private finishCheckpoint(): void {
    if (this.closed) return;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy (PASSIVE never waits): the next round tries again.
    }
  }

  /**
   * Runs a read. Reads are synchronous, but the ports promise a rejection, never a throw: a
   * closed store or a failing database rejects with `unavailable`.
   */
  private read<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    try {
      return Promise.resolve(run());
    } catch (err) {
      if (err instanceof ParleyError) return Promise.reject(err);
      if (err instanceof Database.SqliteError) return Promise.reject(new ParleyError('unavailable', `storage failed: ${err.message}`));
      return Promise.reject(err);
    }
  }

  // ---- RoomWriter -------------------------------------------------------------------------

  commit(batch: Batch, epoch: number | null): Promise<void> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    if (epoch !== null) return Promise.reject(new ParleyError('internal', 'an SQLite store serves one node: it is never fenced'));
    try {
      this.batches.write(batch);
    } catch (err) {
      return Promise.reject(err);
    }
    if (batch.deleteRooms.some((r) => !r.keepHistory)) this.indexer.pruned();
    return Promise.resolve();
  }

  loadRoom(id: string, smallRoom: number): Promise<RoomSnapshot> {
    return this.read(() => {
      const r = this.s.getRoom.get(id) as RoomRow | undefined;
      const last = this.s.lastSeq.get({ room: id }) as number;
      if (!r) return { room: null, last, keptHistory: last > 0, members: null };
      const some = (this.s.someMembers.all(id, smallRoom + 1) as MemberRow[]).map(rowToMember);
      return { room: rowToRoom(r), last, keptHistory: false, members: some.length <= smallRoom ? some : null };
    });
  }

  roomBan(room: string, user: string): Promise<Ban | null> {
    return this.read(() => {
      const r = this.s.anyBan.get(room, user) as BanRow | undefined;
      return r ? rowToBan(r) : null;
    });
  }

  listed(room: string, user: string): Promise<{ white: boolean; black: boolean }> {
    return this.read(() => {
      const r = this.s.listed.get({ room, user }) as { white: number; black: number };
      return { white: r.white === 1, black: r.black === 1 };
    });
  }

  lists(room: string): Promise<{ white: string[]; black: string[] }> {
    return this.read(() => ({ white: this.s.accessList.all(room, 'white') as string[], black: this.s.accessList.all(room, 'black') as string[] }));
  }

  blocks(user: string, other: string): Promise<boolean> {
    return this.read(() => this.s.isBlocked.get(user, other) !== undefined);
  }

  target(room: string, seq: number): Promise<TargetRow | null> {
    return this.read(() => {
      const r = this.s.target.get(room, seq) as
        { kind: Message['kind']; user_id: string; deleted: number; thread: number | null; thread_only: number | null } | undefined;
      return r ? { kind: r.kind, user: r.user_id, deleted: r.deleted === 1, thread: r.thread, alsoToRoom: r.thread !== null && r.thread_only === null } : null;
    });
  }

  threadSummary(room: string, root: number): Promise<ThreadSummary | null> {
    return this.read(() => {
      const v = this.s.threadSummary.get(room, root) as string | undefined;
      return v === undefined ? null : (JSON.parse(v) as ThreadSummary);
    });
  }

  keyed(room: string, user: string, key: string): Promise<Message | null> {
    return this.read(() => {
      const r = this.s.byKey.get(room, user, key) as MessageRow | undefined;
      return r ? rowToMessage(r) : null;
    });
  }

  channelNamed(nameKey: string): Promise<string | null> {
    return this.read(() => (this.s.channelNamed.get(nameKey) as string | undefined) ?? null);
  }

  directNamed(directKey: string): Promise<string | null> {
    return this.read(() => (this.s.directNamed.get(directKey) as string | undefined) ?? null);
  }

  // ---- UserStore ----------------------------------------------------------------------

  async upsertUser(user: User): Promise<User> {
    const existing = await this.read(() => this.s.getUser.get(user.id) as { name: string; profile: string } | undefined);
    const profile = JSON.stringify(user.profile);
    if (existing && existing.name === user.name && existing.profile === profile) return user;
    return this.writes.write(() => {
      this.s.upsertUser.run(user.id, user.name, profile, Date.now());
      return user;
    });
  }

  getUser(id: string): Promise<User | null> {
    return this.read(() => {
      const r = this.s.getUser.get(id) as { id: string; name: string; profile: string } | undefined;
      return r ? { id: r.id, name: r.name, profile: JSON.parse(r.profile) as Record<string, unknown> } : null;
    });
  }

  blocksOf(user: string): Promise<string[]> {
    return this.read(() => this.s.blocksOf.all(user) as string[]);
  }

  blockersIn(room: string, user: string): Promise<string[]> {
    return this.read(() => this.s.blockersIn.all(room, user) as string[]);
  }

  // ---- RoomStore ----------------------------------------------------------------------

  getRoom(id: string): Promise<Room | null> {
    return this.read(() => {
      const r = this.s.getRoom.get(id) as RoomRow | undefined;
      return r ? rowToRoom(r) : null;
    });
  }

  findDirect(directKey: string): Promise<Room | null> {
    return this.read(() => {
      const r = this.s.findDirect.get(directKey) as RoomRow | undefined;
      return r ? rowToRoom(r) : null;
    });
  }

  roomsOf(user: string): Promise<Array<{ room: Room; member: Member }>> {
    return this.read(() => (this.s.roomsOf.all(user) as Array<RoomRow & MemberRow>).map((r) => ({ room: rowToRoom(r), member: rowToMember(r) })));
  }

  countRooms(user: string): Promise<{ member: number; created: number }> {
    return this.read(() => this.s.countRooms.get(user, user) as { member: number; created: number });
  }

  publicRooms(limit: number, afterId = ''): Promise<Room[]> {
    return this.read(() => (this.s.publicRooms.all(afterId, limit) as RoomRow[]).map(rowToRoom));
  }

  roomCounts(): Promise<Record<string, number>> {
    return this.read(() => Object.fromEntries((this.s.roomCounts.all() as Array<{ kind: string; n: number }>).map((r) => [r.kind, r.n])));
  }

  getMember(room: string, user: string): Promise<Member | null> {
    return this.read(() => {
      const r = this.s.getMember.get(room, user) as MemberRow | undefined;
      return r ? rowToMember(r) : null;
    });
  }

  members(room: string): Promise<Member[]> {
    return this.read(() => (this.s.members.all(room) as MemberRow[]).map(rowToMember));
  }

  // ---- MessageLog ---------------------------------------------------------------------

  history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]> {
    return this.read(() => {
      const before = q.before ?? Number.MAX_SAFE_INTEGER;
      const rows =
        q.thread !== undefined
          ? q.after !== undefined
            ? this.s.threadAfter.all(room, q.thread, q.after, q.limit)
            : this.s.threadBefore.all(room, q.thread, before, q.limit)
          : q.main
            ? q.after !== undefined
              ? this.s.mainAfter.all(room, q.after, q.limit)
              : this.s.mainBefore.all(room, before, q.limit)
            : q.after !== undefined
              ? this.s.after.all(room, q.after, q.limit)
              : this.s.before.all(room, before, q.limit);
      return (rows as MessageRow[]).map((r) => rowToMessage(r, viewer));
    });
  }

  getMessage(room: string, seq: number, viewer?: string): Promise<Message | null> {
    return this.read(() => {
      const r = this.s.getMessage.get(room, seq) as MessageRow | undefined;
      return r ? rowToMessage(r, viewer) : null;
    });
  }

  bounds(room: string): Promise<Bounds> {
    return this.read(() => {
      const last = this.s.lastSeq.get({ room }) as number;
      const first = (this.s.firstSeq.get(room) as number | null) ?? last + 1;
      return { first, last };
    });
  }

  markRead(room: string, user: string, seq: number): Promise<number> {
    return this.writes.write(() => {
      const v = this.s.markRead.get(seq, room, room, user) as number | undefined;
      if (v === undefined) throw new ParleyError('forbidden', 'not a member of this room');
      return v;
    });
  }

  inbox(user: string): Promise<InboxEntry[]> {
    type Row = RoomRow & { role: Role; read_seq: number; unread: number; unread_more: number; last_text: number | null };
    return this.read(() => {
      const rows = this.s.inbox.all(user) as Row[];
      const entries = rows.map((r): InboxEntry => {
        const lastRow = r.last_text === null ? undefined : (this.s.getMessage.get(r.id, r.last_text) as MessageRow | undefined);
        return {
          room: rowToRoom(r),
          role: r.role,
          readSeq: r.read_seq,
          unread: r.unread,
          unreadMore: r.unread_more === 1,
          last: lastRow ? rowToMessage(lastRow) : null,
        };
      });
      entries.sort((a, b) => (b.last?.ts ?? b.room.createdAt) - (a.last?.ts ?? a.room.createdAt));
      return entries;
    });
  }

  // ---- ModerationStore ----------------------------------------------------------------

  banFromServer(b: { user: string; until: number | null; reason: string; by: string | null }): Promise<Ban> {
    return this.writes.write(() => {
      const now = Date.now();
      this.s.upsertBan.run('', b.user, b.until, b.reason, b.by, now);
      return { room: null, user: b.user, until: b.until, reason: b.reason, by: b.by, createdAt: now };
    });
  }

  unbanFromServer(user: string): Promise<boolean> {
    return this.writes.write(() => this.s.deleteBan.run('', user).changes > 0);
  }

  bans(room: string | null, now: number): Promise<Ban[]> {
    return this.read(() => (this.s.bans.all(room ?? '', now) as BanRow[]).map(rowToBan));
  }

  activeBan(room: string | null, user: string, now: number): Promise<Ban | null> {
    return this.read(() => {
      const r = this.s.activeBan.get(room ?? '', user, now) as BanRow | undefined;
      return r ? rowToBan(r) : null;
    });
  }

  accessList(room: string, list: 'black' | 'white'): Promise<string[]> {
    return this.read(() => this.s.accessList.all(room, list) as string[]);
  }

  // ---- RetentionStore -----------------------------------------------------------------

  /**
   * Rooms are read a page at a time, and their messages removed at most `retentionBatch` per
   * write, each write its own short transaction through the group commit: a sweep that removes
   * a million messages never holds the event loop, or the room log's commits, for longer than
   * one such write. Each write is sized on how long the last took, to hold the loop about
   * `retentionWriteMs`: a fixed 2,000 took about 100 ms on a 10M-message database, and live
   * sends waited behind every one (ack p99 184 ms during the sweep, 10 ms before). After each
   * write the sweep waits as long as the write took, from queueing to commit, leaving the loop
   * and the disk (the WAL it writes, the checkpoints that follow) to live traffic half the time:
   * on a 2M-message database, live ack p99 during a sweep of 200,000 was 37 ms with 8 ms writes
   * back to back, 13–19 ms with 2 ms writes and the waits (docs/benchmarks.md, History).
   */
  async applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number> {
    type Row = { id: string; last_seq: number; retention_count: number | null; retention_ms: number | null };
    let removed = 0;
    let after = '';
    let size = Math.min(this.retentionBatch, 500);
    try {
      for (;;) {
        const rooms = await this.read(() => this.s.retentionRooms.all(after, RETENTION_ROOMS) as Row[]);
        // Finding where each room is cut reads the room's oldest messages: done a slice of rooms
        // at a time, each slice holding the loop about `retentionWriteMs`.
        const cuts: Array<{ id: string; last: number; upTo: number }> = [];
        for (let j = 0; j < rooms.length;) {
          j = await this.read(() => {
            const started = performance.now();
            let k = j;
            do {
              const r = rooms[k++]!;
              const count = r.retention_count ?? defaults.count;
              const ms = r.retention_ms ?? (defaults.days === null ? null : defaults.days * DAY_MS);
              if (count === null && ms === null) continue;
              let upTo = count === null ? 0 : Math.max(0, r.last_seq - count);
              if (ms !== null) {
                const kept = this.s.firstKept.get(r.id, now - ms) as number | undefined;
                upTo = Math.max(upTo, kept === undefined ? r.last_seq : kept - 1);
              }
              if (upTo > 0) cuts.push({ id: r.id, last: r.last_seq, upTo });
            } while (k < rooms.length && performance.now() - started < this.retentionWriteMs);
            return k;
          });
          if (j < rooms.length) await new Promise((resolve) => setImmediate(resolve));
        }
        for (let i = 0; i < cuts.length;) {
          const from = i;
          const batch = size;
          // Depends only on `from` and `batch`: the group commit may run a write twice (see group-commit.ts).
          const queued = performance.now();
          const done = await this.writes.write(() => {
            const started = performance.now();
            let budget = batch;
            let k = from;
            let changes = 0;
            while (k < cuts.length && budget > 0) {
              const c = cuts[k]!;
              // The room's last seq must outlive its messages, so seqs are never given out twice.
              this.s.keepLastSeq.run(c.last, c.id);
              const n = this.s.expire.run({ room: c.id, upTo: c.upTo, n: budget }).changes;
              changes += n;
              if (n < budget) k++;
              budget -= n;
            }
            return { changes, next: k, ms: performance.now() - started };
          });
          removed += done.changes;
          i = done.next;
          // A write that removed its full size steers the next: at most twice as many, or fewer.
          if (done.changes >= batch) {
            const steered = Math.round((batch * this.retentionWriteMs) / Math.max(done.ms, 0.1));
            size = Math.min(this.retentionBatch, 2 * batch, Math.max(RETENTION_MIN, steered));
          }
          if (i < cuts.length) await new Promise((resolve) => setTimeout(resolve, performance.now() - queued));
        }
        if (rooms.length < RETENTION_ROOMS) break;
        after = rooms.at(-1)!.id;
      }
    } finally {
      if (removed > 0) this.indexer.pruned();
    }
    return removed;
  }

  // ---- SearchStore --------------------------------------------------------------------

  async search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]> {
    // Each word becomes a quoted FTS5 string, so no query syntax from users reaches FTS5.
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    const words = query.match(/[\p{L}\p{N}_]+/gu) ?? [];
    if (words.length === 0 || rooms.length === 0) return [];
    const match = words
      .slice(0, 16)
      .map((w) => `"${w}"`)
      .join(' ');
    // Everything stored before this search is found: wait for the index to catch up. An
    // index still being rebuilt (its file was lost) would answer from part of the messages.
    const complete = await this.indexer.caughtUp(this.ftsId);
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    if (!complete) throw new ParleyError('unavailable', 'the search index is catching up; retry shortly', { retryAfterMs: 1000 });
    return this.read(() => (this.s.search.all(match, JSON.stringify(rooms), viewer, limit) as MessageRow[]).map((r) => rowToMessage(r)));
  }

  // ---- Health -------------------------------------------------------------------------

  ping(): Promise<void> {
    return this.read(() => {
      this.s.ping.get();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.writes.pending > 0) this.writes.flush();
    this.closed = true;
    await this.indexer.close();
    await this.checkpointer?.close();
    this.db.close();
  }
}
