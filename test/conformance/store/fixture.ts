// What every port's conformance file starts from: a store opened for each case (writes made
// through the room log, writes.ts) and closed after it, unique room ids, and a group maker.
import { afterEach, beforeEach } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { roomLogWrites, type Writes } from '../writes.js';

export const DAY = 86_400_000;

export interface StoreFixture {
  /** The store of the running case. */
  readonly store: Writes;
  /** A room id no other case uses. */
  rid(): string;
  /** A new group of `owner` (and `others` as members); its id. */
  group(owner?: string, others?: string[]): Promise<string>;
  /** A new store in place of the running case's, which the case has closed. */
  reopen(): Promise<void>;
}

/** Opens a store before each case of the calling describe and closes it after. */
export function storeFixture(open: () => Promise<Store>): StoreFixture {
  let current: Writes | null = null;
  let n = 0;
  beforeEach(async () => {
    current = roomLogWrites(await open());
  });
  afterEach(async () => {
    await current?.close();
    current = null;
  });
  const t: StoreFixture = {
    get store(): Writes {
      if (!current) throw new Error('no store outside a test case');
      return current;
    },
    async reopen() {
      current = roomLogWrites(await open());
    },
    rid: () => `room${++n}-${Date.now().toString(36)}`,
    async group(owner = 'u1', others: string[] = []) {
      const id = t.rid();
      await t.store.createRoom({
        id,
        kind: 'group',
        name: 'G',
        topic: '',
        createdBy: owner,
        members: [{ user: owner, name: owner, role: 'owner' }, ...others.map((u) => ({ user: u, name: u, role: 'member' as const }))],
      });
      return id;
    },
  };
  return t;
}
