// PostgreSQL implementation of the AvatarStore port, on the pool of PostgresStore.
import type pg from 'pg';
import type { AvatarRecord, AvatarStore } from '../avatars.js';
import { query, toStoreError, transaction } from './pool.js';

export class PostgresAvatarStore implements AvatarStore {
  constructor(private readonly pool: pg.Pool) {}

  async ofUsers(users: string[]): Promise<AvatarRecord[]> {
    if (users.length === 0) return [];
    const { rows } = await query<{ user_id: string; blob_id: string; updated_at: string }>(
      this.pool,
      'SELECT user_id, blob_id, updated_at FROM avatars WHERE user_id = ANY($1)',
      [users],
    );
    return rows.map((r) => ({ user: r.user_id, blob: r.blob_id, updatedAt: Number(r.updated_at) }));
  }

  async set(user: string, blob: string, at: number): Promise<string | null> {
    try {
      return await transaction(this.pool, async (c) => {
        // The user's row is locked while it is read and replaced, so a replaced blob is handed back once.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`avatar:${user}`]);
        const { rows } = await c.query<{ blob_id: string }>('SELECT blob_id FROM avatars WHERE user_id = $1', [user]);
        await c.query(
          `INSERT INTO avatars (user_id, blob_id, updated_at) VALUES ($1, $2, $3)
          ON CONFLICT (user_id) DO UPDATE SET blob_id = excluded.blob_id, updated_at = excluded.updated_at`,
          [user, blob, at],
        );
        return rows[0]?.blob_id ?? null;
      });
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async remove(user: string): Promise<string | null> {
    const { rows } = await query<{ blob_id: string }>(this.pool, 'DELETE FROM avatars WHERE user_id = $1 RETURNING blob_id', [user]);
    return rows[0]?.blob_id ?? null;
  }
}
