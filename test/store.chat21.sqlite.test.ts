import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { SqliteChat21Store } from '../src/integrations/chat21/store-sqlite.js';
import { chat21StoreConformance } from './conformance/chat21.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-chat21-store-');
afterAll(() => removeDir(dir));
let i = 0;

chat21StoreConformance('sqlite', async () => {
  const base = new SqliteStore({ file: join(dir, `c${i++}.db`) });
  return { store: new SqliteChat21Store(base.db), close: () => base.close() };
});
