// PostgreSQL implementation of every store port (`pg`), for clusters: any number of nodes share
// one database. The room log's batches are written by commit.ts (one statement per table, no
// row locks), fenced by the cluster epoch when one is given; the store's own writes (users,
// read markers, server-wide bans) by group-commit.ts; statements.ts holds the reads' SQL and
// search-text.ts the words search indexes.
import pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { Ban, InboxEntry, Member, Message, Role, ThreadSummary, User } from '../../protocol/schema.js';
import type { Bounds, HistoryQuery, Store } from '../store.js';
import { KeyConflictError, type Batch, type RoomSnapshot, type TargetRow } from '../writer.js';
import { DAY_MS, rowToBan, rowToMember, rowToMessage, rowToRoom, type BanRow, type MemberRow, type MessageRow, type RoomRow } from '../rows.js';
import { migrate } from './migrations.js';
import { checkOptions, createPool, isConnectionError, isRetryable, statement, toStoreError, transaction, type PgPoolOptions } from './pool.js';
import { GroupCommit } from './group-commit.js';
import { logOnly, writeBatch, writeLog } from './commit.js';
import { SEARCH_PROBE_MAX, SQL } from './statements.js';
import { enterFence } from '../../cluster/fence.js';
import { outcomeUnknown } from '../../protocol/outcome.js';
import { queryTerms, toTsquery, WordCounts } from './search-text.js';

export { searchWords } from './search-text.js';

export interface PostgresOptions extends PgPoolOptions {
  /** Most operations one batch carries (default 500). */
  maxBatch?: number;
  /** Most messages one retention statement removes (default 5000). */
  retentionBatch?: number;
  /**
   * A query the statistics expect in more messages than this (its words' shares of the rows,
   * multiplied) is looked for only among the rooms' newest messages, without probing the index
   * for every match (default 50,000).
   */
  searchProbeMax?: number;
}

/** How long the search keeps ANALYZE's word counts before reading them again. */
const WORD_STATS_MS = 5 * 60_000;

type Rows = <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => Promise<R[]>;

/** Attempts of a batch that hit a deadlock or serialization failure. */
const BATCH_ATTEMPTS = 3;
/** First key of the advisory locks that serialise a room's writers across nodes (`RoomLocks`): 'prml'. */
const ROOM_LOCK_KEY = 0x70726d6c;

/**
 * The facts the room log reads before deciding, on the pool or, inside a locked batch
 * (`locked`), on the batch's own connection.
 */
export class PostgresFacts {
  constructor(private readonly rows: Rows) {}

  async loadRoom(id: string, smallRoom: number): Promise<RoomSnapshot> {
    const [room] = await this.rows<RoomRow>(SQL.getRoom, [id]);
    const [{ last }] = (await this.rows<{ last: number }>(SQL.lastSeq, [id])) as [{ last: number }];
    if (!room) return { room: null, last, keptHistory: last > 0, members: null };
    const some = (await this.rows<MemberRow>(SQL.someMembers, [id, smallRoom + 1])).map(rowToMember);
    return { room: rowToRoom(room), last, keptHistory: false, members: some.length <= smallRoom ? some : null };
  }

  async roomBan(room: string, user: string): Promise<Ban | null> {
    const [r] = await this.rows<BanRow>(SQL.anyBan, [room, user]);
    return r ? rowToBan(r) : null;
  }

  async listed(room: string, user: string): Promise<{ white: boolean; black: boolean }> {
    const [r] = await this.rows<{ white: boolean; black: boolean }>(SQL.listed, [room, user]);
    return { white: r?.white === true, black: r?.black === true };
  }

  async lists(room: string): Promise<{ white: string[]; black: string[] }> {
    const [white, black] = await Promise.all([this.accessList(room, 'white'), this.accessList(room, 'black')]);
    return { white, black };
  }

  async accessList(room: string, list: 'black' | 'white'): Promise<string[]> {
    return (await this.rows<{ user_id: string }>(SQL.accessList, [room, list])).map((r) => r.user_id);
  }

  async blocks(user: string, other: string): Promise<boolean> {
    return (await this.rows(SQL.isBlocked, [user, other])).length > 0;
  }

  async target(room: string, seq: number): Promise<TargetRow | null> {
    const [r] = await this.rows<{ kind: Message['kind']; user_id: string; deleted: boolean; thread: number | null; thread_only: boolean | null }>(SQL.target, [
      room,
      seq,
    ]);
    return r ? { kind: r.kind, user: r.user_id, deleted: r.deleted, thread: r.thread, alsoToRoom: r.thread !== null && r.thread_only === null } : null;
  }

  async threadSummary(room: string, root: number): Promise<ThreadSummary | null> {
    const [r] = await this.rows<{ summary: string }>(SQL.threadSummary, [room, root]);
    return r ? (JSON.parse(r.summary) as ThreadSummary) : null;
  }

  async keyed(room: string, user: string, key: string): Promise<Message | null> {
    const [r] = await this.rows<MessageRow>(SQL.byKey, [room, user, key]);
    return r ? rowToMessage(r) : null;
  }

  async channelNamed(nameKey: string): Promise<string | null> {
    return (await this.rows<{ id: string }>(SQL.channelNamed, [nameKey]))[0]?.id ?? null;
  }

  async directNamed(directKey: string): Promise<string | null> {
    return (await this.rows<{ id: string }>(SQL.directNamed, [directKey]))[0]?.id ?? null;
  }

  async getMember(room: string, user: string): Promise<Member | null> {
    const [r] = await this.rows<MemberRow>(SQL.getMember, [room, user]);
    return r ? rowToMember(r) : null;
  }

  async members(room: string): Promise<Member[]> {
    return (await this.rows<MemberRow>(SQL.members, [room])).map(rowToMember);
  }

  async countRooms(user: string): Promise<{ member: number; created: number }> {
    const [r] = await this.rows<{ member: number; created: number }>(SQL.countRooms, [user]);
    return { member: r!.member, created: r!.created };
  }

  async getUser(id: string): Promise<User | null> {
    const [r] = await this.rows<{ id: string; name: string; profile: string }>(SQL.getUser, [id]);
    return r ? { id: r.id, name: r.name, profile: JSON.parse(r.profile) as Record<string, unknown> } : null;
  }
}

export class PostgresStore extends PostgresFacts implements Store {
  /** The pool, shared with sibling stores on the same database (accounts, plugins). */
  readonly pool: pg.Pool;
  /** Batches are written one at a time per node; the next gathers meanwhile. */
  readonly commitIntervalMs = 0;
  readonly maxBatch: number;
  private readonly writes: GroupCommit;
  private readonly retentionBatch: number;
  /** Shared with the fact reads, which run on the pool. */
  private readonly gate: { closed: boolean };
  private readonly searchProbeMax: number;
  private readonly words = new WordCounts();
  /** When the word counts were last read (0: never), and the read under way. */
  private wordsAt = 0;
  private wordsLoading: Promise<void> | null = null;
  private batches = 0;
  private written = 0;
  /**
   * Commits called and not settled, and who waits for none to be left (close). A count, not a
   * set of the promises: a long-lived Set added to and deleted from on every commit leaves each
   * of its superseded hash tables pointing at the next, so V8's young-generation collections
   * keep the promises (and through them the batches) alive into the old generation.
   */
  private running = 0;
  private drained: Array<() => void> = [];

  /** Use `PostgresStore.open`, which also brings the schema up to date. */
  private constructor(opts: PostgresOptions, pool: pg.Pool) {
    const gate = { closed: false };
    super(async <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => {
      if (gate.closed) throw new ParleyError('unavailable', 'store is closed');
      try {
        return (await pool.query<R>(sql, params)).rows;
      } catch (err) {
        throw toStoreError(err);
      }
    });
    this.gate = gate;
    this.pool = pool;
    this.maxBatch = opts.maxBatch ?? 500;
    this.retentionBatch = opts.retentionBatch ?? 5000;
    this.searchProbeMax = opts.searchProbeMax ?? SEARCH_PROBE_MAX;
    this.writes = new GroupCommit(pool, this.maxBatch, () => this.gate.closed);
  }

  /** Connects, applies pending migrations (safe when several nodes start at once) and returns the store. */
  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    const schema = checkOptions(opts).schema;
    if (opts.maxBatch !== undefined && (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1 || opts.maxBatch > 100_000)) {
      throw new ParleyError('invalid', 'maxBatch must be an integer from 1 to 100000', { field: 'maxBatch' });
    }
    if (opts.searchProbeMax !== undefined && (!Number.isInteger(opts.searchProbeMax) || opts.searchProbeMax < 0)) {
      throw new ParleyError('invalid', 'searchProbeMax must be a non-negative integer', { field: 'searchProbeMax' });
    }
    const store = new PostgresStore(opts, createPool(opts));
    try {
      const client = await store.pool.connect();
      client.on('error', () => {
        /* reported by the failing query */
      });
      try {
        await migrate(client, schema);
      } finally {
        client.release();
      }
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      if (err instanceof ParleyError) throw err;
      throw isConnectionError(err) ? toStoreError(err) : err;
    }
    return store;
  }

  /** Committed room log batches and the operations' rows they carried (for tests and metrics). */
  get stats(): { batches: number; writes: number } {
    return { batches: this.batches, writes: this.written };
  }

  private async read<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    if (this.gate.closed) throw new ParleyError('unavailable', 'store is closed');
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running++;
    const done = (): void => {
      if (--this.running === 0) for (const r of this.drained.splice(0)) r();
    };
    p.then(done, done);
    return p;
  }

  // ---- RoomWriter -------------------------------------------------------------------------

  commit(batch: Batch, epoch: number | null): Promise<void> {
    if (this.gate.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    // A batch of messages alone (nearly every batch) is one statement, fenced inside it.
    if (logOnly(batch)) return this.track(this.attempt((sent) => statement(this.pool, sent, (c) => writeLog(c, batch, epoch)), batch));
    // With an epoch, the batch commits only while it is the cluster's (src/cluster/fence.ts).
    const begin = epoch === null ? undefined : (c: pg.PoolClient) => enterFence(c, epoch, true);
    return this.track(this.attempt((sent) => transaction(this.pool, (c) => writeBatch(c, batch).then(sent), begin), batch));
  }

  /**
   * Runs `work` in one transaction holding the given rooms locked against every other node's
   * `locked` batches: for clusters whose rooms have no single owner, where each batch must read
   * its facts after it holds its rooms and commit before it lets them go. `work` reads through
   * the facts it is given (the transaction's own connection) and writes with `commit`.
   */
  locked<T>(rooms: string[], work: (facts: PostgresFacts, commit: (b: Batch) => Promise<void>) => Promise<T>): Promise<T> {
    if (this.gate.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    const ids = [...new Set(rooms)].sort();
    let size = 0;
    return this.track(
      this.attempt(
        (sent) =>
          transaction(this.pool, async (c) => {
            // One lock per room id, taken in a fixed order so two nodes never wait on each other in a circle.
            for (const id of ids) await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ROOM_LOCK_KEY, id]);
            const facts = new PostgresFacts(async <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => (await c.query<R>(sql, params)).rows);
            const out = await work(facts, async (b) => {
              size = b.messages.length;
              await writeBatch(c, b);
            });
            sent();
            return out;
          }),
        () => size,
      ),
    );
  }

  /**
   * One transaction (`once`), tried again after a deadlock or serialization failure, or when a
   * pooled connection turned out broken before its commit was sent (`once` calls `sent` just
   * before it sends what commits). Rejects with what the batch's caller acts on:
   * KeyConflictError, a fencing error, or a ParleyError.
   */
  private async attempt<T>(once: (sent: () => void) => Promise<T>, size: Batch | (() => number)): Promise<T> {
    let lastErr: unknown;
    let sent = false;
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS; attempt++) {
      sent = false;
      try {
        const out = await once(() => {
          sent = true;
        });
        this.batches++;
        this.written += typeof size === 'function' ? size() : size.messages.length;
        return out;
      } catch (err) {
        lastErr = err;
        if (err instanceof KeyConflictError || (err instanceof ParleyError && err.code !== 'unavailable')) throw err;
        const again = isRetryable(err) || (isConnectionError(err) && !sent && attempt === 1);
        if (!again) break;
      }
    }
    if (lastErr instanceof ParleyError) throw lastErr;
    const failure = toStoreError(lastErr);
    if (failure.code === 'internal' || failure.code === 'conflict' || failure.code === 'invalid') throw failure;
    // What commits went out and the connection broke or the answer did not come in time (the
    // driver's read timeout; a frozen server may still commit it): nobody knows whether it
    // committed. Said so, so a client sends again with the same key instead of a new send.
    throw new ParleyError('unavailable', failure.message, sent && isConnectionError(lastErr) ? outcomeUnknown() : undefined);
  }

  // ---- UserStore ----------------------------------------------------------------------

  async upsertUser(user: User): Promise<User> {
    const profile = JSON.stringify(user.profile ?? {});
    const [existing] = await this.read<{ name: string; profile: string }>(SQL.getUser, [user.id]);
    if (existing && existing.name === user.name && existing.profile === profile) return user;
    return this.writes.write(async (c) => {
      await c.query(SQL.upsertUser, [user.id, user.name, profile, Date.now()]);
      return user;
    });
  }

  async blocksOf(user: string): Promise<string[]> {
    return (await this.read<{ blocked_id: string }>(SQL.blocksOf, [user])).map((r) => r.blocked_id);
  }

  async blockersIn(room: string, user: string): Promise<string[]> {
    return (await this.read<{ user_id: string }>(SQL.blockersIn, [room, user])).map((r) => r.user_id);
  }

  // ---- RoomStore ----------------------------------------------------------------------

  async getRoom(id: string) {
    const [r] = await this.read<RoomRow>(SQL.getRoom, [id]);
    return r ? rowToRoom(r) : null;
  }

  async findDirect(directKey: string) {
    const [r] = await this.read<RoomRow>(SQL.findDirect, [directKey]);
    return r ? rowToRoom(r) : null;
  }

  async roomsOf(user: string) {
    const rows = await this.read<RoomRow & MemberRow>(SQL.roomsOf, [user]);
    return rows.map((r) => ({ room: rowToRoom(r), member: rowToMember(r) }));
  }

  async publicRooms(limit: number, afterId = '') {
    return (await this.read<RoomRow>(SQL.publicRooms, [afterId, limit])).map(rowToRoom);
  }

  async roomCounts(): Promise<Record<string, number>> {
    const rows = await this.read<{ kind: string; n: number }>(SQL.roomCounts);
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  }

  // ---- MessageLog ---------------------------------------------------------------------

  async history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]> {
    const before = q.before ?? Number.MAX_SAFE_INTEGER;
    const rows =
      q.thread !== undefined
        ? await this.read<MessageRow>(q.after !== undefined ? SQL.threadAfter : SQL.threadBefore, [room, q.thread, q.after ?? before, q.limit])
        : q.main
          ? await this.read<MessageRow>(q.after !== undefined ? SQL.mainAfter : SQL.mainBefore, [room, q.after ?? before, q.limit])
          : await this.read<MessageRow>(q.after !== undefined ? SQL.history : SQL.historyBefore, [room, q.after ?? before, q.limit]);
    return rows.map((r) => rowToMessage(r, viewer));
  }

  async getMessage(room: string, seq: number, viewer?: string): Promise<Message | null> {
    const [r] = await this.read<MessageRow>(SQL.getMessage, [room, seq]);
    return r ? rowToMessage(r, viewer) : null;
  }

  async bounds(room: string): Promise<Bounds> {
    const [r] = await this.read<{ last: number; first: number | null }>(SQL.bounds, [room]);
    const last = r?.last ?? 0;
    return { first: r?.first ?? last + 1, last };
  }

  markRead(room: string, user: string, seq: number): Promise<number> {
    return this.writes.write(async (c) => {
      const { rows } = await c.query<{ read_seq: number }>(SQL.markRead, [room, user, seq]);
      if (rows.length === 0) throw new ParleyError('forbidden', 'not a member of this room');
      return rows[0]!.read_seq;
    });
  }

  async inbox(user: string): Promise<InboxEntry[]> {
    type Row = RoomRow & { role: Role; read_seq: number; unread: number; unread_more: boolean } & {
      l_seq: number | null;
      l_kind: Message['kind'];
      l_user: string;
      l_name: string;
      l_ts: number;
      l_text: string | null;
      l_target: number | null;
      l_data: string | null;
      l_hidden: string | null;
      l_profile: string | null;
      l_system: boolean | null;
    };
    const rows = await this.read<Row>(SQL.inbox, [user]);
    const entries = rows.map((r): InboxEntry => ({
      room: rowToRoom(r),
      role: r.role,
      readSeq: r.read_seq,
      unread: r.unread,
      unreadMore: r.unread_more,
      last:
        r.l_seq === null
          ? null
          : rowToMessage({
              room_id: r.id,
              seq: r.l_seq,
              kind: r.l_kind,
              user_id: r.l_user,
              name: r.l_name,
              ts: r.l_ts,
              text: r.l_text,
              target: r.l_target,
              data: r.l_data,
              hidden_for: r.l_hidden,
              profile: r.l_profile,
              system: r.l_system,
            }),
    }));
    entries.sort((a, b) => (b.last?.ts ?? b.room.createdAt) - (a.last?.ts ?? a.room.createdAt));
    return entries;
  }

  // ---- ModerationStore ----------------------------------------------------------------

  banFromServer(b: { user: string; until: number | null; reason: string; by: string | null }): Promise<Ban> {
    return this.writes.write(async (c) => {
      const now = Date.now();
      await c.query(SQL.upsertBan, ['', b.user, b.until, b.reason, b.by, now]);
      return { room: null, user: b.user, until: b.until, reason: b.reason, by: b.by, createdAt: now };
    });
  }

  unbanFromServer(user: string): Promise<boolean> {
    return this.writes.write(async (c) => ((await c.query(SQL.deleteBan, ['', user])).rowCount ?? 0) > 0);
  }

  async bans(room: string | null, now: number): Promise<Ban[]> {
    return (await this.read<BanRow>(SQL.bans, [room ?? '', now])).map(rowToBan);
  }

  async activeBan(room: string | null, user: string, now: number): Promise<Ban | null> {
    const [r] = await this.read<BanRow>(SQL.activeBan, [room ?? '', user, now]);
    return r ? rowToBan(r) : null;
  }

  // ---- RetentionStore -----------------------------------------------------------------

  async applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number> {
    if (this.gate.closed) throw new ParleyError('unavailable', 'store is closed');
    type Row = { id: string; last_seq: number; count: number | null; ms: number | null };
    const defaultMs = defaults.days === null ? null : Math.round(defaults.days * DAY_MS);
    let removed = 0;
    let after = '';
    try {
      // Rooms with a limit, a page at a time; each statement runs on its own pooled connection,
      // so retention never holds up the write batches.
      for (;;) {
        const rooms = await this.pool.query<Row>(SQL.retentionRooms, [defaults.count, defaultMs, after]);
        for (const r of rooms.rows) removed += await this.expireRoom(r, now);
        if (rooms.rows.length < 500) return removed;
        after = rooms.rows.at(-1)!.id;
      }
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /**
   * Removes a room's messages up to its cut, oldest first, `retentionBatch` per statement. As
   * on SQLite, an age limit cuts at the first message (in seq order) stamped at or after it,
   * so what remains is always one range of seqs ending at the last.
   */
  private async expireRoom(r: { id: string; last_seq: number; count: number | null; ms: number | null }, now: number): Promise<number> {
    let upTo = r.count === null ? 0 : Math.max(0, r.last_seq - r.count);
    if (r.ms !== null) {
      const {
        rows: [kept],
      } = await this.pool.query<{ seq: number }>(SQL.firstKept, [r.id, now - r.ms]);
      upTo = kept ? Math.max(upTo, kept.seq - 1) : r.last_seq;
    }
    if (upTo <= 0) return 0;
    // The room's last seq must outlive its messages, so a seq is never given out twice.
    await this.pool.query(SQL.keepLastSeq, [r.id, r.last_seq]);
    let removed = 0;
    for (;;) {
      const { rowCount } = await this.pool.query(SQL.expire, [r.id, upTo, this.retentionBatch]);
      removed += rowCount ?? 0;
      if ((rowCount ?? 0) < this.retentionBatch) break;
    }
    return removed;
  }

  // ---- SearchStore --------------------------------------------------------------------

  async search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]> {
    const tsq = toTsquery(query);
    if (tsq === null || rooms.length === 0 || limit === 0) return [];
    // The first search waits for the counts; later ones use them while they are read again.
    const stale = Date.now() - this.wordsAt > WORD_STATS_MS;
    if (stale) {
      const loading = this.loadWordCounts();
      if (this.wordsAt === 0) await loading;
    }
    const walk = this.words.matches(queryTerms(query)) > this.searchProbeMax;
    return (await this.read<MessageRow>(SQL.search, [rooms, tsq, viewer, limit, walk])).map((r) => rowToMessage(r));
  }

  /** Reads ANALYZE's word counts of `messages.tsv` (none yet: every word counts as rare). */
  private loadWordCounts(): Promise<void> {
    this.wordsLoading ??= this.read<{ words: string[] | null; shares: number[] | null; rows: number }>(SQL.wordStats)
      .then(
        ([r]) => {
          this.words.set(r?.words ?? [], r?.shares ?? [], r?.rows ?? 0);
          this.wordsAt = Date.now();
        },
        () => {
          // Searched as if every word were rare until a later read succeeds.
        },
      )
      .finally(() => {
        this.wordsLoading = null;
      });
    return this.wordsLoading;
  }

  // ---- Health -------------------------------------------------------------------------

  async ping(): Promise<void> {
    await this.read('SELECT 1');
  }

  /** Finishes the writes already called, then closes the pool. */
  async close(): Promise<void> {
    if (this.gate.closed) return;
    this.gate.closed = true;
    await this.writes.settled();
    if (this.running > 0) await new Promise<void>((r) => this.drained.push(r));
    await this.pool.end();
  }
}
