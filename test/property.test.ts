import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { collect, startServer, waitFor, type TestServer } from './helpers.js';
import type { Message } from '../src/protocol/schema.js';
import type { ParleyClient } from '../src/client/index.js';

let srv: TestServer;
let clients: ParleyClient[];
const users = ['pa', 'pb', 'pc'];
beforeAll(async () => {
  // The rounds run back to back well above the default per-user rate; the rate limit has tests of its own.
  srv = await startServer({ plugins: { rateLimit: { enabled: false } } });
  clients = [];
  for (const u of users) clients.push(await srv.client(u, { reconnectMinMs: 10, reconnectMaxMs: 40 }));
});
afterAll(async () => {
  await srv.close();
});

const Op = fc.record({
  who: fc.integer({ min: 0, max: users.length - 1 }),
  op: fc.constantFrom('send', 'send', 'send', 'edit', 'delete', 'react', 'drop'),
  pick: fc.nat(),
  wait: fc.boolean(),
});

describe('property: seq and views under random interleavings', () => {
  it('send/edit/delete/react/reconnect keep seq gapless and every member view equal to the stored history', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(Op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const owner = clients[0]!;
        const room = await owner.createRoom('group', `prop-${round++}`);
        for (const u of users.slice(1)) await owner.invite(room.id, u);
        await waitFor(() => clients.every((c) => c.rooms.has(room.id) || c.state !== 'online'), 5000, 'membership');
        const base = (await owner.history(room.id)).last;
        const views = clients.map((c) => collect(c, room.id));
        const mine: number[][] = users.map(() => []);
        const all: number[] = [];
        const inflight: Array<Promise<unknown>> = [];
        for (const o of ops) {
          const c = clients[o.who]!;
          let p: Promise<unknown>;
          if (o.op === 'drop') {
            c.dropConnection();
            continue;
          } else if (o.op === 'send' || mine[o.who]!.length === 0) {
            p = c.send(room.id, `t${o.pick}`).then((r) => {
              mine[o.who]!.push(r.seq);
              all.push(r.seq);
            });
          } else if (o.op === 'edit') {
            p = c.edit(room.id, mine[o.who]![o.pick % mine[o.who]!.length]!, `e${o.pick}`);
          } else if (o.op === 'delete') {
            p = c.deleteMessage(room.id, mine[o.who]![o.pick % mine[o.who]!.length]!);
          } else {
            p = c.react(room.id, all[o.pick % all.length] ?? mine[o.who]![0]!, ':)');
          }
          const settled = p.catch((e: { code: string }) => {
            // Editing or reacting to a deleted message is refused; nothing else may fail.
            if (e.code !== 'conflict') throw e;
          });
          if (o.wait) await settled;
          else inflight.push(settled);
        }
        await Promise.all(inflight);
        const history: Message[] = (await owner.history(room.id, { after: base, limit: 500 })).messages;
        const last = base + history.length;
        expect(history.map((m) => m.seq)).toEqual(Array.from({ length: history.length }, (_, i) => base + 1 + i));
        await waitFor(() => clients.every((c) => (c.lastSeq.get(room.id) ?? 0) >= last), 10000, 'views to catch up');
        for (const v of views) {
          expect(v.filter((m) => m.seq > base)).toEqual(history);
        }
      }),
      { numRuns: 25 },
    );
  });
});
