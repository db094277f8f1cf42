// PostgreSQL implementation of the PinStore port, on the pool of PostgresStore (tables from
// its migrations). A pin locks its room's row, so concurrent pins on any node keep the cap.
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { PinRecord, PinStore } from '../pins.js';
import { query, toStoreError, transaction } from './pool.js';

export class PostgresPinStore implements PinStore {
  constructor(private readonly pool: pg.Pool) {}

  async pin(room: string, seq: number, by: string, ts: number, max: number): Promise<boolean> {
    try {
      return await transaction(this.pool, async (c) => {
        await c.query('SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE', [room]);
        const { rowCount } = await c.query('INSERT INTO pins (room_id, seq, by, ts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [room, seq, by, ts]);
        if (rowCount === 0) return false;
        const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM pins WHERE room_id = $1', [room]);
        if (Number(rows[0]!.n) > max) throw new ParleyError('conflict', `a room has at most ${max} pins`, { limit: max });
        return true;
      });
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async unpin(room: string, seq: number): Promise<boolean> {
    const { rowCount } = await query(this.pool, 'DELETE FROM pins WHERE room_id = $1 AND seq = $2', [room, seq]);
    return (rowCount ?? 0) > 0;
  }

  async pins(room: string): Promise<PinRecord[]> {
    const { rows } = await query<{ seq: string; by: string; ts: string }>(
      this.pool,
      `SELECT p.seq, p.by, p.ts FROM pins p
      WHERE p.room_id = $1 AND EXISTS (SELECT 1 FROM messages m WHERE m.room_id = p.room_id AND m.seq = p.seq)
        AND NOT EXISTS (SELECT 1 FROM messages d WHERE d.room_id = p.room_id AND d.target = p.seq AND d.kind = 'delete')
      ORDER BY p.ts DESC, p.seq DESC`,
      [room],
    );
    return rows.map((r) => ({ seq: Number(r.seq), by: r.by, ts: Number(r.ts) }));
  }
}
