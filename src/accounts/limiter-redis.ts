// Redis LoginLimiter for a cluster: the fixed windows of limiter-memory.ts as Redis counters
// that expire with their window, checked and counted by one Lua script so concurrent attempts
// on any nodes cannot pass the limit. Keys share one hash tag (one slot on a Redis Cluster).
import { bounded, DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient } from '../bus/redis/client.js';
import { ParleyError } from '../errors.js';
import type { LimitKey, LoginLimiter } from './limiter.js';

const ATTEMPT = `local wait = 0
for i, k in ipairs(KEYS) do
  local c = tonumber(redis.call('GET', k) or '0')
  if c >= tonumber(ARGV[i + 1]) then
    local t = redis.call('PTTL', k)
    if t > wait then wait = t end
  end
end
if wait > 0 then return wait end
for i, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, ARGV[1]) end
end
return 0`;

const SUCCEEDED = `for i, k in ipairs(KEYS) do
  local c = redis.call('DECR', k)
  if c <= 0 then redis.call('DEL', k) end
end
return 0`;

type Scripted = RedisClient & {
  parleyAttempt(n: number, ...args: Array<string | number>): Promise<number>;
  parleySucceeded(n: number, ...keys: string[]): Promise<number>;
};

export class RedisLoginLimiter implements LoginLimiter {
  private readonly redis: Scripted;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly windowMs: number,
    private readonly timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS,
  ) {
    this.redis = redis as Scripted;
    if (typeof this.redis.parleyAttempt !== 'function') {
      redis.defineCommand('parleyAttempt', { lua: ATTEMPT });
      redis.defineCommand('parleySucceeded', { lua: SUCCEEDED });
    }
  }

  private keys(keys: LimitKey[]): string[] {
    return keys.map((k) => `${this.prefix}{login}:${k.key}`);
  }

  async attempt(keys: LimitKey[]): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      return Number(
        await bounded(this.redis.parleyAttempt(keys.length, ...this.keys(keys), this.windowMs, ...keys.map((k) => k.limit)), this.timeoutMs, 'login limiter'),
      );
    } catch {
      // Fail closed: password guessing must not get through while the counters are away.
      throw new ParleyError('unavailable', 'login limiter unavailable (Redis does not answer)');
    }
  }

  async succeeded(keys: LimitKey[]): Promise<void> {
    if (keys.length === 0) return;
    await bounded(this.redis.parleySucceeded(keys.length, ...this.keys(keys)), this.timeoutMs, 'login limiter');
  }
}
