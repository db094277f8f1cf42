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

export interface Received { topic: string; body: Record<string, unknown> }

/** A Chat21-style client: subscribed to its own inbox, recording what arrives. */
export class Chat21Peer {
  readonly received: Received[] = [];
  closed = false;
  constructor(readonly user: string, readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      let body: Record<string, unknown> = {};
      try { body = JSON.parse(payload.toString()) as Record<string, unknown>; } catch { /* recorded empty */ }
      this.received.push({ topic, body });
    });
    client.on('close', () => { this.closed = true; });
  }

  static async connect(url: string, user: string, token: string, opts: IClientOptions = {}, subscribe = true): Promise<Chat21Peer> {
    const client = await mqtt.connectAsync(url, {
      username: 'JWT', password: token, clientId: `${user}-${Math.random().toString(36).slice(2)}`,
      reconnectPeriod: 0, connectTimeout: 5000, keepalive: 10,
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
      text, type: 'text', sender_fullname: this.user, recipient_fullname: to, attributes: {}, metadata: '',
      channel_type: to.includes('group-') ? 'group' : 'direct', ...extra,
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
export async function rest(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/${APP}${path}`, {
    method, headers: { authorization: token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
