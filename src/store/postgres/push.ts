// PostgreSQL implementation of the PushStore port, on the pool of PostgresStore (same
// database and schema; tables from its migrations). Every node reads the same subscriptions
// and the same VAPID keys.
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from '../push.js';
import { query, toStoreError, transaction } from './pool.js';

interface Row {
  endpoint: string;
  user_id: string;
  session_id: string | null;
  p256dh: string;
  auth: string;
  created_at: string;
}

const toRecord = (r: Row): PushSubscriptionRecord => ({
  endpoint: r.endpoint,
  user: r.user_id,
  session: r.session_id,
  p256dh: r.p256dh,
  auth: r.auth,
  createdAt: Number(r.created_at),
});

export class PostgresPushStore implements PushStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async add(s: PushSubscriptionRecord, max: number): Promise<void> {
    try {
      await transaction(this.pool, async (c) => {
        // One user's subscriptions are counted and added one at a time, so two browsers
        // subscribing at once cannot both pass the count.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`push:${s.user}`]);
        const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $2', [
          s.user,
          s.endpoint,
        ]);
        if (Number(rows[0]?.n ?? 0) >= max) {
          throw new ParleyError('conflict', `at most ${max} push subscriptions per user; remove one first`, { limit: max });
        }
        await c.query(
          `INSERT INTO push_subscriptions (endpoint, user_id, session_id, p256dh, auth, created_at)
          VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, session_id = excluded.session_id,
            p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`,
          [s.endpoint, s.user, s.session, s.p256dh, s.auth, s.createdAt],
        );
      });
    } catch (err) {
      throw err instanceof ParleyError ? err : toStoreError(err);
    }
  }

  async remove(user: string, endpoint: string): Promise<boolean> {
    const { rowCount } = await this.query('DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2', [user, endpoint]);
    return (rowCount ?? 0) > 0;
  }

  async removeEndpoint(endpoint: string): Promise<void> {
    await this.query('DELETE FROM push_subscriptions WHERE endpoint = $1', [endpoint]);
  }

  async removeSessions(sessions: string[]): Promise<number> {
    if (sessions.length === 0) return 0;
    const { rowCount } = await this.query('DELETE FROM push_subscriptions WHERE session_id = ANY($1)', [sessions]);
    return rowCount ?? 0;
  }

  async removeUserSessions(user: string, keep?: string): Promise<number> {
    const { rowCount } = await this.query('DELETE FROM push_subscriptions WHERE user_id = $1 AND session_id IS NOT NULL AND session_id IS DISTINCT FROM $2', [
      user,
      keep ?? null,
    ]);
    return rowCount ?? 0;
  }

  async ofUsers(users: string[]): Promise<PushSubscriptionRecord[]> {
    if (users.length === 0) return [];
    const { rows } = await this.query<Row>('SELECT endpoint, user_id, session_id, p256dh, auth, created_at FROM push_subscriptions WHERE user_id = ANY($1)', [
      users,
    ]);
    return rows.map(toRecord);
  }

  async vapidKeys(offer: VapidKeys): Promise<VapidKeys> {
    await this.query('INSERT INTO push_vapid (id, public_key, private_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING', [
      offer.publicKey,
      offer.privateKey,
    ]);
    const { rows } = await this.query<{ public_key: string; private_key: string }>('SELECT public_key, private_key FROM push_vapid WHERE id = 1', []);
    const r = rows[0]!;
    return { publicKey: r.public_key, privateKey: r.private_key };
  }
}
