// Client of the bare `ws` relay (bench/peers/ws-relay.ts). The relay has no acknowledgement:
// a send counts as acknowledged when the relay hands it back to its own sender.
import WebSocket from 'ws';
import type { Ack, ClientConn, Connect, ConnectOptions } from './driver.js';
import { SETUP_TIMEOUT_MS, withTimeout } from './driver.js';
import type { RoomSpec } from '../types.js';

interface Frame {
  t: string;
  room: string;
  text?: string;
}

class RelayConn implements ClientConn {
  private readonly acks = new Map<string, Ack>();
  private readonly joins = new Map<string, () => void>();

  constructor(
    private readonly ws: WebSocket,
    o: ConnectOptions,
  ) {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (f.t === 'msg' && f.text !== undefined) {
        const ack = this.acks.get(f.text);
        if (ack) {
          this.acks.delete(f.text);
          ack(null);
        }
        o.onText(f.room, f.text);
      } else if (f.t === 'joined') {
        this.joins.get(f.room)?.();
        this.joins.delete(f.room);
      }
    });
    ws.on('close', () => {
      for (const ack of this.acks.values()) ack('closed');
      this.acks.clear();
      o.onClose();
    });
  }

  private join(room: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        this.joins.set(room, resolve);
        this.ws.send(JSON.stringify({ t: 'join', room }));
      }),
      SETUP_TIMEOUT_MS,
      'ws-relay join',
    );
  }

  async createRoom(room: RoomSpec): Promise<string> {
    await this.join(room.id);
    return room.id;
  }

  joinRoom(_room: RoomSpec, actual: string): Promise<void> {
    return this.join(actual);
  }

  send(room: string, text: string, ack: Ack): void {
    this.acks.set(text, ack);
    this.ws.send(JSON.stringify({ t: 'msg', room, text }));
  }

  close(): void {
    this.ws.terminate();
  }
}

export const connectRelay: Connect = async (o) => {
  const ws = new WebSocket(`ws://127.0.0.1:${o.target.port}/?user=${encodeURIComponent(o.user)}`, { localAddress: o.localAddress, perMessageDeflate: false });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    SETUP_TIMEOUT_MS,
    'ws-relay connect',
  );
  ws.on('error', () => {
    /* surfaced through close */
  });
  return new RelayConn(ws, o);
};
