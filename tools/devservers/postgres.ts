// A PostgreSQL for tests and the local dev cluster: initdb into a folder (a temporary one, or
// a given one that is kept and reused by the next start), then the server on a free loopback
// port (127.0.0.1 only, its unix socket inside the folder, fsync off unless `settings` say
// otherwise). It runs from the
// machine's own binaries (PATH, then /usr/lib/postgresql/*/bin). initdb and postgres refuse
// to run as root, so under root the folder is handed to the `postgres` user and both run
// through `runuser -u postgres --`. The server can be stopped and started again on the same
// port and data (for "the database went away" tests), killed outright, and destroyed with its
// folder (a kept folder is only stopped).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

export interface PgServer {
  /** Connection URL of the created database. */
  url: string;
  port: number;
  /** The folder (data, socket and log). */
  dir: string;
  /** Whether the database existed already (a kept folder started again). */
  reused: boolean;
  /** The postmaster's process id while it runs. */
  readonly pid: number | null;
  /** Resolves when the server process exits, whoever stopped it. */
  exited(): Promise<void>;
  /** Fast shutdown; resolves when the server has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILLs the server and its backends (a crash, not a shutdown). */
  kill(): void;
  /** SIGSTOPs the server and its backends (a frozen machine); the function returned wakes them. */
  freeze(): () => void;
  /** Stops the server (killing it if it does not stop) and removes the folder unless it is kept. */
  destroy(): Promise<void>;
}

export interface PgServerOptions {
  /** Parent folder of the temporary folder (default: the OS temp folder). */
  dir?: string;
  /**
   * Use this folder instead of a temporary one and keep it: a folder that holds a database
   * from an earlier start is started again with its data.
   */
  keepIn?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Database to create (default `parley`). */
  database?: string;
  /** How long to wait for the server to accept connections (default 30 s). */
  startTimeoutMs?: number;
  /** Server settings passed as `-c name=value`, after (and so overriding) the defaults above. */
  settings?: Record<string, string>;
}

const BINARIES = ['initdb', 'postgres'] as const;
const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The folder holding initdb and postgres: from PATH first, else the newest Debian install. */
export function findPostgresBin(): string {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  for (const d of candidates) {
    if (BINARIES.every((b) => isExecutable(join(d, b)))) return d;
  }
  throw new Error('PostgreSQL binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin');
}

function isExecutable(file: string): boolean {
  try {
    const s = statSync(file);
    return s.isFile() && (s.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface RunAs {
  uid: number;
  gid: number;
}

/** Under root: the `postgres` user's ids; otherwise null (run as ourselves). */
function runAs(): RunAs | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('bad id');
    return { uid, gid };
  } catch {
    throw new Error('running as root, but there is no `postgres` user to run PostgreSQL as (install the postgresql package)');
  }
}

/** The command line, wrapped in runuser when we are root. */
function command(user: RunAs | null, file: string, args: string[]): [string, string[]] {
  return user ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

function tail(file: string, bytes = 4000): string {
  try {
    const s = readFileSync(file, 'utf8');
    return s.slice(-bytes).trim();
  } catch {
    return '';
  }
}

/** Whether a process runs, is a zombie (dead, not yet reaped), or is gone. */
function processState(pid: number): 'running' | 'zombie' | 'gone' {
  if (existsSync('/proc/self')) {
    try {
      // Linux: the state letter follows the parenthesised command name.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z' ? 'zombie' : 'running';
    } catch {
      return 'gone';
    }
  }
  try {
    process.kill(pid, 0);
    return 'running';
  } catch {
    return 'gone';
  }
}

/** Pids whose parent is `parent`, from /proc (empty where there is no /proc). */
function childrenOf(parent: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Servers not yet destroyed; killed when the process exits so none outlives it. */
const live = new Set<PostgresDevServer>();
let exitHook = false;

class PostgresDevServer implements PgServer {
  readonly url: string;
  reused = false;
  private child: ChildProcess | null = null;
  private exitedP: Promise<void> = Promise.resolve();
  private destroyed = false;

  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly user: RunAs | null,
    private readonly database: string,
    private readonly startTimeoutMs: number,
    private readonly settings: Record<string, string>,
    readonly kept: boolean,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/${database}`;
  }

  get pid(): number | null {
    return this.child ? this.postmasterPid() : null;
  }

  exited(): Promise<void> {
    return this.exitedP;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }
  private get socketDir(): string {
    return join(this.dir, 'socket');
  }
  private get logFile(): string {
    return join(this.dir, 'postgres.log');
  }

  /** Runs a one-shot binary (initdb) to completion, its output in the log. */
  async run(file: string, args: string[]): Promise<void> {
    const [cmd, argv] = command(this.user, join(this.bin, file), args);
    const log = openSync(this.logFile, 'a');
    try {
      const child = spawn(cmd, argv, { stdio: ['ignore', log, log], env: { ...process.env, LC_ALL: 'C' } });
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (c) => resolve(c));
      });
      if (code !== 0) throw new Error(`${file} failed (exit ${code}):\n${tail(this.logFile)}`);
    } finally {
      closeSync(log);
    }
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error('this PostgreSQL was destroyed');
    if (this.child) return;
    await this.exitedP;
    await this.clearStaleLock();
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${this.socketDir}`,
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'max_connections=200',
      ...Object.entries(this.settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ];
    const [cmd, argv] = command(this.user, join(this.bin, 'postgres'), args);
    const log = openSync(this.logFile, 'a');
    // Its own process group, so kill() reaches the server and every backend at once.
    const child = spawn(cmd, argv, { stdio: ['ignore', log, log], detached: true, env: { ...process.env, LC_ALL: 'C' } });
    closeSync(log);
    this.child = child;
    let exitedEarly = false;
    this.exitedP = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exitedEarly = true;
        if (this.child === child) this.child = null;
        resolve();
      });
      child.once('error', () => {
        exitedEarly = true;
        if (this.child === child) this.child = null;
        resolve();
      });
    });
    const deadline = Date.now() + this.startTimeoutMs;
    // Ready once the TCP port answers and the pid file's status line says so (written when
    // recovery is over and connections are accepted).
    while (Date.now() < deadline) {
      if (exitedEarly) throw new Error(`postgres exited during startup:\n${tail(this.logFile)}`);
      // Ready in its pid file (our own: the pid is our child's), and answering a query.
      if ((await accepts(this.port)) && this.readyInPidFile() && (await this.answers())) return;
      await sleep(50);
    }
    this.kill();
    throw new Error(`postgres did not start within ${this.startTimeoutMs} ms:\n${tail(this.logFile)}`);
  }

  /** The server answers a query (not only its port and pid file). */
  private async answers(): Promise<boolean> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
    client.on('error', () => {
      /* reported by the failing query */
    });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** postmaster.pid's status line reads "ready" once the server accepts connections. */
  private readyInPidFile(): boolean {
    try {
      const lines = readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
      return (lines[7] ?? '').trim() === 'ready';
    } catch {
      return false;
    }
  }

  /**
   * After kill() the old postmaster can linger as a zombie (when nothing reaps orphans), and
   * PostgreSQL takes a zombie's pid for a live server holding the data folder: wait for a dying
   * one, and drop the lock file of one that is only a zombie.
   */
  private async clearStaleLock(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid === null) return;
    const deadline = Date.now() + 5000;
    while (processState(pid) === 'running' && Date.now() < deadline) await sleep(50);
    if (processState(pid) !== 'zombie') return;
    const socket = join(this.socketDir, `.s.PGSQL.${this.port}`);
    for (const f of [join(this.dataDir, 'postmaster.pid'), `${socket}.lock`, socket]) rmSync(f, { force: true });
  }

  /** The postmaster's pid (from its pid file), or null. */
  private postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) {
      await this.exitedP;
      return;
    }
    // SIGINT to the postmaster itself is a fast shutdown (runuser would turn a signal sent to it
    // into SIGTERM, a smart shutdown that waits for every client to leave).
    const pid = this.postmasterPid();
    try {
      if (pid !== null) process.kill(pid, 'SIGINT');
      else this.kill();
    } catch {
      this.kill();
    }
    const timeout = sleep(15_000).then(() => 'timeout' as const);
    if ((await Promise.race([this.exitedP.then(() => 'exited' as const), timeout])) === 'timeout') {
      this.kill();
      await this.exitedP;
    }
  }

  freeze(): () => void {
    const postmaster = this.postmasterPid();
    if (postmaster === null) throw new Error('PostgreSQL is not running');
    const pids = [postmaster, ...childrenOf(postmaster)];
    const signal = (sig: NodeJS.Signals) => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // ended meanwhile
        }
      }
    };
    signal('SIGSTOP');
    return () => signal('SIGCONT');
  }

  kill(): void {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    // Backends run in sessions of their own, and one busy with a client may not notice its
    // postmaster's death for a while (it keeps serving queries already on its socket): kill
    // each child of the postmaster too, listed before the postmaster dies and they are orphaned.
    const postmaster = this.postmasterPid();
    const backends = postmaster === null ? [] : childrenOf(postmaster);
    for (const pid of [-child.pid, ...backends]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Dead from now on, though its exit event may come later: a start() right after this
    // must start a new server (after `exited`), not take the dying one for a running one.
    this.child = null;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.stop();
    this.destroyed = true;
    live.delete(this);
    if (!this.kept) rmSync(this.dir, { recursive: true, force: true });
  }

  /** At process exit: no server left behind, and no temporary folder. */
  killAndRemoveSync(): void {
    if (this.kept) {
      // A fast shutdown keeps the data consistent; the server finishes it on its own.
      const pid = this.postmasterPid();
      try {
        if (pid !== null) process.kill(pid, 'SIGINT');
      } catch {
        /* already gone */
      }
      return;
    }
    this.kill();
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      /* best effort at exit */
    }
  }
}

/**
 * Creates a database cluster in a new temporary folder, starts PostgreSQL on it and creates
 * the database; resolves once the database accepts connections.
 */
export async function startPostgres(opts: PgServerOptions = {}): Promise<PgServer> {
  const database = opts.database ?? 'parley';
  if (!DB_NAME.test(database)) throw new Error(`invalid database name: ${database}`);
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535)) {
    throw new Error(`invalid port: ${opts.port}`);
  }
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const settings = opts.settings ?? {};
  for (const k of Object.keys(settings)) if (!/^[a-z_][a-z0-9_.]*$/.test(k)) throw new Error(`invalid setting name: ${k}`);
  if (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0) throw new Error(`invalid startTimeoutMs: ${startTimeoutMs}`);
  const bin = findPostgresBin();
  const user = runAs();
  const kept = opts.keepIn !== undefined;
  let dir: string;
  if (opts.keepIn !== undefined) {
    dir = opts.keepIn;
    mkdirSync(dir, { recursive: true });
  } else dir = mkdtempSync(join(opts.dir ?? tmpdir(), 'parley-pg-'));
  const initialised = existsSync(join(dir, 'data', 'PG_VERSION'));
  mkdirSync(join(dir, 'socket'), { recursive: true });
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chownSync(join(dir, 'socket'), user.uid, user.gid);
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-w', dir]);
    } catch {
      throw new Error(`PostgreSQL runs as the postgres user, which cannot enter ${dir}: choose a folder every user can reach (e.g. under /tmp)`);
    }
  }
  // eslint-disable-next-line no-useless-assignment -- the catch reads it when the first attempt throws before assigning
  let server: PostgresDevServer | null = null;
  try {
    // A free port can be taken between the probe and the bind: try a few.
    for (let attempt = 0; ; attempt++) {
      const port = opts.port ?? (await freePort());
      server = new PostgresDevServer(dir, port, bin, user, database, startTimeoutMs, settings, kept);
      if (attempt === 0 && !initialised) {
        await server.run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
      }
      try {
        await server.start();
        break;
      } catch (err) {
        const busy = /could not bind|Address already in use/i.test(String(err));
        if (!busy || opts.port !== undefined || attempt >= 4) throw err;
      }
    }
    live.add(server);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const s of live) s.killAndRemoveSync();
      });
    }
    server.reused = !(await createDatabase(server, database));
    return server;
  } catch (err) {
    if (server) await server.destroy().catch(() => undefined);
    else if (!kept) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Creates the database unless it exists; resolves true when it created it. */
async function createDatabase(server: PostgresDevServer, database: string): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 10_000 });
  client.on('error', () => {
    /* the query below reports it */
  });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount) return false;
    // The name was checked against DB_NAME, so quoting it is enough.
    await client.query(`CREATE DATABASE "${database}"`);
    return true;
  } finally {
    await client.end();
  }
}
