// Public entry point for embedding Parley in a Node program.
export { createParley, type Parley } from './server.js';
export { loadConfig, validateConfig, ConfigError, type Config } from './config.js';
export { mintToken, createVerifier, type Identity } from './auth/jwt.js';
export { ParleyError, ErrorCodes, type ErrorCode } from './errors.js';
export type { Store } from './store/store.js';
export type { Bus, Presence } from './bus/bus.js';
export type { Hook, HookContext } from './service/hooks.js';
export * from './protocol/schema.js';
