// The store ports' behaviour suite, writes made through the room log (writes.ts): every
// backend runs it (see store.*.test.ts). Each case names the promise it checks, of a port
// (src/store/*.ts) or of the rules the room log applies (src/service/rules.ts).
import { describe, expect, it, beforeEach, afterEach, vi } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { directRoomId } from '../../src/service/index.js';
import { roomLogWrites, type Writes } from './writes.js';

const DAY = 86_400_000;

export function storeConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Writes;
    let n = 0;
    const rid = () => `room${++n}-${Date.now().toString(36)}`;
    beforeEach(async () => { store = roomLogWrites(await open()); });
    afterEach(async () => { await store.close(); });

    async function group(owner = 'u1', others: string[] = []) {
      const id = rid();
      await store.createRoom({
        id, kind: 'group', name: 'G', topic: '', createdBy: owner,
        members: [{ user: owner, name: owner, role: 'owner' }, ...others.map((u) => ({ user: u, name: u, role: 'member' as const }))],
      });
      return id;
    }

    it('creating a room adds its members with join messages from seq 1', async () => {
      const id = rid();
      const { room, messages } = await store.createRoom({
        id, kind: 'channel', name: 'C', topic: 't', createdBy: 'u1',
        members: [{ user: 'u1', name: 'U1', role: 'owner' }],
      });
      expect(room).toMatchObject({ id, kind: 'channel', name: 'C', topic: 't', createdBy: 'u1', lastSeq: 1 });
      expect(messages.map((m) => [m.seq, m.kind, m.user])).toEqual([[1, 'join', 'u1']]);
      expect(await store.getMember(id, 'u1')).toMatchObject({ role: 'owner', readSeq: 0 });
      expect((await store.getRoom(id))!.lastSeq).toBe(1);
      await expect(store.createRoom({ id, kind: 'group', name: 'x', topic: '', createdBy: 'u2', members: [] }))
        .rejects.toMatchObject({ code: 'conflict' });
    });

    it('direct pair keys are unique', async () => {
      const key = `a\nb-${rid()}`;
      await store.createRoom({ id: rid(), kind: 'direct', name: '', topic: '', createdBy: 'a', directKey: key, members: [] });
      await expect(store.createRoom({ id: rid(), kind: 'direct', name: '', topic: '', createdBy: 'b', directKey: key, members: [] }))
        .rejects.toMatchObject({ code: 'conflict' });
      expect((await store.findDirect(key))!.kind).toBe('direct');
    });

    it('channel names are unique whatever their case, width and spacing; private rooms may share them', async () => {
      const channel = (name: string, id = rid()) => store.createRoom({ id, kind: 'channel', name, topic: '', createdBy: 'u1', members: [] });
      const general = await channel('General');
      for (const taken of ['general', ' GENERAL ', 'Ｇｅｎｅｒａｌ']) {
        await expect(channel(taken), taken).rejects.toMatchObject({ code: 'conflict', details: { field: 'name' } });
      }
      await store.createRoom({ id: rid(), kind: 'group', name: 'General', topic: '', createdBy: 'u2', members: [] });
      const other = await channel('Random');
      await expect(store.updateRoom(other.room.id, { name: 'GENERAL' }, { user: 'u1', name: 'U1' })).rejects.toMatchObject({ code: 'conflict' });
      expect((await store.getRoom(other.room.id))!.name).toBe('Random');
      // A channel may change the case of its own name; the old name is free afterwards.
      await store.updateRoom(general.room.id, { name: 'GENERAL' }, { user: 'u1', name: 'U1' });
      await store.updateRoom(general.room.id, { name: 'Lobby' }, { user: 'u1', name: 'U1' });
      await channel('general');
      expect((await store.publicRooms(10)).map((r) => r.name).sort()).toEqual(['Lobby', 'Random', 'general']);
    });

    it('concurrent appends get gapless increasing seqs in call order', async () => {
      const id = await group('u1', ['u2']);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
        store.append({ room: id, user: i % 2 ? 'u1' : 'u2', name: 'x', kind: 'text', text: `m${i}` })));
      expect(results.map((r) => r.message.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 3));
      const h = await store.history(id, { after: 2, limit: 500 });
      expect(h.map((m) => m.text)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
      expect(await store.bounds(id)).toEqual({ first: 1, last: 202 });
    });

    it('a failing write in a batch stores nothing and does not disturb the others', async () => {
      const id = await group('u1');
      const [a, bad, c] = await Promise.allSettled([
        store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' }),
        store.append({ room: id, user: 'stranger', name: 'x', kind: 'text', text: 'b' }),
        store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'c' }),
      ]);
      expect(a.status).toBe('fulfilled');
      expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'forbidden' } });
      expect(c).toMatchObject({ status: 'fulfilled', value: { message: { seq: 3 } } });
      expect((await store.history(id, { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'a', 'c']);
    });

    it('appending to an unknown room is not_found', async () => {
      await expect(store.append({ room: 'nope', user: 'u1', name: 'x', kind: 'text', text: 'a' }))
        .rejects.toMatchObject({ code: 'not_found' });
    });

    it('a key reused by the same user returns the original message and stores nothing', async () => {
      const id = await group('u1', ['u2']);
      const first = await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a', key: 'k' });
      const again = await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'different', key: 'k' });
      expect(again).toEqual({ message: first.message, duplicate: true });
      const other = await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'b', key: 'k' });
      expect(other.duplicate).toBe(false);
      expect((await store.bounds(id)).last).toBe(other.message.seq);
    });

    it('edit, delete and reaction rules are checked inside the write', async () => {
      const id = await group('u1', ['u2']);
      const { message: m } = await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' });
      await expect(store.append({ room: id, user: 'u1', name: 'x', kind: 'edit', target: m.seq, text: 'b' })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: 999, text: 'b' })).rejects.toMatchObject({ code: 'not_found' });
      await expect(store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: 1, text: 'b' })).rejects.toMatchObject({ code: 'not_found' });
      const e = await store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: m.seq, text: 'b' });
      await expect(store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: e.message.seq, text: 'c' })).rejects.toMatchObject({ code: 'not_found' });
      const r = await store.append({ room: id, user: 'u1', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'x' } });
      expect(r.message).toMatchObject({ kind: 'reaction', target: m.seq, data: { emoji: 'x' } });
      // The owner may delete another member's message.
      await store.append({ room: id, user: 'u1', name: 'x', kind: 'delete', target: m.seq });
      await expect(store.append({ room: id, user: 'u2', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'y' } })).rejects.toMatchObject({ code: 'conflict' });
    });

    it('a moderator (server administrator) deletes in any room without being a member, and only deletes', async () => {
      const id = await group('u1', ['u2']);
      const { message: m } = await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' });
      await expect(store.append({ room: id, user: 'root', name: 'x', kind: 'delete', target: m.seq })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(store.append({ room: id, user: 'root', name: 'x', kind: 'text', text: 'b', moderator: true })).rejects.toMatchObject({ code: 'forbidden' });
      await expect(store.append({ room: 'no-such-room', user: 'root', name: 'x', kind: 'delete', target: 1, moderator: true })).rejects.toMatchObject({ code: 'not_found' });
      const d = await store.append({ room: id, user: 'root', name: 'x', kind: 'delete', target: m.seq, moderator: true });
      expect(d.message).toMatchObject({ kind: 'delete', target: m.seq, user: 'root' });
    });

    it('history pages before and after a seq, oldest first', async () => {
      const id = await group('u1');
      for (let i = 0; i < 10; i++) await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `${i}` });
      expect((await store.history(id, { after: 3, limit: 3 })).map((m) => m.seq)).toEqual([4, 5, 6]);
      expect((await store.history(id, { before: 5, limit: 3 })).map((m) => m.seq)).toEqual([2, 3, 4]);
      expect((await store.history(id, { limit: 2 })).map((m) => m.seq)).toEqual([10, 11]);
      expect(await store.getMessage(id, 5)).toMatchObject({ seq: 5, text: '3' });
      expect(await store.getMessage(id, 99)).toBeNull();
    });

    it('membership changes append join and leave messages', async () => {
      const id = await group('u1');
      const { member, message } = await store.addMember(id, 'u2', 'U2', 'member', 'u1');
      expect(member).toMatchObject({ room: id, user: 'u2', role: 'member' });
      expect(message).toMatchObject({ seq: 2, kind: 'join', user: 'u2', data: { role: 'member', by: 'u1' } });
      await expect(store.addMember(id, 'u2', 'U2', 'member', 'u1')).rejects.toMatchObject({ code: 'conflict' });
      const leave = await store.removeMember(id, 'u2', 'U2', 'u2');
      expect(leave).toMatchObject({ seq: 3, kind: 'leave', user: 'u2' });
      await expect(store.removeMember(id, 'u2', 'U2', 'u2')).rejects.toMatchObject({ code: 'not_found' });
      await expect(store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'forbidden' });
      expect((await store.members(id)).map((m) => m.user)).toEqual(['u1']);
    });

    it('read markers only move forward and never past the end; inbox counts unread', async () => {
      const id = await group('u1', ['u2']);
      for (let i = 0; i < 4; i++) await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `${i}` });
      let entry = (await store.inbox('u2')).find((e) => e.room.id === id)!;
      expect(entry).toMatchObject({ unread: 4, readSeq: 0, role: 'member', last: { text: '3' } });
      expect(await store.markRead(id, 'u2', 4)).toBe(4);
      expect(await store.markRead(id, 'u2', 2)).toBe(4);
      expect(await store.markRead(id, 'u2', 1000)).toBe(6);
      entry = (await store.inbox('u2')).find((e) => e.room.id === id)!;
      expect(entry.unread).toBe(0);
      await expect(store.markRead(id, 'stranger', 1)).rejects.toMatchObject({ code: 'forbidden' });
    });

    it('users are upserted; rooms of a user and public channels are listed', async () => {
      await store.upsertUser({ id: 'pu', name: 'P', profile: { a: 1 } });
      await store.upsertUser({ id: 'pu', name: 'P2', profile: { b: 2 } });
      expect(await store.getUser('pu')).toEqual({ id: 'pu', name: 'P2', profile: { b: 2 } });
      expect(await store.getUser('nobody')).toBeNull();
      const g = await group('lister');
      const c = rid();
      await store.createRoom({ id: c, kind: 'channel', name: 'C', topic: '', createdBy: 'lister', members: [{ user: 'lister', name: 'l', role: 'owner' }] });
      expect((await store.roomsOf('lister')).map((r) => r.room.id).sort()).toEqual([g, c].sort());
      const pub = await store.publicRooms(1000);
      expect(pub.map((r) => r.id)).toContain(c);
      expect(pub.map((r) => r.id)).not.toContain(g);
    });

    it('writes after close are refused with unavailable', async () => {
      const id = await group('u1');
      await store.close();
      await expect(store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'unavailable' });
      store = roomLogWrites(await open());
    });

    it('room settings change with an update message; deleting a room removes members and history', async () => {
      const id = await group('u1', ['u2']);
      const { room, message } = await store.updateRoom(id, { topic: 'new', access: 'whitelist', retentionCount: 10, retentionDays: 2 }, { user: 'u1', name: 'U1' });
      expect(room).toMatchObject({ topic: 'new', access: 'whitelist', retention: { count: 10, days: 2 }, lastSeq: message.seq });
      expect(message).toMatchObject({ kind: 'update', data: { topic: 'new', access: 'whitelist', retention: { count: 10, days: 2 } } });
      const cleared = await store.updateRoom(id, { retentionCount: null }, { user: 'u1', name: 'U1' });
      expect(cleared.room.retention).toEqual({ count: null, days: 2 });
      // The whitelist admits no plain member: u2 left with the change.
      expect((await store.history(id, { after: message.seq, limit: 1 }))[0]).toMatchObject({ kind: 'leave', user: 'u2' });
      expect((await store.deleteRoom(id, false)).sort()).toEqual(['u1']);
      expect(await store.getRoom(id)).toBeNull();
      expect(await store.getMember(id, 'u1')).toBeNull();
      expect(await store.history(id, { limit: 10 })).toEqual([]);
      await expect(store.deleteRoom(id, false)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('a deleted room whose history is kept still owns its id: re-creating it is a conflict, and nothing is written', async () => {
      const id = await group('u1', ['u2']);
      await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'private words' });
      expect((await store.deleteRoom(id, true)).sort()).toEqual(['u1', 'u2']);
      expect(await store.getRoom(id)).toBeNull();
      await expect(store.createRoom({ id, kind: 'group', name: 'again', topic: '', createdBy: 'u3', members: [{ user: 'u3', name: 'u3', role: 'owner' }] }))
        .rejects.toMatchObject({ code: 'conflict' });
      expect(await store.getRoom(id)).toBeNull();
      expect(await store.getMember(id, 'u3')).toBeNull();
      expect((await store.roomsOf('u3')).map((r) => r.room.id)).not.toContain(id);
      // Without kept history the id is free again.
      const other = await group('u1');
      await store.deleteRoom(other, false);
      const { room } = await store.createRoom({ id: other, kind: 'channel', name: 'new', topic: '', createdBy: 'u3', members: [{ user: 'u3', name: 'u3', role: 'owner' }] });
      expect(room.lastSeq).toBe(1);
    });

    it('a direct room re-created after its deletion with kept history continues after the kept messages', async () => {
      const id = rid();
      const key = `ka\nkb-${id}`;
      const pair = [{ user: 'ka', name: 'ka', role: 'member' as const }, { user: 'kb', name: 'kb', role: 'member' as const }];
      await store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'ka', directKey: key, members: pair });
      await store.append({ room: id, user: 'ka', name: 'ka', kind: 'text', text: 'before' });
      await store.deleteRoom(id, true);
      const { room, messages } = await store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'kb', directKey: key, members: pair });
      expect(messages.map((m) => m.seq)).toEqual([4, 5]);
      expect(room.lastSeq).toBe(5);
      expect((await store.getRoom(id))!.lastSeq).toBe(5);
      const next = await store.append({ room: id, user: 'kb', name: 'kb', kind: 'text', text: 'after' });
      expect(next.message.seq).toBe(6);
      expect((await store.history(id, { after: 0, limit: 10 })).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('roles, mutes and owner hand-over', async () => {
      const id = await group('u1', ['u2']);
      const { member } = await store.setRole(id, 'u2', 'owner', { user: 'u1', name: 'U1' });
      expect(member.role).toBe('owner');
      expect((await store.getMember(id, 'u1'))!.role).toBe('admin');
      const until = Date.now() + 60_000;
      expect((await store.setMute(id, 'u1', until, false)).mutedUntil).toBe(until);
      await expect(store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'forbidden', details: { reason: 'muted' } });
      expect((await store.setMute(id, 'u1', null, false)).mutedUntil).toBeNull();
      expect((await store.setMute(id, 'u1', null, true)).mutedUntil).toBeUndefined();
      expect((await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).duplicate).toBe(false);
      await expect(store.setMute(id, 'nobody', null, false)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('bans are in force until they expire; server-wide bans are separate', async () => {
      const id = await group('u1');
      const now = Date.now();
      await store.ban({ room: id, user: 'b1', until: now + 1000, reason: 'r', by: 'u1' });
      await store.ban({ room: null, user: 'b2', until: null, reason: '', by: 'root' });
      expect(await store.activeBan(id, 'b1', now)).toMatchObject({ room: id, user: 'b1', until: now + 1000, reason: 'r' });
      expect(await store.activeBan(id, 'b1', now + 2000)).toBeNull();
      expect(await store.activeBan(null, 'b1', now)).toBeNull();
      expect(await store.activeBan(null, 'b2', now + 10 ** 9)).toMatchObject({ room: null, until: null });
      expect((await store.bans(id, now)).map((b) => b.user)).toEqual(['b1']);
      expect(await store.unban(id, 'b1')).toBe(true);
      expect(await store.unban(id, 'b1')).toBe(false);
    });

    it('access lists decide who may be a member; owners and admins always may', async () => {
      const id = await group('u1', ['u2']);
      expect(await store.setAccess(id, 'black', ['u2', 'u3'], [])).toEqual(['u2', 'u3']);
      expect(await store.hasAccess(id, 'u2')).toBe(false);
      expect(await store.hasAccess(id, 'u4')).toBe(true);
      expect(await store.setAccess(id, 'black', [], ['u2'])).toEqual(['u3']);
      await store.updateRoom(id, { access: 'whitelist' }, { user: 'u1', name: 'U1' });
      await store.setAccess(id, 'white', ['u2'], []);
      expect(await store.hasAccess(id, 'u2')).toBe(true);
      expect(await store.hasAccess(id, 'u4')).toBe(false);
      expect(await store.hasAccess(id, 'u1')).toBe(true);
      expect(await store.accessList(id, 'white')).toEqual(['u2']);
    });

    it('a direct message from a blocked user is stored hidden for the blocker', async () => {
      const { id, key } = directRoomId('da', 'db');
      await store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'da', directKey: key, members: [
        { user: 'da', name: 'da', role: 'member' }, { user: 'db', name: 'db', role: 'member' }] });
      await store.setBlock('da', 'db', true);
      expect(await store.blocksOf('da')).toEqual(['db']);
      const r = await store.append({ room: id, user: 'db', name: 'db', kind: 'text', text: 'psst' });
      expect(r.hiddenFor).toBe('da');
      expect((await store.history(id, { limit: 10 }, 'da')).at(-1)).toEqual({ room: id, seq: r.message.seq, kind: 'hidden', user: 'db', name: 'db', ts: r.message.ts });
      expect((await store.history(id, { limit: 10 }, 'db')).at(-1)!.text).toBe('psst');
      expect((await store.inbox('da'))[0]!.unread).toBe(0);
      await store.setBlock('da', 'db', false);
      expect((await store.append({ room: id, user: 'db', name: 'db', kind: 'text', text: 'hi' })).hiddenFor).toBeUndefined();
    });

    it('retention removes messages beyond count and age; bounds move up', async () => {
      const id = await group('u1');
      await store.updateRoom(id, { retentionCount: 3 }, { user: 'u1', name: 'U1' });
      for (let i = 0; i < 6; i++) await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `m${i}` });
      const { last } = await store.bounds(id);
      const removed = await store.applyRetention(Date.now(), { count: null, days: null });
      expect(removed).toBeGreaterThanOrEqual(last - 3);
      expect(await store.bounds(id)).toEqual({ first: last - 2, last });
      const old = await group('u1');
      await store.append({ room: old, user: 'u1', name: 'x', kind: 'text', text: 'old' });
      await store.applyRetention(Date.now() + 3 * 86_400_000, { count: null, days: 1 });
      expect(await store.history(old, { limit: 10 })).toEqual([]);
      expect((await store.bounds(old)).first).toBe((await store.bounds(old)).last + 1);
    });

    it('search matches words in the given rooms only, newest first', async () => {
      const a = await group('u1');
      const b = await group('u1');
      await store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'Zebra crossing ahead' });
      await store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'another zebra' });
      await store.append({ room: b, user: 'u1', name: 'x', kind: 'text', text: 'zebra elsewhere' });
      expect((await store.search('u1', 'zebra', [a], 10)).map((m) => m.text)).toEqual(['another zebra', 'Zebra crossing ahead']);
      expect((await store.search('u1', 'zebra', [a, b], 1))).toHaveLength(1);
      expect(await store.search('u1', '***', [a], 10)).toEqual([]);
    });

    it('search ignores case and diacritics, needs every word, and finds only current versions', async () => {
      const a = await group('u1', ['u2']);
      const { message: cafe } = await store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'Un CAFÉ crème, merci' });
      await store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: 'cafe only' });
      const texts = async (q: string) => (await store.search('u2', q, [a], 10)).map((m) => m.text);
      expect(await texts('cafe creme')).toEqual(['Un CAFÉ crème, merci']);
      expect(await texts('Café')).toEqual(['cafe only', 'Un CAFÉ crème, merci']);
      expect(await texts('caf')).toEqual([]);
      expect(await texts('cafe nowhere')).toEqual([]);
      // An edit replaces what search finds for its thread; a delete removes the thread.
      const edit = await store.append({ room: a, user: 'u1', name: 'x', kind: 'edit', target: cafe.seq, text: 'un thé, merci' });
      expect(await texts('creme')).toEqual([]);
      expect(await store.search('u2', 'the merci', [a], 10)).toEqual([expect.objectContaining({ kind: 'edit', seq: edit.message.seq, target: cafe.seq })]);
      await store.append({ room: a, user: 'u1', name: 'x', kind: 'delete', target: cafe.seq });
      expect(await texts('merci')).toEqual([]);
      expect(await texts('cafe')).toEqual(['cafe only']);
    });

    it('search leaves out messages hidden for the viewer; query syntax is only words', async () => {
      const { id, key } = directRoomId('sa', 'sb');
      await store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'sa', directKey: key, members: [
        { user: 'sa', name: 'sa', role: 'member' }, { user: 'sb', name: 'sb', role: 'member' }] });
      await store.setBlock('sa', 'sb', true);
      await store.append({ room: id, user: 'sb', name: 'sb', kind: 'text', text: 'secret plans' });
      expect(await store.search('sa', 'secret', [id], 10)).toEqual([]);
      expect((await store.search('sb', 'secret', [id], 10)).map((m) => m.text)).toEqual(['secret plans']);
      expect((await store.search('sb', 'secret" OR "x* NEAR(', [id], 10))).toEqual([]);
      expect((await store.search('sb', '"plans" & !secret', [id], 10)).map((m) => m.text)).toEqual(['secret plans']);
      expect(await store.search('sb', 'secret', [], 10)).toEqual([]);
    });

    it('ping answers while open and refuses after close', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      await store.close();
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      store = roomLogWrites(await open());
    });

    it('roomCounts counts rooms by kind', async () => {
      const before = await store.roomCounts();
      await group('u1');
      await group('u1');
      await store.createRoom({ id: rid(), kind: 'channel', name: 'C', topic: '', createdBy: 'u1', members: [] });
      const after = await store.roomCounts();
      expect(after.group).toBe((before.group ?? 0) + 2);
      expect(after.channel).toBe((before.channel ?? 0) + 1);
      expect(after.direct ?? 0).toBe(before.direct ?? 0);
      for (const v of Object.values(after)) expect(Number.isInteger(v)).toBe(true);
    });

    it('a removed member can no longer write, even in the same batch', async () => {
      const id = await group('u1', ['u2']);
      const [removed, late] = await Promise.allSettled([
        store.removeMember(id, 'u2', 'u2', 'u1'),
        store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'too late' }),
      ]);
      expect(removed.status).toBe('fulfilled');
      expect(late).toMatchObject({ status: 'rejected', reason: { code: 'forbidden' } });
      expect((await store.history(id, { limit: 10 })).map((m) => m.kind)).toEqual(['join', 'join', 'leave']);
    });

    // ---- the contract, promise by promise ----------------------------------------------------

    it('a refused write stores nothing: no seq is taken, no member or row changes', async () => {
      const id = await group('u1', ['u2']);
      const before = await store.bounds(id);
      const refusals = await Promise.allSettled([
        store.createRoom({ id, kind: 'group', name: 'dup', topic: '', createdBy: 'u9', members: [{ user: 'u9', name: 'u9', role: 'owner' }] }),
        store.addMember(id, 'u2', 'u2', 'member', 'u1'),
        store.addMember('no-such-room', 'u3', 'u3', 'member', 'u1'),
        store.removeMember(id, 'u3', 'u3', 'u1'),
        store.append({ room: id, user: 'u3', name: 'x', kind: 'text', text: 'outsider' }),
        store.append({ room: id, user: 'u1', name: 'x', kind: 'edit', target: 1, text: 'join is no text' }),
        store.markRead(id, 'u3', 1),
        store.setRole(id, 'u3', 'admin', { user: 'u1', name: 'U1' }),
        store.updateRoom('no-such-room', { topic: 'x' }, { user: 'u1', name: 'U1' }),
        store.setMute(id, 'u3', null, false),
      ]);
      expect(refusals.map((r) => r.status)).toEqual(Array(refusals.length).fill('rejected'));
      expect(refusals.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(
        ['conflict', 'conflict', 'not_found', 'not_found', 'forbidden', 'not_found', 'forbidden', 'not_found', 'not_found', 'not_found']);
      expect(await store.bounds(id)).toEqual(before);
      expect((await store.members(id)).map((m) => m.user).sort()).toEqual(['u1', 'u2']);
      expect(await store.getRoom('no-such-room')).toBeNull();
      expect(await store.getMember(id, 'u9')).toBeNull();
      // The next write takes the next seq: nothing was allocated by the refusals.
      expect((await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'next' })).message.seq).toBe(before.last + 1);
    });

    it('every kind of write that appends a message takes the next seq, gapless, in call order', async () => {
      const a = await group('u1', ['u2']);
      const b = await group('u1');
      const calls: Array<Promise<number>> = [];
      const seqOf = (p: Promise<{ seq: number } | { message: { seq: number } }>) => p.then((r) => ('seq' in r ? r.seq : r.message.seq));
      for (let i = 0; i < 5; i++) {
        calls.push(seqOf(store.append({ room: a, user: 'u1', name: 'x', kind: 'text', text: `a${i}` })));
        calls.push(seqOf(store.addMember(a, `m${i}`, `m${i}`, 'member', 'u1')));
        calls.push(seqOf(store.append({ room: b, user: 'u1', name: 'x', kind: 'text', text: `b${i}` })));
        calls.push(seqOf(store.updateRoom(a, { topic: `t${i}` }, { user: 'u1', name: 'U1' })));
        calls.push(seqOf(store.setRole(a, `m${i}`, 'admin', { user: 'u1', name: 'U1' })));
        calls.push(seqOf(store.removeMember(a, `m${i}`, `m${i}`, 'u1')));
      }
      const seqs = await Promise.all(calls);
      const inA = seqs.filter((_, i) => i % 6 !== 2);
      const inB = seqs.filter((_, i) => i % 6 === 2);
      expect(inA).toEqual(Array.from({ length: 25 }, (_, i) => i + 3));
      expect(inB).toEqual(Array.from({ length: 5 }, (_, i) => i + 2));
      expect((await store.history(a, { after: 0, limit: 100 })).map((m) => m.seq)).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
      expect(await store.bounds(a)).toEqual({ first: 1, last: 27 });
      expect((await store.getRoom(a))!.lastSeq).toBe(27);
    });

    it('reads see every write whose promise has resolved', async () => {
      const id = await group('u1');
      expect((await store.getRoom(id))!.lastSeq).toBe(1);
      await store.addMember(id, 'u2', 'u2', 'member', 'u1');
      expect(await store.getMember(id, 'u2')).toMatchObject({ role: 'member', joinSeq: 2 });
      expect((await store.roomsOf('u2')).map((r) => r.room.id)).toEqual([id]);
      expect((await store.roomsOf('u2'))[0]!.room.lastSeq).toBe(2);
      const { message } = await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'seen' });
      expect(await store.getMessage(id, message.seq)).toMatchObject({ text: 'seen' });
      expect((await store.history(id, { limit: 1 }))[0]!.seq).toBe(message.seq);
      expect((await store.bounds(id)).last).toBe(message.seq);
      expect((await store.inbox('u2'))[0]).toMatchObject({ unread: 1, last: { seq: message.seq } });
      await store.markRead(id, 'u2', message.seq);
      expect((await store.inbox('u2'))[0]).toMatchObject({ unread: 0, readSeq: message.seq });
      await store.setBlock('u2', 'u1', true);
      expect(await store.blocksOf('u2')).toEqual(['u1']);
      await store.ban({ room: id, user: 'u5', until: null, reason: '', by: 'u1' });
      expect(await store.activeBan(id, 'u5', Date.now())).not.toBeNull();
      await store.updateRoom(id, { name: 'renamed' }, { user: 'u1', name: 'U1' });
      expect((await store.getRoom(id))!.name).toBe('renamed');
    });

    it('calls on a closed store reject with unavailable, reads included, and never throw', async () => {
      const id = await group('u1');
      await store.close();
      const calls: Array<() => Promise<unknown>> = [
        () => store.getRoom(id), () => store.getUser('u1'), () => store.getMember(id, 'u1'), () => store.members(id),
        () => store.roomsOf('u1'), () => store.history(id, { limit: 5 }), () => store.bounds(id), () => store.inbox('u1'),
        () => store.search('u1', 'word', [id], 5), () => store.publicRooms(10), () => store.blocksOf('u1'),
        () => store.markRead(id, 'u1', 1), () => store.addMember(id, 'u2', 'u2', 'member', 'u1'),
      ];
      for (const call of calls) {
        let p: Promise<unknown>;
        try { p = call(); } catch (err) { throw new Error(`threw instead of rejecting: ${String(err)}`, { cause: err }); }
        await expect(p).rejects.toMatchObject({ code: 'unavailable' });
      }
      store = roomLogWrites(await open());
    });

    it('close settles the writes already called before it closes', async () => {
      const id = await group('u1');
      const pending = Array.from({ length: 5 }, (_, i) => store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: `w${i}` }));
      await store.close();
      const results = await Promise.all(pending);
      expect(results.map((r) => r.message.seq)).toEqual([2, 3, 4, 5, 6]);
      store = roomLogWrites(await open());
    });

    it('public channels come by id, at most limit, after the given id', async () => {
      const tag = rid();
      const ids = ['c', 'a', 'b'].map((x) => `${tag}-${x}`);
      for (const id of ids) await store.createRoom({ id, kind: 'channel', name: id, topic: '', createdBy: 'u1', members: [] });
      await store.createRoom({ id: `${tag}-ab`, kind: 'group', name: 'g', topic: '', createdBy: 'u1', members: [] });
      const page1 = await store.publicRooms(2, `${tag}-`);
      expect(page1.map((r) => r.id)).toEqual([`${tag}-a`, `${tag}-b`]);
      const page2 = await store.publicRooms(2, `${tag}-b`);
      expect(page2.map((r) => r.id)[0]).toBe(`${tag}-c`);
    });

    it('a plain member cannot delete another member\'s message; a room admin can', async () => {
      const id = await group('u1', ['u2', 'u3']);
      const { message: m } = await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'mine' });
      await expect(store.append({ room: id, user: 'u3', name: 'x', kind: 'delete', target: m.seq })).rejects.toMatchObject({ code: 'forbidden' });
      await store.setRole(id, 'u3', 'admin', { user: 'u1', name: 'U1' });
      expect((await store.append({ room: id, user: 'u3', name: 'x', kind: 'delete', target: m.seq })).message).toMatchObject({ kind: 'delete', target: m.seq });
    });

    it('a message deleted earlier in the same batch can no longer be edited or reacted to', async () => {
      const id = await group('u1', ['u2']);
      const { message: m } = await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'soon gone' });
      const [del, edit, react] = await Promise.allSettled([
        store.append({ room: id, user: 'u2', name: 'x', kind: 'delete', target: m.seq }),
        store.append({ room: id, user: 'u2', name: 'x', kind: 'edit', target: m.seq, text: 'too late' }),
        store.append({ room: id, user: 'u1', name: 'x', kind: 'reaction', target: m.seq, data: { emoji: 'x' } }),
      ]);
      expect(del.status).toBe('fulfilled');
      expect(edit).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
      expect(react).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
    });

    it('a message posted by the server needs no membership and is marked as the server\'s', async () => {
      const id = await group('u1');
      const { message } = await store.append({ room: id, user: 'system', name: 'System', kind: 'text', text: 'maintenance at noon', system: true });
      expect(message).toMatchObject({ user: 'system', text: 'maintenance at noon', system: true });
      expect(await store.getMessage(id, message.seq)).toMatchObject({ system: true });
      expect((await store.history(id, { limit: 1 }))[0]).toMatchObject({ seq: message.seq, system: true });
      expect((await store.inbox('u1'))[0]!.last).toMatchObject({ seq: message.seq, system: true });
      // The same author id without the mark is an ordinary message, as clients must show it.
      await store.addMember(id, 'system', 'system', 'member', 'system');
      const { message: forged } = await store.append({ room: id, user: 'system', name: 'System', kind: 'text', text: 'forged' });
      expect(forged.system).toBeUndefined();
      expect((await store.getMessage(id, forged.seq))!.system).toBeUndefined();
      await expect(store.append({ room: 'no-such-room', user: 'system', name: 'System', kind: 'text', text: 'x', system: true }))
        .rejects.toMatchObject({ code: 'not_found' });
    });

    it('countRooms counts the channels and groups a user belongs to and the existing ones it created, not direct rooms', async () => {
      expect(await store.countRooms('cr1')).toEqual({ member: 0, created: 0 });
      const g = await group('cr1', ['cr2']);
      await group('cr2', ['cr1']);
      await store.createRoom({ id: rid(), kind: 'channel', name: 'C', topic: '', createdBy: 'cr1', members: [] });
      await store.createRoom({ id: rid(), kind: 'direct', name: '', topic: '', createdBy: 'cr1', directKey: `cr1\ncr2-${rid()}`,
        members: [{ user: 'cr1', name: 'cr1', role: 'member' }, { user: 'cr2', name: 'cr2', role: 'member' }] });
      expect(await store.countRooms('cr1')).toEqual({ member: 2, created: 2 });
      expect(await store.countRooms('cr2')).toEqual({ member: 2, created: 1 });
      await store.deleteRoom(g, false);
      expect(await store.countRooms('cr1')).toEqual({ member: 1, created: 1 });
    });

    it('blockersIn lists the members of a room who block a user, and no one else', async () => {
      const id = await group('bk1', ['bk2', 'bk3']);
      await store.setBlock('bk2', 'bk1', true);
      await store.setBlock('bk3', 'bk4', true);
      await store.setBlock('outsider', 'bk1', true);
      expect(await store.blockersIn(id, 'bk1')).toEqual(['bk2']);
      expect(await store.blockersIn(id, 'bk2')).toEqual([]);
      await store.setBlock('bk3', 'bk1', true);
      expect(await store.blockersIn(id, 'bk1')).toEqual(['bk2', 'bk3']);
      await store.removeMember(id, 'bk2', 'bk2', 'bk2');
      expect(await store.blockersIn(id, 'bk1')).toEqual(['bk3']);
    });

    it('a hidden message reads as a placeholder through getMessage too', async () => {
      const { id, key } = directRoomId('ha', 'hb');
      await store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'ha', directKey: key, members: [
        { user: 'ha', name: 'ha', role: 'member' }, { user: 'hb', name: 'hb', role: 'member' }] });
      await store.setBlock('ha', 'hb', true);
      const r = await store.append({ room: id, user: 'hb', name: 'hb', kind: 'text', text: 'psst' });
      expect(await store.getMessage(id, r.message.seq, 'ha')).toMatchObject({ kind: 'hidden' });
      expect((await store.getMessage(id, r.message.seq, 'ha'))!.text).toBeUndefined();
      expect(await store.getMessage(id, r.message.seq, 'hb')).toMatchObject({ kind: 'text', text: 'psst' });
    });

    it('bounds of a room with nothing stored: first is last + 1', async () => {
      expect(await store.bounds('never-created')).toEqual({ first: 1, last: 0 });
    });

    it('the inbox lists the most recently active room first', async () => {
      const older = await group('ib');
      const newer = await group('ib');
      await store.append({ room: newer, user: 'ib', name: 'x', kind: 'text', text: 'first' });
      await new Promise((r) => setTimeout(r, 5));
      await store.append({ room: older, user: 'ib', name: 'x', kind: 'text', text: 'latest' });
      expect((await store.inbox('ib')).map((e) => e.room.id)).toEqual([older, newer]);
    });

    it('deleting a room removes its access lists and bans too; keeping its history keeps only the messages', async () => {
      const id = await group('u1', ['u2']);
      await store.setAccess(id, 'black', ['x1'], []);
      await store.ban({ room: id, user: 'x2', until: null, reason: '', by: 'u1' });
      await store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'kept' });
      await store.deleteRoom(id, true);
      expect(await store.accessList(id, 'black')).toEqual([]);
      expect(await store.activeBan(id, 'x2', Date.now())).toBeNull();
      expect(await store.members(id)).toEqual([]);
      expect((await store.history(id, { after: 0, limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'join', 'kept']);
      expect((await store.roomsOf('u2')).map((r) => r.room.id)).not.toContain(id);
    });

    it('setting a role appends an update message naming the user and role; admins always have access', async () => {
      const id = await group('u1', ['u2', 'u3']);
      const { message } = await store.setRole(id, 'u2', 'admin', { user: 'u1', name: 'U1' });
      expect(message).toMatchObject({ kind: 'update', user: 'u1', data: { user: 'u2', role: 'admin' } });
      await store.updateRoom(id, { access: 'whitelist' }, { user: 'u1', name: 'U1' });
      expect(await store.hasAccess(id, 'u3')).toBe(false);
      expect(await store.hasAccess(id, 'u2')).toBe(true);
      expect((await store.members(id)).map((m) => m.user).sort()).toEqual(['u1', 'u2']);
    });

    it('a ban replaces an earlier one for the same user and room', async () => {
      const id = await group('u1');
      const now = Date.now();
      await store.ban({ room: id, user: 'b1', until: now + 1000, reason: 'first', by: 'u1' });
      await store.ban({ room: id, user: 'b1', until: null, reason: 'second', by: 'u1' });
      expect(await store.bans(id, now)).toEqual([expect.objectContaining({ user: 'b1', until: null, reason: 'second' })]);
      expect(await store.activeBan(id, 'b1', now + 10_000)).toMatchObject({ reason: 'second' });
    });

    it('retention: a room\'s own limit wins over the default, which applies to rooms without one; the count removed is exact', async () => {
      const own = await group('u1');
      const dflt = await group('u1');
      await store.updateRoom(own, { retentionCount: 5 }, { user: 'u1', name: 'U1' });
      for (let i = 0; i < 10; i++) {
        await store.append({ room: own, user: 'u1', name: 'x', kind: 'text', text: `o${i}` });
        await store.append({ room: dflt, user: 'u1', name: 'x', kind: 'text', text: `d${i}` });
      }
      // own: 12 messages (join, update, 10 texts), keeps 5; dflt: 11 messages, keeps 2.
      const removed = await store.applyRetention(Date.now(), { count: 2, days: null });
      expect(await store.bounds(own)).toEqual({ first: 8, last: 12 });
      expect(await store.bounds(dflt)).toEqual({ first: 10, last: 11 });
      expect(removed).toBeGreaterThanOrEqual(7 + 9);
      expect(await store.applyRetention(Date.now(), { count: 2, days: null })).toBe(0);
    });

    it('retention by age cuts a prefix in seq order: a late-stamped message never leaves a hole', async () => {
      const now = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(now - 3 * DAY);
        const id = await group('u1');
        await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'old 1' });
        await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'old 2' });
        vi.setSystemTime(now);
        await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'new' });
        // Stored after "new" but stamped three days earlier (a clock stepped back).
        vi.setSystemTime(now - 3 * DAY);
        await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'late' });
        vi.setSystemTime(now);
        await store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'newest' });
        expect(await store.applyRetention(now, { count: null, days: 1 })).toBe(3);
        expect(await store.bounds(id)).toEqual({ first: 4, last: 6 });
        expect((await store.history(id, { after: 0, limit: 10 })).map((m) => m.text)).toEqual(['new', 'late', 'newest']);
      } finally {
        vi.useRealTimers();
      }
    });
  });
}
