// Type declarations for the two untyped peer packages, limited to what the benchmark uses.

declare module 'socket.io-client-v2' {
  interface V2Socket {
    on(event: string, fn: (...args: never[]) => void): V2Socket;
    once(event: string, fn: (...args: never[]) => void): V2Socket;
    emit(event: string, ...args: unknown[]): V2Socket;
    disconnect(): V2Socket;
  }
  interface V2Options {
    transports?: string[];
    query?: Record<string, string>;
    reconnection?: boolean;
    forceNew?: boolean;
  }
  function io(url: string, opts?: V2Options): V2Socket;
  export default io;
}

declare module 'chat-service' {
  import type { Server as HttpServer } from 'node:http';
  interface HandshakeData {
    query: Record<string, string | undefined>;
  }
  interface ChatServiceOptions {
    port?: number;
    enableRoomsManagement?: boolean;
    transportOptions?: { http?: HttpServer; ioOptions?: Record<string, unknown> };
  }
  interface Hooks {
    onConnect?: (service: ChatService, id: string) => Promise<string | [string, Record<string, unknown>]>;
  }
  class ChatService {
    constructor(options: ChatServiceOptions, hooks?: Hooks);
    transport: { getHandshakeData(id: string): HandshakeData };
    close(): Promise<void>;
  }
  export default ChatService;
}
