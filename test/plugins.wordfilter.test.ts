import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startServer, waitFor, type TestServer } from './helpers.js';
import type { ClientError } from '../src/client/index.js';
import { mintToken } from '../src/auth/jwt.js';

const API_KEY = 'test-api-key-0123456789';
let reject: TestServer;
let mask: TestServer;
beforeAll(async () => {
  [reject, mask] = await Promise.all([
    startServer({ api: { keys: [API_KEY] }, plugins: { wordFilter: { words: ['darn', 'SCHÖNE', '傻瓜'] } } }),
    startServer({ plugins: { wordFilter: { mode: 'mask', words: ['darn', 'heck'] } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([reject?.close(), mask?.close()]);
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: 'ok', details: undefined as Record<string, unknown> | undefined }),
    (e: ClientError) => ({ code: e.code, details: e.details }),
  );

async function pair(srv: TestServer, prefix: string) {
  const a = await srv.client(`${prefix}-a`);
  const b = await srv.client(`${prefix}-b`);
  const r = await a.createRoom('group', prefix);
  await a.invite(r.id, `${prefix}-b`);
  const all = collect(b, r.id);
  return {
    a,
    b,
    id: r.id,
    seen: {
      get texts() {
        return all.filter((m) => m.kind === 'text');
      },
    },
  };
}

async function api(srv: TestServer, method: string, path: string, opts: { token?: string; key?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.key) headers['x-api-key'] = opts.key;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(srv.url + '/api/v1' + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('word filter, reject mode', () => {
  it('refuses a message with a blocked word (whole word, any case, any script) and stores nothing', async () => {
    const { a, id, seen } = await pair(reject, 'wf');
    const before = (await a.history(id)).last;
    const blocked = ['DARN it', 'oh, darn.', 'so Schöne', 'so scho\u0308ne', '你是傻瓜吗', 'x_ darn _y'];
    for (const text of blocked) {
      expect(await failure(a.send(id, text)), text).toMatchObject({ code: 'invalid', details: { reason: 'blocked_word' } });
    }
    expect((await a.history(id)).last).toBe(before);
    // Words that merely contain a blocked word pass.
    const allowed = ['darned', 'undarn', 'darn_it', 'schönes', '傻'];
    for (const text of allowed) await a.send(id, text);
    await waitFor(() => seen.texts.length === allowed.length);
    expect(seen.texts.map((m) => m.text)).toEqual(allowed);
  });

  it('applies to edits too', async () => {
    const { a, id } = await pair(reject, 'wfe');
    const m = await a.send(id, 'fine');
    expect((await failure(a.edit(id, m.seq, 'darn'))).details).toEqual({ reason: 'blocked_word', word: 'darn' });
    expect((await a.history(id)).last).toBe(m.seq);
  });
});

describe('word filter, mask mode', () => {
  it('replaces blocked words with **** and keeps the rest of the message', async () => {
    const { a, id, seen } = await pair(mask, 'wm');
    const r = await a.send(id, 'What the Heck, DARN! darned heckle');
    await waitFor(() => seen.texts.length === 1);
    expect(seen.texts[0]!.text).toBe('What the ****, ****! darned heckle');
    expect((await a.history(id, { after: r.seq - 1 })).messages[0]!.text).toBe('What the ****, ****! darned heckle');
    const e = await a.edit(id, r.seq, 'heck no');
    expect((await a.history(id, { after: e.seq - 1 })).messages[0]!.text).toBe('**** no');
  });
});

describe('word list administered by API', () => {
  it('needs credentials, and an administrator', async () => {
    const user = await mintToken(reject.config, 'plain-user');
    expect(await api(reject, 'GET', '/admin/words')).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
    expect(await api(reject, 'GET', '/admin/words', { token: 'not.a.jwt' })).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
    expect(await api(reject, 'GET', '/admin/words', { key: 'wrong-key-0123456789' })).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
    expect(await api(reject, 'GET', '/admin/words', { token: user })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect(await api(reject, 'POST', '/admin/words', { token: user, body: { words: ['sneaky'] } })).toMatchObject({ status: 403 });
    expect(await api(reject, 'DELETE', '/admin/words/darn', { token: user })).toMatchObject({ status: 403 });
    expect((await api(reject, 'GET', '/admin/words', { key: API_KEY })).body.words).not.toContain('sneaky');
  });

  it('lets an administrator add, list, replace and remove words, taking effect at once', async () => {
    const admin = await mintToken(reject.config, 'boss', { admin: true });
    const { a, id } = await pair(reject, 'wfapi');
    expect(await api(reject, 'GET', '/admin/words', { token: admin })).toEqual({
      status: 200,
      body: { words: [], config: ['darn', 'schöne', '傻瓜'] },
    });
    expect(await api(reject, 'POST', '/admin/words', { token: admin, body: { words: ['Heck', 'gosh', 'heck'] } })).toEqual({
      status: 200,
      body: { words: ['gosh', 'heck'], config: ['darn', 'schöne', '傻瓜'] },
    });
    expect((await failure(a.send(id, 'HECK yes'))).code).toBe('invalid');

    expect((await api(reject, 'PUT', '/admin/words', { key: API_KEY, body: { words: ['blimey'] } })).body.words).toEqual(['blimey']);
    await a.send(id, 'heck yes');
    expect((await failure(a.send(id, 'blimey'))).code).toBe('invalid');

    expect((await api(reject, 'DELETE', '/admin/words/BLIMEY', { token: admin })).body.words).toEqual([]);
    await a.send(id, 'blimey');
    expect(await api(reject, 'DELETE', '/admin/words/blimey', { token: admin })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await api(reject, 'DELETE', '/admin/words/darn', { token: admin })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });

  it('validates what it is given', async () => {
    const admin = await mintToken(reject.config, 'boss', { admin: true });
    const bad = async (body: unknown) => api(reject, 'POST', '/admin/words', { token: admin, body });
    expect(await bad({ words: ['two words'] })).toMatchObject({ status: 400, body: { error: { code: 'invalid', details: { field: 'words.0' } } } });
    expect(await bad({ words: [''] })).toMatchObject({ status: 400, body: { error: { code: 'invalid' } } });
    expect(await bad({ words: 'darn' })).toMatchObject({ status: 400, body: { error: { code: 'invalid' } } });
    expect(await bad({})).toMatchObject({ status: 400, body: { error: { code: 'invalid' } } });
    expect(await bad({ words: ['x'.repeat(65)] })).toMatchObject({ status: 400, body: { error: { code: 'invalid' } } });
    const notJson = await fetch(reject.url + '/api/v1/admin/words', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: '{"words": [',
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { code: string } }).error.code).toBe('invalid');
    expect((await api(reject, 'GET', '/admin/words', { token: admin })).body.words).not.toContain('two words');
  });
});
