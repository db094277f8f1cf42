// Conformance of RoomStore (src/store/rooms.ts): rooms, members, roles, access lists, direct pairs and channel names: every backend runs it (test/conformance/store.ts composes the ports).
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { storeFixture } from './fixture.js';

export function roomsConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance, rooms and members: ${name}`, () => {
    const t = storeFixture(open);

    it('creating a room adds its members with join messages from seq 1', async () => {
      const id = t.rid();
      const { room, messages } = await t.store.createRoom({
        id,
        kind: 'channel',
        name: 'C',
        topic: 't',
        createdBy: 'u1',
        members: [{ user: 'u1', name: 'U1', role: 'owner' }],
      });
      expect(room).toMatchObject({ id, kind: 'channel', name: 'C', topic: 't', createdBy: 'u1', lastSeq: 1 });
      expect(messages.map((m) => [m.seq, m.kind, m.user])).toEqual([[1, 'join', 'u1']]);
      expect(await t.store.getMember(id, 'u1')).toMatchObject({ role: 'owner', readSeq: 0 });
      expect((await t.store.getRoom(id))!.lastSeq).toBe(1);
      await expect(t.store.createRoom({ id, kind: 'group', name: 'x', topic: '', createdBy: 'u2', members: [] })).rejects.toMatchObject({ code: 'conflict' });
    });

    it('direct pair keys are unique', async () => {
      const key = `a\nb-${t.rid()}`;
      await t.store.createRoom({ id: t.rid(), kind: 'direct', name: '', topic: '', createdBy: 'a', directKey: key, members: [] });
      await expect(t.store.createRoom({ id: t.rid(), kind: 'direct', name: '', topic: '', createdBy: 'b', directKey: key, members: [] })).rejects.toMatchObject(
        { code: 'conflict' },
      );
      expect((await t.store.findDirect(key))!.kind).toBe('direct');
    });

    it('channel names are unique whatever their case, width and spacing; private rooms may share them', async () => {
      const channel = (name: string, id = t.rid()) => t.store.createRoom({ id, kind: 'channel', name, topic: '', createdBy: 'u1', members: [] });
      const general = await channel('General');
      for (const taken of ['general', ' GENERAL ', 'Ｇｅｎｅｒａｌ']) {
        await expect(channel(taken), taken).rejects.toMatchObject({ code: 'conflict', details: { field: 'name' } });
      }
      await t.store.createRoom({ id: t.rid(), kind: 'group', name: 'General', topic: '', createdBy: 'u2', members: [] });
      const other = await channel('Random');
      await expect(t.store.updateRoom(other.room.id, { name: 'GENERAL' }, { user: 'u1', name: 'U1' })).rejects.toMatchObject({ code: 'conflict' });
      expect((await t.store.getRoom(other.room.id))!.name).toBe('Random');
      // A channel may change the case of its own name; the old name is free afterwards.
      await t.store.updateRoom(general.room.id, { name: 'GENERAL' }, { user: 'u1', name: 'U1' });
      await t.store.updateRoom(general.room.id, { name: 'Lobby' }, { user: 'u1', name: 'U1' });
      await channel('general');
      expect((await t.store.publicRooms(10)).map((r) => r.name).sort()).toEqual(['Lobby', 'Random', 'general']);
    });

    it('membership changes append join and leave messages', async () => {
      const id = await t.group('u1');
      const { member, message } = await t.store.addMember(id, 'u2', 'U2', 'member', 'u1');
      expect(member).toMatchObject({ room: id, user: 'u2', role: 'member' });
      expect(message).toMatchObject({ seq: 2, kind: 'join', user: 'u2', data: { role: 'member', by: 'u1' } });
      await expect(t.store.addMember(id, 'u2', 'U2', 'member', 'u1')).rejects.toMatchObject({ code: 'conflict' });
      const leave = await t.store.removeMember(id, 'u2', 'U2', 'u2');
      expect(leave).toMatchObject({ seq: 3, kind: 'leave', user: 'u2' });
      await expect(t.store.removeMember(id, 'u2', 'U2', 'u2')).rejects.toMatchObject({ code: 'not_found' });
      await expect(t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({ code: 'forbidden' });
      expect((await t.store.members(id)).map((m) => m.user)).toEqual(['u1']);
    });

    it('room settings change with an update message; deleting a room removes members and history', async () => {
      const id = await t.group('u1', ['u2']);
      const { room, message } = await t.store.updateRoom(
        id,
        { topic: 'new', access: 'whitelist', retentionCount: 10, retentionDays: 2 },
        { user: 'u1', name: 'U1' },
      );
      expect(room).toMatchObject({ topic: 'new', access: 'whitelist', retention: { count: 10, days: 2 }, lastSeq: message.seq });
      expect(message).toMatchObject({ kind: 'update', data: { topic: 'new', access: 'whitelist', retention: { count: 10, days: 2 } } });
      const cleared = await t.store.updateRoom(id, { retentionCount: null }, { user: 'u1', name: 'U1' });
      expect(cleared.room.retention).toEqual({ count: null, days: 2 });
      // The whitelist admits no plain member: u2 left with the change.
      expect((await t.store.history(id, { after: message.seq, limit: 1 }))[0]).toMatchObject({ kind: 'leave', user: 'u2' });
      expect((await t.store.deleteRoom(id, false)).sort()).toEqual(['u1']);
      expect(await t.store.getRoom(id)).toBeNull();
      expect(await t.store.getMember(id, 'u1')).toBeNull();
      expect(await t.store.history(id, { limit: 10 })).toEqual([]);
      await expect(t.store.deleteRoom(id, false)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('a deleted room whose history is kept still owns its id: re-creating it is a conflict, and nothing is written', async () => {
      const id = await t.group('u1', ['u2']);
      await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'private words' });
      expect((await t.store.deleteRoom(id, true)).sort()).toEqual(['u1', 'u2']);
      expect(await t.store.getRoom(id)).toBeNull();
      await expect(
        t.store.createRoom({ id, kind: 'group', name: 'again', topic: '', createdBy: 'u3', members: [{ user: 'u3', name: 'u3', role: 'owner' }] }),
      ).rejects.toMatchObject({ code: 'conflict' });
      expect(await t.store.getRoom(id)).toBeNull();
      expect(await t.store.getMember(id, 'u3')).toBeNull();
      expect((await t.store.roomsOf('u3')).map((r) => r.room.id)).not.toContain(id);
      // Without kept history the id is free again.
      const other = await t.group('u1');
      await t.store.deleteRoom(other, false);
      const { room } = await t.store.createRoom({
        id: other,
        kind: 'channel',
        name: 'new',
        topic: '',
        createdBy: 'u3',
        members: [{ user: 'u3', name: 'u3', role: 'owner' }],
      });
      expect(room.lastSeq).toBe(1);
    });

    it('a direct room re-created after its deletion with kept history continues after the kept messages', async () => {
      const id = t.rid();
      const key = `ka\nkb-${id}`;
      const pair = [
        { user: 'ka', name: 'ka', role: 'member' as const },
        { user: 'kb', name: 'kb', role: 'member' as const },
      ];
      await t.store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'ka', directKey: key, members: pair });
      await t.store.append({ room: id, user: 'ka', name: 'ka', kind: 'text', text: 'before' });
      await t.store.deleteRoom(id, true);
      const { room, messages } = await t.store.createRoom({ id, kind: 'direct', name: '', topic: '', createdBy: 'kb', directKey: key, members: pair });
      expect(messages.map((m) => m.seq)).toEqual([4, 5]);
      expect(room.lastSeq).toBe(5);
      expect((await t.store.getRoom(id))!.lastSeq).toBe(5);
      const next = await t.store.append({ room: id, user: 'kb', name: 'kb', kind: 'text', text: 'after' });
      expect(next.message.seq).toBe(6);
      expect((await t.store.history(id, { after: 0, limit: 10 })).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('roles, mutes and owner hand-over', async () => {
      const id = await t.group('u1', ['u2']);
      const { member } = await t.store.setRole(id, 'u2', 'owner', { user: 'u1', name: 'U1' });
      expect(member.role).toBe('owner');
      expect((await t.store.getMember(id, 'u1'))!.role).toBe('admin');
      const until = Date.now() + 60_000;
      expect((await t.store.setMute(id, 'u1', until, false)).mutedUntil).toBe(until);
      await expect(t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).rejects.toMatchObject({
        code: 'forbidden',
        details: { reason: 'muted' },
      });
      expect((await t.store.setMute(id, 'u1', null, false)).mutedUntil).toBeNull();
      expect((await t.store.setMute(id, 'u1', null, true)).mutedUntil).toBeUndefined();
      expect((await t.store.append({ room: id, user: 'u1', name: 'x', kind: 'text', text: 'a' })).duplicate).toBe(false);
      await expect(t.store.setMute(id, 'nobody', null, false)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('access lists decide who may be a member; owners and admins always may', async () => {
      const id = await t.group('u1', ['u2']);
      expect(await t.store.setAccess(id, 'black', ['u2', 'u3'], [])).toEqual(['u2', 'u3']);
      expect(await t.store.hasAccess(id, 'u2')).toBe(false);
      expect(await t.store.hasAccess(id, 'u4')).toBe(true);
      expect(await t.store.setAccess(id, 'black', [], ['u2'])).toEqual(['u3']);
      await t.store.updateRoom(id, { access: 'whitelist' }, { user: 'u1', name: 'U1' });
      await t.store.setAccess(id, 'white', ['u2'], []);
      expect(await t.store.hasAccess(id, 'u2')).toBe(true);
      expect(await t.store.hasAccess(id, 'u4')).toBe(false);
      expect(await t.store.hasAccess(id, 'u1')).toBe(true);
      expect(await t.store.accessList(id, 'white')).toEqual(['u2']);
    });

    it('roomCounts counts rooms by kind', async () => {
      const before = await t.store.roomCounts();
      await t.group('u1');
      await t.group('u1');
      await t.store.createRoom({ id: t.rid(), kind: 'channel', name: 'C', topic: '', createdBy: 'u1', members: [] });
      const after = await t.store.roomCounts();
      expect(after.group).toBe((before.group ?? 0) + 2);
      expect(after.channel).toBe((before.channel ?? 0) + 1);
      expect(after.direct ?? 0).toBe(before.direct ?? 0);
      for (const v of Object.values(after)) expect(Number.isInteger(v)).toBe(true);
    });

    it('public channels come by id, at most limit, after the given id', async () => {
      const tag = t.rid();
      const ids = ['c', 'a', 'b'].map((x) => `${tag}-${x}`);
      for (const id of ids) await t.store.createRoom({ id, kind: 'channel', name: id, topic: '', createdBy: 'u1', members: [] });
      await t.store.createRoom({ id: `${tag}-ab`, kind: 'group', name: 'g', topic: '', createdBy: 'u1', members: [] });
      const page1 = await t.store.publicRooms(2, `${tag}-`);
      expect(page1.map((r) => r.id)).toEqual([`${tag}-a`, `${tag}-b`]);
      const page2 = await t.store.publicRooms(2, `${tag}-b`);
      expect(page2.map((r) => r.id)[0]).toBe(`${tag}-c`);
    });

    it('countRooms counts the channels and groups a user belongs to and the existing ones it created, not direct rooms', async () => {
      expect(await t.store.countRooms('cr1')).toEqual({ member: 0, created: 0 });
      const g = await t.group('cr1', ['cr2']);
      await t.group('cr2', ['cr1']);
      await t.store.createRoom({ id: t.rid(), kind: 'channel', name: 'C', topic: '', createdBy: 'cr1', members: [] });
      await t.store.createRoom({
        id: t.rid(),
        kind: 'direct',
        name: '',
        topic: '',
        createdBy: 'cr1',
        directKey: `cr1\ncr2-${t.rid()}`,
        members: [
          { user: 'cr1', name: 'cr1', role: 'member' },
          { user: 'cr2', name: 'cr2', role: 'member' },
        ],
      });
      expect(await t.store.countRooms('cr1')).toEqual({ member: 2, created: 2 });
      expect(await t.store.countRooms('cr2')).toEqual({ member: 2, created: 1 });
      await t.store.deleteRoom(g, false);
      expect(await t.store.countRooms('cr1')).toEqual({ member: 1, created: 1 });
    });

    it('deleting a room removes its access lists and bans too; keeping its history keeps only the messages', async () => {
      const id = await t.group('u1', ['u2']);
      await t.store.setAccess(id, 'black', ['x1'], []);
      await t.store.ban({ room: id, user: 'x2', until: null, reason: '', by: 'u1' });
      await t.store.append({ room: id, user: 'u2', name: 'x', kind: 'text', text: 'kept' });
      await t.store.deleteRoom(id, true);
      expect(await t.store.accessList(id, 'black')).toEqual([]);
      expect(await t.store.activeBan(id, 'x2', Date.now())).toBeNull();
      expect(await t.store.members(id)).toEqual([]);
      expect((await t.store.history(id, { after: 0, limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'join', 'kept']);
      expect((await t.store.roomsOf('u2')).map((r) => r.room.id)).not.toContain(id);
    });

    it('setting a role appends an update message naming the user and role; admins always have access', async () => {
      const id = await t.group('u1', ['u2', 'u3']);
      const { message } = await t.store.setRole(id, 'u2', 'admin', { user: 'u1', name: 'U1' });
      expect(message).toMatchObject({ kind: 'update', user: 'u1', data: { user: 'u2', role: 'admin' } });
      await t.store.updateRoom(id, { access: 'whitelist' }, { user: 'u1', name: 'U1' });
      expect(await t.store.hasAccess(id, 'u3')).toBe(false);
      expect(await t.store.hasAccess(id, 'u2')).toBe(true);
      expect((await t.store.members(id)).map((m) => m.user).sort()).toEqual(['u1', 'u2']);
    });
  });
}
