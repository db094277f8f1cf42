// Typing coalescing: a user's typing in a room reaches the room at most once per window,
// however many `typing` frames its connections send, while the room still learns promptly
// when the user stops. Typing is fanned out to every member (and over the bus to every node),
// so without this one client's flood becomes every member's flood.
//
// Per (user, room), on this node:
// - a state offered while no window is open goes out at once and opens a window of `intervalMs`;
// - a "stopped" goes out at once if the last state sent was "typing" (otherwise there is
//   nothing to stop, and it is dropped);
// - anything else within the window is merged into one pending state, sent when the window
//   ends if it still says something ("typing" again, so the indicator stays on while the
//   user keeps typing), which opens the next window.
// So a room sees at most two typing events per user per window. Entries live only while a
// window is open: memory follows the users typing right now.

interface Entry {
  /** The last state sent. */
  sent: boolean;
  /** The latest state offered since, not sent yet. */
  pending: boolean | null;
  timer: ReturnType<typeof setTimeout>;
}

export type TypingForward = (user: string, room: string, active: boolean) => void;

export class TypingGate {
  private readonly entries = new Map<string, Entry>();

  /** `intervalMs` 0 forwards everything. `forward` sends a state whose window ended with it pending. */
  constructor(
    private readonly intervalMs: number,
    private readonly forward: TypingForward,
  ) {}

  /** Whether this state goes out now; if not, it is merged and may go out when the window ends. */
  offer(user: string, room: string, active: boolean): boolean {
    if (this.intervalMs === 0) return true;
    // User and room ids have no line breaks.
    const key = `${user}\n${room}`;
    const e = this.entries.get(key);
    if (!e) {
      this.entries.set(key, { sent: active, pending: null, timer: this.arm(key, user, room) });
      return true;
    }
    if (!active && e.sent) {
      e.sent = false;
      e.pending = null;
      return true;
    }
    e.pending = active;
    return false;
  }

  private arm(key: string, user: string, room: string): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      const e = this.entries.get(key);
      if (!e) return;
      if (e.pending === true) {
        e.sent = true;
        e.pending = null;
        e.timer = this.arm(key, user, room);
        this.forward(user, room, true);
      } else this.entries.delete(key);
    }, this.intervalMs);
    t.unref();
    return t;
  }

  /** Users and rooms with an open window (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}
