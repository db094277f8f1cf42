// Helpers for the MQTT endpoint tests: a Parley node with MQTT on, and raw MQTT clients (npm
// `mqtt`) that speak Chat21's topics and record every publication they receive.
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { startServer, waitFor, type TestServer } from './helpers.js';

export const APP = 'tilechat';

export async function startMqttServer(overrides: Record<string, unknown> = {}): Promise<TestServer & { mqttUrl: string; mqttWsUrl: string }> {
  const s = await startServer({ mqtt: { enabled: true, port: 0 }, ...overrides });
  const port = s.parley.mqtt!.port;
  return Object.assign(s, { mqttUrl: `mqtt://127.0.0.1:${port}`, mqttWsUrl: `${s.url.replace('http', 'ws')}/mqtt` });
}

export interface Received {
  topic: string;
  body: Record<string, unknown>;
}

/** A Chat21-style client: subscribed to its own inbox, recording what arrives. */
export class Chat21Peer {
  readonly received: Received[] = [];
  closed = false;
  constructor(
    readonly user: string,
    readonly client: MqttClient,
  ) {
    client.on('message', (topic, payload) => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        /* recorded empty */
      }
      this.received.push({ topic, body });
    });
    client.on('close', () => {
      this.closed = true;
    });
  }

  static async connect(url: string, user: string, token: string, opts: IClientOptions = {}, subscribe = true): Promise<Chat21Peer> {
    const client = await mqtt.connectAsync(url, {
      username: 'JWT',
      password: token,
      clientId: `${user}-${Math.random().toString(36).slice(2)}`,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: 10,
      will: { topic: `apps/${APP}/users/${user}/presence/x`, payload: Buffer.from('{"disconnected":true}'), qos: 1, retain: true },
      ...opts,
    });
    const peer = new Chat21Peer(user, client);
    if (subscribe) await client.subscribeAsync(`apps/${APP}/users/${user}/#`);
    return peer;
  }

  publish(topic: string, body: unknown): Promise<unknown> {
    const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    return this.client.publishAsync(topic, payload, { qos: 1 });
  }

  send(to: string, text: string, extra: Record<string, unknown> = {}): Promise<unknown> {
    return this.publish(`apps/${APP}/outgoing/users/${this.user}/messages/${to}/outgoing`, {
      text,
      type: 'text',
      sender_fullname: this.user,
      recipient_fullname: to,
      attributes: {},
      metadata: '',
      channel_type: to.includes('group-') ? 'group' : 'direct',
      ...extra,
    });
  }

  /** Publications whose topic ends with `suffix` (and contains `part`). */
  on(suffix: string, part = ''): Received[] {
    return this.received.filter((r) => r.topic.endsWith(suffix) && r.topic.includes(part));
  }

  added(conversWith?: string): Array<Record<string, unknown>> {
    return this.on('/clientadded', conversWith === undefined ? '/messages/' : `/messages/${conversWith}/`).map((r) => r.body);
  }

  async waitAdded(pred: (m: Record<string, unknown>) => boolean, what = 'message'): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await waitFor(() => (found = this.added().find(pred)) !== undefined, 5000, `${this.user}: ${what}`);
    return found!;
  }

  async close(): Promise<void> {
    if (!this.closed) await this.client.endAsync();
  }
}

/** Calls the Chat21 REST API with the raw JWT in Authorization. */
export async function rest(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/${APP}${path}`, {
    method,
    headers: { authorization: token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A raw MQTT 3.1.1 client on a TCP socket, its packets written by hand, for tests that must
 * control reading: after `pause()` it reads nothing more, as a stalled client would.
 */
export class RawMqtt {
  closed = false;
  private constructor(private readonly sock: import('node:net').Socket) {
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => {
      /* seen as close */
    });
  }

  static async connect(url: string, token: string, clientId: string): Promise<RawMqtt> {
    const { createConnection } = await import('node:net');
    const u = new URL(url);
    const sock = createConnection({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new RawMqtt(sock);
    const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 30]), str(clientId), str('JWT'), str(token)]);
    const connack = c.next(4);
    sock.write(packet(0x10, body));
    const ack = await connack;
    if (ack[3] !== 0) throw new Error(`CONNACK ${ack[3]}`);
    return c;
  }

  /** Reads the next `n` bytes. */
  private next(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let got = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        if (got.length < n) return;
        this.sock.off('data', onData);
        this.sock.pause();
        if (got.length > n) this.sock.unshift(got.subarray(n));
        resolve(got.subarray(0, n));
      };
      this.sock.on('data', onData);
      this.sock.once('close', () => reject(new Error('closed')));
      this.sock.resume();
    });
  }

  async subscribe(filter: string, qos = 1): Promise<void> {
    const suback = this.next(5);
    this.sock.write(packet(0x82, Buffer.concat([Buffer.from([0, 1]), str(filter), Buffer.from([qos])])));
    await suback;
  }

  /** Stops reading: whatever the server sends stays in its buffers. */
  pause(): void {
    this.sock.pause();
  }

  /** A QoS 0 publish; resolves when the socket took it (false once it is closed). */
  publish(topic: string, payload: string | Buffer): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.sock.write(packet(0x30, Buffer.concat([str(topic), Buffer.from(payload)])), (err) => resolve(!err));
    });
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function packet(header: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    len.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([header, ...len]), body]);
}
