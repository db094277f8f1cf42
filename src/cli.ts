#!/usr/bin/env node
// The `parley` command: `start` runs a node, `token` mints a development JWT.
import './tuning.js';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from './config.js';
import { mintToken } from './auth/jwt.js';
import { createParley } from './server.js';

interface CommonOpts {
  config?: string;
  port?: string;
  host?: string;
  dataDir?: string;
  set?: string[];
}

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
  try {
    config = configFrom(opts);
  } catch (err) {
    fail(err);
  }
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
    parley.close().then(
      () => process.exit(0),
      (err) => {
        parley.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
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
      process.stdout.write((await mintToken(config, user, { name: opts.name, profile, admin: opts.admin, expiresIn: opts.ttl })) + '\n');
    } catch (err) {
      fail(err);
    }
  });

program.parseAsync(process.argv).catch(fail);
