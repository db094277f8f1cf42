import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';
import type { ClientError } from '../src/client/index.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.close();
});

describe('direct rooms', () => {
  it('two users chat in a direct room; a third cannot read, join or send', async () => {
    const alice = await srv.client('alice');
    const bob = await srv.client('bob');
    const eve = await srv.client('eve');
    const room = await alice.direct('bob');
    expect(room.kind).toBe('direct');
    // Opening it from the other side gives the same canonical room.
    expect((await bob.direct('alice')).id).toBe(room.id);

    const atBob = collect(bob, room.id);
    const atAlice = collect(alice, room.id);
    const r1 = await alice.send(room.id, 'hi bob');
    const r2 = await bob.send(room.id, 'hi alice');
    expect(r2.seq).toBe(r1.seq + 1);
    await waitFor(() => atBob.filter((m) => m.kind === 'text').length === 2 && atAlice.filter((m) => m.kind === 'text').length === 2);
    expect(atBob.filter((m) => m.kind === 'text').map((m) => [m.user, m.text])).toEqual([
      ['alice', 'hi bob'],
      ['bob', 'hi alice'],
    ]);

    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: ClientError) => e.code,
      );
    expect(await code(eve.history(room.id))).toBe('forbidden');
    expect(await code(eve.send(room.id, 'let me in'))).toBe('forbidden');
    expect(await code(eve.join(room.id))).toBe('forbidden');
    expect(await code(eve.presence(room.id))).toBe('forbidden');
    expect(await code(eve.members(room.id))).toBe('forbidden');
    expect(
      await code(
        eve.request('resume', { rooms: { [room.id]: 0 } }).then((r) => {
          if (r.denied.length) throw Object.assign(new Error('denied'), { code: 'denied' });
        }),
      ),
    ).toBe('denied');
    // Eve's view of history never contains the conversation.
    const history = await alice.history(room.id);
    expect(history.messages.filter((m) => m.kind === 'text')).toHaveLength(2);
    expect(history.messages.every((m) => m.user !== 'eve')).toBe(true);
  });

  it("the server's own id is nobody's peer or fellow member: it cannot be invited or talked to directly", async () => {
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 'a', cmd: 'auth', token: await srv.token('sysprobe') })).ok).toBe(true);
    const room = ((await ws.call({ id: 'c', cmd: 'create', kind: 'group', name: 'Probe' })).data as { id: string }).id;
    for (const frame of [
      { id: 'i', cmd: 'invite', room, user: 'system' },
      { id: 'd', cmd: 'direct', user: 'system' },
    ]) {
      expect(await ws.call(frame)).toMatchObject({ ok: false, error: { code: 'invalid', details: { field: 'user' } } });
    }
    const members = (await ws.call({ id: 'm', cmd: 'members', room })).data as { members: Array<{ user: string }> };
    expect(members.members.map((m) => m.user)).toEqual(['sysprobe']);
    ws.close();
  });
});
