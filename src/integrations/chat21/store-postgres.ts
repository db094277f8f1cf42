// PostgreSQL implementation of the Chat21Store port, on the pool of PostgresStore (same
// database and schema; its tables come with the Store's migrations, entry 2 of
// store/postgres/migrations.ts, which stays there so no shipped entry is renumbered). Each
// method is one statement or one transaction, so every node sees every change at once.
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import { query, toStoreError, transaction } from '../../store/postgres/pool.js';
import type { Chat21Store } from './store.js';

export class PostgresChat21Store implements Chat21Store {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async archive(user: string, room: string, seq: number): Promise<void> {
    await this.query(
      `INSERT INTO chat21_archives (user_id, room_id, seq) VALUES ($1, $2, $3)
      ON CONFLICT (user_id, room_id) DO UPDATE SET seq = greatest(chat21_archives.seq, excluded.seq)`,
      [user, room, seq],
    );
  }

  async archived(user: string): Promise<Map<string, number>> {
    const { rows } = await this.query<{ room_id: string; seq: string }>('SELECT room_id, seq FROM chat21_archives WHERE user_id = $1', [user]);
    return new Map(rows.map((r) => [r.room_id, Number(r.seq)]));
  }

  async setGroupAttributes(room: string, attributes: Record<string, unknown>): Promise<void> {
    await this.query(
      `INSERT INTO chat21_group_attributes (room_id, attributes) VALUES ($1, $2)
      ON CONFLICT (room_id) DO UPDATE SET attributes = excluded.attributes`,
      [room, JSON.stringify(attributes)],
    );
  }

  async groupAttributes(room: string): Promise<Record<string, unknown>> {
    const { rows } = await this.query<{ attributes: Record<string, unknown> }>('SELECT attributes FROM chat21_group_attributes WHERE room_id = $1', [room]);
    return rows[0]?.attributes ?? {};
  }

  async saveInstance(user: string, instance: string, data: Record<string, unknown>, max: number): Promise<void> {
    try {
      await transaction(this.pool, async (c) => {
        // One user's instances are saved and trimmed one at a time, so two saves at once
        // cannot both keep their row past the cap.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`chat21:instances:${user}`]);
        // updated_at is the clock, but always past the user's other instances: it orders them
        // by when they were saved even within one millisecond, so the trim keeps the right ones.
        await c.query(
          `INSERT INTO chat21_instances (user_id, instance_id, data, updated_at)
          VALUES ($1, $2, $3, greatest($4, (SELECT coalesce(max(updated_at), 0) + 1 FROM chat21_instances WHERE user_id = $1)))
          ON CONFLICT (user_id, instance_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
          [user, instance, JSON.stringify(data), Date.now()],
        );
        await c.query(
          `DELETE FROM chat21_instances WHERE user_id = $1 AND instance_id NOT IN
          (SELECT instance_id FROM chat21_instances WHERE user_id = $1 ORDER BY updated_at DESC, instance_id LIMIT $2)`,
          [user, max],
        );
      });
    } catch (err) {
      throw err instanceof ParleyError ? err : toStoreError(err);
    }
  }

  async instances(user: string): Promise<string[]> {
    const { rows } = await this.query<{ instance_id: string }>(
      'SELECT instance_id FROM chat21_instances WHERE user_id = $1 ORDER BY updated_at DESC, instance_id',
      [user],
    );
    return rows.map((r) => r.instance_id);
  }

  async removeRoom(room: string): Promise<void> {
    // One statement: the attributes and the archive marks go together.
    await this.query(
      `WITH a AS (DELETE FROM chat21_archives WHERE room_id = $1)
      DELETE FROM chat21_group_attributes WHERE room_id = $1`,
      [room],
    );
  }
}
