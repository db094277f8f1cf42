// A send through the SDK ends in a definite state: acknowledged (stored once) or refused.
// A slow reply is not a failure — the SDK keeps the send, retries it with its idempotency key
// until the server answers, and tells the caller the key, so a retry by the caller cannot
// store the message twice either.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { removeDir, tempDir, testConfig } from './helpers.js';
import { createParley, type Parley } from '../src/server.js';
import { mintToken } from '../src/auth/jwt.js';
import { ParleyClient } from '../src/client/index.js';
import { commandHook } from '../src/service/hooks.js';
import type { Plugin } from '../src/plugins/plugin.js';
import { ParleyError } from '../src/errors.js';
import { outcomeUnknown } from '../src/protocol/outcome.js';

/** Holds the first attempt of each send whose text starts with "slow" for `ms`, as a busy server would. */
function slowFirstAttempt(ms: number): Plugin {
  const seen = new Set<string>();
  return {
    name: 'slow-first-attempt',
    hooks: [
      commandHook({
        name: 'slow-first-attempt',
        commands: ['send'],
        async before(ctx) {
          const key = ctx.args.key ?? '';
          if (!ctx.args.text.startsWith('slow') || seen.has(key)) return;
          seen.add(key);
          await new Promise((r) => setTimeout(r, ms));
        },
      }),
    ],
  };
}

/**
 * Answers the first `times` attempts of each send whose text starts with "unknown" as a node
 * does when the room's owner did not answer: `unavailable`, outcome unknown.
 */
function unknownOutcome(times: number): Plugin {
  const seen = new Map<string, number>();
  return {
    name: 'unknown-outcome',
    hooks: [
      commandHook({
        name: 'unknown-outcome',
        commands: ['send'],
        before(ctx) {
          const key = ctx.args.key ?? '';
          if (!ctx.args.text.startsWith('unknown')) return;
          const n = seen.get(key) ?? 0;
          seen.set(key, n + 1);
          if (n < times) throw new ParleyError('unavailable', 'the owner did not answer', outcomeUnknown());
        },
      }),
    ],
  };
}

/**
 * Refuses reads of rooms named "flaky…" (history) and searches for "flaky…" `unavailable` on
 * their first `times` attempts, as a node does while the database is away; searches say when
 * to come back (`retryAfterMs`), as the search index catching up does.
 */
function flakyReads(times: number, retryAfterMs: number): Plugin {
  const seen = new Map<string, number>();
  const refuse = (key: string, details?: Record<string, unknown>) => {
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    if (n < times) throw new ParleyError('unavailable', 'the database is away', details);
  };
  return {
    name: 'flaky-reads',
    hooks: [
      commandHook({
        name: 'flaky-history',
        commands: ['history'],
        before(ctx) {
          const name = roomNames.get(ctx.args.room) ?? '';
          if (name.startsWith('flaky')) refuse(`${ctx.user.id}\n${ctx.args.room}`);
          if (name.startsWith('down')) throw new ParleyError('unavailable', 'the database is away');
        },
      }),
      commandHook({
        name: 'flaky-search',
        commands: ['search'],
        before(ctx) {
          if (ctx.args.query.startsWith('flaky')) refuse(`${ctx.user.id}\n${ctx.args.query}`, { retryAfterMs });
        },
      }),
    ],
  };
}
/** Room ids of the rooms the tests made, by name (the hooks see ids). */
const roomNames = new Map<string, string>();

let parley: Parley;
let dir: string;
const clients: ParleyClient[] = [];

beforeAll(async () => {
  dir = tempDir();
  parley = await createParley(testConfig(dir), { logger: pino({ level: 'silent' }), plugins: [slowFirstAttempt(1500), unknownOutcome(2), flakyReads(2, 400)] });
  await parley.listen();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await parley.close();
  removeDir(dir);
});

async function client(user: string, retryUnavailableMs?: number, requestTimeoutMs = 300): Promise<ParleyClient> {
  const c = new ParleyClient({
    url: parley.url,
    token: await mintToken(parley.config, user),
    WebSocket: WebSocket as never,
    requestTimeoutMs,
    ...(retryUnavailableMs === undefined ? {} : { retryUnavailableMs }),
  });
  clients.push(c);
  await c.connect();
  return c;
}

describe('SDK sends', () => {
  it('a send whose reply comes after the request timeout is acknowledged, not failed, and stored once', async () => {
    const a = await client('slow-sender');
    const room = await a.createRoom('group', 'Slow');
    const sending = a.send(room.id, 'slow one');
    const r = await sending;
    expect(r.seq).toBeGreaterThan(0);
    expect(typeof sending.key).toBe('string');
    const texts = (await a.history(room.id)).messages.map((m) => m.text).filter((t) => t !== undefined);
    expect(texts).toEqual(['slow one']);
  });

  it('the key a send was given is the one it is stored under: sending again with it stores nothing new', async () => {
    const a = await client('key-sender');
    const room = await a.createRoom('group', 'Keys');
    const first = a.send(room.id, 'hello');
    const { seq } = await first;
    const again = await a.send(room.id, 'hello', { key: first.key });
    expect(again).toMatchObject({ seq, duplicate: true });
  });

  it('a send answered `unavailable` with its outcome unknown is sent again with its key until it is answered', async () => {
    const a = await client('unknown-sender');
    const room = await a.createRoom('group', 'Unknown');
    const r = await a.send(room.id, 'unknown fate');
    expect(r.seq).toBeGreaterThan(0);
    const texts = (await a.history(room.id)).messages.map((m) => m.text).filter((t) => t !== undefined);
    expect(texts).toEqual(['unknown fate']);
    // Closing the client ends one waiting to be sent again, with `closed`.
    const b = await client('unknown-closer');
    const other = await b.createRoom('group', 'Closing');
    const waiting = b.send(other.id, 'unknown, then closed');
    await new Promise((res) => setTimeout(res, 100));
    b.close();
    await expect(waiting).rejects.toMatchObject({ code: 'closed' });
  });

  it('the sends made after one whose outcome is unknown wait behind it: the room stores them in the order made', async () => {
    const a = await client('order-sender');
    const room = await a.createRoom('group', 'Order');
    const other = await a.createRoom('group', 'Elsewhere');
    const first = a.send(room.id, 'unknown first');
    // Made once the first was answered with its outcome unknown: they must not overtake it.
    await new Promise((res) => setTimeout(res, 50));
    const rest = [a.send(room.id, 'second'), a.send(room.id, 'third')];
    // Another room's send does not wait for it.
    const elsewhere = await a.send(other.id, 'elsewhere');
    expect(elsewhere.seq).toBeGreaterThan(0);
    const results = await Promise.all([first, ...rest]);
    expect(results[0].seq).toBeLessThan(results[1]!.seq);
    expect(results[1]!.seq).toBeLessThan(results[2]!.seq);
    const texts = (await a.history(room.id)).messages.map((m) => m.text).filter((t) => t !== undefined);
    expect(texts).toEqual(['unknown first', 'second', 'third']);
  });

  it('a refused send is rejected with the refusal, once', async () => {
    const a = await client('refused-sender');
    const other = await client('refused-owner');
    const room = await other.createRoom('group', 'Closed');
    await expect(a.send(room.id, 'x')).rejects.toMatchObject({ code: 'forbidden' });
  });
});

describe('SDK reads', () => {
  it('a read refused `unavailable` for a moment is asked again and answered; without retries the refusal reaches the caller', async () => {
    const a = await client('flaky-reader');
    const room = await a.createRoom('group', 'flaky room');
    roomNames.set(room.id, 'flaky room');
    await a.send(room.id, 'still here');
    const h = await a.history(room.id);
    expect(h.messages.map((m) => m.text)).toContain('still here');
    await a.invite(room.id, 'flaky-impatient');
    const b = await client('flaky-impatient', 0);
    await expect(b.history(room.id)).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('a read refused for longer than `retryUnavailableMs` fails with the refusal at the end of that time, not a backoff later', async () => {
    // The default request timeout (10 s) would let a growing wait run well past the window.
    const a = await client('down-reader', 1100, 10_000);
    const room = await a.createRoom('group', 'down room');
    roomNames.set(room.id, 'down room');
    const t0 = Date.now();
    await expect(a.history(room.id)).rejects.toMatchObject({ code: 'unavailable' });
    // Asked again until 1.1 s; a growing wait (0.5-1 s, then 1-2 s) would end it at 1.5 s or later.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1050);
    expect(Date.now() - t0).toBeLessThan(1490);
  });

  it('a search refused with a `retryAfterMs` is asked again after that wait', async () => {
    const a = await client('flaky-searcher');
    const t0 = Date.now();
    const r = await a.search('flaky words');
    expect(r.messages).toEqual([]);
    // Two refusals, each followed by the 400 ms the server named.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800);
  });
});
