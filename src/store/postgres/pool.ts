// The connection pool of the PostgreSQL stores and how its failures become Parley errors.
// Every connection has a connect timeout, a server-side statement timeout and a client-side
// read timeout, so a database that is down or unreachable makes calls reject with
// `unavailable` instead of hanging; broken connections are dropped and replaced on the next
// call, so the stores recover by themselves when the database is back. bigint columns (times
// in ms, seqs, counts) are read as JavaScript numbers.
import pg from 'pg';
import type { Logger } from 'pino';
import { ParleyError } from '../../errors.js';

export interface PgPoolOptions {
  /** Connection URL (postgres://user:password@host:port/database?...). */
  url: string;
  /** Most connections this process opens (default 10). */
  poolSize?: number;
  /** Schema holding Parley's tables, created if missing (default: the server's search_path, normally `public`). */
  schema?: string;
  /** Longest wait for a connection (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Longest a statement may run, lock waits included (default 10000 ms). */
  statementTimeoutMs?: number;
  /** Reported in pg_stat_activity (default `parley`). */
  applicationName?: string;
  /** Told (warn) about broken idle connections, which the pool drops; they never crash the process. */
  log?: Pick<Logger, 'warn'>;
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

function positiveInt(name: string, v: number | undefined, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) throw new ParleyError('invalid', `${name} must be an integer from 1 to ${max}`, { field: name });
  return v;
}

/** Checks the options; throws `invalid` naming the bad field. */
export function checkOptions(o: PgPoolOptions): Required<Omit<PgPoolOptions, 'schema' | 'log'>> & { schema: string | null } {
  if (typeof o !== 'object' || o === null) throw new ParleyError('invalid', 'options are required');
  if (typeof o.url !== 'string' || o.url === '') throw new ParleyError('invalid', 'url is required', { field: 'url' });
  let protocol: string;
  try {
    protocol = new URL(o.url).protocol;
  } catch {
    throw new ParleyError('invalid', 'url is not a URL', { field: 'url' });
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new ParleyError('invalid', 'url must start with postgres:// or postgresql://', { field: 'url' });
  }
  if (o.schema !== undefined && (typeof o.schema !== 'string' || !SCHEMA.test(o.schema))) {
    throw new ParleyError('invalid', 'schema must be a lower-case identifier (a-z, 0-9, _)', { field: 'schema' });
  }
  if (o.applicationName !== undefined && (typeof o.applicationName !== 'string' || o.applicationName.length > 63)) {
    throw new ParleyError('invalid', 'applicationName must be a string of at most 63 characters', { field: 'applicationName' });
  }
  return {
    url: o.url,
    poolSize: positiveInt('poolSize', o.poolSize, 10, 1000),
    schema: o.schema ?? null,
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs, 5000, 600_000),
    statementTimeoutMs: positiveInt('statementTimeoutMs', o.statementTimeoutMs, 10_000, 3_600_000),
    applicationName: o.applicationName ?? 'parley',
  };
}

const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function createPool(o: PgPoolOptions): pg.Pool {
  const c = checkOptions(o);
  const pool = new pg.Pool({
    connectionString: c.url,
    max: c.poolSize,
    connectionTimeoutMillis: c.connectTimeoutMs,
    // The server cancels a statement after statementTimeoutMs; the client gives up a little
    // later in case the server cannot even say so (a dead link).
    statement_timeout: c.statementTimeoutMs,
    query_timeout: c.statementTimeoutMs + 2000,
    // A transaction left open by a frozen node must not hold room locks for long.
    idle_in_transaction_session_timeout: Math.max(30_000, c.statementTimeoutMs * 3),
    keepAlive: true,
    application_name: c.applicationName,
    idleTimeoutMillis: 30_000,
    types,
    ...(c.schema !== null ? { options: `-c search_path=${c.schema}` } : {}),
  });
  // An idle connection that breaks (server restart, network) is removed by the pool, which
  // then emits `error`; without a listener that would crash the process.
  pool.on('error', (err) => {
    o.log?.warn({ err }, 'postgres connection lost');
  });
  return pool;
}

// Errors are told apart by what they are, never by their text: PostgreSQL's own carry a
// SQLSTATE (pg.DatabaseError); the driver reports a lost, refused or timed-out connection with
// Node's socket error codes or a plain Error of its own.

/** SQLSTATE classes of a connection that is gone: connection exception, operator intervention (shutdown), insufficient resources. */
const CONNECTION_SQLSTATE = /^(08|57P0|53)/;

const sqlstate = (err: unknown): string => (err instanceof pg.DatabaseError ? (err.code ?? '') : '');

/** SQLSTATEs after which the transaction can only be retried from the start (deadlock, serialization failure). */
export const isRetryable = (err: unknown): boolean => {
  const code = sqlstate(err);
  return code === '40P01' || code === '40001';
};

/** Whether the error means the connection (or the server) is gone, not that the statement was wrong. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return CONNECTION_SQLSTATE.test(err.code ?? '');
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ENOTFOUND...
  // The driver's own (connection terminated, read timeout, no connection in time): plain Errors.
  return Object.getPrototypeOf(err) === Error.prototype;
}

/**
 * Turns a driver error into a ParleyError: the database being away or too slow is
 * `unavailable`; a value PostgreSQL cannot store (a NUL character, an out-of-range number) is
 * `invalid`; a unique key already taken is `conflict`; anything else `internal`.
 */
export function toStoreError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  const code = sqlstate(err);
  const msg = err instanceof Error ? err.message : String(err);
  // 57014: statement timeout; 55P03: lock not available.
  if (isConnectionError(err) || code === '57014' || isRetryable(err) || code === '55P03') {
    return new ParleyError('unavailable', `database unavailable: ${msg}`);
  }
  if (code === '23505') {
    return (err as pg.DatabaseError).constraint === 'rooms_channel_name'
      ? new ParleyError('conflict', 'a channel with this name exists', { field: 'name' })
      : new ParleyError('conflict', 'already exists');
  }
  if (code.startsWith('22')) return new ParleyError('invalid', `value not storable: ${msg}`);
  return new ParleyError('internal', `storage error: ${msg}`);
}

const plainBegin = (client: pg.PoolClient): Promise<unknown> => client.query('BEGIN');

/** One statement on the pool; driver errors become ParleyErrors (see toStoreError). */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(sql, params);
  } catch (err) {
    throw toStoreError(err);
  }
}

/**
 * Checks a connection out of the pool for `use` and back in after it. A connection that broke
 * (or whose `cleanUp` after a failure broke) is dropped from the pool instead of being reused.
 */
async function checkedOut<T>(pool: pg.Pool, use: (client: pg.PoolClient) => Promise<T>, cleanUp?: (client: pg.PoolClient) => Promise<unknown>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    // Nothing was sent: the database is down or unreachable, or the pool is exhausted.
    throw new ParleyError('unavailable', `database unavailable: ${(err as Error).message}`);
  }
  // While checked out, a broken connection's error surfaces through the running query.
  const onError = () => {};
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    return await use(client);
  } catch (err) {
    if (isConnectionError(err)) broken = err as Error;
    else
      await cleanUp?.(client).catch((e: Error) => {
        broken = e;
      });
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

const rollback = (client: pg.PoolClient): Promise<unknown> => client.query('ROLLBACK');

/**
 * Runs `fn` in one transaction on one connection of the pool: commits when it resolves, rolls
 * back and rethrows (the driver's error as it is) when it throws. `begin` opens the
 * transaction: `BEGIN` alone, or (one round trip fewer) `BEGIN` with the transaction's first
 * statements in one simple query.
 */
export function transaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  begin: (client: pg.PoolClient) => Promise<unknown> = plainBegin,
): Promise<T> {
  return checkedOut(
    pool,
    async (client) => {
      await begin(client);
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    },
    rollback,
  );
}

/**
 * Runs `fn`, one statement that is its own transaction (autocommit), on one connection of the
 * pool; `sent` is called just before it goes out (after that its outcome is unknown when the
 * connection breaks). The driver's error is rethrown as it is.
 */
export function statement<T>(pool: pg.Pool, sent: () => void, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return checkedOut(pool, (client) => {
    sent();
    return fn(client);
  });
}
