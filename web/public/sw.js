// Parley's service worker: shows the notification of a Web Push (a direct message or a
// mention that arrived while no tab was connected) and, when it is clicked, brings a Parley
// tab to that room or opens one. It caches nothing: the app always loads from the server.
/* global self, URL */

self.addEventListener('install', () => {
  self.skipWaiting();
});
self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** The notification's title: who wrote, and where when it is not a direct message. */
function title(p) {
  const name = String(p.name || 'Someone');
  if (p.kind === 'direct') return name;
  const where = p.kind === 'channel' ? `#${p.roomName}` : String(p.roomName || 'a group');
  return p.reason === 'message' ? `${name} in ${where}` : `${name} mentioned you in ${where}`;
}

self.addEventListener('push', (event) => {
  let p;
  try {
    p = event.data ? event.data.json() : null;
  } catch {
    p = null;
  }
  if (!p || typeof p.room !== 'string') return;
  event.waitUntil(
    self.registration.showNotification(title(p), {
      body: String(p.text || ''),
      // One notification per room: a newer message replaces the older one.
      tag: `parley-${p.room}`,
      renotify: true,
      icon: '/favicon.svg',
      data: { room: p.room, seq: p.seq },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const room = event.notification.data && event.notification.data.room;
  if (typeof room !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(room)) return;
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const tab = open.find((c) => new URL(c.url).origin === self.location.origin);
      if (tab) {
        await tab.focus();
        tab.postMessage({ type: 'parley.open', room });
        return;
      }
      await self.clients.openWindow(`/r/${room}`);
    })(),
  );
});
