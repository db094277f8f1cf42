// Picks the BlobStore backend of a node from its configuration (`attachments.storage`).
import { join } from 'node:path';
import type { Pool } from 'pg';
import type { Config } from '../config.js';
import type { BlobStore } from './blobs.js';
import { DiskBlobStore } from './disk.js';
import { PostgresBlobStore } from './postgres.js';

export type { BlobStore, BlobLimits, StoredBlob } from './blobs.js';

/** Files on disk under dataDir/attachments, or in PostgreSQL (`auto`: wherever the store is). */
export async function openBlobStore(cfg: Config, pool: Pool | undefined): Promise<BlobStore> {
  const kind = cfg.attachments.storage === 'auto' ? (pool ? 'postgres' : 'disk') : cfg.attachments.storage;
  if (kind === 'postgres') {
    if (!pool) throw new Error('attachments.storage postgres needs store.postgres.url');
    return new PostgresBlobStore(pool);
  }
  return DiskBlobStore.open(join(cfg.dataDir, 'attachments'));
}
