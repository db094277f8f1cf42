import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startServer, waitFor, type TestServer } from './helpers.js';
import type { ParleyClient } from '../src/client/index.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.close();
});

describe('channels', () => {
  it('twenty clients with concurrent senders: everyone gets every message once, in gapless seq order', async () => {
    const owner = await srv.client('ch-0');
    const room = await owner.createRoom('channel', 'Busy');
    const clients: ParleyClient[] = [owner];
    for (let i = 1; i < 20; i++) {
      const c = await srv.client(`ch-${i}`);
      await c.join(room.id);
      clients.push(c);
    }
    const base = (await owner.history(room.id)).last;
    const seen = clients.map((c) => collect(c, room.id));
    const senders = clients.slice(0, 6);
    const perSender = 40;
    const acks = await Promise.all(senders.map((c, s) => Promise.all(Array.from({ length: perSender }, (_, i) => c.send(room.id, `s${s}-${i}`)))));
    const total = senders.length * perSender;
    const ackSeqs = acks
      .flat()
      .map((a) => a.seq)
      .sort((x, y) => x - y);
    expect(ackSeqs).toEqual(Array.from({ length: total }, (_, i) => base + 1 + i));

    await waitFor(() => seen.every((s) => s.filter((m) => m.seq > base).length >= total), 15000, 'all deliveries');
    await new Promise((r) => setTimeout(r, 100)); // anything extra would arrive now
    for (const s of seen) {
      const got = s.filter((m) => m.seq > base).map((m) => m.seq);
      expect(got).toEqual(Array.from({ length: total }, (_, i) => base + 1 + i));
    }
    // Each sender's messages are stored in the order it sent them.
    const history = await owner.history(room.id, { after: base, limit: 500 });
    for (let s = 0; s < senders.length; s++) {
      const mine = history.messages.filter((m) => m.user === `ch-${s}`).map((m) => m.text);
      expect(mine).toEqual(Array.from({ length: perSender }, (_, i) => `s${s}-${i}`));
    }
  });

  it('public channels are listed and joinable; groups are not listed', async () => {
    const a = await srv.client('lst-a');
    const ch = await a.createRoom('channel', 'Open', { topic: 'anything' });
    const grp = await a.createRoom('group', 'Closed');
    const b = await srv.client('lst-b');
    const pub = await b.listRooms('public');
    expect(pub.rooms.map((r) => r.id)).toContain(ch.id);
    expect(pub.rooms.map((r) => r.id)).not.toContain(grp.id);
    const joined = await b.join(ch.id);
    expect(joined.member.role).toBe('member');
    expect((await b.listRooms()).rooms.map((r) => r.id)).toContain(ch.id);
    await expect(b.join(ch.id)).rejects.toMatchObject({ code: 'conflict' });
  });
});
