// A deleted room's Chat21 state goes with it: a group created again with the same id, by
// someone else, shows none of the old group's attributes, and the old conversation's archive
// mark does not make the new one read as archived.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from './helpers.js';
import { rest, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer();
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

describe('a Chat21 group deleted and created again', () => {
  it("starts clean: the new owner sees no old attributes, a former member's old archive is gone", async () => {
    const tokA = await s.token('rita');
    const tokM = await s.token('mona');
    const id = 'group-reused';
    const made = await rest(s.url, tokA, 'POST', '/groups', { group_name: 'orig', group_id: id });
    expect(made.status).toBe(201);
    const attrs = await rest(s.url, tokA, 'PUT', `/groups/${id}/attributes`, { attributes: { secretNote: 'rita-only' } });
    expect(attrs.body).toMatchObject({ success: true, result: { attributes: { secretNote: 'rita-only' } } });
    expect((await rest(s.url, tokA, 'DELETE', `/conversations/${id}`)).status).toBe(201);
    expect((await rest(s.url, tokA, 'GET', '/rita/archived_conversations')).body.result).toMatchObject([{ conversWith: id, archived: true }]);

    // Rita deletes the room (Parley's destroy); Mona takes the id and adds Rita to it.
    const rita = await s.client('rita');
    await rita.request('destroy', { room: id });
    // Over Parley's own protocol, as the report did, so nothing Chat21 sees the new room made.
    const mona = await s.client('mona');
    await mona.createRoom('group', 'new', { room: id });
    await mona.invite(id, 'rita');

    const seen = await rest(s.url, tokM, 'GET', `/groups/${id}`);
    expect(seen.body).toMatchObject({ success: true, result: { name: 'new', owner: 'mona' } });
    expect((seen.body.result as { attributes: unknown }).attributes).toEqual({});
    expect((await rest(s.url, tokA, 'GET', '/rita/archived_conversations')).body.result).toEqual([]);
    const active = (await rest(s.url, tokA, 'GET', '/rita/conversations')).body.result as Array<{ conversWith: string }>;
    expect(active.find((c) => c.conversWith === id)).toMatchObject({ archived: false, recipient_fullname: 'new' });
  });
});
