// Idle and greedy MQTT/TCP clients, with raw TCP sockets: a connection that never sends its
// CONNECT is closed after mqtt.connectTimeoutMs, and one address cannot hold more than
// mqtt.connectionsPerAddress connections.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { startMqttServer } from './mqtt-helpers.js';
import type { TestServer } from './helpers.js';

interface Tcp {
  socket: Socket;
  closedAt: Promise<number>;
}

function tcp(port: number): Promise<Tcp> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const t: Tcp = { socket, closedAt: new Promise((r) => socket.once('close', () => r(performance.now()))) };
    socket.on('error', () => {
      /* a reset counts as closed */
    });
    socket.once('connect', () => resolve(t));
    socket.once('error', reject);
  });
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'open'> => Promise.race([p, new Promise<'open'>((r) => setTimeout(() => r('open'), ms))]);

let srv: TestServer & { mqttUrl: string };
let port: number;
beforeAll(async () => {
  srv = await startMqttServer({ mqtt: { enabled: true, port: 0, connectTimeoutMs: 800, connectionsPerAddress: 4 } });
  port = srv.parley.mqtt!.port;
});
afterAll(async () => {
  await srv?.close();
});

describe('MQTT/TCP sockets', () => {
  it('a connection that never sends CONNECT is closed after mqtt.connectTimeoutMs', async () => {
    const c = await tcp(port);
    const t0 = performance.now();
    const closed = await within(c.closedAt, 5000);
    expect(closed).not.toBe('open');
    expect((closed as number) - t0).toBeLessThan(800 + 1500);
  });

  it('one address holds at most mqtt.connectionsPerAddress connections', async () => {
    const held = await Promise.all([tcp(port), tcp(port), tcp(port), tcp(port)]);
    onTestFinished(() => {
      for (const h of held) h.socket.destroy();
    });
    // The fifth is closed at once, long before the CONNECT timeout.
    const extra = await tcp(port);
    expect(await within(extra.closedAt, 400)).not.toBe('open');
    // Once one is gone, the address may connect again and a real client is served.
    held[0].socket.destroy();
    await held[0].closedAt;
    await new Promise((r) => setTimeout(r, 50));
    const client = mqtt.connect(srv.mqttUrl, { clientId: 'c1', username: 'JWT', password: await srv.token('capper'), reconnectPeriod: 0 });
    onTestFinished(() => {
      client.end(true);
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
  });
});
