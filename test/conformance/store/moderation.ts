// Conformance of ModerationStore (src/store/moderation.ts): bans and blocks: every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { directRoomId } from '../../../src/service/index.js';
import { storeFixture } from './fixture.js';

export function moderationConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, moderation: ${name}`, () => {
    const t = storeFixture(open);

    it('bans are in force until they expire; server-wide bans are separate', async () => {
      const id = await t.group('u1');
      const now = Date.now();
      await t.store.ban({ room: id, user: 'b1', until: now + 1000, reason: 'r', by: 'u1' });
      await t.store.ban({ room: null, user: 'b2', until: null, reason: '', by: 'root' });
      expect(await t.store.activeBan(id, 'b1', now)).toMatchObject({ room: id, user: 'b1', until: now + 1000, reason: 'r' });
      expect(await t.store.activeBan(id, 'b1', now + 2000)).toBeNull();
      expect(await t.store.activeBan(null, 'b1', now)).toBeNull();
      expect(await t.store.activeBan(null, 'b2', now + 10 ** 9)).toMatchObject({ room: null, until: null });
      expect((await t.store.bans(id, now)).map((b) => b.user)).toEqual(['b1']);
      expect(await t.store.unban(id, 'b1')).toBe(true);
      expect(await t.store.unban(id, 'b1')).toBe(false);
    });

    it('a direct message from a blocked user is stored hidden for the blocker', async () => {
      const { id, key } = directRoomId('da', 'db');
      await t.store.createRoom({
        id,
        kind: 'direct',
        name: '',
        topic: '',
        createdBy: 'da',
        directKey: key,
        members: [
          { user: 'da', name: 'da', role: 'member' },
          { user: 'db', name: 'db', role: 'member' },
        ],
      });
      await t.store.setBlock('da', 'db', true);
      expect(await t.store.blocksOf('da')).toEqual(['db']);
      const r = await t.store.append({ room: id, user: 'db', name: 'db', kind: 'text', text: 'psst' });
      expect(r.hiddenFor).toBe('da');
      expect((await t.store.history(id, { limit: 10 }, 'da')).at(-1)).toEqual({
        room: id,
        seq: r.message.seq,
        kind: 'hidden',
        user: 'db',
        name: 'db',
        ts: r.message.ts,
      });
      expect((await t.store.history(id, { limit: 10 }, 'db')).at(-1)!.text).toBe('psst');
      expect((await t.store.inbox('da'))[0]!.unread).toBe(0);
      await t.store.setBlock('da', 'db', false);
      expect((await t.store.append({ room: id, user: 'db', name: 'db', kind: 'text', text: 'hi' })).hiddenFor).toBeUndefined();
    });

    it('blockersIn lists the members of a room who block a user, and no one else', async () => {
      const id = await t.group('bk1', ['bk2', 'bk3']);
      await t.store.setBlock('bk2', 'bk1', true);
      await t.store.setBlock('bk3', 'bk4', true);
      await t.store.setBlock('outsider', 'bk1', true);
      expect(await t.store.blockersIn(id, 'bk1')).toEqual(['bk2']);
      expect(await t.store.blockersIn(id, 'bk2')).toEqual([]);
      await t.store.setBlock('bk3', 'bk1', true);
      expect(await t.store.blockersIn(id, 'bk1')).toEqual(['bk2', 'bk3']);
      await t.store.removeMember(id, 'bk2', 'bk2', 'bk2');
      expect(await t.store.blockersIn(id, 'bk1')).toEqual(['bk3']);
    });

    it('a ban replaces an earlier one for the same user and room', async () => {
      const id = await t.group('u1');
      const now = Date.now();
      await t.store.ban({ room: id, user: 'b1', until: now + 1000, reason: 'first', by: 'u1' });
      await t.store.ban({ room: id, user: 'b1', until: null, reason: 'second', by: 'u1' });
      expect(await t.store.bans(id, now)).toEqual([expect.objectContaining({ user: 'b1', until: null, reason: 'second' })]);
      expect(await t.store.activeBan(id, 'b1', now + 10_000)).toMatchObject({ reason: 'second' });
    });
  });
}
