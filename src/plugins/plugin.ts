// What a Parley plugin is: hooks around commands (the same public Hook API a user would use),
// listeners of the service's domain events, and, optionally, HTTP routes it administers itself
// (e.g. the word list). Built-in plugins live beside this file, one folder each.
import type Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Verifier } from '../auth/jwt.js';
import type { Store } from '../store/store.js';
import type { DomainEventSource } from '../service/events.js';
import type { Hook } from '../service/hooks.js';

/** What a node hands each plugin before it starts. */
export interface PluginContext {
  log: Logger;
  config: Config;
  store: Store;
  /** The SQLite handle when the node runs on SQLite, for plugins that keep their own tables. */
  db?: Database.Database;
  /** Verifies a bearer token (the same JWTs every transport accepts). */
  verify: Verifier;
  /**
   * What changed, once stored (a message, a member joined or left, a room created, updated or
   * deleted, a ban, a thread's summary): subscribe in `init`, unsubscribe in `close`.
   */
  events: DomainEventSource;
  /** Several nodes share this node's store: state a plugin caches must be re-read now and then. */
  shared?: boolean;
}

export interface Plugin {
  name: string;
  /** Called once before the node listens; `hooks` is read after it returns. */
  init?(ctx: PluginContext): void | Promise<void>;
  /** Registered with `service.hooks.use`, in order, after the hooks of earlier plugins. */
  hooks?: Hook[];
  /** Registers the plugin's routes; they are mounted under /api/v1 (see `requireAdmin`). */
  routes?(app: FastifyInstance): void | Promise<void>;
  /** Called on shutdown, after the transports stopped and before the store closes. */
  close?(): void | Promise<void>;
}
