// SQLite implementation of the Chat21Store port, on the database handle of SqliteStore (same
// file, same WAL and fsync settings). Its tables are created here, independent of the Store's
// migration list, so they exist only where the Chat21 endpoint is used.
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { Chat21Store } from './store.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS chat21_archives (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
  ) WITHOUT ROWID;
  -- A deleted room's marks are removed by room (removeRoom).
  CREATE INDEX IF NOT EXISTS chat21_archives_room ON chat21_archives (room_id);
  CREATE TABLE IF NOT EXISTS chat21_group_attributes (
    room_id TEXT PRIMARY KEY,
    attributes TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS chat21_instances (
    user_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, instance_id)
  ) WITHOUT ROWID;
`;

function guard<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    const e = err as { message?: string };
    return Promise.reject(new ParleyError('unavailable', `storage failed: ${e.message ?? 'database closed'}`));
  }
}

export class SqliteChat21Store implements Chat21Store {
  private readonly s;
  private readonly removeRoomTx: (room: string) => void;
  private readonly saveTx: (p: { user: string; instance: string; data: string; now: number; max: number }) => void;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    this.s = {
      archive: db.prepare(`INSERT INTO chat21_archives (user_id, room_id, seq) VALUES (?, ?, ?)
        ON CONFLICT(user_id, room_id) DO UPDATE SET seq = max(seq, excluded.seq)`),
      archived: db.prepare('SELECT room_id, seq FROM chat21_archives WHERE user_id = ?'),
      setAttributes: db.prepare(`INSERT INTO chat21_group_attributes (room_id, attributes) VALUES (?, ?)
        ON CONFLICT(room_id) DO UPDATE SET attributes = excluded.attributes`),
      attributes: db.prepare('SELECT attributes FROM chat21_group_attributes WHERE room_id = ?').pluck(),
      // updated_at is the clock, but always past the user's other instances: it orders them
      // by when they were saved even within one millisecond, so the trim keeps the right ones.
      saveInstance: db.prepare(`INSERT INTO chat21_instances (user_id, instance_id, data, updated_at)
        VALUES (@user, @instance, @data, max(@now, (SELECT coalesce(max(updated_at), 0) + 1 FROM chat21_instances WHERE user_id = @user)))
        ON CONFLICT(user_id, instance_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
      trimInstances: db.prepare(`DELETE FROM chat21_instances WHERE user_id = @user AND instance_id NOT IN
        (SELECT instance_id FROM chat21_instances WHERE user_id = @user ORDER BY updated_at DESC, instance_id LIMIT @max)`),
      removeArchives: db.prepare('DELETE FROM chat21_archives WHERE room_id = ?'),
      removeAttributes: db.prepare('DELETE FROM chat21_group_attributes WHERE room_id = ?'),
      instances: db.prepare('SELECT instance_id FROM chat21_instances WHERE user_id = ? ORDER BY updated_at DESC, instance_id').pluck(),
    };
    this.removeRoomTx = db.transaction((room: string) => {
      this.s.removeArchives.run(room);
      this.s.removeAttributes.run(room);
    });
    this.saveTx = db.transaction((p: { user: string; instance: string; data: string; now: number; max: number }) => {
      this.s.saveInstance.run({ user: p.user, instance: p.instance, data: p.data, now: p.now });
      this.s.trimInstances.run({ user: p.user, max: p.max });
    });
  }

  archive(user: string, room: string, seq: number): Promise<void> {
    return guard(() => {
      this.s.archive.run(user, room, seq);
    });
  }

  archived(user: string): Promise<Map<string, number>> {
    return guard(() => new Map((this.s.archived.all(user) as Array<{ room_id: string; seq: number }>).map((r) => [r.room_id, r.seq])));
  }

  setGroupAttributes(room: string, attributes: Record<string, unknown>): Promise<void> {
    return guard(() => {
      this.s.setAttributes.run(room, JSON.stringify(attributes));
    });
  }

  groupAttributes(room: string): Promise<Record<string, unknown>> {
    return guard(() => {
      const raw = this.s.attributes.get(room) as string | undefined;
      return raw === undefined ? {} : (JSON.parse(raw) as Record<string, unknown>);
    });
  }

  saveInstance(user: string, instance: string, data: Record<string, unknown>, max: number): Promise<void> {
    return guard(() => this.saveTx({ user, instance, data: JSON.stringify(data), now: Date.now(), max }));
  }

  instances(user: string): Promise<string[]> {
    return guard(() => this.s.instances.all(user) as string[]);
  }

  removeRoom(room: string): Promise<void> {
    return guard(() => this.removeRoomTx(room));
  }
}
