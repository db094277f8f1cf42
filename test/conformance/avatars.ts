// The behaviour suite of the AvatarStore port: every backend runs it (store.push.sqlite.test.ts
// and store.postgres.test.ts).
import { describe, expect, it } from 'vitest';
import type { AvatarStore } from '../../src/store/avatars.js';

export function avatarStoreConformance(name: string, open: () => Promise<{ avatars: AvatarStore; close(): Promise<void> }>): void {
  describe(`avatar store conformance: ${name}`, () => {
    it('keeps one picture per user and hands back the blob it replaced or removed, once', async () => {
      const b = await open();
      try {
        const p = b.avatars;
        expect(await p.set('ann', 'blob-1', 10)).toBeNull();
        expect(await p.set('ann', 'blob-2', 20)).toBe('blob-1');
        expect(await p.set('bob', 'blob-3', 30)).toBeNull();
        expect((await p.ofUsers(['ann', 'bob', 'cyd'])).sort((x, y) => x.user.localeCompare(y.user))).toEqual([
          { user: 'ann', blob: 'blob-2', updatedAt: 20 },
          { user: 'bob', blob: 'blob-3', updatedAt: 30 },
        ]);
        expect(await p.remove('ann')).toBe('blob-2');
        expect(await p.remove('ann')).toBeNull();
        expect(await p.ofUsers(['ann'])).toEqual([]);
        expect(await p.ofUsers([])).toEqual([]);
      } finally {
        await b.close();
      }
    });
  });
}
