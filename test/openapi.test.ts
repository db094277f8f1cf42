// The OpenAPI document, the docs page, health and readiness, and Prometheus metrics, read the
// way an operator's tools read them: over HTTP from a running node.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { pino } from 'pino';
import { Metrics } from '../src/observability/metrics.js';
import { createHttp, registeredRoutes } from '../src/transport/http/index.js';
import { RawSocket, startServer, type TestServer } from './helpers.js';

let srv: TestServer;
let doc: any;
beforeAll(async () => {
  srv = await startServer();
  doc = await (await fetch(`${srv.url}/api/v1/openapi.json`)).json();
});
afterAll(async () => {
  await srv?.close();
});

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const operations = () =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, op]) => ({ path, method, op })),
  );

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    await SwaggerParser.validate(structuredClone(doc));
  });

  it('lists every route registered under /api/v1, with its method', () => {
    const routes = registeredRoutes(srv.parley.http).filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThan(45);
    const missing = routes.filter((r) => !doc.paths[r.url.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()]);
    expect(missing).toEqual([]);
  });

  it('documents each operation: a unique id, a summary, its security, success and error responses', () => {
    const ids = new Set<string>();
    for (const { path, method, op } of operations()) {
      const name = `${method} ${path}`;
      expect(op.operationId, name).toBeTruthy();
      expect(ids.has(op.operationId), `${name}: duplicate ${op.operationId}`).toBe(false);
      ids.add(op.operationId);
      expect(op.summary, name).toBeTruthy();
      if (!path.startsWith('/api/v1/')) continue;
      expect(
        Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)),
        name,
      ).toBe(true);
      // A user's picture is read by its signed URL alone: the signature is the credential.
      const publicRoute = [
        '/api/v1/openapi.json',
        '/api/v1/auth/register',
        '/api/v1/auth/login',
        '/api/v1/auth/refresh',
        '/api/v1/dispatch',
        '/api/v1/users/{user}/avatar',
      ].includes(path);
      if (!publicRoute) {
        // Files are also read with a signed URL (for <img src>), without a header.
        const signed = method === 'get' && /^\/api\/v1\/attachments\/\{id\}(\/preview)?$/.test(path);
        expect(op.security, name).toEqual([{ bearerAuth: [] }, { apiKey: [] }, ...(signed ? [{}] : [])]);
        expect(op.responses['4XX']?.content?.['application/json']?.schema?.properties?.error, name).toBeTruthy();
      }
    }
  });

  it('describes bodies, parameters and responses with the protocol schemas', () => {
    const send = doc.paths['/api/v1/rooms/{room}/messages'].post;
    const body = send.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['text']);
    expect(body.additionalProperties).toBe(false);
    expect(send.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: 'path', name: 'room', required: true }),
        expect.objectContaining({ in: 'header', name: 'idempotency-key' }),
      ]),
    );
    expect(Object.keys(send.responses['201'].content['application/json'].schema.properties)).toEqual(['seq', 'ts', 'duplicate']);
    const history = doc.paths['/api/v1/rooms/{room}/messages'].get;
    expect(
      history.parameters
        .filter((p: any) => p.in === 'query')
        .map((p: any) => p.name)
        .sort(),
    ).toEqual(['after', 'before', 'limit', 'thread']);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});

describe('docs page', () => {
  it('serves Swagger UI and its assets from the package, pointing at no CDN', async () => {
    const page = await fetch(`${srv.url}/api/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/https?:\/\/(?!localhost|127\.0\.0\.1)[^"' ]+\.(js|css)/);
    const init = await fetch(`${srv.url}/api/docs/static/swagger-initializer.js`);
    expect(init.status).toBe(200);
    const bundle = await fetch(`${srv.url}/api/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  it('can be turned off with the document', async () => {
    const s = await startServer({ api: { docs: false } });
    onTestFinished(() => s.close());
    expect((await fetch(`${s.url}/api/v1/openapi.json`)).status).toBe(404);
    expect((await fetch(`${s.url}/api/docs/`)).status).toBe(404);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  });
});

describe('health and readiness', () => {
  it('/healthz answers while the process lives; /readyz while the store answers', async () => {
    const s = await startServer();
    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ ok: true });
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, connections: 0 });
    // The store goes away under the node: not ready, still alive.
    await s.parley.store.close();
    const gone = await fetch(`${s.url}/readyz`);
    expect(gone.status).toBe(503);
    expect((await gone.json()).ok).toBe(false);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    await s.close();
  });

  it('/readyz answers 503 while the node is closing', async () => {
    let closing = false;
    const app = createHttp({ log: pino({ level: 'silent' }), metrics: new Metrics(), ready: () => !closing, stats: () => ({}) });
    onTestFinished(() => app.close());
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    closing = true;
    const r = await app.inject({ url: '/readyz' });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ ok: false });
  });
});

describe('metrics', () => {
  const sample = (text: string, name: string, labels: Record<string, string> = {}) => {
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split('\n').find((l) => l.startsWith(name + (want.length ? '{' : ' ')) && want.every((w) => l.includes(w)));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  it('exposes connections, rooms, messages, command latency, errors by code and process metrics', async () => {
    const token = await srv.token('mia');
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 1, cmd: 'auth', token })).ok).toBe(true);
    await fetch(`${srv.url}/api/v1/rooms`, { method: 'POST', headers: h, body: JSON.stringify({ kind: 'channel', name: 'M', room: 'metrics' }) });
    for (let i = 0; i < 3; i++)
      await fetch(`${srv.url}/api/v1/rooms/metrics/messages`, { method: 'POST', headers: h, body: JSON.stringify({ text: `m${i}` }) });
    await fetch(`${srv.url}/api/v1/rooms/nope/messages`, { method: 'POST', headers: h, body: JSON.stringify({ text: 'x' }) });
    await fetch(`${srv.url}/api/v1/me`);

    const r = await fetch(`${srv.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(sample(text, 'parley_connections', { transport: 'ws' })).toBe(1);
    expect(sample(text, 'parley_rooms', { kind: 'channel' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'parley_messages_in_total', { transport: 'http' })).toBe(3);
    expect(text).toContain('# TYPE parley_messages_out_total counter');
    expect(sample(text, 'parley_command_duration_seconds_count', { command: 'send', transport: 'http' })).toBe(4);
    expect(sample(text, 'parley_command_duration_seconds_bucket', { command: 'send', transport: 'http', le: '+Inf' })).toBe(4);
    expect(sample(text, 'parley_errors_total', { code: 'not_found', transport: 'http' })).toBe(1);
    expect(sample(text, 'parley_errors_total', { code: 'unauthorized', transport: 'http' })).toBe(1);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    ws.close();
  });

  it('counts WebSocket commands, messages in and out, and bad frames', async () => {
    const token = await srv.token('wsm');
    const ws = await RawSocket.open(srv.wsUrl);
    ws.sendText('{oops');
    await ws.reply(null);
    expect((await ws.call({ id: 1, cmd: 'auth', token })).ok).toBe(true);
    const room = (await ws.call({ id: 2, cmd: 'create', kind: 'group', name: 'WS metrics' })).data as { id: string };
    const before = sample(await (await fetch(`${srv.url}/metrics`)).text(), 'parley_messages_out_total') ?? 0;
    for (let i = 0; i < 5; i++) expect((await ws.call({ id: 10 + i, cmd: 'send', room: room.id, text: `w${i}` })).ok).toBe(true);
    expect((await ws.call({ id: 20, cmd: 'send', room: 'nope', text: 'x' })).ok).toBe(false);
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    expect(sample(text, 'parley_messages_in_total', { transport: 'ws' })).toBe(5);
    expect(sample(text, 'parley_command_duration_seconds_count', { command: 'send', transport: 'ws' })).toBe(6);
    expect(sample(text, 'parley_errors_total', { code: 'not_found', transport: 'ws' })).toBe(1);
    expect(sample(text, 'parley_errors_total', { code: 'invalid', transport: 'ws' })).toBe(1);
    // The sender's own connection follows the room: each send is delivered to it once.
    expect(sample(text, 'parley_messages_out_total')! - before).toBe(5);
    ws.close();
  });
});
