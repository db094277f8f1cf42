import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jwtVerify } from 'jose';
import { ConfigError, envName, loadConfig } from '../src/config.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig();
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: './data', auth: { algorithm: 'HS256' } });
    expect(c.store.sqlite.synchronous).toBe('full');
  });

  it('layers file < environment < flags', () => {
    const dir = tempDir();
    const file = join(dir, 'parley.json');
    writeFileSync(file, JSON.stringify({ port: 9000, limits: { frameBytes: 4096, textChars: 10 } }));
    const c = loadConfig({
      file,
      env: { PARLEY_PORT: '9001', PARLEY_LIMITS_TEXT_CHARS: '20' },
      flags: { port: '9002' },
    });
    expect(c.port).toBe(9002);
    expect(c.limits.textChars).toBe(20);
    expect(c.limits.frameBytes).toBe(4096);
    expect(envName('limits.slowConsumerBytes')).toBe('PARLEY_LIMITS_SLOW_CONSUMER_BYTES');
    expect(loadConfig({ env: { PARLEY_API_KEYS: 'key-aaaaaaaaaaaaaaaa, key-bbbbbbbbbbbbbbbb' } }).api.keys).toEqual([
      'key-aaaaaaaaaaaaaaaa',
      'key-bbbbbbbbbbbbbbbb',
    ]);
  });

  it('sets and unsets the retention limits from the environment and flags', () => {
    const c = loadConfig({ env: { PARLEY_RETENTION_DAYS: '328.5' }, flags: { 'retention.count': '1000' } });
    expect(c.retention).toMatchObject({ days: 328.5, count: 1000 });
    const file = join(tempDir(), 'parley.json');
    writeFileSync(file, JSON.stringify({ retention: { days: 30 } }));
    expect(loadConfig({ file, flags: { 'retention.days': 'null' } }).retention.days).toBeNull();
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ConfigError).key;
      }
      return 'no error';
    };
    expect(bad(() => loadConfig({ flags: { 'retention.days': 'a month' } }))).toBe('retention.days');
  });

  it('names the bad key in its error', () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ConfigError).key;
      }
      return 'no error';
    };
    expect(bad(() => loadConfig({ flags: { port: 'eighty' } }))).toBe('port');
    expect(bad(() => loadConfig({ env: { PARLEY_LIMITS_FRAME_BYTES: '12' } }))).toBe('limits.frameBytes');
    expect(bad(() => loadConfig({ overrides: { limits: { nonsense: 1 } } }))).toBe('limits.nonsense');
    expect(bad(() => loadConfig({ flags: { 'no.such': '1' } }))).toBe('no.such');
    expect(bad(() => loadConfig({ overrides: { auth: { algorithm: 'none' } } }))).toBe('auth.algorithm');
    expect(bad(() => loadConfig({ overrides: { auth: { algorithm: 'RS256' } } }))).toBe('auth.publicKey');
    expect(bad(() => loadConfig({ env: { PARLEY_PUSH_ALLOW_HOSTS: '10.0.0.0/33' } }))).toBe('push.allowHosts');
    expect(bad(() => loadConfig({ overrides: { push: { allowHosts: ['not a host'] } } }))).toBe('push.allowHosts');
    expect(loadConfig({ env: { PARLEY_PUSH_ALLOW_HOSTS: 'relay.corp.internal, 10.20.0.0/16,::1' } }).push.allowHosts).toEqual([
      'relay.corp.internal',
      '10.20.0.0/16',
      '::1',
    ]);
    expect(loadConfig({}).push.allowHosts).toEqual([]);
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    expect(bad(() => loadConfig({ file: join(dir, 'bad.json') }))).toBe('config');
  });
});

describe('parley CLI', () => {
  it('`parley token` mints a token the configured secret verifies', async () => {
    const dir = tempDir();
    const { stdout } = await run(process.execPath, ['dist/src/cli.js', 'token', 'cli-user', '--name', 'Cli User', '--data-dir', dir]);
    const { readFileSync } = await import('node:fs');
    const secret = readFileSync(join(dir, 'jwt-secret'), 'utf8').trim();
    const { payload } = await jwtVerify(stdout.trim(), new TextEncoder().encode(secret), { algorithms: ['HS256'] });
    expect(payload).toMatchObject({ sub: 'cli-user', name: 'Cli User' });
  });

  it('`parley start` with a bad setting exits with an error naming the key', async () => {
    const err = await run(process.execPath, ['dist/src/cli.js', 'start', '--set', 'limits.heartbeatMs=-5']).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain('limits.heartbeatMs');
  });

  it('cluster mode needs PostgreSQL and a shared secret, and one kind of Redis', () => {
    const redis = { bus: { redis: { url: 'redis://127.0.0.1:6379' } } };
    expect(() => loadConfig({ overrides: { ...redis, auth: { secret: 'x'.repeat(16) } } })).toThrow(/store\.postgres\.url/);
    expect(() => loadConfig({ overrides: { ...redis, store: { postgres: { url: 'postgres://h/db' } } } })).toThrow(/auth\.secret/);
    expect(() =>
      loadConfig({
        overrides: {
          bus: { redis: { url: 'redis://h:1', cluster: ['h:1'] } },
          store: { postgres: { url: 'postgres://h/db' } },
          auth: { secret: 'x'.repeat(16) },
        },
      }),
    ).toThrow(/bus\.redis\.cluster/);
    // Node-to-node calls need a shared secret: auth.secret with HS*, cluster.secret otherwise.
    const rs = { ...redis, store: { postgres: { url: 'postgres://h/db' } }, auth: { algorithm: 'RS256', jwksUrl: 'https://idp.example/jwks' } };
    expect(() => loadConfig({ overrides: rs })).toThrow(/cluster\.secret/);
    expect(loadConfig({ overrides: { ...rs, cluster: { secret: 's'.repeat(16) } } }).cluster.secret).toBe('s'.repeat(16));
    expect(() => loadConfig({ overrides: { ...rs, cluster: { secret: 'short' } } })).toThrow(/cluster\.secret/);
    expect(() => loadConfig({ env: { PARLEY_BUS_REDIS_URL: 'http://nope' } })).toThrow(/bus\.redis\.url/);
    const c = loadConfig({
      env: { PARLEY_BUS_REDIS_CLUSTER: '10.0.0.1:7000, 10.0.0.2:7000', PARLEY_STORE_POSTGRES_URL: 'postgres://h/db', PARLEY_AUTH_SECRET: 'y'.repeat(20) },
    });
    expect(c.bus.redis.cluster).toEqual(['10.0.0.1:7000', '10.0.0.2:7000']);
  });
});
