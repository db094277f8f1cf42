// The ceiling for Node: a bare `ws` server that keeps room memberships and hands each chat
// frame, as received, to every member of its room. No auth, no storage, no ids, no acks.
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.env.PORT);
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 30000);
const rooms = new Map<string, Set<WebSocket>>();
const alive = new WeakMap<WebSocket, boolean>();

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

wss.on('connection', (ws) => {
  const mine = new Set<string>();
  alive.set(ws, true);
  ws.on('pong', () => alive.set(ws, true));
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) return;
    let f: { t?: unknown; room?: unknown };
    try {
      f = JSON.parse(data.toString()) as typeof f;
    } catch {
      return;
    }
    if (typeof f.room !== 'string') return;
    if (f.t === 'join') {
      let set = rooms.get(f.room);
      if (!set) rooms.set(f.room, (set = new Set()));
      set.add(ws);
      mine.add(f.room);
      ws.send(JSON.stringify({ t: 'joined', room: f.room }));
    } else if (f.t === 'msg' && mine.has(f.room)) {
      for (const member of rooms.get(f.room)!) member.send(data, { binary: false });
    }
  });
  ws.on('close', () => {
    for (const room of mine) rooms.get(room)?.delete(ws);
  });
  ws.on('error', () => ws.terminate());
});

// Heartbeats as every other target has them: a peer that missed a ping is dropped.
setInterval(() => {
  for (const ws of wss.clients) {
    if (!alive.get(ws)) {
      ws.terminate();
      continue;
    }
    alive.set(ws, false);
    ws.ping();
  }
}, heartbeatMs).unref();

process.on('SIGTERM', () => process.exit(0));
