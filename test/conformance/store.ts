// The store ports' behaviour suite: one conformance file per port (test/conformance/store/),
// writes made through the room log (writes.ts). Every backend runs it (see store.*.test.ts).
// Each case names the promise it checks, of a port (src/store/*.ts) or of the rules the room
// log applies (src/service/rules.ts).
import type { Store } from '../../src/store/store.js';
import { lifecycleConformance } from './store/lifecycle.js';
import { usersConformance } from './store/users.js';
import { roomsConformance } from './store/rooms.js';
import { readsConformance } from './store/reads.js';
import { logConformance } from './store/log.js';
import { moderationConformance } from './store/moderation.js';
import { retentionConformance } from './store/retention.js';
import { searchConformance } from './store/search.js';

/** Every port's conformance suite, on stores that `open` makes. */
export function storeConformance(name: string, open: () => Promise<Store>): void {
  lifecycleConformance(name, open);
  usersConformance(name, open);
  roomsConformance(name, open);
  readsConformance(name, open);
  logConformance(name, open);
  moderationConformance(name, open);
  retentionConformance(name, open);
  searchConformance(name, open);
}
