import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer } from 'node:http';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { RawSocket, startServer, waitFor } from './helpers.js';

const errCode = (r: Record<string, unknown>) => (r.error as { code: string } | undefined)?.code;

async function authWith(wsUrl: string, token: string) {
  const s = await RawSocket.open(wsUrl);
  const r = await s.call({ id: 1, cmd: 'auth', token });
  s.close();
  return r;
}

describe('JWT verification', () => {
  it('RS256 with a configured public key; other algorithms and keys are refused', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const srv = await startServer({ auth: { algorithm: 'RS256', secret: undefined, publicKey: await exportSPKI(publicKey) } });
    onTestFinished(() => srv.close());
    const sign = (key: CryptoKey, alg = 'RS256') =>
      new SignJWT({ name: 'Rita', profile: { color: 'red' } }).setProtectedHeader({ alg }).setSubject('rita').setExpirationTime('1h').sign(key);
    const ok = await authWith(srv.wsUrl, await sign(privateKey));
    expect(ok).toMatchObject({ ok: true, data: { user: { id: 'rita', name: 'Rita', profile: { color: 'red' } } } });
    expect(errCode(await authWith(srv.wsUrl, await sign(other.privateKey)))).toBe('unauthorized');
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('rita')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(await exportSPKI(publicKey)));
    expect(errCode(await authWith(srv.wsUrl, hs))).toBe('unauthorized');
  });

  it('ES256 from a JWKS URL', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => jwks.close(() => r())));
    const port = (jwks.address() as { port: number }).port;
    const srv = await startServer({ auth: { algorithm: 'ES256', secret: undefined, jwksUrl: `http://127.0.0.1:${port}/jwks.json` } });
    onTestFinished(() => srv.close());
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('erin').setExpirationTime('1h').sign(privateKey);
    expect(await authWith(srv.wsUrl, token)).toMatchObject({ ok: true, data: { user: { id: 'erin' } } });
  });

  it('issuer and audience are required when configured', async () => {
    const srv = await startServer({ auth: { issuer: 'https://id.example', audience: 'parley' } });
    onTestFinished(() => srv.close());
    const key = new TextEncoder().encode(srv.config.auth.secret);
    const make = (iss?: string, aud?: string) => {
      let j = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ivy').setExpirationTime('1h');
      if (iss) j = j.setIssuer(iss);
      if (aud) j = j.setAudience(aud);
      return j.sign(key);
    };
    expect((await authWith(srv.wsUrl, await make('https://id.example', 'parley'))).ok).toBe(true);
    expect(errCode(await authWith(srv.wsUrl, await make(undefined, 'parley')))).toBe('unauthorized');
    expect(errCode(await authWith(srv.wsUrl, await make('https://evil.example', 'parley')))).toBe('unauthorized');
    expect(errCode(await authWith(srv.wsUrl, await make('https://id.example', 'other')))).toBe('unauthorized');
    // Tokens minted by `parley token` carry the configured issuer and audience.
    expect((await authWith(srv.wsUrl, await srv.token('ivy'))).ok).toBe(true);
  });

  it('a connection is closed with 4001 when its token expires', async () => {
    const srv = await startServer({ auth: { clockToleranceSec: 0 } });
    onTestFinished(() => srv.close());
    const s = await RawSocket.open(srv.wsUrl);
    expect((await s.call({ id: 1, cmd: 'auth', token: await srv.token('brief', { expiresIn: 2 }) })).ok).toBe(true);
    expect(await s.closed(5000)).toBe(4001);
    await waitFor(() => s.frames.some((f) => f.ev === 'goodbye'));
    expect(s.frames.find((f) => f.ev === 'goodbye')).toMatchObject({ data: { code: 'unauthorized', message: 'token expired' } });
  });

  it('a token without exp is refused unless auth.allowTokensWithoutExp says otherwise', async () => {
    const strict = await startServer();
    onTestFinished(() => strict.close());
    const forever = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('eternal')
      .setIssuedAt()
      .sign(new TextEncoder().encode(strict.config.auth.secret));
    const refused = await authWith(strict.wsUrl, forever);
    expect(refused).toMatchObject({ ok: false, error: { code: 'unauthorized', message: expect.stringContaining('"exp"') } });
    expect((await fetch(`${strict.url}/api/v1/me`, { headers: { authorization: `Bearer ${forever}` } })).status).toBe(401);
    // Tokens minted by `parley token` expire, so they keep working.
    expect((await authWith(strict.wsUrl, await strict.token('eternal'))).ok).toBe(true);
    const lenient = await startServer({ auth: { allowTokensWithoutExp: true } });
    onTestFinished(() => lenient.close());
    expect(await authWith(lenient.wsUrl, forever)).toMatchObject({ ok: true, data: { user: { id: 'eternal' } } });
  });
});
