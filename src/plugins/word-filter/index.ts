// The word-filter plugin: messages (send and edit) containing a blocked word are rejected
// with `invalid` (details.reason "blocked_word") or have the word masked, by configuration.
// Blocked words come from the config and from a list administrators keep through
// GET/PUT/POST/DELETE /api/v1/admin/words.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ParleyError } from '../../errors.js';
import { messageValidator } from '../../service/hooks.js';
import type { Plugin, PluginContext } from '../plugin.js';
import type { WordFilterConfig } from '../config.js';
import { ADMIN_SECURITY as security, requireAdmin, scoped } from '../admin.js';
import { normalizeWord, WordMatcher } from './matcher.js';
import type { WordStore } from './words.js';
import { SqliteWordStore } from './words-sqlite.js';

/** How often a node of a cluster re-reads the shared word list. */
const RELOAD_MS = 2000;

/** The most words the administered list holds. */
export const MAX_WORDS = 10_000;

const Words = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000 });
const WordsBody = Type.Object({ words: Words }, { additionalProperties: false });
const WordList = Type.Object({
  words: Type.Array(Type.String(), { description: 'The list administered by API' }),
  config: Type.Array(Type.String(), { description: 'Words from the config file (read-only here)' }),
});
const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 413: ErrorBody };

function normalizeAll(words: string[]): string[] {
  const out = new Set<string>();
  for (const [i, w] of words.entries()) {
    const n = normalizeWord(w);
    if (n.error !== undefined) throw new ParleyError('invalid', `words.${i}: ${n.error}`, { field: `words.${i}` });
    out.add(n.word);
  }
  return [...out];
}

export function wordFilter(cfg: WordFilterConfig, opts: { store?: WordStore } = {}): Plugin {
  const fromConfig = normalizeAll(cfg.words);
  let store: WordStore | undefined = opts.store;
  let matcher = new WordMatcher(new Set(fromConfig));
  let ctx: PluginContext | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;

  const reload = async () => {
    matcher = new WordMatcher(new Set([...fromConfig, ...(await store!.list())]));
  };
  const listing = async () => ({ words: await store!.list(), config: fromConfig });

  const hook = messageValidator('word-filter', (m) => {
    if (matcher.size === 0) return;
    if (cfg.mode === 'mask') {
      const text = matcher.mask(m.text, cfg.mask);
      return text === null ? undefined : { text };
    }
    const word = matcher.find(m.text);
    if (word !== null) throw new ParleyError('invalid', 'the message contains a blocked word', { reason: 'blocked_word', word });
  });

  return {
    name: 'word-filter',
    hooks: [hook],
    async init(c) {
      ctx = c;
      if (!store) {
        if (!c.db) throw new Error('plugins.wordFilter needs the SQLite store or a WordStore');
        store = new SqliteWordStore(c.db);
      }
      await reload();
      // Other nodes change the shared list too: pick their changes up within a few seconds.
      if (c.shared) {
        poll = setInterval(() => {
          reload().catch((err: unknown) => c.log.warn({ err }, 'word list reload failed'));
        }, RELOAD_MS);
        poll.unref();
      }
    },
    close() {
      if (poll) clearInterval(poll);
    },
    routes(app: FastifyInstance) {
      if (!ctx) throw new Error('word-filter: routes() before init()');
      const log: Logger = ctx.log;
      const guard = requireAdmin({ verify: ctx.verify, apiKeys: ctx.config.api.keys });
      return scoped(app, (r) => {
        r.get(
          '/admin/words',
          {
            preHandler: guard,
            schema: { tags: ['admin'], summary: 'List the blocked words', security, response: { 200: WordList, ...errors } },
          },
          listing,
        );

        r.put(
          '/admin/words',
          {
            preHandler: guard,
            schema: { tags: ['admin'], summary: 'Replace the administered blocked words', security, body: WordsBody, response: { 200: WordList, ...errors } },
          },
          async (req) => {
            const words = normalizeAll((req.body as { words: string[] }).words);
            await store!.replace(words);
            await reload();
            log.info({ count: words.length }, 'blocked words replaced');
            return listing();
          },
        );

        r.post(
          '/admin/words',
          {
            preHandler: guard,
            schema: {
              tags: ['admin'],
              summary: 'Add blocked words (already listed ones are ignored)',
              security,
              body: WordsBody,
              response: { 200: WordList, ...errors },
            },
          },
          async (req) => {
            const words = normalizeAll((req.body as { words: string[] }).words);
            const have = new Set(await store!.list());
            const fresh = words.filter((w) => !have.has(w));
            if (have.size + fresh.length > MAX_WORDS) {
              throw new ParleyError('too_large', `the list holds at most ${MAX_WORDS} words`, { limit: MAX_WORDS });
            }
            await store!.add(fresh);
            await reload();
            log.info({ added: fresh.length }, 'blocked words added');
            return listing();
          },
        );

        r.delete(
          '/admin/words/:word',
          {
            preHandler: guard,
            schema: {
              tags: ['admin'],
              summary: 'Remove one blocked word',
              security,
              params: Type.Object({ word: Type.String({ minLength: 1, maxLength: 256 }) }),
              response: { 200: WordList, ...errors },
            },
          },
          async (req) => {
            const n = normalizeWord((req.params as { word: string }).word);
            if (n.error !== undefined) throw new ParleyError('invalid', `word: ${n.error}`, { field: 'word' });
            if (!(await store!.remove(n.word))) {
              const inConfig = fromConfig.includes(n.word);
              throw new ParleyError('not_found', inConfig ? 'the word comes from the config file; remove it there' : 'the word is not listed');
            }
            await reload();
            log.info({ word: n.word }, 'blocked word removed');
            return listing();
          },
        );
      });
    },
  };
}
