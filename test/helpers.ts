// Test helpers: a real Parley node on an ephemeral port with its own data folder, tokens
// minted with its secret, and SDK clients speaking real WebSocket.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import { createParley, type Parley } from '../src/server.js';
import { validateConfig, type Config } from '../src/config.js';
import { mintToken } from '../src/auth/jwt.js';
import { ParleyClient, type ClientOptions } from '../src/client/index.js';
import type { Message } from '../src/protocol/schema.js';
import { waitFor } from './wait.js';

export { waitFor };

export const SECRET = 'test-secret-0123456789abcdef';

export function tempDir(prefix = 'parley-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function testConfig(dataDir: string, overrides: Record<string, unknown> = {}): Config {
  const base = { host: '127.0.0.1', port: 0, dataDir, log: { level: 'silent' }, auth: { secret: SECRET } };
  return validateConfig(deepMerge(base, overrides));
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object'
        ? deepMerge(out[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export interface TestServer {
  parley: Parley;
  url: string;
  wsUrl: string;
  config: Config;
  dataDir: string;
  token(user: string, opts?: { name?: string; expiresIn?: string | number; admin?: boolean }): Promise<string>;
  /** An SDK client for `user`, connected and authenticated unless `connect` is false. */
  client(user: string, opts?: Partial<ClientOptions>, connect?: boolean): Promise<ParleyClient>;
  close(): Promise<void>;
}

export async function startServer(overrides: Record<string, unknown> = {}, dataDir = tempDir(), opts: { logger?: Logger } = {}): Promise<TestServer> {
  const config = testConfig(dataDir, overrides);
  const parley = await createParley(config, { logger: opts.logger ?? pino({ level: 'silent' }) });
  await parley.listen();
  const clients: ParleyClient[] = [];
  const server: TestServer = {
    parley,
    config,
    dataDir,
    url: parley.url,
    wsUrl: parley.url.replace('http', 'ws') + '/ws',
    token: (user, opts = {}) => mintToken(config, user, opts),
    async client(user, opts = {}, connect = true) {
      const c = new ParleyClient({ url: parley.url, token: await server.token(user), WebSocket: WebSocket as never, ...opts });
      clients.push(c);
      if (connect) await c.connect();
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await parley.close();
    },
  };
  return server;
}

/** Write system calls this thread has made so far (Linux): its event loop writes the sockets. */
export function threadWrites(): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync('/proc/thread-self/io', 'utf8'))![1]);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A logger that keeps every line it writes, to check what a server logged. */
export function recordingLogger(level = 'info'): { logger: Logger; lines: Array<{ level: number; msg?: string }> } {
  const lines: Array<{ level: number; msg?: string }> = [];
  const logger = pino(
    { level },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line) as { level: number; msg?: string });
      },
    },
  );
  return { logger, lines };
}

/** Collects the chat messages a client receives, in arrival order. */
export function collect(c: ParleyClient, room?: string): Message[] {
  const out: Message[] = [];
  c.on('message', (m) => {
    if (!room || m.room === room) out.push(m);
  });
  return out;
}

/** A raw WebSocket that records every frame, for protocol-level tests. */
export class RawSocket {
  readonly frames: Array<Record<string, unknown>> = [];
  closeCode: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      try {
        this.frames.push(JSON.parse(d.toString()) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
    });
    ws.on('close', (code) => {
      this.closeCode = code;
    });
  }
  static open(url: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const raw = new RawSocket(ws);
      ws.once('open', () => resolve(raw));
      ws.once('error', reject);
    });
  }
  /**
   * Reads nothing more from now on, as a peer that stalls: ws's own pause, which its receiver
   * does not undo (pausing the socket alone is resumed by ws once it has parsed what it had).
   */
  stopReading(): void {
    this.ws.pause();
  }
  readAgain(): void {
    this.ws.resume();
  }
  sendText(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }
  async call(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const id = frame.id;
    this.ws.send(JSON.stringify(frame));
    return this.reply(id, timeoutMs);
  }
  async reply(id: unknown, timeoutMs = 5000): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await waitFor(() => (found = this.frames.find((f) => f.id === id && 'ok' in f)) !== undefined, timeoutMs, `reply ${String(id)}`);
    this.frames.splice(this.frames.indexOf(found!), 1);
    return found!;
  }
  async closed(timeoutMs = 5000): Promise<number> {
    await waitFor(() => this.closeCode !== null, timeoutMs, 'close');
    return this.closeCode!;
  }
  close(): void {
    this.ws.close();
  }
}
