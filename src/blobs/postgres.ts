// BlobStore in PostgreSQL, for clusters: every node reads every blob from the shared database.
// A blob is a `blobs` row and its bytes in `blob_chunks` rows of BLOB_CHUNK bytes (bytea,
// stored uncompressed: uploads are mostly compressed already). Each chunk is its own
// statement on the pool, so an upload holds no connection while it waits for the network;
// the blob row says `complete` only after its last chunk, and `get` serves complete blobs
// only. A put that fails removes what it wrote; one cut short by a crash is left `complete =
// false` and removed by `sweepPartial`. The tables come with the Store's migrations.
import { Readable } from 'node:stream';
import type pg from 'pg';
import { ParleyError } from '../errors.js';
import { query } from '../store/postgres/pool.js';
import { BLOB_CHUNK, Meter, isBlobId, metered, newBlobId, rechunk, type BlobLimits, type BlobSource, type BlobStore, type StoredBlob } from './blobs.js';

export class PostgresBlobStore implements BlobStore {
  constructor(private readonly pool: pg.Pool) {}

  private q<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async put(source: BlobSource, limits: BlobLimits): Promise<StoredBlob> {
    const id = newBlobId();
    const meter = new Meter(limits.maxBytes);
    await this.q("INSERT INTO blobs (id, size, sha256, created_at, complete) VALUES ($1, 0, '', $2, false)", [id, Date.now()]);
    try {
      // The meter sees the source's bytes first, so the limit holds before anything is stored.
      let n = 0;
      for await (const chunk of rechunk(metered(source, meter), BLOB_CHUNK)) {
        await this.q('INSERT INTO blob_chunks (blob_id, n, data) VALUES ($1, $2, $3)', [id, n++, chunk]);
      }
      const sha256 = meter.sha256();
      await this.q('UPDATE blobs SET size = $2, sha256 = $3, complete = true WHERE id = $1', [id, meter.size, sha256]);
      return { id, size: meter.size, sha256 };
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      throw err;
    }
  }

  async get(id: string): Promise<NodeJS.ReadableStream | null> {
    if (!isBlobId(id)) return null;
    const { rows } = await this.q<{ chunks: number }>(
      'SELECT (SELECT count(*) FROM blob_chunks c WHERE c.blob_id = b.id)::int AS chunks FROM blobs b WHERE b.id = $1 AND b.complete',
      [id],
    );
    const chunks = rows[0]?.chunks;
    if (chunks === undefined) return null;
    const read = async function* (this: PostgresBlobStore): AsyncGenerator<Buffer> {
      // One chunk per query, pulled as the reader asks for more.
      for (let n = 0; n < chunks; n++) {
        const r = await this.q<{ data: Buffer }>('SELECT data FROM blob_chunks WHERE blob_id = $1 AND n = $2', [id, n]);
        const data = r.rows[0]?.data;
        if (!data) throw new ParleyError('unavailable', 'the file was removed while it was read');
        yield data;
      }
    }.bind(this);
    return Readable.from(read(), { objectMode: false, highWaterMark: 1 });
  }

  async delete(id: string): Promise<boolean> {
    if (!isBlobId(id)) return false;
    return this.remove(id);
  }

  private async remove(id: string): Promise<boolean> {
    await this.q('DELETE FROM blob_chunks WHERE blob_id = $1', [id]);
    const r = await this.q('DELETE FROM blobs WHERE id = $1', [id]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Removes blobs left incomplete (an upload cut short by a crash) started before `before` (ms). */
  async sweepPartial(before: number): Promise<number> {
    const { rows } = await this.q<{ id: string }>('SELECT id FROM blobs WHERE NOT complete AND created_at < $1 LIMIT 1000', [before]);
    for (const r of rows) await this.remove(r.id);
    return rows.length;
  }

  async close(): Promise<void> {}
}
