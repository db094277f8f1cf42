import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import { pino } from 'pino';
import { collect, freePort, startServer, waitFor, type TestServer } from './helpers.js';
import type { ParleyClient } from '../src/client/index.js';
import { verifySignature } from '../src/plugins/webhooks/index.js';
import { WebhookDispatcher } from '../src/plugins/webhooks/dispatcher.js';
import { backoff } from '../src/client/backoff.js';

const SECRET = 'webhook-secret-0123456789';
const SECRET_FLAKY = 'another-secret-0123456789';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  status: number | 'hang';
}

/** A webhook receiver on 127.0.0.1 whose answer per request is chosen by `answer`. */
async function receiver(answer: (path: string, attempt: number) => number | 'hang') {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const delivery = String(req.headers['x-parley-delivery']);
      const attempt = received.filter((r) => r.path === path && r.headers['x-parley-delivery'] === delivery).length + 1;
      const status = answer(path, attempt);
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), status });
      if (status !== 'hang') res.writeHead(status, { 'content-type': 'text/plain' }).end('thanks');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    received,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let rx: Awaited<ReturnType<typeof receiver>>;
let srv: TestServer;
beforeAll(async () => {
  rx = await receiver((path, attempt) => {
    if (path === '/flaky') return attempt <= 2 ? 500 : 200;
    if (path === '/gone') return 410;
    return 200;
  });
  srv = await startServer({
    plugins: {
      webhooks: {
        backoffMs: 30,
        maxBackoffMs: 200,
        timeoutMs: 2000,
        maxAttempts: 5,
        endpoints: [
          {
            url: `${rx.url}/all`,
            secret: SECRET,
            rooms: ['signed'],
            events: ['room.created', 'member.joined', 'member.left', 'message.sent', 'message.edited', 'message.reacted', 'message.deleted'],
          },
          { url: `${rx.url}/flaky`, secret: SECRET_FLAKY, rooms: ['flaky'], events: ['message.sent'] },
          { url: `${rx.url}/gone`, secret: SECRET, rooms: ['gone'], events: ['message.sent'] },
          { url: `${rx.url}/slack`, format: 'slack', rooms: ['slack'], events: ['message.sent', 'member.joined', 'thread.updated'] },
          { url: `${rx.url}/removed`, secret: SECRET, rooms: ['removed'], events: ['member.left'] },
          { url: `${rx.url}/removed-slack`, format: 'slack', rooms: ['removed'], events: ['member.left'] },
        ],
      },
    },
  });
});
afterAll(async () => {
  await srv?.close();
  await rx?.close();
});

/** The HMAC a receiver computes: sha256 over "<timestamp>.<raw body>" with the shared secret. */
function expectedSignature(secret: string, r: Received): string {
  return (
    'sha256=' +
    createHmac('sha256', secret)
      .update(`${String(r.headers['x-parley-timestamp'])}.${r.body}`)
      .digest('hex')
  );
}

describe('outgoing webhooks', () => {
  it('POST each chosen event, signed with HMAC-SHA256 over timestamp and body', async () => {
    const a = await srv.client('wh-a', {}, true);
    const room = await a.createRoom('group', 'Signed', { room: 'signed' });
    await a.invite(room.id, 'wh-b');
    const sent = await a.send(room.id, 'hello', { data: { mood: 'sunny' } });
    const edited = await a.edit(room.id, sent.seq, 'hello all');
    await a.react(room.id, sent.seq, '🎉');
    await a.deleteMessage(room.id, sent.seq);
    const b = await srv.client('wh-b');
    await b.leave(room.id);
    await waitFor(() => rx.at('/all').length === 7, 5000, 'seven deliveries');

    const events = rx.at('/all').map((r) => JSON.parse(r.body) as { id: string; event: string; ts: number; room: string; data: Record<string, unknown> });
    expect(events.map((e) => e.event).sort()).toEqual([
      'member.joined',
      'member.left',
      'message.deleted',
      'message.edited',
      'message.reacted',
      'message.sent',
      'room.created',
    ]);
    for (const [i, r] of rx.at('/all').entries()) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-parley-event']).toBe(events[i]!.event);
      expect(r.headers['x-parley-delivery']).toBe(events[i]!.id);
      expect(Math.abs(Number(r.headers['x-parley-timestamp']) - Date.now() / 1000)).toBeLessThan(10);
      expect(r.headers['x-parley-signature']).toBe(expectedSignature(SECRET, r));
      expect(verifySignature({ secret: SECRET, body: r.body, signature: r.headers['x-parley-signature'], timestamp: r.headers['x-parley-timestamp'] })).toBe(
        true,
      );
      expect(events[i]!.room).toBe('signed');
    }
    const byEvent = Object.fromEntries(events.map((e) => [e.event, e.data]));
    expect(byEvent['message.sent']).toEqual({
      room: 'signed',
      seq: sent.seq,
      kind: 'text',
      user: 'wh-a',
      name: 'wh-a',
      ts: sent.ts,
      text: 'hello',
      data: { mood: 'sunny' },
    });
    expect(byEvent['message.edited']).toMatchObject({ seq: edited.seq, kind: 'edit', target: sent.seq, text: 'hello all' });
    expect(byEvent['message.reacted']).toMatchObject({ kind: 'reaction', target: sent.seq, data: { emoji: '🎉' } });
    expect(byEvent['message.deleted']).toMatchObject({ kind: 'delete', target: sent.seq });
    expect(byEvent['member.joined']).toMatchObject({ member: { room: 'signed', user: 'wh-b' }, by: 'wh-a' });
    expect(byEvent['member.left']).toEqual({ user: 'wh-b', name: 'wh-b' });
    expect(byEvent['room.created']).toMatchObject({ id: 'signed', kind: 'group', name: 'Signed', createdBy: 'wh-a' });

    // What a receiver must refuse: a changed body, another secret, a replayed old timestamp.
    const r = rx.at('/all')[0]!;
    const check = (o: Partial<Parameters<typeof verifySignature>[0]>) =>
      verifySignature({
        secret: SECRET,
        body: r.body,
        signature: r.headers['x-parley-signature'],
        timestamp: r.headers['x-parley-timestamp'],
        ...o,
      });
    expect(check({ body: r.body.replace('signed', 'signee') })).toBe(false);
    expect(check({ secret: SECRET_FLAKY })).toBe(false);
    expect(check({ now: Date.now() + 10 * 60_000 })).toBe(false);
    expect(check({ signature: undefined })).toBe(false);
  });

  it('sends member.left for a member kicked, banned or evicted, with why and by whom', async () => {
    const owner = await srv.client('whr-owner', {}, true);
    await owner.createRoom('channel', 'Removed', { room: 'removed' });
    for (const u of ['whr-kicked', 'whr-banned', 'whr-evicted', 'whr-left']) await (await srv.client(u)).join('removed');
    await owner.kick('removed', 'whr-kicked', 'spam');
    await owner.ban('whr-banned', { room: 'removed', reason: 'abuse' });
    await owner.request('access', { room: 'removed', list: 'black', add: ['whr-evicted'] });
    await (await srv.client('whr-left')).leave('removed');
    await waitFor(() => rx.at('/removed').length === 4 && rx.at('/removed-slack').length === 4, 5000, 'four member.left deliveries each');

    const events = rx.at('/removed').map((r) => JSON.parse(r.body) as { event: string; room: string; data: Record<string, unknown> });
    expect(events.every((e) => e.event === 'member.left' && e.room === 'removed')).toBe(true);
    expect(events.map((e) => e.data)).toEqual(
      expect.arrayContaining([
        { user: 'whr-kicked', name: 'whr-kicked', reason: 'kicked', by: 'whr-owner', note: 'spam' },
        { user: 'whr-banned', name: 'whr-banned', reason: 'banned', by: 'whr-owner', note: 'abuse' },
        { user: 'whr-evicted', name: 'whr-evicted', reason: 'evicted', by: 'whr-owner' },
        { user: 'whr-left', name: 'whr-left' },
      ]),
    );
    expect(rx.at('/removed-slack').map((r) => JSON.parse(r.body) as unknown)).toEqual(
      expect.arrayContaining([
        { text: '*whr-kicked* was removed from #removed by *whr-owner*: spam' },
        { text: '*whr-banned* was banned from #removed by *whr-owner*: abuse' },
        { text: '*whr-evicted* lost access to #removed' },
        { text: '*whr-left* left #removed' },
      ]),
    );
  });

  it('retries a failing endpoint with growing waits until it accepts, with the same delivery id', async () => {
    const a = await srv.client('whf-a');
    await a.createRoom('group', 'Flaky', { room: 'flaky' });
    await a.send('flaky', 'try, try again');
    await waitFor(() => rx.at('/flaky').some((r) => r.status === 200), 5000, 'a successful attempt');
    const attempts = rx.at('/flaky');
    expect(attempts.map((r) => [r.headers['x-parley-attempt'], r.status])).toEqual([
      ['1', 500],
      ['2', 500],
      ['3', 200],
    ]);
    expect(new Set(attempts.map((r) => r.headers['x-parley-delivery'])).size).toBe(1);
    expect(new Set(attempts.map((r) => r.body)).size).toBe(1);
    for (const r of attempts) expect(r.headers['x-parley-signature']).toBe(expectedSignature(SECRET_FLAKY, r));
    // Backoff: about 30 ms, then about 60 ms (half to all of it, for jitter).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(14);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(29);
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.at('/flaky')).toHaveLength(3);
  });

  it('does not retry an endpoint that refuses the delivery for good (4xx)', async () => {
    const a = await srv.client('whg-a');
    await a.createRoom('group', 'Gone', { room: 'gone' });
    await a.send('gone', 'anyone?');
    await waitFor(() => rx.at('/gone').length === 1, 5000, 'first attempt');
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.at('/gone')).toHaveLength(1);
  });

  it('speaks the Slack incoming-webhook format', async () => {
    const a = await srv.client('whs-a', {}, true);
    await a.createRoom('channel', 'Slack', { room: 'slack' });
    const b = await srv.client('whs-b');
    await b.join('slack');
    const root = await a.send('slack', 'deploy <done> & dusted');
    await b.send('slack', 'nice', { thread: root.seq });
    await waitFor(() => rx.at('/slack').length === 4, 5000, 'four slack deliveries');
    const bodies = rx.at('/slack').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(bodies).toEqual(
      expect.arrayContaining([
        { text: '*whs-b* joined #slack' },
        { text: '*whs-a* in #slack: deploy &lt;done&gt; &amp; dusted' },
        { text: '*whs-b* in #slack: nice' },
        { text: `*whs-b* replied in the thread of message ${root.seq} in #slack (1 reply)` },
      ]),
    );
    for (const r of rx.at('/slack')) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-parley-signature']).toBeUndefined();
    }
  });
});

describe('a dead webhook endpoint', () => {
  let base: TestServer;
  let dead: TestServer;
  let hang: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    hang = await receiver(() => 'hang');
    const refused = `http://127.0.0.1:${await freePort()}/nobody-home`;
    const everything = ['message.sent', 'member.joined', 'room.created'];
    [base, dead] = await Promise.all([
      startServer(),
      startServer({
        plugins: {
          webhooks: {
            timeoutMs: 3000,
            backoffMs: 10,
            maxBackoffMs: 50,
            maxAttempts: 20,
            concurrency: 2,
            endpoints: [
              { url: refused, secret: SECRET, events: everything },
              { url: `${hang.url}/never`, secret: SECRET, events: everything },
            ],
          },
        },
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([base?.close(), dead?.close()]);
    await hang?.close();
  });

  /** Per message: ms from send to the sender's acknowledgement and to the other member's receipt. */
  async function latencies(s: TestServer, prefix: string, n: number) {
    const a: ParleyClient = await s.client(`${prefix}-a`);
    const b: ParleyClient = await s.client(`${prefix}-b`);
    const room = await a.createRoom('group', 'Latency');
    await a.invite(room.id, `${prefix}-b`);
    const got = collect(b, room.id);
    const arrived = new Map<number, number>();
    b.on('message', (m) => {
      if (m.room === room.id) arrived.set(m.seq, performance.now());
    });
    const ack: number[] = [];
    const receipt: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await a.send(room.id, `m${i}`);
      ack.push(performance.now() - t0);
      await waitFor(() => arrived.has(r.seq), 5000, `message ${r.seq}`);
      receipt.push(arrived.get(r.seq)! - t0);
    }
    expect(got.filter((m) => m.kind === 'text')).toHaveLength(n);
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    return { ack: median(ack), receipt: median(receipt), worst: Math.max(...ack, ...receipt) };
  }

  it('does not slow message delivery (connection refused, or no answer at all)', async () => {
    await latencies(base, 'warm', 5);
    const without = await latencies(base, 'lat0', 30);
    const withDead = await latencies(dead, 'lat1', 30);
    await waitFor(() => hang.received.length > 0, 5000, 'the hanging endpoint to be called');
    // Waiting for an endpoint would cost its 3 s timeout per message; queued deliveries cost nothing.
    expect(withDead.worst).toBeLessThan(1000);
    expect(withDead.receipt).toBeLessThan(without.receipt * 3 + 25);
    expect(withDead.ack).toBeLessThan(without.ack * 3 + 25);
  });
});

describe('WebhookDispatcher', () => {
  it('bounds each endpoint queue, and stops at once on close', async () => {
    const hanging = await receiver(() => 'hang');
    const reports: string[] = [];
    const d = new WebhookDispatcher(
      { timeoutMs: 10_000, maxAttempts: 3, backoffMs: 10, maxBackoffMs: 10, concurrency: 1, queueSize: 2 },
      pino({ level: 'silent' }),
      (r) => reports.push(r.error ?? 'ok'),
    );
    const ep = { url: `${hanging.url}/x`, secret: SECRET };
    const accepted = [1, 2, 3, 4].map((i) => d.enqueue(ep, { id: `d${i}`, event: 'message.sent', body: '{}' }));
    expect(accepted).toEqual([true, true, false, false]);
    expect(d.pending).toBe(2);
    await waitFor(() => hanging.received.length === 1, 5000, 'first request');
    const t0 = Date.now();
    await d.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(d.enqueue(ep, { id: 'late', event: 'message.sent', body: '{}' })).toBe(false);
    expect(reports).toContain('shutting down');
    await hanging.close();
  });

  it("logs an endpoint by its origin only: a Slack-style URL's path is its secret", async () => {
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
    const reports: string[] = [];
    const d = new WebhookDispatcher({ timeoutMs: 2000, maxAttempts: 2, backoffMs: 10, maxBackoffMs: 10, concurrency: 1, queueSize: 1 }, log, (r) =>
      reports.push(r.url),
    );
    // Nothing listens there: every attempt fails, and the queue of one overflows.
    const ep = { url: `http://127.0.0.1:${await freePort()}/services/T0001/B0001/SECRETpathTOKEN`, secret: SECRET };
    d.enqueue(ep, { id: 'w1', event: 'message.sent', body: '{}' });
    d.enqueue(ep, { id: 'w2', event: 'message.sent', body: '{}' });
    await waitFor(() => reports.length === 1, 5000, 'the delivery to fail');
    await d.close();
    const logged = lines.join('');
    expect(logged).toContain('webhook delivery failed');
    expect(logged).toContain('webhook queue full');
    expect(logged).not.toContain('SECRETpathTOKEN');
    expect(reports[0]).toBe(new URL(ep.url).origin);
  });

  it('backs off exponentially up to the cap, with jitter between half and all of it', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoff(n, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect([1, 2, 3].map((n) => backoff(n, 100, 1000, () => 0))).toEqual([50, 100, 200]);
  });
});
