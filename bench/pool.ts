// The main thread's side of the load generator: starts the worker threads, spreads the
// connections over them, and calls them with request/reply messages.
import { Worker } from 'node:worker_threads';
import type { FromWorker, Tick, ToWorker } from './types.js';

type Req = ToWorker extends infer T ? (T extends { rid: number } ? Omit<T, 'rid'> : never) : never;

export class Pool {
  readonly ticks: Tick[];
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private rid = 1;
  /** Set once a thread has crashed: later calls fail instead of waiting forever. */
  private failure: Error | null = null;

  constructor(readonly size: number) {
    this.ticks = Array.from({ length: size }, () => ({ t: 'tick', sent: 0, acked: 0, received: 0, frames: 0, expected: 0 }));
    // The worker is TypeScript: a tiny ESM bootstrap registers tsx inside the thread first.
    const boot = new URL('./worker-boot.mjs', import.meta.url);
    const entry = new URL('./worker.ts', import.meta.url).href;
    for (let i = 0; i < size; i++) {
      const w = new Worker(boot, { workerData: { entry } });
      w.on('message', (m: FromWorker) => {
        if (m.t === 'tick') {
          this.ticks[i] = m;
          return;
        }
        const p = this.pending.get(m.rid);
        if (!p) return;
        this.pending.delete(m.rid);
        if (m.ok) p.resolve(m.data);
        else p.reject(new Error(`worker ${i}: ${m.error}`));
      });
      const fail = (err: Error): void => {
        this.failure ??= err;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`worker ${i} exited with code ${code}`)));
      this.workers.push(w);
    }
  }

  call<T>(worker: number, msg: Req): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const rid = this.rid++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      this.workers[worker]!.postMessage({ ...msg, rid });
    });
  }

  all<T>(msg: Req | ((worker: number) => Req)): Promise<T[]> {
    return Promise.all(this.workers.map((_, i) => this.call<T>(i, typeof msg === 'function' ? msg(i) : msg)));
  }

  /** Sums of the workers' latest progress reports. */
  totals(): Omit<Tick, 't'> {
    const t = { sent: 0, acked: 0, received: 0, frames: 0, expected: 0 };
    for (const k of this.ticks) {
      t.sent += k.sent;
      t.acked += k.acked;
      t.received += k.received;
      t.frames += k.frames;
      t.expected += k.expected;
    }
    return t;
  }

  /** Closes every connection; the threads stay up for the next run. */
  async reset(): Promise<void> {
    await Promise.race([this.all({ t: 'close' }), new Promise((r) => setTimeout(r, 5000))]);
  }

  async terminate(): Promise<void> {
    await this.reset().catch(() => undefined);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
