// Writes of one event-loop turn, out in one system call per stream: the first write of a turn
// corks the streams and schedules their uncork, so what follows in that turn is buffered and
// leaves together. Used where one turn writes many small frames to the same connection: a
// node's calls to a peer and its answers (cluster/forward.ts), its publishes to Redis
// (bus/redis). Cheaper for the garbage collector than batching objects: nothing is allocated
// per write but the stream's own buffer entry.
import type { Writable } from 'node:stream';

/**
 * Corks the streams `streams()` names for the writes that follow until `later` runs the
 * uncork: calling the result again meanwhile does nothing, so a turn's writes leave in one
 * system call per stream. A stream replaced meanwhile (a reconnect) is simply not corked.
 */
export function turnCork(streams: () => readonly Writable[], later: (uncork: () => void) => void): () => void {
  let corked: readonly Writable[] | null = null;
  const uncork = (): void => {
    const s = corked ?? [];
    corked = null;
    for (const w of s) w.uncork();
  };
  return () => {
    if (corked) return;
    corked = streams();
    for (const w of corked) w.cork();
    later(uncork);
  };
}
