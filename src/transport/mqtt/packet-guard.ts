// Bounds the size of MQTT packets on a TCP connection before they are buffered. The MQTT
// parser collects a whole packet in memory, as long as its header says (up to 256 MiB), before
// anything can look at it; this reads the fixed header of each packet as the bytes arrive and
// ends the connection as soon as one announces more than the limit.
import type { Socket } from 'node:net';

export class PacketGuard {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly maxBytes: number) {}

  /** Follows the packets in `chunk`; false when one is too large or its header is malformed. */
  accept(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const b = chunk[i++]!;
        this.length += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (b & 0x80) {
          if (this.lengthBytes === 4) return false;
          continue;
        }
        if (this.length > this.maxBytes) return false;
        this.remaining = this.length;
        this.state = this.remaining > 0 ? 'body' : 'type';
      } else {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'type';
      }
    }
    return true;
  }
}

/**
 * Checks every chunk the MQTT broker reads from `socket` (it reads with `socket.read()`) and
 * destroys the socket, handing nothing on, when a packet announces more than `maxBytes`.
 */
export function guardPackets(socket: Socket, maxBytes: number, onRefused: () => void): void {
  const guard = new PacketGuard(maxBytes);
  const read = socket.read.bind(socket);
  socket.read = (size?: number) => {
    const chunk = read(size) as Buffer | string | null;
    if (chunk === null || socket.destroyed) return chunk;
    if (!guard.accept(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
      onRefused();
      socket.destroy();
      return null;
    }
    return chunk;
  };
}
