import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { SqliteNotificationStore } from '../src/store/sqlite/notifications.js';
import { SqlitePinStore } from '../src/store/sqlite/pins.js';
import { SqliteVersionStore } from '../src/store/sqlite/versions.js';
import { richConformance } from './conformance/rich.js';
import { roomLogWrites } from './conformance/writes.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-rich-store-');
afterAll(() => removeDir(dir));
let i = 0;

richConformance('sqlite', async () => {
  const store = roomLogWrites(new SqliteStore({ file: join(dir, `r${i++}.db`) }));
  const ports = { notifications: new SqliteNotificationStore(store.db), pins: new SqlitePinStore(store.db), versions: new SqliteVersionStore(store.db) };
  return { store, ports, close: () => store.close() };
});
