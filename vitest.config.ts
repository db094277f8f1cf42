// Two projects: `unit` needs nothing but Node and the build (`npm run test:unit`, the daily
// loop, about a minute); `system` holds the files that start redis-server, PostgreSQL or
// chromium, which scripts/test-deps.sh installs before `npm test`, and the benchmark harness's
// smoke run (half a minute on its own). `npm test` runs both.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { defineConfig } from 'vitest/config';

const SYSTEM_TESTS = [
  'test/bus.redis.test.ts', // redis-server, Redis Cluster
  'test/cluster.test.ts', // PostgreSQL, redis-server
  'test/cluster.ownership.test.ts', // PostgreSQL, redis-server
  'test/cluster.redis-outage.test.ts', // PostgreSQL, redis-server
  'test/store.postgres.test.ts', // PostgreSQL
  'test/cluster.fence.test.ts', // PostgreSQL
  'test/cluster.placement.test.ts', // PostgreSQL
  'test/blobs.postgres.test.ts', // PostgreSQL
  'test/web.test.ts', // chromium
  'test/bench.test.ts', // every benchmark workload
];
// A renamed file would otherwise drop out of both projects unnoticed.
for (const f of SYSTEM_TESTS) if (!existsSync(fileURLToPath(new URL(f, import.meta.url)))) throw new Error(`vitest.config.ts: ${f} does not exist`);

/**
 * Fails the run when a test was skipped: a suite that passes must have run every test, so a
 * missing server or a forgotten `.skip` cannot pass as green. Runs filtered by name (`-t`)
 * skip the others on purpose and are left alone.
 */
class NoSkippedTests implements Reporter {
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.filtered = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (this.filtered) return;
    // In a module that failed (e.g. in beforeAll) the tests that did not run are reported as
    // skipped; the failure already fails the run.
    const skipped = modules
      .filter((m) => m.state() !== 'failed')
      .flatMap((m) => [...m.children.allTests('skipped')].map((t) => `  ${m.relativeModuleId}: ${t.fullName}`));
    if (skipped.length === 0) return;
    process.stderr.write(`\n${skipped.length} test(s) skipped; every test must run:\n${skipped.join('\n')}\n`);
    process.exitCode = 1;
  }
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits up to 1 s by default: too short for a browser on a busy shared machine.
    expect: { poll: { timeout: 8_000 } },
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', new NoSkippedTests()],
    projects: [
      // Without isolation each worker imports src/ once instead of once per file.
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: SYSTEM_TESTS, isolate: false } },
      { extends: true, test: { name: 'system', include: SYSTEM_TESTS } },
    ],
  },
});
