// BlobStore on the local disk: one file per blob under `<dataDir>/attachments`, spread over
// 4,096 folders by the id's first two characters. A blob is written to `tmp/<id>.part`,
// fsync'd, then renamed into place and its folder fsync'd, so a crash leaves either the whole
// blob or a part file, which `open` removes. One node only: other nodes cannot read its disk.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open as openFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ParleyError } from '../errors.js';
import { BLOB_CHUNK, isBlobId, Meter, metered, newBlobId, type BlobLimits, type BlobSource, type BlobStore, type StoredBlob } from './blobs.js';

const unavailable = (err: unknown): ParleyError => new ParleyError('unavailable', `file storage failed: ${(err as Error).message ?? String(err)}`);

export class DiskBlobStore implements BlobStore {
  private readonly tmp: string;

  private constructor(readonly root: string) {
    this.tmp = join(root, 'tmp');
  }

  /** Opens (creating) the folder and removes the part files a crash left behind. */
  static async open(root: string): Promise<DiskBlobStore> {
    const s = new DiskBlobStore(root);
    await mkdir(s.tmp, { recursive: true });
    for (const f of await readdir(s.tmp)) await rm(join(s.tmp, f), { force: true });
    return s;
  }

  private path(id: string): string {
    return join(this.root, id.slice(0, 2), id);
  }

  async put(source: BlobSource, limits: BlobLimits): Promise<StoredBlob> {
    const id = newBlobId();
    const part = join(this.tmp, `${id}.part`);
    const meter = new Meter(limits.maxBytes);
    // `flush` fsyncs the file before it is closed, so a finished pipeline is on disk.
    const out = createWriteStream(part, { flags: 'wx', flush: true, highWaterMark: BLOB_CHUNK });
    let diskError: unknown = null;
    out.once('error', (err) => {
      diskError = err;
    });
    try {
      await pipeline(metered(source, meter), out);
      const dir = join(this.root, id.slice(0, 2));
      await mkdir(dir, { recursive: true });
      await rename(part, this.path(id));
      await fsyncDir(dir);
    } catch (err) {
      // The pipeline may end before the file is even open (Node 24 does not wait for the
      // stream to close): removed once the stream has closed it, or the open makes it again.
      if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
      await rm(part, { force: true }).catch(() => undefined);
      if (err instanceof ParleyError) throw err;
      if (diskError !== null || (err as NodeJS.ErrnoException).syscall) throw unavailable(err);
      throw err;
    }
    return { id, size: meter.size, sha256: meter.sha256() };
  }

  async get(id: string): Promise<NodeJS.ReadableStream | null> {
    if (!isBlobId(id)) return null;
    const stream = createReadStream(this.path(id), { highWaterMark: 64 * 1024 });
    return new Promise((resolve, reject) => {
      stream.once('open', () => resolve(stream));
      stream.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') resolve(null);
        else reject(unavailable(err));
      });
    });
  }

  async delete(id: string): Promise<boolean> {
    if (!isBlobId(id)) return false;
    try {
      await unlink(this.path(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw unavailable(err);
    }
  }

  async sweepPartial(before: number): Promise<number> {
    let removed = 0;
    for (const f of await readdir(this.tmp)) {
      const st = await stat(join(this.tmp, f)).catch(() => null);
      if (st && st.mtimeMs < before) {
        await rm(join(this.tmp, f), { force: true });
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}

/** Makes a rename inside `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFile(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
