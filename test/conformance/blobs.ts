// The BlobStore port's behaviour suite: every backend runs it (blobs.disk.test.ts,
// blobs.postgres.test.ts), together with the AttachmentStore records that point at blobs.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blobs/blobs.js';
import { BLOB_CHUNK } from '../../src/blobs/blobs.js';
import type { Attachment, AttachmentStore } from '../../src/store/attachments.js';

export interface BlobBackend {
  blobs: BlobStore;
  records: AttachmentStore;
  /** How many partial or complete blobs the backend holds (files or rows), to see that nothing is left. */
  count(): Promise<number>;
  close(): Promise<void>;
}

/** A source that yields `n` chunks of `size` random bytes, counting how many were pulled. */
function source(n: number, size: number): { gen: AsyncGenerator<Buffer>; bytes: Buffer; pulled: () => number } {
  const chunks = Array.from({ length: n }, () => randomBytes(size));
  let pulled = 0;
  async function* gen() {
    for (const c of chunks) {
      pulled++;
      yield c;
    }
  }
  return { gen: gen(), bytes: Buffer.concat(chunks), pulled: () => pulled };
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const record = (over: Partial<Attachment> = {}): Attachment => ({
  id: randomBytes(16).toString('base64url'),
  room: 'r1',
  uploader: 'alice',
  name: 'a.txt',
  size: 1,
  type: 'text/plain',
  width: null,
  height: null,
  blob: randomBytes(16).toString('base64url'),
  preview: null,
  sha256: '0',
  createdAt: 1000,
  message: null,
  ...over,
});

export function blobStoreConformance(name: string, open: () => Promise<BlobBackend>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let b: BlobBackend;
    beforeEach(async () => {
      b = await open();
    });
    afterEach(async () => {
      await b.close();
    });

    it('a stored blob reads back byte for byte, with its size and SHA-256', async () => {
      // Chunks that do not line up with the store's own chunk size, and a size over several.
      const src = source(9, 70_001);
      const put = await b.blobs.put(src.gen, { maxBytes: 10 * 1024 * 1024 });
      expect(put.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(put.size).toBe(src.bytes.length);
      expect(put.sha256).toBe(sha(src.bytes));
      const back = await readAll((await b.blobs.get(put.id))!);
      expect(back.equals(src.bytes)).toBe(true);
      const empty = await b.blobs.put(source(0, 0).gen, { maxBytes: 10 });
      expect(empty.size).toBe(0);
      expect((await readAll((await b.blobs.get(empty.id))!)).length).toBe(0);
    });

    it('one byte past the limit is too_large, the source is not read further, and nothing is left', async () => {
      const before = await b.count();
      const src = source(40, 64 * 1024);
      await expect(b.blobs.put(src.gen, { maxBytes: 5 * 64 * 1024 })).rejects.toMatchObject({ code: 'too_large' });
      expect(src.pulled()).toBe(6);
      expect(await b.count()).toBe(before);
      const exact = await b.blobs.put(source(5, 64 * 1024).gen, { maxBytes: 5 * 64 * 1024 });
      expect(exact.size).toBe(5 * 64 * 1024);
    });

    it('a source that fails mid-way rejects with its error and leaves nothing', async () => {
      const before = await b.count();
      async function* broken() {
        yield randomBytes(BLOB_CHUNK + 10);
        throw new Error('client went away');
      }
      await expect(b.blobs.put(broken(), { maxBytes: 10 * 1024 * 1024 })).rejects.toThrow('client went away');
      expect(await b.count()).toBe(before);
    });

    it('get and delete of an unknown or malformed id answer nothing; delete is idempotent', async () => {
      expect(await b.blobs.get('AAAAAAAAAAAAAAAAAAAAAA')).toBeNull();
      expect(await b.blobs.get('../../../../etc/passwd')).toBeNull();
      expect(await b.blobs.delete('../x')).toBe(false);
      const put = await b.blobs.put(source(1, 10).gen, { maxBytes: 100 });
      expect(await b.blobs.delete(put.id)).toBe(true);
      expect(await b.blobs.delete(put.id)).toBe(false);
      expect(await b.blobs.get(put.id)).toBeNull();
    });

    it('a slow reader is served chunk by chunk: the store does not read ahead of it', async () => {
      const src = source(16, 256 * 1024);
      const put = await b.blobs.put(src.gen, { maxBytes: 10 * 1024 * 1024 });
      const s = (await b.blobs.get(put.id))! as NodeJS.ReadableStream & { readableLength: number };
      const it = (s as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      await new Promise((r) => setTimeout(r, 100));
      // Held unread: at most about one chunk of the 4 MiB blob.
      expect(s.readableLength).toBeLessThanOrEqual(BLOB_CHUNK + 64 * 1024);
      await it.return?.();
    });

    it('records: bind is all or nothing, and removals return what they removed', async () => {
      const r = b.records;
      const a1 = record({ createdAt: 100, size: 1000 });
      const a2 = record({ createdAt: 200, size: 20 });
      const other = record({ uploader: 'bob', createdAt: 300, size: 5 });
      expect(await r.unsentBytes('alice')).toBe(0);
      for (const a of [a1, a2, other]) await r.create(a);
      expect(await r.get(a1.id)).toEqual(a1);
      expect([await r.unsentBytes('alice'), await r.unsentBytes('bob')]).toEqual([1020, 5]);
      // bob's upload in the list: nothing is bound.
      await expect(r.bind('r1', 'alice', [a1.id, other.id], 7)).rejects.toMatchObject({ code: 'conflict' });
      expect((await r.get(a1.id))!.message).toBeNull();
      await expect(r.bind('r2', 'alice', [a1.id], 7)).rejects.toMatchObject({ code: 'conflict' });
      expect((await r.bind('r1', 'alice', [a2.id, a1.id], 7)).map((a) => [a.id, a.message])).toEqual([
        [a2.id, 7],
        [a1.id, 7],
      ]);
      expect(await r.unsentBytes('alice')).toBe(0);
      // Once bound, never again.
      await expect(r.bind('r1', 'alice', [a1.id], 8)).rejects.toMatchObject({ code: 'conflict' });
      expect(await r.boundRooms('', 10)).toEqual(['r1']);
      expect(await r.removeUnbound(250, 10)).toEqual([]);
      expect((await r.removeUnbound(301, 10)).map((a) => a.id)).toEqual([other.id]);
      expect(await r.removeBelow('r1', 7)).toEqual([]);
      expect((await r.removeForMessages('r1', [7])).map((a) => a.id).sort()).toEqual([a1.id, a2.id].sort());
      expect(await r.get(a1.id)).toBeNull();
      const a3 = record({ room: 'r9' });
      const a4 = record({ room: 'r9' });
      await r.create(a3);
      await r.create(a4);
      await r.bind('r9', 'alice', [a3.id], 3);
      expect((await r.removeUnboundOfRoom('r9')).map((a) => a.id)).toEqual([a4.id]);
      expect((await r.removeBelow('r9', 4)).map((a) => a.id)).toEqual([a3.id]);
      await r.create(a4);
      expect((await r.removeForRoom('r9')).map((a) => a.id)).toEqual([a4.id]);
      expect(await r.remove(a4.id)).toBeNull();
    });
  });
}
