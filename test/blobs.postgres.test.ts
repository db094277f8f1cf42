// The PostgreSQL BlobStore and AttachmentStore against a real PostgreSQL (a throwaway server):
// the port's conformance suite, then what only a shared database shows — a blob stored through
// one node is read through another, and an upload cut short by a crash is swept.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../tools/devservers/postgres.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { PostgresBlobStore } from '../src/blobs/postgres.js';
import { PostgresAttachmentStore } from '../src/store/postgres/attachments.js';
import { blobStoreConformance } from './conformance/blobs.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.destroy();
});

let schemas = 0;
const freshSchema = () => `b${++schemas}_${process.pid}`;

blobStoreConformance('postgres', async () => {
  const store = await PostgresStore.open({ url: server.url, schema: freshSchema() });
  return {
    blobs: new PostgresBlobStore(store.pool),
    records: new PostgresAttachmentStore(store.pool),
    count: async () =>
      Number((await store.pool.query<{ n: string }>('SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM blob_chunks) AS n')).rows[0]!.n),
    close: () => store.close(),
  };
});

describe('PostgreSQL blob store: several nodes on one database', () => {
  it('a file stored through one node is read through another', async () => {
    const schema = freshSchema();
    const [a, b] = await Promise.all([PostgresStore.open({ url: server.url, schema }), PostgresStore.open({ url: server.url, schema })]);
    const bytes = randomBytes(700_000);
    const put = await new PostgresBlobStore(a.pool).put(
      (async function* () {
        yield bytes;
      })(),
      { maxBytes: 1 << 20 },
    );
    const parts: Buffer[] = [];
    for await (const c of (await new PostgresBlobStore(b.pool).get(put.id))! as AsyncIterable<Buffer>) parts.push(c);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it('an upload cut short by a crash is never served, and the sweep removes it', async () => {
    const store = await PostgresStore.open({ url: server.url, schema: freshSchema() });
    const blobs = new PostgresBlobStore(store.pool);
    // What a node that died mid-upload leaves: the blob row and some chunks, not complete.
    await store.pool.query("INSERT INTO blobs (id, size, sha256, created_at, complete) VALUES ('CCCCCCCCCCCCCCCCCCCCCC', 0, '', 1, false)");
    await store.pool.query("INSERT INTO blob_chunks (blob_id, n, data) VALUES ('CCCCCCCCCCCCCCCCCCCCCC', 0, '\\x00')");
    expect(await blobs.get('CCCCCCCCCCCCCCCCCCCCCC')).toBeNull();
    expect(await blobs.sweepPartial(Date.now())).toBe(1);
    expect((await store.pool.query('SELECT 1 FROM blob_chunks')).rowCount).toBe(0);
    await store.close();
  });
});
