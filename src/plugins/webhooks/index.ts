// The webhooks plugin: after a command succeeds, the event it stands for is queued for every
// endpoint that chose it, signed (HMAC-SHA256) and POSTed in the background with retries.
// The after hook only enqueues, so delivery to chat clients never waits on an endpoint.
import { randomUUID } from 'node:crypto';
import type { CommandName } from '../../protocol/schema.js';
import type { Hook, Notification } from '../../service/hooks.js';
import type { Plugin } from '../plugin.js';
import type { WebhookEvent, WebhooksConfig } from '../config.js';
import { WebhookDispatcher, type DeliveryReport } from './dispatcher.js';
import { CHAT21_EVENT_NAMES, chat21Body, eventOf, parleyBody, slackBody, type WebhookEventRecord } from './events.js';

const COMMANDS_OF: Record<WebhookEvent, CommandName[]> = {
  'message.sent': ['send'],
  'message.edited': ['edit'],
  'message.deleted': ['delete'],
  'message.reacted': ['react'],
  'member.joined': ['join', 'invite'],
  'member.left': ['leave'],
  'room.created': ['create'],
  notification: [],
};

export function webhooks(cfg: WebhooksConfig, opts: { onDelivery?: (r: DeliveryReport) => void } = {}): Plugin {
  let dispatcher: WebhookDispatcher | undefined;
  let appId = 'tilechat';
  const chat21 = cfg.eventNames === 'chat21';
  const endpoints = cfg.endpoints.map((e) => ({ ...e, events: new Set(e.events), rooms: e.rooms ? new Set(e.rooms) : undefined }));
  // Only the commands some endpoint listens to pass through this hook.
  const commands = [...new Set(cfg.endpoints.flatMap((e) => e.events.flatMap((ev) => COMMANDS_OF[ev])))];

  const publish = (e: WebhookEventRecord) => {
    const id = randomUUID();
    const ts = Date.now();
    let parley: string | undefined;
    let slack: string | undefined;
    for (const ep of endpoints) {
      if (!ep.events.has(e.event) || (ep.rooms && !ep.rooms.has(e.room))) continue;
      const body = ep.format === 'slack' ? (slack ??= slackBody(e))
        : (parley ??= chat21 ? chat21Body(e, appId, ts) : parleyBody(id, e, ts));
      dispatcher!.enqueue(ep, { id, event: chat21 ? CHAT21_EVENT_NAMES[e.event] : e.event, body });
    }
  };

  const notifications = cfg.endpoints.some((e) => e.events.includes('notification'));
  const hook: Hook = {
    name: 'webhooks',
    commands,
    after(ctx, outcome) {
      if (outcome.error || !dispatcher) return;
      const e = eventOf(ctx, outcome.result);
      if (e) publish(e);
    },
    // One event per notified message, naming every recipient and why.
    ...(notifications ? { notified(n: Notification) { if (dispatcher) publish({ event: 'notification', room: n.room, data: { ...n } }); } } : {}),
  };

  return {
    name: 'webhooks',
    hooks: commands.length > 0 || notifications ? [hook] : [],
    init(ctx) {
      appId = ctx.config.chat21?.appId ?? appId;
      dispatcher = new WebhookDispatcher(cfg, ctx.log.child({ plugin: 'webhooks' }), opts.onDelivery);
    },
    close: () => dispatcher?.close(),
  };
}

export { verifySignature, sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';
export type { DeliveryReport } from './dispatcher.js';
