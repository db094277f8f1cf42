// SQLite implementation of the VersionStore port, on the database handle of SqliteStore.
import type Database from 'better-sqlite3';
import type { Edit, VersionStore } from '../versions.js';
import { guard } from './guard.js';

export class SqliteVersionStore implements VersionStore {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      edits: db.prepare(
        "SELECT seq, text, ts FROM messages WHERE room_id = @room AND target = @seq AND kind = 'edit' AND (hidden_for IS NULL OR @viewer IS NULL OR hidden_for <> @viewer) ORDER BY seq",
      ),
      deleted: db.prepare("SELECT 1 FROM messages WHERE room_id = ? AND target = ? AND kind = 'delete' LIMIT 1").pluck(),
    };
  }

  edits(room: string, seq: number, viewer?: string): Promise<{ edits: Edit[]; deleted: boolean }> {
    return guard(() => ({ edits: this.s.edits.all({ room, seq, viewer: viewer ?? null }) as Edit[], deleted: this.s.deleted.get(room, seq) !== undefined }));
  }
}
