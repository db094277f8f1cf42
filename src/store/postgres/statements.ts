// SQL of the PostgreSQL store's reads, in one place (the room log's batch statements are in
// commit.ts).
import { MEMBER_COLS, MSG_COLS } from '../rows.js';
import { SEARCH_SCAN, UNREAD_SCAN } from '../store.js';

/**
 * A room's last seq: the highest seq among its messages, or the floor kept in `rooms.last_seq`
 * when retention removed the newest ones (or when the room was created after its kept history).
 * Sends write only their messages, never the rooms row. `r` is the rooms row's alias.
 */
export const liveLastSeq = (r: string): string => `greatest(${r}.last_seq, coalesce((SELECT max(l.seq) FROM messages l WHERE l.room_id = ${r}.id), 0))`;

export const ROOM_READ = `SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access,
  r.retention_count, r.retention_ms FROM rooms r`;

/** Messages as clients read them: with the author's current public profile. */
export const MSG_READ = `SELECT m.room_id, m.seq, m.kind, m.user_id, m.name, m.ts, m.text, m.target, m.data, m.hidden_for, m.system, m.meta, u.profile, t.summary
  FROM messages m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN threads t ON t.room_id = m.room_id AND t.root_seq = m.seq`;

/**
 * Joins to member row `m` its `w.upto`: the seq of the UNREAD_SCAN-th message after its read
 * marker, or null when fewer follow (then all of them are counted). Unread counts and unread
 * mentions look only at messages up to it (IN_UNREAD_WINDOW), so a room costs at most that
 * many index entries whatever its number of unread messages; a lateral join reads it once per
 * room (a subquery in the select list would be read again at each use).
 */
export const UNREAD_WINDOW = `LEFT JOIN LATERAL (SELECT u.seq AS upto FROM messages u WHERE u.room_id = m.room_id AND u.seq > m.read_seq
    ORDER BY u.seq LIMIT 1 OFFSET ${UNREAD_SCAN - 1}) w ON true`;
/** Message `x` is one of the messages after member row `m`'s marker that the inbox counts in. */
export const IN_UNREAD_WINDOW = (x: string): string =>
  `${x}.room_id = m.room_id AND ${x}.seq > m.read_seq AND ${x}.seq <= coalesce(w.upto, ${Number.MAX_SAFE_INTEGER})`;

/**
 * Whether member row `m` counts message `x` as unread: anything of the main timeline; a reply
 * kept to its thread only for the thread's participants (its root's author, whoever replied
 * in it) and the users it mentions.
 */
const COUNTS_FOR = `(x.thread_only IS NULL
    OR EXISTS (SELECT 1 FROM messages r WHERE r.room_id = x.room_id AND r.seq = x.thread AND r.user_id = m.user_id)
    OR EXISTS (SELECT 1 FROM messages p WHERE p.room_id = x.room_id AND p.thread = x.thread AND p.user_id = m.user_id AND p.kind = 'text' AND p.seq < x.seq)
    OR (x.meta IS NOT NULL AND ((x.meta::jsonb ->> 'mentionsAll') = 'room' OR (x.meta::jsonb -> 'mentions') ? m.user_id)))`;

/**
 * Full-text search, newest first, looking at a bounded number of messages whatever the word
 * (as SQLite's FTS walk stops after SEARCH_SCAN matches). The GIN index yields matches in no
 * order, so sorting them all would cost as much as the word is common. Instead a probe takes
 * at most SEARCH_SCAN + 1 matches from the index:
 * - at most SEARCH_SCAN: those are all the matches, and only they are sorted;
 * - more: the word is common, so each room's newest messages are walked in seq order (its
 *   primary key, backwards) and filtered, stopping at a page of matches per room; each walk
 *   looks at no more than the room's share of SEARCH_SCAN messages (and at least a page).
 *   Older matches of a very common word are not found; a more precise query finds them.
 * The probe costs what the word's matches in the whole database cost to read from the index
 * (its bitmap takes them all before the rooms are applied), so a query the statistics expect
 * in more than SEARCH_PROBE_MAX messages goes straight to the walk ($5).
 * $1 rooms, $2 tsquery, $3 viewer (its hidden messages are left out), $4 page size, $5 walk
 * without the probe.
 */
/** Queries the statistics expect in more messages than this are searched without the probe (see SEARCH). */
export const SEARCH_PROBE_MAX = 10 * SEARCH_SCAN;

/**
 * What ANALYZE found in `messages.tsv`: its most common words, the share of the rows with
 * words that hold each, and how many rows have words.
 */
const WORD_STATS = `SELECT s.most_common_elems::text::text[] AS words, s.most_common_elem_freqs AS shares,
    greatest(c.reltuples, 0) * (1 - s.null_frac) AS rows
  FROM pg_stats s JOIN pg_class c ON c.oid = to_regclass('messages')
  WHERE s.schemaname = current_schema() AND s.tablename = 'messages' AND s.attname = 'tsv'`;

const SEARCH = `WITH probe AS MATERIALIZED (
    SELECT p.room_id, p.seq, p.ts FROM messages p
    WHERE NOT $5::boolean AND p.room_id = ANY($1::text[]) AND p.tsv IS NOT NULL AND p.tsv @@ $2::tsquery AND (p.hidden_for IS NULL OR p.hidden_for <> $3)
    LIMIT ${SEARCH_SCAN + 1}
  ), few AS (
    SELECT f.room_id, f.seq, f.ts FROM probe f WHERE NOT $5::boolean AND (SELECT count(*) FROM probe) <= ${SEARCH_SCAN}
    ORDER BY f.ts DESC, f.seq DESC LIMIT $4
  ), many AS (
    SELECT w.room_id, w.seq, w.ts FROM unnest($1::text[]) AS r(id) CROSS JOIN LATERAL (
      SELECT y.room_id, y.seq, y.ts FROM (
        SELECT x.room_id, x.seq, x.ts, x.tsv, x.hidden_for FROM messages x WHERE x.room_id = r.id
        ORDER BY x.seq DESC LIMIT greatest($4, ceil(${SEARCH_SCAN}.0 / cardinality($1::text[])))::bigint
      ) y WHERE y.tsv @@ $2::tsquery AND (y.hidden_for IS NULL OR y.hidden_for <> $3) LIMIT $4
    ) w WHERE $5::boolean OR (SELECT count(*) FROM probe) > ${SEARCH_SCAN}
  ), hits AS (
    SELECT h.room_id, h.seq, h.ts FROM (SELECT * FROM few UNION ALL SELECT * FROM many) h ORDER BY h.ts DESC, h.seq DESC LIMIT $4
  )
  ${MSG_READ} JOIN hits h ON h.room_id = m.room_id AND h.seq = m.seq
  ORDER BY h.ts DESC, h.seq DESC`;

export const SQL = {
  getUser: 'SELECT id, name, profile FROM users WHERE id = $1',
  upsertUser: `INSERT INTO users (id, name, profile, created_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, profile = excluded.profile`,
  blocksOf: 'SELECT blocked_id FROM blocks WHERE user_id = $1 ORDER BY blocked_id',
  blockersIn: `SELECT b.user_id FROM blocks b JOIN members m ON m.room_id = $1 AND m.user_id = b.user_id
    WHERE b.blocked_id = $2 ORDER BY b.user_id`,
  isBlocked: 'SELECT 1 FROM blocks WHERE user_id = $1 AND blocked_id = $2',

  getRoom: `${ROOM_READ} WHERE r.id = $1`,
  findDirect: `${ROOM_READ} WHERE r.direct_key = $1`,
  /** A room id's last seq, counting the kept history of a deleted room. */
  lastSeq: `SELECT greatest(coalesce((SELECT last_seq FROM rooms WHERE id = $1), 0),
    coalesce((SELECT max(seq) FROM messages WHERE room_id = $1), 0)) AS last`,
  roomsOf: `SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access,
      r.retention_count, r.retention_ms, m.room_id, m.user_id, m.role, m.joined_at, m.read_seq, m.join_seq, m.muted_until
    FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 ORDER BY r.id`,
  countRooms: `SELECT
      (SELECT count(*) FROM members m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = $1 AND r.kind <> 'direct')::integer AS member,
      (SELECT count(*) FROM rooms WHERE created_by = $1 AND kind <> 'direct')::integer AS created`,
  publicRooms: `${ROOM_READ} WHERE r.kind = 'channel' AND r.id > $1 ORDER BY r.id LIMIT $2`,
  roomCounts: 'SELECT kind, count(*)::integer AS n FROM rooms GROUP BY kind',
  channelNamed: 'SELECT id FROM rooms WHERE name_key = $1',
  directNamed: 'SELECT id FROM rooms WHERE direct_key = $1',

  getMember: `SELECT ${MEMBER_COLS} FROM members WHERE room_id = $1 AND user_id = $2`,
  members: `SELECT ${MEMBER_COLS} FROM members WHERE room_id = $1 ORDER BY joined_at, user_id`,
  someMembers: `SELECT ${MEMBER_COLS} FROM members WHERE room_id = $1 ORDER BY joined_at, user_id LIMIT $2`,
  markRead: `UPDATE members SET read_seq = greatest(read_seq, least($3::bigint, (SELECT ${liveLastSeq('r')} FROM rooms r WHERE r.id = $1)))
    WHERE room_id = $1 AND user_id = $2 RETURNING read_seq`,

  history: `${MSG_READ} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`,
  historyBefore: `SELECT * FROM (${MSG_READ} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3) x ORDER BY seq`,
  // The main timeline: without what is kept to a thread.
  mainAfter: `${MSG_READ} WHERE m.room_id = $1 AND m.seq > $2 AND m.thread_only IS NULL ORDER BY m.seq LIMIT $3`,
  mainBefore: `SELECT * FROM (${MSG_READ} WHERE m.room_id = $1 AND m.seq < $2 AND m.thread_only IS NULL ORDER BY m.seq DESC LIMIT $3) x ORDER BY seq`,
  threadAfter: `${MSG_READ} WHERE m.room_id = $1 AND m.thread = $2 AND m.seq > $3 ORDER BY m.seq LIMIT $4`,
  threadBefore: `SELECT * FROM (${MSG_READ} WHERE m.room_id = $1 AND m.thread = $2 AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4) x ORDER BY seq`,
  threadSummary: 'SELECT summary FROM threads WHERE room_id = $1 AND root_seq = $2',
  getMessage: `${MSG_READ} WHERE m.room_id = $1 AND m.seq = $2`,
  bounds: `SELECT greatest(coalesce((SELECT last_seq FROM rooms WHERE id = $1), 0), coalesce(max(seq), 0)) AS last, min(seq) AS first
    FROM messages WHERE room_id = $1`,
  byKey: `SELECT ${MSG_COLS} FROM messages WHERE room_id = $1 AND user_id = $2 AND key = $3`,
  target: `SELECT m.kind, m.user_id, m.thread, m.thread_only,
      EXISTS (SELECT 1 FROM messages d WHERE d.room_id = m.room_id AND d.target = m.seq AND d.kind = 'delete') AS deleted
    FROM messages m WHERE m.room_id = $1 AND m.seq = $2`,
  // More messages follow the counted ones when the newest is past `upto` (one index entry).
  inbox: `SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at, ${liveLastSeq('r')} AS last_seq, r.access,
      r.retention_count, r.retention_ms, m.role, m.read_seq,
      (SELECT count(*) FROM messages x WHERE ${IN_UNREAD_WINDOW('x')}
        AND x.kind = 'text' AND x.user_id <> m.user_id AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id) AND ${COUNTS_FOR})::integer AS unread,
      (w.upto IS NOT NULL AND w.upto < (SELECT max(z.seq) FROM messages z WHERE z.room_id = m.room_id)) AS unread_more,
      l.seq AS l_seq, l.kind AS l_kind, l.user_id AS l_user, l.name AS l_name, l.ts AS l_ts, l.text AS l_text,
      l.target AS l_target, l.data AS l_data, l.hidden_for AS l_hidden, l.system AS l_system, lu.profile AS l_profile
    FROM members m JOIN rooms r ON r.id = m.room_id
    ${UNREAD_WINDOW}
    LEFT JOIN LATERAL (SELECT y.* FROM messages y WHERE y.room_id = m.room_id AND y.kind = 'text' AND y.thread_only IS NULL
      AND (y.hidden_for IS NULL OR y.hidden_for <> m.user_id) ORDER BY y.seq DESC LIMIT 1) l ON true
    LEFT JOIN users lu ON lu.id = l.user_id
    WHERE m.user_id = $1`,
  search: SEARCH,
  wordStats: WORD_STATS,

  upsertBan: `INSERT INTO bans (room_id, user_id, until, reason, by, created_at) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (room_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, created_at = excluded.created_at`,
  deleteBan: 'DELETE FROM bans WHERE room_id = $1 AND user_id = $2',
  bans: `SELECT room_id, user_id, until, reason, by, created_at FROM bans
    WHERE room_id = $1 AND (until IS NULL OR until > $2) ORDER BY created_at`,
  activeBan: `SELECT room_id, user_id, until, reason, by, created_at FROM bans
    WHERE room_id = $1 AND user_id = $2 AND (until IS NULL OR until > $3)`,
  anyBan: 'SELECT room_id, user_id, until, reason, by, created_at FROM bans WHERE room_id = $1 AND user_id = $2',
  accessList: 'SELECT user_id FROM access_lists WHERE room_id = $1 AND list = $2 ORDER BY user_id',
  listed: `SELECT EXISTS (SELECT 1 FROM access_lists WHERE room_id = $1 AND list = 'white' AND user_id = $2) AS white,
    EXISTS (SELECT 1 FROM access_lists WHERE room_id = $1 AND list = 'black' AND user_id = $2) AS black`,

  retentionRooms: `SELECT r.id, ${liveLastSeq('r')} AS last_seq, coalesce(r.retention_count, $1::integer) AS count,
      coalesce(r.retention_ms, $2::bigint) AS ms FROM rooms r
    WHERE r.id > $3 AND (coalesce(r.retention_count, $1::integer) IS NOT NULL OR coalesce(r.retention_ms, $2::bigint) IS NOT NULL)
    ORDER BY r.id LIMIT 500`,
  firstKept: 'SELECT seq FROM messages WHERE room_id = $1 AND ts >= $2 ORDER BY seq LIMIT 1',
  /** Before retention removes messages: the room's last seq must outlive them, so no seq is given out twice. */
  keepLastSeq: 'UPDATE rooms SET last_seq = greatest(last_seq, $2) WHERE id = $1',
  expire: `DELETE FROM messages WHERE room_id = $1 AND seq IN (
    SELECT seq FROM messages WHERE room_id = $1 AND seq <= $2 ORDER BY seq LIMIT $3)`,
} as const;
