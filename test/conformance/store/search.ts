// Conformance of SearchStore (src/store/search.ts): every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { directRoomId } from '../../../src/service/index.js';
import { storeFixture } from './fixture.js';

export function searchConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, search: ${name}`, () => {
    const t = storeFixture(open);

    it('search matches words in the given rooms only, newest first', async () => {
      const a = await t.group('u1');
      const b = await t.group('u1');
      await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'Zebra crossing ahead' });
      await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'another zebra' });
      await t.store.append({ room: b, user: 'u1', name: 'x', kind: 'text', text: 'zebra elsewhere' });
      expect((await t.store.search('u1', 'zebra', [a], 10)).map((m) => m.text)).toEqual(['another zebra', 'Zebra crossing ahead']);
      expect(await t.store.search('u1', 'zebra', [a, b], 1)).toHaveLength(1);
      expect(await t.store.search('u1', '***', [a], 10)).toEqual([]);
    });

    it('search ignores case and diacritics, needs every word, and finds only current versions', async () => {
      const a = await t.group('u1', ['u2']);
      const { message: cafe } = await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'Un CAFÉ crème, merci' });
      await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'cafe only' });
      const texts = async (q: string) => (await t.store.search('u2', q, [a], 10)).map((m) => m.text);
      expect(await texts('cafe creme')).toEqual(['Un CAFÉ crème, merci']);
      expect(await texts('Café')).toEqual(['cafe only', 'Un CAFÉ crème, merci']);
      expect(await texts('caf')).toEqual([]);
      expect(await texts('cafe nowhere')).toEqual([]);
      // An edit replaces what search finds for its thread; a delete removes the thread.
      const edit = await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'edit', target: cafe.seq, text: 'un thé, merci' });
      expect(await texts('creme')).toEqual([]);
      expect(await t.store.search('u2', 'the merci', [a], 10)).toEqual([expect.objectContaining({ kind: 'edit', seq: edit.message.seq, target: cafe.seq })]);
      await t.store.append({ room: a, user: 'u1', name: 'x', kind: 'delete', target: cafe.seq });
      expect(await texts('merci')).toEqual([]);
      expect(await texts('cafe')).toEqual(['cafe only']);
    });

    it('search leaves out messages hidden for the viewer; query syntax is only words', async () => {
      const { id, key } = directRoomId('sa', 'sb');
      await t.store.createRoom({
        id,
        kind: 'direct',
        name: '',
        topic: '',
        createdBy: 'sa',
        directKey: key,
        members: [
          { user: 'sa', name: 'sa', role: 'member' },
          { user: 'sb', name: 'sb', role: 'member' },
        ],
      });
      await t.store.setBlock('sa', 'sb', true);
      await t.store.append({ room: id, user: 'sb', name: 'sb', kind: 'text', text: 'secret plans' });
      expect(await t.store.search('sa', 'secret', [id], 10)).toEqual([]);
      expect((await t.store.search('sb', 'secret', [id], 10)).map((m) => m.text)).toEqual(['secret plans']);
      expect(await t.store.search('sb', 'secret" OR "x* NEAR(', [id], 10)).toEqual([]);
      expect((await t.store.search('sb', '"plans" & !secret', [id], 10)).map((m) => m.text)).toEqual(['secret plans']);
      expect(await t.store.search('sb', 'secret', [], 10)).toEqual([]);
    });
  });
}
