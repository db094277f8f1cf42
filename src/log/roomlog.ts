// The room log: every write to a room goes through it, on the node that owns the room. Each
// room has a lane, where its operations wait in the order they came; the node's one committer
// takes the operations at the head of the lanes, decides each with the rules against the
// room's state held in memory (state.ts), gives out seqs in memory, and writes all of the
// batch in one transaction (store/writer.ts). Once it is committed, the events of the batch
// are published in seq order and the callers answered. Rooms wait on each other only to share
// a commit; one batch is in flight at a time, the next gathers meanwhile.
//
// A room this node does not own (cluster: placement) is handed to its owner (forwarding), and
// the owner's answer relayed; a batch refused because the cluster's epoch moved on (fencing),
// or an operation that reached a node no longer owning its room, is routed again.
import { randomUUID } from 'node:crypto';
import { ParleyError } from '../errors.js';
import { isOutcomeUnknown } from '../protocol/outcome.js';
import type { RoomCaps } from '../service/rules.js';
import { KeyConflictError, type Batch } from '../store/writer.js';
import { BatchBuilder } from './batch.js';
import {
  apply,
  prepare,
  type Applied,
  type AppendResult,
  type Ctx,
  type FactReader,
  type LogStore,
  type OpFacts,
  type OpName,
  type OpOf,
  type OpResults,
  type Prep,
  type CommittedEvent,
  type RoomOp,
} from './ops.js';
import { RoomState } from './state.js';

export interface RoomLogOptions {
  caps?: RoomCaps;
  /** Rooms with at most this many members have them all read with the room (default 64). */
  smallRoom?: number;
  /** Room states kept in memory; idle ones beyond are forgotten, least recently used first (default 50,000). */
  maxRooms?: number;
  /** Where rooms are owned and how to reach their owners; absent: this node owns every room. */
  cluster?: ClusterRouting;
  /**
   * For nodes sharing a database without owning rooms: every batch locks its rooms across
   * nodes before it reads their facts, and keeps nothing between batches (see RoomLocks).
   */
  locks?: RoomLocks;
}

/**
 * Writers that share rooms (several nodes, no owner per room) serialise on them: `locked` runs
 * `work` holding the rooms locked against every other `locked` call, from before its first
 * read (through `facts`) until its batch (`commit`) is committed.
 */
export interface RoomLocks {
  locked<T>(rooms: string[], work: (facts: FactReader, commit: (b: Batch) => Promise<void>) => Promise<T>): Promise<T>;
}

/** What the room log needs of the cluster (src/cluster): placement, fencing, forwarding. */
export interface ClusterRouting {
  /** Whether this node owns the room in its current view. */
  isLocal(room: string): boolean;
  /** The epoch of the current view (the batch is fenced by it). */
  epoch(): number;
  /** Runs the operation on the room's owner; rejects with a not-owner error when it is not (any more). */
  forward(room: string, op: RoomOp): Promise<unknown>;
  /** Re-reads the cluster's view (after a fenced batch or a not-owner answer). */
  refresh(): Promise<void>;
  /** Tells `cb` of every view change, with a test for the rooms whose state this node may keep. */
  onChange(cb: (keeps: (room: string) => boolean) => void): void;
  isFenced(err: unknown): boolean;
  isNotOwner(err: unknown): boolean;
  notOwner(room: string): Error;
}

interface Pending {
  op: RoomOp;
  facts: OpFacts;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Batches this operation was in that failed. */
  tries: number;
  /** Commit alone: its batch failed for a reason of its own. */
  isolate: boolean;
  /** Read its key's earlier message first: the store found the key taken. */
  checkKey: boolean;
}

interface Lane {
  room: string;
  ops: Pending[];
  state: RoomState | null;
  loading: boolean;
  /** Operations of this lane in the batch in flight. */
  inFlight: number;
}

interface Decided {
  lane: Lane;
  p: Pending;
  applied?: Applied;
  error?: unknown;
}

/** The operation must go to another node: it no longer belongs here. */
class Reroute extends Error {}

/** Batches one operation may be in before it is refused: a store that keeps failing. */
const MAX_TRIES = 5;
/** Times one call is routed again after the room moved (ownership in flux). */
const MAX_ROUTES = 8;

export class RoomLog {
  private readonly lanes = new Map<string, Lane>();
  /** Calls this node handed to other nodes, per room, not settled yet; calls waiting for them. */
  private readonly forwarding = new Map<string, { calls: number; waiters: Array<() => void> }>();
  /** Reads asked for during the current flush, started at its end. */
  private loads: Array<{ lane: Lane; reads: Array<() => Promise<void>> }> = [];
  /** Lanes with operations waiting, in the order they are served. */
  private readonly active = new Set<Lane>();
  private inFlight: Promise<void> | null = null;
  private scheduled = false;
  /** Lanes waiting for reads. */
  private reading = 0;
  private lastFlush = -Infinity;
  private lastBatch = 0;
  private closed = false;
  private idle: Array<() => void> = [];
  private listeners: Array<(events: CommittedEvent[]) => void> = [];
  private relayed: Array<(room: string, op: RoomOp, result: unknown) => void> = [];
  private uncertain: Array<(rooms: string[]) => void> = [];
  private readonly ctx: Ctx;
  private readonly smallRoom: number;
  private readonly maxRooms: number;
  private readonly cluster: ClusterRouting | undefined;
  private readonly locks: RoomLocks | undefined;

  constructor(
    private readonly store: LogStore,
    opts: RoomLogOptions = {},
  ) {
    this.ctx = { caps: opts.caps ?? {}, store };
    this.smallRoom = opts.smallRoom ?? 64;
    this.maxRooms = opts.maxRooms ?? 50_000;
    this.cluster = opts.cluster;
    this.locks = opts.locks;
    this.cluster?.onChange((keeps) => {
      for (const lane of this.lanes.values()) if (lane.state && !keeps(lane.room)) this.forget(lane);
      // Waiting operations of rooms that moved go to their new owners.
      if (this.active.size > 0) this.schedule();
    });
  }

  /** Adds a listener told of each committed batch's events, in seq order (the one publish point). */
  onCommitted(fn: (events: CommittedEvent[]) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Adds a listener told of each operation this node handed to a room's owner, with the
   * owner's answer, once it is committed there (the owner published its events; this node may
   * hand its own connections a copy without waiting for the bus).
   */
  onRelayed(fn: (room: string, op: RoomOp, result: unknown) => void): void {
    this.relayed.push(fn);
  }

  /**
   * Adds a listener told of rooms whose store may hold messages nobody published: those of a
   * batch whose commit went out and whose answer did not come (it may be stored, and then
   * nothing of it was published), the room of a call handed to its owner that did not answer
   * (it may have stored it and died), and the room of a keyed append found stored already
   * (its first attempt's answer was lost, maybe with its publication).
   */
  onUncertain(fn: (rooms: string[]) => void): void {
    this.uncertain.push(fn);
  }

  private tellUncertain(rooms: string[]): void {
    for (const fn of this.uncertain) {
      try {
        fn(rooms);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Runs an operation on a room, wherever its owner is; resolves once it is committed. */
  async submit<N extends OpName>(room: string, op: OpOf<N>): Promise<OpResults[N]> {
    // Keyed writes may be retried safely (a lost answer, a batch fenced): in a cluster every
    // append carries a key, the caller's or one of its own.
    const given: RoomOp = op;
    const keyed = this.cluster !== undefined && given.op === 'append' && given.key === undefined;
    const o: RoomOp = keyed ? { ...given, key: autoKey() } : given;
    // A retry that found its own earlier attempt stored is, for a caller who gave no key, the send.
    const answer = (r: unknown) => (keyed ? { ...(r as AppendResult), duplicate: false } : r) as OpResults[N];
    const cluster = this.cluster;
    if (!cluster) return answer(await this.local(room, o));
    // This node keeps each room's calls in the order they came (one connection's sends are
    // stored in the order sent) while the room moves: a call for a room whose lane here still
    // holds calls joins them (they are routed on in order), and a call for a room this node
    // now owns waits for those it handed to the former owner until they are committed there
    // or come back.
    let held = false;
    try {
      for (let route = 0; ;) {
        if (cluster.isLocal(room) || this.queuedHere(room)) {
          const forwarding = held ? undefined : this.forwarding.get(room);
          if (forwarding && cluster.isLocal(room)) {
            await new Promise<void>((r) => forwarding.waiters.push(r));
            continue;
          }
          const done = this.local(room, o);
          if (held) {
            held = false;
            this.unhold(room);
          }
          try {
            return answer(await done);
          } catch (err) {
            if (!(err instanceof Reroute) || ++route > MAX_ROUTES) throw err instanceof Reroute ? moved(room) : err;
            continue;
          }
        }
        if (!held) {
          held = true;
          this.hold(room);
        }
        try {
          const result = await cluster.forward(room, o);
          for (const fn of this.relayed) {
            try {
              fn(room, o, result);
            } catch {
              /* a listener's failure is its own */
            }
          }
          return answer(result);
        } catch (err) {
          // The owner may have stored it and died (or froze) before publishing it.
          if (err instanceof ParleyError && isOutcomeUnknown(err.details)) this.tellUncertain([room]);
          if (!cluster.isNotOwner(err) || ++route > MAX_ROUTES) throw err;
          await cluster.refresh().catch(() => undefined);
        }
      }
    } finally {
      if (held) this.unhold(room);
    }
  }

  /** Whether the room's lane here holds calls not yet settled. */
  private queuedHere(room: string): boolean {
    const lane = this.lanes.get(room);
    return lane !== undefined && (lane.ops.length > 0 || lane.inFlight > 0 || lane.loading);
  }

  private hold(room: string): void {
    const f = this.forwarding.get(room);
    if (f) f.calls++;
    else this.forwarding.set(room, { calls: 1, waiters: [] });
  }

  private unhold(room: string): void {
    const f = this.forwarding.get(room)!;
    if (--f.calls > 0) return;
    this.forwarding.delete(room);
    for (const r of f.waiters) r();
  }

  /** Runs an operation forwarded by another node; refuses it when this node does not own the room. */
  async serve(room: string, op: RoomOp): Promise<unknown> {
    if (this.cluster && !this.cluster.isLocal(room)) throw this.cluster.notOwner(room);
    try {
      return await this.local(room, op);
    } catch (err) {
      if (err instanceof Reroute) throw this.cluster ? this.cluster.notOwner(room) : moved(room);
      throw err;
    }
  }

  /** Forgets what is held about every room (their states are read again on next use). */
  forgetAll(): void {
    for (const lane of this.lanes.values()) this.forget(lane);
  }

  /** Stops taking operations; resolves once those already taken are settled. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.active.size === 0 && !this.inFlight && this.reading === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  // ---- lanes ------------------------------------------------------------------------------

  private local(room: string, op: RoomOp): Promise<unknown> {
    if (this.closed) return Promise.reject(new ParleyError('unavailable', 'the server is shutting down'));
    return new Promise((resolve, reject) => {
      const lane = this.lane(room);
      lane.ops.push({ op, facts: {}, resolve, reject, tries: 0, isolate: false, checkKey: false });
      this.active.add(lane);
      this.schedule();
    });
  }

  private lane(room: string): Lane {
    let lane = this.lanes.get(room);
    if (lane) {
      // Most recently used last: idle rooms are forgotten from the front.
      this.lanes.delete(room);
    } else {
      lane = { room, ops: [], state: null, loading: false, inFlight: 0 };
    }
    this.lanes.set(room, lane);
    return lane;
  }

  private forget(lane: Lane): void {
    lane.state = null;
  }

  private trimLanes(): void {
    if (this.lanes.size <= this.maxRooms) return;
    for (const lane of this.lanes.values()) {
      if (this.lanes.size <= this.maxRooms) break;
      if (lane.ops.length === 0 && !lane.loading && lane.inFlight === 0) this.lanes.delete(lane.room);
    }
  }

  // ---- facts ------------------------------------------------------------------------------

  /**
   * Starts reading what the lane's head operation lacks; the lane waits meanwhile. A read
   * starts once the batch in flight is settled, so it sees every change decided before it; a
   * read whose state was forgotten meanwhile is dropped.
   */
  private load(lane: Lane, reads: Array<() => Promise<void>>): void {
    lane.loading = true;
    this.reading++;
    this.loads.push({ lane, reads });
  }

  /** Starts the reads asked for during a flush, once its batch (if any) is settled. */
  private startLoads(): void {
    const after = this.inFlight ?? Promise.resolve();
    for (const { lane, reads } of this.loads.splice(0)) this.read(lane, after, reads);
  }

  private read(lane: Lane, after: Promise<void>, reads: Array<() => Promise<void>>): void {
    void after
      .then(() => Promise.all(reads.map((r) => r())))
      .then(
        () => {
          lane.loading = false;
        },
        (err: unknown) => {
          lane.loading = false;
          // The store did not answer: what waits in this lane would wait for it too, so it fails now.
          const failure = err instanceof ParleyError ? err : new ParleyError('unavailable', `storage failed: ${(err as Error).message}`);
          for (const p of lane.ops.splice(0)) p.reject(failure);
        },
      )
      .finally(() => {
        this.reading--;
        if (lane.ops.length > 0) this.active.add(lane);
        this.schedule();
      });
  }

  private loadState(lane: Lane): Array<() => Promise<void>> {
    return [
      async () => {
        const snapshot = await this.store.loadRoom(lane.room, this.smallRoom);
        if (lane.state === null) lane.state = new RoomState(snapshot);
      },
    ];
  }

  /** The reads the head operation needs before it can be decided (none: decide it now). */
  private needs(lane: Lane, p: Pending, store: FactReader = this.store, ctx: Ctx = this.ctx): Array<() => Promise<void>> {
    const s = lane.state!;
    const room = lane.room;
    const reads: Array<() => Promise<void>> = [];
    const gen = s.generation;
    const still = () => lane.state === s && s.generation === gen;
    const read = <T>(get: () => Promise<T>, put: (v: T) => void) => {
      reads.push(async () => {
        const v = await get();
        if (still()) put(v);
      });
    };
    const prep: Prep = {
      member: (u) => {
        if (s.member(u) === undefined)
          read(
            () => store.getMember(room, u),
            (m) => {
              if (!s.members.has(u)) s.setMember(u, m);
            },
          );
      },
      allMembers: () => {
        if (!s.membersComplete) {
          read(
            () => store.members(room),
            (ms) => {
              for (const m of ms) if (!s.members.has(m.user)) s.setMember(m.user, m);
              s.membersComplete = true;
            },
          );
        }
      },
      ban: (u) => {
        if (!s.bans.has(u))
          read(
            () => store.roomBan(room, u),
            (b) => {
              if (!s.bans.has(u)) s.bans.set(u, b);
            },
          );
      },
      listed: (u) => {
        if (s.listedAs(u) === undefined)
          read(
            () => store.listed(room, u),
            (l) => {
              if (s.listedAs(u) === undefined) s.listed.set(u, l);
            },
          );
      },
      lists: () => {
        if (!s.lists)
          read(
            () => store.lists(room),
            (l) => {
              s.lists ??= { white: new Set(l.white), black: new Set(l.black) };
            },
          );
      },
      target: (seq) => {
        if (!s.targets.has(seq))
          read(
            () => store.target(room, seq),
            (t) => {
              if (!s.targets.has(seq)) s.targets.set(seq, t);
            },
          );
      },
      thread: (root) => {
        if (!s.threads.has(root))
          read(
            () => store.threadSummary(room, root),
            (t) => {
              if (!s.threads.has(root)) s.threads.set(root, t);
            },
          );
      },
      block: (u, o) => {
        const k = `${u}\n${o}`;
        if (!s.blocks.has(k))
          read(
            () => store.blocks(u, o),
            (v) => {
              if (!s.blocks.has(k)) s.blocks.set(k, v);
            },
          );
      },
      fact: (name, get) => {
        if (!(name in p.facts))
          reads.push(async () => {
            p.facts[name] = await get();
          });
      },
    };
    const op = p.op;
    if (p.checkKey && op.op === 'append' && op.key !== undefined) {
      const key = op.key;
      prep.fact('prior', () => store.keyed(room, op.by.id, key));
    }
    prepare(op, room, s, p.facts, prep, ctx);
    return reads;
  }

  // ---- the committer ----------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    if (this.active.size === 0) {
      this.settleIdle();
      return;
    }
    this.scheduled = true;
    // Under sustained load, commits are spaced so each carries more (see commitIntervalMs).
    const wait = this.lastBatch > 1 ? this.lastFlush + this.store.commitIntervalMs - performance.now() : 0;
    if (wait > 0) setTimeout(() => this.flush(), wait);
    else setImmediate(() => this.flush());
  }

  private settleIdle(): void {
    if (this.inFlight || this.active.size > 0 || this.reading > 0) return;
    const waiting = this.idle;
    this.idle = [];
    for (const r of waiting) r();
  }

  /** Decides the operations at the heads of the lanes into one batch and commits it. */
  private flush(): void {
    this.scheduled = false;
    if (this.inFlight) return;
    this.lastFlush = performance.now();
    if (this.locks) {
      this.flushLocked(this.locks);
      return;
    }
    const builder = new BatchBuilder();
    const decided: Decided[] = [];
    const max = this.store.maxBatch;
    const now = Date.now();
    let alone = false;
    const served: Lane[] = [];
    for (const lane of this.active) {
      if (decided.length >= max || alone) break;
      served.push(lane);
      while (lane.ops.length > 0 && !lane.loading && decided.length < max) {
        const p = lane.ops[0]!;
        if (this.cluster && !this.cluster.isLocal(lane.room)) {
          lane.ops.shift();
          p.reject(new Reroute());
          continue;
        }
        if (p.isolate && decided.length > 0) {
          alone = true;
          break;
        }
        if (!lane.state) {
          this.load(lane, this.loadState(lane));
          break;
        }
        const reads = this.needs(lane, p);
        if (reads.length > 0) {
          this.load(lane, reads);
          break;
        }
        lane.ops.shift();
        const d: Decided = { lane, p };
        try {
          d.applied = apply(p.op, lane.room, lane.state, p.facts, builder, this.ctx, now);
        } catch (err) {
          d.error = err;
        }
        decided.push(d);
        lane.inFlight++;
        if (p.isolate) {
          alone = true;
          break;
        }
      }
    }
    // Served lanes go to the back, so a busy room cannot keep the others waiting.
    for (const lane of served) {
      this.active.delete(lane);
      if (lane.ops.length > 0 && !lane.loading) this.active.add(lane);
    }
    this.lastBatch = decided.length;
    if (decided.length === 0) {
      this.startLoads();
      this.settleIdle();
      return;
    }
    if (builder.isEmpty) {
      // Nothing to write (refusals, duplicates): answer at once.
      this.inFlight = this.settle(decided).finally(() => this.done(decided));
    } else {
      const epoch = this.cluster ? this.cluster.epoch() : null;
      this.inFlight = this.store
        .commit(builder.build(), epoch)
        .then(
          () => this.settle(decided),
          (err: unknown) => this.failed(decided, err),
        )
        .finally(() => this.done(decided));
    }
    this.startLoads();
  }

  /**
   * Shared rooms (RoomLocks): takes the operations at the heads of the lanes, locks their
   * rooms, reads their states and facts afresh under the lock, decides and commits, then
   * forgets the states: another node may write the rooms as soon as the locks are let go.
   */
  private flushLocked(locks: RoomLocks): void {
    const max = this.store.maxBatch;
    const taken: Array<{ lane: Lane; ops: Pending[] }> = [];
    let n = 0;
    let alone = false;
    for (const lane of this.active) {
      if (n >= max || alone) break;
      const ops: Pending[] = [];
      while (lane.ops.length > 0 && n < max) {
        const p = lane.ops[0]!;
        if (p.isolate && n > 0) {
          alone = true;
          break;
        }
        ops.push(lane.ops.shift()!);
        n++;
        if (p.isolate) {
          alone = true;
          break;
        }
      }
      if (ops.length > 0) taken.push({ lane, ops });
    }
    for (const { lane } of taken) {
      this.active.delete(lane);
      if (lane.ops.length > 0) this.active.add(lane);
    }
    this.lastBatch = n;
    if (n === 0) {
      this.settleIdle();
      return;
    }
    const all: Decided[] = taken.flatMap(({ lane, ops }) => ops.map((p) => ({ lane, p })));
    for (const d of all) d.lane.inFlight++;
    const now = Date.now();
    const run = locks.locked(
      taken.map((t) => t.lane.room),
      async (facts, commit) => {
        const builder = new BatchBuilder();
        const ctx: Ctx = { caps: this.ctx.caps, store: facts };
        // From scratch on every attempt: nothing read or decided before the lock holds.
        for (const { lane } of taken) lane.state = null;
        for (const d of all) {
          delete d.applied;
          delete d.error;
          d.p.facts = d.p.facts.prior === undefined ? {} : { prior: d.p.facts.prior };
        }
        for (const d of all) {
          const { lane, p } = d;
          lane.state ??= new RoomState(await facts.loadRoom(lane.room, this.smallRoom));
          for (let reads = this.needs(lane, p, facts, ctx); reads.length > 0; reads = this.needs(lane, p, facts, ctx)) {
            for (const read of reads) await read();
          }
          try {
            // Decided with the pool's reads: what it reads later (a duplicate's message) comes after the commit.
            d.applied = apply(p.op, lane.room, lane.state, p.facts, builder, this.ctx, now);
          } catch (err) {
            d.error = err;
          }
        }
        if (!builder.isEmpty) await commit(builder.build());
      },
    );
    this.inFlight = run
      .then(
        () => this.settle(all),
        (err: unknown) => this.failed(all, err),
      )
      .finally(() => {
        for (const { lane } of taken) this.forget(lane);
        this.done(all);
      });
  }

  private done(decided: Decided[]): void {
    for (const d of decided) d.lane.inFlight--;
    this.inFlight = null;
    for (const d of decided) d.lane.state?.trim();
    this.trimLanes();
    this.schedule();
  }

  /** The batch is committed: publish its events in order, then answer. */
  private async settle(decided: Decided[]): Promise<void> {
    const events: CommittedEvent[] = [];
    for (const d of decided) if (d.applied) for (const e of d.applied.events) events.push({ ...e, by: d.p.op.by });
    if (events.length > 0) {
      for (const fn of this.listeners) {
        try {
          fn(events);
        } catch {
          /* a listener's failure is its own */
        }
      }
    }
    for (const d of decided) {
      if (d.error !== undefined) d.p.reject(d.error);
      else if (d.applied?.later) {
        // A duplicate: read its earlier message, and have the room compared with the store.
        if (d.p.op.op === 'append') this.tellUncertain([d.lane.room]);
        d.applied.later().then(d.p.resolve, d.p.reject);
      } else d.p.resolve(d.applied?.result);
    }
  }

  /**
   * The batch did not commit, so nothing of it happened: the states of its rooms are
   * forgotten (read again from the store), and its operations decided again — routed anew
   * when the cluster moved on, with their keys' earlier messages when a key was taken, one by
   * one when one of them failed in the store — or refused when the store is away.
   */
  private async failed(decided: Decided[], err: unknown): Promise<void> {
    for (const d of decided) this.forget(d.lane);
    const fenced = this.cluster?.isFenced(err) ?? false;
    const keyTaken = err instanceof KeyConflictError;
    const failure = err instanceof ParleyError ? err : new ParleyError('internal', `storage error: ${(err as Error).message}`);
    const again = fenced || keyTaken || (failure.code !== 'unavailable' && decided.length > 1);
    if (isOutcomeUnknown(failure.details)) this.tellUncertain([...new Set(decided.map((d) => d.lane.room))]);
    if (fenced) await this.cluster!.refresh().catch(() => undefined);
    for (let i = decided.length - 1; i >= 0; i--) {
      const { lane, p } = decided[i]!;
      p.tries++;
      if (!again || p.tries >= MAX_TRIES) {
        p.reject(keyTaken || fenced ? new ParleyError('unavailable', failure.message) : failure);
        continue;
      }
      if (keyTaken) p.checkKey = true;
      else if (!fenced) p.isolate = true;
      // Facts read for it may be what made it fail (a channel name taken meanwhile): read again.
      p.facts = p.facts.prior === undefined ? {} : { prior: p.facts.prior };
      lane.ops.unshift(p);
      this.active.add(lane);
    }
  }
}

function moved(room: string): ParleyError {
  return new ParleyError('unavailable', `room ${JSON.stringify(room)} is moving between nodes; retry`);
}

/**
 * A key for an append whose caller gave none ('~' + a random UUID, 122 random bits; clients'
 * keys are theirs). randomUUID draws from a pool; randomBytes would ask the system for entropy
 * on every send.
 */
function autoKey(): string {
  return `~${randomUUID()}`;
}
