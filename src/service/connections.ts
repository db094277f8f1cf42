// The cap on one user's live connections on this node, WebSocket and MQTT together: each
// authenticated connection holds a slot until it closes, and one more is refused with
// `rate_limited` (details.reason `connections`), which the transports turn into their own
// refusal (WebSocket close 4008, MQTT CONNACK 3). Kept per node: a user connected to several
// nodes of a cluster may hold the cap on each.
import { ParleyError } from '../errors.js';

export class ConnectionCap {
  private readonly held = new Map<string, number>();

  /** `perUser` 0: no cap. */
  constructor(readonly perUser: number) {}

  /**
   * Takes a slot of `user`; returns the function that gives it back (once, however often
   * called). `replacing`: the connection takes over one the user holds, which is about to
   * close (an MQTT client id reused), so it is not refused.
   */
  hold(user: string, replacing = false): () => void {
    const n = this.held.get(user) ?? 0;
    if (this.perUser > 0 && n >= this.perUser && !replacing) {
      throw new ParleyError('rate_limited', `too many connections: at most ${this.perUser} per user`, { reason: 'connections', limit: this.perUser });
    }
    this.held.set(user, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.held.get(user) ?? 1) - 1;
      if (left > 0) this.held.set(user, left);
      else this.held.delete(user);
    };
  }

  /** The connections `user` holds on this node. */
  count(user: string): number {
    return this.held.get(user) ?? 0;
  }
}

/** Whether an error is the refusal of one connection too many. */
export const isConnectionCap = (err: unknown): boolean =>
  err instanceof ParleyError && err.code === 'rate_limited' && (err.details as { reason?: unknown } | undefined)?.reason === 'connections';
