import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ParleyClient } from '../src/client/index.js';
import { freePort, removeDir, SECRET, tempDir, testConfig, waitFor } from './helpers.js';
import { mintToken } from '../src/auth/jwt.js';

const dataDir = tempDir('parley-crash-');
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  removeDir(dataDir);
});

async function startProcess(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/cli.js', 'start', '--port', String(port), '--data-dir', dataDir], {
    // The burst comes from one user, far above the default rate limit: it is off here.
    env: { ...process.env, PARLEY_AUTH_SECRET: SECRET, PARLEY_LOG_LEVEL: 'warn', PARLEY_PLUGINS_RATE_LIMIT_ENABLED: 'false' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = `http://127.0.0.1:${port}/readyz`;
  let ready = false;
  for (let i = 0; i < 300 && !ready; i++) {
    if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
    ready = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready) throw new Error(`server not ready: ${stderr}`);
  return child;
}

describe('crash safety', () => {
  it('after SIGKILL mid-burst, every acknowledged message is stored and nothing is half-stored', async () => {
    const port = await freePort();
    const cfg = testConfig(dataDir);
    const token = await mintToken(cfg, 'crash-user');
    let proc = await startProcess(port);
    const client = new ParleyClient({ url: `http://127.0.0.1:${port}`, token, WebSocket: WebSocket as never, requestTimeoutMs: 3000, reconnectMinMs: 60000 });
    await client.connect();
    const room = await client.createRoom('group', 'Crash');
    const acked = new Map<number, string>();
    const total = 2000;
    const sends = Array.from({ length: total }, (_, i) =>
      client.send(room.id, `burst-${i}`, { key: `k${i}` }).then(
        (r) => {
          acked.set(r.seq, `burst-${i}`);
        },
        () => {},
      ),
    );
    await waitFor(() => acked.size >= 300, 15000, 'first acks');
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    client.close();
    await Promise.all(sends);
    expect(acked.size).toBeGreaterThanOrEqual(300);

    // The database file is consistent on its own.
    const db = new Database(join(dataDir, 'parley.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    proc = await startProcess(port);
    const again = new ParleyClient({ url: `http://127.0.0.1:${port}`, token, WebSocket: WebSocket as never });
    await again.connect();
    const stored: Array<{ seq: number; kind: string; text?: string }> = [];
    for (let after = 0; ;) {
      const page = await again.history(room.id, { after, limit: 500 });
      stored.push(...page.messages);
      if (page.messages.length < 500) break;
      after = page.messages[page.messages.length - 1]!.seq;
    }
    // Seq is gapless from 1, and every stored message is whole.
    expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    const texts = new Map(stored.filter((m) => m.kind === 'text').map((m) => [m.seq, m.text]));
    for (const [seq, text] of acked) expect(texts.get(seq)).toBe(text);
    for (const text of texts.values()) expect(text).toMatch(/^burst-\d+$/);
    // Stored messages are distinct sends (no duplicate from the idempotency keys).
    expect(new Set(texts.values()).size).toBe(texts.size);
    again.close();
    proc.kill('SIGTERM');
  });
});
