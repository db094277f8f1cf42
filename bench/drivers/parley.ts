// Parley's WebSocket protocol spoken directly over `ws` (the SDK's reconnect and dedupe
// machinery would hide exactly the losses and duplicates the benchmark must see).
import WebSocket from 'ws';
import type { Ack, ClientConn, Connect, ConnectOptions } from './driver.js';
import { SETUP_TIMEOUT_MS, withTimeout } from './driver.js';
import type { RoomSpec } from '../types.js';

interface Reply {
  id: number;
  ok: boolean;
  data?: Record<string, unknown>;
  error?: { code: string; message: string };
}
interface Push {
  ev: string;
  data: { room: string; kind?: string; text?: string };
}

class ParleyConn implements ClientConn {
  private nextId = 1;
  private readonly pending = new Map<number, (r: Reply) => void>();

  constructor(
    private readonly ws: WebSocket,
    private readonly o: ConnectOptions,
  ) {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Reply | Push;
      if ('ev' in f) {
        if (f.ev === 'message' && f.data.kind === 'text' && f.data.text !== undefined) o.onText(f.data.room, f.data.text);
        return;
      }
      const cb = this.pending.get(f.id);
      if (cb) {
        this.pending.delete(f.id);
        cb(f);
      }
    });
    ws.on('close', () => {
      for (const cb of this.pending.values()) cb({ id: 0, ok: false, error: { code: 'closed', message: 'connection closed' } });
      this.pending.clear();
      o.onClose();
    });
  }

  private request(cmd: string, args: Record<string, unknown>, cb: (r: Reply) => void): void {
    const id = this.nextId++;
    this.pending.set(id, cb);
    this.ws.send(JSON.stringify({ id, cmd, ...args }));
  }

  call(cmd: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    return withTimeout(
      new Promise((resolve, reject) =>
        this.request(cmd, args, (r) => {
          if (r.ok) resolve(r.data ?? {});
          else reject(new Error(`${cmd}: ${r.error?.code}: ${r.error?.message}`));
        }),
      ),
      SETUP_TIMEOUT_MS,
      `parley ${cmd}`,
    );
  }

  async createRoom(room: RoomSpec, users: string[]): Promise<string> {
    if (room.kind === 'direct') return (await this.call('direct', { user: users[1] })).id as string;
    await this.call('create', { kind: room.kind, name: room.id, room: room.id });
    // Group members are invited by the creator; channel members join on their own.
    if (room.kind === 'group') for (const u of users.slice(1)) await this.call('invite', { room: room.id, user: u });
    return room.id;
  }

  async joinRoom(room: RoomSpec, actual: string): Promise<void> {
    // Invitees and direct partners are members already and follow the room live.
    if (room.kind === 'channel') await this.call('join', { room: actual });
  }

  send(room: string, text: string, ack: Ack): void {
    this.request('send', { room, text }, (r) => ack(r.ok ? null : `${r.error?.code}: ${r.error?.message}`));
  }

  close(): void {
    this.ws.terminate();
  }
}

export const connectParley: Connect = async (o) => {
  const ws = new WebSocket(`ws://127.0.0.1:${o.target.port}/ws`, { localAddress: o.localAddress, perMessageDeflate: false });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    SETUP_TIMEOUT_MS,
    'parley connect',
  );
  ws.on('error', () => {
    /* surfaced through close */
  });
  const conn = new ParleyConn(ws, o);
  await conn.call('auth', { token: o.token });
  return conn;
};
