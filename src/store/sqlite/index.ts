// SQLite implementation of the Store port (better-sqlite3, WAL). Writes are queued and
// committed in groups: every write called in the same event-loop turn shares one transaction
// and one fsync, each inside its own savepoint so one failing write does not undo the others.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ParleyError } from '../../errors.js';
import type { Ban, InboxEntry, Member, Message, Role, Room, User } from '../../protocol/schema.js';
import { channelNameKey, type AppendResult, type Bounds, type HistoryQuery, type NewMessage, type NewRoom, type RoomPatch, type Store } from '../store.js';
import {
  DAY_MS, FOREVER, MEMBER_COLS, MSG_COLS, ROOM_COLS, metaText, patchSummary, rowToBan, rowToMember, rowToMessage, rowToRoom,
  type BanRow, type MemberRow, type MessageRow, type RoomRow,
} from '../rows.js';
import { KEPT_HISTORY, SEARCH_SCAN } from '../store.js';
import { migrations } from './migrations.js';
import { Checkpointer } from './checkpointer.js';
import { attachSearchIndex, InlineSearchIndexer, WorkerSearchIndexer, type SearchIndexer } from './search-index.js';

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
}

interface Pending { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }
interface BatchResult { ok: boolean; v: unknown }
/** Thrown inside a batch to roll it back and run it again with a savepoint per write. */
const RETRY = Symbol('retry batch with savepoints');

/**
 * A room's last seq: the highest seq among its messages, or the floor kept in `rooms.last_seq`
 * when retention has removed the newest ones. Sends do not write the rooms row, so a commit
 * writes one page fewer per room it touches. `r` is the rooms row's alias.
 */
const liveLastSeq = (r: string) => `max(${r}.last_seq, coalesce((SELECT max(l.seq) FROM messages l WHERE l.room_id = ${r}.id), 0))`;
const LIVE_ROOM_COLS = ROOM_COLS.replace('last_seq', `${liveLastSeq('rooms')} AS last_seq`);

/** Messages as clients read them: with the author's current public profile. */
const MSG_READ = `SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile
  FROM messages m LEFT JOIN users u ON u.id = m.user_id`;

export class SqliteStore implements Store {
  /** The open database, shared with sibling stores in the same file (accounts, plugins). */
  readonly db: Database.Database;
  private readonly s: ReturnType<SqliteStore['prepare']>;
  /** last seq per room, valid for committed and in-batch writes of this instance. */
  private readonly seqs = new Map<string, number>();
  private queue: Pending[] = [];
  private scheduled = false;
  private checkpointer: Checkpointer | null = null;
  private readonly indexer: SearchIndexer;
  /** Last fts_id given out (see search-index.ts). */
  private ftsId = 0;
  private lastFlush = -Infinity;
  /** Writes carried by the last commit. */
  private lastBatch = 0;
  private readonly commitIntervalMs: number;
  private closed = false;
  private readonly savepoint: (fn: () => unknown) => unknown;
  private readonly batchTx: (batch: Pending[], isolate: boolean, results: BatchResult[]) => void;

  constructor(opts: SqliteOptions) {
    if (opts.file !== ':memory:') mkdirSync(dirname(opts.file), { recursive: true });
    this.commitIntervalMs = opts.commitIntervalMs ?? 0;
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.function('parley_channel_key', { deterministic: true }, (name: unknown) => channelNameKey(String(name)));
    this.migrate();
    if (opts.file !== ':memory:' && opts.backgroundCheckpoints !== false) {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new Checkpointer(opts.file, { onCaughtUp: () => this.finishCheckpoint(), restartFrames: opts.walRestartPages });
    }
    const searchFile = attachSearchIndex(this.db, opts.file);
    this.s = this.prepare();
    this.ftsId = this.s.maxFtsId.get() as number;
    this.indexer = opts.file === ':memory:' ? new InlineSearchIndexer(this.db) : new WorkerSearchIndexer(opts.file, searchFile);
    this.savepoint = this.db.transaction((fn: () => unknown) => fn());
    // Built once: better-sqlite3 makes a new wrapper (and its variants) per transaction() call.
    this.batchTx = this.db.transaction((batch: Pending[], isolate: boolean, results: BatchResult[]) => {
      for (let i = 0; i < batch.length; i++) {
        try {
          results[i] = { ok: true, v: isolate ? this.savepoint(batch[i]!.run) : batch[i]!.run() };
        } catch (err) {
          if (!isolate && !(err instanceof ParleyError)) throw RETRY;
          results[i] = { ok: false, v: err };
        }
      }
    });
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

  private prepare() {
    const d = this.db;
    return {
      upsertUser: d.prepare(`INSERT INTO users (id, name, profile, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET name = excluded.name, profile = excluded.profile`),
      getUser: d.prepare('SELECT id, name, profile FROM users WHERE id = ?'),
      insertRoom: d.prepare(`INSERT INTO rooms (id, kind, name, topic, created_by, created_at, direct_key, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      channelNamed: d.prepare('SELECT id FROM rooms WHERE name_key = ?').pluck(),
      setNameKey: d.prepare("UPDATE rooms SET name_key = ? WHERE id = ? AND kind = 'channel'"),
      roomExists: d.prepare('SELECT 1 FROM rooms WHERE id = ? OR (direct_key IS NOT NULL AND direct_key = ?)'),
      keptHistory: d.prepare('SELECT 1 FROM messages WHERE room_id = ? LIMIT 1'),
      getRoom: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE id = ?`),
      findDirect: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE direct_key = ?`),
      lastSeq: d.prepare(`SELECT ${liveLastSeq('rooms')} FROM rooms WHERE id = ?`).pluck(),
      setLastSeq: d.prepare('UPDATE rooms SET last_seq = ? WHERE id = ?'),
      roomsOf: d.prepare(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access, r.retention_count, r.retention_ms,
          m.room_id, m.user_id, m.role, m.joined_at, m.read_seq, m.join_seq, m.muted_until
        FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? ORDER BY r.id`),
      roomIdsOf: d.prepare('SELECT room_id FROM members WHERE user_id = ?').pluck(),
      countRooms: d.prepare(`SELECT
          (SELECT count(*) FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? AND r.kind <> 'direct') AS member,
          (SELECT count(*) FROM rooms WHERE created_by = ? AND kind <> 'direct') AS created`),
      publicRooms: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE kind = 'channel' AND id > ? ORDER BY id LIMIT ?`),
      getMember: d.prepare(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = ? AND user_id = ?`),
      members: d.prepare(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = ? ORDER BY joined_at, user_id`),
      insertMember: d.prepare('INSERT INTO members (room_id, user_id, role, joined_at, read_seq, join_seq) VALUES (?, ?, ?, ?, 0, ?)'),
      deleteMember: d.prepare('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
      insertMessage: d.prepare(`INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, target, data, key, hidden_for, fts_id, system, meta)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      // Never below what the index has seen: ids of removed messages are not given out again.
      maxFtsId: d.prepare(`SELECT max(coalesce((SELECT max(fts_id) FROM messages), 0),
        coalesce((SELECT v FROM search.search_state WHERE k = 'cursor'), 0))`).pluck(),
      isBlocked: d.prepare('SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?'),
      byKey: d.prepare(`SELECT ${MSG_COLS} FROM messages WHERE room_id = ? AND user_id = ? AND key = ?`),
      getMessage: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.seq = ?`),
      isDeleted: d.prepare(`SELECT 1 FROM messages WHERE room_id = ? AND target = ? AND kind = 'delete' LIMIT 1`),
      after: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`),
      before: d.prepare(`SELECT * FROM (${MSG_READ} WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?) ORDER BY seq`),
      firstSeq: d.prepare('SELECT min(seq) FROM messages WHERE room_id = ?').pluck(),
      markRead: d.prepare(`UPDATE members SET read_seq = max(read_seq, min(?, (SELECT ${liveLastSeq('rooms')} FROM rooms WHERE id = ?)))
        WHERE room_id = ? AND user_id = ? RETURNING read_seq`).pluck(),
      inbox: d.prepare(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access, r.retention_count, r.retention_ms,
          m.role, m.read_seq,
          (SELECT count(*) FROM messages x WHERE x.room_id = m.room_id AND x.seq > m.read_seq AND x.kind = 'text'
            AND x.user_id <> m.user_id AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id)) AS unread,
          (SELECT max(y.seq) FROM messages y WHERE y.room_id = m.room_id AND y.kind = 'text'
            AND (y.hidden_for IS NULL OR y.hidden_for <> m.user_id)) AS last_text
        FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ?`),
      updateRoom: d.prepare(`UPDATE rooms SET name = coalesce(@name, name), topic = coalesce(@topic, topic), access = coalesce(@access, access),
          retention_count = CASE WHEN @setCount THEN @count ELSE retention_count END,
          retention_ms = CASE WHEN @setMs THEN @ms ELSE retention_ms END WHERE id = @id`),
      deleteRoom: d.prepare('DELETE FROM rooms WHERE id = ?'),
      deleteRoomMessages: d.prepare('DELETE FROM messages WHERE room_id = ?'),
      deleteRoomBans: d.prepare('DELETE FROM bans WHERE room_id = ?'),
      memberIds: d.prepare('SELECT user_id FROM members WHERE room_id = ?').pluck(),
      setRole: d.prepare('UPDATE members SET role = ? WHERE room_id = ? AND user_id = ?'),
      owners: d.prepare("SELECT user_id FROM members WHERE room_id = ? AND role = 'owner'").pluck(),
      setMute: d.prepare('UPDATE members SET muted_until = ? WHERE room_id = ? AND user_id = ?'),
      upsertBan: d.prepare(`INSERT INTO bans (room_id, user_id, until, reason, by, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(room_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, created_at = excluded.created_at`),
      deleteBan: d.prepare('DELETE FROM bans WHERE room_id = ? AND user_id = ?'),
      bans: d.prepare('SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = ? AND (until IS NULL OR until > ?) ORDER BY created_at'),
      activeBan: d.prepare('SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = ? AND user_id = ? AND (until IS NULL OR until > ?)'),
      accessAdd: d.prepare('INSERT OR IGNORE INTO access_lists (room_id, list, user_id) VALUES (?, ?, ?)'),
      accessRemove: d.prepare('DELETE FROM access_lists WHERE room_id = ? AND list = ? AND user_id = ?'),
      accessList: d.prepare('SELECT user_id FROM access_lists WHERE room_id = ? AND list = ? ORDER BY user_id').pluck(),
      inList: d.prepare('SELECT 1 FROM access_lists WHERE room_id = ? AND list = ? AND user_id = ?'),
      block: d.prepare('INSERT OR IGNORE INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)'),
      unblock: d.prepare('DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?'),
      blocksOf: d.prepare('SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY blocked_id').pluck(),
      blockersIn: d.prepare(`SELECT b.user_id FROM blocks b JOIN members m ON m.room_id = ? AND m.user_id = b.user_id
        WHERE b.blocked_id = ? ORDER BY b.user_id`).pluck(),
      retentionRooms: d.prepare(`SELECT id, ${liveLastSeq('rooms')} AS last_seq, retention_count, retention_ms FROM rooms`),
      // Age limits cut at the first message (in seq order) at or after the limit. This walks
      // only the messages about to be removed, with no index on ts to keep up at every send.
      firstKept: d.prepare('SELECT seq FROM messages WHERE room_id = ? AND ts >= ? ORDER BY seq LIMIT 1').pluck(),
      expire: d.prepare('DELETE FROM messages WHERE room_id = ? AND seq <= ?'),
      ping: d.prepare('SELECT 1'),
      roomCounts: d.prepare('SELECT kind, count(*) AS n FROM rooms GROUP BY kind'),
      // FTS5 walks a word's matches newest first (by rowid, the order messages were indexed)
      // and stops after SEARCH_SCAN of them, so a common word costs the same as a rare one.
      search: d.prepare(`SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile
        FROM (SELECT rowid AS id, room_id, seq FROM search.messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ${SEARCH_SCAN}) f
          JOIN messages m ON m.room_id = f.room_id AND m.seq = f.seq AND m.fts_id = f.id LEFT JOIN users u ON u.id = m.user_id
        WHERE f.room_id IN (SELECT value FROM json_each(?)) AND (m.hidden_for IS NULL OR m.hidden_for <> ?)
        ORDER BY f.id DESC LIMIT ?`),
    };
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

  // ---- group commit -------------------------------------------------------------------

  private write<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Under sustained load commits are spaced by commitIntervalMs, so each one carries more
        // writes (less CPU and fewer fsyncs per message). Load counts as sustained while the
        // last commit carried more than one write: a write arriving just after a lone one is
        // committed at once, since a timer would hold it for at least a millisecond.
        const wait = this.lastBatch > 1 ? this.lastFlush + this.commitIntervalMs - performance.now() : 0;
        if (wait > 0) setTimeout(() => this.flush(), wait);
        else setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Runs a read. Reads are synchronous, but the port promises a rejection, never a throw: a
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

  private flush(): void {
    this.scheduled = false;
    this.lastFlush = performance.now();
    const batch = this.queue;
    this.queue = [];
    this.lastBatch = batch.length;
    if (batch.length === 0) return;
    // Fast path: writes run one after another in one transaction. A write refuses with a
    // ParleyError only before it has written anything, so refusals need no savepoint. Any other
    // error may come after a partial write: then the batch is rolled back and run again with a
    // savepoint around each write, so the failing one is undone alone.
    let results = this.runBatch(batch, false);
    if (results === RETRY) results = this.runBatch(batch, true);
    if (results instanceof Error) {
      for (const p of batch) p.reject(results);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const r = (results as BatchResult[])[i]!;
      if (r.ok) batch[i]!.resolve(r.v);
      else batch[i]!.reject(r.v instanceof ParleyError ? r.v : new ParleyError('internal', `storage error: ${(r.v as Error).message}`));
    }
  }

  private runBatch(batch: Pending[], isolate: boolean): BatchResult[] | typeof RETRY | ParleyError {
    const results: BatchResult[] = new Array(batch.length);
    try {
      this.batchTx(batch, isolate, results);
    } catch (err) {
      // Rolled back: nothing of the batch is stored and the seq cache may be ahead.
      this.seqs.clear();
      if (err === RETRY) return RETRY;
      return new ParleyError('unavailable', `storage failed: ${(err as Error).message}`);
    }
    return results;
  }

  /** Inside a write: the next seq of a room. Record it with `commitSeq` once the row is in. */
  private nextSeq(room: string): number {
    let last = this.seqs.get(room);
    if (last === undefined) {
      last = this.s.lastSeq.get(room) as number | undefined;
      if (last === undefined) throw new ParleyError('not_found', 'room not found');
      this.seqs.set(room, last);
    }
    return last + 1;
  }
  private commitSeq(room: string, seq: number): void {
    this.seqs.set(room, seq);
  }

  private insertMessage(m: Message, key: string | null, hiddenFor: string | null = null): void {
    // Texts, edits and deletes are queued for the search index by their fts_id (search-index.ts).
    const ftsId = m.kind === 'text' || m.kind === 'edit' || m.kind === 'delete' ? ++this.ftsId : null;
    this.s.insertMessage.run(m.room, m.seq, m.kind, m.user, m.name, m.ts, m.text ?? null, m.target ?? null,
      m.data === undefined ? null : JSON.stringify(m.data), key, hiddenFor, ftsId, m.system ? 1 : null, metaText(m));
    this.commitSeq(m.room, m.seq);
  }

  // ---- users ----------------------------------------------------------------------------

  async upsertUser(user: User): Promise<User> {
    const existing = await this.read(() => this.s.getUser.get(user.id) as { name: string; profile: string } | undefined);
    const profile = JSON.stringify(user.profile);
    if (existing && existing.name === user.name && existing.profile === profile) return user;
    return this.write(() => {
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

  // ---- rooms ----------------------------------------------------------------------------

  createRoom(nr: NewRoom): Promise<{ room: Room; messages: Message[] }> {
    return this.write(() => {
      if (this.s.roomExists.get(nr.id, nr.directKey ?? null)) throw new ParleyError('conflict', 'room already exists');
      // A deleted room whose history is kept still owns its id (see the Store contract).
      const kept = this.s.keptHistory.get(nr.id) !== undefined;
      if (kept && nr.kind !== 'direct') throw new ParleyError('conflict', KEPT_HISTORY);
      const nameKey = nr.kind === 'channel' ? this.freeChannelName(nr.name, nr.id) : null;
      const now = Date.now();
      this.s.insertRoom.run(nr.id, nr.kind, nr.name, nr.topic, nr.createdBy, now, nr.directKey ?? null, nameKey);
      // A direct pair's room continues after its kept history (nextSeq reads the highest seq).
      if (kept) this.seqs.delete(nr.id);
      else this.seqs.set(nr.id, 0);
      const messages: Message[] = [];
      for (const m of nr.members) {
        const msg: Message = { room: nr.id, seq: this.nextSeq(nr.id), kind: 'join', user: m.user, name: m.name, ts: now, data: { role: m.role } };
        this.s.insertMember.run(nr.id, m.user, m.role, now, msg.seq);
        if (nr.createdBy && nr.createdBy !== m.user) msg.data!.by = nr.createdBy;
        this.insertMessage(msg, null);
        messages.push(msg);
      }
      const room: Room = {
        id: nr.id, kind: nr.kind, name: nr.name, topic: nr.topic, createdBy: nr.createdBy, createdAt: now,
        lastSeq: this.s.lastSeq.get(nr.id) as number, access: 'blacklist', retention: { count: null, days: null },
      };
      return { room, messages };
    });
  }

  /** The key of a channel name no other channel has (see channelNameKey), or `conflict`. */
  private freeChannelName(name: string, room: string): string {
    const key = channelNameKey(name);
    const holder = this.s.channelNamed.get(key) as string | undefined;
    if (holder !== undefined && holder !== room) throw new ParleyError('conflict', 'a channel with this name exists', { field: 'name' });
    return key;
  }

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

  getMember(room: string, user: string): Promise<Member | null> {
    return this.read(() => {
      const r = this.s.getMember.get(room, user) as MemberRow | undefined;
      return r ? rowToMember(r) : null;
    });
  }

  members(room: string): Promise<Member[]> {
    return this.read(() => (this.s.members.all(room) as MemberRow[]).map(rowToMember));
  }

  addMember(room: string, user: string, name: string, role: Role, by: string): Promise<{ member: Member; message: Message }> {
    return this.write(() => {
      if (!this.s.getRoom.get(room)) throw new ParleyError('not_found', 'room not found');
      if (this.s.getMember.get(room, user)) throw new ParleyError('conflict', 'already a member');
      const now = Date.now();
      const message: Message = { room, seq: this.nextSeq(room), kind: 'join', user, name, ts: now, data: { role } };
      this.s.insertMember.run(room, user, role, now, message.seq);
      if (by !== user) message.data!.by = by;
      this.insertMessage(message, null);
      return { member: { room, user, role, joinedAt: now, joinSeq: message.seq, readSeq: 0 }, message };
    });
  }

  removeMember(room: string, user: string, name: string, by: string): Promise<Message> {
    return this.write(() => {
      if (this.s.deleteMember.run(room, user).changes === 0) throw new ParleyError('not_found', 'not a member');
      const message: Message = { room, seq: this.nextSeq(room), kind: 'leave', user, name, ts: Date.now() };
      if (by !== user) message.data = { by };
      this.insertMessage(message, null);
      return message;
    });
  }

  // ---- messages ---------------------------------------------------------------------------

  append(nm: NewMessage): Promise<AppendResult> {
    return this.write(() => {
      const member = this.s.getMember.get(nm.room, nm.user) as MemberRow | undefined;
      const moderates = nm.moderator === true && nm.kind === 'delete';
      if (!member && !nm.system && !moderates) {
        if (!this.s.getRoom.get(nm.room)) throw new ParleyError('not_found', 'room not found');
        throw new ParleyError('forbidden', 'not a member of this room');
      }
      if (!member && !this.s.getRoom.get(nm.room)) throw new ParleyError('not_found', 'room not found');
      if (member?.muted_until != null && member.muted_until > Date.now() && nm.kind !== 'delete') {
        const until = member.muted_until === FOREVER ? null : member.muted_until;
        throw new ParleyError('forbidden', 'you are muted in this room', { reason: 'muted', until });
      }
      if (nm.key !== undefined) {
        const prior = this.s.byKey.get(nm.room, nm.user, nm.key) as MessageRow | undefined;
        if (prior) return { message: rowToMessage(prior), duplicate: true };
      }
      if (nm.kind === 'edit' || nm.kind === 'delete' || nm.kind === 'reaction') {
        const target = this.s.getMessage.get(nm.room, nm.target) as MessageRow | undefined;
        if (!target || target.kind !== 'text') throw new ParleyError('not_found', 'target message not found');
        if (this.s.isDeleted.get(nm.room, nm.target)) throw new ParleyError('conflict', 'target message was deleted');
        if (nm.kind === 'edit' && target.user_id !== nm.user) throw new ParleyError('forbidden', 'only the author can edit a message');
        if (nm.kind === 'delete' && target.user_id !== nm.user && !moderates && (!member || member.role === 'member')) {
          throw new ParleyError('forbidden', 'only the author or a room admin can delete a message');
        }
      }
      const message: Message = { room: nm.room, seq: this.nextSeq(nm.room), kind: nm.kind, user: nm.user, name: nm.name, ts: Date.now() };
      if (nm.system) message.system = true;
      if (nm.text !== undefined) message.text = nm.text;
      if (nm.target !== undefined) message.target = nm.target;
      if (nm.data !== undefined) message.data = nm.data;
      if (nm.meta !== undefined) Object.assign(message, nm.meta);
      const hiddenFor = nm.directPeer !== undefined && this.s.isBlocked.get(nm.directPeer, nm.user) ? nm.directPeer : null;
      this.insertMessage(message, nm.key ?? null, hiddenFor);
      return hiddenFor ? { message, duplicate: false, hiddenFor } : { message, duplicate: false };
    });
  }

  history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]> {
    return this.read(() => {
      const rows = q.after !== undefined
        ? this.s.after.all(room, q.after, q.limit)
        : this.s.before.all(room, q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
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
      const last = (this.seqs.get(room) ?? this.s.lastSeq.get(room) ?? 0) as number;
      const first = (this.s.firstSeq.get(room) as number | null) ?? last + 1;
      return { first, last };
    });
  }

  markRead(room: string, user: string, seq: number): Promise<number> {
    return this.write(() => {
      const v = this.s.markRead.get(seq, room, room, user) as number | undefined;
      if (v === undefined) throw new ParleyError('forbidden', 'not a member of this room');
      return v;
    });
  }

  inbox(user: string): Promise<InboxEntry[]> {
    type Row = RoomRow & { role: Role; read_seq: number; unread: number; last_text: number | null };
    return this.read(() => {
      const rows = this.s.inbox.all(user) as Row[];
      const entries = rows.map((r): InboxEntry => {
        const lastRow = r.last_text === null ? undefined : this.s.getMessage.get(r.id, r.last_text) as MessageRow | undefined;
        return { room: rowToRoom(r), role: r.role, readSeq: r.read_seq, unread: r.unread, last: lastRow ? rowToMessage(lastRow) : null };
      });
      entries.sort((a, b) => (b.last?.ts ?? b.room.createdAt) - (a.last?.ts ?? a.room.createdAt));
      return entries;
    });
  }

  // ---- moderation ---------------------------------------------------------------------------

  updateRoom(room: string, patch: RoomPatch, by: { user: string; name: string }): Promise<{ room: Room; message: Message }> {
    return this.write(() => {
      const current = this.s.getRoom.get(room) as RoomRow | undefined;
      if (!current) throw new ParleyError('not_found', 'room not found');
      if (patch.name !== undefined && current.kind === 'channel') this.s.setNameKey.run(this.freeChannelName(patch.name, room), room);
      const setCount = patch.retentionCount !== undefined;
      const setMs = patch.retentionDays !== undefined;
      this.s.updateRoom.run({
        id: room, name: patch.name ?? null, topic: patch.topic ?? null, access: patch.access ?? null,
        setCount: setCount ? 1 : 0, count: patch.retentionCount ?? null,
        setMs: setMs ? 1 : 0, ms: patch.retentionDays == null ? null : Math.round(patch.retentionDays * DAY_MS),
      });
      const data = patchSummary(patch);
      const message: Message = { room, seq: this.nextSeq(room), kind: 'update', user: by.user, name: by.name, ts: Date.now(), data };
      this.insertMessage(message, null);
      const updated = rowToRoom(this.s.getRoom.get(room) as RoomRow);
      updated.lastSeq = message.seq;
      return { room: updated, message };
    });
  }

  async deleteRoom(room: string, keepHistory: boolean): Promise<string[]> {
    const members = await this.write(() => {
      if (!this.s.getRoom.get(room)) throw new ParleyError('not_found', 'room not found');
      const members = this.s.memberIds.all(room) as string[];
      if (!keepHistory) {
        this.s.deleteRoomMessages.run(room);
      }
      this.s.deleteRoomBans.run(room);
      this.s.deleteRoom.run(room);
      this.seqs.delete(room);
      return members;
    });
    if (!keepHistory) this.indexer.pruned();
    return members;
  }

  setRole(room: string, user: string, role: Role, by: { user: string; name: string }): Promise<{ member: Member; message: Message }> {
    return this.write(() => {
      if (!this.s.getMember.get(room, user)) throw new ParleyError('not_found', 'not a member');
      if (role === 'owner') {
        for (const owner of this.s.owners.all(room) as string[]) if (owner !== user) this.s.setRole.run('admin', room, owner);
      }
      this.s.setRole.run(role, room, user);
      const message: Message = { room, seq: this.nextSeq(room), kind: 'update', user: by.user, name: by.name, ts: Date.now(), data: { user, role } };
      this.insertMessage(message, null);
      return { member: rowToMember(this.s.getMember.get(room, user) as MemberRow), message };
    });
  }

  setMute(room: string, user: string, until: number | null, off: boolean): Promise<Member> {
    return this.write(() => {
      const value = off ? null : until ?? FOREVER;
      if (this.s.setMute.run(value, room, user).changes === 0) throw new ParleyError('not_found', 'not a member');
      return rowToMember(this.s.getMember.get(room, user) as MemberRow);
    });
  }

  ban(b: { room: string | null; user: string; until: number | null; reason: string; by: string | null }): Promise<Ban> {
    return this.write(() => {
      const now = Date.now();
      this.s.upsertBan.run(b.room ?? '', b.user, b.until, b.reason, b.by, now);
      return { room: b.room, user: b.user, until: b.until, reason: b.reason, by: b.by, createdAt: now };
    });
  }

  unban(room: string | null, user: string): Promise<boolean> {
    return this.write(() => this.s.deleteBan.run(room ?? '', user).changes > 0);
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

  setAccess(room: string, list: 'black' | 'white', add: string[], remove: string[]): Promise<string[]> {
    return this.write(() => {
      if (!this.s.getRoom.get(room)) throw new ParleyError('not_found', 'room not found');
      for (const u of add) this.s.accessAdd.run(room, list, u);
      for (const u of remove) this.s.accessRemove.run(room, list, u);
      return this.s.accessList.all(room, list) as string[];
    });
  }

  accessList(room: string, list: 'black' | 'white'): Promise<string[]> {
    return this.read(() => this.s.accessList.all(room, list) as string[]);
  }

  hasAccess(room: string, user: string): Promise<boolean> {
    return this.read(() => {
      const r = this.s.getRoom.get(room) as RoomRow | undefined;
      if (!r) return false;
      const m = this.s.getMember.get(room, user) as MemberRow | undefined;
      if (m && m.role !== 'member') return true;
      if (r.access === 'whitelist') return !!this.s.inList.get(room, 'white', user);
      return !this.s.inList.get(room, 'black', user);
    });
  }

  setBlock(user: string, other: string, blocked: boolean): Promise<void> {
    return this.write(() => {
      if (blocked) this.s.block.run(user, other, Date.now());
      else this.s.unblock.run(user, other);
    });
  }

  blocksOf(user: string): Promise<string[]> {
    return this.read(() => this.s.blocksOf.all(user) as string[]);
  }

  blockersIn(room: string, user: string): Promise<string[]> {
    return this.read(() => this.s.blockersIn.all(room, user) as string[]);
  }

  // ---- retention and search ------------------------------------------------------------------

  async applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number> {
    const removed = await this.write(() => {
      let removed = 0;
      type Row = { id: string; last_seq: number; retention_count: number | null; retention_ms: number | null };
      for (const r of this.s.retentionRooms.all() as Row[]) {
        const count = r.retention_count ?? defaults.count;
        const ms = r.retention_ms ?? (defaults.days === null ? null : defaults.days * DAY_MS);
        if (count === null && ms === null) continue;
        let upTo = count === null ? 0 : Math.max(0, r.last_seq - count);
        if (ms !== null) {
          const kept = this.s.firstKept.get(r.id, now - ms) as number | undefined;
          upTo = Math.max(upTo, kept === undefined ? r.last_seq : kept - 1);
        }
        if (upTo === 0) continue;
        const changes = this.s.expire.run(r.id, upTo).changes;
        // The room's last seq must outlive its messages, so seqs are never given out twice.
        if (changes > 0) this.s.setLastSeq.run(r.last_seq, r.id);
        removed += changes;
      }
      return removed;
    });
    if (removed > 0) this.indexer.pruned();
    return removed;
  }

  async search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]> {
    // Each word becomes a quoted FTS5 string, so no query syntax from users reaches FTS5.
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    const words = query.match(/[\p{L}\p{N}_]+/gu) ?? [];
    if (words.length === 0 || rooms.length === 0) return [];
    const match = words.slice(0, 16).map((w) => `"${w}"`).join(' ');
    // Everything stored before this search is found: wait for the index to catch up. An
    // index still being rebuilt (its file was lost) would answer from part of the messages.
    const complete = await this.indexer.caughtUp(this.ftsId);
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    if (!complete) throw new ParleyError('unavailable', 'the search index is catching up; retry shortly', { retryAfterMs: 1000 });
    return this.read(() => (this.s.search.all(match, JSON.stringify(rooms), viewer, limit) as MessageRow[]).map((r) => rowToMessage(r)));
  }

  // ---- health ------------------------------------------------------------------------------

  ping(): Promise<void> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    try {
      this.s.ping.get();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(new ParleyError('unavailable', `storage failed: ${(err as Error).message}`));
    }
  }

  roomCounts(): Promise<Record<string, number>> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    const rows = this.s.roomCounts.all() as Array<{ kind: string; n: number }>;
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.kind, r.n])));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.length > 0) this.flush();
    await this.indexer.close();
    await this.checkpointer?.close();
    this.db.close();
  }
}
