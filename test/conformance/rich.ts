// The behaviour suite of the rich-message ports (notifications, pins, versions) and of what
// the Store keeps for them (a message's mentions and quote): every backend runs it (see
// store.rich.sqlite.test.ts and store.postgres.test.ts).
import { describe, expect, it } from 'vitest';
import type { Writes } from './writes.js';
import type { RichPorts } from '../../src/service/rich.js';

export interface RichBackend {
  store: Writes;
  ports: RichPorts;
  close(): Promise<void>;
}

export function richConformance(name: string, open: () => Promise<RichBackend>): void {
  describe(`rich message ports conformance: ${name}`, () => {
    async function withRoom<T>(fn: (b: RichBackend, room: string) => Promise<T>): Promise<T> {
      const b = await open();
      try {
        const room = `r${Math.random().toString(36).slice(2, 10)}`;
        await b.store.createRoom({
          id: room,
          kind: 'group',
          name: room,
          topic: '',
          createdBy: 'ann',
          members: [
            { user: 'ann', name: 'Ann', role: 'owner' },
            { user: 'bob', name: 'Bob', role: 'member' },
            { user: 'cyd', name: 'Cyd', role: 'member' },
          ],
        });
        return await fn(b, room);
      } finally {
        await b.close();
      }
    }
    const text = (room: string, user: string, t: string, extra: Record<string, unknown> = {}) => ({
      room,
      user,
      name: user,
      kind: 'text' as const,
      text: t,
      ...extra,
    });

    it("keeps a message's mentions and quote, in history, one message and a repeated key", async () => {
      await withRoom(async ({ store }, room) => {
        const meta = { mentions: ['bob'], mentionsAll: 'room' as const, replyTo: 1, quote: { user: 'ann', name: 'Ann', text: 'hi' } };
        const { message } = await store.append({ ...text(room, 'ann', 'hey @bob @room'), key: 'k1', meta });
        expect(message).toMatchObject(meta);
        expect(await store.getMessage(room, message.seq)).toMatchObject(meta);
        expect((await store.history(room, { after: message.seq - 1, limit: 1 }))[0]).toMatchObject(meta);
        const again = await store.append({ ...text(room, 'ann', 'hey @bob @room'), key: 'k1', meta });
        expect(again.duplicate).toBe(true);
        expect(again.message).toMatchObject(meta);
        const plain = await store.append(text(room, 'ann', 'plain'));
        expect(Object.keys((await store.getMessage(room, plain.message.seq))!)).not.toContain('mentions');
      });
    });

    it('counts unread mentions per room: after the read marker, by others, naming the user or the room', async () => {
      await withRoom(async ({ store, ports }, room) => {
        await store.append({ ...text(room, 'ann', '@bob 1'), meta: { mentions: ['bob'] } });
        await store.append({ ...text(room, 'ann', '@room'), meta: { mentionsAll: 'room' } });
        await store.append({ ...text(room, 'ann', '@cyd'), meta: { mentions: ['cyd'] } });
        const own = await store.append({ ...text(room, 'bob', '@bob myself'), meta: { mentions: ['bob'] } });
        expect((await ports.notifications.unreadMentions('bob')).get(room)).toBe(2);
        expect((await ports.notifications.unreadMentions('cyd')).get(room)).toBe(2);
        expect((await ports.notifications.unreadMentions('ann')).get(room)).toBeUndefined();
        await store.markRead(room, 'bob', own.message.seq);
        expect((await ports.notifications.unreadMentions('bob')).get(room)).toBeUndefined();
      });
    });

    it('keeps notification levels and who may mention the room, until the room is deleted', async () => {
      await withRoom(async ({ store, ports }, room) => {
        expect(await ports.notifications.level(room, 'bob')).toBeNull();
        expect(await ports.notifications.mentionAll(room)).toBeNull();
        await ports.notifications.setLevel(room, 'bob', 'none');
        await ports.notifications.setLevel(room, 'bob', 'all');
        await ports.notifications.setLevel(room, 'cyd', 'none');
        await ports.notifications.setMentionAll(room, 'members');
        expect(await ports.notifications.level(room, 'bob')).toBe('all');
        expect([...(await ports.notifications.levels(room))].sort()).toEqual([
          ['bob', 'all'],
          ['cyd', 'none'],
        ]);
        expect(await ports.notifications.mentionAll(room)).toBe('members');
        // A member's levels over many rooms, in one read: only where it set one.
        expect([...(await ports.notifications.levelsIn('bob', [room, 'no-such-room', room]))]).toEqual([[room, 'all']]);
        expect((await ports.notifications.levelsIn('ann', [room])).size).toBe(0);
        expect((await ports.notifications.levelsIn('bob', [])).size).toBe(0);
        await store.deleteRoom(room, false);
        expect((await ports.notifications.levels(room)).size).toBe(0);
        expect(await ports.notifications.mentionAll(room)).toBeNull();
      });
    });

    it('pins a message once, up to the cap, and lists live pins newest first', async () => {
      await withRoom(async ({ store, ports }, room) => {
        const seqs: number[] = [];
        for (let i = 0; i < 3; i++) seqs.push((await store.append(text(room, 'bob', `m${i}`))).message.seq);
        expect(await ports.pins.pin(room, seqs[0]!, 'ann', 1000, 2)).toBe(true);
        expect(await ports.pins.pin(room, seqs[0]!, 'ann', 1001, 2)).toBe(false);
        expect(await ports.pins.pin(room, seqs[1]!, 'ann', 2000, 2)).toBe(true);
        await expect(ports.pins.pin(room, seqs[2]!, 'ann', 3000, 2)).rejects.toMatchObject({ code: 'conflict' });
        expect(await ports.pins.pins(room)).toEqual([
          { seq: seqs[1], by: 'ann', ts: 2000 },
          { seq: seqs[0], by: 'ann', ts: 1000 },
        ]);
        await store.append({ room, user: 'bob', name: 'bob', kind: 'delete', target: seqs[1]! });
        expect((await ports.pins.pins(room)).map((p) => p.seq)).toEqual([seqs[0]]);
        expect(await ports.pins.unpin(room, seqs[0]!)).toBe(true);
        expect(await ports.pins.unpin(room, seqs[0]!)).toBe(false);
        await ports.pins.pin(room, seqs[2]!, 'ann', 4000, 2);
        await store.deleteRoom(room, true);
        expect(await ports.pins.pins(room)).toEqual([]);
      });
    });

    it("lists a message's edits in order and whether it was deleted", async () => {
      await withRoom(async ({ store, ports }, room) => {
        const m = (await store.append(text(room, 'bob', 'one'))).message;
        expect(await ports.versions.edits(room, m.seq)).toEqual({ edits: [], deleted: false });
        const e1 = (await store.append({ room, user: 'bob', name: 'bob', kind: 'edit', target: m.seq, text: 'two' })).message;
        const e2 = (await store.append({ room, user: 'bob', name: 'bob', kind: 'edit', target: m.seq, text: 'three' })).message;
        expect(await ports.versions.edits(room, m.seq)).toEqual({
          edits: [
            { seq: e1.seq, text: 'two', ts: e1.ts },
            { seq: e2.seq, text: 'three', ts: e2.ts },
          ],
          deleted: false,
        });
        await store.append({ room, user: 'bob', name: 'bob', kind: 'delete', target: m.seq });
        expect((await ports.versions.edits(room, m.seq)).deleted).toBe(true);
      });
    });

    it("keeps thread replies with their root: the thread's pages, the main timeline without them, the root's summary", async () => {
      await withRoom(async ({ store }, room) => {
        const root = (await store.append(text(room, 'ann', 'root'))).message;
        const r1 = (await store.append({ ...text(room, 'bob', 'one'), thread: root.seq })).message;
        const r2 = (await store.append({ ...text(room, 'cyd', 'two'), thread: root.seq, alsoToRoom: true })).message;
        const edit = (await store.append({ room, user: 'bob', name: 'bob', kind: 'edit', target: r1.seq, text: 'one!' })).message;
        const r3 = (await store.append({ ...text(room, 'bob', 'three'), thread: root.seq })).message;
        const after = (await store.append(text(room, 'ann', 'after'))).message;
        expect(r1.thread).toBe(root.seq);
        expect(edit).toMatchObject({ thread: root.seq });
        expect(r2).toMatchObject({ thread: root.seq, alsoToRoom: true });
        const seqs = (ms: Array<{ seq: number }>) => ms.map((m) => m.seq);
        // Every message, for replay: nothing skipped.
        expect(seqs(await store.history(room, { after: root.seq - 1, limit: 50 }))).toEqual([root.seq, r1.seq, r2.seq, edit.seq, r3.seq, after.seq]);
        expect(seqs(await store.history(room, { after: root.seq - 1, limit: 50, main: true }))).toEqual([root.seq, r2.seq, after.seq]);
        expect(seqs(await store.history(room, { before: after.seq, limit: 1, main: true }))).toEqual([r2.seq]);
        expect(seqs(await store.history(room, { after: 0, limit: 50, thread: root.seq }))).toEqual([r1.seq, r2.seq, edit.seq, r3.seq]);
        expect(seqs(await store.history(room, { after: r2.seq, limit: 1, thread: root.seq }))).toEqual([edit.seq]);
        expect(seqs(await store.history(room, { before: r3.seq, limit: 2, thread: root.seq }))).toEqual([r2.seq, edit.seq]);
        const summary = { count: 3, lastTs: r3.ts, users: ['bob', 'cyd'] };
        expect(await store.threadSummary(room, root.seq)).toEqual(summary);
        expect((await store.getMessage(room, root.seq))!.summary).toEqual(summary);
        expect((await store.history(room, { after: root.seq - 1, limit: 1, main: true }))[0]!.summary).toEqual(summary);
        expect(await store.threadSummary(room, after.seq)).toBeNull();
        expect(await store.target(room, r1.seq)).toMatchObject({ thread: root.seq, alsoToRoom: false });
        expect(await store.target(room, r2.seq)).toMatchObject({ thread: root.seq, alsoToRoom: true });
        expect(await store.target(room, root.seq)).toMatchObject({ thread: null });
      });
    });

    it("names who takes part in a thread up to a reply: the root's author and earlier repliers, once each", async () => {
      await withRoom(async ({ store, ports }, room) => {
        const root = (await store.append(text(room, 'ann', 'root'))).message;
        const other = (await store.append(text(room, 'cyd', 'another root'))).message;
        const r1 = (await store.append({ ...text(room, 'bob', 'one'), thread: root.seq })).message;
        await store.append({ room, user: 'cyd', name: 'cyd', kind: 'reaction', target: r1.seq, data: { emoji: 'ok' } });
        await store.append({ ...text(room, 'cyd', 'elsewhere'), thread: other.seq });
        const r2 = (await store.append({ ...text(room, 'bob', 'two'), thread: root.seq, alsoToRoom: true })).message;
        const r3 = (await store.append({ ...text(room, 'cyd', 'three'), thread: root.seq })).message;
        const sorted = async (before: number) => (await ports.notifications.threadParticipants(room, root.seq, before)).sort();
        expect(await sorted(r1.seq)).toEqual(['ann']);
        // A reaction is no reply; a reply in another thread does not count here.
        expect(await sorted(r2.seq)).toEqual(['ann', 'bob']);
        expect(await sorted(r3.seq)).toEqual(['ann', 'bob']);
        expect(await sorted(r3.seq + 1)).toEqual(['ann', 'bob', 'cyd']);
      });
    });

    it('refuses a thread whose root is missing, not a text, deleted or itself a reply, storing nothing', async () => {
      await withRoom(async ({ store }, room) => {
        const root = (await store.append(text(room, 'ann', 'root'))).message;
        const reply = (await store.append({ ...text(room, 'bob', 'one'), thread: root.seq })).message;
        const gone = (await store.append(text(room, 'ann', 'gone'))).message;
        await store.append({ room, user: 'ann', name: 'ann', kind: 'delete', target: gone.seq });
        const { last } = await store.bounds(room);
        const code = (p: Promise<unknown>) =>
          p.then(
            () => 'ok',
            (e: { code?: string }) => e.code,
          );
        expect(await code(store.append({ ...text(room, 'bob', 'x'), thread: last + 5 }))).toBe('not_found');
        expect(await code(store.append({ ...text(room, 'bob', 'x'), thread: 1 }))).toBe('not_found');
        expect(await code(store.append({ ...text(room, 'bob', 'x'), thread: reply.seq }))).toBe('invalid');
        expect(await code(store.append({ ...text(room, 'bob', 'x'), thread: gone.seq }))).toBe('conflict');
        expect((await store.bounds(room)).last).toBe(last);
        expect((await store.threadSummary(room, root.seq))!.count).toBe(1);
      });
    });

    it("counts a reply kept to its thread as unread only for the root's author, earlier repliers and those it mentions", async () => {
      await withRoom(async ({ store }, room) => {
        const root = (await store.append(text(room, 'ann', 'root'))).message;
        for (const u of ['ann', 'bob', 'cyd']) await store.markRead(room, u, root.seq);
        await store.append({ ...text(room, 'bob', 'one'), thread: root.seq });
        await store.append({ ...text(room, 'bob', '@cyd two'), thread: root.seq, meta: { mentions: ['cyd'] } });
        await store.append({ ...text(room, 'bob', 'three'), thread: root.seq });
        await store.append({ ...text(room, 'bob', 'four'), thread: root.seq, alsoToRoom: true });
        const unread = async (u: string) => (await store.inbox(u)).find((e) => e.room.id === room)!.unread;
        expect(await unread('ann')).toBe(4);
        expect(await unread('bob')).toBe(0);
        expect(await unread('cyd')).toBe(2);
        // The inbox's last message is one of the main timeline.
        expect((await store.inbox('ann')).find((e) => e.room.id === room)!.last!.text).toBe('four');
      });
    });

    it('adds the users an edit newly mentions to the mentions kept with the edited message', async () => {
      await withRoom(async ({ store }, room) => {
        const m = (await store.append({ ...text(room, 'ann', 'hi @bob'), meta: { mentions: ['bob'], replyTo: 1 } })).message;
        await store.append({ room, user: 'ann', name: 'ann', kind: 'edit', target: m.seq, text: 'hi @bob @cyd', meta: { mentions: ['cyd'] } });
        expect(await store.getMessage(room, m.seq)).toMatchObject({ mentions: ['bob', 'cyd'], replyTo: 1 });
        const plain = (await store.append(text(room, 'ann', 'plain'))).message;
        await store.append({ room, user: 'ann', name: 'ann', kind: 'edit', target: plain.seq, text: '@bob', meta: { mentions: ['bob'] } });
        expect((await store.getMessage(room, plain.seq))!.mentions).toEqual(['bob']);
      });
    });
  });
}
