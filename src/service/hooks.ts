// Before/after hooks around every command: the one public extension API. Built-in plugins
// (rate limiter, word filter, webhooks) use exactly this, so anything they do a user can do.
//
// Order, for one command:
//   1. Before hooks run in registration order. Each sees the arguments the previous one left.
//      A before hook may return new arguments (they replace ctx.args) or throw a ParleyError:
//      the command is then rejected with that error, later before hooks and the command do
//      not run, and nothing is stored.
//   2. When a before hook ran, the arguments are validated again against the command's
//      schema (`invalid` otherwise), so a hook can never hand the service a malformed command.
//      The command then runs with its usual permission checks: a rewrite cannot bypass them.
//   3. After hooks run in registration order with `{ result }` or `{ error }` (rejections by
//      before hooks included). They cannot change the outcome; one that throws is logged and
//      ignored. The reply waits for them, so slow work (HTTP calls) belongs in a queue.
// A command with no hook registered for it skips all of this.
// Apart from commands, `notified` hooks see every notification the server sends (after the
// message is stored and the `notify` events are published), so an application can forward
// them to its own push service; like after hooks, they cannot change anything.
import { Commands, type CommandArgs, type CommandName, type CommandResults } from '../protocol/schema.js';
import { validateCommand } from '../protocol/frames.js';
import { ParleyError } from '../errors.js';
import type { Identity } from '../auth/jwt.js';

/** Commands that pass through hooks (`auth` and `ping` are answered by the transport/service directly). */
export type HookedCommand = Exclude<CommandName, 'auth' | 'ping'>;
export const HOOKED_COMMANDS = (Object.keys(Commands) as CommandName[]).filter((c): c is HookedCommand => c !== 'auth' && c !== 'ping');

export interface HookContext {
  readonly cmd: CommandName;
  /** Who runs the command (`admin` is true for administrator tokens). */
  readonly user: Identity;
  /** The command's arguments (the frame without `id` and `cmd`). */
  args: Record<string, unknown>;
  /**
   * True when the command waited in this node's socket buffers while the node was stopped
   * (its event loop blocked 2 s or more: a frozen process). Its client sent it at its own
   * pace; the node read it in one burst with the others that waited. The rate limiter does
   * not refuse such commands.
   */
  readonly backlog?: boolean;
}

export interface HookOutcome<R = unknown> {
  result?: R;
  error?: ParleyError;
}

export type BeforeResult = void | Record<string, unknown> | Promise<void | Record<string, unknown>>;

export interface Hook {
  /** Shown in logs when the hook fails. */
  name: string;
  /** Limit the hook to these commands (all when absent). */
  commands?: CommandName[];
  /** Return new arguments to rewrite the command; throw a ParleyError to reject it. */
  before?(ctx: HookContext): BeforeResult;
  /** Sees the result or the error; cannot change either. */
  after?(ctx: HookContext, outcome: HookOutcome): void | Promise<void>;
  /** Sees each notification sent (one call per message, with every recipient). */
  notified?(n: Notification): void | Promise<void>;
}

/** The notifications one stored message caused. */
export interface Notification {
  room: string;
  seq: number;
  /** The author. */
  user: string;
  name: string;
  /** The first characters of the text. */
  text: string;
  recipients: Array<{ user: string; reason: 'mention' | 'room' | 'here' | 'message' }>;
}

/** A hook's view of one command, typed by the command's schema. */
export interface CommandContext<N extends CommandName> {
  readonly cmd: N;
  readonly user: Identity;
  args: CommandArgs<N>;
}

export interface CommandHook<N extends CommandName> {
  name: string;
  commands: N[];
  before?(ctx: CommandContext<N>): void | CommandArgs<N> | Promise<void | CommandArgs<N>>;
  after?(ctx: CommandContext<N>, outcome: HookOutcome<CommandResults[N]>): void | Promise<void>;
}

/** Declares a hook for some commands with their argument and result types. */
export function commandHook<N extends CommandName>(hook: CommandHook<N>): Hook {
  return hook;
}

/** A message as a validator sees it: the text (and data) of a `send` or an `edit`. */
export interface MessageDraft {
  readonly cmd: 'send' | 'edit';
  readonly user: Identity;
  readonly room: string;
  readonly text: string;
  /** Custom data of a send (edits carry none). */
  readonly data?: Record<string, unknown>;
  /** The edited message's seq. */
  readonly target?: number;
}

/** Throw a ParleyError (usually `invalid`) to reject; return fields to normalise them. */
export type MessageValidator = (
  m: MessageDraft,
) => void | { text?: string; data?: Record<string, unknown> } | Promise<void | { text?: string; data?: Record<string, unknown> }>;

/**
 * The validator hook for custom message formats: runs on `send` and `edit`. It may reject
 * the message or return a normalised `text` (and `data`, for sends); what it returns is
 * validated like client input.
 */
export function messageValidator(name: string, validate: MessageValidator): Hook {
  return {
    name,
    commands: ['send', 'edit'],
    async before(ctx) {
      const a = ctx.args as { room: string; text: string; data?: Record<string, unknown>; target?: number };
      const draft: MessageDraft =
        ctx.cmd === 'send'
          ? { cmd: 'send', user: ctx.user, room: a.room, text: a.text, ...(a.data !== undefined ? { data: a.data } : {}) }
          : { cmd: 'edit', user: ctx.user, room: a.room, text: a.text, ...(a.target !== undefined ? { target: a.target } : {}) };
      const out = await validate(draft);
      if (!out) return;
      const next: Record<string, unknown> = { ...ctx.args };
      if (out.text !== undefined) next.text = out.text;
      if (out.data !== undefined && ctx.cmd === 'send') next.data = out.data;
      return next;
    },
  };
}

interface Stage {
  before: Hook[];
  after: Hook[];
  /** Every before hook is one of the server's own (ownHook). */
  ownBefore: boolean;
}
const EMPTY: Stage = { before: [], after: [], ownBefore: true };

/**
 * The server's own before hooks (rate limiter, attachments): they never change `ctx.args` in
 * place, so when only they ran and none returned new arguments, the arguments are still the
 * ones the transport validated and are not validated again.
 */
const ownHooks = new WeakSet<Hook>();

/** Marks a hook of the server's own as one that rewrites arguments only by returning them. */
export function ownHook(hook: Hook): Hook {
  ownHooks.add(hook);
  return hook;
}

/** Rejects arguments a before hook left malformed, the way the transport rejects a bad frame. */
function revalidate(ctx: HookContext): void {
  if (!ctx.args || typeof ctx.args !== 'object' || Array.isArray(ctx.args)) {
    throw new ParleyError('invalid', 'a hook replaced the arguments with a non-object');
  }
  validateCommand(ctx.cmd, { ...ctx.args, id: 0, cmd: ctx.cmd });
}

export class Hooks {
  private readonly list: Hook[] = [];
  /** Per command, the hooks that apply, rebuilt on `use` so the hot path only indexes. */
  private readonly stages = new Map<CommandName, Stage>();

  get size(): number {
    return this.list.length;
  }

  /** True when at least one hook applies to the command. */
  has(cmd: CommandName): boolean {
    return this.stages.has(cmd);
  }

  /** Adds hooks after those already registered (they run in that order). */
  use(...hooks: Hook[]): void {
    for (const h of hooks) {
      if (!h || typeof h.name !== 'string' || h.name.length === 0) throw new TypeError('a hook needs a name');
      if (!h.before && !h.after && !h.notified) throw new TypeError(`hook "${h.name}" has neither before, after nor notified`);
      for (const c of h.commands ?? []) {
        if (!HOOKED_COMMANDS.includes(c as HookedCommand)) throw new TypeError(`hook "${h.name}": "${c}" is not a command hooks can run on`);
      }
      this.list.push(h);
    }
    this.stages.clear();
    for (const cmd of HOOKED_COMMANDS) {
      const on = this.list.filter((h) => this.applies(h, cmd));
      if (on.length === 0) continue;
      const before = on.filter((h) => !!h.before);
      this.stages.set(cmd, { before, after: on.filter((h) => !!h.after), ownBefore: before.every((h) => ownHooks.has(h)) });
    }
  }

  applies(hook: Hook, cmd: CommandName): boolean {
    return (!!hook.before || !!hook.after) && (!hook.commands || hook.commands.includes(cmd));
  }

  /** Hands a notification to every `notified` hook; one that fails is reported and skipped. */
  notified(n: Notification, onError: (h: Hook, e: unknown) => void): void {
    for (const h of this.list) {
      if (!h.notified) continue;
      try {
        Promise.resolve(h.notified(n)).catch((e: unknown) => onError(h, e));
      } catch (e) {
        onError(h, e);
      }
    }
  }

  /**
   * Runs the before hooks in order. Returns a promise only when a hook returned one, so a
   * command whose hooks answer at once (the rate limiter's in-memory buckets, say) allocates
   * no promise chain for them.
   */
  before(ctx: HookContext): void | Promise<void> {
    const stage = this.stages.get(ctx.cmd) ?? EMPTY;
    if (stage.before.length === 0) return;
    return this.beforeFrom(ctx, stage, 0, false);
  }

  private beforeFrom(ctx: HookContext, stage: Stage, from: number, changed: boolean): void | Promise<void> {
    const hooks = stage.before;
    for (let i = from; i < hooks.length; i++) {
      const next = hooks[i]!.before!(ctx);
      if (isThenable(next)) {
        return Promise.resolve(next).then((args) => {
          if (args) {
            ctx.args = args;
            changed = true;
          }
          return this.beforeFrom(ctx, stage, i + 1, changed);
        });
      }
      if (next) {
        ctx.args = next;
        changed = true;
      }
    }
    if (changed || !stage.ownBefore) revalidate(ctx);
  }

  /** Runs the after hooks in order; one that throws is reported and skipped. */
  after(ctx: HookContext, outcome: HookOutcome, onError: (h: Hook, e: unknown) => void): void | Promise<void> {
    const hooks = (this.stages.get(ctx.cmd) ?? EMPTY).after;
    if (hooks.length === 0) return;
    return this.afterFrom(ctx, outcome, onError, hooks, 0);
  }

  private afterFrom(ctx: HookContext, outcome: HookOutcome, onError: (h: Hook, e: unknown) => void, hooks: Hook[], from: number): void | Promise<void> {
    for (let i = from; i < hooks.length; i++) {
      const h = hooks[i]!;
      let r: void | Promise<void>;
      try {
        r = h.after!(ctx, outcome);
      } catch (e) {
        onError(h, e);
        continue;
      }
      if (isThenable(r)) {
        return Promise.resolve(r).then(
          () => this.afterFrom(ctx, outcome, onError, hooks, i + 1),
          (e: unknown) => {
            onError(h, e);
            return this.afterFrom(ctx, outcome, onError, hooks, i + 1);
          },
        );
      }
    }
  }

  /**
   * Runs a command inside its hooks: before hooks, the command with the (possibly
   * rewritten) arguments, after hooks. `toError` turns anything thrown into the error the
   * after hooks see; what was thrown is rethrown unchanged. Written as a chain rather than
   * an async function: every send passes here, and a promise chain holds less than an async
   * frame while the command waits for its commit.
   */
  run<T>(
    ctx: HookContext,
    command: (args: Record<string, unknown>) => Promise<T>,
    toError: (err: unknown) => ParleyError,
    onError: (h: Hook, e: unknown) => void,
  ): Promise<T> {
    const stage = this.stages.get(ctx.cmd);
    if (!stage) return command(ctx.args);
    let ran: Promise<T>;
    try {
      // The command starts in a later microtask even when every before hook answered at once,
      // as it did when the hooks were async functions.
      const before = this.before(ctx) ?? STARTED;
      ran = before.then(() => command(ctx.args));
    } catch (err) {
      ran = Promise.reject(err);
    }
    if (stage.after.length === 0) return ran;
    return ran.then(
      (result) => {
        const after = this.after(ctx, { result }, onError);
        return after ? after.then(() => result) : result;
      },
      (err: unknown) => {
        const after = this.after(ctx, { error: toError(err) }, onError);
        if (!after) throw err;
        return after.then(() => {
          throw err;
        });
      },
    );
  }
}

const STARTED: Promise<void> = Promise.resolve();

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
