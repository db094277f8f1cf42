// Versioned schema of the SQLite store. Each entry runs once, in order, inside a transaction;
// PRAGMA user_version records how far a database has come. Never edit a shipped entry: add one.
export const migrations: string[] = [
  /* 1 */ `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    profile TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('channel','group','direct')),
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    direct_key TEXT UNIQUE,
    access TEXT NOT NULL DEFAULT 'blacklist' CHECK (access IN ('blacklist','whitelist')),
    retention_count INTEGER,
    retention_ms INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX rooms_public ON rooms(kind, id);
  CREATE TABLE members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner','admin','member')),
    joined_at INTEGER NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    join_seq INTEGER NOT NULL,
    muted_until INTEGER,
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX members_user ON members(user_id, room_id);
  CREATE TABLE messages (
    room_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ts INTEGER NOT NULL,
    text TEXT,
    target INTEGER,
    data TEXT,
    key TEXT,
    hidden_for TEXT,
    fts_id INTEGER,
    PRIMARY KEY (room_id, seq)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX messages_key ON messages(room_id, user_id, key) WHERE key IS NOT NULL;
  CREATE INDEX messages_target ON messages(room_id, target) WHERE target IS NOT NULL;
  -- Full-text index of text and edit messages (FTS5); rows are removed when a message is deleted.
  CREATE VIRTUAL TABLE messages_fts USING fts5(text, room_id UNINDEXED, seq UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');
  CREATE INDEX messages_ts ON messages(room_id, ts);
  -- Room access lists: 'black' users may not be members; in whitelist mode only 'white' users may.
  CREATE TABLE access_lists (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    list TEXT NOT NULL CHECK (list IN ('black','white')),
    user_id TEXT NOT NULL,
    PRIMARY KEY (room_id, list, user_id)
  ) WITHOUT ROWID;
  -- Bans: room_id '' is server-wide; until NULL is forever (ms since epoch otherwise).
  CREATE TABLE bans (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    until INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    by TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX bans_user ON bans(user_id);
  -- A user's blocks of other users (direct messages from them are not delivered).
  CREATE TABLE blocks (
    user_id TEXT NOT NULL,
    blocked_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
  ) WITHOUT ROWID;
  -- Built-in accounts (argon2id hashes) and their refresh sessions.
  CREATE TABLE accounts (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    refresh_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX sessions_user ON sessions(user_id);
  -- Word blacklist of the word-filter plugin, administered by API.
  CREATE TABLE blocked_words (
    word TEXT PRIMARY KEY COLLATE NOCASE,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 2: the search index moves to its own file, kept by a worker thread (search-index.ts).
  // fts_id becomes the order in which text, edit and delete messages reach the index.
  `
  DROP TABLE messages_fts;
  UPDATE messages SET fts_id = NULL;
  UPDATE messages SET fts_id = o.n FROM (
    SELECT room_id, seq, row_number() OVER (ORDER BY ts, room_id, seq) AS n FROM messages WHERE kind IN ('text', 'edit', 'delete')
  ) AS o WHERE messages.room_id = o.room_id AND messages.seq = o.seq;
  CREATE INDEX messages_fts_id ON messages(fts_id) WHERE fts_id IS NOT NULL;
  `,
  // 3: sends no longer keep an index on ts (retention by age walks the oldest messages in seq
  // order instead), and rooms.last_seq is written only when retention removes messages.
  `
  DROP INDEX IF EXISTS messages_ts;
  `,
  // 4: messages posted by the server-side API carry a mark no client can set; typing events
  // skip the users who block the typist, found by who they block; the rooms a user created
  // are counted against its cap.
  `
  ALTER TABLE messages ADD COLUMN system INTEGER;
  CREATE INDEX blocks_blocked ON blocks(blocked_id, user_id);
  CREATE INDEX rooms_created_by ON rooms(created_by) WHERE created_by IS NOT NULL;
  `,
  // 5: channel names are unique by channelNameKey (store.ts), computed by the store through
  // the SQL function parley_channel_key. Channels that already shared a name keep it: the
  // oldest holds the key, the others have none until they are renamed.
  `
  ALTER TABLE rooms ADD COLUMN name_key TEXT;
  UPDATE rooms SET name_key = k.key FROM (
    SELECT id, parley_channel_key(name) AS key,
      row_number() OVER (PARTITION BY parley_channel_key(name) ORDER BY created_at, id) AS n
    FROM rooms WHERE kind = 'channel'
  ) AS k WHERE rooms.id = k.id AND k.n = 1;
  CREATE UNIQUE INDEX rooms_channel_name ON rooms(name_key) WHERE name_key IS NOT NULL;
  `,
  // 6: uploaded attachments (store/sqlite/attachments.ts); their bytes live in the blob store
  // (files under the data directory). message_seq is set once a message carries the upload.
  `
  CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    uploader TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    blob_id TEXT NOT NULL,
    preview_id TEXT,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    message_seq INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX attachments_room ON attachments(room_id, message_seq);
  CREATE INDEX attachments_unattached ON attachments(created_at) WHERE message_seq IS NULL;
  `,
  // 7: sessions record the device that signed in and when they were last used.
  `
  ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
  ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;
  `,
  // 8: rich messages. A message's mentions and the quote of the message it replies to are kept
  // with it (meta, JSON); per-member notification levels and who may mention the whole room
  // (store/sqlite/notifications.ts); pinned messages (store/sqlite/pins.ts).
  `
  ALTER TABLE messages ADD COLUMN meta TEXT;
  CREATE TABLE notify_levels (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('all','mentions','none')),
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  CREATE TABLE room_settings (
    room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    mention_all TEXT NOT NULL CHECK (mention_all IN ('moderators','members'))
  ) WITHOUT ROWID;
  CREATE TABLE pins (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    by TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
  ) WITHOUT ROWID;
  `,
  // 9: threads. A thread reply names its root (thread) and, unless it was also sent to the
  // room, is kept out of the main timeline (thread_only); each root's summary is kept in
  // threads, written with the replies.
  `
  ALTER TABLE messages ADD COLUMN thread INTEGER;
  ALTER TABLE messages ADD COLUMN thread_only INTEGER;
  CREATE INDEX messages_thread ON messages(room_id, thread, seq) WHERE thread IS NOT NULL;
  CREATE TABLE threads (
    room_id TEXT NOT NULL,
    root_seq INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (room_id, root_seq)
  ) WITHOUT ROWID;
  `,
  // 10: Web Push (store/sqlite/push.ts): each browser's subscription, the session that made
  // it, and the VAPID key pair generated on first start when none is configured.
  `
  CREATE TABLE push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
  CREATE INDEX push_subscriptions_session ON push_subscriptions(session_id) WHERE session_id IS NOT NULL;
  CREATE TABLE push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public_key TEXT NOT NULL,
    private_key TEXT NOT NULL
  );
  `,
  // 11: users' pictures (store/sqlite/avatars.ts); their bytes are blobs of the attachments' store.
  `
  CREATE TABLE avatars (
    user_id TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 12: the bytes of a user's unsent uploads, summed at each upload (attachments.unsentBytesPerUser).
  `
  CREATE INDEX attachments_unsent_by ON attachments(uploader) WHERE message_seq IS NULL;
  `,
];
