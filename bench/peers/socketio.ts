// The Socket.IO 4 peer: the room chat a Node developer writes today. JWT checked in a
// middleware, rooms joined on request, each message numbered per room, broadcast to the room
// and acknowledged to its sender. State is in memory; nothing is stored.
import { createServer } from 'node:http';
import { Server, type DefaultEventsMap } from 'socket.io';
import { jwtVerify } from 'jose';

const port = Number(process.env.PORT);
const secret = new TextEncoder().encode(process.env.SECRET);
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 25000);

const http = createServer();
const io = new Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, { user?: string }>(http, {
  serveClient: false,
  pingInterval: heartbeatMs,
  pingTimeout: 20000,
});

io.use((socket, next) => {
  const token: unknown = socket.handshake.auth.token;
  if (typeof token !== 'string') return next(new Error('unauthorized'));
  jwtVerify(token, secret, { algorithms: ['HS256'] }).then(
    ({ payload }) => {
      socket.data.user = payload.sub;
      next();
    },
    () => next(new Error('unauthorized')),
  );
});

type Reply = (r: { ok?: true; error?: string; seq?: number; ts?: number }) => void;
const lastSeq = new Map<string, number>();
const ROOM = /^[A-Za-z0-9_-]{1,64}$/;

io.on('connection', (socket) => {
  socket.on('join', (room: unknown, ack: Reply) => {
    if (typeof room !== 'string' || !ROOM.test(room)) return ack({ error: 'invalid room' });
    void socket.join(room);
    ack({ ok: true });
  });
  socket.on('message', (m: { room?: unknown; text?: unknown }, ack: Reply) => {
    if (typeof m?.room !== 'string' || typeof m.text !== 'string' || m.text.length > 4000) return ack({ error: 'invalid' });
    if (!socket.rooms.has(m.room)) return ack({ error: 'forbidden' });
    const seq = (lastSeq.get(m.room) ?? 0) + 1;
    lastSeq.set(m.room, seq);
    const ts = Date.now();
    io.to(m.room).emit('message', { room: m.room, seq, user: socket.data.user, text: m.text, ts });
    ack({ seq, ts });
  });
});

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  void io.close();
  process.exit(0);
});
