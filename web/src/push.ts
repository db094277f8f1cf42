// Web Push in the browser: the service worker (/sw.js, scope /) that shows a notification when
// the server pushes one and opens the room when it is clicked, and this browser's push
// subscription, made with the server's VAPID key once the user turns notifications on, kept
// in step with the server at every start, and removed on sign-out. Browsers without service
// workers or the Push API keep the in-page notifications only.
import { api } from './api.js';

const SUBSCRIBE_TIMEOUT_MS = 8000;

/** Whether this browser can receive pushes at all. */
export function pushSupported(): boolean {
  return 'serviceWorker' in navigator && typeof PushManager !== 'undefined' && isSecureContext;
}

/** Registers the service worker (no permission is asked for that); null where there is none. */
export async function registerWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!('serviceWorker' in navigator) || !isSecureContext) return null;
  try {
    return await navigator.serviceWorker.register('/sw.js', { scope: '/', type: 'classic' });
  } catch {
    return null;
  }
}

/** A room the service worker asks an open tab to show (after a notification was clicked). */
export function onOpenRoomMessage(open: (room: string) => void): () => void {
  if (!('serviceWorker' in navigator)) return () => {};
  const listen = (e: MessageEvent) => {
    const d = e.data as { type?: unknown; room?: unknown } | null;
    if (d?.type === 'parley.open' && typeof d.room === 'string') open(d.room);
  };
  navigator.serviceWorker.addEventListener('message', listen);
  return () => navigator.serviceWorker.removeEventListener('message', listen);
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b = atob(base64url.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(new ArrayBuffer(b.length));
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

/**
 * Subscribes this browser (the permission must be granted) and hands the subscription to the
 * server; an existing one is handed over again (another account may have had it). A problem
 * in words, or null.
 */
export async function subscribePush(token: () => Promise<string>): Promise<string | null> {
  if (!pushSupported()) return 'This browser cannot notify you while Parley is closed; you are notified while it is open.';
  const reg = await registerWorker();
  if (!reg) return 'This browser cannot notify you while Parley is closed.';
  try {
    await navigator.serviceWorker.ready;
    const { publicKey } = await api<{ publicKey: string }>('GET', '/push/key', { token: await token() });
    let sub = await reg.pushManager.getSubscription();
    // A subscription made with another key (the server's keys changed) cannot be used.
    const key = sub?.options.applicationServerKey;
    if (
      sub &&
      key &&
      btoa(String.fromCharCode(...new Uint8Array(key)))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '') !== publicKey
    ) {
      await sub.unsubscribe();
      sub = null;
    }
    // A browser without a reachable push service may never answer: give up after a while.
    sub ??= await Promise.race([
      reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the browser's push service did not answer")), SUBSCRIBE_TIMEOUT_MS)),
    ]);
    await api('POST', '/push/subscriptions', { token: await token(), body: sub.toJSON() });
    return null;
  } catch (err) {
    return `Notifications while Parley is closed could not be turned on: ${(err as Error).message || 'unknown error'}.`;
  }
}

/** Removes this browser's subscription, on the server and in the browser. Never throws. */
export async function unsubscribePush(token: () => Promise<string>): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    const reg = await navigator.serviceWorker.getRegistration('/');
    const sub = await reg?.pushManager.getSubscription();
    if (!sub) return;
    await api('DELETE', '/push/subscriptions', { token: await token(), body: { endpoint: sub.endpoint } }).catch(() => undefined);
    await sub.unsubscribe();
  } catch {
    // Signed out either way; the server drops the subscription with the session.
  }
}
