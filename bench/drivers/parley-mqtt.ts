// Chat21-style clients against Parley's MQTT endpoint (MQTT over WebSocket on the HTTP port,
// as Chat21's own benchmark connects): the raw Chat21 topics over the npm `mqtt` client, groups
// created through the Chat21 REST API. A send is acknowledged when the sender's own inbox copy
// arrives (the server stored and routed it), the closest Chat21 has to an acknowledgement.
import mqtt, { type MqttClient } from 'mqtt';
import type { Ack, ClientConn, Connect, ConnectOptions } from './driver.js';
import { SETUP_TIMEOUT_MS, withTimeout } from './driver.js';
import type { RoomSpec } from '../types.js';

const APP = 'tilechat';
const DIRECT = 'direct:';

class Chat21Conn implements ClientConn {
  /** Sends waiting for their own inbox copy, by text (every benchmark text is unique). */
  private readonly pending = new Map<string, Ack>();

  constructor(
    private readonly client: MqttClient,
    private readonly o: ConnectOptions,
    private readonly token: string,
  ) {
    client.on('message', (topic, payload) => {
      if (!topic.endsWith('/clientadded') || !topic.includes('/messages/')) return;
      const m = JSON.parse(payload.toString()) as { text?: string; sender?: string; recipient?: string };
      if (typeof m.text !== 'string') return;
      if (m.sender === o.user) {
        const ack = this.pending.get(m.text);
        if (ack) {
          this.pending.delete(m.text);
          ack(null);
        }
      }
      o.onText(m.recipient ?? '', m.text);
    });
    client.on('close', () => {
      for (const ack of this.pending.values()) ack('closed: connection closed');
      this.pending.clear();
      o.onClose();
    });
  }

  async createRoom(room: RoomSpec, users: string[]): Promise<string> {
    if (room.kind === 'direct') return DIRECT + users.join(',');
    const id = `group-${room.id}`;
    const res = await withTimeout(
      fetch(`http://127.0.0.1:${this.o.target.port}/api/${APP}/groups`, {
        method: 'POST',
        headers: { authorization: this.token, 'content-type': 'application/json' },
        body: JSON.stringify({ group_id: id, group_name: room.id, group_members: Object.fromEntries(users.map((u) => [u, 1])) }),
      }),
      SETUP_TIMEOUT_MS,
      'chat21 groupCreate',
    );
    if (res.status !== 201) throw new Error(`chat21 groupCreate: HTTP ${res.status} ${await res.text()}`);
    return id;
  }

  async joinRoom(): Promise<void> {
    // Group members are added at creation; a direct conversation needs no setup.
  }

  send(room: string, text: string, ack: Ack): void {
    const group = !room.startsWith(DIRECT);
    const to = group
      ? room
      : room
          .slice(DIRECT.length)
          .split(',')
          .find((u) => u !== this.o.user)!;
    this.pending.set(text, ack);
    const body = JSON.stringify({
      text,
      type: 'text',
      sender_fullname: this.o.user,
      recipient_fullname: to,
      attributes: {},
      metadata: '',
      channel_type: group ? 'group' : 'direct',
    });
    this.client.publish(`apps/${APP}/outgoing/users/${this.o.user}/messages/${to}/outgoing`, body, { qos: 0 }, (err) => {
      if (err && this.pending.delete(text)) ack(`publish: ${err.message}`);
    });
  }

  close(): void {
    this.client.end(true);
  }
}

export const connectParleyMqtt: Connect = async (o) => {
  const client = await withTimeout(
    mqtt.connectAsync(`ws://127.0.0.1:${o.target.port}/mqtt`, {
      username: 'JWT',
      password: o.token,
      clientId: `${o.user}-${Math.random().toString(36).slice(2)}`,
      keepalive: 10,
      reconnectPeriod: 0,
      connectTimeout: SETUP_TIMEOUT_MS,
      wsOptions: { localAddress: o.localAddress, perMessageDeflate: false },
      will: { topic: `apps/${APP}/users/${o.user}/presence/x`, payload: Buffer.from('{"disconnected":true}'), qos: 1, retain: true },
    }),
    SETUP_TIMEOUT_MS,
    'mqtt connect',
  );
  client.on('error', () => {
    /* surfaced through close */
  });
  await client.subscribeAsync(`apps/${APP}/users/${o.user}/#`);
  client.publish(`apps/${APP}/users/${o.user}/presence/${client.options.clientId ?? 'x'}`, '{"connected":true}');
  return new Chat21Conn(client, o, o.token);
};
