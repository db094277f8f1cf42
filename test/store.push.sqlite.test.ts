import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { SqlitePushStore } from '../src/store/sqlite/push.js';
import { pushStoreConformance } from './conformance/push.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-push-store-');
afterAll(() => removeDir(dir));
let i = 0;

pushStoreConformance('sqlite', async () => {
  const store = new SqliteStore({ file: join(dir, `p${i++}.db`) });
  return { push: new SqlitePushStore(store.db), close: () => store.close() };
});
