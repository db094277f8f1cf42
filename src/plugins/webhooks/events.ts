// Turns a finished command into the webhook event it stands for, and an event into the body
// sent to an endpoint: Parley's own envelope, or a Slack incoming-webhook `{"text": ...}`.
import type { HookContext } from '../../service/hooks.js';
import type { Member, Message, Room, SendResult } from '../../protocol/schema.js';
import type { WebhookEvent } from '../config.js';

export interface WebhookEventRecord {
  event: WebhookEvent;
  /** The room the event happened in (every event has one). */
  room: string;
  data: Record<string, unknown>;
}

type Args = Record<string, unknown> & { room?: string; target?: number; text?: string; emoji?: string; remove?: boolean; data?: Record<string, unknown> };

function message(ctx: HookContext, r: SendResult, kind: Message['kind']): Message {
  const a = ctx.args as Args;
  const m: Message = { room: a.room!, seq: r.seq, kind, user: ctx.user.id, name: ctx.user.name, ts: r.ts };
  if (kind === 'text' || kind === 'edit') m.text = a.text!;
  if (kind !== 'text') m.target = a.target!;
  if (kind === 'text' && a.data !== undefined) m.data = a.data;
  if (kind === 'reaction') m.data = a.remove ? { emoji: a.emoji, remove: true } : { emoji: a.emoji };
  return m;
}

/** The event a successful command produced, or null (other commands, idempotent repeats). */
export function eventOf(ctx: HookContext, result: unknown): WebhookEventRecord | null {
  const a = ctx.args as Args;
  switch (ctx.cmd) {
    case 'send':
    case 'edit':
    case 'delete':
    case 'react': {
      const r = result as SendResult;
      if (r.duplicate) return null;
      const kind = ({ send: 'text', edit: 'edit', delete: 'delete', react: 'reaction' } as const)[ctx.cmd];
      const event = ({ send: 'message.sent', edit: 'message.edited', delete: 'message.deleted', react: 'message.reacted' } as const)[ctx.cmd];
      return { event, room: a.room!, data: message(ctx, r, kind) as unknown as Record<string, unknown> };
    }
    case 'create': {
      const room = result as Room;
      return { event: 'room.created', room: room.id, data: { ...room } };
    }
    case 'join': {
      const r = result as { member: Member };
      return { event: 'member.joined', room: r.member.room, data: { member: r.member, name: ctx.user.name } };
    }
    case 'invite': {
      const r = result as { member: Member };
      return { event: 'member.joined', room: r.member.room, data: { member: r.member, by: ctx.user.id } };
    }
    case 'leave':
      return { event: 'member.left', room: a.room!, data: { user: ctx.user.id, name: ctx.user.name } };
    default:
      return null;
  }
}

/** Parley's envelope; `id` is the delivery id, the same on every attempt. */
export function parleyBody(id: string, e: WebhookEventRecord, ts: number): string {
  return JSON.stringify({ id, event: e.event, ts, room: e.room, data: e.data });
}

/** Slack's formatting treats &, < and > as control characters. */
const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const who = (d: Record<string, unknown>) => `*${esc(d.name ?? d.user)}*`;

export function slackText(e: WebhookEventRecord): string {
  const d = e.data;
  const room = `#${esc(e.room)}`;
  switch (e.event) {
    case 'message.sent': return `${who(d)} in ${room}: ${esc(d.text)}`;
    case 'message.edited': return `${who(d)} edited message ${String(d.target)} in ${room}: ${esc(d.text)}`;
    case 'message.deleted': return `${who(d)} deleted message ${String(d.target)} in ${room}`;
    case 'message.reacted': {
      const r = d.data as { emoji: string; remove?: boolean };
      return `${who(d)} ${r.remove ? 'took back' : 'reacted'} ${esc(r.emoji)} ${r.remove ? 'on' : 'to'} message ${String(d.target)} in ${room}`;
    }
    case 'member.joined': {
      const m = d.member as Member;
      return d.by ? `*${esc(d.by)}* added *${esc(m.user)}* to ${room}` : `*${esc(d.name ?? m.user)}* joined ${room}`;
    }
    case 'member.left': return `${who(d)} left ${room}`;
    case 'notification': {
      const to = (d.recipients as Array<{ user: string }>).map((r) => `*${esc(r.user)}*`).join(', ');
      return `${who(d)} notified ${to} in ${room}: ${esc(d.text)}`;
    }
    case 'room.created': return `*${esc(d.createdBy)}* created the ${esc(d.kind)} ${room} “${esc(d.name)}”`;
  }
}

export function slackBody(e: WebhookEventRecord): string {
  return JSON.stringify({ text: slackText(e) });
}

/**
 * Chat21's names for Parley's events (chat21-server webhooks). Chat21 has only message
 * events; the names of member and room events follow its style.
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
};

/** Chat21's webhook envelope; the message id is the Chat21 one (`<room>.<seq>`). */
export function chat21Body(e: WebhookEventRecord, appId: string, ts: number): string {
  const seq = typeof e.data.seq === 'number' ? e.data.seq : undefined;
  return JSON.stringify({
    event_type: CHAT21_EVENT_NAMES[e.event], createdAt: ts, app_id: appId, recipient_id: e.room,
    ...(seq !== undefined ? { message_id: `${e.room}.${seq}` } : {}), data: e.data,
  });
}
