// The webhooks plugin: each domain event an endpoint chose (a message stored, a member joined
// or left, a room created) is queued for that endpoint, signed (HMAC-SHA256) and POSTed in the
// background with retries. It subscribes to the service's domain events, so a change counts
// however it came about (a kick or a ban is a `member.left` too); the listener only enqueues,
// so delivery to chat clients never waits on an endpoint.
import { randomUUID } from 'node:crypto';
import { CHAT21_EVENT_NAMES, chat21Body } from '../../integrations/chat21/webhooks.js';
import type { Plugin } from '../plugin.js';
import type { WebhookEvent, WebhooksConfig } from '../config.js';
import { WebhookDispatcher, type DeliveryReport } from './dispatcher.js';
import {
  memberJoinedEvent, memberLeftEvent, messageEvent, parleyBody, roomCreatedEvent, slackBody, type WebhookEventRecord,
} from './events.js';

const MESSAGE_EVENTS: ReadonlySet<WebhookEvent> = new Set(['message.sent', 'message.edited', 'message.deleted', 'message.reacted']);

export function webhooks(cfg: WebhooksConfig, opts: { onDelivery?: (r: DeliveryReport) => void } = {}): Plugin {
  let dispatcher: WebhookDispatcher | undefined;
  const unsubscribe: Array<() => void> = [];
  const chat21 = cfg.eventNames === 'chat21';
  const endpoints = cfg.endpoints.map((e) => ({ ...e, events: new Set(e.events), rooms: e.rooms ? new Set(e.rooms) : undefined }));
  const chosen = new Set(cfg.endpoints.flatMap((e) => e.events));

  return {
    name: 'webhooks',
    init(ctx) {
      const appId = ctx.config.chat21?.appId ?? 'tilechat';
      const d = new WebhookDispatcher(cfg, ctx.log.child({ plugin: 'webhooks' }), opts.onDelivery);
      dispatcher = d;
      const publish = (e: WebhookEventRecord | null): void => {
        if (!e || !chosen.has(e.event)) return;
        const id = randomUUID();
        const ts = Date.now();
        let parley: string | undefined;
        let slack: string | undefined;
        for (const ep of endpoints) {
          if (!ep.events.has(e.event) || (ep.rooms && !ep.rooms.has(e.room))) continue;
          const body = ep.format === 'slack' ? (slack ??= slackBody(e))
            : (parley ??= chat21 ? chat21Body(e, appId, ts) : parleyBody(id, e, ts));
          d.enqueue(ep, { id, event: chat21 ? CHAT21_EVENT_NAMES[e.event] : e.event, body });
        }
      };
      // Only the events some endpoint listens to are followed.
      if ([...chosen].some((e) => MESSAGE_EVENTS.has(e))) unsubscribe.push(ctx.events.on('message.stored', (e) => publish(messageEvent(e))));
      if (chosen.has('room.created')) unsubscribe.push(ctx.events.on('room.created', (e) => publish(roomCreatedEvent(e))));
      if (chosen.has('member.joined')) unsubscribe.push(ctx.events.on('member.joined', (e) => publish(memberJoinedEvent(e))));
      if (chosen.has('member.left')) unsubscribe.push(ctx.events.on('member.left', (e) => publish(memberLeftEvent(e))));
    },
    close: async () => {
      for (const off of unsubscribe.splice(0)) off();
      await dispatcher?.close();
    },
  };
}

export { verifySignature, sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';
export type { DeliveryReport } from './dispatcher.js';
