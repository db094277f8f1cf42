// Client of the chat-service 1.0.0 peer through socket.io-client 2 (the protocol version its
// socket.io 2 server speaks), using chat-service's RPC commands as its README shows.
import ioV2 from 'socket.io-client-v2';
import type { Ack, ClientConn, Connect } from './driver.js';
import { SETUP_TIMEOUT_MS, withTimeout } from './driver.js';
import type { RoomSpec } from '../types.js';

type V2Socket = ReturnType<typeof ioV2>;
interface CsError {
  name?: string;
  message?: string;
}
const errText = (e: CsError | string | null): string | null =>
  e === null || e === undefined ? null : typeof e === 'string' ? e : `${e.name ?? 'error'}: ${e.message ?? ''}`;

class ChatServiceConn implements ClientConn {
  constructor(private readonly socket: V2Socket) {}

  private rpc(cmd: string, ...args: unknown[]): Promise<unknown> {
    return withTimeout(
      new Promise((resolve, reject) => {
        this.socket.emit(cmd, ...args, (err: CsError | null, data: unknown) => {
          const e = errText(err);
          if (e) reject(new Error(`${cmd}: ${e}`));
          else resolve(data);
        });
      }),
      SETUP_TIMEOUT_MS,
      `chat-service ${cmd}`,
    );
  }

  async createRoom(room: RoomSpec): Promise<string> {
    // Rooms are public (blacklist mode); the creator becomes the owner.
    await this.rpc('roomCreate', room.id, false);
    await this.rpc('roomJoin', room.id);
    return room.id;
  }

  async joinRoom(_room: RoomSpec, actual: string): Promise<void> {
    await this.rpc('roomJoin', actual);
  }

  send(room: string, text: string, ack: Ack): void {
    this.socket.emit('roomMessage', room, { textMessage: text }, (err: CsError | null) => ack(errText(err)));
  }

  close(): void {
    this.socket.disconnect();
  }
}

export const connectChatService: Connect = async (o) => {
  const socket = ioV2(`http://127.0.0.1:${o.target.port}/chat-service`, {
    transports: ['websocket'],
    query: { token: o.token },
    reconnection: false,
    forceNew: true,
    ...({ localAddress: o.localAddress } as object),
  });
  socket.on('roomMessage', (room: string, msg: { textMessage: string }) => o.onText(room, msg.textMessage));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('loginConfirmed', () => resolve());
      socket.once('loginRejected', (e: CsError) => reject(new Error(`login rejected: ${errText(e)}`)));
      socket.once('connect_error', (e: Error) => reject(e));
    }),
    SETUP_TIMEOUT_MS,
    'chat-service login',
  );
  socket.on('disconnect', () => o.onClose());
  return new ChatServiceConn(socket);
};
