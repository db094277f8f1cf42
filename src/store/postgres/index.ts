// PostgreSQL implementation of the Store port (`pg`), for clusters: any number of nodes share
// one database. Writes are queued and committed in groups: while one transaction is in flight
// the writes arriving meanwhile gather, and the next transaction runs them all, each inside its
// own savepoint so a failing write rejects alone. One transaction at a time per instance keeps
// each room's writes in call order.
//
// A batch first locks the room rows of every room it writes, in id order (so batches of
// different nodes wait for each other instead of deadlocking); each message then takes its seq
// with `UPDATE rooms SET last_seq = last_seq + 1 ... RETURNING` in the statement that inserts
// it. Permission checks read after the lock, so they see every committed membership change.
// Deadlocks that still happen (rows outside rooms) roll the batch back and run it again.
import pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { Ban, InboxEntry, Member, Message, Role, Room, User } from '../../protocol/schema.js';
import { channelNameKey, type AppendResult, type Bounds, type HistoryQuery, type NewMessage, type NewRoom, type RoomPatch, type Store } from '../store.js';
import {
  DAY_MS, FOREVER, MEMBER_COLS, MSG_COLS, ROOM_COLS, metaText, patchSummary, rowToBan, rowToMember, rowToMessage, rowToRoom,
  type BanRow, type MemberRow, type MessageRow, type RoomRow,
} from '../rows.js';
import { KEPT_HISTORY } from '../store.js';
import { migrate } from './migrations.js';
import { checkOptions, createPool, isConnectionError, isRetryable, toStoreError, transaction, type PgPoolOptions } from './pool.js';

export interface PostgresOptions extends PgPoolOptions {
  /** Most writes in one transaction (default 500). */
  maxBatch?: number;
  /** Most messages one retention statement removes (default 5000). */
  retentionBatch?: number;
}

type Client = pg.PoolClient;
interface Pending { rooms: string[]; run: (c: Client) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }
interface BatchResult { ok: boolean; v: unknown }

/** Messages as clients read them: with the author's current public profile. */
const MSG_READ = `SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile
  FROM messages m LEFT JOIN users u ON u.id = m.user_id`;
/** Attempts of a batch that hit a deadlock or serialization failure. */
const BATCH_ATTEMPTS = 3;
/** The longest word PostgreSQL indexes (bytes); longer ones are left out, as to_tsvector does. */
const MAX_LEXEME_BYTES = 2046;
const MAX_POSITION = 16383;

/**
 * The words of a text for search, as SQLite's unicode61 tokenizer (remove_diacritics) sees
 * them: runs of letters and digits, lower-cased, without diacritics. Done here rather than by
 * a text search configuration so results do not depend on the server's locale or extensions.
 */
export function searchWords(text: string): string[] {
  const words = text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [];
  return words.filter((w) => Buffer.byteLength(w) <= MAX_LEXEME_BYTES);
}

/** tsvector literal of a text (words with positions), or null when it has no words. */
function toTsvector(text: string): string | null {
  const words = searchWords(text);
  if (words.length === 0) return null;
  return words.map((w, i) => `'${w}':${Math.min(i + 1, MAX_POSITION)}`).join(' ');
}

/**
 * tsquery of a user's query: every word must match; a word the tokenizer splits (`a_b`)
 * must match as a phrase. Only letters and digits reach the query, so no query syntax does.
 */
function toTsquery(query: string): string | null {
  const terms: string[] = [];
  for (const raw of (query.match(/[\p{L}\p{N}_]+/gu) ?? []).slice(0, 16)) {
    const words = searchWords(raw);
    if (words.length === 0) continue;
    terms.push(words.length === 1 ? `'${words[0]}'` : `(${words.map((w) => `'${w}'`).join(' <-> ')})`);
  }
  return terms.length === 0 ? null : terms.join(' & ');
}

function int(name: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ParleyError('invalid', `${name} must be an integer ≥ ${min}`, { field: name });
  return v;
}
function str(name: string, v: unknown): string {
  if (typeof v !== 'string') throw new ParleyError('invalid', `${name} must be a string`, { field: name });
  return v;
}

/**
 * The key of a channel name no other channel has (see channelNameKey), or `conflict`. Two
 * channels named at once on different nodes are told apart by the unique index instead.
 */
async function freeChannelName(c: pg.ClientBase, name: string, room: string): Promise<string> {
  const key = channelNameKey(name);
  const { rows } = await c.query<{ id: string }>('SELECT id FROM rooms WHERE name_key = $1', [key]);
  if (rows.some((r) => r.id !== room)) throw new ParleyError('conflict', 'a channel with this name exists', { field: 'name' });
  return key;
}

const MESSAGE_KINDS = new Set(['text', 'edit', 'delete', 'reaction', 'event']);

export class PostgresStore implements Store {
  /** The pool, shared with sibling stores on the same database (accounts, plugins). */
  readonly pool: pg.Pool;
  private queue: Pending[] = [];
  private running = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: () => void = () => {};
  private readonly maxBatch: number;
  private readonly retentionBatch: number;
  private batches = 0;
  private written = 0;

  /** Use `PostgresStore.open`, which also brings the schema up to date. */
  private constructor(opts: PostgresOptions) {
    if (opts.maxBatch !== undefined && (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1 || opts.maxBatch > 100_000)) {
      throw new ParleyError('invalid', 'maxBatch must be an integer from 1 to 100000', { field: 'maxBatch' });
    }
    this.maxBatch = opts.maxBatch ?? 500;
    this.retentionBatch = opts.retentionBatch ?? 5000;
    this.pool = createPool(opts);
  }

  /** Connects, applies pending migrations (safe when several nodes start at once) and returns the store. */
  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    const schema = checkOptions(opts).schema;
    const store = new PostgresStore(opts);
    try {
      const client = await store.pool.connect();
      client.on('error', () => { /* reported by the failing query */ });
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

  /** Committed batch transactions and the writes they carried (for tests and metrics). */
  get stats(): { batches: number; writes: number } {
    return { batches: this.batches, writes: this.written };
  }

  // ---- group commit -------------------------------------------------------------------

  /** Queues a write on the rooms it touches; it runs in the next batch transaction. */
  private write<T>(rooms: string[], run: (c: Client) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ rooms, run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        this.idle = new Promise((r) => { this.settleIdle = r; });
        // Writes called in the same event-loop turn share the first transaction.
        setImmediate(() => { void this.drain(); });
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      await this.runBatch(batch);
    }
    this.running = false;
    this.settleIdle();
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= BATCH_ATTEMPTS; attempt++) {
      let sent = false;
      try {
        const results = await this.tryBatch(batch, () => { sent = true; });
        this.batches++;
        this.written += batch.length;
        for (let i = 0; i < batch.length; i++) {
          const r = results[i]!;
          if (r.ok) batch[i]!.resolve(r.v);
          else batch[i]!.reject(toStoreError(r.v));
        }
        return;
      } catch (err) {
        lastErr = err;
        // Rolled back as a whole: run it again after a deadlock, or when a connection broke
        // before COMMIT was sent (a pooled connection the server had closed). A break during
        // COMMIT leaves the outcome unknown, so that is reported, not retried.
        const again = isRetryable(err) || (isConnectionError(err) && !sent && attempt === 1);
        if (!again) break;
      }
    }
    const failure = lastErr instanceof ParleyError ? lastErr : toStoreError(lastErr);
    const out = failure.code === 'internal' ? failure : new ParleyError('unavailable', failure.message);
    for (const p of batch) p.reject(out);
  }

  /** One transaction over the batch; throws when it did not commit as a whole. */
  private tryBatch(batch: Pending[], committing: () => void): Promise<BatchResult[]> {
    return transaction(this.pool, async (client) => {
      const rooms = [...new Set(batch.flatMap((p) => p.rooms))];
      if (rooms.length > 0) {
        await client.query('SELECT 1 FROM rooms WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [rooms]);
      }
      await client.query('SAVEPOINT w');
      const results: BatchResult[] = new Array(batch.length);
      for (let i = 0; i < batch.length; i++) {
        try {
          results[i] = { ok: true, v: await batch[i]!.run(client) };
          if (i < batch.length - 1) await client.query('RELEASE SAVEPOINT w; SAVEPOINT w');
        } catch (err) {
          if (isConnectionError(err) || isRetryable(err)) throw err;
          // Undo whatever this write did; the batch goes on.
          await client.query('ROLLBACK TO SAVEPOINT w');
          results[i] = { ok: false, v: err };
        }
      }
      committing();
      return results;
    });
  }


  /** A read on any pooled connection, with driver errors turned into ParleyErrors. */
  private async read<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /** Inside a write: stores a message, taking the room's next seq; returns the seq. */
  private async insertMessage(c: Client, m: Omit<Message, 'seq'>, key: string | null, hiddenFor: string | null = null): Promise<number> {
    const tsv = (m.kind === 'text' || m.kind === 'edit') && m.text !== undefined ? toTsvector(m.text) : null;
    // An edit replaces what search finds for its thread, a delete removes it.
    const unindex = m.kind === 'edit' || m.kind === 'delete'
      ? `, u AS (UPDATE messages SET tsv = NULL WHERE room_id = $1 AND (seq = $7::bigint OR (target = $7::bigint AND kind = 'edit')) AND tsv IS NOT NULL)`
      : '';
    const { rows } = await c.query<{ seq: number }>(
      `WITH s AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq)${unindex}
       INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, target, data, key, hidden_for, tsv, system, meta)
       SELECT $1::text, s.last_seq, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::bigint, $8::text, $9::text, $10::text, $11::tsvector, $12::boolean, $13::text
       FROM s RETURNING seq`,
      [m.room, m.kind, m.user, m.name, m.ts, m.text ?? null, m.target ?? null,
        m.data === undefined ? null : JSON.stringify(m.data), key, hiddenFor, tsv, m.system ? true : null, metaText(m)],
    );
    if (rows.length === 0) throw new ParleyError('not_found', 'room not found');
    return rows[0]!.seq;
  }

  // ---- users ----------------------------------------------------------------------------

  async upsertUser(user: User): Promise<User> {
    str('id', user.id);
    str('name', user.name);
    const profile = JSON.stringify(user.profile ?? {});
    const [existing] = await this.read<{ name: string; profile: string }>('SELECT name, profile FROM users WHERE id = $1', [user.id]);
    if (existing && existing.name === user.name && existing.profile === profile) return user;
    return this.write([], async (c) => {
      await c.query(`INSERT INTO users (id, name, profile, created_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, profile = excluded.profile`, [user.id, user.name, profile, Date.now()]);
      return user;
    });
  }

  async getUser(id: string): Promise<User | null> {
    const [r] = await this.read<{ id: string; name: string; profile: string }>('SELECT id, name, profile FROM users WHERE id = $1', [id]);
    return r ? { id: r.id, name: r.name, profile: JSON.parse(r.profile) as Record<string, unknown> } : null;
  }

  // ---- rooms ----------------------------------------------------------------------------

  createRoom(nr: NewRoom): Promise<{ room: Room; messages: Message[] }> {
    str('id', nr.id);
    return this.write([nr.id], async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM rooms WHERE id = $1 OR (direct_key IS NOT NULL AND direct_key = $2)', [nr.id, nr.directKey ?? null]);
      if (rowCount) throw new ParleyError('conflict', 'room already exists');
      // A deleted room whose history is kept still owns its id (see the Store contract); a
      // direct pair's room continues after it.
      const { rows: [kept] } = await c.query<{ last: number | null }>('SELECT max(seq) AS last FROM messages WHERE room_id = $1', [nr.id]);
      if (kept!.last !== null && nr.kind !== 'direct') throw new ParleyError('conflict', KEPT_HISTORY);
      const nameKey = nr.kind === 'channel' ? await freeChannelName(c, nr.name, nr.id) : null;
      const now = Date.now();
      await c.query('INSERT INTO rooms (id, kind, name, topic, created_by, created_at, direct_key, last_seq, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [nr.id, nr.kind, nr.name, nr.topic, nr.createdBy, now, nr.directKey ?? null, kept!.last ?? 0, nameKey]);
      const messages: Message[] = [];
      for (const m of nr.members) {
        const msg: Omit<Message, 'seq'> = { room: nr.id, kind: 'join', user: m.user, name: m.name, ts: now, data: { role: m.role } };
        if (nr.createdBy && nr.createdBy !== m.user) msg.data!.by = nr.createdBy;
        const seq = await this.insertMessage(c, msg, null);
        await c.query('INSERT INTO members (room_id, user_id, role, joined_at, read_seq, join_seq) VALUES ($1, $2, $3, $4, 0, $5)',
          [nr.id, m.user, m.role, now, seq]);
        messages.push({ ...msg, seq } as Message);
      }
      const room: Room = {
        id: nr.id, kind: nr.kind, name: nr.name, topic: nr.topic, createdBy: nr.createdBy, createdAt: now,
        lastSeq: messages.at(-1)?.seq ?? kept!.last ?? 0,
        access: 'blacklist', retention: { count: null, days: null },
      };
      return { room, messages };
    });
  }

  async getRoom(id: string): Promise<Room | null> {
    const [r] = await this.read<RoomRow>(`SELECT ${ROOM_COLS} FROM rooms WHERE id = $1`, [id]);
    return r ? rowToRoom(r) : null;
  }

  async findDirect(directKey: string): Promise<Room | null> {
    const [r] = await this.read<RoomRow>(`SELECT ${ROOM_COLS} FROM rooms WHERE direct_key = $1`, [directKey]);
    return r ? rowToRoom(r) : null;
  }

  async roomsOf(user: string): Promise<Array<{ room: Room; member: Member }>> {
    const rows = await this.read<RoomRow & MemberRow>(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, r.last_seq, r.access,
        r.retention_count, r.retention_ms, m.room_id, m.user_id, m.role, m.joined_at, m.read_seq, m.join_seq, m.muted_until
      FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 ORDER BY r.id`, [user]);
    return rows.map((r) => ({ room: rowToRoom(r), member: rowToMember(r) }));
  }

  async countRooms(user: string): Promise<{ member: number; created: number }> {
    const [r] = await this.read<{ member: number; created: number }>(`SELECT
        (SELECT count(*) FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 AND r.kind <> 'direct')::integer AS member,
        (SELECT count(*) FROM rooms WHERE created_by = $1 AND kind <> 'direct')::integer AS created`, [user]);
    return { member: r!.member, created: r!.created };
  }

  async publicRooms(limit: number, afterId = ''): Promise<Room[]> {
    int('limit', limit);
    const rows = await this.read<RoomRow>(`SELECT ${ROOM_COLS} FROM rooms WHERE kind = 'channel' AND id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
    return rows.map(rowToRoom);
  }

  async getMember(room: string, user: string): Promise<Member | null> {
    const [r] = await this.read<MemberRow>(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = $1 AND user_id = $2`, [room, user]);
    return r ? rowToMember(r) : null;
  }

  async members(room: string): Promise<Member[]> {
    return (await this.read<MemberRow>(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = $1 ORDER BY joined_at, user_id`, [room])).map(rowToMember);
  }

  addMember(room: string, user: string, name: string, role: Role, by: string): Promise<{ member: Member; message: Message }> {
    return this.write([room], async (c) => {
      const { rows } = await c.query<{ member: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2) AS member FROM rooms WHERE id = $1', [room, user]);
      if (rows.length === 0) throw new ParleyError('not_found', 'room not found');
      if (rows[0]!.member) throw new ParleyError('conflict', 'already a member');
      const now = Date.now();
      const msg: Omit<Message, 'seq'> = { room, kind: 'join', user, name, ts: now, data: { role } };
      if (by !== user) msg.data!.by = by;
      const seq = await this.insertMessage(c, msg, null);
      await c.query('INSERT INTO members (room_id, user_id, role, joined_at, read_seq, join_seq) VALUES ($1, $2, $3, $4, 0, $5)', [room, user, role, now, seq]);
      return { member: { room, user, role, joinedAt: now, joinSeq: seq, readSeq: 0 }, message: { ...msg, seq } as Message };
    });
  }

  removeMember(room: string, user: string, name: string, by: string): Promise<Message> {
    return this.write([room], async (c) => {
      const { rowCount } = await c.query('DELETE FROM members WHERE room_id = $1 AND user_id = $2', [room, user]);
      if (!rowCount) throw new ParleyError('not_found', 'not a member');
      const msg: Omit<Message, 'seq'> = { room, kind: 'leave', user, name, ts: Date.now() };
      if (by !== user) msg.data = { by };
      const seq = await this.insertMessage(c, msg, null);
      return { ...msg, seq } as Message;
    });
  }

  // ---- messages ---------------------------------------------------------------------------

  append(nm: NewMessage): Promise<AppendResult> {
    if (!MESSAGE_KINDS.has(nm.kind)) return Promise.reject(new ParleyError('invalid', 'unknown message kind', { field: 'kind' }));
    const targeted = nm.kind === 'edit' || nm.kind === 'delete' || nm.kind === 'reaction';
    try {
      if (targeted) int('target', nm.target, 1);
      if (nm.key !== undefined) str('key', nm.key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write([nm.room], async (c) => {
      type Check = {
        room: boolean; role: Role | null; muted_until: number | null; prior: number | null;
        target_kind: string | null; target_user: string | null; target_deleted: boolean; blocked: boolean;
      };
      // One round trip for every check; the room row is locked, so this sees committed changes.
      const { rows: [k] } = await c.query<Check>(`SELECT
          EXISTS (SELECT 1 FROM rooms WHERE id = $1) AS room,
          mb.role, mb.muted_until,
          (SELECT seq FROM messages WHERE room_id = $1 AND user_id = $2 AND key = $3::text) AS prior,
          t.kind AS target_kind, t.user_id AS target_user,
          EXISTS (SELECT 1 FROM messages WHERE room_id = $1 AND target = $4::bigint AND kind = 'delete') AS target_deleted,
          EXISTS (SELECT 1 FROM blocks WHERE user_id = $5::text AND blocked_id = $2) AS blocked
        FROM (SELECT 1) one
        LEFT JOIN members mb ON mb.room_id = $1 AND mb.user_id = $2
        LEFT JOIN messages t ON t.room_id = $1 AND t.seq = $4::bigint`,
      [nm.room, nm.user, nm.key ?? null, targeted ? nm.target : null, nm.directPeer ?? null]);
      if (!k!.room) throw new ParleyError('not_found', 'room not found');
      const moderates = nm.moderator === true && nm.kind === 'delete';
      if (k!.role === null && !nm.system && !moderates) throw new ParleyError('forbidden', 'not a member of this room');
      if (k!.muted_until !== null && k!.muted_until > Date.now() && nm.kind !== 'delete') {
        const until = k!.muted_until === FOREVER ? null : k!.muted_until;
        throw new ParleyError('forbidden', 'you are muted in this room', { reason: 'muted', until });
      }
      if (k!.prior !== null) {
        const { rows: [prior] } = await c.query<MessageRow>(`SELECT ${MSG_COLS} FROM messages WHERE room_id = $1 AND seq = $2`, [nm.room, k!.prior]);
        return { message: rowToMessage(prior!), duplicate: true };
      }
      if (targeted) {
        if (k!.target_kind !== 'text') throw new ParleyError('not_found', 'target message not found');
        if (k!.target_deleted) throw new ParleyError('conflict', 'target message was deleted');
        if (nm.kind === 'edit' && k!.target_user !== nm.user) throw new ParleyError('forbidden', 'only the author can edit a message');
        if (nm.kind === 'delete' && k!.target_user !== nm.user && !moderates && (k!.role === null || k!.role === 'member')) {
          throw new ParleyError('forbidden', 'only the author or a room admin can delete a message');
        }
      }
      const msg: Omit<Message, 'seq'> = { room: nm.room, kind: nm.kind, user: nm.user, name: nm.name, ts: Date.now() };
      if (nm.system) msg.system = true;
      if (nm.text !== undefined) msg.text = nm.text;
      if (nm.target !== undefined) msg.target = nm.target;
      if (nm.data !== undefined) msg.data = nm.data;
      if (nm.meta !== undefined) Object.assign(msg, nm.meta);
      const hiddenFor = nm.directPeer !== undefined && k!.blocked ? nm.directPeer : null;
      const seq = await this.insertMessage(c, msg, nm.key ?? null, hiddenFor);
      const message = { ...msg, seq } as Message;
      return hiddenFor ? { message, duplicate: false, hiddenFor } : { message, duplicate: false };
    });
  }

  async history(room: string, q: HistoryQuery, viewer?: string): Promise<Message[]> {
    int('limit', q.limit);
    const rows = q.after !== undefined
      ? await this.read<MessageRow>(`${MSG_READ} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`, [room, int('after', q.after), q.limit])
      : await this.read<MessageRow>(`SELECT * FROM (${MSG_READ} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3) x ORDER BY seq`,
        [room, q.before === undefined ? Number.MAX_SAFE_INTEGER : int('before', q.before), q.limit]);
    return rows.map((r) => rowToMessage(r, viewer));
  }

  async getMessage(room: string, seq: number, viewer?: string): Promise<Message | null> {
    const [r] = await this.read<MessageRow>(`${MSG_READ} WHERE m.room_id = $1 AND m.seq = $2`, [room, int('seq', seq)]);
    return r ? rowToMessage(r, viewer) : null;
  }

  async bounds(room: string): Promise<Bounds> {
    const [r] = await this.read<{ last: number | null; first: number | null }>(
      'SELECT (SELECT last_seq FROM rooms WHERE id = $1) AS last, (SELECT min(seq) FROM messages WHERE room_id = $1) AS first', [room]);
    const last = r?.last ?? 0;
    return { first: r?.first ?? last + 1, last };
  }

  markRead(room: string, user: string, seq: number): Promise<number> {
    try { int('seq', seq); } catch (err) { return Promise.reject(err); }
    return this.write([room], async (c) => {
      const { rows } = await c.query<{ read_seq: number }>(`UPDATE members
        SET read_seq = greatest(read_seq, least($3::bigint, (SELECT last_seq FROM rooms WHERE id = $1)))
        WHERE room_id = $1 AND user_id = $2 RETURNING read_seq`, [room, user, seq]);
      if (rows.length === 0) throw new ParleyError('forbidden', 'not a member of this room');
      return rows[0]!.read_seq;
    });
  }

  async inbox(user: string): Promise<InboxEntry[]> {
    type Row = RoomRow & { role: Role; read_seq: number; unread: number } & {
      l_seq: number | null; l_kind: Message['kind']; l_user: string; l_name: string; l_ts: number; l_text: string | null;
      l_target: number | null; l_data: string | null; l_hidden: string | null; l_profile: string | null; l_system: boolean | null;
    };
    const rows = await this.read<Row>(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, r.last_seq, r.access,
        r.retention_count, r.retention_ms, m.role, m.read_seq,
        (SELECT count(*) FROM messages x WHERE x.room_id = m.room_id AND x.seq > m.read_seq AND x.kind = 'text'
          AND x.user_id <> m.user_id AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id)) AS unread,
        l.seq AS l_seq, l.kind AS l_kind, l.user_id AS l_user, l.name AS l_name, l.ts AS l_ts, l.text AS l_text,
        l.target AS l_target, l.data AS l_data, l.hidden_for AS l_hidden, l.system AS l_system, lu.profile AS l_profile
      FROM members m JOIN rooms r ON r.id = m.room_id
      LEFT JOIN LATERAL (SELECT y.* FROM messages y WHERE y.room_id = m.room_id AND y.kind = 'text'
        AND (y.hidden_for IS NULL OR y.hidden_for <> m.user_id) ORDER BY y.seq DESC LIMIT 1) l ON true
      LEFT JOIN users lu ON lu.id = l.user_id
      WHERE m.user_id = $1`, [user]);
    const entries = rows.map((r): InboxEntry => ({
      room: rowToRoom(r), role: r.role, readSeq: r.read_seq, unread: r.unread,
      last: r.l_seq === null ? null : rowToMessage({
        room_id: r.id, seq: r.l_seq, kind: r.l_kind, user_id: r.l_user, name: r.l_name, ts: r.l_ts, text: r.l_text,
        target: r.l_target, data: r.l_data, hidden_for: r.l_hidden, profile: r.l_profile, system: r.l_system,
      }),
    }));
    entries.sort((a, b) => (b.last?.ts ?? b.room.createdAt) - (a.last?.ts ?? a.room.createdAt));
    return entries;
  }

  // ---- moderation ---------------------------------------------------------------------------

  updateRoom(room: string, patch: RoomPatch, by: { user: string; name: string }): Promise<{ room: Room; message: Message }> {
    try {
      if (patch.retentionCount != null) int('retentionCount', patch.retentionCount);
      if (patch.retentionDays != null && !(Number.isFinite(patch.retentionDays) && patch.retentionDays >= 0)) {
        throw new ParleyError('invalid', 'retentionDays must be a number ≥ 0', { field: 'retentionDays' });
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write([room], async (c) => {
      if (patch.name !== undefined) {
        const { rows: [current] } = await c.query<{ kind: string }>('SELECT kind FROM rooms WHERE id = $1', [room]);
        if (current?.kind === 'channel') {
          await c.query('UPDATE rooms SET name_key = $2 WHERE id = $1', [room, await freeChannelName(c, patch.name, room)]);
        }
      }
      const setCount = patch.retentionCount !== undefined;
      const setMs = patch.retentionDays !== undefined;
      const { rowCount } = await c.query(`UPDATE rooms SET name = coalesce($2, name), topic = coalesce($3, topic), access = coalesce($4, access),
          retention_count = CASE WHEN $5::boolean THEN $6::integer ELSE retention_count END,
          retention_ms = CASE WHEN $7::boolean THEN $8::bigint ELSE retention_ms END WHERE id = $1`, [
        room, patch.name ?? null, patch.topic ?? null, patch.access ?? null,
        setCount, patch.retentionCount ?? null, setMs, patch.retentionDays == null ? null : Math.round(patch.retentionDays * DAY_MS),
      ]);
      if (!rowCount) throw new ParleyError('not_found', 'room not found');
      const data = patchSummary(patch);
      const msg: Omit<Message, 'seq'> = { room, kind: 'update', user: by.user, name: by.name, ts: Date.now(), data };
      const seq = await this.insertMessage(c, msg, null);
      const { rows: [r] } = await c.query<RoomRow>(`SELECT ${ROOM_COLS} FROM rooms WHERE id = $1`, [room]);
      return { room: rowToRoom(r!), message: { ...msg, seq } as Message };
    });
  }

  deleteRoom(room: string, keepHistory: boolean): Promise<string[]> {
    return this.write([room], async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM rooms WHERE id = $1', [room]);
      if (!rowCount) throw new ParleyError('not_found', 'room not found');
      const { rows } = await c.query<{ user_id: string }>('SELECT user_id FROM members WHERE room_id = $1', [room]);
      if (!keepHistory) await c.query('DELETE FROM messages WHERE room_id = $1', [room]);
      await c.query('DELETE FROM bans WHERE room_id = $1', [room]);
      await c.query('DELETE FROM rooms WHERE id = $1', [room]);
      return rows.map((r) => r.user_id);
    });
  }

  setRole(room: string, user: string, role: Role, by: { user: string; name: string }): Promise<{ member: Member; message: Message }> {
    return this.write([room], async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2', [room, user]);
      if (!rowCount) throw new ParleyError('not_found', 'not a member');
      if (role === 'owner') {
        await c.query(`UPDATE members SET role = 'admin' WHERE room_id = $1 AND role = 'owner' AND user_id <> $2`, [room, user]);
      }
      const { rows: [m] } = await c.query<MemberRow>(`UPDATE members SET role = $3 WHERE room_id = $1 AND user_id = $2 RETURNING ${MEMBER_COLS}`, [room, user, role]);
      const msg: Omit<Message, 'seq'> = { room, kind: 'update', user: by.user, name: by.name, ts: Date.now(), data: { user, role } };
      const seq = await this.insertMessage(c, msg, null);
      return { member: rowToMember(m!), message: { ...msg, seq } as Message };
    });
  }

  setMute(room: string, user: string, until: number | null, off: boolean): Promise<Member> {
    try { if (until !== null) int('until', until); } catch (err) { return Promise.reject(err); }
    return this.write([room], async (c) => {
      const value = off ? null : until ?? FOREVER;
      const { rows } = await c.query<MemberRow>(`UPDATE members SET muted_until = $3 WHERE room_id = $1 AND user_id = $2 RETURNING ${MEMBER_COLS}`, [room, user, value]);
      if (rows.length === 0) throw new ParleyError('not_found', 'not a member');
      return rowToMember(rows[0]!);
    });
  }

  ban(b: { room: string | null; user: string; until: number | null; reason: string; by: string | null }): Promise<Ban> {
    try { if (b.until !== null) int('until', b.until); str('reason', b.reason); } catch (err) { return Promise.reject(err); }
    return this.write([], async (c) => {
      const now = Date.now();
      await c.query(`INSERT INTO bans (room_id, user_id, until, reason, by, created_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (room_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, created_at = excluded.created_at`,
      [b.room ?? '', b.user, b.until, b.reason, b.by, now]);
      return { room: b.room, user: b.user, until: b.until, reason: b.reason, by: b.by, createdAt: now };
    });
  }

  unban(room: string | null, user: string): Promise<boolean> {
    return this.write([], async (c) => ((await c.query('DELETE FROM bans WHERE room_id = $1 AND user_id = $2', [room ?? '', user])).rowCount ?? 0) > 0);
  }

  async bans(room: string | null, now: number): Promise<Ban[]> {
    const rows = await this.read<BanRow>(`SELECT room_id, user_id, until, reason, by, created_at FROM bans
      WHERE room_id = $1 AND (until IS NULL OR until > $2) ORDER BY created_at`, [room ?? '', int('now', now)]);
    return rows.map(rowToBan);
  }

  async activeBan(room: string | null, user: string, now: number): Promise<Ban | null> {
    const [r] = await this.read<BanRow>(`SELECT room_id, user_id, until, reason, by, created_at FROM bans
      WHERE room_id = $1 AND user_id = $2 AND (until IS NULL OR until > $3)`, [room ?? '', user, int('now', now)]);
    return r ? rowToBan(r) : null;
  }

  setAccess(room: string, list: 'black' | 'white', add: string[], remove: string[]): Promise<string[]> {
    if (list !== 'black' && list !== 'white') return Promise.reject(new ParleyError('invalid', 'list must be black or white', { field: 'list' }));
    if (!Array.isArray(add) || !Array.isArray(remove) || [...add, ...remove].some((u) => typeof u !== 'string')) {
      return Promise.reject(new ParleyError('invalid', 'add and remove must be lists of user ids'));
    }
    return this.write([room], async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM rooms WHERE id = $1', [room]);
      if (!rowCount) throw new ParleyError('not_found', 'room not found');
      if (add.length > 0) {
        await c.query(`INSERT INTO access_lists (room_id, list, user_id) SELECT $1, $2, u FROM unnest($3::text[]) AS u
          ON CONFLICT DO NOTHING`, [room, list, add]);
      }
      if (remove.length > 0) await c.query('DELETE FROM access_lists WHERE room_id = $1 AND list = $2 AND user_id = ANY($3::text[])', [room, list, remove]);
      const { rows } = await c.query<{ user_id: string }>('SELECT user_id FROM access_lists WHERE room_id = $1 AND list = $2 ORDER BY user_id', [room, list]);
      return rows.map((r) => r.user_id);
    });
  }

  async accessList(room: string, list: 'black' | 'white'): Promise<string[]> {
    const rows = await this.read<{ user_id: string }>('SELECT user_id FROM access_lists WHERE room_id = $1 AND list = $2 ORDER BY user_id', [room, list]);
    return rows.map((r) => r.user_id);
  }

  async hasAccess(room: string, user: string): Promise<boolean> {
    const [r] = await this.read<{ access: string; role: Role | null; white: boolean; black: boolean }>(`SELECT r.access,
        (SELECT role FROM members WHERE room_id = r.id AND user_id = $2) AS role,
        EXISTS (SELECT 1 FROM access_lists WHERE room_id = r.id AND list = 'white' AND user_id = $2) AS white,
        EXISTS (SELECT 1 FROM access_lists WHERE room_id = r.id AND list = 'black' AND user_id = $2) AS black
      FROM rooms r WHERE r.id = $1`, [room, user]);
    if (!r) return false;
    if (r.role !== null && r.role !== 'member') return true;
    return r.access === 'whitelist' ? r.white : !r.black;
  }

  setBlock(user: string, other: string, blocked: boolean): Promise<void> {
    return this.write([], async (c) => {
      if (blocked) await c.query('INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [user, other, Date.now()]);
      else await c.query('DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2', [user, other]);
    });
  }

  async blocksOf(user: string): Promise<string[]> {
    return (await this.read<{ blocked_id: string }>('SELECT blocked_id FROM blocks WHERE user_id = $1 ORDER BY blocked_id', [user])).map((r) => r.blocked_id);
  }

  async blockersIn(room: string, user: string): Promise<string[]> {
    const rows = await this.read<{ user_id: string }>(`SELECT b.user_id FROM blocks b JOIN members m ON m.room_id = $1 AND m.user_id = b.user_id
      WHERE b.blocked_id = $2 ORDER BY b.user_id`, [room, user]);
    return rows.map((r) => r.user_id);
  }

  // ---- retention and search ------------------------------------------------------------------

  async applyRetention(now: number, defaults: { count: number | null; days: number | null }): Promise<number> {
    int('now', now);
    if (defaults.count !== null) int('count', defaults.count);
    if (defaults.days !== null && !(Number.isFinite(defaults.days) && defaults.days >= 0)) {
      throw new ParleyError('invalid', 'days must be a number ≥ 0', { field: 'days' });
    }
    if (this.closed) throw new ParleyError('unavailable', 'store is closed');
    type Row = { id: string; last_seq: number; count: number | null; ms: number | null };
    const defaultMs = defaults.days === null ? null : Math.round(defaults.days * DAY_MS);
    let removed = 0;
    let after = '';
    try {
      // Rooms with a limit, a page at a time; each statement runs on its own pooled connection,
      // so retention never holds up the write batches.
      for (;;) {
        const rooms = await this.pool.query<Row>(`SELECT id, last_seq, coalesce(retention_count, $1::integer) AS count,
            coalesce(retention_ms, $2::bigint) AS ms FROM rooms
          WHERE id > $3 AND (coalesce(retention_count, $1::integer) IS NOT NULL OR coalesce(retention_ms, $2::bigint) IS NOT NULL)
          ORDER BY id LIMIT 500`, [defaults.count, defaultMs, after]);
        for (const r of rooms.rows) removed += await this.expireRoom(r.id, await this.retentionCut(r, now));
        if (rooms.rows.length < 500) return removed;
        after = rooms.rows.at(-1)!.id;
      }
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /**
   * The highest seq retention removes in a room. As on SQLite, an age limit cuts at the first
   * message (in seq order) stamped at or after it, so what remains is always one range of seqs
   * ending at the last: a message stamped late (a clock stepped back, another node's clock)
   * stays with the newer ones instead of leaving a hole no `gap` event would name.
   */
  private async retentionCut(r: { id: string; last_seq: number; count: number | null; ms: number | null }, now: number): Promise<number> {
    let upTo = r.count === null ? 0 : Math.max(0, r.last_seq - r.count);
    if (r.ms !== null) {
      const { rows: [kept] } = await this.pool.query<{ seq: number }>(
        'SELECT seq FROM messages WHERE room_id = $1 AND ts >= $2 ORDER BY seq LIMIT 1', [r.id, now - r.ms]);
      upTo = kept ? Math.max(upTo, kept.seq - 1) : r.last_seq;
    }
    return upTo;
  }

  /** Removes a room's messages up to `upTo`, oldest first, `retentionBatch` per statement. */
  private async expireRoom(room: string, upTo: number): Promise<number> {
    let removed = 0;
    while (upTo > 0) {
      const { rowCount } = await this.pool.query(`DELETE FROM messages WHERE room_id = $1 AND seq IN (
          SELECT seq FROM messages WHERE room_id = $1 AND seq <= $2 ORDER BY seq LIMIT $3)`, [room, upTo, this.retentionBatch]);
      removed += rowCount ?? 0;
      if ((rowCount ?? 0) < this.retentionBatch) break;
    }
    return removed;
  }

  async search(viewer: string, query: string, rooms: string[], limit: number): Promise<Message[]> {
    str('query', query);
    int('limit', limit);
    if (!Array.isArray(rooms) || rooms.some((r) => typeof r !== 'string')) throw new ParleyError('invalid', 'rooms must be a list of room ids', { field: 'rooms' });
    const tsq = toTsquery(query);
    if (tsq === null || rooms.length === 0 || limit === 0) return [];
    const rows = await this.read<MessageRow>(`${MSG_READ}
      WHERE m.room_id = ANY($1::text[]) AND m.tsv IS NOT NULL AND m.tsv @@ $2::tsquery
        AND (m.hidden_for IS NULL OR m.hidden_for <> $3)
      ORDER BY m.ts DESC, m.seq DESC LIMIT $4`, [rooms, tsq, viewer, limit]);
    return rows.map((r) => rowToMessage(r));
  }

  // ---- health ------------------------------------------------------------------------------

  async ping(): Promise<void> {
    await this.read('SELECT 1');
  }

  async roomCounts(): Promise<Record<string, number>> {
    const rows = await this.read<{ kind: string; n: number }>('SELECT kind, count(*) AS n FROM rooms GROUP BY kind');
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  }

  /** Finishes the queued writes, then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle;
    await this.pool.end();
  }
}
