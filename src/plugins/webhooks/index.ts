// The webhooks plugin: each domain event an endpoint chose (a message stored, a member joined
// or left, a room created, a thread's summary changed) is queued for that endpoint, signed (HMAC-SHA256) and POSTed in the
// background with retries. It subscribes to the service's domain events, so a change counts
// however it came about (a kick or a ban is a `member.left` too); the listener only enqueues,
// so delivery to chat clients never waits on an endpoint.
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CHAT21_EVENT_NAMES, chat21Body } from '../../integrations/chat21/webhooks.js';
import type { Plugin, PluginContext } from '../plugin.js';
import { ADMIN_SECURITY as security, requireAdmin, scoped } from '../admin.js';
import type { Notification } from '../../service/hooks.js';
import type { WebhookEvent, WebhooksConfig } from '../config.js';
import { endpointOrigin, WebhookDispatcher, type DeliveryReport } from './dispatcher.js';
import {
  memberJoinedEvent,
  memberLeftEvent,
  messageEvent,
  parleyBody,
  roomCreatedEvent,
  slackBody,
  threadUpdatedEvent,
  type WebhookEventRecord,
} from './events.js';

const Time = Type.Union([Type.Integer(), Type.Null()]);
const WebhookStatus = Type.Object(
  {
    endpoints: Type.Array(
      Type.Object({
        origin: Type.String({ description: 'Scheme, host and port of the endpoint (its path may hold a secret)' }),
        format: Type.String(),
        events: Type.Array(Type.String()),
        pending: Type.Integer({ description: 'Queued, in flight or waiting for a retry' }),
        delivered: Type.Integer(),
        failed: Type.Integer(),
        dropped: Type.Integer({ description: 'Dropped because the queue was full' }),
        lastDeliveredAt: Time,
        lastFailedAt: Time,
        lastError: Type.Union([Type.String(), Type.Null()]),
      }),
    ),
  },
  { description: 'Deliveries of this node since it started, per configured endpoint' },
);
const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
});

const MESSAGE_EVENTS: ReadonlySet<WebhookEvent> = new Set(['message.sent', 'message.edited', 'message.deleted', 'message.reacted']);

export function webhooks(cfg: WebhooksConfig, opts: { onDelivery?: (r: DeliveryReport) => void } = {}): Plugin {
  let dispatcher: WebhookDispatcher | undefined;
  const unsubscribe: Array<() => void> = [];
  let ctx: PluginContext | undefined;
  let publish: ((e: WebhookEventRecord | null) => void) | undefined;
  const chat21 = cfg.eventNames === 'chat21';
  const endpoints = cfg.endpoints.map((e) => ({ ...e, events: new Set(e.events), rooms: e.rooms ? new Set(e.rooms) : undefined }));
  const chosen = new Set(cfg.endpoints.flatMap((e) => e.events));

  return {
    name: 'webhooks',
    // Notifications come from the service's notified hook: one event per notified message,
    // naming every recipient and why.
    hooks: chosen.has('notification')
      ? [{ name: 'webhooks', notified: (n: Notification) => publish?.({ event: 'notification', room: n.room, data: { ...n } }) }]
      : [],
    init(c) {
      ctx = c;
      const appId = c.config.chat21?.appId ?? 'tilechat';
      const d = new WebhookDispatcher(cfg, c.log.child({ plugin: 'webhooks' }), opts.onDelivery);
      dispatcher = d;
      const pub = (e: WebhookEventRecord | null): void => {
        if (!e || !chosen.has(e.event)) return;
        const id = randomUUID();
        const ts = Date.now();
        let parley: string | undefined;
        let slack: string | undefined;
        for (const ep of endpoints) {
          if (!ep.events.has(e.event) || (ep.rooms && !ep.rooms.has(e.room))) continue;
          const body = ep.format === 'slack' ? (slack ??= slackBody(e)) : (parley ??= chat21 ? chat21Body(e, appId, ts) : parleyBody(id, e, ts));
          d.enqueue(ep, { id, event: chat21 ? CHAT21_EVENT_NAMES[e.event] : e.event, body });
        }
      };
      publish = pub;
      // Only the events some endpoint listens to are followed.
      if ([...chosen].some((e) => MESSAGE_EVENTS.has(e))) unsubscribe.push(c.events.on('message.stored', (e) => pub(messageEvent(e))));
      if (chosen.has('room.created')) unsubscribe.push(c.events.on('room.created', (e) => pub(roomCreatedEvent(e))));
      if (chosen.has('member.joined')) unsubscribe.push(c.events.on('member.joined', (e) => pub(memberJoinedEvent(e))));
      if (chosen.has('member.left')) unsubscribe.push(c.events.on('member.left', (e) => pub(memberLeftEvent(e))));
      if (chosen.has('thread.updated')) unsubscribe.push(c.events.on('thread.updated', (e) => pub(threadUpdatedEvent(e))));
    },
    routes(app: FastifyInstance) {
      if (!ctx) throw new Error('webhooks: routes() before init()');
      const guard = requireAdmin({ verify: ctx.verify, apiKeys: ctx.config.api.keys });
      return scoped(app, (r) => {
        r.get(
          '/admin/webhooks',
          {
            preHandler: guard,
            schema: {
              tags: ['admin'],
              summary: 'How deliveries to each webhook endpoint have gone on this node since it started',
              security,
              response: { 200: WebhookStatus, 401: ErrorBody, 403: ErrorBody },
            },
          },
          async () => ({
            endpoints: endpoints.map((ep) => ({
              origin: endpointOrigin(ep.url),
              format: ep.format ?? 'parley',
              events: [...ep.events],
              ...dispatcher!.status(ep),
            })),
          }),
        );
      });
    },
    close: async () => {
      for (const off of unsubscribe.splice(0)) off();
      await dispatcher?.close();
    },
  };
}

export { verifySignature, sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';
export type { DeliveryReport } from './dispatcher.js';
