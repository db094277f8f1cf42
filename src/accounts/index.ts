// Built-in accounts, for deployments without their own identity system: register, log in,
// refresh (rotating), log out, change password and display name, list and end sessions.
// Passwords are argon2id hashes; a session is a refresh token in the AccountStore plus
// short-lived access tokens that name it, so ending the session stops its access tokens from
// opening new connections. The account's user row is the truth for its name, and the
// configured list `accounts.admins` for who administers the server: both are read with the
// session whenever an access token is verified. Failed logins are limited per account and per
// client address before any hashing is done.
import type { Bus } from '../bus/bus.js';
import { userTopic } from '../bus/bus.js';
import type { Config } from '../config.js';
import { eventText } from '../protocol/frames.js';
import { ParleyError } from '../errors.js';
import type { Identity } from '../auth/jwt.js';
import { SYSTEM_USER, type User } from '../protocol/schema.js';
import { ROOM_MENTIONS } from '../service/mentions.js';
import { plainName } from '../protocol/validate.js';
import type { AccountStore, SessionInfo } from '../store/accounts.js';
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
  /** Where a session's end reaches the live connections it authenticated, on every node. */
  bus: Bus;
  /** Told when sessions end (`session`, or every one of the user but `keep`): what they set up goes with them. */
  sessionsEnded?(user: string, which: { session: string } | { keep?: string }): void;
}

/** WebSocket close code of a connection whose session was ended (as for an expired token). */
export const CLOSE_SESSION_ENDED = 4001;

const NOT_AN_ACCOUNT = 'this needs the access token of a built-in account';

/** A session as its owner sees it: the one making the request is `current`. */
export interface SessionView extends SessionInfo {
  current: boolean;
}

/** What an account's access token stands for now (see `AccountService.identify`). */
export interface AccountIdentity {
  name: string;
  profile: Record<string, unknown>;
  admin: boolean;
}

export class AccountService {
  private readonly key: Uint8Array;
  private readonly passwords: PasswordHasher;
  /** Refreshes of one session run one at a time, so a refresh token is spent exactly once. */
  private readonly refreshing = new Map<string, Promise<unknown>>();

  /** Usernames nobody may register: the server's own id, the whole-room mentions and the configured names. */
  private readonly reserved: ReadonlySet<string>;
  /** Usernames of the accounts that administer the server. */
  private readonly admins: ReadonlySet<string>;

  constructor(private readonly deps: AccountDeps) {
    this.reserved = new Set([SYSTEM_USER, ...ROOM_MENTIONS, ...deps.config.reservedNames.map((n) => n.toLowerCase())]);
    this.admins = new Set(deps.config.admins.map((n) => n.toLowerCase()));
    this.key = new TextEncoder().encode(deps.secret);
    this.passwords = new PasswordHasher({ memoryKiB: deps.config.hashMemoryKib, passes: deps.config.hashPasses });
  }

  get registration(): boolean {
    return this.deps.config.registration;
  }

  async register(input: RegisterBody, address: string, userAgent = ''): Promise<Tokens> {
    if (!this.deps.config.registration) throw new ParleyError('forbidden', 'registration is turned off on this server');
    // Each registration costs a hash; counting them per address keeps that from being a lever.
    const wait = await this.deps.limiter.attempt([{ key: `register:${address}`, limit: this.deps.config.registrationsPerAddress }]);
    if (wait > 0) throw rateLimited(wait, 'too many registrations from this address');
    // A listed administrator that has no account yet must not be taken by whoever registers
    // first: the operator registers the account, then lists it.
    if (this.reserved.has(input.username.toLowerCase()) || this.admins.has(input.username.toLowerCase())) {
      throw new ParleyError('conflict', 'username is reserved', { field: 'username', reason: 'reserved' });
    }
    // Refuse a taken name before paying for the hash; createAccount checks again atomically.
    if ((await this.deps.accounts.accountByUsername(input.username)) || (await this.deps.getUser(input.username))) {
      throw new ParleyError('conflict', 'username is taken', { field: 'username' });
    }
    await checkStrength(input.password, [input.username, input.name ?? '']);
    const passwordHash = await this.passwords.hash(input.password);
    const account = await this.deps.accounts.createAccount({
      userId: input.username,
      username: input.username,
      name: plainName(input.name ?? '') || input.username,
      passwordHash,
    });
    return this.startSession(account.userId, userAgent);
  }

  async login(input: LoginBody, address: string, userAgent = ''): Promise<Tokens> {
    const username = input.username.toLowerCase();
    const keys = this.loginKeys(username, address);
    const wait = await this.deps.limiter.attempt(keys);
    if (wait > 0) throw rateLimited(wait, 'too many failed logins; retry later');
    const account = await this.deps.accounts.accountByUsername(username);
    const ok = await this.passwords.verify(account?.passwordHash ?? null, input.password);
    if (!ok || !account) throw new ParleyError('unauthorized', 'wrong username or password');
    await this.deps.limiter.succeeded(keys);
    return this.startSession(account.userId, userAgent);
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
      this.disconnect(session.userId, { session: id });
      throw new ParleyError('unauthorized', 'refresh token already used; session ended');
    }
    const next = newSecret();
    await this.deps.accounts.rotateSession(id, hashSecret(next), Date.now() + this.deps.config.refreshTtlSec * 1000, session.refreshHash);
    return this.issue(session.userId, id, next);
  }

  async logout(user: Identity): Promise<void> {
    if (!user.session) throw new ParleyError('forbidden', NOT_AN_ACCOUNT);
    await this.deps.accounts.revokeSession(user.session);
    this.disconnect(user.id, { session: user.session });
  }

  /**
   * Changes the password. With `signOutOthers` (the default) every session of the account ends,
   * this one included, and the reply carries a new session, so the caller stays signed in and
   * every other device is signed out; without it, the other sessions stay and this one's
   * refresh token is replaced (the old one may have been seen with the old password).
   */
  async changePassword(user: Identity, input: PasswordBody, address: string, userAgent = ''): Promise<Tokens> {
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
    if (input.signOutOthers === false) {
      const next = newSecret();
      await this.deps.accounts.rotateSession(user.session, hashSecret(next), Date.now() + this.deps.config.refreshTtlSec * 1000);
      return this.issue(account.userId, user.session, next);
    }
    await this.deps.accounts.revokeUserSessions(account.userId);
    // The other devices are closed now; this one's connections carry on until they reconnect
    // with the new session's tokens.
    this.disconnect(account.userId, { keep: user.session });
    this.deps.sessionsEnded?.(account.userId, { session: user.session });
    return this.startSession(account.userId, userAgent);
  }

  /**
   * Changes the account's display name. The user row changes at once, so every access token
   * of the account (this device's and the others') presents the new name from its next
   * request or connection on; messages keep the name they were sent with.
   */
  async setName(user: Identity, name: string): Promise<User> {
    this.requireAccount(user);
    const clean = plainName(name);
    if (clean === '') throw new ParleyError('invalid', 'name: must not be blank', { field: 'name' });
    await this.deps.accounts.setName(user.id, clean);
    return (await this.deps.getUser(user.id)) ?? { id: user.id, name: clean, profile: user.profile };
  }

  /** The account's live sessions, the caller's own marked `current`. */
  async sessions(user: Identity): Promise<SessionView[]> {
    const session = this.requireAccount(user);
    return (await this.deps.accounts.liveSessions(user.id, Date.now())).map((s) => ({ ...s, current: s.id === session }));
  }

  /** Ends one of the account's sessions (the caller's own too: that is a logout). */
  async endSession(user: Identity, id: string): Promise<void> {
    this.requireAccount(user);
    const s = await this.deps.accounts.getSession(id);
    // Another account's session is as unknown as a made-up id.
    if (!s || s.userId !== user.id || s.revokedAt !== null || s.expiresAt <= Date.now()) throw new ParleyError('not_found', 'no such session');
    await this.deps.accounts.revokeSession(id);
    this.disconnect(user.id, { session: id });
  }

  /** Ends every session of the account but the caller's; how many ended. */
  async endOtherSessions(user: Identity): Promise<number> {
    const session = this.requireAccount(user);
    const ended = await this.deps.accounts.revokeUserSessions(user.id, session);
    this.disconnect(user.id, { keep: session });
    return ended;
  }

  /**
   * Closes the live connections of ended sessions (`session`, or all but `keep`), on every
   * node: a token stops opening connections when its session ends, and one already open is
   * told so and closed rather than left running until its token expires.
   */
  private disconnect(user: string, which: { session: string } | { keep: string }): void {
    this.deps.sessionsEnded?.(user, which);
    this.deps.bus.publish(userTopic(user), {
      frame: eventText('goodbye', { code: 'unauthorized', message: 'this session was signed out' }),
      control: { op: 'close', code: CLOSE_SESSION_ENDED, reason: 'session ended', ...which },
    });
  }

  /**
   * For the token verifier: who the session authenticates now — its user row's name and
   * profile, and whether the account is listed in `accounts.admins` — or null when the session
   * cannot authenticate `user` (ended, expired, someone else's).
   */
  async identify(id: string, user: string): Promise<AccountIdentity | null> {
    const found = await this.deps.accounts.sessionIdentity(id);
    const s = found?.session;
    if (!found || !s || s.userId !== user || s.revokedAt !== null || s.expiresAt <= Date.now()) return null;
    return { name: found.name, profile: found.profile, admin: this.admins.has(user.toLowerCase()) };
  }

  /** Listed administrators that have no account (yet): worth a word at start. */
  async missingAdmins(): Promise<string[]> {
    const missing: string[] = [];
    for (const name of this.admins) if (!(await this.deps.accounts.accountByUsername(name))) missing.push(name);
    return missing;
  }

  private requireAccount(user: Identity): string {
    if (!user.session) throw new ParleyError('forbidden', NOT_AN_ACCOUNT);
    return user.session;
  }

  private loginKeys(username: string, address: string): LimitKey[] {
    return [
      { key: `login:user:${username}`, limit: this.deps.config.loginFailuresPerAccount },
      { key: `login:addr:${address}`, limit: this.deps.config.loginFailuresPerAddress },
    ];
  }

  private async startSession(userId: string, userAgent: string): Promise<Tokens> {
    const id = newSessionId();
    const secret = newSecret();
    await this.deps.accounts.createSession({
      id,
      userId,
      refreshHash: hashSecret(secret),
      expiresAt: Date.now() + this.deps.config.refreshTtlSec * 1000,
      userAgent,
    });
    return this.issue(userId, id, secret);
  }

  private async issue(userId: string, session: string, secret: string): Promise<Tokens> {
    const user = (await this.deps.getUser(userId)) ?? { id: userId, name: userId, profile: {} };
    const ttlSec = this.deps.config.accessTtlSec;
    const admin = this.admins.has(userId.toLowerCase());
    const accessToken = await signAccessToken(this.key, { user: userId, name: user.name, session, ttlSec, admin });
    return { accessToken, refreshToken: refreshToken(session, secret), tokenType: 'Bearer', expiresIn: ttlSec, user };
  }
}

/** Refuses a password that is too easy to guess (see strength.ts), saying why. */
async function checkStrength(password: string, userInputs: string[], field = 'password'): Promise<void> {
  const s = await passwordStrength(password, userInputs);
  if (s.ok) return;
  throw new ParleyError('invalid', `password is too easy to guess${s.warning ? `: ${s.warning}` : ''}`, {
    field,
    score: s.score,
    warning: s.warning,
    suggestions: s.suggestions,
  });
}

function rateLimited(waitMs: number, message: string): ParleyError {
  return new ParleyError('rate_limited', message, { retryAfterMs: waitMs });
}

export type { LoginLimiter, LimitKey } from './limiter.js';
export { MemoryLoginLimiter } from './limiter-memory.js';
