// The few REST calls the app makes itself (accounts and user lookups); everything else goes
// over the WebSocket through the SDK. Errors come back as ApiError with the server's code.
import { formatFull } from './format.js';
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiUser {
  id: string;
  name: string;
  profile: Record<string, unknown>;
}
export interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: ApiUser;
}

export async function api<T>(method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('offline', 'The server cannot be reached.');
  }
  if (res.status === 204) return undefined as T;
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // A proxy's HTML error page, say: reported by status below.
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
    throw new ApiError(e?.code ?? 'internal', e?.message ?? `The server answered ${res.status}.`, res.status, e?.details);
  }
  return body as T;
}

/**
 * Why the user could not enter a room (join), in a sentence about them: a ban names its
 * reason and end, which only the banned user is told.
 */
export function describeJoinError(err: unknown, room: string): string {
  const e = err as { code?: string; details?: Record<string, unknown> } | null;
  if (e?.code === 'forbidden' && e.details?.reason === 'banned') {
    const until = typeof e.details.until === 'number' ? ` until ${formatFull(e.details.until)}` : ' for good';
    const why = typeof e.details.banReason === 'string' && e.details.banReason ? `: ${e.details.banReason}` : '.';
    return `You are banned from “${room}”${until}${why}`;
  }
  if (e?.code === 'forbidden' && e.details?.reason === 'access') return `The access list of “${room}” does not admit you.`;
  return `Could not join “${room}”: ${describeError(err)}`;
}

/** What a `room` event's removal reason ("kicked: off topic", "banned", "access"…) means for the user. */
export function describeRemoval(room: string, reason: string): string {
  const colon = reason.indexOf(':');
  const kind = colon < 0 ? reason : reason.slice(0, colon);
  const why = colon < 0 ? '' : reason.slice(colon + 1).trim();
  const because = why ? ` (${why})` : '';
  switch (kind) {
    case 'deleted':
      return `${room} was deleted.`;
    case 'access':
      return `${room} no longer admits you.`;
    case 'banned':
      return `${room} banned you${because}.`;
    case 'kicked':
      return `${room} removed you${because}.`;
    default:
      return `${room} removed you (${reason}).`;
  }
}

/** A sentence for the user from any error of the API or the SDK. */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; details?: Record<string, unknown> } | null;
  const code = e?.code;
  const msg = e?.message ? ` (${e.message})` : '';
  switch (code) {
    case 'offline':
      return 'The server cannot be reached. Check your connection and try again.';
    case 'rate_limited': {
      const ms = e?.details?.retryAfterMs;
      return typeof ms === 'number' ? `Too many attempts. Try again in ${Math.ceil(ms / 1000)} s.` : 'Too many attempts. Try again shortly.';
    }
    case 'unauthorized':
      return `Not signed in${msg}.`;
    case 'forbidden':
      if (e?.details?.reason === 'muted') return 'You are muted in this room.';
      if (e?.details?.reason === 'banned') return 'That user is banned from this room.';
      return `Not allowed${msg}.`;
    case 'not_found':
      return `Not found${msg}.`;
    case 'conflict':
      return `Conflict${msg}.`;
    case 'too_large':
      return `Too long${msg}.`;
    case 'invalid':
      return `Not accepted${msg}.`;
    case 'timeout':
      return 'The server did not answer in time. Try again.';
    case 'unavailable':
      return 'The server is busy or restarting. Try again.';
    case 'closed':
      return 'Signed out.';
    default:
      return e?.message ?? 'Something went wrong.';
  }
}
