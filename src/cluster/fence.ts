// Fencing of writes by the cluster epoch, on PostgreSQL. Every batch transaction takes one
// advisory lock SHARED and then checks that the epoch it was routed with is still current;
// every change of the node list (placement-postgres.ts) takes the same lock EXCLUSIVE before it
// bumps the epoch. So a bump waits for the batches in flight, and once it has committed no
// batch of an older epoch can commit: a stale or frozen owner never writes after it lost a room.
//
// The check must be a statement AFTER the one that takes the lock: in READ COMMITTED each
// statement reads from its own snapshot, taken when it starts, so a statement that had to wait
// for the lock behind a bump would still see the epoch from before it. Batches hold the lock
// shared, so they never wait on each other; the advisory lock is the only lock they take in a
// fixed order, so it adds no deadlock.
//
// A batch of messages alone enters the fence inside parley_write_log (store/postgres
// migration 12), the same lock and epoch read as statements of the function, which (volatile)
// takes a fresh snapshot for each: the batch is one statement and one round trip. Other
// batches enter it with enterFence at the start of their transaction.
import type pg from 'pg';
import { ParleyError } from '../errors.js';

/**
 * First key of the fencing advisory lock ('pfnc'); the second is hashtext(current_schema()),
 * so Parley clusters in different schemas of one database do not fence each other.
 */
export const FENCE_KEY = 0x70666e63;
const KEYS = `${FENCE_KEY}, hashtext(current_schema())`;

/** Takes the fencing lock shared (for the rest of the transaction). */
export const FENCE_SHARED_SQL = `SELECT pg_advisory_xact_lock_shared(${KEYS})`;
/** Takes the fencing lock exclusive (for the rest of the transaction): membership changes only. */
export const FENCE_EXCLUSIVE_SQL = `SELECT pg_advisory_xact_lock(${KEYS})`;
/** The current epoch; run it as a statement after FENCE_SHARED_SQL. */
export const EPOCH_SQL = 'SELECT epoch FROM cluster_state WHERE id = 1';

/**
 * The batch's epoch is no longer current: nothing of the batch may commit (roll it back),
 * refresh the view and route its operations again. `unavailable` if it ever reaches a client.
 */
export class FencedError extends ParleyError {
  constructor(
    readonly epoch: number,
    readonly current: number | null,
  ) {
    super('unavailable', `the cluster moved from epoch ${epoch} to ${current ?? 'none'}: writes of epoch ${epoch} are refused`);
    this.name = 'FencedError';
  }
}

/**
 * Inside a batch transaction (after BEGIN, before its writes): takes the fencing lock shared
 * and checks that `epoch` is current, in one round trip (statements of one simple query, each
 * with its own snapshot). Throws FencedError when it is not; the caller rolls back. Outside a
 * transaction it would fence nothing: the lock would end with the statement. With `begin`, the
 * same round trip opens the transaction first (a batch's BEGIN costs no round trip of its own).
 */
export async function enterFence(client: pg.ClientBase, epoch: number, begin = false): Promise<void> {
  const sql = `${begin ? 'BEGIN; ' : ''}${FENCE_SHARED_SQL}; ${EPOCH_SQL}`;
  const results = (await client.query(sql)) as unknown as pg.QueryResult<{ epoch: number | string }>[];
  const row = results.at(-1)?.rows[0];
  const current = row === undefined ? null : Number(row.epoch);
  if (current !== epoch) throw new FencedError(epoch, current);
}
