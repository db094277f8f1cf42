// Conformance of LogStore (src/store/log.ts) and the rules the room log applies to each write (src/service/rules.ts): every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { directRoomId } from '../../../src/service/index.js';
import { storeFixture } from './fixture.js';

export function logConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, message log: ${name}`, () => {
    const t = storeFixture(open);

    it('concurrent appends get gapless increasing seqs in call order', async () => {
      const id = await t.group('u1', ['u2']);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => t.store.append({ room: id, user: i % 2 ? 'u1' : 'u2', name: 'x', kind: 'text', text: `m${i}` })),
      );
      expect(results.map((r) => r.message.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 3));
      const h = await t.store.history(id, { after: 2, limit: 500 });
      expect(h.map((m) => m.text)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
      expect(await t.store.bounds(id)).toEqual({ first: 1, last: 202 });
    });

    it('a failing write in a batch stores nothing and does not disturb the others', async () => {
      const id = await t.group('u1');
      const [a, bad, c] = await Promise.allSettled([
        t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' }),
        t.store.append({ room: id, user: 'stranger', name: 'x', kind: 'text', text: 'b' }),
        t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'c' }),
      ]);
      expect(a.status).toBe('fulfilled');
      expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'forbidden' } });
      expect(c).toMatchObject({ status: 'fulfilled', value: { message: { seq: 3 } } });
      expect((await t.store.history(id, { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'a', 'c']);
    });

    it('appending to an unknown room is not_found', async () => {
      await expect(t.store.append({ room: 'nope', user: 'u1', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'not_found' });
    });

    it('a key reused by the same user returns the original message and stores nothing', async () => {
      const id = await t.group('u1', ['u2']);
      const first = await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a', key: 'k' });
      const again = await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'different', key: 'k' });
      expect(again).toEqual({ message: first.message, duplicate: true });
      const other = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'b', key: 'k' });
      expect(other.duplicate).toBe(false);
      expect((await t.store.bounds(id)).last).toBe(other.message.seq);
    });

    it('edit, delete and reaction rules are checked inside the write', async () => {
      const id = await t.group('u1', ['u2']);
      const { message: m } = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' });
      await expect(t.store.append({ room: id, user: 'u1', name: 'x', kind: 'edit', target: m.seq, text: 'b' })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(t.store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: 999, text: 'b' })).rejects.toMatchObject({ code: 'not_found' });
      await expect(t.store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: 1, text: 'b' })).rejects.toMatchObject({ code: 'not_found' });
      const e = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: m.seq, text: 'b' });
      await expect(t.store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: e.message.seq, text: 'c' })).rejects.toMatchObject({
        code: 'not_found',
      });
      const r = await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'x' } });
      expect(r.message).toMatchObject({ kind: 'reaction', target: m.seq, data: { emoji: 'x' } });
      // The owner may delete another member's message.
      await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'delete', target: m.seq });
      await expect(t.store.append({ room: id, user: 'u2', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'y' } })).rejects.toMatchObject({
        code: 'conflict',
      });
    });

    it('a moderator (server administrator) deletes in any room without being a member, and only deletes', async () => {
      const id = await t.group('u1', ['u2']);
      const { message: m } = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' });
      await expect(t.store.append({ room: id, user: 'root', name: 'x', kind: 'delete', target: m.seq })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(t.store.append({ room: id, user: 'root', name: 'x', kind: 'text', text: 'b', moderator: true })).rejects.toMatchObject({
        code: 'forbidden',
      });
      await expect(t.store.append({ room: 'no-such-room', user: 'root', name: 'x', kind: 'delete', target: 1, moderator: true })).rejects.toMatchObject({
        code: 'not_found',
      });
      const d = await t.store.append({ room: id, user: 'root', name: 'x', kind: 'delete', target: m.seq, moderator: true });
      expect(d.message).toMatchObject({ kind: 'delete', target: m.seq, user: 'root' });
    });

    it('history pages before and after a seq, oldest first', async () => {
      const id = await t.group('u1');
      for (let i = 0; i < 10; i++) await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `${i}` });
      expect((await t.store.history(id, { after: 3, limit: 3 })).map((m) => m.seq)).toEqual([4, 5, 6]);
      expect((await t.store.history(id, { before: 5, limit: 3 })).map((m) => m.seq)).toEqual([2, 3, 4]);
      expect((await t.store.history(id, { limit: 2 })).map((m) => m.seq)).toEqual([10, 11]);
      expect(await t.store.getMessage(id, 5)).toMatchObject({ seq: 5, text: '3' });
      expect(await t.store.getMessage(id, 99)).toBeNull();
    });

    it('a removed member can no longer write, even in the same batch', async () => {
      const id = await t.group('u1', ['u2']);
      const [removed, late] = await Promise.allSettled([
        t.store.removeMember(id, 'u2', 'u2', 'u1'),
        t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'too late' }),
      ]);
      expect(removed.status).toBe('fulfilled');
      expect(late).toMatchObject({ status: 'rejected', reason: { code: 'forbidden' } });
      expect((await t.store.history(id, { limit: 10 })).map((m) => m.kind)).toEqual(['join', 'join', 'leave']);
    });

    // ---- the contract, promise by promise ----------------------------------------------------

    it('a refused write stores nothing: no seq is taken, no member or row changes', async () => {
      const id = await t.group('u1', ['u2']);
      const before = await t.store.bounds(id);
      const refusals = await Promise.allSettled([
        t.store.createRoom({ id, kind: 'group', name: 'dup', topic: '', createdBy: 'u9', members: [{ user: 'u9', name: 'u9', role: 'owner' }] }),
        t.store.addMember(id, 'u2', 'u2', 'member', 'u1'),
        t.store.addMember('no-such-room', 'u3', 'u3', 'member', 'u1'),
        t.store.removeMember(id, 'u3', 'u3', 'u1'),
        t.store.append({ room: id, user: 'u3', name: 'x', kind: 'text', text: 'outsider' }),
        t.store.append({ room: id, user: 'u1', name: 'x', kind: 'edit', target: 1, text: 'join is no text' }),
        t.store.markRead(id, 'u3', 1),
        t.store.setRole(id, 'u3', 'admin', { user: 'u1', name: 'U1' }),
        t.store.updateRoom('no-such-room', { topic: 'x' }, { user: 'u1', name: 'U1' }),
        t.store.setMute(id, 'u3', null, false),
      ]);
      expect(refusals.map((r) => r.status)).toEqual(Array(refusals.length).fill('rejected'));
      expect(refusals.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual([
        'conflict',
        'conflict',
        'not_found',
        'not_found',
        'forbidden',
        'not_found',
        'forbidden',
        'not_found',
        'not_found',
        'not_found',
      ]);
      expect(await t.store.bounds(id)).toEqual(before);
      expect((await t.store.members(id)).map((m) => m.user).sort()).toEqual(['u1', 'u2']);
      expect(await t.store.getRoom('no-such-room')).toBeNull();
      expect(await t.store.getMember(id, 'u9')).toBeNull();
      // The next write takes the next seq: nothing was allocated by the refusals.
      expect((await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'next' })).message.seq).toBe(before.last + 1);
    });

    it('every kind of write that appends a message takes the next seq, gapless, in call order', async () => {
      const a = await t.group('u1', ['u2']);
      const b = await t.group('u1');
      const calls: Array<Promise<number>> = [];
      const seqOf = (p: Promise<{ seq: number } | { message: { seq: number } }>) => p.then((r) => ('seq' in r ? r.seq : r.message.seq));
      for (let i = 0; i < 5; i++) {
        calls.push(seqOf(t.store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: `a${i}` })));
        calls.push(seqOf(t.store.addMember(a, `m${i}`, `m${i}`, 'member', 'u1')));
        calls.push(seqOf(t.store.append({ room: b, user: 'u1', name: 'x', kind: 'text', text: `b${i}` })));
        calls.push(seqOf(t.store.updateRoom(a, { topic: `t${i}` }, { user: 'u1', name: 'U1' })));
        calls.push(seqOf(t.store.setRole(a, `m${i}`, 'admin', { user: 'u1', name: 'U1' })));
        calls.push(seqOf(t.store.removeMember(a, `m${i}`, `m${i}`, 'u1')));
      }
      const seqs = await Promise.all(calls);
      const inA = seqs.filter((_, i) => i % 6 !== 2);
      const inB = seqs.filter((_, i) => i % 6 === 2);
      expect(inA).toEqual(Array.from({ length: 25 }, (_, i) => i + 3));
      expect(inB).toEqual(Array.from({ length: 5 }, (_, i) => i + 2));
      expect((await t.store.history(a, { after: 0, limit: 100 })).map((m) => m.seq)).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
      expect(await t.store.bounds(a)).toEqual({ first: 1, last: 27 });
      expect((await t.store.getRoom(a))!.lastSeq).toBe(27);
    });

    it('reads see every write whose promise has resolved', async () => {
      const id = await t.group('u1');
      expect((await t.store.getRoom(id))!.lastSeq).toBe(1);
      await t.store.addMember(id, 'u2', 'u2', 'member', 'u1');
      expect(await t.store.getMember(id, 'u2')).toMatchObject({ role: 'member', joinSeq: 2 });
      expect((await t.store.roomsOf('u2')).map((r) => r.room.id)).toEqual([id]);
      expect((await t.store.roomsOf('u2'))[0]!.room.lastSeq).toBe(2);
      const { message } = await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'seen' });
      expect(await t.store.getMessage(id, message.seq)).toMatchObject({ text: 'seen' });
      expect((await t.store.history(id, { limit: 1 }))[0]!.seq).toBe(message.seq);
      expect((await t.store.bounds(id)).last).toBe(message.seq);
      expect((await t.store.inbox('u2'))[0]).toMatchObject({ unread: 1, last: { seq: message.seq } });
      await t.store.markRead(id, 'u2', message.seq);
      expect((await t.store.inbox('u2'))[0]).toMatchObject({ unread: 0, readSeq: message.seq });
      await t.store.setBlock('u2', 'u1', true);
      expect(await t.store.blocksOf('u2')).toEqual(['u1']);
      await t.store.ban({ room: id, user: 'u5', until: null, reason: '', by: 'u1' });
      expect(await t.store.activeBan(id, 'u5', Date.now())).not.toBeNull();
      await t.store.updateRoom(id, { name: 'renamed' }, { user: 'u1', name: 'U1' });
      expect((await t.store.getRoom(id))!.name).toBe('renamed');
    });

    it("a plain member cannot delete another member's message; a room admin can", async () => {
      const id = await t.group('u1', ['u2', 'u3']);
      const { message: m } = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'mine' });
      await expect(t.store.append({ room: id, user: 'u3', name: 'x', kind: 'delete', target: m.seq })).rejects.toMatchObject({ code: 'forbidden' });
      await t.store.setRole(id, 'u3', 'admin', { user: 'u1', name: 'U1' });
      expect((await t.store.append({ room: id, user: 'u3', name: 'x', kind: 'delete', target: m.seq })).message).toMatchObject({
        kind: 'delete',
        target: m.seq,
      });
    });

    it('a message deleted earlier in the same batch can no longer be edited or reacted to', async () => {
      const id = await t.group('u1', ['u2']);
      const { message: m } = await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'soon gone' });
      const [del, edit, react] = await Promise.allSettled([
        t.store.append({ room: id, user: 'u2', name: 'x', kind: 'delete', target: m.seq }),
        t.store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: m.seq, text: 'too late' }),
        t.store.append({ room: id, user: 'u1', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'x' } }),
      ]);
      expect(del.status).toBe('fulfilled');
      expect(edit).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
      expect(react).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
    });

    it("a message posted by the server needs no membership and is marked as the server's", async () => {
      const id = await t.group('u1');
      const { message } = await t.store.append({ room: id, user: 'system', name: 'System', kind: 'text', text: 'maintenance at noon', system: true });
      expect(message).toMatchObject({ user: 'system', text: 'maintenance at noon', system: true });
      expect(await t.store.getMessage(id, message.seq)).toMatchObject({ system: true });
      expect((await t.store.history(id, { limit: 1 }))[0]).toMatchObject({ seq: message.seq, system: true });
      expect((await t.store.inbox('u1'))[0]!.last).toMatchObject({ seq: message.seq, system: true });
      // The same author id without the mark is an ordinary message, as clients must show it.
      await t.store.addMember(id, 'system', 'system', 'member', 'system');
      const { message: forged } = await t.store.append({ room: id, user: 'system', name: 'System', kind: 'text', text: 'forged' });
      expect(forged.system).toBeUndefined();
      expect((await t.store.getMessage(id, forged.seq))!.system).toBeUndefined();
      await expect(t.store.append({ room: 'no-such-room', user: 'system', name: 'System', kind: 'text', text: 'x', system: true })).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it('a hidden message reads as a placeholder through getMessage too', async () => {
      const { id, key } = directRoomId('ha', 'hb');
      await t.store.createRoom({
        id,
        kind: 'direct',
        name: '',
        topic: '',
        createdBy: 'ha',
        directKey: key,
        members: [
          { user: 'ha', name: 'ha', role: 'member' },
          { user: 'hb', name: 'hb', role: 'member' },
        ],
      });
      await t.store.setBlock('ha', 'hb', true);
      const r = await t.store.append({ room: id, user: 'hb', name: 'hb', kind: 'text', text: 'psst' });
      expect(await t.store.getMessage(id, r.message.seq, 'ha')).toMatchObject({ kind: 'hidden' });
      expect((await t.store.getMessage(id, r.message.seq, 'ha'))!.text).toBeUndefined();
      expect(await t.store.getMessage(id, r.message.seq, 'hb')).toMatchObject({ kind: 'text', text: 'psst' });
    });

    it('bounds of a room with nothing stored: first is last + 1', async () => {
      expect(await t.store.bounds('never-created')).toEqual({ first: 1, last: 0 });
    });
  });
}
