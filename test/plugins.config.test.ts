import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { builtinPlugins } from '../src/plugins/index.js';

const keyOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as ConfigError).key;
  }
  return 'no error';
};
const hook = { url: 'http://127.0.0.1:9/h', secret: 'webhook-secret-0123456789', events: ['message.sent'] };

describe('plugins configuration', () => {
  it('turns on the rate limiter by default and the others whose section is present, in a fixed order, with defaults', () => {
    const defaults = loadConfig().plugins;
    expect(builtinPlugins(defaults).map((p) => p.name)).toEqual(['rate-limit']);
    expect(defaults.rateLimit).toEqual({
      enabled: true,
      user: { rate: 10, burst: 50 },
      search: { rate: 2, burst: 10 },
      typing: { rate: 2, burst: 10 },
      commands: ['send', 'edit', 'react', 'direct'],
      exemptAdmins: true,
    });
    const c = loadConfig({
      overrides: { plugins: { webhooks: { endpoints: [hook] }, wordFilter: {}, rateLimit: { user: { rate: 1, burst: 2 } } } },
    });
    expect(c.plugins.rateLimit).toMatchObject({ commands: ['send', 'edit', 'react', 'direct'], exemptAdmins: true });
    expect(c.plugins.wordFilter).toMatchObject({ mode: 'reject', words: [], mask: '****' });
    expect(c.plugins.webhooks).toMatchObject({ timeoutMs: 5000, maxAttempts: 5, endpoints: [{ format: 'parley' }] });
    expect(builtinPlugins(c.plugins).map((p) => p.name)).toEqual(['rate-limit', 'word-filter', 'webhooks']);
    const off = loadConfig({ overrides: { plugins: { wordFilter: { enabled: false }, rateLimit: { enabled: false } } } });
    expect(builtinPlugins(off.plugins)).toEqual([]);
    // A section that sets only a room limit keeps the default per-user limit.
    expect(loadConfig({ overrides: { plugins: { rateLimit: { room: { rate: 1, burst: 2 } } } } }).plugins.rateLimit).toMatchObject({
      user: { rate: 10, burst: 50 },
      room: { rate: 1, burst: 2 },
    });
  });

  it('can be set from the environment', () => {
    const c = loadConfig({ env: { PARLEY_PLUGINS_RATE_LIMIT_ROOM_RATE: '0.5', PARLEY_PLUGINS_RATE_LIMIT_ROOM_BURST: '4' } });
    expect(c.plugins.rateLimit?.room).toEqual({ rate: 0.5, burst: 4 });
    expect(builtinPlugins(loadConfig({ env: { PARLEY_PLUGINS_RATE_LIMIT_ENABLED: 'false' } }).plugins)).toEqual([]);
  });

  it('names the bad key', () => {
    const bad = (plugins: unknown) => keyOf(() => loadConfig({ overrides: { plugins } }));
    expect(bad({ nonsense: {} })).toBe('plugins.nonsense');
    expect(bad({ rateLimit: { user: { rate: 1 } } })).toBe('plugins.rateLimit.user.burst');
    expect(bad({ rateLimit: { user: { rate: 0, burst: 1 } } })).toBe('plugins.rateLimit.user.rate');
    expect(bad({ rateLimit: { user: { rate: 1, burst: 1 }, commands: ['auth'] } })).toBe('plugins.rateLimit.commands.0');
    expect(bad({ wordFilter: { mode: 'shout' } })).toBe('plugins.wordFilter.mode');
    expect(bad({ wordFilter: { words: ['fine', 'not fine'] } })).toBe('plugins.wordFilter.words.1');
    expect(bad({ webhooks: { endpoints: [{ ...hook, secret: undefined }] } })).toBe('plugins.webhooks.endpoints.0.secret');
    expect(bad({ webhooks: { endpoints: [{ ...hook, url: 'ftp://x' }] } })).toBe('plugins.webhooks.endpoints.0.url');
    expect(bad({ webhooks: { endpoints: [{ ...hook, events: ['message.exploded'] }] } })).toBe('plugins.webhooks.endpoints.0.events.0');
    expect(bad({ webhooks: { endpoints: [hook], backoffMs: 5000, maxBackoffMs: 1000 } })).toBe('plugins.webhooks.maxBackoffMs');
  });
});
