// A user's Chat21 inbox as a hub connection: the hub delivers the user's room events here
// exactly as it does to a WebSocket (local ones and those from other nodes over the bus), and
// the inbox turns each into the Chat21 publication on `apps/{app}/users/{me}/...`, which the
// MQTT transport writes to that user's subscribed clients on this node. One inbox per user and
// node, whatever the number of its MQTT clients, so nothing is delivered twice.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Identity } from '../../auth/jwt.js';
import type { Conn, SharedFrame } from '../../hub/index.js';
import type { EventFrame, Member, Message } from '../../protocol/schema.js';
import type { InboxIO } from '../../transport/mqtt/index.js';
import { STATUS, toChat21Docs } from './protocol.js';
import { NOTICE, type Chat21Service } from './service.js';
import { inboxBase } from './topics.js';

export interface InboxDeps extends InboxIO {
  chat21: Chat21Service;
  log: Logger;
}

/** Inbox ids: unique per process, apart from the WebSocket transport's connection ids. */
const NODE_TAG = randomBytes(4).toString('base64url') + '.';
let counter = 0;

export class Inbox implements Conn {
  readonly id: string;
  readonly user: string;
  private readonly base: string;
  /** Translations run in arrival order; some need a lookup first. */
  private chain: Promise<void> = Promise.resolve();
  /**
   * Bytes of events received and not yet translated: the hub's slow-consumer bound applies to
   * them. Each client's own queue is bounded where it is written (the transport).
   */
  private pending = 0;

  constructor(
    readonly identity: Identity,
    private readonly deps: InboxDeps,
  ) {
    this.id = `${NODE_TAG}m${(++counter).toString(36)}`;
    this.user = identity.id;
    this.base = inboxBase(deps.chat21.appId, identity.id);
  }

  send(frame: SharedFrame): void {
    let ev: EventFrame;
    try {
      ev = JSON.parse(frame.payload.toString('utf8')) as EventFrame;
    } catch {
      return;
    }
    const n = frame.payload.length;
    this.pending += n;
    this.chain = this.chain
      .then(() => this.translate(ev))
      .catch((err: unknown) => {
        this.deps.log.warn({ err, user: this.user, ev: ev.ev }, 'mqtt inbox: event not delivered');
      })
      .finally(() => {
        this.pending -= n;
      });
  }

  bufferedAmount(): number {
    return this.pending;
  }

  close(code: number, reason: string): void {
    this.deps.disconnect(code, reason);
  }

  /** Each MQTT client has its own token: a sign-out ends that session's clients only. */
  closeSessions(match: (session: string | undefined) => boolean, _code: number, reason: string): void {
    this.deps.disconnectSessions(match, reason);
  }

  private out(topic: string, body: unknown): void {
    // User ids may hold "+", which no MQTT filter can name literally: such inboxes get nothing.
    if (topic.includes('+')) return;
    this.deps.publish(`${this.base}/${topic}`, Buffer.from(JSON.stringify(body)));
  }

  private async translate(ev: EventFrame): Promise<void> {
    const c21 = this.deps.chat21;
    switch (ev.ev) {
      case 'message': {
        const m = ev.data as Message;
        if (m.kind === 'update') c21.forget(m.room);
        const view = await c21.viewOf(this.user, m.room);
        for (const doc of toChat21Docs(m, view, m.user === this.user && view.direct ? STATUS.SENT : STATUS.DELIVERED)) {
          this.out(`messages/${view.conversWith}/clientadded`, doc);
        }
        return;
      }
      case 'room': {
        // Chat21 replays a group's history to a member who joins, before its join message.
        const { room, member, reason } = ev.data as { room: string; member: Member | null; reason?: string };
        // Every node with a member of a deleted room hears of it: its cached name goes, so a
        // room created again with the id shows its own.
        if (!member && reason === 'deleted') c21.forget(room);
        if (!member || member.user !== this.user) return;
        const docs = await c21.replay(this.identity, room, member.joinSeq);
        for (const d of docs) this.out(`messages/${d.conversWith}/clientadded`, d);
        return;
      }
      case 'notice': {
        const n = ev.data as { ev: string; data?: Record<string, unknown> };
        const d = n.data ?? {};
        if (n.ev === NOTICE.receipt) {
          this.out(`messages/${String(d.conversWith)}/${String(d.message_id)}/clientupdated`, {
            timelineOf: this.user,
            message_id: d.message_id,
            status: STATUS.RETURN_RECEIPT,
          });
        } else if (n.ev === NOTICE.conversation) {
          this.out(`conversations/${String(d.conversWith)}/clientupdated`, { ...(d.patch as object), timelineOf: this.user, conversWith: d.conversWith });
        } else if (n.ev === NOTICE.archived) {
          this.out(`conversations/${String(d.conversWith)}/clientdeleted`, d.conversation);
          this.out(`archived_conversations/${String(d.conversWith)}/clientadded`, d.conversation);
        } else if (n.ev === NOTICE.group) {
          const group = d.group as { uid: string };
          this.out(`groups/${group.uid}/clientupdated`, group);
        }
        return;
      }
      default:
        // typing, presence, read markers and gaps have no Chat21 form.
        return;
    }
  }
}
