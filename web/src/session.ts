// A signed-in built-in account: tokens kept in localStorage so a reload stays signed in, the
// access token refreshed before it expires, and one refresh at a time across tabs (a refresh
// token is single-use: two tabs spending the same one would end the session).
import { api, ApiError, type ApiUser, type Tokens } from './api.js';
import { unsubscribePush } from './push.js';

const KEY = 'parley.session';

/** A signed-in device of the account, as GET /auth/sessions lists it. */
export interface SessionInfo {
  id: string;
  current: boolean;
  createdAt: number;
  lastUsedAt: number;
  expiresAt: number;
  userAgent: string;
}
interface Stored {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  ttlMs: number;
  user: ApiUser;
}

/** Refresh this long before the access token expires: a minute, less for short-lived tokens. */
function margin(s: Stored): number {
  return Math.min(60_000, s.ttlMs / 5);
}

function read(): Stored | null {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<Stored> | null;
    if (
      !v ||
      typeof v.accessToken !== 'string' ||
      typeof v.refreshToken !== 'string' ||
      typeof v.expiresAt !== 'number' ||
      typeof v.ttlMs !== 'number' ||
      typeof v.user?.id !== 'string'
    )
      return null;
    return v as Stored;
  } catch {
    return null;
  }
}

function write(s: Stored | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

function fromTokens(t: Tokens): Stored {
  const ttlMs = t.expiresIn * 1000;
  return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: Date.now() + ttlMs, ttlMs, user: t.user };
}

/** Runs `fn` holding a lock shared by the tabs of this origin, where the browser has one. */
async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (navigator as { locks?: { request(name: string, cb: () => Promise<T>): Promise<T> } }).locks;
  return locks ? locks.request('parley.refresh', fn) : fn();
}

export class Session {
  private stored: Stored;
  private refreshing: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ended = false;
  /** Whether the last token handed to the SDK led to a connection that authenticated. */
  private handedOut = false;
  private readySince = true;
  private readonly onStorage = (e: StorageEvent): void => {
    if (e.key !== KEY) return;
    const now = read();
    if (!now || now.user.id !== this.stored.user.id) this.end('You signed out in another window.');
    else this.stored = now;
  };

  private constructor(
    stored: Stored,
    private readonly onEnd: (reason: string) => void,
  ) {
    this.stored = stored;
    addEventListener('storage', this.onStorage);
    this.schedule();
  }

  static restore(onEnd: (reason: string) => void): Session | null {
    const s = read();
    return s ? new Session(s, onEnd) : null;
  }

  static async login(username: string, password: string, onEnd: (reason: string) => void): Promise<Session> {
    const t = await api<Tokens>('POST', '/auth/login', { body: { username, password } });
    write(fromTokens(t));
    return new Session(fromTokens(t), onEnd);
  }

  static async register(username: string, password: string, name: string, onEnd: (reason: string) => void): Promise<Session> {
    const body = name ? { username, password, name } : { username, password };
    const t = await api<Tokens>('POST', '/auth/register', { body });
    write(fromTokens(t));
    return new Session(fromTokens(t), onEnd);
  }

  get user(): ApiUser {
    return this.stored.user;
  }

  /**
   * Whether the account administers the server, as its access token says (the server decides
   * on every request; this only chooses what the app offers).
   */
  get admin(): boolean {
    try {
      const part = this.stored.accessToken.split('.')[1] ?? '';
      const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
      return (JSON.parse(json) as { parley_admin?: unknown }).parley_admin === true;
    } catch {
      return false;
    }
  }

  /** Changes the account's display name; the user as the server now has it. */
  async setName(name: string): Promise<ApiUser> {
    const user = await api<ApiUser>('PATCH', '/me', { token: await this.token(), body: { name } });
    this.stored = { ...this.stored, user };
    const now = read();
    if (now && now.user.id === user.id) write({ ...now, user });
    return user;
  }

  /**
   * Changes the account's password; with `signOutOthers` every other device is signed out.
   * This device stays signed in with the tokens the server returns.
   */
  async changePassword(oldPassword: string, newPassword: string, signOutOthers: boolean): Promise<void> {
    const t = await api<Tokens>('POST', '/auth/password', { token: await this.token(), body: { oldPassword, newPassword, signOutOthers } });
    this.stored = fromTokens(t);
    write(this.stored);
    this.schedule();
  }

  /** Sets the account's picture (the server makes it a small square). */
  async setAvatar(file: Blob): Promise<void> {
    let res: Response;
    try {
      res = await fetch('/api/v1/me/avatar', {
        method: 'PUT',
        headers: { authorization: `Bearer ${await this.token()}`, 'content-type': file.type || 'application/octet-stream' },
        body: file,
      });
    } catch {
      throw new ApiError('offline', 'The server cannot be reached.');
    }
    if (!res.ok) {
      const e = ((await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(e?.code ?? 'internal', e?.message ?? `The server answered ${res.status}.`, res.status);
    }
  }

  async removeAvatar(): Promise<void> {
    await api('DELETE', '/me/avatar', { token: await this.token() });
  }

  /** The account's signed-in devices, most recently used first. */
  async sessions(): Promise<SessionInfo[]> {
    return (await api<{ sessions: SessionInfo[] }>('GET', '/auth/sessions', { token: await this.token() })).sessions;
  }

  /** Signs one of the account's other devices out (its open connections close at once). */
  async endSession(id: string): Promise<void> {
    await api('DELETE', `/auth/sessions/${encodeURIComponent(id)}`, { token: await this.token() });
  }

  /** Signs every other device out; how many were. */
  async endOtherSessions(): Promise<number> {
    return (await api<{ ended: number }>('DELETE', '/auth/sessions', { token: await this.token() })).ended;
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async token(): Promise<string> {
    if (this.stored.expiresAt - Date.now() < margin(this.stored)) await this.refresh();
    return this.stored.accessToken;
  }

  /**
   * The SDK's token function, called before every connection. When the previous token did not
   * lead to an authenticated connection, the session may have ended (signed out elsewhere,
   * password changed, banned): ask the server before handing the same token out again, or the
   * SDK would retry a dead token forever.
   */
  async tokenForConnection(): Promise<string> {
    if (this.handedOut && !this.readySince) await this.check();
    const t = await this.token();
    this.handedOut = true;
    this.readySince = false;
    return t;
  }

  /** The SDK authenticated with the last token. */
  connected(): void {
    this.readySince = true;
  }

  private async check(): Promise<void> {
    try {
      await api('GET', '/me', { token: this.stored.accessToken });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.code === 'unauthorized') await this.refresh();
      else if (err.code === 'forbidden') {
        this.end(`You cannot sign in: ${err.message}.`);
        throw err;
      } else throw err; // offline or failing: the SDK tries again after its backoff
    }
  }

  refresh(): Promise<void> {
    this.refreshing ??= exclusive(() => this.doRefresh()).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    if (this.ended) throw new ApiError('closed', 'signed out');
    const current = read();
    if (!current || current.user.id !== this.stored.user.id) {
      this.end('You signed out in another window.');
      throw new ApiError('closed', 'signed out');
    }
    // Another tab may have refreshed while this one waited for the lock.
    if (current.refreshToken !== this.stored.refreshToken && current.expiresAt - Date.now() >= margin(current)) {
      this.stored = current;
      this.schedule();
      return;
    }
    try {
      const t = await api<Tokens>('POST', '/auth/refresh', { body: { refreshToken: current.refreshToken } });
      this.stored = fromTokens(t);
      write(this.stored);
      this.schedule();
    } catch (err) {
      if (err instanceof ApiError && ['unauthorized', 'forbidden', 'invalid', 'not_found'].includes(err.code)) {
        this.end('Your session has ended. Please sign in again.');
      }
      throw err;
    }
  }

  /** Refreshes ahead of expiry, so a reconnect never waits for it. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    const delay = Math.max(5_000, this.stored.expiresAt - Date.now() - margin(this.stored));
    this.timer = setTimeout(
      () => {
        this.refresh().catch(() => this.schedule());
      },
      Math.min(delay, 2 ** 31 - 1),
    );
  }

  async logout(): Promise<void> {
    // This browser stops being notified for the account (the server would drop the
    // subscription with the session anyway; the browser's own goes here).
    await unsubscribePush(() => this.token());
    try {
      await api('POST', '/auth/logout', { token: await this.token() });
    } catch {
      // Signed out locally either way; the server session then expires on its own.
    }
    this.end('');
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    removeEventListener('storage', this.onStorage);
    const now = read();
    if (now && now.user.id === this.stored.user.id) write(null);
    this.onEnd(reason);
  }
}
