// The attachments workload (Parley only): many clients upload files at once while others
// chat. It shows the upload throughput, that the server streams uploads instead of buffering
// them (its RSS stays flat however many megabytes go through), and what the uploads cost the
// latency of text messages sent meanwhile. Each upload is deleted once made, so the disk
// holds at most one file per uploader.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { newHistogram, summarize, type LatencySummary } from './hist.js';
import { memory } from './proc.js';
import type { BenchOptions, RunResult } from './run.js';
import { startTarget, SECRET, type RunningTarget } from './targets.js';

export interface AttachmentsPlan {
  uploaders: number;
  fileBytes: number;
  chatters: number;
  /** Text messages per second of each chatter. */
  chatRate: number;
  durationS: number;
}

export interface AttachmentsInfo {
  uploads: number;
  failedUploads: number;
  firstError?: string;
  mbPerSec: number;
  rssBaselineMiB: number;
  rssPeakMiB: number;
  rssGrowthMiB: number;
  textSent: number;
  textDelivered: number;
  text: LatencySummary | null;
}

export function attachmentsPlan(o: Pick<BenchOptions, 'quick' | 'duration'>): AttachmentsPlan {
  return { uploaders: 50, fileBytes: 1024 * 1024, chatters: 4, chatRate: 5, durationS: o.duration ?? (o.quick ? 5 : 30) };
}

const ROOM_FILES = 'bench-files';
const ROOM_TEXT = 'bench-text';

export async function runAttachments(o: BenchOptions, stamp: string): Promise<RunResult> {
  const plan = attachmentsPlan(o);
  const say = (line: string, final = false): void => o.progress?.(`[attachments/parley] ${line}`, final);
  const result: RunResult = {
    workload: 'attachments',
    target: 'parley',
    label: 'parley',
    node: process.versions.node,
    description:
      `${plan.uploaders} clients uploading ${plan.fileBytes / 1048576} MiB files at once for ${plan.durationS} s; ` +
      `${plan.chatters} others sending ${plan.chatRate} texts/s each meanwhile`,
    params: { ...plan },
    connections: plan.uploaders + plan.chatters + 1,
    setup: { connectS: 0, connectsPerSec: 0, connectMs: null, roomsS: 0, failed: 0 },
    memory: { rssBeforeMiB: 0, rssAfterSetupMiB: 0, rssAfterMiB: 0, peakMiB: 0, perConnectionKiB: null },
    steps: [],
  };
  let target: RunningTarget | null = null;
  const sockets: WebSocket[] = [];
  try {
    say('starting parley');
    target = await startTarget('parley', {
      logFile: join(o.outDir, 'logs', `${stamp.replace(/[:.]/g, '-')}-attachments-parley.log`),
      env: { PARLEY_PLUGINS_RATE_LIMIT_ENABLED: 'false', PARLEY_STORE_SQLITE_SYNCHRONOUS: o.synchronous },
    });
    const base = `http://127.0.0.1:${target.port}`;
    const key = new TextEncoder().encode(SECRET);
    const token = (user: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt().setExpirationTime('2h').sign(key);
    const api = async (tok: string, method: string, path: string, body?: unknown) => {
      const r = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${tok}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : null,
      });
      if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${await r.text()}`);
      return r.json() as Promise<Record<string, unknown>>;
    };
    const owner = await token('owner');
    const uploaders = await Promise.all(Array.from({ length: plan.uploaders }, (_, i) => token(`up${i}`)));
    const chatters = await Promise.all(Array.from({ length: plan.chatters }, (_, i) => token(`chat${i}`)));
    const watcher = await token('watcher');
    await api(owner, 'POST', '/rooms', { kind: 'group', name: 'Files', room: ROOM_FILES });
    await api(owner, 'POST', '/rooms', { kind: 'group', name: 'Text', room: ROOM_TEXT });
    for (let i = 0; i < plan.uploaders; i++) await api(owner, 'POST', `/rooms/${ROOM_FILES}/members`, { user: `up${i}` });
    for (let i = 0; i < plan.chatters; i++) await api(owner, 'POST', `/rooms/${ROOM_TEXT}/members`, { user: `chat${i}` });
    await api(owner, 'POST', `/rooms/${ROOM_TEXT}/members`, { user: 'watcher' });

    // The watcher receives every text; each carries its send time.
    const hist = newHistogram();
    let delivered = 0;
    const open = (tok: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
        sockets.push(ws);
        ws.once('error', reject);
        ws.once('open', () => ws.send(JSON.stringify({ id: 'auth', cmd: 'auth', token: tok })));
        ws.on('message', function first(d) {
          const f = JSON.parse(d.toString()) as { id?: string; ok?: boolean };
          if (f.id !== 'auth') return;
          ws.off('message', first);
          if (f.ok) resolve(ws);
          else reject(new Error(`auth refused: ${d.toString()}`));
        });
      });
    const watch = await open(watcher);
    watch.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { ev?: string; data?: { text?: string } };
      const sentAt = f.ev === 'message' && f.data?.text?.startsWith('t:') ? Number(f.data.text.slice(2)) : NaN;
      if (!Number.isFinite(sentAt)) return;
      delivered++;
      hist.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
    });
    const chatSockets = await Promise.all(chatters.map(open));

    const file = randomBytes(plan.fileBytes);
    const body = new Blob([file]);
    let uploads = 0;
    let failedUploads = 0;
    let firstError: string | undefined;
    let stop = false;
    const uploadOnce = async (tok: string, i: number): Promise<void> => {
      try {
        const r = await fetch(`${base}/api/v1/rooms/${ROOM_FILES}/attachments`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/octet-stream', 'x-filename': `f${i}.bin` },
          body,
        });
        const view = (await r.json()) as { id?: string; error?: { code: string } };
        if (!r.ok || !view.id) throw new Error(`HTTP ${r.status} ${view.error?.code ?? ''}`);
        uploads++;
        await fetch(`${base}/api/v1/attachments/${view.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${tok}` } });
      } catch (err) {
        failedUploads++;
        firstError ??= (err as Error).message;
      }
    };

    // Warm-up: one upload each, then the baseline RSS.
    say('warming up');
    await Promise.all(uploaders.map((t, i) => uploadOnce(t, i)));
    uploads = 0;
    failedUploads = 0;
    const rssMiB = () => memory(target!.pid).rssKiB / 1024;
    const baseline = rssMiB();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB());
    }, 100);

    say(`measuring for ${plan.durationS} s`);
    let textSent = 0;
    const chatTimer = setInterval(() => {
      for (const ws of chatSockets) {
        ws.send(JSON.stringify({ id: ++textSent, cmd: 'send', room: ROOM_TEXT, text: `t:${performance.now()}` }));
      }
    }, 1000 / plan.chatRate);
    const started = performance.now();
    const loops = uploaders.map(async (t, i) => {
      while (!stop) await uploadOnce(t, i);
    });
    await new Promise((r) => setTimeout(r, plan.durationS * 1000));
    stop = true;
    clearInterval(chatTimer);
    await Promise.all(loops);
    const elapsedS = (performance.now() - started) / 1000;
    // The last texts' deliveries.
    const until = Date.now() + 5000;
    while (delivered < textSent && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    clearInterval(sampler);
    peak = Math.max(peak, rssMiB());

    const info: AttachmentsInfo = {
      uploads,
      failedUploads,
      ...(firstError ? { firstError } : {}),
      mbPerSec: Math.round(((uploads * plan.fileBytes) / 1e6 / elapsedS) * 10) / 10,
      rssBaselineMiB: Math.round(baseline),
      rssPeakMiB: Math.round(peak),
      rssGrowthMiB: Math.round(peak - baseline),
      textSent,
      textDelivered: delivered,
      text: summarize(hist),
    };
    result.attachments = info;
    result.memory = {
      rssBeforeMiB: Math.round(baseline),
      rssAfterSetupMiB: Math.round(baseline),
      rssAfterMiB: Math.round(rssMiB()),
      peakMiB: Math.round(peak),
      perConnectionKiB: null,
    };
    say(`${uploads} uploads, ${info.mbPerSec} MB/s, RSS +${info.rssGrowthMiB} MiB, text p99 ${info.text?.p99Ms ?? '-'} ms`, true);
  } catch (err) {
    result.error = (err as Error).message;
    say(`failed: ${result.error}`, true);
  } finally {
    for (const ws of sockets) ws.terminate();
    await target?.stop();
  }
  return result;
}

/** The terminal table of attachments runs. */
export function attachmentsTable(runs: RunResult[]): string {
  const mine = runs.filter((r) => r.workload === 'attachments');
  if (mine.length === 0) return '';
  const head = [
    'attachments',
    'uploads',
    'failed',
    'MB/s',
    'rss base MiB',
    'rss peak MiB',
    'rss growth MiB',
    'texts',
    'delivered',
    'text p50 ms',
    'p99',
    'max',
  ];
  const rows = mine.map((r) => {
    const a = r.attachments;
    if (!a) return [r.label, `ERROR ${r.error ?? ''}`];
    return [
      r.label,
      String(a.uploads),
      String(a.failedUploads),
      String(a.mbPerSec),
      String(a.rssBaselineMiB),
      String(a.rssPeakMiB),
      String(a.rssGrowthMiB),
      String(a.textSent),
      String(a.textDelivered),
      String(a.text?.p50Ms ?? '-'),
      String(a.text?.p99Ms ?? '-'),
      String(a.text?.maxMs ?? '-'),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
