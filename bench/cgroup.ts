// CPU quotas for the cluster workload: each Parley node runs in its own cgroup limited to a
// fixed share of a core (v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, or v2 `cpu.max`), so a
// node is a fixed amount of CPU and adding one adds that much, on a machine whose cores do not
// change. Only the nodes are limited: PostgreSQL, Redis and the load generator stay outside.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuMs } from './proc.js';

/**
 * The quota is enforced per period: a node that has used its share waits for the next period.
 * With the usual 100 ms, a node at its quota stalls for up to 70 ms at a time (at 0.3 core),
 * which alone would take most of a 100 ms p99; 10 ms periods spread the same share finely, like
 * a slower core, and stall it for at most 7 ms.
 */
const PERIOD_US = 10_000;
const PREFIX = 'parley-bench-';

interface Hierarchy {
  version: 1 | 2;
  root: string;
}

export interface Throttling {
  /** Quota periods in which the group ran. */
  periods: number;
  /** Periods in which it used its whole quota and was stopped until the next one. */
  throttled: number;
  throttledMs: number;
}

export interface CpuGroup {
  readonly name: string;
  readonly cores: number;
  /** Moves the process (all its threads) into the group. */
  add(pid: number): void;
  throttling(): Throttling;
  /** Removes the group; its processes must have exited. */
  remove(): Promise<void>;
}

/** Where the cpu controller is mounted, or why it cannot be used. */
function hierarchy(uid: number | undefined): Hierarchy | string {
  if (process.platform !== 'linux') return 'cgroups exist only on Linux';
  if (uid !== undefined && uid !== 0) return 'creating cgroups needs root';
  let mounts: string[];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8').split('\n');
  } catch {
    return '/proc/mounts cannot be read';
  }
  for (const line of mounts) {
    const [, dir, type, opts] = line.split(' ');
    if (type === 'cgroup' && dir && opts?.split(',').includes('cpu') && existsSync(join(dir, 'cpu.cfs_quota_us'))) return { version: 1, root: dir };
  }
  for (const line of mounts) {
    const [, dir, type] = line.split(' ');
    if (type !== 'cgroup2' || !dir) continue;
    try {
      if (!readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) continue;
      const control = join(dir, 'cgroup.subtree_control');
      if (!readFileSync(control, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(control, '+cpu');
      return { version: 2, root: dir };
    } catch (err) {
      return `the cgroup v2 cpu controller at ${dir} cannot be enabled for child groups (${(err as Error).message})`;
    }
  }
  return 'no cgroup hierarchy with the cpu controller is mounted (v1 cpu.cfs_quota_us or v2 cpu.max)';
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readThrottling(dir: string, version: 1 | 2): Throttling {
  const stat = Object.fromEntries(
    readFileSync(join(dir, 'cpu.stat'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(' ');
        return [k!, Number(v)];
      }),
  );
  return {
    periods: stat.nr_periods ?? 0,
    throttled: stat.nr_throttled ?? 0,
    throttledMs: version === 1 ? (stat.throttled_time ?? 0) / 1e6 : (stat.throttled_usec ?? 0) / 1000,
  };
}

/** Every group made by this process, removed at exit even after an error or a signal. */
const made = new Set<string>();
let exitHook = false;

function removeSync(dir: string): void {
  // A process killed a moment ago may still be leaving the group: retry briefly.
  const until = Date.now() + 2000;
  for (;;) {
    try {
      rmdirSync(dir);
      made.delete(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        made.delete(dir);
        return;
      }
      if (code !== 'EBUSY' || Date.now() > until) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

function createGroup(h: Hierarchy, name: string, cores: number): CpuGroup {
  const dir = join(h.root, name);
  mkdirSync(dir);
  made.add(dir);
  if (!exitHook) {
    exitHook = true;
    // At exit (an error, a signal) no node may outlive the run in a group: the groups hold
    // only processes this harness put there.
    process.once('exit', () => {
      for (const d of made) {
        try {
          for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone already */
        }
        removeSync(d);
      }
    });
  }
  // The kernel takes no quota under 1 ms: small shares get longer periods.
  const period = Math.max(PERIOD_US, Math.ceil(1000 / cores));
  const quota = Math.round(cores * period);
  if (h.version === 1) {
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(period));
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
  } else {
    writeFileSync(join(dir, 'cpu.max'), `${quota} ${period}`);
  }
  return {
    name,
    cores,
    add(pid) {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    },
    throttling: () => readThrottling(dir, h.version),
    async remove() {
      const until = Date.now() + 5000;
      while (existsSync(dir)) {
        const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim();
        if (procs === '' || Date.now() > until) break;
        await sleep(50);
      }
      removeSync(dir);
    },
  };
}

/** Removes empty groups left by an earlier run that was killed before it could clean up. */
function removeStale(h: Hierarchy): void {
  for (const name of readdirSync(h.root)) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(h.root, name);
    try {
      if (readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === '') rmdirSync(dir);
    } catch {
      /* in use or gone: leave it */
    }
  }
}

export interface Quotas {
  version: 1 | 2;
  root: string;
  /** What the check measured: a busy loop in a group of `cores`. */
  check: { cores: number; usedCores: number; throttledPeriods: number };
  /** A group of `cores` for one node, named after this process and `label`. */
  group(label: string, cores: number): CpuGroup;
}

/** Runs a busy loop for a second in a group of `cores`: the CPU it got and how often it was throttled. */
async function busyLoopIn(h: Hierarchy, cores: number): Promise<{ cores: number; usedCores: number; throttledPeriods: number }> {
  const probe = createGroup(h, `${PREFIX}${process.pid}-check`, cores);
  const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 1500; while (Date.now() < end);'], { stdio: 'ignore' });
  const gone = new Promise((r) => busy.once('exit', r));
  try {
    probe.add(busy.pid!);
    await sleep(200);
    const c0 = cpuMs(busy.pid!);
    const t0 = performance.now();
    await sleep(1000);
    const used = (cpuMs(busy.pid!) - c0) / (performance.now() - t0);
    return { cores, usedCores: Math.round(used * 100) / 100, throttledPeriods: probe.throttling().throttled };
  } finally {
    busy.kill('SIGKILL');
    await gone;
    await probe.remove();
  }
}

/**
 * Proves that CPU quotas work here before any figure depends on them: a busy loop in a group
 * of `cores` must be throttled and must not use more than the quota. On a machine too busy for
 * the loop to reach that quota, a 0.1-core group is tried instead. Throws, saying why, when
 * groups cannot be made or quotas are not enforced.
 */
export async function cpuQuotas(cores: number, uid = process.getuid?.()): Promise<Quotas> {
  const h = hierarchy(uid);
  const refuse = (why: string): Error =>
    new Error(
      `the cluster workload gives every node a fixed CPU share with a cgroup CPU quota, and ${why}; ` +
        "without quotas N nodes would share the machine's cores and the figures would measure the machine, not the nodes. " +
        'Run it as root on Linux with the cgroup cpu controller (v1 cpu.cfs_quota_us or v2 cpu.max).',
    );
  if (typeof h === 'string') throw refuse(h);
  removeStale(h);
  let check: Quotas['check'];
  try {
    check = await busyLoopIn(h, cores);
    if (check.throttledPeriods === 0 && check.usedCores < cores * 0.9) check = await busyLoopIn(h, 0.1);
  } catch (err) {
    throw refuse(`a cgroup cannot be made and used in ${h.root} (${(err as Error).message})`);
  }
  if (check.throttledPeriods === 0 || check.usedCores > check.cores * 1.25 + 0.02) {
    throw refuse(
      `the quota is not enforced here: a busy loop in a ${check.cores}-core group used ${check.usedCores} core ` +
        `and was throttled in ${check.throttledPeriods} periods`,
    );
  }
  return { version: h.version, root: h.root, check, group: (label, c) => createGroup(h, `${PREFIX}${process.pid}-${label}`, c) };
}
