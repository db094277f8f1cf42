// What a Parley target allocates during each measured step (`--alloc`): V8's sampling heap
// profiler, driven over the target's inspector port (loopback only), with the objects that
// both garbage collectors have already freed counted too, so the figure is everything
// allocated, not what is still alive at the end. Allocation is what a send costs the garbage
// collector; per acknowledged message it shows which code makes a node collect, and how often.
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}
interface SamplingProfile {
  head: SamplingNode;
}

/** Bytes allocated in one step, with the functions that allocated most (by self size). */
export interface AllocSummary {
  bytes: number;
  /** KiB allocated per acknowledged message, and per delivery. */
  kibPerMessage: number | null;
  kibPerDelivery: number | null;
  top: Array<{ fn: string; where: string; kib: number; pct: number }>;
  /** The profile itself (open it in Chrome DevTools › Memory). */
  file?: string;
}

/** Bytes between samples: small enough for per-function figures over a few thousand messages. */
const SAMPLING_INTERVAL = 1024;

export class HeapSampler {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error.message));
      else w.resolve(m.result);
    });
    ws.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('inspector connection closed'));
      this.waiting.clear();
    });
  }

  /** Connects to the inspector of the process listening for it on `port` (node --inspect). */
  static async connect(port: number): Promise<HeapSampler> {
    const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const url = list[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error(`no inspector target on port ${port}`);
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    return new HeapSampler(ws);
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(): Promise<void> {
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling; the profile is written to `file` when given. */
  async stop(acked: number, delivered: number, file?: string): Promise<AllocSummary> {
    const { profile } = (await this.call('HeapProfiler.stopSampling')) as { profile: SamplingProfile };
    if (file) writeFileSync(file, JSON.stringify(profile));
    return { ...summarise(profile, acked, delivered), ...(file ? { file } : {}) };
  }

  close(): void {
    this.ws.close();
  }
}

export function summarise(profile: SamplingProfile, acked: number, delivered: number, top = 12): Omit<AllocSummary, 'file'> {
  const bySite = new Map<string, { fn: string; where: string; bytes: number }>();
  let bytes = 0;
  const stack: SamplingNode[] = [profile.head];
  while (stack.length > 0) {
    const n = stack.pop()!;
    stack.push(...n.children);
    if (n.selfSize === 0) continue;
    bytes += n.selfSize;
    const cf = n.callFrame;
    const where = cf.url ? `${cf.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}|${where}`;
    const e = bySite.get(key) ?? { fn: cf.functionName || '(anonymous)', where, bytes: 0 };
    e.bytes += n.selfSize;
    bySite.set(key, e);
  }
  const kib = (b: number, n: number) => (n > 0 ? Math.round((b / 1024 / n) * 100) / 100 : null);
  return {
    bytes,
    kibPerMessage: kib(bytes, acked),
    kibPerDelivery: kib(bytes, delivered),
    top: [...bySite.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, kib: Math.round(e.bytes / 1024), pct: bytes > 0 ? Math.round((e.bytes / bytes) * 1000) / 10 : 0 })),
  };
}

export function formatAlloc(label: string, step: string, a: AllocSummary): string {
  const head = `${label} ${step}: ${Math.round(a.bytes / 1024 / 1024)} MiB allocated, ${a.kibPerMessage ?? '-'} KiB per acked message, ${a.kibPerDelivery ?? '-'} KiB per delivery${a.file ? ` (${a.file})` : ''}`;
  return [head, ...a.top.map((t) => `${String(t.pct).padStart(5)}%  ${String(t.kib).padStart(8)} KiB  ${t.fn}  ${t.where}`)].join('\n');
}
