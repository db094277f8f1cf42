// A local cluster for trying cluster mode and for tests: a Redis (or Redis Cluster) and a
// PostgreSQL from the machine's binaries, plus N Parley nodes as child processes on
// consecutive ports, all on loopback. Each node's log goes to <folder>/node-<i>.log. The
// folder is temporary and removed by `stop`, unless `dir` names one: then the database and the
// secret in it are kept, and a later start with the same `dir` continues with them. Never for
// production.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startRedis, startRedisCluster, freePort, type RedisServer, type RedisClusterServers } from './redis.js';
import { startPostgres, type PgServer } from './postgres.js';

export interface DevClusterOptions {
  nodes: number;
  /** Port of the first node; the others follow (default: free ports). */
  basePort?: number;
  /** Use a Redis Cluster of this many masters instead of one Redis. */
  redisMasters?: number;
  /** Shared HMAC secret (default: random, or the one kept in `dir`). */
  secret?: string;
  /** Keep the database, secret and logs in this folder (created if missing) instead of a temporary one. */
  dir?: string;
  /** Extra PARLEY_* environment for every node, e.g. { PARLEY_CLUSTER_NODE_TIMEOUT_MS: '3000' }. */
  env?: Record<string, string>;
  logLevel?: string;
}

export interface DevNode {
  readonly index: number;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly log: string;
  process: ChildProcess | null;
  /** Resolves when the running node process exits (with its code or signal). */
  exited(): Promise<number | string | null>;
  /** Starts the node process (again) and waits until /readyz answers 200. */
  start(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the process to be gone. */
  kill(): Promise<void>;
}

export interface DevCluster {
  readonly dir: string;
  /** Whether `dir` is kept when the cluster stops. */
  readonly kept: boolean;
  readonly secret: string;
  readonly nodes: DevNode[];
  readonly postgres: PgServer;
  readonly redis: RedisServer | null;
  readonly redisCluster: RedisClusterServers | null;
  /** The environment each node gets (without its port). */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** How to run the CLI: its TypeScript source through tsx, so a node runs the code as it is. */
function cliCommand(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return ['--import', 'tsx', join(here, '..', '..', 'src', 'cli.ts')];
}

/** The secret kept in a folder, or a new one written there. */
function keptSecret(dir: string): string {
  const file = join(dir, 'secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

async function waitReady(url: string, proc: ChildProcess, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`node at ${url} exited (${proc.exitCode ?? proc.signalCode})`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`node at ${url} not ready after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startDevCluster(opts: DevClusterOptions): Promise<DevCluster> {
  const kept = opts.dir !== undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'parley-cluster-'));
  mkdirSync(dir, { recursive: true });
  // PostgreSQL runs as its own user when we are root: it must be able to enter the folder.
  chmodSync(dir, 0o755);
  const secret = opts.secret ?? (kept ? keptSecret(dir) : randomBytes(24).toString('base64url'));
  let postgres: PgServer | null = null;
  let redis: RedisServer | null = null;
  let redisCluster: RedisClusterServers | null = null;
  const nodes: DevNode[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all([postgres?.destroy(), redis?.destroy(), redisCluster?.destroy()]);
    if (!kept) rmSync(dir, { recursive: true, force: true });
  };
  try {
    [postgres, redis, redisCluster] = await Promise.all([
      kept ? startPostgres({ keepIn: join(dir, 'postgres') }) : startPostgres({ dir }),
      opts.redisMasters ? Promise.resolve(null) : startRedis(),
      opts.redisMasters ? startRedisCluster(opts.redisMasters) : Promise.resolve(null),
    ]);
    const env: Record<string, string> = {
      PARLEY_HOST: '127.0.0.1',
      PARLEY_AUTH_SECRET: secret,
      PARLEY_STORE_POSTGRES_URL: postgres.url,
      ...(redis ? { PARLEY_BUS_REDIS_URL: redis.url } : { PARLEY_BUS_REDIS_CLUSTER: redisCluster!.nodes.join(',') }),
      PARLEY_LOG_LEVEL: opts.logLevel ?? 'info',
      ...opts.env,
    };
    const cmd = cliCommand();
    for (let i = 0; i < opts.nodes; i++) {
      const port = opts.basePort ? opts.basePort + i : await freePort();
      const url = `http://127.0.0.1:${port}`;
      const logFile = join(dir, `node-${i + 1}.log`);
      const node: DevNode = {
        index: i,
        port,
        url,
        wsUrl: `ws://127.0.0.1:${port}/ws`,
        log: logFile,
        process: null,
        exited() {
          const p = node.process;
          if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p?.exitCode ?? p?.signalCode ?? null);
          return new Promise((r) => p.once('exit', (code, signal) => r(code ?? signal)));
        },
        async start() {
          const out = createWriteStream(logFile, { flags: 'a' });
          const p = spawn(process.execPath, [...cmd, 'start'], {
            env: { ...process.env, ...env, PARLEY_PORT: String(port), PARLEY_DATA_DIR: join(dir, `node-${i + 1}`), PARLEY_CLUSTER_NODE_ID: `node-${i + 1}` },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          p.stdout.pipe(out);
          p.stderr.pipe(out);
          node.process = p;
          await waitReady(url, p);
        },
        async stop() {
          const p = node.process;
          if (!p || p.exitCode !== null || p.signalCode !== null) return;
          const gone = new Promise<void>((r) => p.once('exit', () => r()));
          p.kill('SIGTERM');
          const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
          await gone;
          clearTimeout(t);
        },
        async kill() {
          const p = node.process;
          if (!p || p.exitCode !== null || p.signalCode !== null) return;
          const gone = new Promise<void>((r) => p.once('exit', () => r()));
          p.kill('SIGKILL');
          await gone;
        },
      };
      nodes.push(node);
    }
    // The first node applies the migrations; the others then start together.
    await nodes[0]!.start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
    return { dir, kept, secret, nodes, postgres, redis, redisCluster, env, stop: stopAll };
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}
