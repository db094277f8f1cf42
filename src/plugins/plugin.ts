// What a Parley plugin is: hooks around commands (the same public Hook API a user would use)
// and, optionally, HTTP routes it administers itself (e.g. the word list). Built-in plugins
// live beside this file, one folder each.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Hook } from '../service/hooks.js';

export interface PluginContext {
  log: Logger;
}

export interface Plugin {
  name: string;
  hooks?: Hook[];
  /** Registers the plugin's routes under /api/v1 (called with an authenticated-admin guard available). */
  routes?(app: FastifyInstance): void | Promise<void>;
  close?(): void | Promise<void>;
}
