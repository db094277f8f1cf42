// The prepared statements of the SQLite store, in one place: reads for every port, the rows
// the room log's batches write (commit.ts), retention and search.
import type Database from 'better-sqlite3';
import { MEMBER_COLS, MSG_COLS, ROOM_COLS } from '../rows.js';
import { SEARCH_SCAN, UNREAD_SCAN } from '../store.js';

/**
 * A room's last seq: the highest seq among its messages, or the floor kept in `rooms.last_seq`
 * when retention has removed the newest ones. Sends do not write the rooms row, so a commit
 * writes one page fewer per room it touches. `r` is the rooms row's alias.
 */
const liveLastSeq = (r: string) => `max(${r}.last_seq, coalesce((SELECT max(l.seq) FROM messages l WHERE l.room_id = ${r}.id), 0))`;
const LIVE_ROOM_COLS = ROOM_COLS.replace('last_seq', `${liveLastSeq('rooms')} AS last_seq`);

/** Messages as clients read them: with the author's current public profile. */
const MSG_READ = `SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile, t.summary
  FROM messages m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN threads t ON t.room_id = m.room_id AND t.root_seq = m.seq`;

/**
 * Whether member row `m` counts message `x` as unread: anything of the main timeline; a reply
 * kept to its thread only for the thread's participants (its root's author, whoever replied
 * in it) and the users it mentions.
 */
const COUNTS_FOR = `(x.thread_only IS NULL
    OR EXISTS (SELECT 1 FROM messages r WHERE r.room_id = x.room_id AND r.seq = x.thread AND r.user_id = m.user_id)
    OR EXISTS (SELECT 1 FROM messages p WHERE p.room_id = x.room_id AND p.thread = x.thread AND p.user_id = m.user_id AND p.kind = 'text' AND p.seq < x.seq)
    OR (x.meta IS NOT NULL AND (json_extract(x.meta, '$.mentionsAll') = 'room'
      OR EXISTS (SELECT 1 FROM json_each(x.meta, '$.mentions') j WHERE j.value = m.user_id))))`;

/**
 * The user's member rows (the user is the statement's first parameter) as `m`, each with
 * `upto`: the seq of the UNREAD_SCAN-th message after its read marker, or null when fewer
 * follow (then all of them are counted). Unread counts and unread mentions look only at
 * messages up to it (IN_UNREAD_WINDOW), so a room costs at most that many index entries
 * whatever its number of unread messages; materialised so `upto` is read once per room.
 */
export const UNREAD_MEMBERS = `WITH m AS MATERIALIZED (SELECT mm.room_id, mm.user_id, mm.role, mm.read_seq,
    (SELECT u.seq FROM messages u WHERE u.room_id = mm.room_id AND u.seq > mm.read_seq ORDER BY u.seq LIMIT 1 OFFSET ${UNREAD_SCAN - 1}) AS upto
  FROM members mm WHERE mm.user_id = ?)`;
/** Message `x` is one of the messages after member row `m`'s marker that the inbox counts in. */
export const IN_UNREAD_WINDOW = (x: string) =>
  `${x}.room_id = m.room_id AND ${x}.seq > m.read_seq AND ${x}.seq <= coalesce(m.upto, ${Number.MAX_SAFE_INTEGER})`;

export type Statements = ReturnType<typeof prepareStatements>;

/** Each statement typed by better-sqlite3's public name, so declarations can spell the type. */
interface Statement extends Database.Statement {}
const named = <K extends string>(o: Record<K, Database.Statement>): Record<K, Statement> => o;

export function prepareStatements(d: Database.Database) {
  return named({
    // ---- users and blocks
    upsertUser: d.prepare(`INSERT INTO users (id, name, profile, created_at) VALUES (?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, profile = excluded.profile`),
    getUser: d.prepare('SELECT id, name, profile FROM users WHERE id = ?'),
    isBlocked: d.prepare('SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?'),
    block: d.prepare('INSERT OR IGNORE INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)'),
    unblock: d.prepare('DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?'),
    blocksOf: d.prepare('SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY blocked_id').pluck(),
    blockersIn: d
      .prepare(
        `SELECT b.user_id FROM blocks b JOIN members m ON m.room_id = ? AND m.user_id = b.user_id
      WHERE b.blocked_id = ? ORDER BY b.user_id`,
      )
      .pluck(),

    // ---- rooms
    insertRoom:
      d.prepare(`INSERT INTO rooms (id, kind, name, topic, created_by, created_at, direct_key, name_key, last_seq, access, retention_count, retention_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    updateRoom: d.prepare('UPDATE rooms SET name = ?, topic = ?, access = ?, retention_count = ?, retention_ms = ? WHERE id = ?'),
    setNameKey: d.prepare("UPDATE rooms SET name_key = ? WHERE id = ? AND kind = 'channel'"),
    channelNamed: d.prepare('SELECT id FROM rooms WHERE name_key = ?').pluck(),
    directNamed: d.prepare('SELECT id FROM rooms WHERE direct_key = ?').pluck(),
    getRoom: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE id = ?`),
    findDirect: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE direct_key = ?`),
    /** A room id's last seq, counting the kept history of a deleted room. */
    lastSeq: d
      .prepare(
        `SELECT max(coalesce((SELECT last_seq FROM rooms WHERE id = @room), 0),
      coalesce((SELECT max(seq) FROM messages WHERE room_id = @room), 0))`,
      )
      .pluck(),
    setLastSeq: d.prepare('UPDATE rooms SET last_seq = ? WHERE id = ?'),
    roomsOf:
      d.prepare(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access, r.retention_count, r.retention_ms,
        m.room_id, m.user_id, m.role, m.joined_at, m.read_seq, m.join_seq, m.muted_until
      FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? ORDER BY r.id`),
    countRooms: d.prepare(`SELECT
        (SELECT count(*) FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? AND r.kind <> 'direct') AS member,
        (SELECT count(*) FROM rooms WHERE created_by = ? AND kind <> 'direct') AS created`),
    publicRooms: d.prepare(`SELECT ${LIVE_ROOM_COLS} FROM rooms WHERE kind = 'channel' AND id > ? ORDER BY id LIMIT ?`),
    roomCounts: d.prepare('SELECT kind, count(*) AS n FROM rooms GROUP BY kind'),
    deleteRoom: d.prepare('DELETE FROM rooms WHERE id = ?'),
    deleteRoomMessages: d.prepare('DELETE FROM messages WHERE room_id = ?'),
    deleteRoomBans: d.prepare('DELETE FROM bans WHERE room_id = ?'),

    // ---- members
    getMember: d.prepare(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = ? AND user_id = ?`),
    members: d.prepare(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = ? ORDER BY joined_at, user_id`),
    someMembers: d.prepare(`SELECT ${MEMBER_COLS} FROM members WHERE room_id = ? ORDER BY joined_at, user_id LIMIT ?`),
    insertMember: d.prepare('INSERT INTO members (room_id, user_id, role, joined_at, read_seq, join_seq, muted_until) VALUES (?, ?, ?, ?, 0, ?, ?)'),
    updateMember: d.prepare('UPDATE members SET role = ?, muted_until = ? WHERE room_id = ? AND user_id = ?'),
    deleteMember: d.prepare('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
    markRead: d
      .prepare(
        `UPDATE members SET read_seq = max(read_seq, min(?, (SELECT ${liveLastSeq('rooms')} FROM rooms WHERE id = ?)))
      WHERE room_id = ? AND user_id = ? RETURNING read_seq`,
      )
      .pluck(),

    // ---- messages
    insertMessage:
      d.prepare(`INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, target, data, key, hidden_for, fts_id, system, meta, thread, thread_only)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (room_id, user_id, key) WHERE key IS NOT NULL DO NOTHING`),
    // Never below what the index has seen: ids of removed messages are not given out again.
    maxFtsId: d
      .prepare(
        `SELECT max(coalesce((SELECT max(fts_id) FROM messages), 0),
      coalesce((SELECT v FROM search.search_state WHERE k = 'cursor'), 0))`,
      )
      .pluck(),
    byKey: d.prepare(`SELECT ${MSG_COLS} FROM messages WHERE room_id = ? AND user_id = ? AND key = ?`),
    getMessage: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.seq = ?`),
    putThread: d.prepare(`INSERT INTO threads (room_id, root_seq, summary) VALUES (?, ?, ?)
      ON CONFLICT (room_id, root_seq) DO UPDATE SET summary = excluded.summary`),
    threadSummary: d.prepare('SELECT summary FROM threads WHERE room_id = ? AND root_seq = ?').pluck(),
    deleteRoomThreads: d.prepare('DELETE FROM threads WHERE room_id = ?'),
    getMeta: d.prepare('SELECT meta FROM messages WHERE room_id = ? AND seq = ?').pluck(),
    setMeta: d.prepare('UPDATE messages SET meta = ? WHERE room_id = ? AND seq = ?'),
    target: d.prepare(`SELECT kind, user_id, thread, thread_only,
        EXISTS (SELECT 1 FROM messages d WHERE d.room_id = m.room_id AND d.target = m.seq AND d.kind = 'delete') AS deleted
      FROM messages m WHERE m.room_id = ? AND m.seq = ?`),
    after: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`),
    before: d.prepare(`SELECT * FROM (${MSG_READ} WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?) ORDER BY seq`),
    // The main timeline: without what is kept to a thread.
    mainAfter: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.seq > ? AND m.thread_only IS NULL ORDER BY m.seq LIMIT ?`),
    mainBefore: d.prepare(`SELECT * FROM (${MSG_READ} WHERE m.room_id = ? AND m.seq < ? AND m.thread_only IS NULL ORDER BY m.seq DESC LIMIT ?) ORDER BY seq`),
    threadAfter: d.prepare(`${MSG_READ} WHERE m.room_id = ? AND m.thread = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`),
    threadBefore: d.prepare(`SELECT * FROM (${MSG_READ} WHERE m.room_id = ? AND m.thread = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?) ORDER BY seq`),
    firstSeq: d.prepare('SELECT min(seq) FROM messages WHERE room_id = ?').pluck(),
    // More messages follow the counted ones when the newest is past `upto` (one index entry).
    inbox:
      d.prepare(`${UNREAD_MEMBERS} SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access, r.retention_count, r.retention_ms,
        m.role, m.read_seq,
        (SELECT count(*) FROM messages x WHERE ${IN_UNREAD_WINDOW('x')}
          AND x.kind = 'text' AND x.user_id <> m.user_id AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id) AND ${COUNTS_FOR}) AS unread,
        (m.upto IS NOT NULL AND m.upto < (SELECT max(z.seq) FROM messages z WHERE z.room_id = m.room_id)) AS unread_more,
        (SELECT max(y.seq) FROM messages y WHERE y.room_id = m.room_id AND y.kind = 'text' AND y.thread_only IS NULL
          AND (y.hidden_for IS NULL OR y.hidden_for <> m.user_id)) AS last_text
      FROM m JOIN rooms r ON r.id = m.room_id`),

    // ---- bans and access lists
    upsertBan: d.prepare(`INSERT INTO bans (room_id, user_id, until, reason, by, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(room_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, created_at = excluded.created_at`),
    deleteBan: d.prepare('DELETE FROM bans WHERE room_id = ? AND user_id = ?'),
    bans: d.prepare('SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = ? AND (until IS NULL OR until > ?) ORDER BY created_at'),
    activeBan: d.prepare('SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = ? AND user_id = ? AND (until IS NULL OR until > ?)'),
    anyBan: d.prepare('SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = ? AND user_id = ?'),
    accessAdd: d.prepare('INSERT OR IGNORE INTO access_lists (room_id, list, user_id) VALUES (?, ?, ?)'),
    accessRemove: d.prepare('DELETE FROM access_lists WHERE room_id = ? AND list = ? AND user_id = ?'),
    accessList: d.prepare('SELECT user_id FROM access_lists WHERE room_id = ? AND list = ? ORDER BY user_id').pluck(),
    listed: d.prepare(`SELECT EXISTS (SELECT 1 FROM access_lists WHERE room_id = @room AND list = 'white' AND user_id = @user) AS white,
      EXISTS (SELECT 1 FROM access_lists WHERE room_id = @room AND list = 'black' AND user_id = @user) AS black`),

    // ---- retention
    retentionRooms: d.prepare(`SELECT id, ${liveLastSeq('rooms')} AS last_seq, retention_count, retention_ms FROM rooms
      WHERE id > ? ORDER BY id LIMIT ?`),
    // Age limits cut at the first message (in seq order) at or after the limit. This walks
    // only the messages about to be removed, with no index on ts to keep up at every send.
    firstKept: d.prepare('SELECT seq FROM messages WHERE room_id = ? AND ts >= ? ORDER BY seq LIMIT 1').pluck(),
    // What a room keeps is one range of seqs, so the first `n` of those up to the cut are the
    // seqs from its first to first + n - 1.
    expire: d.prepare(`DELETE FROM messages WHERE room_id = @room
      AND seq <= min(@upTo, coalesce((SELECT min(seq) FROM messages WHERE room_id = @room), 0) + @n - 1)`),
    keepLastSeq: d.prepare('UPDATE rooms SET last_seq = max(last_seq, ?) WHERE id = ?'),

    // ---- search and health
    // FTS5 walks a word's matches newest first (by rowid, the order messages were indexed)
    // and stops after SEARCH_SCAN of them, so a common word costs the same as a rare one.
    search: d.prepare(`SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile
      FROM (SELECT rowid AS id, room_id, seq FROM search.messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ${SEARCH_SCAN}) f
        JOIN messages m ON m.room_id = f.room_id AND m.seq = f.seq AND m.fts_id = f.id LEFT JOIN users u ON u.id = m.user_id
      WHERE f.room_id IN (SELECT value FROM json_each(?)) AND (m.hidden_for IS NULL OR m.hidden_for <> ?)
      ORDER BY f.id DESC LIMIT ?`),
    ping: d.prepare('SELECT 1'),
  });
}
