// The AccountStore port: built-in accounts (username + argon2id hash) and refresh sessions,
// for deployments without their own identity system. Implementations: store/sqlite/accounts.ts
// and store/postgres/accounts.ts.
//
// Contract
// - `createAccount` is atomic with the user row it creates or updates; a username is unique
//   case-insensitively (`conflict` when taken) and one user id has at most one account.
// - Sessions are identified by a random id; only a hash of the refresh secret is stored.
//   A revoked or expired session never authenticates again.
// - Rotation is compare-and-set: given the refresh hash the caller read, it succeeds only if
//   that is still the session's current one, so two nodes refreshing one session at once
//   cannot both win (the loser gets `unauthorized`).
export interface Account {
  userId: string;
  username: string;
  passwordHash: string;
  createdAt: number;
  updatedAt: number;
}

export interface RefreshSession {
  id: string;
  userId: string;
  refreshHash: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface AccountStore {
  createAccount(a: { userId: string; username: string; name: string; passwordHash: string }): Promise<Account>;
  accountByUsername(username: string): Promise<Account | null>;
  accountByUser(userId: string): Promise<Account | null>;
  setPasswordHash(userId: string, passwordHash: string): Promise<void>;
  createSession(s: { id: string; userId: string; refreshHash: string; expiresAt: number }): Promise<RefreshSession>;
  getSession(id: string): Promise<RefreshSession | null>;
  /**
   * Replaces the refresh secret (rotation on every refresh). With `currentHash` (the hash the
   * caller read and checked) it replaces it only if it is still the current one; `unauthorized`
   * when the session was rotated meanwhile, revoked or expired.
   */
  rotateSession(id: string, refreshHash: string, expiresAt: number, currentHash?: string): Promise<void>;
  revokeSession(id: string): Promise<void>;
  revokeUserSessions(userId: string): Promise<void>;
}
