// The behaviour suite of the PushStore port: every backend runs it (store.push.sqlite.test.ts
// and store.postgres.test.ts).
import { describe, expect, it } from 'vitest';
import type { PushStore, PushSubscriptionRecord } from '../../src/store/push.js';

export interface PushBackend {
  push: PushStore;
  close(): Promise<void>;
}

export function pushStoreConformance(name: string, open: () => Promise<PushBackend>): void {
  describe(`push store conformance: ${name}`, () => {
    async function withStore(fn: (p: PushStore) => Promise<void>): Promise<void> {
      const b = await open();
      try {
        await fn(b.push);
      } finally {
        await b.close();
      }
    }
    const sub = (endpoint: string, user: string, session: string | null = null): PushSubscriptionRecord => ({
      endpoint: `https://push.example/${endpoint}`,
      user,
      session,
      p256dh: `p-${endpoint}`,
      auth: `a-${endpoint}`,
      createdAt: 1,
    });
    const endpoints = async (p: PushStore, ...users: string[]) => (await p.ofUsers(users)).map((s) => s.endpoint.replace('https://push.example/', '')).sort();

    it('keeps subscriptions per user, an endpoint once, the latest owner winning, up to the cap', async () => {
      await withStore(async (p) => {
        await p.add(sub('a1', 'ann', 's1'), 2);
        await p.add(sub('a2', 'ann'), 2);
        await expect(p.add(sub('a3', 'ann'), 2)).rejects.toMatchObject({ code: 'conflict' });
        // Replacing one of the user's own endpoints is not one more.
        await p.add({ ...sub('a2', 'ann'), auth: 'new' }, 2);
        expect((await p.ofUsers(['ann'])).find((s) => s.endpoint.endsWith('a2'))?.auth).toBe('new');
        // Another account signing in to the same browser takes the endpoint over.
        await p.add(sub('a1', 'bob', 's9'), 2);
        expect(await endpoints(p, 'ann')).toEqual(['a2']);
        expect(await p.ofUsers(['bob'])).toEqual([sub('a1', 'bob', 's9')]);
        expect(await p.remove('ann', 'https://push.example/a1')).toBe(false);
        expect(await p.remove('bob', 'https://push.example/a1')).toBe(true);
        await p.removeEndpoint('https://push.example/a2');
        expect(await p.ofUsers(['ann', 'bob'])).toEqual([]);
      });
    });

    it('removes the subscriptions of ended sessions, keeping those of other sessions and of none', async () => {
      await withStore(async (p) => {
        await p.add(sub('x1', 'cyd', 's1'), 10);
        await p.add(sub('x2', 'cyd', 's2'), 10);
        await p.add(sub('x3', 'cyd', 's3'), 10);
        await p.add(sub('x4', 'cyd', null), 10);
        await p.add(sub('y1', 'dee', 's4'), 10);
        expect(await p.removeSessions(['s1'])).toBe(1);
        expect(await endpoints(p, 'cyd')).toEqual(['x2', 'x3', 'x4']);
        expect(await p.removeUserSessions('cyd', 's3')).toBe(1);
        expect(await endpoints(p, 'cyd')).toEqual(['x3', 'x4']);
        expect(await p.removeUserSessions('cyd')).toBe(1);
        expect(await endpoints(p, 'cyd', 'dee')).toEqual(['x4', 'y1']);
      });
    });

    it('keeps the first VAPID key pair offered', async () => {
      await withStore(async (p) => {
        const first = await p.vapidKeys({ publicKey: 'pub1', privateKey: 'priv1' });
        expect(first).toEqual({ publicKey: 'pub1', privateKey: 'priv1' });
        const [a, b] = await Promise.all([p.vapidKeys({ publicKey: 'pub2', privateKey: 'priv2' }), p.vapidKeys({ publicKey: 'pub3', privateKey: 'priv3' })]);
        expect(a).toEqual(first);
        expect(b).toEqual(first);
      });
    });
  });
}
