// Summarises a V8 .cpuprofile (from `--profile`, i.e. node --cpu-prof) into the functions
// with the most self time, so hot spots can be read without a profiler UI.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  where: string;
  selfMs: number;
  pct: number;
}

export function hotSpots(file: string, top = 25): { totalMs: number; spots: HotSpot[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const n = byId.get(id);
    if (!n) return;
    const cf = n.callFrame;
    const where = cf.url ? `${cf.url.replace(/^file:\/\/.*?\/(node_modules|dist|bench)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}|${where}`;
    const e = self.get(key) ?? { fn: cf.functionName || '(anonymous)', where, us: 0 };
    e.us += dt;
    self.set(key, e);
    total += dt;
  });
  const spots = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 1000), pct: Math.round((e.us / total) * 1000) / 10 }));
  return { totalMs: Math.round(total / 1000), spots };
}

export function formatHotSpots(file: string, top = 25): string {
  const { totalMs, spots } = hotSpots(file, top);
  return [`${file}: ${totalMs} ms sampled`, ...spots.map((s) => `${String(s.pct).padStart(5)}%  ${String(s.selfMs).padStart(6)} ms  ${s.fn}  ${s.where}`)].join(
    '\n',
  );
}
