// The chat-service 1.0.0 peer on socket.io 2 with its memory state: the README's quick start,
// with the token of the query string verified as a JWT and clients allowed to create rooms.
import { createServer } from 'node:http';
import ChatService from 'chat-service';
import { jwtVerify } from 'jose';

const port = Number(process.env.PORT);
const secret = new TextEncoder().encode(process.env.SECRET);
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 25000);

const http = createServer();
const service = new ChatService(
  {
    enableRoomsManagement: true,
    transportOptions: { http, ioOptions: { pingInterval: heartbeatMs } },
  },
  {
    async onConnect(svc, id) {
      const { query } = svc.transport.getHandshakeData(id);
      const { payload } = await jwtVerify(query.token ?? '', secret, { algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string') throw new Error('token has no subject');
      return payload.sub;
    },
  },
);

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  // close() waits up to its closeTimeout for clients; the benchmark has closed them already.
  void service.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
});
