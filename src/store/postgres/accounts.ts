// PostgreSQL implementation of the AccountStore port, on the pool of PostgresStore (same
// database and schema). Each method is one statement or one transaction on its own
// connection, independent of the Store's group commits. Unique indexes settle races between
// nodes: two creating one username, two rotating one session (compare-and-set on the hash).
import type pg from 'pg';
import { ParleyError } from '../../errors.js';
import type { Account, AccountStore, RefreshSession, SessionIdentity, SessionInfo } from '../accounts.js';
import { toAccount, toSession, toSessionInfo, type AccountRow, type SessionInfoRow, type SessionRow } from '../rows.js';
import { query, toStoreError, transaction } from './pool.js';

type NewAccount = Parameters<AccountStore['createAccount']>[0];
const ACCOUNT_COLS = 'user_id, username, password_hash, created_at, updated_at';
const SESSION_COLS = 'id, user_id, refresh_hash, created_at, expires_at, revoked_at';
/** Ended sessions are kept a day (for audit), then dropped so the table does not grow forever. */
const KEEP_ENDED_MS = 86_400_000;

function text(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new ParleyError('invalid', `${name} must be a non-empty string`, { field: name });
  return v;
}
function time(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ParleyError('invalid', `${name} must be a time in ms`, { field: name });
  return v;
}

export class PostgresAccountStore implements AccountStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async createAccount(a: NewAccount): Promise<Account> {
    text('userId', a.userId);
    text('username', a.username);
    text('passwordHash', a.passwordHash);
    if (typeof a.name !== 'string') throw new ParleyError('invalid', 'name must be a string', { field: 'name' });
    const now = Date.now();
    const taken = () => new ParleyError('conflict', 'username is taken', { field: 'username' });
    try {
      await transaction(this.pool, async (client) => {
        // An account takes a user id nobody has: never the identity (rooms, direct messages) of
        // a user who already came in with an external token.
        const {
          rows: [k],
        } = await client.query<{ taken: boolean }>(
          `SELECT
            EXISTS (SELECT 1 FROM users WHERE id = $1) OR EXISTS (SELECT 1 FROM accounts WHERE user_id = $1)
            OR EXISTS (SELECT 1 FROM accounts WHERE lower(username) = lower($2)) AS taken`,
          [a.userId, a.username],
        );
        if (k!.taken) throw taken();
        await client.query(`INSERT INTO users (id, name, profile, created_at) VALUES ($1, $2, '{}', $3)`, [a.userId, a.name, now]);
        await client.query(`INSERT INTO accounts (${ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $4)`, [a.userId, a.username, a.passwordHash, now]);
      });
    } catch (err) {
      // Another node created the same user or username first.
      if ((err as { code?: string }).code === '23505') throw taken();
      throw toStoreError(err);
    }
    return { userId: a.userId, username: a.username, passwordHash: a.passwordHash, createdAt: now, updatedAt: now };
  }

  async accountByUsername(username: string): Promise<Account | null> {
    const {
      rows: [r],
    } = await this.query<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE lower(username) = lower($1)`, [text('username', username)]);
    return r ? toAccount(r) : null;
  }

  async accountByUser(userId: string): Promise<Account | null> {
    const {
      rows: [r],
    } = await this.query<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE user_id = $1`, [text('userId', userId)]);
    return r ? toAccount(r) : null;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    const { rowCount } = await this.query('UPDATE accounts SET password_hash = $2, updated_at = $3 WHERE user_id = $1', [
      text('userId', userId),
      text('passwordHash', passwordHash),
      Date.now(),
    ]);
    if (!rowCount) throw new ParleyError('not_found', 'no such account');
  }

  async createSession(s: { id: string; userId: string; refreshHash: string; expiresAt: number; userAgent?: string }): Promise<RefreshSession> {
    text('id', s.id);
    text('userId', s.userId);
    text('refreshHash', s.refreshHash);
    time('expiresAt', s.expiresAt);
    const now = Date.now();
    await this.query(
      `WITH purge AS (DELETE FROM sessions WHERE user_id = $2 AND (expires_at < $4 OR revoked_at < $5))
      INSERT INTO sessions (${SESSION_COLS}, user_agent, last_used_at) VALUES ($1, $2, $3, $4, $6, NULL, $7, $4)`,
      [s.id, s.userId, s.refreshHash, now, now - KEEP_ENDED_MS, s.expiresAt, (s.userAgent ?? '').slice(0, 256)],
    );
    return { id: s.id, userId: s.userId, refreshHash: s.refreshHash, createdAt: now, expiresAt: s.expiresAt, revokedAt: null };
  }

  async getSession(id: string): Promise<RefreshSession | null> {
    const {
      rows: [r],
    } = await this.query<SessionRow>(`SELECT ${SESSION_COLS} FROM sessions WHERE id = $1`, [text('id', id)]);
    return r ? toSession(r) : null;
  }

  async sessionIdentity(id: string): Promise<SessionIdentity | null> {
    const {
      rows: [r],
    } = await this.query<SessionRow & { name: string; profile: string }>(
      `SELECT s.id, s.user_id, s.refresh_hash, s.created_at, s.expires_at, s.revoked_at, u.name, u.profile
       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`,
      [text('id', id)],
    );
    return r ? { session: toSession(r), name: r.name, profile: JSON.parse(r.profile) as Record<string, unknown> } : null;
  }

  async liveSessions(userId: string, now: number): Promise<SessionInfo[]> {
    const { rows } = await this.query<SessionInfoRow>(
      `SELECT id, created_at, coalesce(last_used_at, created_at) AS last_used_at, expires_at, user_agent
      FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY 3 DESC, id`,
      [text('userId', userId), time('now', now)],
    );
    return rows.map(toSessionInfo);
  }

  async setName(userId: string, name: string): Promise<void> {
    if (typeof name !== 'string' || name === '') throw new ParleyError('invalid', 'name must be a non-empty string', { field: 'name' });
    const { rowCount } = await this.query('UPDATE users SET name = $2 WHERE id = $1 AND EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = users.id)', [
      text('userId', userId),
      name,
    ]);
    if (!rowCount) throw new ParleyError('not_found', 'no such account');
  }

  async rotateSession(id: string, refreshHash: string, expiresAt: number, currentHash?: string): Promise<void> {
    if (currentHash !== undefined) text('currentHash', currentHash);
    // Compare-and-set: one UPDATE, so of two nodes presenting the same hash only one matches.
    const { rowCount } = await this.query(
      `UPDATE sessions SET refresh_hash = $2, expires_at = $3, last_used_at = $4
      WHERE id = $1 AND revoked_at IS NULL AND expires_at > $4 AND ($5::text IS NULL OR refresh_hash = $5::text)`,
      [text('id', id), text('refreshHash', refreshHash), time('expiresAt', expiresAt), Date.now(), currentHash ?? null],
    );
    if (!rowCount) throw new ParleyError('unauthorized', 'session ended or already refreshed; log in again');
  }

  async revokeSession(id: string): Promise<void> {
    await this.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [text('id', id), Date.now()]);
  }

  async revokeUserSessions(userId: string, except?: string): Promise<number> {
    const { rowCount } = await this.query('UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND id <> $3', [
      text('userId', userId),
      Date.now(),
      except ?? '',
    ]);
    return rowCount ?? 0;
  }
}
