// How the Parley server serves the built web app: page paths answer the app, built assets
// are cached for good, nothing of the API or operations is shadowed, and a browser's idle
// connections do not hold up a shutdown.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWebRoot } from '../src/transport/http/index.js';
import { startServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  if (!findWebRoot()) throw new Error('dist/web is missing: run `npm run build` first (npm test does)');
  srv = await startServer();
});
afterAll(async () => {
  await srv?.close();
});

describe('serving the web app', () => {
  it('answers / and page paths with the app, which must be revalidated and sets a strict CSP', async () => {
    for (const path of ['/', '/r/general', '/r/general/']) {
      const r = await fetch(`${srv.url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/html');
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await r.text()).toContain('<div id="app">');
    }
  });

  it('caches hashed assets for a year and answers a missing asset with 404', async () => {
    const html = await (await fetch(srv.url)).text();
    const js = /\/assets\/[^"]+\.js/.exec(html)?.[0];
    const css = /\/assets\/[^"]+\.css/.exec(html)?.[0];
    expect(js && css).toBeTruthy();
    for (const asset of [js!, css!]) {
      const r = await fetch(`${srv.url}${asset}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    const missing = await fetch(`${srv.url}/assets/index-missing.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/json');
    expect((await fetch(`${srv.url}/favicon-missing.png`)).status).toBe(404);
  });

  it('shadows nothing under /api, /ws, /metrics, /healthz and /readyz', async () => {
    const api = await fetch(`${srv.url}/api/v1/no-such-route`);
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ error: { code: 'not_found' } });
    expect((await fetch(`${srv.url}/api/v1/rooms`)).status).toBe(401);
    expect((await fetch(`${srv.url}/api/v1/openapi.json`)).headers.get('content-type')).toContain('application/json');
    expect((await fetch(`${srv.url}/api/docs`, { redirect: 'manual' })).headers.get('content-type') ?? '').not.toContain('parley');
    expect(await (await fetch(`${srv.url}/healthz`)).json()).toEqual({ ok: true });
    expect((await fetch(`${srv.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${srv.url}/metrics`)).text()).toContain('parley_connections');
    for (const path of ['/ws', '/ws/x', '/metrics/x', '/healthz/x', '/api']) {
      const r = await fetch(`${srv.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.headers.get('content-type'), path).toContain('application/json');
    }
    // A non-GET to a page path is no page.
    expect((await fetch(`${srv.url}/r/general`, { method: 'POST' })).status).toBe(404);
  });

  it('closes at once although a browser holds connections that never sent a request', async () => {
    const other = await startServer();
    const port = Number(new URL(other.url).port);
    const spare = connect(port, '127.0.0.1');
    await new Promise((r) => spare.once('connect', r));
    const used = connect(port, '127.0.0.1');
    await new Promise((r) => used.once('connect', r));
    used.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`);
    await new Promise((r) => used.once('data', r));
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(2000);
    spare.destroy();
    used.destroy();
  });
});
