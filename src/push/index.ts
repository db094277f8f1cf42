// Web Push: notifies a user who has no open connection of the direct messages and mentions
// the service's `notified` hook reports, through each browser's push service (RFC 8030),
// encrypted for the browser (RFC 8291, aes128gcm) and signed with the server's VAPID key
// (RFC 8292). `web-push` builds each request (encryption, VAPID header); this module decides
// who is told, keeps the subscriptions, and sends with bounded concurrency, queue, time and
// response size. Who is notified at all (levels all/mentions/none, blocks) is decided before,
// by the service (mentions.ts): this module only adds "not connected" and "still a member".
// Which endpoints may be reached at all (public hosts and addresses) is endpoint.ts.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { createECDH } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import webpush from 'web-push';
import type { Identity } from '../auth/jwt.js';
import type { Presence } from '../bus/bus.js';
import type { Config } from '../config.js';
import type { Metrics, PushOutcome } from '../observability/metrics.js';
import { ParleyError } from '../errors.js';
import type { Room } from '../protocol/schema.js';
import type { Hook, Notification } from '../service/hooks.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from '../store/push.js';
import { checkEndpoint, connectGuard, endpointPolicy, RefusedAddressError, type EndpointPolicy } from './endpoint.js';

/** Characters of a message's text a push carries (the notification shows a line or two). */
export const PUSH_TEXT_CHARS = 100;
/** Bytes of a push service's answer read (its body is only logged). */
const ANSWER_BYTES = 4096;
/** Wait before the one retry of a push the service could not take now (429, 5xx, network). */
const RETRY_MS = 2000;
const MAX_RETRY_MS = 60_000;

/** What the service worker receives (JSON), kept small: push services cap payloads at ~4 KiB. */
export interface PushPayload {
  room: string;
  /** The room's name ('' for a direct room). */
  roomName: string;
  kind: Room['kind'];
  seq: number;
  /** The author's display name. */
  name: string;
  text: string;
  reason: Notification['recipients'][number]['reason'];
}

/** A browser's PushSubscription as `toJSON()` gives it (validated by the route's schema first). */
export interface SubscriptionInput {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

export interface PushDeps {
  store: PushStore;
  config: Config['push'];
  presence: Pick<Presence, 'online'>;
  /** The room and its members now (a recipient that left since the message is not told). */
  room(id: string): Promise<{ room: Room; members: string[] } | null>;
  log: Logger;
  metrics?: Pick<Metrics, 'push'>;
}

export class PushService {
  private keys: VapidKeys | null = null;
  private readonly queue: PQueue;
  private readonly agent: Agent;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;
  private readonly policy: EndpointPolicy;
  /**
   * Since start: pushes accepted by a push service, failed for good, dropped (queue full);
   * subscriptions removed as gone (404, 410) and as refused (their host led to an address
   * that is not public).
   */
  readonly counts: Record<PushOutcome, number> = { sent: 0, failed: 0, dropped: 0, gone: 0, refused: 0 };

  constructor(private readonly deps: PushDeps) {
    const c = deps.config;
    this.policy = endpointPolicy(c.allowHosts);
    this.queue = new PQueue({ concurrency: c.concurrency });
    // Push services are few hosts, so connections are kept open; a private CA is trusted
    // here only, for push requests, on top of the system's.
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: c.concurrency,
      ...(c.caFile ? { ca: [...rootCertificates, readFileSync(c.caFile, 'utf8')] } : {}),
    });
  }

  /** Reads the VAPID keys: configured, or the pair in the store (generated on first start). */
  async start(): Promise<void> {
    const c = this.deps.config;
    this.keys =
      c.vapidPublicKey && c.vapidPrivateKey
        ? { publicKey: c.vapidPublicKey, privateKey: c.vapidPrivateKey }
        : await this.deps.store.vapidKeys(webpush.generateVAPIDKeys());
  }

  /** The VAPID public key browsers subscribe with (base64url), or `unavailable` when push is off. */
  publicKey(): string {
    if (!this.deps.config.enabled || !this.keys) throw new ParleyError('unavailable', 'Web Push is turned off on this server');
    return this.keys.publicKey;
  }

  /** Keeps a browser's subscription for the user (replacing the one of the same endpoint). */
  async subscribe(user: Identity, s: SubscriptionInput): Promise<void> {
    this.publicKey();
    checkSubscription(s, this.policy);
    await this.deps.store.add(
      {
        endpoint: s.endpoint,
        user: user.id,
        session: user.session ?? null,
        p256dh: s.keys.p256dh,
        auth: s.keys.auth,
        createdAt: Date.now(),
      },
      this.deps.config.subscriptionsPerUser,
    );
  }

  /** Forgets the user's subscription of this endpoint; `not_found` when it has none. */
  async unsubscribe(user: Identity, endpoint: string): Promise<void> {
    if (!(await this.deps.store.remove(user.id, endpoint))) throw new ParleyError('not_found', 'no such push subscription');
  }

  /** Sessions ended (sign-out, signed out elsewhere, password changed): their browsers stop being notified. */
  sessionsEnded(user: string, which: { session: string } | { keep?: string }): void {
    const done = 'session' in which ? this.deps.store.removeSessions([which.session]) : this.deps.store.removeUserSessions(user, which.keep);
    done.catch((err: unknown) => this.deps.log.warn({ err, user }, 'could not remove the push subscriptions of ended sessions'));
  }

  /** The hook that hears every notification the service sends. */
  hook(): Hook {
    return {
      name: 'push',
      notified: (n) => {
        this.notified(n);
      },
    };
  }

  private notified(n: Notification): void {
    if (!this.deps.config.enabled || this.closed || !this.keys) return;
    void this.route(n).catch((err: unknown) => this.deps.log.warn({ err, room: n.room, seq: n.seq }, 'push notifications not sent'));
  }

  /** Who of the recipients has no live connection, is still a member and has subscriptions. */
  private async route(n: Notification): Promise<void> {
    const users = n.recipients.map((r) => r.user);
    // Presence that cannot be read sends nothing: better no push than one to every open tab.
    const online = new Set(await this.deps.presence.online(users));
    const away = n.recipients.filter((r) => !online.has(r.user));
    if (away.length === 0) return;
    const subs = await this.deps.store.ofUsers(away.map((r) => r.user));
    if (subs.length === 0) return;
    const found = await this.deps.room(n.room);
    if (!found) return;
    const members = new Set(found.members);
    const reason = new Map(away.map((r) => [r.user, r.reason]));
    for (const s of subs) {
      if (!members.has(s.user)) continue;
      const payload: PushPayload = {
        room: n.room,
        roomName: found.room.kind === 'direct' ? '' : found.room.name,
        kind: found.room.kind,
        seq: n.seq,
        name: n.name,
        text: [...n.text].slice(0, PUSH_TEXT_CHARS).join(''),
        reason: reason.get(s.user)!,
      };
      this.enqueue(s, JSON.stringify(payload), 1);
    }
  }

  private count(outcome: PushOutcome): void {
    this.counts[outcome]++;
    this.deps.metrics?.push(outcome);
  }

  private enqueue(s: PushSubscriptionRecord, body: string, attempt: number): void {
    if (this.closed) return;
    if (this.queue.size + this.queue.pending >= this.deps.config.queue) {
      this.count('dropped');
      return;
    }
    void this.queue.add(() => this.send(s, body, attempt));
  }

  private async send(s: PushSubscriptionRecord, body: string, attempt: number): Promise<void> {
    const c = this.deps.config;
    let status: number;
    let retryAfter = 0;
    try {
      const details = webpush.generateRequestDetails({ endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } }, body, {
        vapidDetails: { subject: c.subject, ...this.keys! },
        TTL: c.ttlSec,
        urgency: 'high',
        contentEncoding: 'aes128gcm',
      });
      ({ status, retryAfter } = await this.post(details.endpoint, details.headers, details.body));
    } catch (err) {
      if (err instanceof RefusedAddressError) {
        // Stored before the rule, allowed by an earlier configuration, or a name that now
        // resolves into the local network: never connected to, never tried again.
        this.count('refused');
        this.deps.log.warn({ endpoint: s.endpoint, user: s.user, address: err.address }, 'push subscription removed: its host is not a public address');
        await this.deps.store.removeEndpoint(s.endpoint).catch((e: unknown) => this.deps.log.warn({ err: e }, 'could not remove a refused push subscription'));
        return;
      }
      status = 0;
      this.deps.log.debug({ err, endpoint: s.endpoint }, 'push request failed');
    }
    if (status >= 200 && status < 300) {
      this.count('sent');
      return;
    }
    if (status === 404 || status === 410) {
      // The browser unsubscribed or the subscription expired: it will never take a push again.
      this.count('gone');
      await this.deps.store.removeEndpoint(s.endpoint).catch((err: unknown) => this.deps.log.warn({ err }, 'could not remove a gone push subscription'));
      return;
    }
    // Busy (429), broken for now (5xx) or unreachable: worth one more try; anything else
    // (400, 403, 413) is a refusal that a repeat would only earn again.
    if ((status === 0 || status === 429 || status >= 500) && attempt < 2) {
      const t = setTimeout(
        () => {
          this.timers.delete(t);
          this.enqueue(s, body, attempt + 1);
        },
        Math.min(MAX_RETRY_MS, Math.max(RETRY_MS, retryAfter)),
      );
      t.unref();
      this.timers.add(t);
      return;
    }
    this.count('failed');
    this.deps.log.info({ status, endpoint: s.endpoint }, 'push refused by the push service');
  }

  /** One POST to a push service, bounded in time and in the bytes of the answer read. */
  private post(endpoint: string, headers: Record<string, string | number>, body: Buffer | null): Promise<{ status: number; retryAfter: number }> {
    return new Promise((resolve, reject) => {
      const url = new URL(endpoint);
      const req = request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers,
          signal: AbortSignal.timeout(this.deps.config.timeoutMs),
          ...connectGuard(url, this.policy),
        },
        (res) => {
          let read = 0;
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > ANSWER_BYTES) res.destroy();
          });
          const done = () => resolve({ status: res.statusCode ?? 0, retryAfter: retryAfterMs(res.headers['retry-after']) });
          res.on('end', done);
          res.on('close', done);
          res.on('error', done);
        },
      );
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.clear();
    // Requests in flight end within their timeout.
    await this.queue.onIdle();
    this.agent.destroy();
  }
}

/** Retry-After in seconds, in ms (0 when absent or not a number of seconds). */
function retryAfterMs(v: string | undefined): number {
  const n = Number(v);
  return v !== undefined && Number.isFinite(n) && n > 0 ? n * 1000 : 0;
}

/**
 * What the schema cannot say about a subscription: the endpoint is an https URL without
 * credentials to a public host (endpoint.ts), and p256dh is a point on P-256 (so encryption
 * for it cannot fail later).
 */
export function checkSubscription(s: SubscriptionInput, policy: EndpointPolicy): void {
  checkEndpoint(s.endpoint, policy);
  const key = Buffer.from(s.keys.p256dh, 'base64url');
  try {
    if (key.length !== 65 || key[0] !== 4) throw new Error('not an uncompressed point');
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    ecdh.computeSecret(key);
  } catch {
    throw new ParleyError('invalid', 'keys.p256dh: not a P-256 public key', { field: 'keys.p256dh' });
  }
  if (Buffer.from(s.keys.auth, 'base64url').length !== 16) {
    throw new ParleyError('invalid', 'keys.auth: must be 16 bytes', { field: 'keys.auth' });
  }
}
