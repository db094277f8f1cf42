// Webhook deliveries in Chat21's words (`plugins.webhooks.eventNames: "chat21"`): Chat21's
// event names and envelope, for receivers written for chat21-server's webhooks.
import type { WebhookEvent } from '../../plugins/config.js';
import { messageId } from './protocol.js';

/**
 * Chat21's names for Parley's events (chat21-server webhooks). Chat21 has only message
 * events; the names of member, room and thread events follow its style.
 */
export const CHAT21_EVENT_NAMES: Record<WebhookEvent, string> = {
  'message.sent': 'message-sent',
  'message.edited': 'message-update',
  'message.deleted': 'message-delete',
  'message.reacted': 'message-reaction',
  'member.joined': 'group-member-added',
  'member.left': 'group-member-removed',
  'room.created': 'group-created',
  notification: 'message-notification',
  'thread.updated': 'thread-updated',
};

/** Chat21's webhook envelope; the message id is the Chat21 one (`<room>.<seq>`). */
export function chat21Body(e: { event: WebhookEvent; room: string; data: Record<string, unknown> }, appId: string, ts: number): string {
  const seq = typeof e.data.seq === 'number' ? e.data.seq : undefined;
  return JSON.stringify({
    event_type: CHAT21_EVENT_NAMES[e.event],
    createdAt: ts,
    app_id: appId,
    recipient_id: e.room,
    ...(seq !== undefined ? { message_id: messageId(e.room, seq) } : {}),
    data: e.data,
  });
}
