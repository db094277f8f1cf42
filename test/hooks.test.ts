import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, RawSocket, startServer, waitFor, type TestServer } from './helpers.js';
import type { ClientError } from '../src/client/index.js';
import { ParleyError } from '../src/errors.js';
import { commandHook, Hooks, messageValidator, ownHook, type HookOutcome } from '../src/service/hooks.js';
import { READ_COMMANDS } from '../src/protocol/reads.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.close();
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: 'ok', details: undefined as Record<string, unknown> | undefined }),
    (e: ClientError) => ({ code: e.code, details: e.details }),
  );

/** A room of its own per test, with `a` as owner and `b` as member. */
async function room(prefix: string) {
  const a = await srv.client(`${prefix}-a`);
  const b = await srv.client(`${prefix}-b`);
  const r = await a.createRoom('group', prefix, { room: prefix });
  await a.invite(r.id, `${prefix}-b`);
  const seen = collect(b, r.id);
  return { a, b, id: r.id, seen };
}

describe("one connection's commands", () => {
  it('a slow read does not hold up the commands sent after it on the same connection', async () => {
    srv.parley.service.hooks.use({
      name: 'slow-history',
      commands: ['history'],
      async before(ctx) {
        if (ctx.args.room === 'slowread') await new Promise((r) => setTimeout(r, 1500));
      },
    });
    const { id } = await room('slowread');
    const ws = await RawSocket.open(srv.wsUrl);
    expect((await ws.call({ id: 'a', cmd: 'auth', token: await srv.token('slowread-a') })).ok).toBe(true);
    const t0 = Date.now();
    ws.sendText(JSON.stringify({ id: 'h', cmd: 'history', room: id }));
    ws.sendText(JSON.stringify({ id: 'p', cmd: 'ping' }));
    ws.sendText(JSON.stringify({ id: 's', cmd: 'send', room: id, text: 'not held up' }));
    expect((await ws.reply('p')).ok).toBe(true);
    expect((await ws.reply('s')).ok).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect((await ws.reply('h')).ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    ws.close();
  });

  it('every read lets the commands after it start at once', async () => {
    const user = 'slowreads-a';
    srv.parley.service.hooks.use({
      name: 'slow-reads',
      commands: [...READ_COMMANDS],
      async before(ctx) {
        if (ctx.user.id === user) await new Promise((r) => setTimeout(r, 1500));
      },
    });
    const a = await srv.client(user);
    const r = await a.createRoom('group', 'slowreads', { room: 'slowreads' });
    const { seq } = await a.send(r.id, 'read me');
    const args: Record<string, Record<string, unknown>> = {
      history: { room: r.id },
      message: { room: r.id, seq },
      rooms: {},
      room: { room: r.id },
      members: { room: r.id },
      presence: { room: r.id },
      inbox: {},
      search: { query: 'read' },
      bans: { room: r.id },
      accessList: { room: r.id, list: 'black' },
      blocks: {},
      pins: { room: r.id },
      versions: { room: r.id, seq },
    };
    expect(Object.keys(args).sort()).toEqual([...READ_COMMANDS].sort());
    const token = await srv.token(user);
    const timings = await Promise.all(
      Object.entries(args).map(async ([cmd, a]) => {
        const ws = await RawSocket.open(srv.wsUrl);
        expect((await ws.call({ id: 'a', cmd: 'auth', token })).ok).toBe(true);
        const t0 = Date.now();
        ws.sendText(JSON.stringify({ id: 'r', cmd, ...a }));
        ws.sendText(JSON.stringify({ id: 'p', cmd: 'ping' }));
        expect((await ws.reply('p')).ok).toBe(true);
        const ping = Date.now() - t0;
        const read = await ws.reply('r');
        const took = Date.now() - t0;
        ws.close();
        return { cmd, ping, readOk: read.ok, slow: took >= 1400 };
      }),
    );
    for (const t of timings) expect(t, t.cmd).toMatchObject({ readOk: true, slow: true });
    expect(timings.filter((t) => t.ping >= 1000).map((t) => t.cmd)).toEqual([]);
  });
});

describe('before hooks', () => {
  it('rewrite a command in registration order; members receive and history keeps the rewritten text', async () => {
    srv.parley.service.hooks.use(
      commandHook({ name: 'one', commands: ['send'], before: (ctx) => (ctx.args.room === 'rw' ? { ...ctx.args, text: ctx.args.text + '+1' } : undefined) }),
      commandHook({ name: 'two', commands: ['send'], before: (ctx) => (ctx.args.room === 'rw' ? { ...ctx.args, text: ctx.args.text + '+2' } : undefined) }),
    );
    const { a, id, seen } = await room('rw');
    const r = await a.send(id, 'hi');
    await waitFor(() => seen.some((m) => m.seq === r.seq));
    expect(seen.find((m) => m.seq === r.seq)!.text).toBe('hi+1+2');
    expect((await a.history(id, { after: r.seq - 1 })).messages[0]!.text).toBe('hi+1+2');
  });

  it('reject a command with their coded error and nothing is stored', async () => {
    srv.parley.service.hooks.use({
      name: 'no-links',
      commands: ['send'],
      before(ctx) {
        if (ctx.args.room === 'rj' && /https?:\/\//.test(String(ctx.args.text))) {
          throw new ParleyError('forbidden', 'links are not allowed here', { reason: 'link' });
        }
      },
    });
    const { a, id, seen } = await room('rj');
    const before = (await a.history(id)).last;
    expect(await failure(a.send(id, 'see http://example.test'))).toEqual({ code: 'forbidden', details: { reason: 'link' } });
    expect((await a.history(id)).last).toBe(before);
    const ok = await a.send(id, 'no link');
    expect(ok.seq).toBe(before + 1);
    await waitFor(() => seen.some((m) => m.seq === ok.seq));
    expect(seen.filter((m) => m.kind === 'text').map((m) => m.text)).toEqual(['no link']);
  });

  it('cannot hand the service malformed arguments: a bad rewrite is invalid and stores nothing', async () => {
    srv.parley.service.hooks.use({
      name: 'breaks-things',
      commands: ['send'],
      before(ctx) {
        if (ctx.args.room !== 'bad') return;
        if (ctx.args.text === 'number') return { ...ctx.args, text: 42 };
        if (ctx.args.text === 'empty') return { ...ctx.args, text: '' };
        if (ctx.args.text === 'extra') return { ...ctx.args, admin: true };
        if (ctx.args.text === 'mutate') ctx.args.room = '../etc';
        if (ctx.args.text === 'bug') throw new TypeError('plugin bug');
      },
    });
    const { a, id } = await room('bad');
    const before = (await a.history(id)).last;
    expect(await failure(a.send(id, 'number'))).toEqual({ code: 'invalid', details: { field: 'text' } });
    expect(await failure(a.send(id, 'empty'))).toEqual({ code: 'invalid', details: { field: 'text' } });
    expect(await failure(a.send(id, 'extra'))).toEqual({ code: 'invalid', details: { field: 'admin' } });
    expect(await failure(a.send(id, 'mutate'))).toEqual({ code: 'invalid', details: { field: 'room' } });
    expect((await failure(a.send(id, 'bug'))).code).toBe('internal');
    expect((await a.history(id)).last).toBe(before);
    expect((await a.send(id, 'fine')).seq).toBe(before + 1);
  });

  it('cannot bypass permission checks by rewriting the room', async () => {
    const other = await srv.client('perm-owner');
    await other.createRoom('group', 'private', { room: 'perm-private' });
    srv.parley.service.hooks.use(
      commandHook({
        name: 'redirect',
        commands: ['send'],
        before: (ctx) => (ctx.args.room === 'perm' ? { ...ctx.args, room: 'perm-private' } : undefined),
      }),
    );
    const { a, id } = await room('perm');
    expect((await failure(a.send(id, 'sneak'))).code).toBe('forbidden');
    expect((await other.history('perm-private')).last).toBe(1);
  });
});

describe('after hooks', () => {
  it('see the result of a success and the error of a failure, including rejections by before hooks', async () => {
    const outcomes: Array<{ cmd: string; text: unknown; seq?: number; code?: string }> = [];
    srv.parley.service.hooks.use(
      {
        name: 'gate',
        commands: ['send'],
        before(ctx) {
          if (ctx.args.text === 'blocked by gate') throw new ParleyError('forbidden', 'gate');
        },
      },
      commandHook({
        name: 'audit',
        commands: ['send'],
        after(ctx, o: HookOutcome<{ seq: number }>) {
          if (!String(ctx.args.room).startsWith('aft')) return;
          outcomes.push({ cmd: ctx.cmd, text: ctx.args.text, ...(o.result ? { seq: o.result.seq } : {}), ...(o.error ? { code: o.error.code } : {}) });
        },
      }),
      {
        name: 'throws',
        commands: ['send'],
        after() {
          throw new Error('after hooks cannot break a command');
        },
      },
    );
    const { a, id } = await room('aft');
    const r = await a.send(id, 'hello');
    expect((await failure(a.send(id, 'blocked by gate'))).code).toBe('forbidden');
    await srv.client('aft-outsider').then((o) => failure(o.send(id, 'not a member')));
    expect(outcomes).toEqual([
      { cmd: 'send', text: 'hello', seq: r.seq },
      { cmd: 'send', text: 'blocked by gate', code: 'forbidden' },
      { cmd: 'send', text: 'not a member', code: 'forbidden' },
    ]);
  });

  it('run only on the commands they name', async () => {
    const cmds: string[] = [];
    srv.parley.service.hooks.use({
      name: 'edits-only',
      commands: ['edit'],
      after(ctx) {
        if (ctx.args.room === 'only') cmds.push(ctx.cmd);
      },
    });
    const { a, id } = await room('only');
    const m = await a.send(id, 'x');
    await a.typing(id);
    await a.edit(id, m.seq, 'y');
    expect(cmds).toEqual(['edit']);
  });
});

describe('message validator hook', () => {
  it('rejects messages of a custom format with invalid and normalises accepted ones', async () => {
    srv.parley.service.hooks.use(
      messageValidator('json-cards', (m) => {
        if (!m.room.startsWith('card')) return;
        let card: unknown;
        try {
          card = JSON.parse(m.text);
        } catch {
          throw new ParleyError('invalid', 'a card is a JSON object', { reason: 'card_format' });
        }
        if (!card || typeof card !== 'object' || typeof (card as { title?: unknown }).title !== 'string') {
          throw new ParleyError('invalid', 'a card needs a title', { reason: 'card_format' });
        }
        const title = (card as { title: string }).title.trim();
        return m.cmd === 'send' ? { text: title, data: { card: { title } } } : { text: title };
      }),
    );
    const { a, id, seen } = await room('card');
    const before = (await a.history(id)).last;
    expect(await failure(a.send(id, 'plain text'))).toEqual({ code: 'invalid', details: { reason: 'card_format' } });
    expect(await failure(a.send(id, '{"body":"x"}'))).toEqual({ code: 'invalid', details: { reason: 'card_format' } });
    expect((await a.history(id)).last).toBe(before);
    const r = await a.send(id, '{"title":"  Release 1.0  "}');
    await waitFor(() => seen.some((m) => m.seq === r.seq));
    expect(seen.find((m) => m.seq === r.seq)).toMatchObject({ text: 'Release 1.0', data: { card: { title: 'Release 1.0' } } });
    const e = await a.edit(id, r.seq, '{"title":"Release 1.1 "}');
    await waitFor(() => seen.some((m) => m.seq === e.seq));
    expect(seen.find((m) => m.seq === e.seq)).toMatchObject({ kind: 'edit', text: 'Release 1.1', target: r.seq });
    expect((await failure(a.edit(id, r.seq, 'not a card'))).code).toBe('invalid');
  });
});

describe('Hooks registry', () => {
  it('refuses malformed hooks at registration and reports which commands have hooks', () => {
    const h = new Hooks();
    expect(h.has('send')).toBe(false);
    expect(() => h.use({ name: '', before() {} })).toThrow(/name/);
    expect(() => h.use({ name: 'x' })).toThrow(/neither/);
    expect(() => h.use({ name: 'x', commands: ['auth'], before() {} })).toThrow(/not a command/);
    h.use({ name: 'x', commands: ['send'], before() {} });
    expect(h.has('send')).toBe(true);
    expect(h.has('typing')).toBe(false);
    h.use({ name: 'all', after() {} });
    expect(h.has('typing')).toBe(true);
  });

  it('run() wraps a command the way Service.exec does, and skips everything for unhooked commands', async () => {
    const h = new Hooks();
    const user = { id: 'u', name: 'u', profile: {}, admin: false };
    const seen: string[] = [];
    h.use(
      { name: 'up', commands: ['send'], before: (ctx) => ({ ...ctx.args, text: String(ctx.args.text).toUpperCase() }) },
      {
        name: 'no',
        commands: ['send'],
        before: (ctx) => {
          if (ctx.args.text === 'NO') throw new ParleyError('forbidden', 'no');
        },
      },
      {
        name: 'log',
        commands: ['send'],
        after: (_ctx, o) => {
          seen.push(o.error ? o.error.code : String((o.result as { text: string }).text));
        },
      },
    );
    const command = async (args: Record<string, unknown>) => ({ text: args.text });
    const toError = (e: unknown) => (e instanceof ParleyError ? e : new ParleyError('internal'));
    const onError = () => undefined;
    expect(await h.run({ cmd: 'send', user, args: { room: 'r', text: 'hi' } }, command, toError, onError)).toEqual({ text: 'HI' });
    await expect(h.run({ cmd: 'send', user, args: { room: 'r', text: 'no' } }, command, toError, onError)).rejects.toMatchObject({ code: 'forbidden' });
    const typing = { room: 'r', text: 'untouched' };
    expect(await h.run({ cmd: 'typing', user, args: typing }, async (a) => a, toError, onError)).toBe(typing);
    expect(seen).toEqual(['HI', 'forbidden']);
  });
  it('runs hooks that answer at once and hooks that answer later in order, and validates what any of them may have changed', async () => {
    const user = { id: 'u', name: 'u', profile: {}, admin: false };
    const order: string[] = [];
    const command = async (args: Record<string, unknown>) => args;
    const toError = (e: unknown) => (e instanceof ParleyError ? e : new ParleyError('internal'));
    const failures: string[] = [];
    const onError = (h: { name: string }) => failures.push(h.name);
    const h = new Hooks();
    h.use(
      ownHook({ name: 'own-sync', commands: ['send'], before: () => void order.push('own-sync') }),
      {
        name: 'later',
        commands: ['send'],
        before: async (ctx) => {
          await new Promise((r) => setTimeout(r, 5));
          order.push('later');
          return { ...ctx.args, text: `${String(ctx.args.text)}!` };
        },
      },
      ownHook({ name: 'own-again', commands: ['send'], before: () => void order.push('own-again') }),
      {
        name: 'after-throws',
        commands: ['send'],
        after: () => {
          throw new Error('sync');
        },
      },
      {
        name: 'after-rejects',
        commands: ['send'],
        after: async () => {
          throw new Error('async');
        },
      },
      { name: 'after-sees', commands: ['send'], after: (_c, o) => void order.push(`after:${String((o.result as { text: string }).text)}`) },
    );
    expect(await h.run({ cmd: 'send', user, args: { room: 'r', text: 'hi' } }, command, toError, onError)).toEqual({ room: 'r', text: 'hi!' });
    expect(order).toEqual(['own-sync', 'later', 'own-again', 'after:hi!']);
    expect(failures).toEqual(['after-throws', 'after-rejects']);
    // A rewrite by a hook that answers later is validated like any other.
    const bad = new Hooks();
    bad.use({ name: 'bad-later', commands: ['send'], before: async (ctx) => ({ ...ctx.args, text: 7 }) });
    await expect(bad.run({ cmd: 'send', user, args: { room: 'r', text: 'x' } }, command, toError, onError)).rejects.toMatchObject({ code: 'invalid' });
    // Only the server's own hooks ran and none returned arguments: the validated arguments go
    // through as they are (the same object), without a second validation.
    const own = new Hooks();
    own.use(ownHook({ name: 'limiter', commands: ['send'], before: () => undefined }));
    const args = { room: 'r', text: 'x' };
    expect(await own.run({ cmd: 'send', user, args }, command, toError, onError)).toBe(args);
    // A hook of the server's own that returns new arguments has them validated.
    const ownBad = new Hooks();
    ownBad.use(ownHook({ name: 'own-rewrite', commands: ['send'], before: (ctx) => ({ ...ctx.args, extra: 1 }) }));
    await expect(ownBad.run({ cmd: 'send', user, args }, command, toError, onError)).rejects.toMatchObject({ code: 'invalid' });
  });
});
