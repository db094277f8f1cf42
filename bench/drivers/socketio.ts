// Client of the Socket.IO 4 peer (bench/peers/socketio.ts) through socket.io-client 4, the
// way an application would use it: events with acknowledgement callbacks.
import { io, type Socket } from 'socket.io-client';
import type { Ack, ClientConn, Connect } from './driver.js';
import { SETUP_TIMEOUT_MS, withTimeout } from './driver.js';
import type { RoomSpec } from '../types.js';

interface AckReply {
  error?: string;
  seq?: number;
}

class SocketIoConn implements ClientConn {
  constructor(private readonly socket: Socket) {}

  private join(room: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        this.socket.emit('join', room, (r: AckReply) => (r.error ? reject(new Error(r.error)) : resolve()));
      }),
      SETUP_TIMEOUT_MS,
      'socketio join',
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
    this.socket.emit('message', { room, text }, (r: AckReply) => ack(r.error ?? null));
  }

  close(): void {
    this.socket.disconnect();
  }
}

export const connectSocketIo: Connect = async (o) => {
  const socket = io(`http://127.0.0.1:${o.target.port}`, {
    transports: ['websocket'],
    auth: { token: o.token },
    reconnection: false,
    forceNew: true,
    // engine.io-client passes localAddress on to `ws`; its option types do not list it.
    ...({ localAddress: o.localAddress } as object),
  });
  socket.on('message', (m: { room: string; text: string }) => o.onText(m.room, m.text));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (e) => reject(e));
    }),
    SETUP_TIMEOUT_MS,
    'socketio connect',
  );
  socket.on('disconnect', () => o.onClose());
  return new SocketIoConn(socket);
};
