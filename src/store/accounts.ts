// The AccountStore port: built-in accounts (username + argon2id hash) and their refresh
// sessions, for deployments without their own identity system. Implementations: store/sqlite/accounts.ts and store/postgres/accounts.ts.
//
// Contract
// - `createAccount` is atomic with the user row it creates or updates; a username is unique
//   case-insensitively (`conflict` when taken) and one user id has at most one account.
// - Sessions are identified by a random id; only a hash of the refresh secret is stored.
//   A revoked or expired session never authenticates again.
// - Rotation is compare-and-set: given the refresh hash the caller read, it succeeds only if
//   that is still the session's current one, so two nodes refreshing one session at once
//   cannot both win (the loser gets `unauthorized`). It also records when the session was
//   last used (sign-in and every refresh).
// - An account's user row (its display name and profile) is the truth for the account's
//   identity: `sessionIdentity` reads it with the session, in one read.
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

/** A live session as its owner sees it (no secrets). */
export interface SessionInfo {
  id: string;
  createdAt: number;
  /** Last sign-in or refresh. */
  lastUsedAt: number;
  expiresAt: number;
  /** The User-Agent header of the request that signed in (at most 256 characters). */
  userAgent: string;
}

/** Who a live account session authenticates, as its user row says now. */
export interface SessionIdentity {
  session: RefreshSession;
  name: string;
  profile: Record<string, unknown>;
}

export interface AccountStore {
  createAccount(a: { userId: string; username: string; name: string; passwordHash: string }): Promise<Account>;
  accountByUsername(username: string): Promise<Account | null>;
  accountByUser(userId: string): Promise<Account | null>;
  setPasswordHash(userId: string, passwordHash: string): Promise<void>;
  createSession(s: { id: string; userId: string; refreshHash: string; expiresAt: number; userAgent?: string }): Promise<RefreshSession>;
  getSession(id: string): Promise<RefreshSession | null>;
  /** The session with its user's current name and profile; null when either is missing. */
  sessionIdentity(id: string): Promise<SessionIdentity | null>;
  /** The user's sessions that are neither ended nor expired at `now`, newest use first. */
  liveSessions(userId: string, now: number): Promise<SessionInfo[]>;
  /** Sets the display name of an account's user row; `not_found` when the user has no account. */
  setName(userId: string, name: string): Promise<void>;
  /**
   * Replaces the refresh secret (rotation on every refresh). With `currentHash` (the hash the
   * caller read and checked) it replaces it only if it is still the current one; `unauthorized`
   * when the session was rotated meanwhile, revoked or expired.
   */
  rotateSession(id: string, refreshHash: string, expiresAt: number, currentHash?: string): Promise<void>;
  /** Ends a session; ending an ended one changes nothing. */
  revokeSession(id: string): Promise<void>;
  /** Ends every live session of the user but `except`; resolves with how many ended. */
  revokeUserSessions(userId: string, except?: string): Promise<number>;
}
