import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { storeConformance } from './conformance/store.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('parley-store-');
afterAll(() => removeDir(dir));
let i = 0;

storeConformance('sqlite', async () => new SqliteStore({ file: join(dir, `c${i++}.db`) }));

describe('SQLite store specifics', () => {
  it('reopening a database keeps rooms, members and the seq sequence', async () => {
    const file = join(dir, 'reopen.db');
    let s = new SqliteStore({ file });
    await s.createRoom({ id: 'keep', kind: 'group', name: 'K', topic: '', createdBy: 'u', members: [{ user: 'u', name: 'u', role: 'owner' }] });
    await s.append({ room: 'keep', user: 'u', name: 'u', kind: 'text', text: 'one' });
    await s.close();
    s = new SqliteStore({ file });
    const r = await s.append({ room: 'keep', user: 'u', name: 'u', kind: 'text', text: 'two' });
    expect(r.message.seq).toBe(3);
    expect((await s.history('keep', { limit: 10 })).map((m) => m.text ?? m.kind)).toEqual(['join', 'one', 'two']);
    await s.close();
  });
});
