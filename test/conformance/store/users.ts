// Conformance of UserStore (src/store/users.ts): every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { storeFixture } from './fixture.js';

export function usersConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, users: ${name}`, () => {
    const t = storeFixture(open);

    it('users are upserted; rooms of a user and public channels are listed', async () => {
      await t.store.upsertUser({ id: 'pu', name: 'P', profile: { a: 1 } });
      await t.store.upsertUser({ id: 'pu', name: 'P2', profile: { b: 2 } });
      expect(await t.store.getUser('pu')).toEqual({ id: 'pu', name: 'P2', profile: { b: 2 } });
      expect(await t.store.getUser('nobody')).toBeNull();
      const g = await t.group('lister');
      const c = t.rid();
      await t.store.createRoom({ id: c, kind: 'channel', name: 'C', topic: '', createdBy: 'lister', members: [{ user: 'lister', name: 'l', role: 'owner' }] });
      expect((await t.store.roomsOf('lister')).map((r) => r.room.id).sort()).toEqual([g, c].sort());
      const pub = await t.store.publicRooms(1000);
      expect(pub.map((r) => r.id)).toContain(c);
      expect(pub.map((r) => r.id)).not.toContain(g);
    });
  });
}
