// PostgreSQL implementation of the AttachmentStore port, on the pool of PostgresStore (same
// database and schema; its table comes with the Store's migrations). Each method is one
// statement (bind: one transaction), so every node sees every change at once.
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { Attachment, AttachmentStore } from '../attachments.js';
import { query, toStoreError, transaction } from './pool.js';

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

const rowToAttachment = (r: Row): Attachment => ({
  id: r.id,
  room: r.room_id,
  uploader: r.uploader,
  name: r.name,
  size: Number(r.size),
  type: r.type,
  width: r.width,
  height: r.height,
  blob: r.blob_id,
  preview: r.preview_id,
  sha256: r.sha256,
  createdAt: Number(r.created_at),
  message: r.message_seq === null ? null : Number(r.message_seq),
});

export class PostgresAttachmentStore implements AttachmentStore {
  constructor(private readonly pool: pg.Pool) {}

  private async rows(sql: string, params: unknown[]): Promise<Attachment[]> {
    return (await query<Row>(this.pool, sql, params)).rows.map(rowToAttachment);
  }

  async create(a: Attachment): Promise<void> {
    await query(this.pool, `INSERT INTO attachments (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, [
      a.id,
      a.room,
      a.uploader,
      a.name,
      a.size,
      a.type,
      a.width,
      a.height,
      a.blob,
      a.preview,
      a.sha256,
      a.createdAt,
      a.message,
    ]);
  }

  async get(id: string): Promise<Attachment | null> {
    return (await this.rows(`SELECT ${COLS} FROM attachments WHERE id = $1`, [id]))[0] ?? null;
  }

  async remove(id: string): Promise<Attachment | null> {
    return (await this.rows(`DELETE FROM attachments WHERE id = $1 RETURNING ${COLS}`, [id]))[0] ?? null;
  }

  async bind(room: string, uploader: string, ids: string[], seq: number): Promise<Attachment[]> {
    const unique = [...new Set(ids)];
    try {
      return await transaction(this.pool, async (c) => {
        const { rows } = await c.query<Row>(
          `UPDATE attachments SET message_seq = $1
          WHERE id = ANY($2::text[]) AND room_id = $3 AND uploader = $4 AND message_seq IS NULL RETURNING ${COLS}`,
          [seq, unique, room, uploader],
        );
        if (rows.length !== unique.length) {
          const found = new Set(rows.map((r) => r.id));
          throw new ParleyError('conflict', 'an attachment is not an unsent upload of yours in this room', { attachment: unique.find((id) => !found.has(id)) });
        }
        const order = new Map(unique.map((id, i) => [id, i]));
        return rows.map(rowToAttachment).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      });
    } catch (err) {
      throw toStoreError(err);
    }
  }

  removeForMessages(room: string, seqs: number[]): Promise<Attachment[]> {
    return this.rows(`DELETE FROM attachments WHERE room_id = $1 AND message_seq = ANY($2::bigint[]) RETURNING ${COLS}`, [room, seqs]);
  }

  removeBelow(room: string, seq: number): Promise<Attachment[]> {
    return this.rows(`DELETE FROM attachments WHERE room_id = $1 AND message_seq < $2 RETURNING ${COLS}`, [room, seq]);
  }

  removeUnboundOfRoom(room: string): Promise<Attachment[]> {
    return this.rows(`DELETE FROM attachments WHERE room_id = $1 AND message_seq IS NULL RETURNING ${COLS}`, [room]);
  }

  removeForRoom(room: string): Promise<Attachment[]> {
    return this.rows(`DELETE FROM attachments WHERE room_id = $1 RETURNING ${COLS}`, [room]);
  }

  removeUnbound(before: number, limit: number): Promise<Attachment[]> {
    return this.rows(
      `DELETE FROM attachments WHERE id IN (
      SELECT id FROM attachments WHERE message_seq IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2) RETURNING ${COLS}`,
      [before, limit],
    );
  }

  async unsentBytes(uploader: string): Promise<number> {
    const { rows } = await query<{ n: string }>(this.pool, 'SELECT COALESCE(SUM(size), 0) AS n FROM attachments WHERE uploader = $1 AND message_seq IS NULL', [
      uploader,
    ]);
    return Number(rows[0]?.n ?? 0);
  }

  async boundRooms(afterRoom: string, limit: number): Promise<string[]> {
    const { rows } = await query<{ room_id: string }>(
      this.pool,
      'SELECT DISTINCT room_id FROM attachments WHERE message_seq IS NOT NULL AND room_id > $1 ORDER BY room_id LIMIT $2',
      [afterRoom, limit],
    );
    return rows.map((r) => r.room_id);
  }
}
