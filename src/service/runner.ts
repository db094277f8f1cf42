// The command machinery every transport shares, so that a transport only adapts bytes:
// - `Lane`: one connection's commands run in arrival order, each starting once the one before
//   it is *admitted* (its writes queued in order), not once it has finished;
// - `CommandRunner`: runs a command for a session and times it for the metrics — the one place
//   a command's duration and outcome are recorded, whichever transport carried it (REST
//   measures in its fastify lifecycle hooks and records here) — and decides which refusals
//   end the connection;
// - `watchExpiry`: the timer that ends a connection when its token expires;
// - `StallWatch`: tells a transport that what it reads now waited while the process was stopped.
// Identities are admitted (server-wide ban, user record) by `Service.admit`, which every
// authentication calls.
import { performance } from 'node:perf_hooks';
import type { Identity } from '../auth/jwt.js';
import { toParleyError } from '../errors.js';
import type { CommandFrame } from '../protocol/schema.js';
import type { TransportName } from './events.js';
import { CLOSE_BANNED, ServerBanError, type Service, type Session } from './index.js';

/** What the runner reports per command (the node's Prometheus metrics). */
export interface CommandMetrics {
  /** One command ran for `ms` milliseconds; `errorCode` when it failed. */
  command(cmd: string, via: TransportName, ms: number, errorCode?: string): void;
}

const noop = (): void => undefined;

/**
 * One connection's commands, in arrival order up to admission. A command is admitted when
 * its writes are queued in order (a send's `store.append` is called); the next command starts
 * then, or when this one ends if it never calls `admit`. So one connection's sends are stored
 * in the order they were sent without each waiting for the commit of the one before.
 */
export class Lane {
  private tail: Promise<void> = Promise.resolve();

  /**
   * Runs `run` once the commands submitted before it are admitted. `run` handles its own
   * outcome (a rejection is ignored here); the promise returned resolves once this command is
   * admitted or has ended.
   */
  submit(run: (admit: () => void) => Promise<unknown>): Promise<void> {
    // One promise per command, settled by whichever comes first: admission or the end.
    const start = (): Promise<void> =>
      new Promise<void>((next) => {
        const admit = () => next();
        let done: Promise<unknown>;
        try {
          done = run(admit);
        } catch {
          next();
          return;
        }
        done.then(admit, admit);
      });
    this.tail = this.tail.then(start);
    return this.tail;
  }
}

/** A session whose transport is known: what the runner runs commands for. */
export type TransportSession = Session & { via: TransportName };

export class CommandRunner {
  constructor(
    private readonly service: Pick<Service, 'exec'>,
    private readonly metrics?: CommandMetrics,
  ) {}

  /** Runs one validated command frame for the session, timed. */
  exec(s: TransportSession, frame: CommandFrame): Promise<unknown> {
    return this.timed(s.via, frame.cmd, () => this.service.exec(s, frame));
  }

  /** Runs `run` timed as the command `cmd` (an integration's operation, say). */
  timed<T>(via: TransportName, cmd: string, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    return run().then(
      (result) => {
        this.record(via, cmd, performance.now() - t0);
        return result;
      },
      (err: unknown) => {
        this.record(via, cmd, performance.now() - t0, toParleyError(err).code);
        throw err;
      },
    );
  }

  /** Records a command measured elsewhere (REST measures in its lifecycle hooks). */
  record(via: TransportName, cmd: string, ms: number, errorCode?: string): void {
    this.metrics?.command(cmd, via, ms, errorCode);
  }

  /**
   * The close code a refused authentication ends the connection with, or null when the
   * refusal is only answered: a user banned server-wide is closed with CLOSE_BANNED (4003).
   */
  closeCodeFor(err: unknown): number | null {
    return err instanceof ServerBanError ? CLOSE_BANNED : null;
  }
}

/** The longest delay setTimeout holds (about 24.8 days). */
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * Calls `expired` once the identity's token expires (never for a token without `exp`);
 * returns the function that cancels the watch. A far expiry re-arms in steps, since a timer
 * cannot wait longer than MAX_TIMEOUT.
 */
export function watchExpiry(identity: Pick<Identity, 'exp'>, expired: () => void): () => void {
  if (identity.exp === undefined) return noop;
  const at = identity.exp * 1000;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (): void => {
    if (cancelled) return;
    const ms = at - Date.now();
    timer = ms > MAX_TIMEOUT ? setTimeout(arm, MAX_TIMEOUT) : setTimeout(expired, Math.max(0, ms));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    if (timer) clearTimeout(timer);
  };
}

/** An event loop stopped this long (a frozen process; no collection pauses this long) is a stall. */
export const STALL_MS = 2000;

/**
 * Notices when this process's event loop was stopped for STALL_MS or more (the process was
 * frozen, say). Frames read right after such a stall waited in the socket buffers meanwhile:
 * their clients sent them at their own pace, and the node reads them in one burst. A
 * transport marks the commands of such frames (`Session.backlog`) so the rate limiter does
 * not take that burst for the client's.
 */
export class StallWatch {
  private last = performance.now();
  /** A frame was read as backlog before the timer ran again. */
  private seen = false;
  /** The timer noticed the stall first: frames read in this turn's poll are its backlog. */
  private afterStall = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(tickMs = 250) {
    this.timer = setInterval(() => {
      const now = performance.now();
      if (now - this.last >= STALL_MS && !this.seen) {
        // Timers run before the poll that reads the sockets; the check phase right after it
        // ends the backlog.
        this.afterStall = true;
        setImmediate(() => {
          this.afterStall = false;
        });
      }
      this.seen = false;
      this.last = now;
    }, tickMs);
    this.timer.unref();
  }

  /**
   * Whether what is read now waited through a stall: read before the timer ran again (a
   * process woken in its poll reads its sockets first), or in the poll right after the tick
   * that noticed the stall.
   */
  backlog(): boolean {
    if (this.afterStall) return true;
    if (performance.now() - this.last < STALL_MS) return false;
    this.seen = true;
    return true;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
