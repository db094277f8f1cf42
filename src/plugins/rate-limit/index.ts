// The rate-limit plugin: a token bucket per user and one per room, drawn on by the configured
// commands (send, edit, react and direct by default), and buckets of their own for search and typing. A
// command over any of its limits is refused with `rate_limited` and details.retryAfterMs before
// anything is stored. A keyed write whose key is stored already is let through (it is answered
// as the duplicate it is), and so is a command read in the burst after the node was stopped.
import { ParleyError } from '../../errors.js';
import { ownHook, type Hook, type HookContext } from '../../service/hooks.js';
import type { Store } from '../../store/store.js';
import type { Plugin } from '../plugin.js';
import type { RateLimitConfig } from '../config.js';
import type { BucketLimit, RateCounter } from './counter.js';
import { MemoryRateCounter } from './counter-memory.js';

export function rateLimit(cfg: RateLimitConfig, opts: { counter?: RateCounter } = {}): Plugin {
  const counter = opts.counter ?? new MemoryRateCounter();
  const { user, room } = cfg;
  const search = cfg.search ?? null;
  const typing = cfg.typing ?? null;
  const own = [...(search ? ['search' as const] : []), ...(typing ? ['typing' as const] : [])];
  let store: Store | undefined;
  const refusal = (retryAfterMs: number) => new ParleyError('rate_limited', `too many requests; retry in ${retryAfterMs} ms`, { retryAfterMs });
  // A keyed write sent again whose key is stored already is answered as a duplicate, not
  // refused: "refused" would tell its sender it was not stored. Looked up only when refusing.
  // A command that waited in the node's buffers while the node was stopped (ctx.backlog) takes
  // a token when there is one but is not refused: its client sent it at its own pace.
  const judge = (ctx: HookContext, retryAfterMs: number): void | Promise<void> => {
    if (retryAfterMs === 0 || ctx.backlog) return;
    const key = ctx.args.key;
    const roomId = ctx.args.room;
    if (!store || typeof key !== 'string' || typeof roomId !== 'string') throw refusal(retryAfterMs);
    return store.keyed(roomId, ctx.user.id, key).then((stored) => {
      if (!stored) throw refusal(retryAfterMs);
    });
  };
  // Synchronous when the counter is (one node's in-memory buckets): every send passes here.
  const draw = (ctx: HookContext, limits: BucketLimit[]): void | Promise<void> => {
    if (limits.length === 0) return;
    const wait = counter.take(limits);
    return typeof wait === 'number' ? judge(ctx, wait) : wait.then((ms) => judge(ctx, ms));
  };
  const hook: Hook = ownHook({
    name: 'rate-limit',
    commands: [...cfg.commands, ...own.filter((c) => !cfg.commands.includes(c))],
    before(ctx) {
      if (cfg.exemptAdmins && ctx.user.admin) return;
      const limits: BucketLimit[] = [];
      // A search has a budget of its own, and draws on the others only if `commands` lists it.
      if (ctx.cmd === 'search' && search) limits.push({ key: `s:${ctx.user.id}`, rate: search.rate, burst: search.burst });
      // So does typing; a "stopped" is free (the typing gate sends one only after a "typing").
      if (ctx.cmd === 'typing' && typing && ctx.args.active !== false) limits.push({ key: `t:${ctx.user.id}`, rate: typing.rate, burst: typing.burst });
      if (cfg.commands.includes(ctx.cmd as never)) {
        if (user) limits.push({ key: `u:${ctx.user.id}`, rate: user.rate, burst: user.burst });
        const roomId = ctx.args.room;
        if (room && typeof roomId === 'string') {
          const roomLimit = { key: `r:${roomId}`, rate: room.rate, burst: room.burst };
          // Only members draw on a room's bucket, so outsiders cannot starve a room they can't write to.
          if (!store) limits.push(roomLimit);
          else {
            return store.getMember(roomId, ctx.user.id).then((member) => {
              if (member) limits.push(roomLimit);
              return draw(ctx, limits);
            });
          }
        }
      }
      return draw(ctx, limits);
    },
  });
  return {
    name: 'rate-limit',
    hooks: [hook],
    init(ctx) {
      store = ctx.store;
    },
    close: () => counter.close?.(),
  };
}
