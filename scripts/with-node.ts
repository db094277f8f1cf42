// Runs a command in this checkout under another major version of Node.js, e.g.
// `tsx scripts/with-node.ts 24 npm test` (`npm run test:node24`). Node's official binaries
// and headers are published on the npm registry as node-<platform>-<arch>; the one asked for
// is fetched into a cache folder once. Native modules (better-sqlite3) are built for one
// Node ABI, so the checkout is copied beside it and installed there with that Node first on
// PATH; the copy's node_modules is kept until package.json, package-lock.json or the Node
// version change. The benchmark's `--node` runs Parley from such a copy too.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A checkout of Parley installed for one Node version. */
export interface NodeInstall {
  /** e.g. "24.22.3" */
  version: string;
  /** The node binary. */
  node: string;
  /** The checkout whose node_modules were installed by that node. */
  root: string;
  /** Environment for commands run there: that node first on PATH. */
  env: NodeJS.ProcessEnv;
}

const PLATFORM_PACKAGE = `node-${process.platform}-${process.arch}`;
/** Not copied: installed, built or written by running Parley and its tests. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', 'data', 'test-output']);

export function cacheDir(): string {
  return process.env.PARLEY_NODE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'parley');
}

const byVersion = (a: string, b: string): number => {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
};

/** The newest published version of a major ("24"), or the version itself ("24.22.3"). */
function resolveVersion(wanted: string, log: (l: string) => void): string {
  if (/^\d+\.\d+\.\d+$/.test(wanted)) return wanted;
  if (!/^\d+$/.test(wanted)) throw new Error(`expected a Node major version like 24 or a version like 24.22.3, got "${wanted}"`);
  try {
    const out = execFileSync('npm', ['view', `${PLATFORM_PACKAGE}@${wanted}`, 'version', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const found = JSON.parse(out) as string | string[];
    const versions = (Array.isArray(found) ? found : [found]).sort(byVersion);
    if (versions.length > 0) return versions[versions.length - 1]!;
  } catch (err) {
    // Offline: the newest one fetched before will do.
    const cached = existsSync(cacheDir())
      ? readdirSync(cacheDir())
          .map((d) => /^node-v(\d+\.\d+\.\d+)-/.exec(d)?.[1])
          .filter((v): v is string => v?.split('.')[0] === wanted)
          .sort(byVersion)
      : [];
    if (cached.length > 0) {
      log(`registry not reachable (${(err as Error).message.split('\n')[0]}); using the cached Node ${cached[cached.length - 1]}`);
      return cached[cached.length - 1]!;
    }
    throw new Error(`cannot find Node ${wanted} on the npm registry (${PLATFORM_PACKAGE}): ${(err as Error).message}`, { cause: err });
  }
  throw new Error(`no ${PLATFORM_PACKAGE}@${wanted} on the npm registry`);
}

/** The folder of that Node's binary and headers (bin/node, include/node), fetched if needed. */
function fetchNode(version: string, log: (l: string) => void): string {
  const dir = join(cacheDir(), `node-v${version}-${process.platform}-${process.arch}`);
  if (existsSync(join(dir, 'bin', 'node'))) return dir;
  mkdirSync(cacheDir(), { recursive: true });
  const tmp = mkdtempSync(join(cacheDir(), '.fetch-'));
  try {
    log(`fetching Node ${version} (${PLATFORM_PACKAGE}) from the npm registry`);
    const tgz = execFileSync('npm', ['pack', `${PLATFORM_PACKAGE}@${version}`, '--pack-destination', tmp, '--silent'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync('tar', ['xzf', join(tmp, tgz), '-C', tmp]);
    renameSync(join(tmp, 'package'), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** The files of the checkout as they are now: tracked and new ones, without what git ignores. */
function checkoutFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\0').filter((f) => f !== '' && !NOT_COPIED.has(f.split('/')[0]!) && existsSync(join(ROOT, f)));
  } catch {
    // Not a git checkout (an unpacked archive): everything but what is built or installed.
    const walk = (rel: string): string[] =>
      readdirSync(join(ROOT, rel), { withFileTypes: true })
        .filter((e) => !(rel === '' && NOT_COPIED.has(e.name)) && e.name !== 'node_modules')
        .flatMap((e) => (e.isDirectory() ? walk(join(rel, e.name)) : [join(rel, e.name)]));
    return walk('');
  }
}

/** Replaces the copy's files (not its node_modules) with the checkout's current ones. */
function syncCopy(dest: string): void {
  mkdirSync(dest, { recursive: true });
  for (const e of readdirSync(dest)) if (e !== 'node_modules') rmSync(join(dest, e), { recursive: true, force: true });
  for (const f of checkoutFiles()) cpSync(join(ROOT, f), join(dest, f), { recursive: false, preserveTimestamps: true });
}

/** The environment of a command run with `nodeDir`'s node: first on PATH, its headers for node-gyp. */
function nodeEnv(nodeDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // An outer `npm run` exports its own package's and lifecycle's variables; the copy's npm sets its own.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') || k.startsWith('npm_config_')) env[k] = v;
  env.PATH = `${join(nodeDir, 'bin')}${delimiter}${process.env.PATH ?? ''}`;
  // node-gyp builds against these headers instead of downloading them from nodejs.org.
  env.npm_config_nodedir = nodeDir;
  delete env.npm_config_node_gyp;
  return env;
}

/**
 * Parley installed for Node `wanted` (a major like "24", or an exact version). The Node that
 * runs this gets the checkout itself; another one gets a copy of it with its own node_modules.
 */
export function installNode(wanted: string, log: (l: string) => void = (l) => process.stderr.write(`with-node: ${l}\n`)): NodeInstall {
  const current = process.versions.node;
  if (wanted === current || wanted === current.split('.')[0]) {
    return { version: current, node: process.execPath, root: ROOT, env: { ...process.env } };
  }
  const version = resolveVersion(wanted, log);
  const nodeDir = fetchNode(version, log);
  const env = nodeEnv(nodeDir);
  const key = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
  const root = join(cacheDir(), 'checkouts', `${basename(ROOT)}-${key}`, `node${version.split('.')[0]}`);
  log(`Node ${version} in ${root}`);
  syncCopy(root);
  const stamp = createHash('sha256')
    .update(version)
    .update(readFileSync(join(root, 'package.json')))
    .update(readFileSync(join(root, 'package-lock.json')))
    .digest('hex');
  const stampFile = join(root, 'node_modules', '.parley-install');
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    log(`npm ci with Node ${version}`);
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, env, stdio: 'inherit' });
    writeFileSync(stampFile, stamp);
  }
  return { version, node: join(nodeDir, 'bin', 'node'), root, env };
}

async function main(argv: string[]): Promise<number> {
  const [wanted, cmd, ...args] = argv;
  if (!wanted || !cmd) {
    process.stderr.write('usage: tsx scripts/with-node.ts <major|version> <command> [args...]\n');
    return 2;
  }
  const target = installNode(wanted);
  process.stderr.write(`with-node: ${cmd} ${args.join(' ')} with Node ${target.version}\n`);
  const child = spawn(cmd, args, { cwd: target.root, env: target.env, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 1 : 0))));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`with-node: ${err.message}\n`);
      process.exit(1);
    },
  );
}
