// Signing of webhook deliveries, and the check a receiver runs. The signed string is
// `<timestamp>.<body>`, so a captured delivery cannot be replayed later with a new timestamp.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-parley-signature';
export const TIMESTAMP_HEADER = 'x-parley-timestamp';

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` */
export function sign(secret: string, timestamp: number, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export interface VerifyOptions {
  secret: string;
  /** The raw request body, exactly as received. */
  body: string | Buffer;
  /** The X-Parley-Signature header. */
  signature: string | string[] | undefined;
  /** The X-Parley-Timestamp header (Unix seconds). */
  timestamp: string | string[] | undefined;
  /** Largest accepted clock difference, in seconds (default 300). */
  toleranceSec?: number;
  /** Now, in ms (for tests). */
  now?: number;
}

/** True when a delivery was signed with `secret` within the tolerance. */
export function verifySignature(o: VerifyOptions): boolean {
  if (typeof o.signature !== 'string' || typeof o.timestamp !== 'string') return false;
  if (!/^\d{1,12}$/.test(o.timestamp)) return false;
  const ts = Number(o.timestamp);
  if (Math.abs((o.now ?? Date.now()) / 1000 - ts) > (o.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(sign(o.secret, ts, o.body));
  const given = Buffer.from(o.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
