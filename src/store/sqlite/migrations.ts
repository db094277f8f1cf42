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
    direct_key TEXT UNIQUE
  ) WITHOUT ROWID;
  CREATE INDEX rooms_public ON rooms(kind, id);
  CREATE TABLE members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner','admin','member')),
    joined_at INTEGER NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    join_seq INTEGER NOT NULL,
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
    PRIMARY KEY (room_id, seq)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX messages_key ON messages(room_id, user_id, key) WHERE key IS NOT NULL;
  CREATE INDEX messages_target ON messages(room_id, target) WHERE target IS NOT NULL;
  `,
];
