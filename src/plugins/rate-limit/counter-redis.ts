// Redis RateCounter for a cluster: the same token buckets as counter-memory.ts, kept in Redis
// hashes and updated by one Lua script, so every node draws from the same buckets and a take
// over several buckets stays all-or-nothing. The clock is Redis's own (TIME), so nodes with
// skewed clocks agree. All bucket keys share one hash tag: on a Redis Cluster a multi-bucket
// script needs its keys in one slot.
import { bounded, DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient } from '../../bus/redis/client.js';
import { ParleyError } from '../../errors.js';
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

  constructor(redis: RedisClient, private readonly prefix: string, private readonly timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS) {
    this.redis = redis as WithTake;
    if (typeof this.redis.parleyTake !== 'function') redis.defineCommand('parleyTake', { lua: TAKE });
  }

  async take(limits: readonly BucketLimit[]): Promise<number> {
    if (limits.length === 0) return 0;
    const keys = limits.map((l) => `${this.prefix}{rate}:${l.key}`);
    const args = limits.flatMap((l) => [l.rate, l.burst]);
    try {
      return Number(await bounded(this.redis.parleyTake(keys.length, ...keys, ...args), this.timeoutMs, 'rate limiter'));
    } catch {
      // Fail closed: without the shared counters a flood could not be stopped.
      throw new ParleyError('unavailable', 'rate limiter unavailable (Redis does not answer)');
    }
  }
}
