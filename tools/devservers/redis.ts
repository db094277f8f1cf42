// Throwaway Redis servers from the machine's `redis-server`, in a temporary folder on free
// loopback ports: one server, or a Redis Cluster of several masters. Used by the tests and by
// the local dev cluster (`npm run cluster:dev`); never for production. Nothing is persisted:
// Parley keeps only ephemeral state in Redis (presence, liveness, counters).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Starts it again on the same port (after stop or kill). */
  start(): Promise<void>;
  /** Shuts it down (SIGTERM) and waits for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL. */
  kill(): void;
  /** Stops it and removes its folder. */
  destroy(): Promise<void>;
  /** The server's process id while it runs. */
  readonly pid: number | null;
  /** Resolves when the running server process exits, whoever stopped it. */
  exited(): Promise<void>;
}

export interface RedisClusterServers {
  /** host:port of every master, for `bus.redis.cluster`. */
  readonly nodes: string[];
  readonly servers: RedisServer[];
  destroy(): Promise<void>;
}

/** Finds a program on PATH (and in /usr/sbin, /usr/bin for Debian packages). */
export function findBinary(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found: install it (Debian: apt-get install -y redis-server)`);
}

/** A free loopback port; with `gap`, port + gap must be free too (Redis Cluster bus port). */
export async function freePort(gap = 0): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = gap ? 20000 + Math.floor(Math.random() * (65535 - gap - 20000)) : await listenFree(0);
    if (!gap) return port;
    if ((await isFree(port)) && (await isFree(port + gap))) return port;
  }
  throw new Error('no free port found');
}

function listenFree(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

const isFree = (port: number): Promise<boolean> =>
  listenFree(port).then(
    () => true,
    () => false,
  );

/** Resolves once the server answers PING, or rejects after `ms`. */
export async function waitForRedis(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
      s.setTimeout(500, () => {
        s.destroy();
        resolve(false);
      });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(opts: { dir?: string; port?: number; extraArgs?: string[] } = {}): Promise<RedisServer> {
  const bin = findBinary('redis-server');
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const port = opts.port ?? (await freePort(opts.extraArgs?.includes('--cluster-enabled') ? 10000 : 0));
  let proc: ChildProcess | null = null;
  let log = '';
  const ended = (): Promise<void> =>
    new Promise((resolve) => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) {
        resolve();
        return;
      }
      p.once('exit', () => resolve());
    });
  const start = async (): Promise<void> => {
    // After kill() the old process may still hold the port for a moment: wait for its exit.
    await ended();
    const p = spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc = p;
    p.stdout.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    p.stderr.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    try {
      await Promise.race([
        waitForRedis(port),
        new Promise((_, reject) => p.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`)))),
      ]);
    } catch (err) {
      p.kill('SIGKILL');
      throw err;
    }
  };
  await start();
  const server: RedisServer = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    start,
    get pid() {
      return proc && proc.exitCode === null && proc.signalCode === null ? (proc.pid ?? null) : null;
    },
    exited: ended,
    async stop() {
      const done = ended();
      proc?.kill('SIGTERM');
      await done;
    },
    kill() {
      proc?.kill('SIGKILL');
    },
    async destroy() {
      await server.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Starts `masters` cluster-enabled servers and joins them into one Redis Cluster (no replicas). */
export async function startRedisCluster(masters = 3): Promise<RedisClusterServers> {
  const root = mkdtempSync(join(tmpdir(), 'parley-rediscluster-'));
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startRedis({
          dir: root,
          // Without full coverage required, the other shards keep serving while one is down.
          extraArgs: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${i}.conf`,
            '--cluster-node-timeout',
            '3000',
            '--cluster-require-full-coverage',
            'no',
            '--cluster-allow-pubsubshard-when-down',
            'yes',
          ],
        }),
      );
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    await exec(findBinary('redis-cli'), ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Wait until every master sees the whole cluster as ok.
    const until = Date.now() + 20_000;
    for (const s of servers) {
      for (;;) {
        const { stdout } = await exec(findBinary('redis-cli'), ['-p', String(s.port), 'cluster', 'info']);
        if (/cluster_state:ok/.test(stdout)) break;
        if (Date.now() > until) throw new Error(`redis cluster did not become ok: ${stdout}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      nodes,
      servers,
      async destroy() {
        await Promise.all(servers.map((s) => s.stop()));
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}
