// Public entry point for embedding Parley in a Node program.
export { createParley, type Parley } from './server.js';
export { loadConfig, validateConfig, ConfigError, type Config } from './config.js';
export { mintToken, createVerifier, type Identity } from './auth/jwt.js';
export { ParleyError, ErrorCodes, type ErrorCode } from './errors.js';
export type { Store } from './store/store.js';
export type { Bus, Presence } from './bus/bus.js';
export {
  Hooks,
  commandHook,
  messageValidator,
  HOOKED_COMMANDS,
  type Hook,
  type HookContext,
  type HookOutcome,
  type CommandHook,
  type CommandContext,
  type MessageDraft,
  type MessageValidator,
  type Notification,
} from './service/hooks.js';
export type { Plugin, PluginContext } from './plugins/plugin.js';
export type { DomainEventMap, DomainEventName, DomainEventSource, Actor, LeaveReason } from './service/events.js';
export { requireAdmin, adminOf, ADMIN_SECURITY, type AdminPrincipal } from './plugins/admin.js';
export { rateLimit, wordFilter, webhooks } from './plugins/index.js';
export { verifySignature, sign as signWebhook } from './plugins/webhooks/signature.js';
export type { RateCounter, BucketLimit } from './plugins/rate-limit/counter.js';
export { MemoryRateCounter } from './plugins/rate-limit/counter-memory.js';
export type { WordStore } from './plugins/word-filter/words.js';
export * from './protocol/schema.js';
