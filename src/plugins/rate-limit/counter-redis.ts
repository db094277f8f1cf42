// Redis RateCounter for a cluster: the same token buckets as counter-memory.ts, kept in Redis
// hashes and updated by one Lua script, so every node draws from the same buckets and a take
// over several buckets stays all-or-nothing. The clock is Redis's own (TIME), so nodes with
// skewed clocks agree. All bucket keys share one hash tag: on a Redis Cluster a multi-bucket
// script needs its keys in one slot.
//
// While Redis does not answer, the node draws from buckets of its own (counter-memory.ts)
// instead: sends do not depend on Redis (PostgreSQL stores them), and a flood is still cut
// short — at the same limits per node, so a user on N nodes gets at most N times its budget
// for as long as the outage lasts. After a failed call the node stays on its own buckets for
// `retryMs` before it asks Redis again, so a frozen Redis costs one command timeout per
// `retryMs`, not one per command.
import { bounded, DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient } from '../../bus/redis/client.js';
import { MemoryRateCounter } from './counter-memory.js';
import type { BucketLimit, RateCounter } from './counter.js';

const TAKE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tokens = {}
for i, k in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', k, 't', 'a')
  local have = tonumber(v[1])
  if have == nil then have = burst else have = math.min(burst, have + (now - tonumber(v[2])) * rate / 1000) end
  tokens[i] = have
  if have < 1 then
    local w = math.ceil((1 - have) * 1000 / rate)
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, k in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', k, 't', tostring(tokens[i] - 1), 'a', tostring(now))
  redis.call('PEXPIRE', k, math.ceil((burst - tokens[i] + 1) * 1000 / rate) + 1000)
end
return 0`;

type WithTake = RedisClient & { parleyTake(n: number, ...args: Array<string | number>): Promise<number> };

export class RedisRateCounter implements RateCounter {
  private readonly redis: WithTake;
  /** This node's own buckets, drawn from while Redis does not answer. */
  private readonly local = new MemoryRateCounter();
  /** Until when (performance.now()) takes go to the local buckets without asking Redis. */
  private localUntil = -Infinity;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS,
    private readonly retryMs = 1000,
  ) {
    this.redis = redis as WithTake;
    if (typeof this.redis.parleyTake !== 'function') redis.defineCommand('parleyTake', { lua: TAKE });
  }

  async take(limits: readonly BucketLimit[]): Promise<number> {
    if (limits.length === 0) return 0;
    const keys = limits.map((l) => `${this.prefix}{rate}:${l.key}`);
    const args = limits.flatMap((l) => [l.rate, l.burst]);
    if (performance.now() < this.localUntil) return this.local.take(limits);
    try {
      return Number(await bounded(this.redis.parleyTake(keys.length, ...keys, ...args), this.timeoutMs, 'rate limiter'));
    } catch {
      this.localUntil = performance.now() + this.retryMs;
      return this.local.take(limits);
    }
  }

  close(): void {
    this.local.close();
  }
}
