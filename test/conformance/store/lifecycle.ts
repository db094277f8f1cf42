// Conformance of the store as a whole: health (ping) and close: every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { storeFixture } from './fixture.js';

export function lifecycleConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, open, ping and close: ${name}`, () => {
    const t = storeFixture(open);

    it('writes after close are refused with unavailable', async () => {
      const id = await t.group('u1');
      await t.store.close();
      await expect(t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'unavailable' });
      await t.reopen();
    });

    it('ping answers while open and refuses after close', async () => {
      await expect(t.store.ping()).resolves.toBeUndefined();
      await t.store.close();
      await expect(t.store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      await t.reopen();
    });

    it('calls on a closed store reject with unavailable, reads included, and never throw', async () => {
      const id = await t.group('u1');
      await t.store.close();
      const calls: Array<() => Promise<unknown>> = [
        () => t.store.getRoom(id),
        () => t.store.getUser('u1'),
        () => t.store.getMember(id, 'u1'),
        () => t.store.members(id),
        () => t.store.roomsOf('u1'),
        () => t.store.history(id, { limit: 5 }),
        () => t.store.bounds(id),
        () => t.store.inbox('u1'),
        () => t.store.search('u1', 'word', [id], 5),
        () => t.store.publicRooms(10),
        () => t.store.blocksOf('u1'),
        () => t.store.markRead(id, 'u1', 1),
        () => t.store.addMember(id, 'u2', 'u2', 'member', 'u1'),
      ];
      for (const call of calls) {
        let p: Promise<unknown>;
        try {
          p = call();
        } catch (err) {
          throw new Error(`threw instead of rejecting: ${String(err)}`, { cause: err });
        }
        await expect(p).rejects.toMatchObject({ code: 'unavailable' });
      }
      await t.reopen();
    });

    it('close settles the writes already called before it closes', async () => {
      const id = await t.group('u1');
      const pending = Array.from({ length: 5 }, (_, i) => t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `w${i}` }));
      await t.store.close();
      const results = await Promise.all(pending);
      expect(results.map((r) => r.message.seq)).toEqual([2, 3, 4, 5, 6]);
      await t.reopen();
    });
  });
}
