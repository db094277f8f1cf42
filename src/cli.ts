#!/usr/bin/env node
// The `parley` command: `start` runs a node, `token` mints a development JWT.
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from './config.js';
import { mintToken } from './auth/jwt.js';
import { createParley } from './server.js';

interface CommonOpts { config?: string; port?: string; host?: string; dataDir?: string; set?: string[] }

function withConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-c, --config <file>', 'JSON config file').env('PARLEY_CONFIG'))
    .option('-p, --port <port>', 'port to listen on')
    .option('--host <host>', 'address to listen on')
    .option('-d, --data-dir <dir>', 'data folder')
    .option('-s, --set <key=value...>', 'any config key, e.g. --set limits.frameBytes=131072');
}

function configFrom(opts: CommonOpts): Config {
  const flags: Record<string, string> = {};
  for (const kv of opts.set ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new ConfigError(kv, 'expected key=value');
    flags[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (opts.port !== undefined) flags.port = opts.port;
  if (opts.host !== undefined) flags.host = opts.host;
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir;
  return loadConfig({ file: opts.config, env: process.env, flags });
}

function fail(err: unknown): never {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
}

const program = new Command('parley').description('Parley chat server').showHelpAfterError();

withConfigOptions(program.command('start').description('run a Parley node')).action(async (opts: CommonOpts) => {
  let config: Config;
  try { config = configFrom(opts); } catch (err) { fail(err); }
  const parley = await createParley(config);
  try {
    await parley.listen();
  } catch (err) {
    parley.log.fatal({ err }, 'cannot listen');
    await parley.close();
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    parley.log.info({ signal }, 'shutting down');
    parley.close().then(() => process.exit(0), (err) => {
      parley.log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
});

withConfigOptions(program.command('token').description('mint a development JWT with the configured secret'))
  .argument('<user>', 'user id (the token subject)')
  .option('-n, --name <name>', 'display name')
  .option('--profile <json>', 'public profile object as JSON')
  .option('-t, --ttl <ttl>', 'lifetime, e.g. 1h, 7d', '24h')
  .option('--admin', 'mark the token as an administrator token (parley_admin claim)')
  .action(async (user: string, opts: CommonOpts & { name?: string; profile?: string; ttl: string; admin?: boolean }) => {
    try {
      const config = configFrom(opts);
      let profile: Record<string, unknown> | undefined;
      if (opts.profile) {
        const p = JSON.parse(opts.profile) as unknown;
        if (!p || typeof p !== 'object' || Array.isArray(p)) throw new Error('--profile must be a JSON object');
        profile = p as Record<string, unknown>;
      }
      process.stdout.write(await mintToken(config, user, { name: opts.name, profile, admin: opts.admin, expiresIn: opts.ttl }) + '\n');
    } catch (err) {
      fail(err);
    }
  });

program.command('cluster')
  .description('try cluster mode locally: a throwaway Redis and PostgreSQL from this machine\'s binaries plus N nodes on consecutive ports (development only)')
  .option('-n, --nodes <n>', 'number of nodes', '3')
  .option('-p, --port <port>', 'port of the first node', '8080')
  .option('--redis-masters <n>', 'run a Redis Cluster of this many masters instead of one Redis')
  .action(async (opts: { nodes: string; port: string; redisMasters?: string }) => {
    const n = Number(opts.nodes);
    const port = Number(opts.port);
    const masters = opts.redisMasters === undefined ? undefined : Number(opts.redisMasters);
    if (!Number.isInteger(n) || n < 1 || n > 32) fail(new Error('--nodes must be an integer from 1 to 32'));
    if (!Number.isInteger(port) || port < 1 || port + n > 65535) fail(new Error('--port must be a valid port'));
    if (masters !== undefined && (!Number.isInteger(masters) || masters < 3 || masters > 16)) fail(new Error('--redis-masters must be an integer from 3 to 16'));
    const { startDevCluster } = await import('./devservers/cluster.js');
    const cluster = await startDevCluster({ nodes: n, basePort: port, redisMasters: masters }).catch(fail);
    const token = await mintToken(loadConfig({ overrides: { auth: { secret: cluster.secret } } }), 'alice', { expiresIn: '24h' });
    process.stdout.write([
      `PostgreSQL ${cluster.postgres.url}`,
      cluster.redis ? `Redis      ${cluster.redis.url}` : `Redis Cluster ${cluster.redisCluster!.nodes.join(' ')}`,
      ...cluster.nodes.map((node) => `node ${node.index + 1}     ${node.url}  (log ${node.log})`),
      `dispatch   ${cluster.nodes[0]!.url}/api/v1/dispatch`,
      `secret     ${cluster.secret}`,
      `a token    ${token}`,
      'Ctrl-C stops everything and removes the folder.',
      '',
    ].join('\n'));
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      cluster.stop().then(() => process.exit(0), (err) => fail(err));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch(fail);
