// SQLite implementation of the AccountStore port, on the database handle of SqliteStore (same
// file, same WAL and fsync settings). better-sqlite3 is synchronous, so each method runs to
// completion before any other write of the process: an account and its user row are one
// transaction, and no statement here ever interleaves with a group commit of the Store.
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { Account, AccountStore, RefreshSession, SessionIdentity, SessionInfo } from '../accounts.js';
import { toAccount, toSession, toSessionInfo, type AccountRow, type SessionInfoRow, type SessionRow } from '../rows.js';

type NewAccount = Parameters<AccountStore['createAccount']>[0];

/**
 * Runs one storage step, turning driver failures into coded errors: a closed or failing
 * database is `unavailable` (nothing was written), anything else `internal`.
 */
function guard<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    if (err instanceof ParleyError) return Promise.reject(err);
    const e = err as { code?: string; message?: string };
    if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      return Promise.reject(new ParleyError('conflict', 'already exists'));
    }
    if (err instanceof TypeError || (typeof e.code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN)/.test(e.code))) {
      return Promise.reject(new ParleyError('unavailable', `storage failed: ${e.message ?? 'database closed'}`));
    }
    return Promise.reject(new ParleyError('internal', `storage error: ${e.message ?? String(err)}`));
  }
}

export class SqliteAccountStore implements AccountStore {
  private readonly s;
  private readonly create: (a: NewAccount, now: number) => void;

  constructor(db: Database.Database) {
    this.s = {
      userExists: db.prepare('SELECT 1 FROM users WHERE id = ?').pluck(),
      insertUser: db.prepare(`INSERT INTO users (id, name, profile, created_at) VALUES (?, ?, '{}', ?)`),
      insertAccount: db.prepare('INSERT INTO accounts (user_id, username, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
      byUsername: db.prepare('SELECT user_id, username, password_hash, created_at, updated_at FROM accounts WHERE username = ?'),
      byUser: db.prepare('SELECT user_id, username, password_hash, created_at, updated_at FROM accounts WHERE user_id = ?'),
      setHash: db.prepare('UPDATE accounts SET password_hash = ?, updated_at = ? WHERE user_id = ?'),
      insertSession: db.prepare(`INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at, revoked_at, user_agent, last_used_at)
        VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`),
      getSession: db.prepare('SELECT id, user_id, refresh_hash, created_at, expires_at, revoked_at FROM sessions WHERE id = ?'),
      sessionIdentity: db.prepare(`SELECT s.id, s.user_id, s.refresh_hash, s.created_at, s.expires_at, s.revoked_at, u.name, u.profile
        FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`),
      liveSessions: db.prepare(`SELECT id, created_at, coalesce(last_used_at, created_at) AS last_used_at, expires_at, user_agent
        FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY 3 DESC, id`),
      setName: db.prepare('UPDATE users SET name = ? WHERE id = ? AND EXISTS (SELECT 1 FROM accounts WHERE accounts.user_id = users.id)'),
      // Compare-and-set: only a live session whose hash is still the one the caller read.
      rotate: db.prepare(`UPDATE sessions SET refresh_hash = @hash, expires_at = @expires, last_used_at = @now
        WHERE id = @id AND revoked_at IS NULL AND expires_at > @now AND (@current IS NULL OR refresh_hash = @current)`),
      revoke: db.prepare('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeUser: db.prepare('UPDATE sessions SET revoked_at = @now WHERE user_id = @user AND revoked_at IS NULL AND expires_at > @now AND id <> @except'),
      // Ended sessions are kept a day (for audit), then dropped so the table does not grow forever.
      purge: db.prepare('DELETE FROM sessions WHERE user_id = ? AND (expires_at < ? OR revoked_at < ?)'),
    };
    this.create = db.transaction((a: NewAccount, now: number) => {
      // An account takes a user id nobody has: never the identity (rooms, direct messages) of
      // a user who already came in with an external token.
      if (this.s.userExists.get(a.userId) || this.s.byUsername.get(a.username) || this.s.byUser.get(a.userId)) {
        throw new ParleyError('conflict', 'username is taken', { field: 'username' });
      }
      this.s.insertUser.run(a.userId, a.name, now);
      this.s.insertAccount.run(a.userId, a.username, a.passwordHash, now, now);
    });
  }

  createAccount(a: NewAccount): Promise<Account> {
    const now = Date.now();
    return guard(() => {
      this.create(a, now);
      return { userId: a.userId, username: a.username, passwordHash: a.passwordHash, createdAt: now, updatedAt: now };
    });
  }

  accountByUsername(username: string): Promise<Account | null> {
    return guard(() => {
      const r = this.s.byUsername.get(username) as AccountRow | undefined;
      return r ? toAccount(r) : null;
    });
  }

  accountByUser(userId: string): Promise<Account | null> {
    return guard(() => {
      const r = this.s.byUser.get(userId) as AccountRow | undefined;
      return r ? toAccount(r) : null;
    });
  }

  setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    return guard(() => {
      if (this.s.setHash.run(passwordHash, Date.now(), userId).changes === 0) throw new ParleyError('not_found', 'no such account');
    });
  }

  createSession(s: { id: string; userId: string; refreshHash: string; expiresAt: number; userAgent?: string }): Promise<RefreshSession> {
    const now = Date.now();
    return guard(() => {
      this.s.purge.run(s.userId, now, now - 86_400_000);
      this.s.insertSession.run(s.id, s.userId, s.refreshHash, now, s.expiresAt, (s.userAgent ?? '').slice(0, 256), now);
      return { id: s.id, userId: s.userId, refreshHash: s.refreshHash, createdAt: now, expiresAt: s.expiresAt, revokedAt: null };
    });
  }

  getSession(id: string): Promise<RefreshSession | null> {
    return guard(() => {
      const r = this.s.getSession.get(id) as SessionRow | undefined;
      return r ? toSession(r) : null;
    });
  }

  sessionIdentity(id: string): Promise<SessionIdentity | null> {
    return guard(() => {
      const r = this.s.sessionIdentity.get(id) as (SessionRow & { name: string; profile: string }) | undefined;
      return r ? { session: toSession(r), name: r.name, profile: JSON.parse(r.profile) as Record<string, unknown> } : null;
    });
  }

  liveSessions(userId: string, now: number): Promise<SessionInfo[]> {
    return guard(() => (this.s.liveSessions.all(userId, now) as SessionInfoRow[]).map(toSessionInfo));
  }

  setName(userId: string, name: string): Promise<void> {
    return guard(() => {
      if (this.s.setName.run(name, userId).changes === 0) throw new ParleyError('not_found', 'no such account');
    });
  }

  rotateSession(id: string, refreshHash: string, expiresAt: number, currentHash?: string): Promise<void> {
    return guard(() => {
      const changed = this.s.rotate.run({ id, hash: refreshHash, expires: expiresAt, now: Date.now(), current: currentHash ?? null }).changes;
      if (changed === 0) throw new ParleyError('unauthorized', 'session ended or already refreshed; log in again');
    });
  }

  revokeSession(id: string): Promise<void> {
    return guard(() => {
      this.s.revoke.run(Date.now(), id);
    });
  }

  revokeUserSessions(userId: string, except?: string): Promise<number> {
    return guard(() => this.s.revokeUser.run({ now: Date.now(), user: userId, except: except ?? '' }).changes);
  }
}
