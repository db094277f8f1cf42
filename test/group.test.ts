import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startServer, waitFor, type TestServer } from './helpers.js';
import type { ClientError, ParleyClient } from '../src/client/index.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.close();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: ClientError) => e.code,
  );

describe('private groups', () => {
  it('five invited members talk; a non-member gets forbidden for history, send and presence', async () => {
    const names = ['g1', 'g2', 'g3', 'g4', 'g5'];
    const clients: ParleyClient[] = [];
    for (const n of names) clients.push(await srv.client(n));
    const [owner] = clients;
    const room = await owner!.createRoom('group', 'Five');
    expect(room.kind).toBe('group');
    for (const n of names.slice(1)) await owner!.invite(room.id, n);
    const members = await owner!.members(room.id);
    expect(members.members.map((m) => m.user).sort()).toEqual(names);
    expect(members.members.find((m) => m.user === 'g1')!.role).toBe('owner');

    const seen = clients.map((c) => collect(c, room.id));
    await clients[3]!.send(room.id, 'hello group');
    await waitFor(() => seen.every((s) => s.some((m) => m.text === 'hello group')), 5000, 'fan-out to all five');

    const online = await clients[2]!.presence(room.id);
    expect(online.users.sort()).toEqual(names);

    const outsider = await srv.client('outsider');
    expect(await code(outsider.history(room.id))).toBe('forbidden');
    expect(await code(outsider.send(room.id, 'hi'))).toBe('forbidden');
    expect(await code(outsider.presence(room.id))).toBe('forbidden');
    expect(await code(outsider.join(room.id))).toBe('forbidden');
    expect(await code(outsider.invite(room.id, 'outsider'))).toBe('forbidden');
    // A plain member cannot invite to a group; only owners and admins can.
    expect(await code(clients[1]!.invite(room.id, 'outsider'))).toBe('forbidden');
    const h = await owner!.history(room.id);
    expect(h.messages.some((m) => m.user === 'outsider')).toBe(false);
  });

  it('an invited user who is online starts receiving the room at once, join message included', async () => {
    const a = await srv.client('inv-a');
    const b = await srv.client('inv-b');
    const atB = collect(b);
    const roomEvents: string[] = [];
    b.on('room', (r) => roomEvents.push(r.room));
    const room = await a.createRoom('group', 'Invite');
    await a.invite(room.id, 'inv-b');
    await a.send(room.id, 'welcome');
    await waitFor(() => atB.some((m) => m.room === room.id && m.text === 'welcome'), 5000, 'message after invite');
    const kinds = atB.filter((m) => m.room === room.id).map((m) => m.kind);
    expect(kinds).toEqual(['join', 'text']);
    expect(roomEvents).toContain(room.id);
  });

  it('a member who leaves stops receiving and loses access', async () => {
    const a = await srv.client('lv-a');
    const b = await srv.client('lv-b');
    const room = await a.createRoom('group', 'Leave');
    await a.invite(room.id, 'lv-b');
    await waitFor(() => b.rooms.has(room.id), 5000, 'b sees the room');
    await b.leave(room.id);
    const atB = collect(b, room.id);
    await a.send(room.id, 'after you left');
    await new Promise((r) => setTimeout(r, 100));
    expect(atB).toHaveLength(0);
    expect(await code(b.history(room.id))).toBe('forbidden');
    expect(await code(b.send(room.id, 'x'))).toBe('forbidden');
  });
});
