// Rich messages around a send: mentions and the `notify` events they cause, replies and
// their quotes, notification levels and room message settings, pins and edit history. The
// rules are in mentions.ts, replies.ts and pins.ts; this module reads what they need from
// the ports and publishes the events. The service calls it around its own checks.
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { roomTopic, userTopic } from '../bus/bus.js';
import type { Identity } from '../auth/jwt.js';
import { eventText } from '../protocol/frames.js';
import type { CommandArgs, CommandResults, Member, Message, NotifyLevel, RoomKind } from '../protocol/schema.js';
import type { NotificationStore } from '../store/notifications.js';
import type { PinStore } from '../store/pins.js';
import type { MessageMeta, Store } from '../store/store.js';
import type { VersionStore } from '../store/versions.js';
import type { Hooks } from './hooks.js';
import {
  DEFAULT_MENTION_ALL,
  NOTIFY_TEXT_CHARS,
  defaultLevel,
  keptToThread,
  mayMentionAll,
  parseMentions,
  recipients,
  resolveMentions,
  type ParsedMentions,
} from './mentions.js';
import { MAX_PINS, checkPinnable, versionsOf } from './pins.js';
import { quoteOf } from './replies.js';

export interface RichPorts {
  notifications: NotificationStore;
  pins: PinStore;
  versions: VersionStore;
}

/** What the service needs checked before a send, and hands back after it is stored. */
export interface Draft {
  parsed: ParsedMentions;
  meta: MessageMeta;
  members?: string[];
  /** An edit: only the users it newly mentions are told, about the message it edits. */
  edit?: boolean;
}

/** How long a node trusts the levels it read for a room (a change elsewhere shows within it). */
const LEVELS_TTL_MS = 2000;

/** A notify with nothing to tell. */
const DONE: Promise<void> = Promise.resolve();

export class RichMessages {
  /** Per room: members' notification levels, and whether any is `all`. */
  private readonly levelCache = new Map<string, { at: number; levels: Map<string, NotifyLevel>; anyAll: boolean }>();

  constructor(
    private readonly store: Store,
    private readonly ports: RichPorts,
    private readonly bus: Bus,
    private readonly hooks: Hooks,
    private readonly log: Logger,
  ) {}

  /**
   * Before a send: the quote of the message it replies to (`not_found` otherwise) and the
   * members its text mentions. Reads nothing when the text has no "@" and is no reply.
   */
  async draft(user: Identity, a: CommandArgs<'send'>, role: () => Promise<Member['role'] | null>): Promise<Draft> {
    const parsed = parseMentions(a.text);
    const meta: MessageMeta = {};
    if (a.replyTo !== undefined) {
      // The quote is what the replying user sees: not an edit hidden from them.
      const [target, { edits, deleted }] = await Promise.all([
        this.store.getMessage(a.room, a.replyTo, user.id),
        this.ports.versions.edits(a.room, a.replyTo, user.id),
      ]);
      meta.quote = quoteOf(target, edits, deleted);
      meta.replyTo = a.replyTo;
    }
    if (parsed.names.length === 0 && !parsed.room && !parsed.here) return { parsed, meta };
    const members = (await this.store.members(a.room)).map((m) => m.user);
    let allowed = false;
    if (parsed.room || parsed.here) {
      const [setting, r] = await Promise.all([this.ports.notifications.mentionAll(a.room), role()]);
      allowed = mayMentionAll(setting, r, user.admin === true);
    }
    const online = allowed && parsed.here && !parsed.room ? await this.bus.presence.online(members).catch(() => []) : [];
    const { mentions, mentionsAll } = resolveMentions(parsed, members, user.id, allowed, online);
    if (mentions) meta.mentions = mentions;
    if (mentionsAll) meta.mentionsAll = mentionsAll;
    return { parsed, meta, members };
  }

  /**
   * Before an edit: the members its text mentions that the previous version (the last edit,
   * or the original) did not. Those are kept with the edit and added to the mentions of the
   * message it edits, and only they are told. Reads nothing when the text has no "@".
   */
  async editDraft(user: Identity, a: CommandArgs<'edit'>, role: () => Promise<Member['role'] | null>): Promise<Draft | undefined> {
    const parsed = parseMentions(a.text);
    if (parsed.names.length === 0 && !parsed.room && !parsed.here) return undefined;
    const [target, { edits, deleted }, members] = await Promise.all([
      this.store.getMessage(a.room, a.target),
      this.ports.versions.edits(a.room, a.target),
      this.store.members(a.room).then((ms) => ms.map((m) => m.user)),
    ]);
    // Not an edit the room log will take: it refuses it with the reason.
    if (!target || target.kind !== 'text' || deleted || target.user !== user.id) return undefined;
    const previous = parseMentions(edits.length > 0 ? edits[edits.length - 1]!.text : (target.text ?? ''));
    let allowed = false;
    if (parsed.room || parsed.here) {
      const [setting, r] = await Promise.all([this.ports.notifications.mentionAll(a.room), role()]);
      allowed = mayMentionAll(setting, r, user.admin === true);
    }
    const online = allowed && parsed.here && !parsed.room ? await this.bus.presence.online(members).catch(() => []) : [];
    const now = resolveMentions(parsed, members, user.id, allowed, online);
    const before = new Set(resolveMentions(previous, members, user.id, false).mentions ?? []);
    const meta: MessageMeta = {};
    const added = (now.mentions ?? []).filter((u) => !before.has(u));
    if (added.length > 0) meta.mentions = added;
    if (now.mentionsAll && !(previous.room && allowed)) meta.mentionsAll = now.mentionsAll;
    return { parsed, meta, members, edit: true };
  }

  /**
   * After a send is stored: a `notify` event on the user topic of everyone the message
   * mentions and of members whose level is `all` (for a reply kept to its thread, those of
   * them who take part in the thread), then the notification hooks. Best effort: the message
   * is stored and delivered whatever happens here.
   */
  notify(m: Message, d: Draft, peers: () => Promise<string[]>, hiddenFor?: string): Promise<void> {
    // Most messages of a group mention no one and no member asked for all: nothing to tell,
    // known without a read while the room's levels are cached.
    const hit = this.levelCache.get(m.room);
    if (hit && Date.now() - hit.at < LEVELS_TTL_MS && !hit.anyAll && !m.mentions && !m.mentionsAll && !m.room.startsWith('dm_')) return DONE;
    return this.notifyNow(m, d, peers, hiddenFor);
  }

  private async notifyNow(m: Message, d: Draft, peers: () => Promise<string[]>, hiddenFor?: string): Promise<void> {
    try {
      const kind: RoomKind = m.room.startsWith('dm_') ? 'direct' : 'group';
      const { levels, anyAll: someAll } = await this.levels(m.room);
      const anyAll = kind === 'direct' || someAll;
      if (!m.mentions && !m.mentionsAll && !anyAll) return;
      const members = d.members ?? (await peers());
      // Only level `all` needs the thread's participants (an edit tells no one at that level).
      const participants =
        anyAll && !d.edit && keptToThread(m) ? new Set(await this.ports.notifications.threadParticipants(m.room, m.thread, m.seq)) : undefined;
      const to = recipients(m, d.parsed, members, levels, kind, participants ? { hiddenFor, participants } : { hiddenFor });
      // An edit tells only whom it newly mentions, and points at the message it edits.
      if (d.edit) for (const [u, reason] of to) if (reason === 'message') to.delete(u);
      if (to.size === 0) return;
      const seq = d.edit && m.target !== undefined ? m.target : m.seq;
      const text = m.text === undefined ? '' : [...m.text].slice(0, NOTIFY_TEXT_CHARS).join('');
      for (const [user, reason] of to) {
        this.bus.publish(userTopic(user), { frame: eventText('notify', { room: m.room, seq, user: m.user, name: m.name, text, reason }) });
      }
      this.hooks.notified({ room: m.room, seq, user: m.user, name: m.name, text, recipients: [...to].map(([u, reason]) => ({ user: u, reason })) }, (h, err) =>
        this.log.warn({ err, hook: h.name }, 'notification hook failed'),
      );
    } catch (err) {
      this.log.warn({ err, room: m.room, seq: m.seq }, 'notifications not sent');
    }
  }

  private async levels(room: string): Promise<{ levels: Map<string, NotifyLevel>; anyAll: boolean }> {
    const hit = this.levelCache.get(room);
    if (hit && Date.now() - hit.at < LEVELS_TTL_MS) return hit;
    const levels = await this.ports.notifications.levels(room);
    const entry = { at: Date.now(), levels, anyAll: [...levels.values()].includes('all') };
    this.levelCache.delete(room);
    this.levelCache.set(room, entry);
    if (this.levelCache.size > 10_000) this.levelCache.delete(this.levelCache.keys().next().value!);
    return entry;
  }

  // ---- commands ----------------------------------------------------------------------------

  /** The caller's level in a room it is a member of; sets it first when `level` is given. */
  async notificationLevel(user: Identity, a: CommandArgs<'notifications'>, kind: RoomKind): Promise<CommandResults['notifications']> {
    if (a.level !== undefined) {
      await this.ports.notifications.setLevel(a.room, user.id, a.level);
      this.levelCache.delete(a.room);
      return { room: a.room, level: a.level };
    }
    return { room: a.room, level: (await this.ports.notifications.level(a.room, user.id)) ?? defaultLevel(kind) };
  }

  /** The room's message settings; changed first when given (the caller checked it moderates). */
  async settings(a: CommandArgs<'settings'>): Promise<CommandResults['settings']> {
    if (a.mentionAll !== undefined) {
      await this.ports.notifications.setMentionAll(a.room, a.mentionAll);
      return { room: a.room, mentionAll: a.mentionAll };
    }
    return { room: a.room, mentionAll: (await this.ports.notifications.mentionAll(a.room)) ?? DEFAULT_MENTION_ALL };
  }

  /** Inbox entries with the unread mentions and notification level of each room. */
  async inbox(user: string, rooms: CommandResults['inbox']['rooms']): Promise<CommandResults['inbox']> {
    const [counts, levels] = await Promise.all([
      this.ports.notifications.unreadMentions(user),
      this.ports.notifications.levelsIn(
        user,
        rooms.map((e) => e.room.id),
      ),
    ]);
    return { rooms: rooms.map((e) => ({ ...e, mentions: counts.get(e.room.id) ?? 0, notify: levels.get(e.room.id) ?? defaultLevel(e.room.kind) })) };
  }

  /** Pins or unpins (the caller checked it moderates); members are told when it changed. */
  async pin(user: Identity, a: CommandArgs<'pin'>, pinned: boolean): Promise<CommandResults['pin']> {
    let changed: boolean;
    if (pinned) {
      const [m, { deleted }] = await Promise.all([this.store.getMessage(a.room, a.seq), this.ports.versions.edits(a.room, a.seq)]);
      checkPinnable(m, deleted);
      changed = await this.ports.pins.pin(a.room, a.seq, user.id, Date.now(), MAX_PINS);
    } else {
      changed = await this.ports.pins.unpin(a.room, a.seq);
    }
    if (changed) this.bus.publish(roomTopic(a.room), { frame: eventText('pin', { room: a.room, seq: a.seq, pinned, by: user.id }) });
    return { room: a.room, seq: a.seq, pinned };
  }

  async pins(user: Identity, room: string): Promise<CommandResults['pins']> {
    const records = await this.ports.pins.pins(room);
    const [messages, versions] = await Promise.all([
      Promise.all(records.map((p) => this.store.getMessage(room, p.seq, user.id))),
      Promise.all(records.map((p) => this.ports.versions.edits(room, p.seq, user.id))),
    ]);
    const pins = records.flatMap((p, i) => {
      const m = messages[i];
      if (!m || versions[i]!.deleted) return [];
      // The message as it reads now: the text of its latest edit the reader may see.
      const last = versions[i]!.edits.at(-1);
      return [{ ...p, message: last ? { ...m, text: last.text } : m }];
    });
    return { room, pins };
  }

  async versions(user: Identity, a: CommandArgs<'versions'>): Promise<CommandResults['versions']> {
    const [m, { edits, deleted }] = await Promise.all([this.store.getMessage(a.room, a.seq, user.id), this.ports.versions.edits(a.room, a.seq, user.id)]);
    if (deleted) return { room: a.room, seq: a.seq, versions: [], deleted: true };
    return { room: a.room, seq: a.seq, versions: versionsOf(m, edits), deleted: false };
  }
}
