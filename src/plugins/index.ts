// Plugins of a node: the built-in ones the config file turns on, in a fixed order (rate
// limiter, word filter, webhooks), followed by plugins given in code. This module starts
// and stops them (the HTTP transport mounts their routes); it uses only the public Hook and
// Plugin APIs.
import type { Logger } from 'pino';
import type { Hooks } from '../service/hooks.js';
import type { PluginsConfig } from './config.js';
import type { Plugin, PluginContext } from './plugin.js';
import { rateLimit } from './rate-limit/index.js';
import { wordFilter } from './word-filter/index.js';
import { webhooks } from './webhooks/index.js';
import type { RateCounter } from './rate-limit/counter.js';
import type { WordStore } from './word-filter/words.js';

export type { Plugin, PluginContext } from './plugin.js';
export { rateLimit, wordFilter, webhooks };

/** The built-in plugins the `plugins` config section turns on, on the node's shared backends if any. */
export function builtinPlugins(cfg: PluginsConfig, shared: { rateCounter?: RateCounter; words?: WordStore } = {}): Plugin[] {
  const out: Plugin[] = [];
  // The rate limiter comes first so that a flood is refused before any other work.
  if (cfg.rateLimit?.enabled) out.push(rateLimit(cfg.rateLimit, { counter: shared.rateCounter }));
  if (cfg.wordFilter?.enabled) out.push(wordFilter(cfg.wordFilter, { store: shared.words }));
  if (cfg.webhooks?.enabled) out.push(webhooks(cfg.webhooks));
  return out;
}

/** Initialises the plugins in order, registering each one's hooks after the previous one's. */
export async function startPlugins(plugins: readonly Plugin[], hooks: Hooks, ctx: PluginContext): Promise<void> {
  const names = new Set<string>();
  for (const p of plugins) {
    if (names.has(p.name)) throw new Error(`two plugins are named "${p.name}"`);
    names.add(p.name);
    await p.init?.(ctx);
    if (p.hooks && p.hooks.length > 0) hooks.use(...p.hooks);
  }
}

/** Stops the plugins in reverse order; a failing one is logged and the others still stop. */
export async function closePlugins(plugins: readonly Plugin[], log: Logger): Promise<void> {
  for (const p of [...plugins].reverse()) {
    try {
      await p.close?.();
    } catch (err) {
      log.warn({ err, plugin: p.name }, 'plugin failed to close');
    }
  }
}
