// Conformance of read markers and the inbox (src/store/rooms.ts): every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { storeFixture } from './fixture.js';

export function readsConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, read markers and inbox: ${name}`, () => {
    const t = storeFixture(open);

    it('read markers only move forward and never past the end; inbox counts unread', async () => {
      const id = await t.group('u1', ['u2']);
      for (let i = 0; i < 4; i++) await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `${i}` });
      let entry = (await t.store.inbox('u2')).find((e) => e.room.id === id)!;
      expect(entry).toMatchObject({ unread: 4, readSeq: 0, role: 'member', last: { text: '3' } });
      expect(await t.store.markRead(id, 'u2', 4)).toBe(4);
      expect(await t.store.markRead(id, 'u2', 2)).toBe(4);
      expect(await t.store.markRead(id, 'u2', 1000)).toBe(6);
      entry = (await t.store.inbox('u2')).find((e) => e.room.id === id)!;
      expect(entry.unread).toBe(0);
      await expect(t.store.markRead(id, 'stranger', 1)).rejects.toMatchObject({ code: 'forbidden' });
    });

    it('the inbox lists the most recently active room first', async () => {
      const older = await t.group('ib');
      const newer = await t.group('ib');
      await t.store.append({ room: newer, user: 'ib', name: 'x', kind: 'text', text: 'first' });
      await new Promise((r) => setTimeout(r, 5));
      await t.store.append({ room: older, user: 'ib', name: 'x', kind: 'text', text: 'latest' });
      expect((await t.store.inbox('ib')).map((e) => e.room.id)).toEqual([older, newer]);
    });
  });
}
