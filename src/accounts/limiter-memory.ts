// In-memory LoginLimiter (one node): a fixed window per key, started by its first attempt.
import type { LimitKey, LoginLimiter } from './limiter.js';

interface Window {
  count: number;
  resetAt: number;
}

/** Above this many keys, expired windows are swept so memory follows the attack, not history. */
const SWEEP_AT = 10_000;

export class MemoryLoginLimiter implements LoginLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  attempt(keys: LimitKey[]): Promise<number> {
    const now = this.now();
    if (this.windows.size > SWEEP_AT) this.sweep(now);
    let wait = 0;
    for (const k of keys) {
      const w = this.live(k.key, now);
      if (w && w.count >= k.limit) wait = Math.max(wait, w.resetAt - now);
    }
    if (wait > 0) return Promise.resolve(wait);
    for (const k of keys) {
      const w = this.live(k.key, now);
      if (w) w.count++;
      else this.windows.set(k.key, { count: 1, resetAt: now + this.windowMs });
    }
    return Promise.resolve(0);
  }

  succeeded(keys: LimitKey[]): Promise<void> {
    const now = this.now();
    for (const k of keys) {
      const w = this.live(k.key, now);
      if (w && --w.count <= 0) this.windows.delete(k.key);
    }
    return Promise.resolve();
  }

  private live(key: string, now: number): Window | undefined {
    const w = this.windows.get(key);
    if (w && w.resetAt <= now) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }
}
