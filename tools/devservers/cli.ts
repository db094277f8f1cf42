// `npm run cluster:dev`: cluster mode on one machine, for trying it out. Starts PostgreSQL and
// Redis (or a Redis Cluster) from this machine's binaries and N Parley nodes on consecutive
// ports, prints how to reach them, and runs until Ctrl-C (or SIGTERM). The database and the
// secret stay in the folder (printed) and are used again by the next run with the same
// folder; `--discard` removes it at exit. A process that ends on its own (a node that crashed
// or was killed, a PostgreSQL stopped by hand) is reported and the rest keeps running.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../../src/config.js';
import { mintToken } from '../../src/auth/jwt.js';
import { startDevCluster, type DevCluster } from './cluster.js';

interface Opts {
  nodes: string;
  port: string;
  redisMasters?: string;
  dir: string;
  discard?: boolean;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const program = new Command('cluster:dev')
  .description('run PostgreSQL, Redis and N Parley nodes on this machine until Ctrl-C (development only)')
  .option('-n, --nodes <n>', 'number of nodes', '3')
  .option('-p, --port <port>', 'port of the first node', '8080')
  .option('--redis-masters <n>', 'run a Redis Cluster of this many masters instead of one Redis')
  .option('-d, --dir <folder>', 'folder of the database, the secret and the logs (kept between runs)', join(tmpdir(), 'parley-cluster-dev'))
  .option('--discard', 'remove the folder when stopping')
  .action(async (opts: Opts) => {
    const n = Number(opts.nodes);
    const port = Number(opts.port);
    const masters = opts.redisMasters === undefined ? undefined : Number(opts.redisMasters);
    if (!Number.isInteger(n) || n < 1 || n > 32) fail('--nodes must be an integer from 1 to 32');
    if (!Number.isInteger(port) || port < 1 || port + n > 65535) fail('--port must be a valid port');
    if (masters !== undefined && (!Number.isInteger(masters) || masters < 3 || masters > 16)) fail('--redis-masters must be an integer from 3 to 16');
    const dir = resolve(opts.dir);
    let cluster: DevCluster;
    try {
      cluster = await startDevCluster({ nodes: n, basePort: port, redisMasters: masters, dir });
    } catch (err) {
      fail(`cluster did not start: ${err instanceof Error ? err.message : String(err)}`);
    }
    const token = await mintToken(loadConfig({ overrides: { auth: { secret: cluster.secret } } }), 'alice', { expiresIn: '24h' });
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`folder     ${cluster.dir}  (database ${cluster.postgres.reused ? 'from an earlier run' : 'new'}; ${opts.discard ? 'removed' : 'kept'} at exit)`);
    out(`PostgreSQL ${cluster.postgres.url}`);
    out(cluster.redis ? `Redis      ${cluster.redis.url}` : `Redis Cluster ${cluster.redisCluster!.nodes.join(' ')}`);
    for (const node of cluster.nodes) out(`node ${node.index + 1}     ${node.url}  (log ${node.log})`);
    out(`dispatch   ${cluster.nodes[0]!.url}/api/v1/dispatch`);
    out(`secret     ${cluster.secret}`);
    out(`a token    ${token}`);
    out('ready: Ctrl-C stops everything.');

    // Report what ends on its own; keep running until asked to stop.
    let stopping = false;
    const watch = (name: string, ended: () => Promise<number | string | null | void>, running: () => boolean) => {
      void ended().then((how) => {
        if (!stopping && !running()) out(`${name} has stopped${how === undefined || how === null ? '' : ` (${String(how)})`}; the rest keeps running`);
      });
    };
    for (const node of cluster.nodes)
      watch(
        `node ${node.index + 1}`,
        () => node.exited(),
        () => node.process?.exitCode === null && node.process.signalCode === null,
      );
    watch(
      'PostgreSQL',
      () => cluster.postgres.exited(),
      () => cluster.postgres.pid !== null,
    );
    if (cluster.redis)
      watch(
        'Redis',
        () => cluster.redis!.exited(),
        () => cluster.redis!.pid !== null,
      );
    // Nothing else may keep the event loop alive once every child has ended.
    const alive = setInterval(() => {}, 1 << 30);
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      out(`${signal}: stopping`);
      cluster.stop().then(
        () => {
          if (opts.discard) rmSync(cluster.dir, { recursive: true, force: true });
          clearInterval(alive);
          out(
            opts.discard ? `removed ${cluster.dir}` : `data kept in ${cluster.dir} (run again with the same --dir to continue, or with --discard to remove it)`,
          );
          process.exit(0);
        },
        (err: unknown) => fail(`stop failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

program.parseAsync(process.argv).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
