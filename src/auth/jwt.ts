// Verifies the JWTs clients present and mints development tokens. The accepted algorithm is
// pinned by configuration; the token's own `alg` header is never trusted. Tokens of built-in
// accounts (issuer "parley") are told apart by their `iss` and checked with their own pinned
// key and algorithm, alongside whatever external issuer the operator configured.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SignJWT, createRemoteJWKSet, decodeJwt, importSPKI, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { ConfigError, type Config } from '../config.js';
import { ParleyError } from '../errors.js';
import { SYSTEM_USER, userIdRe } from '../protocol/schema.js';
import { checkInput, plainName, truncateText } from '../protocol/validate.js';

export interface Identity {
  id: string;
  name: string;
  profile: Record<string, unknown>;
  /** True when the token carries `parley_admin: true` (server-side API, moderation everywhere). */
  admin: boolean;
  /** Seconds since epoch when the token expires, if it does. */
  exp?: number;
  /** The built-in account session the token belongs to (account tokens only). */
  session?: string;
}

export type Verifier = (token: string) => Promise<Identity>;

/** `iss` of the access tokens Parley issues to built-in accounts; reserved for them. */
export const ACCOUNT_ISSUER = 'parley';
/** Account tokens are always HS256 with the node's own secret, whatever external tokens use. */
export const ACCOUNT_ALGORITHM = 'HS256';

export interface VerifierOptions {
  /**
   * Who an account session authenticates now (its name, profile and administrator status, which
   * replace the token's claims), or null when it may not authenticate `user` (revoked, expired,
   * someone else's). Without it, account tokens are refused.
   */
  accountSession?: (session: string, user: string) => Promise<{ name: string; profile: Record<string, unknown>; admin: boolean } | null>;
}

/** Loads the HMAC secret from config, or from dataDir/jwt-secret (generated on first use). */
export function resolveSecret(cfg: Config): string {
  if (cfg.auth.secret) return cfg.auth.secret;
  const file = join(cfg.dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(cfg.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}

export async function createVerifier(cfg: Config, opts: VerifierOptions = {}): Promise<Verifier> {
  if (cfg.auth.issuer === ACCOUNT_ISSUER) {
    throw new ConfigError('auth.issuer', `"${ACCOUNT_ISSUER}" is reserved for the tokens of built-in accounts`);
  }
  const external = await createExternalVerifier(cfg);
  const account = createAccountVerifier(cfg, opts);
  return async (token: string) => {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new ParleyError('unauthorized', 'invalid token');
    }
    // Only the routing uses the unverified claim; each branch verifies with its own pinned key.
    return iss === ACCOUNT_ISSUER ? account(token) : external(token);
  };
}

function createAccountVerifier(cfg: Config, opts: VerifierOptions): Verifier {
  const key = new TextEncoder().encode(resolveSecret(cfg));
  const options = { algorithms: [ACCOUNT_ALGORITHM], issuer: ACCOUNT_ISSUER, clockTolerance: cfg.auth.clockToleranceSec, requiredClaims: ['exp'] };
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, options));
    } catch (err) {
      throw joseError(err);
    }
    const id = identityFromClaims(payload);
    const sid = payload.sid;
    const now = typeof sid === 'string' && opts.accountSession ? await opts.accountSession(sid, id.id) : null;
    if (!now) throw new ParleyError('unauthorized', 'session ended; log in again');
    // The account's user row and the configuration are the truth, not what the token said
    // when it was signed: a renamed account, or one no longer listed as administrator, is
    // presented as it is now.
    return { ...id, name: now.name, profile: now.profile, admin: now.admin, session: sid as string };
  };
}

function joseError(err: unknown): ParleyError {
  if (err instanceof joseErrors.JWTExpired) return new ParleyError('unauthorized', 'token expired');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new ParleyError('unauthorized', 'token algorithm not accepted');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'exp' && err.reason === 'missing')
      return new ParleyError('unauthorized', 'token has no "exp": this server only accepts tokens that expire');
    return new ParleyError('unauthorized', `token claim "${err.claim}" rejected`);
  }
  return new ParleyError('unauthorized', 'invalid token');
}

async function createExternalVerifier(cfg: Config): Promise<Verifier> {
  const alg = cfg.auth.algorithm;
  let key: Uint8Array | CryptoKey | ReturnType<typeof createRemoteJWKSet>;
  if (alg.startsWith('HS')) key = new TextEncoder().encode(resolveSecret(cfg));
  else if (cfg.auth.publicKey) key = await importSPKI(cfg.auth.publicKey, alg);
  else key = createRemoteJWKSet(new URL(cfg.auth.jwksUrl!));
  const options = {
    algorithms: [alg],
    clockTolerance: cfg.auth.clockToleranceSec,
    requiredClaims: expRequired(cfg),
    ...(cfg.auth.issuer ? { issuer: cfg.auth.issuer } : {}),
    ...(cfg.auth.audience ? { audience: cfg.auth.audience } : {}),
  };
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      // jose's overloads differ for a key and a key set; both are accepted at run time.
      ({ payload } = await jwtVerify(token, key as Uint8Array, options));
    } catch (err) {
      throw joseError(err);
    }
    return identityFromClaims(payload);
  };
}

/**
 * A verifier that refuses external tokens (any but an account's own) for a user id that is a
 * built-in account: usernames and external `sub`s are one namespace, and whoever registered a
 * name first must not become, or be taken over by, the external user of that id.
 */
export function withAccountIdsReserved(verify: Verifier, isAccount: (user: string) => Promise<boolean>): Verifier {
  return async (token: string) => {
    const id = await verify(token);
    if (id.session === undefined && (await isAccount(id.id))) {
      throw new ParleyError('unauthorized', `user id "${id.id}" belongs to a built-in account; only that account's own tokens may use it`);
    }
    return id;
  };
}

/** A token without `exp` would be valid forever: refused unless the operator allows it. */
const expRequired = (cfg: Config): string[] => (cfg.auth.allowTokensWithoutExp ? [] : ['exp']);

/**
 * Verifies HS256 tokens signed with `key` (a shared key another system signs with), pinned
 * like every other key, under the same `auth` rules (clock tolerance, tokens without `exp`).
 * Resolves null when the token is not signed with this key; a token that is, but has expired
 * (or never expires), is refused with that reason.
 */
export function sharedKeyVerifier(key: string, cfg: Config): (token: string) => Promise<Identity | null> {
  const secret = new TextEncoder().encode(key);
  const options = { algorithms: ['HS256'], clockTolerance: cfg.auth.clockToleranceSec, requiredClaims: expRequired(cfg) };
  return async (token: string) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, secret, options));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed) throw joseError(err);
      return null;
    }
    return identityFromClaims(payload);
  };
}

export function identityFromClaims(p: JWTPayload): Identity {
  if (typeof p.sub !== 'string' || !userIdRe.test(p.sub)) {
    throw new ParleyError('unauthorized', 'token "sub" must be a user id matching ' + userIdRe.source);
  }
  if (p.sub === SYSTEM_USER) throw new ParleyError('unauthorized', `token "sub" "${SYSTEM_USER}" is the server's own id`);
  // The name and profile are shown with every message and stored: they keep the text rule of
  // every other input. A verified token with a malformed claim is refused, not repaired.
  if (typeof p.name === 'string') checkInput(p.name, 'token claim "name"');
  const shown = typeof p.name === 'string' ? truncateText(plainName(p.name), 100) : '';
  const name = shown.length > 0 ? shown : p.sub;
  const raw = p.profile;
  let profile: Record<string, unknown> = {};
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    checkInput(raw, 'token claim "profile"');
    if (JSON.stringify(raw).length <= 4096) profile = raw as Record<string, unknown>;
  }
  const id: Identity = { id: p.sub, name, profile, admin: p.parley_admin === true };
  if (typeof p.exp === 'number') id.exp = p.exp;
  return id;
}

export interface MintOptions {
  name?: string;
  profile?: Record<string, unknown>;
  admin?: boolean;
  /** Lifetime, e.g. "1h", "7d", or seconds. */
  expiresIn?: string | number;
}

/** Mints an HS* token with the configured secret (development and tests). */
export async function mintToken(cfg: Config, sub: string, opts: MintOptions = {}): Promise<string> {
  const alg = cfg.auth.algorithm;
  if (!alg.startsWith('HS')) throw new ParleyError('invalid', `cannot mint ${alg} tokens: Parley only holds the public key`);
  if (!userIdRe.test(sub)) throw new ParleyError('invalid', `user id must match ${userIdRe.source}`);
  if (sub === SYSTEM_USER) throw new ParleyError('invalid', `"${SYSTEM_USER}" is the server's own id`);
  const claims: JWTPayload = {};
  if (opts.name) claims.name = opts.name;
  if (opts.profile) claims.profile = opts.profile;
  if (opts.admin) claims.parley_admin = true;
  let jwt = new SignJWT(claims).setProtectedHeader({ alg }).setSubject(sub).setIssuedAt();
  if (cfg.auth.issuer) jwt = jwt.setIssuer(cfg.auth.issuer);
  if (cfg.auth.audience) jwt = jwt.setAudience(cfg.auth.audience);
  const exp = opts.expiresIn ?? '24h';
  jwt = jwt.setExpirationTime(typeof exp === 'number' ? Math.floor(Date.now() / 1000) + exp : exp);
  return jwt.sign(new TextEncoder().encode(resolveSecret(cfg)));
}
