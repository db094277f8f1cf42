// Chat21 push-notification instances at the wire: one user's devices are bounded by
// `chat21.instancesPerUser` whatever it posts, and another user's are untouched. What is kept
// is read from the node's database on a second, read-only connection (no route lists them).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from './helpers.js';
import { rest, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer({ chat21: { instancesPerUser: 3 } });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

/** The instance ids the database holds for `user`. */
function stored(user: string): string[] {
  const db = new Database(join(s.dataDir, 'parley.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT instance_id FROM chat21_instances WHERE user_id = ? ORDER BY instance_id').pluck().all(user) as string[]).sort();
  } finally {
    db.close();
  }
}

describe('Chat21 instances (POST /{me}/instances/{id})', () => {
  it('one user keeps at most chat21.instancesPerUser, the most recently saved; another user is unaffected', async () => {
    const tokO = await s.token('olga');
    const tokP = await s.token('pete');
    const post = (tok: string, user: string, id: string) => rest(s.url, tok, 'POST', `/${user}/instances/${id}`, { token: 'x'.repeat(4000) });
    expect(await post(tokP, 'pete', 'phone')).toEqual({ status: 200, body: { success: true } });
    expect(await post(tokP, 'pete', 'tablet')).toEqual({ status: 200, body: { success: true } });
    // A burst of new ids, as the report's script sent: every one is accepted, few are kept.
    for (let i = 0; i < 40; i += 10) {
      const replies = await Promise.all(Array.from({ length: 10 }, (_, j) => post(tokO, 'olga', `i${i + j}`)));
      for (const r of replies) expect(r).toEqual({ status: 200, body: { success: true } });
    }
    expect(stored('olga')).toHaveLength(3);
    // Sequential saves: the newest ones stay, and updating a kept one is always allowed.
    for (const id of ['a', 'b', 'c', 'd']) await post(tokO, 'olga', id);
    expect(stored('olga')).toEqual(['b', 'c', 'd']);
    expect(await post(tokO, 'olga', 'b')).toEqual({ status: 200, body: { success: true } });
    await post(tokO, 'olga', 'e');
    expect(stored('olga')).toEqual(['b', 'd', 'e']);
    expect(stored('pete')).toEqual(['phone', 'tablet']);
  });
});
