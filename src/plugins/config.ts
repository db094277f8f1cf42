// The `plugins` section of the configuration: one TypeBox schema per built-in plugin. A
// plugin runs when its section is present (and `enabled` is not false). Checks that a schema
// cannot express return the bad key, so config.ts reports them like every other key.
import { Type, type Static } from '@sinclair/typebox';
import { ROOM_ID_PATTERN } from '../protocol/schema.js';
import { HOOKED_COMMANDS } from '../service/hooks.js';
import { normalizeWord } from './word-filter/matcher.js';

const Int = (def: number, min: number, max: number, description: string) => Type.Integer({ default: def, minimum: min, maximum: max, description });
const Enabled = Type.Boolean({ default: true, description: 'Set false to keep the section but turn the plugin off' });

const Limit = Type.Object(
  {
    rate: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, description: 'Tokens added per second (may be fractional, e.g. 0.5)' }),
    burst: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Bucket size: the most commands accepted at once' }),
  },
  { additionalProperties: false },
);

/**
 * The rate limiter is on unless turned off (`enabled: false`): one user sends about 10
 * messages a second, 50 at once. A section written in the config keeps this per-user limit
 * unless it sets `user` itself. Searches draw on a budget of their own, 10 at once and two a
 * second after that, whatever `commands` lists: a search costs the node far more than a send.
 * So do "typing" frames (10 at once, two a second), which are fanned out to every member; a
 * "stopped" frame takes no token, since the typing gate forwards one only after a "typing".
 */
export const RATE_LIMIT_DEFAULT = { user: { rate: 10, burst: 50 }, search: { rate: 2, burst: 10 }, typing: { rate: 2, burst: 10 } } as const;

export const RateLimitConfig = Type.Object(
  {
    enabled: Enabled,
    user: Type.Optional(Limit),
    room: Type.Optional(Limit),
    search: Type.Union([Limit, Type.Null()], {
      default: RATE_LIMIT_DEFAULT.search,
      description: 'Per-user budget of `search`, separate from `user` (null: searches are not limited)',
    }),
    typing: Type.Union([Limit, Type.Null()], {
      default: RATE_LIMIT_DEFAULT.typing,
      description: 'Per-user budget of `typing` frames that say the user is typing, separate from `user` (null: not limited)',
    }),
    commands: Type.Array(Type.Union(HOOKED_COMMANDS.map((c) => Type.Literal(c))), {
      // `direct` creates a room on first use and counts against no room cap.
      default: ['send', 'edit', 'react', 'direct'],
      minItems: 1,
      description: 'Commands that take a token',
    }),
    exemptAdmins: Type.Boolean({ default: true, description: 'Administrator tokens (server-side applications) are not limited' }),
  },
  { additionalProperties: false, default: RATE_LIMIT_DEFAULT },
);

export const WordFilterConfig = Type.Object(
  {
    enabled: Enabled,
    mode: Type.Union([Type.Literal('reject'), Type.Literal('mask')], {
      default: 'reject',
      description: 'reject: the message is refused (invalid, details.reason blocked_word); mask: the word is replaced',
    }),
    words: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      maxItems: 10_000,
      description: 'Blocked words in addition to those administered by API',
    }),
    mask: Type.String({ default: '****', minLength: 1, maxLength: 16, description: 'What a blocked word becomes in mask mode' }),
  },
  { additionalProperties: false },
);

export const WEBHOOK_EVENTS = [
  'message.sent',
  'message.edited',
  'message.deleted',
  'message.reacted',
  'member.joined',
  'member.left',
  'room.created',
  'notification',
  'thread.updated',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

const WebhookEndpoint = Type.Object(
  {
    url: Type.String({ pattern: '^https?://', description: 'Where deliveries are POSTed' }),
    secret: Type.Optional(Type.String({ minLength: 16, description: 'HMAC-SHA256 key for X-Parley-Signature (required for format parley)' })),
    events: Type.Array(Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e))), { minItems: 1, description: 'Events delivered to this URL' }),
    format: Type.Union([Type.Literal('parley'), Type.Literal('slack')], {
      default: 'parley',
      description: 'parley: {id, event, ts, data}; slack: an incoming-webhook {"text"} body',
    }),
    rooms: Type.Optional(Type.Array(Type.String({ pattern: ROOM_ID_PATTERN }), { description: 'Only events of these rooms (all when absent)' })),
  },
  { additionalProperties: false },
);

export const WebhooksConfig = Type.Object(
  {
    enabled: Enabled,
    eventNames: Type.Union([Type.Literal('parley'), Type.Literal('chat21')], {
      default: 'parley',
      description: "chat21: deliveries of format parley use Chat21's event names and envelope {event_type, createdAt, app_id, recipient_id, message_id, data}",
    }),
    endpoints: Type.Array(WebhookEndpoint, { default: [], maxItems: 100 }),
    timeoutMs: Int(5000, 100, 60_000, 'An attempt that has no response by then has failed'),
    maxAttempts: Int(5, 1, 20, 'Attempts per delivery, the first included'),
    backoffMs: Int(1000, 10, 600_000, 'Wait before the first retry; doubles with each retry'),
    maxBackoffMs: Int(60_000, 10, 3_600_000, 'Longest wait between attempts'),
    concurrency: Int(4, 1, 64, 'Deliveries in flight per endpoint'),
    queueSize: Int(10_000, 1, 1_000_000, 'Deliveries waiting per endpoint; new ones are dropped beyond it'),
  },
  { additionalProperties: false },
);

export const PluginsConfig = Type.Object(
  {
    rateLimit: Type.Optional(RateLimitConfig),
    wordFilter: Type.Optional(WordFilterConfig),
    webhooks: Type.Optional(WebhooksConfig),
  },
  { default: {}, additionalProperties: false },
);

export type RateLimitConfig = Static<typeof RateLimitConfig>;
export type WordFilterConfig = Static<typeof WordFilterConfig>;
export type WebhooksConfig = Static<typeof WebhooksConfig>;
export type WebhookEndpointConfig = Static<typeof WebhookEndpoint>;
export type PluginsConfig = Static<typeof PluginsConfig>;

/** Checks beyond the schema; returns the bad key and why, or null. */
export function checkPlugins(p: PluginsConfig): { key: string; message: string } | null {
  const wf = p.wordFilter;
  if (wf) {
    for (const [i, w] of wf.words.entries()) {
      const bad = normalizeWord(w).error;
      if (bad) return { key: `plugins.wordFilter.words.${i}`, message: bad };
    }
  }
  const wh = p.webhooks;
  if (wh) {
    if (wh.maxBackoffMs < wh.backoffMs) return { key: 'plugins.webhooks.maxBackoffMs', message: 'must be at least backoffMs' };
    for (const [i, e] of wh.endpoints.entries()) {
      try {
        new URL(e.url);
      } catch {
        return { key: `plugins.webhooks.endpoints.${i}.url`, message: 'not a valid URL' };
      }
      if (e.format === 'parley' && !e.secret) {
        return { key: `plugins.webhooks.endpoints.${i}.secret`, message: 'required for format "parley": deliveries are signed with it' };
      }
    }
  }
  return null;
}
