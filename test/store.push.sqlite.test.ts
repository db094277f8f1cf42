import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { SqlitePushStore } from '../src/store/sqlite/push.js';
import { pushStoreConformance } from './conformance/push.js';
import { avatarStoreConformance } from './conformance/avatars.js';
import { SqliteAvatarStore } from '../src/store/sqlite/avatars.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-push-store-');
afterAll(() => removeDir(dir));
let i = 0;

pushStoreConformance('sqlite', async () => {
  const store = new SqliteStore({ file: join(dir, `p${i++}.db`) });
  return { push: new SqlitePushStore(store.db), close: () => store.close() };
});

avatarStoreConformance('sqlite', async () => {
  const store = new SqliteStore({ file: join(dir, `a${i++}.db`) });
  return { avatars: new SqliteAvatarStore(store.db), close: () => store.close() };
});
