// Builds unmasked server-to-client WebSocket text frames (RFC 6455 §5.2), so a fan-out frames
// an event once and writes the same bytes to every socket.

/** The header of a text frame carrying `len` payload bytes. */
export function textFrameHeader(len: number): Buffer {
  const head = Buffer.allocUnsafe(len < 126 ? 2 : len < 65536 ? 4 : 10);
  writeHeader(head, len);
  return head;
}

/** A whole text frame in one buffer (header and payload), for bytes written to many sockets. */
export function textFrame(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + len);
  writeHeader(out, len);
  payload.copy(out, head);
  return out;
}

function writeHeader(out: Buffer, len: number): void {
  out[0] = 0x81; // FIN + text opcode
  if (len < 126) {
    out[1] = len;
  } else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
}
