// Conformance of RetentionStore (src/store/retention.ts): every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it, vi } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { storeFixture, DAY } from './fixture.js';

export function retentionConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, retention: ${name}`, () => {
    const t = storeFixture(open);

    it('retention removes messages beyond count and age; bounds move up', async () => {
      const id = await t.group('u1');
      await t.store.updateRoom(id, { retentionCount: 3 }, { user: 'u1', name: 'U1' });
      for (let i = 0; i < 6; i++) await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `m${i}` });
      const { last } = await t.store.bounds(id);
      const removed = await t.store.applyRetention(Date.now(), { count: null, days: null });
      expect(removed).toBeGreaterThanOrEqual(last - 3);
      expect(await t.store.bounds(id)).toEqual({ first: last - 2, last });
      const old = await t.group('u1');
      await t.store.append({ room: old, user: 'u1', name: 'x', kind: 'text', text: 'old' });
      await t.store.applyRetention(Date.now() + 3 * 86_400_000, { count: null, days: 1 });
      expect(await t.store.history(old, { limit: 10 })).toEqual([]);
      expect((await t.store.bounds(old)).first).toBe((await t.store.bounds(old)).last + 1);
    });

    it("retention: a room's own limit wins over the default, which applies to rooms without one; the count removed is exact", async () => {
      const own = await t.group('u1');
      const dflt = await t.group('u1');
      await t.store.updateRoom(own, { retentionCount: 5 }, { user: 'u1', name: 'U1' });
      for (let i = 0; i < 10; i++) {
        await t.store.append({ room: own, user: 'u1', name: 'x', kind: 'text', text: `o${i}` });
        await t.store.append({ room: dflt, user: 'u1', name: 'x', kind: 'text', text: `d${i}` });
      }
      // own: 12 messages (join, update, 10 texts), keeps 5; dflt: 11 messages, keeps 2.
      const removed = await t.store.applyRetention(Date.now(), { count: 2, days: null });
      expect(await t.store.bounds(own)).toEqual({ first: 8, last: 12 });
      expect(await t.store.bounds(dflt)).toEqual({ first: 10, last: 11 });
      expect(removed).toBeGreaterThanOrEqual(7 + 9);
      expect(await t.store.applyRetention(Date.now(), { count: 2, days: null })).toBe(0);
    });

    it('retention by age cuts a prefix in seq order: a late-stamped message never leaves a hole', async () => {
      const now = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(now - 3 * DAY);
        const id = await t.group('u1');
        await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'old 1' });
        await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'old 2' });
        vi.setSystemTime(now);
        await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'new' });
        // Stored after "new" but stamped three days earlier (a clock stepped back).
        vi.setSystemTime(now - 3 * DAY);
        await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'late' });
        vi.setSystemTime(now);
        await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'newest' });
        expect(await t.store.applyRetention(now, { count: null, days: 1 })).toBe(3);
        expect(await t.store.bounds(id)).toEqual({ first: 4, last: 6 });
        expect((await t.store.history(id, { after: 0, limit: 10 })).map((m) => m.text)).toEqual(['new', 'late', 'newest']);
      } finally {
        vi.useRealTimers();
      }
    });
  });
}
