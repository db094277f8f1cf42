// `npm run cluster:dev` as a user runs it: it keeps running until Ctrl-C even when the
// processes it started end on their own, keeps the database in its folder, and a second run
// with the same folder continues with the same data and secret.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mintToken } from '../src/auth/jwt.js';
import { validateConfig } from '../src/config.js';
import { freePort, tempDir } from './helpers.js';
import { waitFor } from './wait.js';

const parent = tempDir('parley-devcluster-');
// Under root PostgreSQL runs as the postgres user, which must be able to enter the folder.
chmodSync(parent, 0o755);
const dir = join(parent, 'cluster');
const runs: ChildProcess[] = [];
afterAll(() => {
  for (const p of runs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT');
});

interface Run {
  proc: ChildProcess;
  out: () => string;
}

async function run(port: number): Promise<Run> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'tools/devservers/cli.ts', '--nodes', '1', '--port', String(port), '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  runs.push(proc);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.includes('ready:') || proc.exitCode !== null, 120_000, 'the dev cluster to start');
  expect(out).toContain('ready:');
  return { proc, out: () => out };
}

async function stop(r: Run): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => r.proc.once('exit', (code) => resolve(code)));
  r.proc.kill('SIGINT');
  return exited;
}

/** The direct children of a process, with their command lines. */
function children(pid: number): Array<{ pid: number; args: string }> {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(' ');
      return { pid: Number(l.slice(0, i)), args: l.slice(i + 1) };
    });
}

describe('npm run cluster:dev', () => {
  it('runs until Ctrl-C although its processes ended, keeps the database, and continues with it on the next run', async () => {
    const port = await freePort();
    const first = await run(port);
    const secret = readFileSync(join(dir, 'secret'), 'utf8').trim();
    const token = await mintToken(validateConfig({ auth: { secret } }), 'dev-alice');
    const created = await fetch(`http://127.0.0.1:${port}/api/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'channel', name: 'Kept' }),
    });
    expect(created.status).toBe(201);
    const room = ((await created.json()) as { id: string }).id;

    // Everything it started ends without it: a node is killed, PostgreSQL and Redis are stopped
    // (PostgreSQL as `pg_ctl stop -m fast` would).
    const kids = children(first.proc.pid!);
    const node = kids.find((k) => k.args.includes('cli.ts start'))!;
    const redis = kids.find((k) => k.args.includes('redis-server'))!;
    expect(node && redis).toBeTruthy();
    const postmaster = Number(readFileSync(join(dir, 'postgres', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(node.pid, 'SIGKILL');
    process.kill(postmaster, 'SIGINT');
    process.kill(redis.pid, 'SIGTERM');
    await waitFor(() => (first.out().match(/has stopped/g) ?? []).length >= 3, 20_000, 'the stops to be reported');
    await new Promise((r) => setTimeout(r, 500));
    expect(first.proc.exitCode).toBeNull();
    expect(await stop(first)).toBe(0);
    expect(existsSync(join(dir, 'postgres', 'data', 'PG_VERSION'))).toBe(true);
    expect(first.out()).toContain(`data kept in ${dir}`);

    // The next run continues with the same database and secret.
    const second = await run(port);
    expect(second.out()).toContain('from an earlier run');
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/rooms/${room}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe('Kept');
    expect(await stop(second)).toBe(0);
    rmSync(parent, { recursive: true, force: true });
  }, 240_000);
});
