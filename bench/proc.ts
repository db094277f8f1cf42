// Server cost read from outside the server: CPU time and resident memory of a process from
// /proc, so every target is measured the same way whatever it is written in.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
} catch {
  /* Linux default */
}

/** User and system (kernel) CPU of the process and all its threads, in milliseconds. */
export function cpuSplitMs(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may hold spaces; fields after it are space separated from "state" on.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / clkTck, sys: (Number(f[12]) * 1000) / clkTck };
}

/** User + system CPU of the process and all its threads, in milliseconds. */
export function cpuMs(pid: number): number {
  const c = cpuSplitMs(pid);
  return c.user + c.sys;
}

/**
 * CPU of a server that runs a process per connection (PostgreSQL): the parent, the children it
 * runs now, and the children it has already reaped (their time is added to the parent's).
 */
export function treeCpuMs(parent: number): number {
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let f: string[];
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    } catch {
      continue; // exited meanwhile
    }
    // Fields from "state" on: ppid is [1], utime [11], stime [12], cutime [13], cstime [14].
    if (Number(d) === parent) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    else if (Number(f[1]) === parent) ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / clkTck;
}

export interface Mem {
  rssKiB: number;
  hwmKiB: number;
}

export function memory(pid: number): Mem {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** The soft limit on open files of this process (children inherit it). */
export function openFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  if (!m) return 1024;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

export function machine(): { cpus: number; cpuModel: string; memTotalGiB: number; kernel: string } {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    cpus: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memTotalGiB: Math.round((memKiB / 1024 / 1024) * 10) / 10,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

export interface MachineTicks {
  busyMs: number;
  stealMs: number;
  totalMs: number;
}

/** CPU time of the whole machine (/proc/stat): busy, stolen by the hypervisor, and in all. */
export function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const ms = (t: number): number => (t * 1000) / clkTck;
  return { busyMs: ms(total - f[3]! - f[4]! - f[7]!), stealMs: ms(f[7]!), totalMs: ms(total) };
}
