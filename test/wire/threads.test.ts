// Threads and mentions in edits at the wire, with raw WebSocket clients and REST: a reply sent
// to a thread (and, with alsoToRoom, to the room), the root's summary reaching every member,
// the thread's own history, the main timeline without thread-only replies, unread counts for
// thread participants only, refused roots; an edit that mentions someone new notifies only
// them. Everything is read back after a restart too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tempDir, waitFor, removeDir, type TestServer } from '../helpers.js';
import { rest as restAs, room as newRoom, Wire, type WireMessage, type WireSummary as Summary } from './wire.js';

let srv: TestServer;
const dataDir = tempDir('parley-threads-');
const start = () => startServer({ plugins: { rateLimit: { enabled: false } } }, dataDir);

beforeAll(async () => {
  srv = await start();
});
afterAll(async () => {
  await srv?.close();
  removeDir(dataDir);
});

type Msg = WireMessage;
const open = (user: string) => Wire.open(srv, user);
const rest = (user: string, method: string, path: string, body?: unknown) => restAs(srv, user, method, path, body);
const group = (owner: Wire, ...others: Wire[]) => newRoom('group', owner, ...others);

interface Page {
  messages: Msg[];
  first: number;
  last: number;
  root?: Msg;
}

const unread = async (w: Wire, room: string): Promise<number> =>
  (await w.call<{ rooms: Array<{ room: { id: string }; unread: number }> }>('inbox')).rooms.find((e) => e.room.id === room)!.unread;

describe('threads', () => {
  it("a thread reply reaches every member live, the root's summary follows, and the thread pages like a room", async () => {
    const [ann, bob, cyd, dan, eve] = await Promise.all([open('t-ann'), open('t-bob'), open('t-cyd'), open('t-dan'), open('t-eve')]);
    const room = await group(ann, bob, cyd, dan, eve);
    const root = await ann.call<{ seq: number }>('send', { room, text: 'shall we?' });
    const replies: number[] = [];
    for (const w of [bob, cyd, bob, dan, eve])
      replies.push((await w.call<{ seq: number }>('send', { room, text: `reply ${replies.length}`, thread: root.seq })).seq);
    const shared = await cyd.call<{ seq: number }>('send', { room, text: 'to everyone', thread: root.seq, alsoToRoom: true });
    const after = await ann.call<{ seq: number }>('send', { room, text: 'back in the room' });
    // Every member gets every message, seq after seq, thread replies included (marked).
    await waitFor(() => eve.message(room, after.seq) !== undefined, 5000, 'all messages');
    expect(eve.message(room, replies[0]!)).toMatchObject({ thread: root.seq, text: 'reply 0', user: 't-bob' });
    expect(eve.message(room, replies[0]!)!.alsoToRoom).toBeUndefined();
    expect(eve.message(room, shared.seq)).toMatchObject({ thread: root.seq, alsoToRoom: true });
    // The root's summary reaches every member after each reply: count, last reply, first three repliers.
    await waitFor(() => eve.events('thread').length === 6, 5000, 'six summaries');
    const summaries = eve.events<{ room: string; seq: number; summary: Summary }>('thread');
    expect(summaries.map((e) => [e.seq, e.summary.count, e.summary.users])).toEqual([
      [root.seq, 1, ['t-bob']],
      [root.seq, 2, ['t-bob', 't-cyd']],
      [root.seq, 3, ['t-bob', 't-cyd']],
      [root.seq, 4, ['t-bob', 't-cyd', 't-dan']],
      [root.seq, 5, ['t-bob', 't-cyd', 't-dan']],
      [root.seq, 6, ['t-bob', 't-cyd', 't-dan']],
    ]);
    expect(summaries[5]!.summary.lastTs).toBe(eve.message(room, shared.seq)!.ts);
    // The main timeline: the root with its summary, the reply also sent to the room, not the others.
    const main = await bob.call<Page>('history', { room, after: root.seq - 1 });
    expect(main.messages.map((m) => m.seq)).toEqual([root.seq, shared.seq, after.seq]);
    expect(main.messages[0]!.summary).toEqual(summaries[5]!.summary);
    expect(main.last).toBe(after.seq);
    const older = await bob.call<Page>('history', { room, before: after.seq, limit: 2 });
    expect(older.messages.map((m) => m.seq)).toEqual([root.seq, shared.seq]);
    // The thread's own history, both directions, with its root.
    const thread = await dan.call<Page>('history', { room, thread: root.seq });
    expect(thread.messages.map((m) => m.seq)).toEqual([...replies, shared.seq]);
    expect(thread.root).toMatchObject({ seq: root.seq, text: 'shall we?', summary: { count: 6 } });
    const first = await dan.call<Page>('history', { room, thread: root.seq, after: 0, limit: 2 });
    expect(first.messages.map((m) => m.seq)).toEqual(replies.slice(0, 2));
    const next = await dan.call<Page>('history', { room, thread: root.seq, after: replies[1]!, limit: 2 });
    expect(next.messages.map((m) => m.seq)).toEqual(replies.slice(2, 4));
    const back = await dan.call<Page>('history', { room, thread: root.seq, before: replies[2]!, limit: 5 });
    expect(back.messages.map((m) => m.seq)).toEqual(replies.slice(0, 2));
    // Over REST too.
    const res = await rest('t-cyd', 'GET', `/rooms/${room}/messages?thread=${root.seq}&limit=2`);
    expect(res.status).toBe(200);
    expect((res.body.messages as Msg[]).map((m) => m.seq)).toEqual([replies[4]!, shared.seq]);
    expect((res.body.root as Msg).seq).toBe(root.seq);
    const sent = await rest('t-cyd', 'POST', `/rooms/${room}/messages`, { text: 'over rest', thread: root.seq });
    expect(sent.status).toBe(201);
    expect((await rest('t-cyd', 'GET', `/rooms/${room}/messages?after=${after.seq}`)).body.messages as Msg[]).toEqual([]);
    for (const w of [ann, bob, cyd, dan, eve]) w.close();
  });

  it('an edit, delete or reaction of a thread reply stays in its thread', async () => {
    const [ann, bob] = await Promise.all([open('e-ann'), open('e-bob')]);
    const room = await group(ann, bob);
    const root = await ann.call<{ seq: number }>('send', { room, text: 'root' });
    const reply = await bob.call<{ seq: number }>('send', { room, text: 'typo', thread: root.seq });
    const edit = await bob.call<{ seq: number }>('edit', { room, target: reply.seq, text: 'fixed' });
    const react = await ann.call<{ seq: number }>('react', { room, target: reply.seq, emoji: '👍' });
    await waitFor(() => ann.message(room, react.seq) !== undefined, 5000, 'the reaction');
    expect(ann.message(room, edit.seq)).toMatchObject({ kind: 'edit', thread: root.seq });
    const thread = await ann.call<Page>('history', { room, thread: root.seq });
    expect(thread.messages.map((m) => [m.seq, m.kind])).toEqual([
      [reply.seq, 'text'],
      [edit.seq, 'edit'],
      [react.seq, 'reaction'],
    ]);
    const main = await ann.call<Page>('history', { room, after: root.seq - 1 });
    expect(main.messages.map((m) => m.seq)).toEqual([root.seq]);
    // The summary counts replies, not their edits or reactions.
    expect(thread.root!.summary!.count).toBe(1);
    ann.close();
    bob.close();
  });

  it('a thread needs a text root of the same room that is not deleted and not itself a reply; nothing is stored otherwise', async () => {
    const [ann, bob] = await Promise.all([open('b-ann'), open('b-bob')]);
    const room = await group(ann, bob);
    const other = await group(ann);
    const root = await ann.call<{ seq: number }>('send', { room, text: 'root' });
    const reply = await bob.call<{ seq: number }>('send', { room, text: 'reply', thread: root.seq });
    const gone = await ann.call<{ seq: number }>('send', { room, text: 'soon gone' });
    await ann.call('delete', { room, target: gone.seq });
    const last = (await ann.call<Page>('history', { room, limit: 1 })).last;
    // A seq that is a text only in the other room.
    let elsewhere = 0;
    while (elsewhere <= last) elsewhere = (await ann.call<{ seq: number }>('send', { room: other, text: 'elsewhere' })).seq;
    expect(await bob.fails('send', { room, text: 'x', thread: elsewhere })).toBe('not_found');
    expect(await bob.fails('send', { room, text: 'x', thread: 1 })).toBe('not_found'); // a join message
    expect(await bob.fails('send', { room, text: 'x', thread: reply.seq })).toBe('invalid');
    expect(await bob.fails('send', { room, text: 'x', thread: gone.seq })).toBe('conflict');
    expect(await bob.fails('send', { room, text: 'x', thread: 0 })).toBe('invalid');
    expect(await bob.fails('send', { room, text: 'x', alsoToRoom: true })).toBe('invalid');
    expect(await bob.fails('send', { room, text: 'x', thread: 'one' })).toBe('invalid');
    expect((await rest('b-bob', 'POST', `/rooms/${room}/messages`, { text: 'x', thread: 999 })).status).toBe(404);
    expect((await ann.call<Page>('history', { room, limit: 1 })).last).toBe(last);
    // Only a root has a thread to read; only those who read the room read it.
    expect(await bob.fails('history', { room, thread: reply.seq })).toBe('not_found');
    expect(await bob.fails('history', { room, thread: 999 })).toBe('not_found');
    const cyd = await open('b-cyd');
    expect(await cyd.fails('history', { room, thread: root.seq })).toBe('forbidden');
    ann.close();
    bob.close();
    cyd.close();
  });

  it("a reply kept to its thread is unread only for the thread's participants and those it mentions", async () => {
    const [ann, bob, cyd, dan] = await Promise.all([open('u-ann'), open('u-bob'), open('u-cyd'), open('u-dan')]);
    const room = await group(ann, bob, cyd, dan);
    const root = await ann.call<{ seq: number }>('send', { room, text: 'root' });
    for (const w of [ann, bob, cyd, dan]) await w.call('read', { room, seq: root.seq });
    await bob.call('send', { room, text: 'first reply', thread: root.seq });
    // ann wrote the root, bob replied, dan is mentioned, cyd is none of them.
    await bob.call('send', { room, text: 'what do you think @u-dan?', thread: root.seq });
    expect(await unread(ann, room)).toBe(2);
    expect(await unread(bob, room)).toBe(0);
    expect(await unread(dan, room)).toBe(1);
    expect(await unread(cyd, room)).toBe(0);
    // Once cyd replies it takes part: later replies count for it.
    await cyd.call('send', { room, text: 'me too', thread: root.seq });
    await bob.call('send', { room, text: 'welcome', thread: root.seq });
    expect(await unread(cyd, room)).toBe(1);
    // A reply also sent to the room counts for everyone.
    await bob.call('send', { room, text: 'everyone look', thread: root.seq, alsoToRoom: true });
    expect(await unread(dan, room)).toBe(2);
    expect(await unread(ann, room)).toBe(5);
    for (const w of [ann, bob, cyd, dan]) w.close();
  });
});

describe('mentions in edits', () => {
  it('an edit notifies only the members it newly mentions, and the message keeps them', async () => {
    const [ann, bob, cyd, dan] = await Promise.all([open('me-ann'), open('me-bob'), open('me-cyd'), open('me-dan')]);
    const room = await group(ann, bob, cyd, dan);
    const m = await ann.call<{ seq: number }>('send', { room, text: 'hi @me-bob' });
    await waitFor(() => bob.events('notify').length === 1, 5000, 'the first notification');
    const e1 = await ann.call<{ seq: number }>('edit', { room, target: m.seq, text: 'hi @me-bob and @me-cyd' });
    await waitFor(() => cyd.events('notify').length === 1, 5000, 'cyd told');
    expect(cyd.events('notify')[0]).toMatchObject({ room, seq: m.seq, user: 'me-ann', text: 'hi @me-bob and @me-cyd', reason: 'mention' });
    // The edit itself names whom it added.
    await waitFor(() => dan.message(room, e1.seq) !== undefined, 5000, 'the edit');
    expect(dan.message(room, e1.seq)!.mentions).toEqual(['me-cyd']);
    // An edit that mentions nobody new tells nobody; a name the previous version lacked counts.
    await ann.call('edit', { room, target: m.seq, text: 'hi @me-cyd and @me-bob!' });
    await ann.call('edit', { room, target: m.seq, text: 'hi all' });
    await ann.call('edit', { room, target: m.seq, text: 'hi @me-dan' });
    await waitFor(() => dan.events('notify').length === 1, 5000, 'dan told');
    await new Promise((r) => setTimeout(r, 200));
    expect(bob.events('notify')).toHaveLength(1);
    expect(cyd.events('notify')).toHaveLength(1);
    expect(ann.events('notify')).toHaveLength(0);
    const stored = (await bob.call<Page>('history', { room, after: m.seq - 1, limit: 1 })).messages[0]!;
    expect(new Set(stored.mentions)).toEqual(new Set(['me-bob', 'me-cyd', 'me-dan']));
    for (const w of [ann, bob, cyd, dan]) w.close();
  });
});

describe('after a restart', () => {
  it('threads, their summaries and what is kept out of the main timeline are still there', async () => {
    const [ann, bob] = await Promise.all([open('r-ann'), open('r-bob')]);
    const room = await group(ann, bob);
    const root = await ann.call<{ seq: number }>('send', { room, text: 'root' });
    const r1 = await bob.call<{ seq: number }>('send', { room, text: 'one', thread: root.seq });
    ann.close();
    bob.close();
    await srv.close();
    srv = await start();
    const [ann2, bob2] = await Promise.all([open('r-ann'), open('r-bob')]);
    const thread = await ann2.call<Page>('history', { room, thread: root.seq });
    expect(thread.messages.map((m) => m.seq)).toEqual([r1.seq]);
    expect(thread.root!.summary).toMatchObject({ count: 1, users: ['r-bob'] });
    expect((await ann2.call<Page>('history', { room, after: root.seq - 1 })).messages.map((m) => m.seq)).toEqual([root.seq]);
    // The summary goes on from what was stored.
    const r2 = await ann2.call<{ seq: number }>('send', { room, text: 'two', thread: root.seq });
    await waitFor(() => bob2.events('thread').length === 1, 5000, 'the summary');
    expect(bob2.events<{ summary: Summary }>('thread')[0]!.summary).toMatchObject({ count: 2, users: ['r-bob', 'r-ann'] });
    expect(bob2.message(room, r2.seq)).toMatchObject({ thread: root.seq });
    ann2.close();
    bob2.close();
  });
});
