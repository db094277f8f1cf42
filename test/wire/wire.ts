// A raw WebSocket client for the wire tests: frames as the server sent them, commands by id,
// no SDK in between to repair what the server gets wrong. Plus REST calls as a user.
import { expect } from 'vitest';
import { RawSocket, type TestServer } from '../helpers.js';

export interface WireSummary {
  count: number;
  lastTs: number;
  users: string[];
}

/** A `message` event's data, with the fields the wire tests look at. */
export interface WireMessage {
  room: string;
  seq: number;
  kind: string;
  user: string;
  ts: number;
  text?: string;
  target?: number;
  mentions?: string[];
  mentionsAll?: string;
  replyTo?: number;
  quote?: Record<string, unknown>;
  thread?: number;
  alsoToRoom?: boolean;
  summary?: WireSummary;
}

export class Wire {
  private next = 1;
  private constructor(
    readonly raw: RawSocket,
    readonly user: string,
  ) {}

  /** A connection of `user`, authenticated with a token of the server's. */
  static async open(srv: TestServer, user: string): Promise<Wire> {
    const raw = await RawSocket.open(srv.wsUrl);
    const r = await raw.call({ id: 'auth', cmd: 'auth', token: await srv.token(user) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    return new Wire(raw, user);
  }

  /** The data of a command that must succeed. */
  async call<T = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const r = await this.raw.call({ id: this.next++, cmd, ...args });
    expect(r.ok, `${cmd}: ${JSON.stringify(r)}`).toBe(true);
    return r.data as T;
  }

  /** The error code of a command that must fail. */
  async fails(cmd: string, args: Record<string, unknown>): Promise<string> {
    const r = await this.raw.call({ id: this.next++, cmd, ...args });
    expect(r.ok, `${cmd} should fail`).toBe(false);
    return (r.error as { code: string }).code;
  }

  /** Sends `n` texts, 50 in flight at a time; the last one's seq. Forgets the frames received. */
  async sendMany(room: string, n: number, extra: Record<string, unknown> = {}): Promise<number> {
    let last = 0;
    for (let i = 0; i < n; i += 50) {
      const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) => this.call<{ seq: number }>('send', { room, text: `m${i + j}`, ...extra }));
      for (const r of await Promise.all(batch)) last = Math.max(last, r.seq);
    }
    // Frames of the room pile up on this socket: keep only the replies to come.
    this.raw.frames.length = 0;
    return last;
  }

  /** The data of every event `ev` received so far. */
  events<T = Record<string, unknown>>(ev: string): T[] {
    return this.raw.frames.filter((f) => f.ev === ev).map((f) => f.data as T);
  }

  /** The `message` event received for a room's seq. */
  message(room: string, seq: number): WireMessage | undefined {
    return this.events<WireMessage>('message').find((m) => m.room === room && m.seq === seq);
  }

  close(): void {
    this.raw.close();
  }
}

/** A REST call (`/api/v1`) with a token of `user`'s: the status and the JSON body. */
export async function rest(
  srv: TestServer,
  user: Wire | string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${srv.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await srv.token(typeof user === 'string' ? user : user.user)}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

let rooms = 0;
/** A new room of `owner`'s with the others invited; its id. */
export async function room(kind: 'group' | 'channel', owner: Wire, ...others: Wire[]): Promise<string> {
  const id = (await owner.call<{ id: string }>('create', { kind, name: `wire ${rooms++}` })).id;
  for (const o of others) await owner.call('invite', { room: id, user: o.user });
  return id;
}
