// SQLite implementation of the PinStore port, on the database handle of SqliteStore (tables
// from its migrations).
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { PinRecord, PinStore } from '../pins.js';
import { guard } from './guard.js';

export class SqlitePinStore implements PinStore {
  private readonly s;
  private readonly pinTx;

  constructor(db: Database.Database) {
    this.s = {
      count: db.prepare('SELECT count(*) FROM pins WHERE room_id = ?').pluck(),
      insert: db.prepare('INSERT INTO pins (room_id, seq, by, ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      remove: db.prepare('DELETE FROM pins WHERE room_id = ? AND seq = ?'),
      list: db.prepare(`SELECT p.seq, p.by, p.ts FROM pins p
        WHERE p.room_id = ? AND EXISTS (SELECT 1 FROM messages m WHERE m.room_id = p.room_id AND m.seq = p.seq)
          AND NOT EXISTS (SELECT 1 FROM messages d WHERE d.room_id = p.room_id AND d.target = p.seq AND d.kind = 'delete')
        ORDER BY p.ts DESC, p.seq DESC`),
    };
    this.pinTx = db.transaction((room: string, seq: number, by: string, ts: number, max: number): boolean => {
      const r = this.s.insert.run(room, seq, by, ts);
      if (r.changes === 0) return false;
      if ((this.s.count.get(room) as number) > max) throw new ParleyError('conflict', `a room has at most ${max} pins`, { limit: max });
      return true;
    });
  }

  pin(room: string, seq: number, by: string, ts: number, max: number): Promise<boolean> {
    return guard(() => this.pinTx(room, seq, by, ts, max));
  }

  unpin(room: string, seq: number): Promise<boolean> {
    return guard(() => this.s.remove.run(room, seq).changes > 0);
  }

  pins(room: string): Promise<PinRecord[]> {
    return guard(() => this.s.list.all(room) as PinRecord[]);
  }
}
