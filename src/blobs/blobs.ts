// The BlobStore port: the bytes of uploaded files, streamed in and out, never held whole in
// memory. Implementations: blobs/disk.ts (files under the data directory, one node, the
// default) and blobs/postgres.ts (chunked rows in PostgreSQL, so every node of a cluster
// serves every file). test/conformance/blobs.ts checks the contract on both.
//
// Contract
// - `put` reads the source to its end and stores its bytes under a new id the store makes
//   (opaque, 22 characters of [A-Za-z0-9_-]); it resolves with the id, the size and the
//   SHA-256 of the bytes only once they are durably stored (fsync'd file, committed rows).
// - Memory is bounded: a store holds at most one chunk (BLOB_CHUNK bytes) of a blob at a time,
//   whatever the blob's size, in both directions; a slow reader or writer slows the transfer
//   instead of making the store buffer.
// - Past `limits.maxBytes` the source is abandoned, `put` rejects with `too_large`, and nothing
//   of the blob remains. A source that fails (a client gone mid-upload) rejects `put` with its
//   error and leaves nothing either. A crash mid-`put` leaves at most a partial blob that no
//   `get` returns and `sweepPartial` removes (the disk store also does at open).
// - `get` answers a stream of exactly the stored bytes, or null when no complete blob has the
//   id. An id of any other shape is never looked up (no path, no query is built from it).
// - `delete` removes a blob; it is idempotent and resolves with whether a blob was there.
//   A stream already returned by `get` may fail once its blob is deleted.
// - Storage failures reject with `unavailable` (the caller may retry); never a hang.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { ParleyError } from '../errors.js';

export interface BlobLimits {
  /** Most bytes the blob may have; one more rejects the put with `too_large`. */
  maxBytes: number;
}

export interface StoredBlob {
  id: string;
  size: number;
  /** SHA-256 of the bytes, lower-case hex. */
  sha256: string;
}

/** Anything `put` can read: a Node stream or any async iterable of byte chunks. */
export type BlobSource = AsyncIterable<Uint8Array>;

export interface BlobStore {
  put(source: BlobSource, limits: BlobLimits): Promise<StoredBlob>;
  get(id: string): Promise<NodeJS.ReadableStream | null>;
  delete(id: string): Promise<boolean>;
  /** Removes partial blobs (puts cut short by a crash) started before `before` (ms); resolves with how many. */
  sweepPartial(before: number): Promise<number>;
  close(): Promise<void>;
}

/** The unit in which stores move bytes (and the most they hold of one blob at a time). */
export const BLOB_CHUNK = 256 * 1024;

const ID = /^[A-Za-z0-9_-]{22}$/;

/** A new blob id: 128 random bits, base64url. */
export const newBlobId = (): string => randomBytes(16).toString('base64url');
export const isBlobId = (id: string): boolean => ID.test(id);

export function tooLarge(maxBytes: number): ParleyError {
  return new ParleyError('too_large', `the file is larger than ${maxBytes} bytes`, { limit: maxBytes });
}

/** Counts and hashes the bytes of a blob, refusing the first byte past the limit. */
export class Meter {
  size = 0;
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;

  constructor(private readonly maxBytes: number) {}

  /** Counts a chunk; throws `too_large` when it goes past the limit. */
  add(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    if (this.size > this.maxBytes) throw tooLarge(this.maxBytes);
    this.hash.update(chunk);
  }

  /** The SHA-256 of what was counted (once the source has ended). */
  sha256(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}

/**
 * The source's chunks, each counted by the meter before it is passed on. Stopping early (the
 * limit, a storage failure) ends the iteration of the source without destroying it, so an
 * HTTP request can still be answered.
 */
export async function* metered(source: BlobSource, meter: Meter): AsyncGenerator<Buffer> {
  for await (const c of source) {
    meter.add(c);
    yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

/** Chunks of exactly `size` bytes (the last one shorter) from any chunks. */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const c of source) {
    let chunk = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    while (held + chunk.length >= size) {
      const take = size - held;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      parts = [];
      held = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length > 0) {
      parts.push(chunk);
      held += chunk.length;
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}
