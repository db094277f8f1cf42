// Turns the service's domain events into the webhook events endpoints choose, and an event
// into the body sent to an endpoint: Parley's own envelope, or a Slack incoming-webhook
// `{"text": ...}` (Chat21's envelope is the Chat21 integration's, integrations/chat21/webhooks.ts).
import type { Member, Message } from '../../protocol/schema.js';
import type { DomainEventMap } from '../../service/events.js';
import type { WebhookEvent } from '../config.js';

export interface WebhookEventRecord {
  event: WebhookEvent;
  /** The room the event happened in (every event has one). */
  room: string;
  data: Record<string, unknown>;
}

/** The webhook event of each kind of message a user adds. */
const MESSAGE_EVENTS: Partial<Record<Message['kind'], WebhookEvent>> = {
  text: 'message.sent',
  edit: 'message.edited',
  delete: 'message.deleted',
  reaction: 'message.reacted',
};

/**
 * A user's text, edit, delete or reaction as its webhook event: the message as stored, without
 * the author's profile. Server posts and a room's own join, leave and update messages have none
 * (joins and leaves are member events).
 */
export function messageEvent({ message }: DomainEventMap['message.stored']): WebhookEventRecord | null {
  const event = MESSAGE_EVENTS[message.kind];
  if (!event || message.system) return null;
  const { profile: _profile, ...data } = message;
  return { event, room: message.room, data };
}

/** A channel or group created (a direct room opened is not announced). */
export function roomCreatedEvent({ room }: DomainEventMap['room.created']): WebhookEventRecord | null {
  if (room.kind === 'direct') return null;
  return { event: 'room.created', room: room.id, data: { ...room } };
}

/** A user who joined names itself (`name`); an invited one names who invited it (`by`). */
export function memberJoinedEvent({ room, member, by }: DomainEventMap['member.joined']): WebhookEventRecord {
  return { event: 'member.joined', room, data: by.id === member.user ? { member, name: by.name } : { member, by: by.id } };
}

/**
 * A member out of the room: `{user, name}` when it left by itself; removed by someone else,
 * also why (`reason`: kicked, banned, evicted), by whom (`by`) and the moderator's `note`.
 */
export function memberLeftEvent(e: DomainEventMap['member.left']): WebhookEventRecord {
  const data: Record<string, unknown> = { user: e.user, name: e.name };
  if (e.reason !== 'left') {
    data.reason = e.reason;
    data.by = e.by.id;
    if (e.note !== undefined) data.note = e.note;
  }
  return { event: 'member.left', room: e.room, data };
}

/**
 * A thread's new summary after a reply: the root's seq, replies sent, when the latest was
 * sent, the first repliers, and which reply (`reply`, by `user`) changed it.
 */
export function threadUpdatedEvent(e: DomainEventMap['thread.updated']): WebhookEventRecord {
  return {
    event: 'thread.updated',
    room: e.room,
    data: { room: e.room, root: e.root, count: e.summary.count, lastTs: e.summary.lastTs, users: e.summary.users, reply: e.reply, user: e.by.id },
  };
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
    case 'message.sent':
      return `${who(d)} in ${room}: ${esc(d.text)}`;
    case 'message.edited':
      return `${who(d)} edited message ${String(d.target)} in ${room}: ${esc(d.text)}`;
    case 'message.deleted':
      return `${who(d)} deleted message ${String(d.target)} in ${room}`;
    case 'message.reacted': {
      const r = d.data as { emoji: string; remove?: boolean };
      return `${who(d)} ${r.remove ? 'took back' : 'reacted'} ${esc(r.emoji)} ${r.remove ? 'on' : 'to'} message ${String(d.target)} in ${room}`;
    }
    case 'member.joined': {
      const m = d.member as Member;
      return d.by ? `*${esc(d.by)}* added *${esc(m.user)}* to ${room}` : `*${esc(d.name ?? m.user)}* joined ${room}`;
    }
    case 'member.left': {
      if (d.reason === undefined) return `${who(d)} left ${room}`;
      // An eviction follows a change of the room's access lists: no one removed this member by name.
      if (d.reason === 'evicted') return `${who(d)} lost access to ${room}`;
      const what = d.reason === 'kicked' ? 'removed' : 'banned';
      return `${who(d)} was ${what} from ${room} by *${esc(d.by)}*${d.note ? `: ${esc(d.note)}` : ''}`;
    }
    case 'notification': {
      const to = (d.recipients as Array<{ user: string }>).map((r) => `*${esc(r.user)}*`).join(', ');
      return `${who(d)} notified ${to} in ${room}: ${esc(d.text)}`;
    }
    case 'room.created':
      return `*${esc(d.createdBy)}* created the ${esc(d.kind)} ${room} “${esc(d.name)}”`;
    case 'thread.updated': {
      const n = d.count as number;
      return `*${esc(d.user)}* replied in the thread of message ${String(d.root)} in ${room} (${n} ${n === 1 ? 'reply' : 'replies'})`;
    }
  }
}

export function slackBody(e: WebhookEventRecord): string {
  return JSON.stringify({ text: slackText(e) });
}
