// SQLite implementation of the AttachmentStore port, on the database handle of SqliteStore
// (same file, WAL and fsync settings; its table comes with the Store's migrations). Each
// method is one statement or one transaction, run at once (better-sqlite3 is synchronous, so
// it never interleaves with the store's group commit).
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { Attachment, AttachmentStore } from '../attachments.js';

interface Row {
  id: string;
  room_id: string;
  uploader: string;
  name: string;
  size: number;
  type: string;
  width: number | null;
  height: number | null;
  blob_id: string;
  preview_id: string | null;
  sha256: string;
  created_at: number;
  message_seq: number | null;
}

const COLS = 'id, room_id, uploader, name, size, type, width, height, blob_id, preview_id, sha256, created_at, message_seq';

export const rowToAttachment = (r: Row): Attachment => ({
  id: r.id,
  room: r.room_id,
  uploader: r.uploader,
  name: r.name,
  size: Number(r.size),
  type: r.type,
  width: r.width === null ? null : Number(r.width),
  height: r.height === null ? null : Number(r.height),
  blob: r.blob_id,
  preview: r.preview_id,
  sha256: r.sha256,
  createdAt: Number(r.created_at),
  message: r.message_seq === null ? null : Number(r.message_seq),
});

function guard<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    if (err instanceof ParleyError) return Promise.reject(err);
    return Promise.reject(new ParleyError('unavailable', `storage failed: ${(err as Error).message ?? 'database closed'}`));
  }
}

export class SqliteAttachmentStore implements AttachmentStore {
  private readonly s;
  private readonly removeWhere: (where: string, ...params: unknown[]) => Attachment[];
  private readonly bindTx: (room: string, uploader: string, ids: string[], seq: number) => Attachment[];

  constructor(private readonly db: Database.Database) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO attachments (${COLS}) VALUES (@id, @room, @uploader, @name, @size, @type, @width, @height, @blob, @preview, @sha256, @createdAt, @message)`,
      ),
      get: db.prepare(`SELECT ${COLS} FROM attachments WHERE id = ?`),
      bind: db.prepare('UPDATE attachments SET message_seq = ? WHERE id = ? AND room_id = ? AND uploader = ? AND message_seq IS NULL'),
      unsentBytes: db.prepare('SELECT COALESCE(SUM(size), 0) FROM attachments WHERE uploader = ? AND message_seq IS NULL').pluck(),
      boundRooms: db.prepare('SELECT DISTINCT room_id FROM attachments WHERE message_seq IS NOT NULL AND room_id > ? ORDER BY room_id LIMIT ?').pluck(),
    };
    const removed = new Map<string, Database.Statement>();
    this.removeWhere = db.transaction((where: string, ...params: unknown[]) => {
      let st = removed.get(where);
      if (!st) removed.set(where, (st = db.prepare(`DELETE FROM attachments WHERE ${where} RETURNING ${COLS}`)));
      return (st.all(...params) as Row[]).map(rowToAttachment);
    });
    this.bindTx = db.transaction((room: string, uploader: string, ids: string[], seq: number) => {
      for (const id of ids) {
        if (this.s.bind.run(seq, id, room, uploader).changes !== 1) {
          throw new ParleyError('conflict', 'an attachment is not an unsent upload of yours in this room', { attachment: id });
        }
      }
      return ids.map((id) => rowToAttachment(this.s.get.get(id) as Row));
    });
  }

  create(a: Attachment): Promise<void> {
    return guard(() => {
      this.s.insert.run(a);
    });
  }

  get(id: string): Promise<Attachment | null> {
    return guard(() => {
      const r = this.s.get.get(id) as Row | undefined;
      return r ? rowToAttachment(r) : null;
    });
  }

  remove(id: string): Promise<Attachment | null> {
    return guard(() => this.removeWhere('id = ?', id)[0] ?? null);
  }

  bind(room: string, uploader: string, ids: string[], seq: number): Promise<Attachment[]> {
    return guard(() => this.bindTx(room, uploader, [...new Set(ids)], seq));
  }

  removeForMessages(room: string, seqs: number[]): Promise<Attachment[]> {
    return guard(() => this.removeWhere('room_id = ? AND message_seq IN (SELECT value FROM json_each(?))', room, JSON.stringify(seqs)));
  }

  removeBelow(room: string, seq: number): Promise<Attachment[]> {
    return guard(() => this.removeWhere('room_id = ? AND message_seq < ?', room, seq));
  }

  removeUnboundOfRoom(room: string): Promise<Attachment[]> {
    return guard(() => this.removeWhere('room_id = ? AND message_seq IS NULL', room));
  }

  removeForRoom(room: string): Promise<Attachment[]> {
    return guard(() => this.removeWhere('room_id = ?', room));
  }

  removeUnbound(before: number, limit: number): Promise<Attachment[]> {
    return guard(() =>
      this.removeWhere('id IN (SELECT id FROM attachments WHERE message_seq IS NULL AND created_at < ? ORDER BY created_at LIMIT ?)', before, limit),
    );
  }

  unsentBytes(uploader: string): Promise<number> {
    return guard(() => Number(this.s.unsentBytes.get(uploader)));
  }

  boundRooms(afterRoom: string, limit: number): Promise<string[]> {
    return guard(() => this.s.boundRooms.all(afterRoom, limit) as string[]);
  }
}
