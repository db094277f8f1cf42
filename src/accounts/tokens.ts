// The two tokens of an account session. Access tokens are short-lived Parley JWTs (HS256,
// issuer ACCOUNT_ISSUER, `sid` = the session) that every transport verifies like any JWT.
// Refresh tokens are "<session id>.<secret>": only a SHA-256 of the secret is stored, which
// is enough because the secret is 256 random bits, not something a person chose.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignJWT } from 'jose';
import { ACCOUNT_ALGORITHM, ACCOUNT_ISSUER } from '../auth/jwt.js';

/**
 * `parley_admin` tells clients the account administers the server; the verifier decides that
 * from the configuration, not from the claim (see AccountService.identify).
 */
export function signAccessToken(key: Uint8Array, claims: { user: string; name: string; session: string; ttlSec: number; admin?: boolean }): Promise<string> {
  return new SignJWT({ name: claims.name, sid: claims.session, ...(claims.admin ? { parley_admin: true } : {}) })
    .setProtectedHeader({ alg: ACCOUNT_ALGORITHM, typ: 'JWT' })
    .setIssuer(ACCOUNT_ISSUER)
    .setSubject(claims.user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSec)
    .sign(key);
}

export const newSessionId = (): string => randomBytes(16).toString('base64url');
export const newSecret = (): string => randomBytes(32).toString('base64url');
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const refreshToken = (session: string, secret: string): string => `${session}.${secret}`;

export function parseRefreshToken(token: string): { session: string; secret: string } | null {
  const m = /^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{32,128})$/.exec(token);
  return m ? { session: m[1]!, secret: m[2]! } : null;
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
