// Which commands only read, shared by the server and the SDK (no dependencies: the SDK runs in
// browsers). The server lets a connection's next commands start as soon as one of these
// begins (it changes nothing they could depend on); the SDK asks one again after a refusal
// that says "later".
import type { CommandName } from './schema.js';

export const READ_COMMANDS: ReadonlySet<CommandName> = new Set<CommandName>([
  'history',
  'message',
  'rooms',
  'room',
  'members',
  'presence',
  'inbox',
  'search',
  'bans',
  'accessList',
  'blocks',
  'pins',
  'versions',
]);
