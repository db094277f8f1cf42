// What one arrival costs a node: a subscriber receives bus messages (the frames a cluster node
// reads from Redis) at a fixed rate, one at a time or in bursts that reach it together, and
// reports its main thread's CPU per message, messages per socket read and wake-ups. On a
// cluster node most arrivals come alone (a forwarded send, its answer, each bus copy), so
// this is the unit cost behind "CPU per message grows with the node count"
// (docs/benchmarks.md).
//
//   node --import tsx bench/arrivals.ts [--rate 1200] [--bursts 1,10,50,200] [--seconds 10]
//
// Redis is started in a temporary folder on a free loopback port; the publisher is a child
// process, so its work is not counted.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { decodeBusMessage, encodeBusMessage } from '../src/bus/redis/index.js';
import { startRedis } from '../tools/devservers/redis.js';

const TOPIC = 'r:arrivals';

/** The main thread's CPU (µs) and voluntary context switches (its sleeps) so far. */
function mainThread(): { cpuUs: number; sleeps: number } {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
  const sleeps = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { cpuUs: ticks * 10_000, sleeps };
}

async function publish(url: string, rate: number, burst: number, seconds: number): Promise<void> {
  const pub = new Redis(url);
  const frame = JSON.stringify({ type: 'message', room: 'arrivals', message: { seq: 1, text: 'x'.repeat(60), from: { id: 'u1', name: 'User' } } });
  let seq = 0;
  const timer = setInterval(
    () => {
      for (let i = 0; i < burst; i++) void pub.publish(TOPIC, encodeBusMessage({ frame, seq: ++seq }, 'publisher'));
    },
    (1000 * burst) / rate,
  );
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  await pub.quit();
}

async function measure(url: string, rate: number, burst: number, seconds: number): Promise<Record<string, number>> {
  const sub = new Redis(url);
  let messages = 0;
  let reads = 0;
  sub.on('message', (_channel: string, raw: string) => {
    if (decodeBusMessage(raw)) messages++;
  });
  await sub.subscribe(TOPIC);
  sub.stream.on('data', () => reads++);
  const child = fork(process.argv[1]!, ['--publish', url, '--rate', String(rate), '--bursts', String(burst), '--seconds', String(seconds + 3)], {
    execArgv: process.execArgv,
  });
  // The first second warms both sides up; the next `seconds` are measured.
  await new Promise((r) => setTimeout(r, 1500));
  const m0 = messages;
  const r0 = reads;
  const t0 = mainThread();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const t1 = mainThread();
  const got = messages - m0;
  const gotReads = reads - r0;
  child.kill();
  await sub.quit();
  return {
    burst,
    received: Math.round(got / seconds),
    perRead: Math.round((got / Math.max(1, gotReads)) * 100) / 100,
    cpuUsPerMessage: Math.round((t1.cpuUs - t0.cpuUs) / Math.max(1, got)),
    sleepsPerSecond: Math.round((t1.sleeps - t0.sleeps) / seconds),
  };
}

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1200' },
    bursts: { type: 'string', default: '1,10,50,200' },
    seconds: { type: 'string', default: '10' },
    publish: { type: 'string' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const bursts = values.bursts.split(',').map(Number);
if (!(rate > 0) || !(seconds > 0) || bursts.some((b) => !(b >= 1))) throw new Error('--rate, --seconds and --bursts take positive numbers');
if (values.publish) {
  await publish(values.publish, rate, bursts[0]!, seconds);
} else {
  const redis = await startRedis();
  try {
    const rows = [];
    for (const burst of bursts) rows.push(await measure(redis.url, rate, burst, seconds));
    console.log(`bus messages at ${rate}/s offered, ${seconds} s each; CPU and sleeps of the subscriber's main thread`);
    console.table(rows);
  } finally {
    await redis.destroy();
  }
}
