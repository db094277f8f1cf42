// Versioned schema of the PostgreSQL store. Each entry runs once, in order; the table
// `schema_migrations` records which have run. All pending entries are applied in one
// transaction at open, under a transaction-scoped advisory lock, so several nodes starting at
// once apply each entry exactly once and none sees a half-migrated schema. Never edit a
// shipped entry: add one.
//
// Times are ms since the epoch (bigint); JSON (profiles, message data) is kept as text, as
// the client sent it; ids compare byte-wise (COLLATE "C"), as in SQLite. `messages.tsv` is the
// full-text vector of a text or edit message, set to NULL once a later edit or a delete
// replaces it, so search finds only current versions.
import type pg from 'pg';

export const migrations: string[] = [
  /* 1 */ `
  CREATE TABLE users (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    profile text NOT NULL DEFAULT '{}',
    created_at bigint NOT NULL
  );
  CREATE TABLE rooms (
    id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('channel','group','direct')),
    name text NOT NULL,
    topic text NOT NULL DEFAULT '',
    created_by text,
    created_at bigint NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0,
    direct_key text UNIQUE,
    access text NOT NULL DEFAULT 'blacklist' CHECK (access IN ('blacklist','whitelist')),
    retention_count integer,
    retention_ms bigint
  );
  CREATE INDEX rooms_public ON rooms (kind, id);
  CREATE TABLE members (
    room_id text COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id text COLLATE "C" NOT NULL,
    role text NOT NULL CHECK (role IN ('owner','admin','member')),
    joined_at bigint NOT NULL,
    read_seq bigint NOT NULL DEFAULT 0,
    join_seq bigint NOT NULL,
    muted_until bigint,
    PRIMARY KEY (room_id, user_id)
  );
  CREATE INDEX members_user ON members (user_id, room_id);
  CREATE TABLE messages (
    room_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    name text NOT NULL,
    ts bigint NOT NULL,
    text text,
    target bigint,
    data text,
    key text,
    hidden_for text,
    tsv tsvector,
    PRIMARY KEY (room_id, seq)
  );
  CREATE UNIQUE INDEX messages_key ON messages (room_id, user_id, key) WHERE key IS NOT NULL;
  CREATE INDEX messages_target ON messages (room_id, target) WHERE target IS NOT NULL;
  CREATE INDEX messages_ts ON messages (room_id, ts);
  CREATE INDEX messages_tsv ON messages USING gin (tsv) WHERE tsv IS NOT NULL;
  -- Room access lists: 'black' users may not be members; in whitelist mode only 'white' users may.
  CREATE TABLE access_lists (
    room_id text COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    list text NOT NULL CHECK (list IN ('black','white')),
    user_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (room_id, list, user_id)
  );
  -- Bans: room_id '' is server-wide; until NULL is forever (ms since epoch otherwise).
  CREATE TABLE bans (
    room_id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    until bigint,
    reason text NOT NULL DEFAULT '',
    by text,
    created_at bigint NOT NULL,
    PRIMARY KEY (room_id, user_id)
  );
  CREATE INDEX bans_user ON bans (user_id);
  -- A user's blocks of other users (direct messages from them are not delivered).
  CREATE TABLE blocks (
    user_id text COLLATE "C" NOT NULL,
    blocked_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
  );
  -- Built-in accounts (argon2id hashes) and their refresh sessions.
  CREATE TABLE accounts (
    user_id text COLLATE "C" PRIMARY KEY,
    username text NOT NULL,
    password_hash text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE UNIQUE INDEX accounts_username ON accounts (lower(username));
  CREATE TABLE sessions (
    id text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    refresh_hash text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    revoked_at bigint
  );
  CREATE INDEX sessions_user ON sessions (user_id);
  -- Word blacklist of the word-filter plugin, administered by API.
  CREATE TABLE blocked_words (
    word text NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE UNIQUE INDEX blocked_words_word ON blocked_words (lower(word));
  `,
  // 2: state of the Chat21-compatible endpoint (integrations/chat21/store-postgres.ts).
  `
  CREATE TABLE chat21_archives (
    user_id text COLLATE "C" NOT NULL,
    room_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (user_id, room_id)
  );
  CREATE TABLE chat21_group_attributes (
    room_id text COLLATE "C" PRIMARY KEY,
    attributes jsonb NOT NULL
  );
  CREATE TABLE chat21_instances (
    user_id text COLLATE "C" NOT NULL,
    instance_id text COLLATE "C" NOT NULL,
    data jsonb NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (user_id, instance_id)
  );
  `,
  // 3: messages posted by the server-side API carry a mark no client can set; typing events
  // skip the users who block the typist, found by who they block; the rooms a user created
  // are counted against its cap; retention by age walks the oldest messages in seq order, so
  // sends no longer keep an index on ts.
  `
  ALTER TABLE messages ADD COLUMN system boolean;
  CREATE INDEX blocks_blocked ON blocks (blocked_id, user_id);
  CREATE INDEX rooms_created_by ON rooms (created_by) WHERE created_by IS NOT NULL;
  DROP INDEX IF EXISTS messages_ts;
  `,
  // 4: channel names are unique by channelNameKey (store.ts), which the store computes for
  // every write. For the channels already there the same key is computed here; channels that
  // already shared a name keep it: the oldest holds the key, the others have none until renamed.
  `
  ALTER TABLE rooms ADD COLUMN name_key text;
  UPDATE rooms SET name_key = k.key FROM (
    SELECT id, key, row_number() OVER (PARTITION BY key ORDER BY created_at, id) AS n
    FROM (SELECT id, created_at, btrim(regexp_replace(lower(normalize(name, NFKC)), '\\s+', ' ', 'g')) AS key
      FROM rooms WHERE kind = 'channel') AS c
  ) AS k WHERE rooms.id = k.id AND k.n = 1;
  CREATE UNIQUE INDEX rooms_channel_name ON rooms (name_key) WHERE name_key IS NOT NULL;
  `,
  // 5: uploaded attachments (store/postgres/attachments.ts) and the bytes of every file in
  // chunks (blobs/postgres.ts), stored uncompressed: uploads are mostly compressed already.
  `
  CREATE TABLE blobs (
    id text COLLATE "C" PRIMARY KEY,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    created_at bigint NOT NULL,
    complete boolean NOT NULL
  );
  CREATE INDEX blobs_partial ON blobs (created_at) WHERE NOT complete;
  CREATE TABLE blob_chunks (
    blob_id text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (blob_id, n)
  );
  ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
  CREATE TABLE attachments (
    id text COLLATE "C" PRIMARY KEY,
    room_id text COLLATE "C" NOT NULL,
    uploader text COLLATE "C" NOT NULL,
    name text NOT NULL,
    size bigint NOT NULL,
    type text NOT NULL,
    width integer,
    height integer,
    blob_id text COLLATE "C" NOT NULL,
    preview_id text COLLATE "C",
    sha256 text NOT NULL,
    created_at bigint NOT NULL,
    message_seq bigint
  );
  CREATE INDEX attachments_room ON attachments (room_id, message_seq);
  CREATE INDEX attachments_unattached ON attachments (created_at) WHERE message_seq IS NULL;
  `,
  // 6: sessions record the device that signed in and when they were last used.
  `
  ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
  ALTER TABLE sessions ADD COLUMN last_used_at bigint;
  `,
  // 7: rich messages. A message's mentions and the quote of the message it replies to are kept
  // with it (meta, JSON); per-member notification levels and who may mention the whole room
  // (store/postgres/notifications.ts); pinned messages (store/postgres/pins.ts).
  `
  ALTER TABLE messages ADD COLUMN meta text;
  CREATE TABLE notify_levels (
    room_id text COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id text COLLATE "C" NOT NULL,
    level text NOT NULL CHECK (level IN ('all','mentions','none')),
    PRIMARY KEY (room_id, user_id)
  );
  CREATE TABLE room_settings (
    room_id text COLLATE "C" PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    mention_all text NOT NULL CHECK (mention_all IN ('moderators','members'))
  );
  CREATE TABLE pins (
    room_id text COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    by text COLLATE "C" NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (room_id, seq)
  );
  `,
  // 8: room ownership in cluster mode (src/cluster). cluster_state is the one row every batch
  // checks its epoch against (fence.ts); nodes is the node list of that epoch. cluster_nodes
  // holds each node's lease, renewed with the database's clock; a row is added or removed
  // only together with an epoch bump, so the two always list the same nodes.
  `
  CREATE TABLE cluster_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    nodes jsonb NOT NULL
  );
  INSERT INTO cluster_state (id, epoch, nodes) VALUES (1, 0, '[]');
  CREATE TABLE cluster_nodes (
    id text COLLATE "C" PRIMARY KEY,
    url text NOT NULL,
    incarnation text NOT NULL,
    renewed_at timestamptz NOT NULL
  );
  `,
  // 9: threads. A thread reply names its root (thread) and, unless it was also sent to the
  // room, is kept out of the main timeline (thread_only); each root's summary is kept in
  // threads, written with the replies.
  `
  ALTER TABLE messages ADD COLUMN thread bigint;
  ALTER TABLE messages ADD COLUMN thread_only boolean;
  CREATE INDEX messages_thread ON messages (room_id, thread, seq) WHERE thread IS NOT NULL;
  CREATE TABLE threads (
    room_id text COLLATE "C" NOT NULL,
    root_seq bigint NOT NULL,
    summary text NOT NULL,
    PRIMARY KEY (room_id, root_seq)
  );
  `,
  // 10: Web Push (store/postgres/push.ts): each browser's subscription, the session that made
  // it, and the VAPID key pair every node signs with (the first node to start stores it).
  `
  CREATE TABLE push_subscriptions (
    endpoint text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    session_id text COLLATE "C",
    p256dh text NOT NULL,
    auth text NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
  CREATE INDEX push_subscriptions_session ON push_subscriptions(session_id) WHERE session_id IS NOT NULL;
  CREATE TABLE push_vapid (
    id smallint PRIMARY KEY CHECK (id = 1),
    public_key text NOT NULL,
    private_key text NOT NULL
  );
  `,
  // 11: users' pictures (store/postgres/avatars.ts); their bytes are blobs of the attachments' store.
  `
  CREATE TABLE avatars (
    user_id text COLLATE "C" PRIMARY KEY,
    blob_id text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL
  );
  `,
  // 12: the room log's messages and thread summaries written by one statement (commit.ts);
  // the messages come as one JSON array of rows (one string to build, not sixteen arrays for
  // the driver to quote element by element). A batch of nothing else is one round trip: the
  // function runs in the statement's own transaction, fenced first when given an epoch
  // (src/cluster/fence.ts: the lock shared, then the epoch read by a later statement, which in
  // a volatile function takes a fresh snapshot). SQLSTATE PY001: fenced (DETAIL: the current
  // epoch); PY002: a message's key is stored.
  `
  CREATE FUNCTION parley_write_log(
    p_epoch bigint,
    p_messages json,
    p_replaced_room text[], p_replaced_seq bigint[],
    p_summary_room text[], p_summary_root bigint[], p_summary text[]
  ) RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
  DECLARE
    current_epoch bigint;
    stored bigint;
  BEGIN
    IF p_epoch IS NOT NULL THEN
      -- 1885761123 is FENCE_KEY ('pfnc').
      PERFORM pg_advisory_xact_lock_shared(1885761123, hashtext(current_schema()));
      SELECT epoch INTO current_epoch FROM cluster_state WHERE id = 1;
      IF current_epoch IS DISTINCT FROM p_epoch THEN
        RAISE EXCEPTION 'fenced: epoch % is not current', p_epoch USING ERRCODE = 'PY001', DETAIL = coalesce(current_epoch::text, '');
      END IF;
    END IF;
    IF cardinality(p_replaced_room) > 0 THEN
      UPDATE messages m SET tsv = NULL FROM (
        SELECT x.room_id, x.seq FROM unnest(p_replaced_room, p_replaced_seq) AS t(r, s) JOIN messages x ON x.room_id = t.r AND x.seq = t.s
        UNION
        SELECT x.room_id, x.seq FROM unnest(p_replaced_room, p_replaced_seq) AS t(r, s)
          JOIN messages x ON x.room_id = t.r AND x.target = t.s AND x.kind = 'edit'
      ) v WHERE m.room_id = v.room_id AND m.seq = v.seq AND m.tsv IS NOT NULL;
    END IF;
    IF json_array_length(p_messages) > 0 THEN
      INSERT INTO messages (room_id, seq, kind, user_id, name, ts, text, target, data, key, hidden_for, tsv, system, meta, thread, thread_only)
      SELECT r, s, k, u, n, t, x, g, d, y, h, v::tsvector, sy, m, th, o
      FROM json_to_recordset(p_messages) AS j(r text, s bigint, k text, u text, n text, t bigint, x text, g bigint, d text, y text, h text,
        v text, sy boolean, m text, th bigint, o boolean)
      ON CONFLICT (room_id, user_id, key) WHERE key IS NOT NULL DO NOTHING;
      GET DIAGNOSTICS stored = ROW_COUNT;
      IF stored < json_array_length(p_messages) THEN
        RAISE EXCEPTION 'an idempotency key of the batch is already stored' USING ERRCODE = 'PY002';
      END IF;
    END IF;
    IF cardinality(p_summary_room) > 0 THEN
      INSERT INTO threads (room_id, root_seq, summary) SELECT * FROM unnest(p_summary_room, p_summary_root, p_summary)
      ON CONFLICT (room_id, root_seq) DO UPDATE SET summary = excluded.summary;
    END IF;
  END
  $fn$;
  `,
  // 13: the bytes of a user's unsent uploads, summed at each upload (attachments.unsentBytesPerUser).
  `
  CREATE INDEX attachments_unsent_by ON attachments (uploader) WHERE message_seq IS NULL;
  `,
  // 14: a deleted room's Chat21 archive marks are removed by room
  // (integrations/chat21/store-postgres.ts, removeRoom).
  `
  CREATE INDEX chat21_archives_room ON chat21_archives (room_id);
  `,
];

/** First key of the advisory lock that serialises migrations ('parl'); the second is the schema's hash. */
const LOCK_KEY = 0x7061726c;

/**
 * Applies the pending migrations in one transaction on `client` (creating `schema` first
 * when it is not the default). Returns the schema version reached.
 */
export async function migrate(client: pg.ClientBase, schema: string | null): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_KEY, schema ?? 'public']);
    // The schema name was validated by the store (lower-case identifier), so quoting is enough.
    if (schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      applied_at bigint NOT NULL
    )`);
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const version = rows[0]?.v ?? 0;
    if (version > migrations.length) {
      throw new Error(`database schema version ${version} is newer than this Parley (${migrations.length})`);
    }
    for (let v = version; v < migrations.length; v++) {
      await client.query(migrations[v]!);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v + 1, Date.now()]);
    }
    await client.query('COMMIT');
    return migrations.length;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
