// Node-to-node forwarding between real HTTP servers over real WebSockets: round trips,
// pipelining, the owner's errors relayed, authentication by the shared secret, a dead or silent
// peer answered `unavailable` within the timeout, reconnection, and the in-flight bound.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { WebSocket } from 'ws';
import { ParleyError } from '../src/errors.js';
import { WsForwarder, authHeaders, type WsForwarderOptions } from '../src/cluster/forward.js';
import { NotOwnerError, makeView, ownerIn, type NodeRef } from '../src/cluster/placement.js';
import { threadWrites } from './helpers.js';

const log = pino({ level: 'silent' });
const SECRET = 'a-shared-cluster-secret';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Node {
  fwd: WsForwarder;
  http: Server;
  ref: NodeRef;
  close(): Promise<void>;
}
const open: Node[] = [];
afterEach(async () => {
  for (const n of open.splice(0)) await n.close();
});

async function listen(http: Server, port = 0): Promise<number> {
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', () => r()));
  return (http.address() as AddressInfo).port;
}

/** A node: a forwarder taking /cluster upgrades on its own HTTP server. */
async function node(id: string, opts: Partial<WsForwarderOptions> = {}, port = 0): Promise<Node> {
  const fwd = new WsForwarder({ self: id, secret: SECRET, log, timeoutMs: 1000, ...opts });
  const http = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  http.on('upgrade', (req, socket, head) => {
    if (!fwd.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
  });
  const p = await listen(http, port);
  const n: Node = {
    fwd,
    http,
    ref: { id, url: `http://127.0.0.1:${p}` },
    close: async () => {
      await fwd.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
  open.push(n);
  return n;
}

/** The status a raw upgrade with `headers` gets (101 when accepted). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/cluster', { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });
}

describe('forwarding between nodes', () => {
  it('runs calls on the peer, pipelined, and relays its answers and coded errors', async () => {
    const a = await node('a');
    const b = await node('b');
    b.fwd.serve(async (room, op) => {
      const o = op as { n: number; fail?: string };
      if (o.fail === 'forbidden') throw new ParleyError('forbidden', 'not a member', { room });
      if (o.fail === 'owner') throw new NotOwnerError(room, 7);
      if (o.fail === 'crash') throw new Error('secret internals');
      await sleep(50 - o.n); // later calls answer first
      return { room, n: o.n, on: 'b' };
    });
    const results = await Promise.all(Array.from({ length: 40 }, (_, n) => a.fwd.call(b.ref, `r${n}`, { n })));
    expect(results).toEqual(Array.from({ length: 40 }, (_, n) => ({ room: `r${n}`, n, on: 'b' })));
    await expect(a.fwd.call(b.ref, 'r', { n: 0, fail: 'forbidden' })).rejects.toMatchObject({
      code: 'forbidden',
      message: 'not a member',
      details: { room: 'r' },
    });
    const notOwner = await a.fwd.call(b.ref, 'x', { n: 0, fail: 'owner' }).catch((e: unknown) => e);
    expect(notOwner).toBeInstanceOf(NotOwnerError);
    expect(notOwner).toMatchObject({ code: 'unavailable', room: 'x', epoch: 7 });
    const crash = await a.fwd.call(b.ref, 'r', { n: 0, fail: 'crash' }).catch((e: unknown) => e);
    expect(crash).toMatchObject({ code: 'internal' });
    expect((crash as Error).message).not.toContain('secret internals');
    expect(a.fwd.inFlight('b')).toBe(0);
  });

  it('answers NotOwnerError for a room the receiver does not own in its view', async () => {
    const view = makeView(3, [
      { id: 'a', url: '' },
      { id: 'b', url: '' },
    ]);
    const placement = { view: () => view, isLocal: (room: string) => ownerIn(view, room)?.id === 'b', refresh: async () => view };
    const a = await node('a');
    const b = await node('b', { placement });
    b.fwd.serve(async (room) => room);
    const rooms = Array.from({ length: 20 }, (_, i) => `room-${i}`);
    const mine = rooms.find((r) => ownerIn(view, r)?.id === 'b')!;
    const other = rooms.find((r) => ownerIn(view, r)?.id === 'a')!;
    await expect(a.fwd.call(b.ref, mine, {})).resolves.toBe(mine);
    await expect(a.fwd.call(b.ref, other, {})).rejects.toBeInstanceOf(NotOwnerError);
  });

  it("hands calls on in the order they came while one catches up with the caller's newer view", async () => {
    // b acts on epoch 3 where it does not own the room; a knows of epoch 4, where b does. b's
    // first refresh is slow; meanwhile another read already moved b's view on.
    const state = { epoch: 3, local: false };
    let release!: () => void;
    const placement = {
      view: () => makeView(state.epoch, [{ id: 'b', url: '' }]),
      isLocal: () => state.local,
      refresh: () =>
        new Promise<never>((r) => {
          release = () => r(placement.view() as never);
        }),
    };
    const a = await node('a', { placement: { view: () => makeView(4, [{ id: 'b', url: '' }]), isLocal: () => false, refresh: async () => makeView(4, []) } });
    const b = await node('b', { placement });
    const handed: number[] = [];
    b.fwd.serve(async (_room, op) => {
      handed.push((op as { n: number }).n);
      return null;
    });
    const first = a.fwd.call(b.ref, 'room', { n: 1 });
    await sleep(100);
    state.epoch = 4;
    state.local = true;
    const second = a.fwd.call(b.ref, 'room', { n: 2 });
    await sleep(100);
    expect(handed).toEqual([]);
    release();
    await Promise.all([first, second]);
    expect(handed).toEqual([1, 2]);
  });

  it('refuses a peer without the shared secret, and a call meant for another node', async () => {
    const b = await node('b');
    let ran = 0;
    b.fwd.serve(async () => {
      ran++;
      return 1;
    });
    const wrong = await node('a', { secret: 'another-secret-of-16+' });
    const t0 = performance.now();
    await expect(wrong.fwd.call(b.ref, 'r', {})).rejects.toMatchObject({ code: 'unavailable' });
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(ran).toBe(0);
    // At the wire: no credentials, a wrong signature, a stale one, one for another node.
    expect(await upgradeStatus(b.ref.url, {})).toBe(401);
    expect(await upgradeStatus(b.ref.url, { ...authHeaders(SECRET, 'a', 'b'), 'x-parley-auth': 'AAAA' })).toBe(401);
    expect(await upgradeStatus(b.ref.url, authHeaders('another-secret-of-16+', 'a', 'b'))).toBe(401);
    expect(await upgradeStatus(b.ref.url, authHeaders(SECRET, 'a', 'b', Date.now() - 10 * 60_000))).toBe(401);
    expect(await upgradeStatus(b.ref.url, authHeaders(SECRET, 'a', 'c'))).toBe(421);
    expect(await upgradeStatus(b.ref.url, authHeaders(SECRET, 'a', 'b'))).toBe(101);
    expect(ran).toBe(0);
  });

  it('a dead or silent peer gives unavailable within the timeout; the caller reconnects once the peer is back', async () => {
    const a = await node('a', { timeoutMs: 500, backoffMs: 50, maxBackoffMs: 200 });
    // Nothing listens there.
    const gone = await node('b');
    const port = Number(new URL(gone.ref.url).port);
    await gone.close();
    open.splice(open.indexOf(gone), 1);
    let t0 = performance.now();
    await expect(a.fwd.call(gone.ref, 'r', {})).rejects.toMatchObject({ code: 'unavailable' });
    expect(performance.now() - t0).toBeLessThan(900);
    // A peer that takes the call and never answers.
    const silent = await node('s');
    silent.fwd.serve(() => new Promise(() => undefined));
    t0 = performance.now();
    await expect(a.fwd.call(silent.ref, 'r', {})).rejects.toMatchObject({ code: 'unavailable' });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(900);
    expect(a.fwd.inFlight('s')).toBe(0);
    // The dead peer comes back on its port: calls go through again.
    const back = await node('b', {}, port);
    back.fwd.serve(async () => 'back');
    let answer: unknown;
    for (let i = 0; i < 20 && answer === undefined; i++) {
      answer = await a.fwd.call(gone.ref, 'r', {}).catch(() => undefined);
    }
    expect(answer).toBe('back');
    // A connection that drops fails its calls in flight at once, then reconnects.
    let release = (): void => undefined;
    back.fwd.serve(
      () =>
        new Promise((r) => {
          release = () => r('late');
        }),
    );
    const lost = a.fwd.call(gone.ref, 'r', {}).catch((e: unknown) => e);
    await sleep(50);
    await back.fwd.close();
    expect(await lost).toMatchObject({ code: 'unavailable' });
    release();
  });

  it('calls made in one turn leave the caller in one system call, not one each', async () => {
    const a = await node('a');
    const b = await node('b');
    b.fwd.serve(async (_room, op) => op);
    expect(await a.fwd.call(b.ref, 'r', 0)).toBe(0); // connected
    const before = threadWrites();
    const calls = Array.from({ length: 40 }, (_, i) => a.fwd.call(b.ref, `r${i}`, i));
    await new Promise<void>((r) => setImmediate(r));
    const made = threadWrites() - before;
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(made).toBeLessThanOrEqual(2);
  });

  it('bounds the calls in flight to a peer and refuses more than the queue holds', async () => {
    const a = await node('a', { maxInFlight: 4, maxQueued: 2, timeoutMs: 5000 });
    const b = await node('b');
    let running = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    b.fwd.serve(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
      return 'done';
    });
    let settled = 0;
    const calls = Array.from({ length: 10 }, (_, i) =>
      a.fwd
        .call(b.ref, `r${i}`, {})
        .then(
          (v) => v,
          (e: unknown) => e,
        )
        .finally(() => {
          settled++;
        }),
    );
    await sleep(200);
    expect(settled).toBe(4); // beyond 4 in flight and 2 queued: refused at once
    expect(running).toBe(4);
    expect(a.fwd.inFlight('b')).toBe(4);
    while (settled < 10) {
      gates.shift()?.();
      await sleep(20);
    }
    const out = await Promise.all(calls);
    expect(out.filter((v) => v === 'done')).toHaveLength(6);
    expect(out.filter((v) => (v as ParleyError).code === 'unavailable')).toHaveLength(4);
    expect(most).toBe(4);
  });

  it('checks its options', () => {
    expect(() => new WsForwarder({ self: 'a', secret: 'short', log })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => new WsForwarder({ self: 'a b', secret: SECRET, log })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => new WsForwarder({ self: 'a', secret: SECRET, log, maxInFlight: 0 })).toThrow(expect.objectContaining({ code: 'invalid' }));
  });
});
