// The retention sweeper of one node: a sweep that takes longer than `retention.sweepSec` is
// not started again beside itself. On one node the bus grants every period's claim, so each
// period used to start another sweep over the same rooms while the first still ran (a 10M
// history's sweep of 70 s ran three or four at once with the period at 20 s).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ retention: { sweepSec: 1, days: 30 } });
});
afterAll(async () => {
  await srv?.close();
  if (srv) removeDir(srv.dataDir);
});

describe('retention sweeps on one node', () => {
  it('a sweep longer than the period runs alone; the next starts after it ends', async () => {
    let running = 0;
    let most = 0;
    let calls = 0;
    const store = srv.parley.store;
    store.applyRetention = async () => {
      calls++;
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 2500));
      running--;
      return 0;
    };
    await new Promise((r) => setTimeout(r, 6000));
    expect(most).toBe(1);
    // Periods fall every second: the first sweep started within about one, the second after it.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(3);
  });
});
