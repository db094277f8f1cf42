// Pins and edit history: the rules on which messages can be pinned, and a message's versions.
import { ParleyError } from '../errors.js';
import type { Message, Version } from '../protocol/schema.js';
import type { Edit } from '../store/versions.js';

/** Pins a room may hold at once. */
export const MAX_PINS = 50;

/** Only a text message that is still there (not deleted) can be pinned. */
export function checkPinnable(m: Message | null, deleted: boolean): void {
  if (!m || m.kind !== 'text') throw new ParleyError('not_found', 'no text message with this seq in this room', { field: 'seq' });
  if (deleted) throw new ParleyError('conflict', 'this message was deleted');
}

/** The versions of a text message: the original first, then every edit in order. */
export function versionsOf(m: Message | null, edits: readonly Edit[]): Version[] {
  if (!m || m.kind !== 'text') throw new ParleyError('not_found', 'no text message with this seq in this room', { field: 'seq' });
  return [{ seq: m.seq, text: m.text ?? '', ts: m.ts }, ...edits.map((e) => ({ seq: e.seq, text: e.text, ts: e.ts }))];
}
