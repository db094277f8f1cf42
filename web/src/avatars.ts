// Users' pictures in the app: signed URLs looked up in batches (GET /avatars, up to 100 users
// a call, a short moment after the first one is wanted), kept until shortly before they
// expire, then looked up again. A user without a picture shows its initials.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface Entry {
  url: string | null;
  until: number;
}

const cache = new Map<string, Entry>();
const wanted = new Set<string>();
const listeners = new Set<() => void>();
let token: (() => Promise<string>) | null = null;
let timer: ReturnType<typeof setTimeout> | null = null;
/** How long "no picture" is believed before asking again. */
const NONE_MS = 5 * 60_000;
const BATCH = 100;

/** Where the look-ups get their token: the signed-in session (null on sign-out). */
export function setAvatarSource(t: (() => Promise<string>) | null): void {
  token = t;
  cache.clear();
  wanted.clear();
}

/** Forgets one user's picture (after it changed), so it is looked up again. */
export function forgetAvatar(user: string): void {
  cache.delete(user);
  for (const l of listeners) l();
}

/** Expiry of a signed URL (its `exp`, seconds), a minute early. */
function freshUntil(url: string): number {
  const exp = Number(new URL(url, location.origin).searchParams.get('exp'));
  return Number.isFinite(exp) ? exp * 1000 - 60_000 : Date.now() + NONE_MS;
}

function want(user: string): void {
  wanted.add(user);
  timer ??= setTimeout(() => {
    timer = null;
    void lookUp();
  }, 30);
}

async function lookUp(): Promise<void> {
  const users = [...wanted].slice(0, BATCH);
  for (const u of users) wanted.delete(u);
  if (wanted.size > 0)
    timer ??= setTimeout(() => {
      timer = null;
      void lookUp();
    }, 0);
  if (!token || users.length === 0) return;
  try {
    const { avatars } = await api<{ avatars: Record<string, string> }>('GET', `/avatars?users=${users.map(encodeURIComponent).join(',')}`, {
      token: await token(),
    });
    for (const u of users) {
      const url = avatars[u] ?? null;
      cache.set(u, { url, until: url ? freshUntil(url) : Date.now() + NONE_MS });
    }
  } catch {
    // Initials meanwhile; asked again a little later.
    for (const u of users) if (!cache.has(u)) cache.set(u, { url: null, until: Date.now() + 30_000 });
  }
  for (const l of listeners) l();
}

/** The URL of a user's picture, or null (initials): looked up when unknown or about to expire. */
export function avatarUrl(user: string): string | null {
  const e = cache.get(user);
  if (!e || e.until <= Date.now()) want(user);
  return e?.url ?? null;
}

/** avatarUrl as a hook: the component draws again once the look-up answered. */
export function useAvatar(user: string): string | null {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return avatarUrl(user);
}
