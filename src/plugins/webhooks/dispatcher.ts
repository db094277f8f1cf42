// Delivers webhook bodies in the background: per endpoint a bounded queue, a bounded number
// of requests in flight and retries with exponential backoff. `enqueue` never waits, so a
// slow, failing or dead endpoint cannot delay the command that produced the event, nor the
// deliveries of other endpoints.
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { sign } from './signature.js';
import { backoff } from '../../client/backoff.js';

export interface DispatcherOptions {
  timeoutMs: number;
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  concurrency: number;
  queueSize: number;
}

export interface Endpoint {
  url: string;
  secret?: string;
}

export interface Delivery {
  /** Delivery id, the same on every attempt so receivers can drop repeats. */
  id: string;
  event: string;
  body: string;
}

/** How a delivery ended (for logs, metrics and tests). */
/**
 * An endpoint's address as logs and the admin screen show it: scheme, host and port only,
 * since the path of a Slack-style incoming webhook is its secret.
 */
export function endpointOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a valid URL)';
  }
}

export interface DeliveryReport {
  /** The endpoint's origin (never its path: see endpointOrigin). */
  url: string;
  id: string;
  event: string;
  ok: boolean;
  attempts: number;
  error?: string;
}

interface Job extends Delivery {
  attempt: number;
}

/** How deliveries to one endpoint have gone since the node started (the admin screen's view). */
export interface EndpointStatus {
  /** Queued, in flight or waiting for a retry now. */
  pending: number;
  delivered: number;
  failed: number;
  /** Dropped because the queue was full. */
  dropped: number;
  lastDeliveredAt: number | null;
  lastFailedAt: number | null;
  lastError: string | null;
}

/** 4xx answers other than these mean the receiver will never accept the delivery. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

/** Retry-After in seconds or as an HTTP date, in ms; 0 when absent or unreadable. */
function retryAfterMs(header: string | null): number {
  if (!header) return 0;
  const s = Number(header);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 0;
}

class EndpointQueue {
  private readonly queue: PQueue;
  /** Queued, in flight, or waiting for a retry: what `queueSize` bounds. */
  private outstanding = 0;
  private dropped = 0;
  private lastDropLog = 0;
  private delivered = 0;
  private failed = 0;
  private lastDeliveredAt: number | null = null;
  private lastFailedAt: number | null = null;
  private lastError: string | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    private readonly ep: Endpoint,
    private readonly o: DispatcherOptions,
    private readonly abort: AbortSignal,
    private readonly log: Logger,
    private readonly report: (r: DeliveryReport) => void,
  ) {
    this.queue = new PQueue({ concurrency: o.concurrency });
  }

  get size(): number {
    return this.outstanding;
  }

  status(): EndpointStatus {
    return {
      pending: this.outstanding,
      delivered: this.delivered,
      failed: this.failed,
      dropped: this.dropped,
      lastDeliveredAt: this.lastDeliveredAt,
      lastFailedAt: this.lastFailedAt,
      lastError: this.lastError,
    };
  }

  enqueue(d: Delivery): boolean {
    if (this.abort.aborted) return false;
    if (this.outstanding >= this.o.queueSize) {
      this.dropped++;
      const now = Date.now();
      if (now - this.lastDropLog > 10_000) {
        this.lastDropLog = now;
        this.log.warn({ url: endpointOrigin(this.ep.url), dropped: this.dropped, queueSize: this.o.queueSize }, 'webhook queue full; dropping deliveries');
      }
      return false;
    }
    this.outstanding++;
    this.schedule({ ...d, attempt: 1 });
    return true;
  }

  private schedule(job: Job): void {
    this.queue.add(() => this.attempt(job)).catch((err: unknown) => this.finish(job, false, String(err)));
  }

  private finish(job: Job, ok: boolean, error?: string): void {
    this.outstanding--;
    if (ok) {
      this.delivered++;
      this.lastDeliveredAt = Date.now();
    } else {
      this.failed++;
      this.lastFailedAt = Date.now();
      this.lastError = error ?? 'failed';
    }
    const r: DeliveryReport = { url: endpointOrigin(this.ep.url), id: job.id, event: job.event, ok, attempts: job.attempt };
    if (error !== undefined) r.error = error;
    if (!ok) this.log.warn(r, 'webhook delivery failed');
    this.report(r);
  }

  private async attempt(job: Job): Promise<void> {
    const ts = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Parley-Webhook/1',
      'x-parley-event': job.event,
      'x-parley-delivery': job.id,
      'x-parley-attempt': String(job.attempt),
      'x-parley-timestamp': String(ts),
    };
    if (this.ep.secret) headers['x-parley-signature'] = sign(this.ep.secret, ts, job.body);
    let error: string;
    let permanent = false;
    let wait = 0;
    try {
      const res = await fetch(this.ep.url, {
        method: 'POST',
        headers,
        body: job.body,
        // A redirect could lead the signed body anywhere; it counts as a failure instead.
        redirect: 'manual',
        signal: AbortSignal.any([this.abort, AbortSignal.timeout(this.o.timeoutMs)]),
      });
      // The answer's body is not used; cancelling it frees the connection.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return this.finish(job, true);
      error = `HTTP ${res.status}`;
      permanent = res.status >= 300 && res.status < 500 && !RETRYABLE_4XX.has(res.status);
      wait = retryAfterMs(res.headers.get('retry-after'));
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      error = e.name === 'TimeoutError' ? `no response within ${this.o.timeoutMs} ms` : (e.cause?.code ?? e.message);
    }
    if (this.abort.aborted) return this.finish(job, false, 'shutting down');
    if (permanent || job.attempt >= this.o.maxAttempts) return this.finish(job, false, error);
    this.log.debug({ url: endpointOrigin(this.ep.url), id: job.id, attempt: job.attempt, error }, 'webhook attempt failed; will retry');
    const delay = Math.min(this.o.maxBackoffMs, Math.max(wait, backoff(job.attempt, this.o.backoffMs, this.o.maxBackoffMs)));
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.abort.aborted) return this.finish(job, false, 'shutting down');
      this.schedule({ ...job, attempt: job.attempt + 1 });
    }, delay);
    t.unref();
    this.timers.add(t);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.clear();
    await this.queue.onIdle();
  }
}

export class WebhookDispatcher {
  /** One queue per configured endpoint (by identity: two entries may share a URL with different secrets). */
  private readonly queues = new Map<Endpoint, EndpointQueue>();
  private readonly abort = new AbortController();

  constructor(
    private readonly o: DispatcherOptions,
    private readonly log: Logger,
    private readonly report: (r: DeliveryReport) => void = () => undefined,
  ) {}

  /** How deliveries to `ep` have gone (all zero before its first event). */
  status(ep: Endpoint): EndpointStatus {
    return this.queues.get(ep)?.status() ?? { pending: 0, delivered: 0, failed: 0, dropped: 0, lastDeliveredAt: null, lastFailedAt: null, lastError: null };
  }

  /** Queues a delivery; false when it was dropped (queue full or shutting down). Never waits. */
  enqueue(ep: Endpoint, d: Delivery): boolean {
    let q = this.queues.get(ep);
    if (!q) {
      q = new EndpointQueue(ep, this.o, this.abort.signal, this.log, this.report);
      this.queues.set(ep, q);
    }
    return q.enqueue(d);
  }

  /** Deliveries not yet finished, over all endpoints. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.size;
    return n;
  }

  /** Stops at once: in-flight requests are aborted, queued and waiting retries dropped. */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
