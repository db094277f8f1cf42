// The Chat21Store port's behaviour suite: every backend runs it (see store.chat21.*.test.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Chat21Store } from '../../src/integrations/chat21/store.js';

export function chat21StoreConformance(name: string, open: () => Promise<{ store: Chat21Store; close(): Promise<void> }>): void {
  describe(`Chat21Store conformance: ${name}`, () => {
    let h: Awaited<ReturnType<typeof open>>;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h.close();
    });

    it('an archive mark only moves forward and is per user', async () => {
      await h.store.archive('u1', 'r1', 5);
      await h.store.archive('u1', 'r1', 3);
      await h.store.archive('u1', 'r2', 1);
      await h.store.archive('u2', 'r1', 9);
      expect(await h.store.archived('u1')).toEqual(
        new Map([
          ['r1', 5],
          ['r2', 1],
        ]),
      );
      await h.store.archive('u1', 'r1', 7);
      expect(await h.store.archived('u1')).toEqual(
        new Map([
          ['r1', 7],
          ['r2', 1],
        ]),
      );
      expect(await h.store.archived('u2')).toEqual(new Map([['r1', 9]]));
      expect(await h.store.archived('nobody')).toEqual(new Map());
    });

    it('group attributes are replaced as a whole and default to {}', async () => {
      expect(await h.store.groupAttributes('g1')).toEqual({});
      await h.store.setGroupAttributes('g1', { a: 1, nested: { b: [1, 2] } });
      expect(await h.store.groupAttributes('g1')).toEqual({ a: 1, nested: { b: [1, 2] } });
      await h.store.setGroupAttributes('g1', { c: 'x' });
      expect(await h.store.groupAttributes('g1')).toEqual({ c: 'x' });
    });

    it('saving an instance twice keeps one, with the latest data', async () => {
      await h.store.saveInstance('u1', 'dev', { token: 'a' }, 10);
      await expect(h.store.saveInstance('u1', 'dev', { token: 'b' }, 10)).resolves.toBeUndefined();
      expect(await h.store.instances('u1')).toEqual(['dev']);
    });

    it("a user keeps its `max` most recently saved instances; others' are untouched", async () => {
      await h.store.saveInstance('u2', 'other', {}, 3);
      for (const i of ['a', 'b', 'c', 'd']) await h.store.saveInstance('u1', i, {}, 3);
      expect(await h.store.instances('u1')).toEqual(['d', 'c', 'b']);
      // Saving one the user has again is an update: nothing is removed, it becomes the newest.
      await h.store.saveInstance('u1', 'b', { token: 'x' }, 3);
      expect(await h.store.instances('u1')).toEqual(['b', 'd', 'c']);
      await h.store.saveInstance('u1', 'e', {}, 3);
      expect(await h.store.instances('u1')).toEqual(['e', 'b', 'd']);
      // A lower cap trims down to it at the next save.
      await h.store.saveInstance('u1', 'f', {}, 2);
      expect(await h.store.instances('u1')).toEqual(['f', 'e']);
      expect(await h.store.instances('u2')).toEqual(['other']);
      expect(await h.store.instances('nobody')).toEqual([]);
    });

    it("removing a room forgets its attributes and every user's archive mark, and nothing of other rooms", async () => {
      await h.store.setGroupAttributes('g1', { a: 1 });
      await h.store.setGroupAttributes('g2', { b: 2 });
      await h.store.archive('u1', 'g1', 4);
      await h.store.archive('u2', 'g1', 6);
      await h.store.archive('u1', 'g2', 1);
      await h.store.removeRoom('g1');
      expect(await h.store.groupAttributes('g1')).toEqual({});
      expect(await h.store.archived('u1')).toEqual(new Map([['g2', 1]]));
      expect(await h.store.archived('u2')).toEqual(new Map());
      expect(await h.store.groupAttributes('g2')).toEqual({ b: 2 });
      await expect(h.store.removeRoom('none')).resolves.toBeUndefined();
    });
  });
}
