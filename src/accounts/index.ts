// Built-in accounts, for deployments without their own identity system: register, log in,
// refresh (rotating), log out, change password. Passwords are argon2id hashes; a session is a
// refresh token in the AccountStore plus short-lived access tokens that name it, so ending the
// session stops its access tokens from opening new connections. Failed logins are limited per
// account and per client address before any hashing is done.
import type { Config } from '../config.js';
import { ParleyError } from '../errors.js';
import type { Identity } from '../auth/jwt.js';
import { SYSTEM_USER, type User } from '../protocol/schema.js';
import type { AccountStore } from '../store/accounts.js';
import type { LimitKey, LoginLimiter } from './limiter.js';
import { PasswordHasher } from './password.js';
import { passwordStrength } from './strength.js';
import type { LoginBody, PasswordBody, RegisterBody, Tokens } from './schema.js';
import { hashSecret, newSecret, newSessionId, parseRefreshToken, refreshToken, secretMatches, signAccessToken } from './tokens.js';

export interface AccountDeps {
  accounts: AccountStore;
  /** Display names for the tokens (the account's user row). */
  getUser(id: string): Promise<User | null>;
  limiter: LoginLimiter;
  /** HMAC key of account access tokens: the node's secret (resolveSecret). */
  secret: string;
  config: Config['accounts'];
}

const NOT_AN_ACCOUNT = 'this needs the access token of a built-in account';

export class AccountService {
  private readonly key: Uint8Array;
  private readonly passwords: PasswordHasher;
  /** Refreshes of one session run one at a time, so a refresh token is spent exactly once. */
  private readonly refreshing = new Map<string, Promise<unknown>>();

  /** Usernames nobody may register: the server's own id and the configured names. */
  private readonly reserved: ReadonlySet<string>;

  constructor(private readonly deps: AccountDeps) {
    this.reserved = new Set([SYSTEM_USER, ...deps.config.reservedNames.map((n) => n.toLowerCase())]);
    this.key = new TextEncoder().encode(deps.secret);
    this.passwords = new PasswordHasher({ memoryKiB: deps.config.hashMemoryKib, passes: deps.config.hashPasses });
  }

  get registration(): boolean {
    return this.deps.config.registration;
  }

  async register(input: RegisterBody, address: string): Promise<Tokens> {
    if (!this.deps.config.registration) throw new ParleyError('forbidden', 'registration is turned off on this server');
    // Each registration costs a hash; counting them per address keeps that from being a lever.
    const wait = await this.deps.limiter.attempt([{ key: `register:${address}`, limit: this.deps.config.registrationsPerAddress }]);
    if (wait > 0) throw rateLimited(wait, 'too many registrations from this address');
    if (this.reserved.has(input.username.toLowerCase())) {
      throw new ParleyError('conflict', 'username is reserved', { field: 'username', reason: 'reserved' });
    }
    // Refuse a taken name before paying for the hash; createAccount checks again atomically.
    if (await this.deps.accounts.accountByUsername(input.username) || await this.deps.getUser(input.username)) {
      throw new ParleyError('conflict', 'username is taken', { field: 'username' });
    }
    await checkStrength(input.password, [input.username, input.name ?? '']);
    const passwordHash = await this.passwords.hash(input.password);
    const account = await this.deps.accounts.createAccount({
      userId: input.username, username: input.username, name: input.name ?? input.username, passwordHash,
    });
    return this.startSession(account.userId);
  }

  async login(input: LoginBody, address: string): Promise<Tokens> {
    const username = input.username.toLowerCase();
    const keys = this.loginKeys(username, address);
    const wait = await this.deps.limiter.attempt(keys);
    if (wait > 0) throw rateLimited(wait, 'too many failed logins; retry later');
    const account = await this.deps.accounts.accountByUsername(username);
    const ok = await this.passwords.verify(account?.passwordHash ?? null, input.password);
    if (!ok || !account) throw new ParleyError('unauthorized', 'wrong username or password');
    await this.deps.limiter.succeeded(keys);
    return this.startSession(account.userId);
  }

  async refresh(token: string): Promise<Tokens> {
    const parsed = parseRefreshToken(token);
    if (!parsed) throw new ParleyError('unauthorized', 'invalid refresh token');
    const prev = this.refreshing.get(parsed.session) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.rotate(parsed.session, parsed.secret));
    this.refreshing.set(parsed.session, run);
    try {
      return await run;
    } finally {
      if (this.refreshing.get(parsed.session) === run) this.refreshing.delete(parsed.session);
    }
  }

  private async rotate(id: string, secret: string): Promise<Tokens> {
    const session = await this.deps.accounts.getSession(id);
    if (!session || session.revokedAt !== null || session.expiresAt <= Date.now()) {
      throw new ParleyError('unauthorized', 'session ended; log in again');
    }
    if (!secretMatches(secret, session.refreshHash)) {
      // A spent refresh token came back: it leaked, or a client replayed it. Either way the
      // session can no longer be trusted, so it ends for every holder.
      await this.deps.accounts.revokeSession(id);
      throw new ParleyError('unauthorized', 'refresh token already used; session ended');
    }
    const next = newSecret();
    await this.deps.accounts.rotateSession(id, hashSecret(next), Date.now() + this.deps.config.refreshTtlSec * 1000, session.refreshHash);
    return this.issue(session.userId, id, next);
  }

  async logout(user: Identity): Promise<void> {
    if (!user.session) throw new ParleyError('forbidden', NOT_AN_ACCOUNT);
    await this.deps.accounts.revokeSession(user.session);
  }

  /**
   * Changes the password and ends every session of the account, this one included; the reply
   * carries a new session, so the caller stays signed in and every other device is signed out.
   */
  async changePassword(user: Identity, input: PasswordBody, address: string): Promise<Tokens> {
    if (!user.session) throw new ParleyError('forbidden', NOT_AN_ACCOUNT);
    const account = await this.deps.accounts.accountByUser(user.id);
    if (!account) throw new ParleyError('forbidden', NOT_AN_ACCOUNT);
    const keys = this.loginKeys(account.username, address);
    const wait = await this.deps.limiter.attempt(keys);
    if (wait > 0) throw rateLimited(wait, 'too many failed attempts; retry later');
    if (!(await this.passwords.verify(account.passwordHash, input.oldPassword))) {
      throw new ParleyError('forbidden', 'the old password is wrong', { field: 'oldPassword' });
    }
    await this.deps.limiter.succeeded(keys);
    await checkStrength(input.newPassword, [account.username, user.name], 'newPassword');
    await this.deps.accounts.setPasswordHash(account.userId, await this.passwords.hash(input.newPassword));
    await this.deps.accounts.revokeUserSessions(account.userId);
    return this.startSession(account.userId);
  }

  /** For the token verifier: may this session still authenticate `user`? */
  async sessionActive(id: string, user: string): Promise<boolean> {
    const s = await this.deps.accounts.getSession(id);
    return s !== null && s.userId === user && s.revokedAt === null && s.expiresAt > Date.now();
  }

  private loginKeys(username: string, address: string): LimitKey[] {
    return [
      { key: `login:user:${username}`, limit: this.deps.config.loginFailuresPerAccount },
      { key: `login:addr:${address}`, limit: this.deps.config.loginFailuresPerAddress },
    ];
  }

  private async startSession(userId: string): Promise<Tokens> {
    const id = newSessionId();
    const secret = newSecret();
    await this.deps.accounts.createSession({
      id, userId, refreshHash: hashSecret(secret), expiresAt: Date.now() + this.deps.config.refreshTtlSec * 1000,
    });
    return this.issue(userId, id, secret);
  }

  private async issue(userId: string, session: string, secret: string): Promise<Tokens> {
    const user = (await this.deps.getUser(userId)) ?? { id: userId, name: userId, profile: {} };
    const ttlSec = this.deps.config.accessTtlSec;
    const accessToken = await signAccessToken(this.key, { user: userId, name: user.name, session, ttlSec });
    return { accessToken, refreshToken: refreshToken(session, secret), tokenType: 'Bearer', expiresIn: ttlSec, user };
  }
}

/** Refuses a password that is too easy to guess (see strength.ts), saying why. */
async function checkStrength(password: string, userInputs: string[], field = 'password'): Promise<void> {
  const s = await passwordStrength(password, userInputs);
  if (s.ok) return;
  throw new ParleyError('invalid', `password is too easy to guess${s.warning ? `: ${s.warning}` : ''}`, {
    field, score: s.score, warning: s.warning, suggestions: s.suggestions,
  });
}

function rateLimited(waitMs: number, message: string): ParleyError {
  return new ParleyError('rate_limited', message, { retryAfterMs: waitMs });
}

export type { LoginLimiter, LimitKey } from './limiter.js';
export { MemoryLoginLimiter } from './limiter-memory.js';
