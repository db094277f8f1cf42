// The delivery contract at the wire, with raw WebSocket clients (no SDK: the SDK drops
// duplicates and resumes on gaps by itself, which would hide a server's mistakes). Every
// check reads the frames exactly as the server wrote them: each message of a followed room
// once, in seq order, across concurrent senders, reconnects with `resume`, the `resume`
// command, membership changes and retention.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, startServer, waitFor, type TestServer } from '../helpers.js';

let srv: TestServer;
// A small send buffer limit makes a replay pause for the socket to drain (at half of it), as a
// long one does in production: live messages then arrive while the connection catches up.
beforeAll(async () => {
  srv = await startServer({ limits: { slowConsumerBytes: 65536, maxInFlight: 1000 }, plugins: { rateLimit: { enabled: false } } });
});
afterAll(async () => {
  await srv?.close();
});

/** A raw client: frames as received, commands by id. */
class Wire {
  private next = 1;
  private constructor(
    readonly raw: RawSocket,
    readonly user: string,
  ) {}
  static async open(user: string, resume?: Record<string, number>): Promise<Wire> {
    const raw = await RawSocket.open(srv.wsUrl);
    const w = new Wire(raw, user);
    const r = await raw.call({ id: 'auth', cmd: 'auth', token: await srv.token(user), ...(resume ? { resume } : {}) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    return w;
  }
  async call<T = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const r = await this.raw.call({ id: this.next++, cmd, ...args });
    expect(r.ok, `${cmd}: ${JSON.stringify(r)}`).toBe(true);
    return r.data as T;
  }
  /** Sends without waiting for the reply (many in flight). */
  fire(cmd: string, args: Record<string, unknown>): void {
    this.raw.sendText(JSON.stringify({ id: `f${this.next++}`, cmd, ...args }));
  }
  /** Sends `n` texts, at most 50 in flight, and resolves once every one is acknowledged. */
  async sendMany(room: string, n: number, prefix: string): Promise<void> {
    for (let i = 0; i < n; i += 50) {
      const ids: string[] = [];
      for (let j = i; j < Math.min(n, i + 50); j++) {
        const id = `m${this.next++}`;
        ids.push(id);
        this.raw.sendText(JSON.stringify({ id, cmd: 'send', room, text: `${prefix} ${j}` }));
      }
      for (const id of ids) expect((await this.raw.reply(id)).ok).toBe(true);
    }
  }
  /** Seqs of the room's message events, in arrival order. */
  seqs(room: string): number[] {
    return this.raw.frames.filter((f) => f.ev === 'message' && (f.data as { room: string }).room === room).map((f) => (f.data as { seq: number }).seq);
  }
  events(ev: string): Array<Record<string, unknown>> {
    return this.raw.frames.filter((f) => f.ev === ev).map((f) => f.data as Record<string, unknown>);
  }
  close(): void {
    this.raw.close();
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A channel created by `owner`, joined by `others`; returns its id and last seq. */
async function channel(owner: Wire, ...others: Wire[]): Promise<string> {
  const room = (await owner.call<{ id: string }>('create', { kind: 'channel', name: `wire ${owner.user} ${Math.random()}` })).id;
  for (const o of others) await o.call('join', { room });
  return room;
}

describe('delivery at the wire', () => {
  it('every member receives each message once, in seq order, while several connections send at once', async () => {
    const [a, b, c] = await Promise.all([Wire.open('w-a'), Wire.open('w-b'), Wire.open('w-c')]);
    const room = await channel(a, b, c);
    const start = (await a.call<{ last: number }>('history', { room, limit: 1 })).last;
    const each = 150;
    for (let i = 0; i < each; i++) for (const w of [a, b, c]) w.fire('send', { room, text: `${w.user} ${i}` });
    const end = start + 3 * each;
    await waitFor(() => [a, b, c].every((w) => w.seqs(room).at(-1) === end || w.raw.closeCode !== null), 15000, 'every message everywhere');
    for (const w of [a, b, c]) expect(w.raw.closeCode, `${w.user} was closed`).toBeNull();
    for (const w of [a, b, c]) expect(w.seqs(room).filter((s) => s > start)).toEqual(range(start + 1, end));
    // The sends of one connection are stored in the order it sent them.
    const history = (await a.call<{ messages: Array<{ user: string; text: string }> }>('history', { room, after: start, limit: 500 })).messages;
    for (const w of [a, b, c]) {
      expect(history.filter((m) => m.user === w.user).map((m) => m.text)).toEqual(range(0, each - 1).map((i) => `${w.user} ${i}`));
    }
    for (const w of [a, b, c]) w.close();
  });

  it('auth with resume replays exactly the gap while the room goes on live, then continues: no hole, no duplicate', async () => {
    const writer = await Wire.open('w-writer');
    const reader = await Wire.open('w-reader');
    const room = await channel(writer, reader);
    const seen = (await reader.call<{ last: number }>('history', { room, limit: 1 })).last;
    reader.close();
    // A long gap: the replay takes several store pages and pauses for the socket to drain.
    await writer.sendMany(room, 1500, 'a message long enough to fill the send buffer during the replay, gap');
    // Live sends keep coming while the reader reconnects and replays.
    let live = 0;
    const feeding = setInterval(() => {
      for (let i = 0; i < 5; i++) {
        writer.fire('send', { room, text: `live ${live++}` });
      }
    }, 2);
    const back = await Wire.open('w-reader', { [room]: seen });
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(feeding);
    const end = seen + 1500 + live;
    await waitFor(() => back.seqs(room).at(-1) === end, 15000, 'replay and live');
    expect(back.seqs(room)).toEqual(range(seen + 1, end));
    writer.close();
    back.close();
  });

  it('the resume command on a live connection replays after the given seq, then continues live, exactly once', async () => {
    const writer = await Wire.open('w-writer2');
    const reader = await Wire.open('w-reader2');
    const room = await channel(writer, reader);
    const start = (await reader.call<{ last: number }>('history', { room, limit: 1 })).last;
    await writer.sendMany(room, 800, 'a message long enough to fill the send buffer during the replay, number');
    await waitFor(() => reader.seqs(room).at(-1) === start + 800, 15000, 'live delivery');
    const from = start + 50;
    // Everything up to here was delivered; what follows is the replay, with live sends over it.
    const mark = reader.raw.frames.length;
    const r = await reader.call<{ rooms: Record<string, number>; denied: string[] }>('resume', { rooms: { [room]: from, 'not-mine': 3 } });
    let live = 0;
    const feeding = setInterval(() => {
      for (let i = 0; i < 3; i++) writer.fire('send', { room, text: `after ${live++}` });
    }, 2);
    await new Promise((res) => setTimeout(res, 200));
    clearInterval(feeding);
    expect(r).toEqual({ rooms: { [room]: from }, denied: ['not-mine'] });
    const end = start + 800 + live;
    await waitFor(() => reader.seqs(room).at(-1) === end, 15000, 'resume and live');
    const after = reader.raw.frames
      .slice(mark)
      .filter((f) => f.ev === 'message')
      .map((f) => (f.data as { seq: number }).seq);
    expect(after).toEqual(range(from + 1, end));
    writer.close();
    reader.close();
  });

  it('a member added to a room receives it from its join message on; after leaving, nothing more', async () => {
    const owner = await Wire.open('w-owner');
    const guest = await Wire.open('w-guest');
    const room = (await owner.call<{ id: string }>('create', { kind: 'group', name: 'g' })).id;
    for (let i = 0; i < 5; i++) await owner.call('send', { room, text: `before ${i}` });
    const { member } = await owner.call<{ member: { joinSeq: number } }>('invite', { room, user: 'w-guest' });
    for (let i = 0; i < 5; i++) await owner.call('send', { room, text: `after ${i}` });
    await waitFor(() => guest.seqs(room).length === 6, 5000, 'join and five messages');
    expect(guest.seqs(room)).toEqual(range(member.joinSeq, member.joinSeq + 5));
    expect(guest.events('room')).toEqual([{ room, member: expect.objectContaining({ user: 'w-guest', joinSeq: member.joinSeq }) }]);
    const { room: left } = await guest.call<{ room: string }>('leave', { room });
    expect(left).toBe(room);
    await owner.call('send', { room, text: 'gone' });
    await owner.call('send', { room, text: 'still gone' });
    await waitFor(() => guest.events('room').length === 2, 5000, 'removal event');
    // The leave message is the last of the room the guest receives.
    expect(guest.seqs(room).at(-1)).toBe(member.joinSeq + 6);
    owner.close();
    guest.close();
  });

  it('resuming from a seq retention removed gets one gap event naming the range, then every message kept', async () => {
    const owner = await Wire.open('w-ret');
    const room = (await owner.call<{ id: string }>('create', { kind: 'group', name: 'short' })).id;
    await owner.call('update', { room, retention: { count: 10 } });
    for (let i = 0; i < 40; i++) await owner.call('send', { room, text: `m${i}` });
    await srv.parley.sweep();
    const { first, last } = await owner.call<{ first: number; last: number }>('history', { room, limit: 1 });
    owner.close();
    const back = await Wire.open('w-ret', { [room]: 3 });
    await waitFor(() => back.seqs(room).at(-1) === last, 5000, 'replay');
    const frames = back.raw.frames.filter((f) => f.ev === 'gap' || (f.ev === 'message' && (f.data as { room: string }).room === room));
    expect(frames[0]).toEqual({ ev: 'gap', data: { room, from: 4, to: first - 1 } });
    expect(back.events('gap')).toHaveLength(1);
    expect(back.seqs(room)).toEqual(range(first, last));
    back.close();
  });
});
