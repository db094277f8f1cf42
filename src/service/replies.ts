// Replies: a message may answer an earlier text message of its room (`replyTo: seq`) and
// carries a quote of it, taken when the reply is sent.
import { ParleyError } from '../errors.js';
import type { Message, Quote } from '../protocol/schema.js';
import type { Edit } from '../store/versions.js';

/** Characters of the target's text a quote keeps. */
export const QUOTE_CHARS = 120;

/**
 * The quote of a reply's target: its author and the first characters of its latest text, or
 * `deleted`. A target that is not a text message of the room (absent, another kind, hidden
 * from the sender) is `not_found`, and nothing is stored.
 */
export function quoteOf(target: Message | null, edits: readonly Edit[], deleted: boolean): Quote {
  if (!target || target.kind !== 'text') throw new ParleyError('not_found', 'replyTo: no text message with this seq in this room', { field: 'replyTo' });
  const quote: Quote = { user: target.user, name: target.name };
  if (deleted) {
    quote.deleted = true;
    return quote;
  }
  const text = edits.length > 0 ? edits[edits.length - 1]!.text : (target.text ?? '');
  quote.text = [...text].length > QUOTE_CHARS ? `${[...text].slice(0, QUOTE_CHARS).join('')}…` : text;
  return quote;
}
