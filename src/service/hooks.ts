// Before/after hooks around every command. Order: before hooks run in registration order and
// may rewrite the arguments (return new ones) or reject (throw a ParleyError); then the
// command runs; then after hooks run in registration order with the result or the error.
// After hooks cannot change the outcome; an after hook that throws is logged and ignored.
import type { CommandName } from '../protocol/schema.js';
import type { ParleyError } from '../errors.js';
import type { Identity } from '../auth/jwt.js';

export interface HookContext {
  cmd: CommandName;
  user: Identity;
  args: Record<string, unknown>;
}

export interface Hook {
  name: string;
  /** Limit the hook to these commands (all when absent). */
  commands?: CommandName[];
  before?(ctx: HookContext): void | Record<string, unknown> | Promise<void | Record<string, unknown>>;
  after?(ctx: HookContext, outcome: { result?: unknown; error?: ParleyError }): void | Promise<void>;
}

export class Hooks {
  private readonly list: Hook[] = [];

  get size(): number {
    return this.list.length;
  }

  use(hook: Hook): void {
    this.list.push(hook);
  }

  applies(hook: Hook, cmd: CommandName): boolean {
    return !hook.commands || hook.commands.includes(cmd);
  }

  async before(ctx: HookContext): Promise<void> {
    for (const h of this.list) {
      if (!h.before || !this.applies(h, ctx.cmd)) continue;
      const next = await h.before(ctx);
      if (next) ctx.args = next;
    }
  }

  async after(ctx: HookContext, outcome: { result?: unknown; error?: ParleyError }, onError: (h: Hook, e: unknown) => void): Promise<void> {
    for (const h of this.list) {
      if (!h.after || !this.applies(h, ctx.cmd)) continue;
      try {
        await h.after(ctx, outcome);
      } catch (e) {
        onError(h, e);
      }
    }
  }
}
