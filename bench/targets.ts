// Each target runs as its own child process so its CPU time and memory can be read from
// /proc. Parley runs from its build (dist/) with durable storage, on the harness's Node or on
// another one (a checkout installed for it, see scripts/with-node.ts); the peers are transpiled
// from bench/peers/ to plain JS first, so no TypeScript loader sits inside a measured process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { NodeInstall } from '../scripts/with-node.js';
import type { TargetName } from './types.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export interface TargetOptions {
  /** Ping interval of the target's heartbeat, when the workload sets one. */
  heartbeatMs?: number;
  /** Directory for a V8 CPU profile of the target (node --cpu-prof). */
  profileDir?: string;
  /** Open the target's inspector on a free loopback port (for `--alloc`: bench/alloc.ts). */
  inspect?: boolean;
  /** Node and V8 flags for a Parley target, before its script. */
  nodeFlags?: string[];
  /** Parley's SQLite synchronous mode; 'full' (durable on power loss) unless told. */
  synchronous?: 'full' | 'normal';
  /** The Node and checkout Parley runs from (default: the harness's own). */
  runtime?: NodeInstall;
  /** Extra environment, e.g. a cluster node's PostgreSQL and Redis URLs. */
  env?: Record<string, string>;
  /** Longest wait for the target to listen (default 20 s). */
  startTimeoutMs?: number;
  /** Parley's data directory, made by the caller (seeded beforehand) and left in place at stop. */
  dataDir?: string;
  /** Extra `--set key=value` settings for Parley. */
  settings?: string[];
  logFile: string;
}

export interface RunningTarget {
  name: TargetName;
  pid: number;
  port: number;
  secret: string;
  /** The inspector's port, when opened. */
  inspectPort?: number;
  stop(): Promise<void>;
}

export const SECRET = 'bench-secret-0123456789abcdef';

/** A free TCP port on loopback (the OS picks it; the listener is closed again). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function transpilePeer(name: string): string {
  const src = join(ROOT, 'bench', 'peers', `${name}.ts`);
  // Inside the repo so the peer resolves its packages from node_modules.
  const outDir = join(RESULTS_DIR, '.peers');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${name}.mjs`);
  const js = ts.transpileModule(readFileSync(src, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: src,
  }).outputText;
  writeFileSync(out, js);
  return out;
}

interface Command {
  node: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

function command(name: TargetName, port: number, dataDir: string, o: TargetOptions): Command {
  const parley = name === 'parley' || name === 'parley-mqtt';
  const env: NodeJS.ProcessEnv = { ...(parley && o.runtime ? o.runtime.env : process.env), PORT: String(port), SECRET, NODE_ENV: 'production', ...o.env };
  if (o.heartbeatMs) env.HEARTBEAT_MS = String(o.heartbeatMs);
  if (parley) {
    const root = o.runtime?.root ?? ROOT;
    const cli = join(root, 'dist', 'src', 'cli.js');
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm run bench does)`);
    env.PARLEY_STORE_SQLITE_SYNCHRONOUS = o.synchronous ?? 'full';
    if (o.heartbeatMs) env.PARLEY_LIMITS_HEARTBEAT_MS = String(o.heartbeatMs);
    return {
      node: o.runtime?.node ?? process.execPath,
      cwd: root,
      args: [
        cli,
        'start',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--data-dir',
        dataDir,
        '--set',
        `auth.secret=${SECRET}`,
        '--set',
        'log.level=warn',
        // Every load-generating connection comes from this machine's address.
        '--set',
        'http.connectionsPerAddress=0',
        // The benchmark measures throughput, not the defences against one abusive client: the
        // default rate limiter (10 messages a second per user) is off, and the cap on commands
        // in flight per connection is above any --window the harness sends with.
        '--set',
        'plugins.rateLimit.enabled=false',
        '--set',
        'limits.maxInFlight=100000',
        // The MQTT variant: Chat21-style clients on MQTT over WebSocket (/mqtt on the same port).
        ...(name === 'parley-mqtt' ? ['--set', 'mqtt.enabled=true', '--set', 'mqtt.port=0'] : []),
        ...(o.settings ?? []).flatMap((kv) => ['--set', kv]),
      ],
      env,
    };
  }
  return { node: process.execPath, cwd: ROOT, args: [transpilePeer(name)], env };
}

function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  return new Promise((res, rej) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return rej(new Error(`exited with code ${child.exitCode} before listening`));
      const sock = createConnection({ host: '127.0.0.1', port }, () => {
        sock.destroy();
        res();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > end) rej(new Error(`not listening on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startTarget(name: TargetName, o: TargetOptions): Promise<RunningTarget> {
  const port = await freePort();
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const { node, args, env, cwd } = command(name, port, dataDir, o);
  const inspectPort = o.inspect ? await freePort() : undefined;
  const nodeArgs = [
    ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
    ...(name.startsWith('parley') ? (o.nodeFlags ?? []) : []),
    ...(o.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${name}${o.runtime ? `-node${o.runtime.version}` : ''}-${Date.now()}.cpuprofile`]
      : []),
  ];
  // Spawned directly (no shell, no npm) so the child's pid is the server's pid.
  const child = spawn(node, [...nodeArgs, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(o.logFile, { flags: 'a' });
  // Both into one file: neither may end it while the other still writes (a node logs on its way out).
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  child.once('close', () => log.end());
  try {
    await waitForPort(port, child, o.startTimeoutMs ?? 20_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${name}: ${(err as Error).message} (log: ${o.logFile})`, { cause: err });
  }
  return {
    name,
    pid: child.pid!,
    port,
    secret: SECRET,
    ...(inspectPort ? { inspectPort } : {}),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
