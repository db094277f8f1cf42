// The Chat21 inbox pattern as the MQTT transport's application: the topic ACL (topics.ts),
// what each publish asks of the Chat21 service, and each user's inbox (inbox.ts). The
// transport (src/transport/mqtt) keeps the connections, sessions and limits.
import type { Logger } from 'pino';
import type { Identity } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import type { Conn } from '../../hub/index.js';
import { validate } from '../../protocol/validate.js';
import type { TransportSession } from '../../service/runner.js';
import type { InboxIO, MqttApp } from '../../transport/mqtt/index.js';
import { Inbox } from './inbox.js';
import { ConversationUpdate, MessageUpdate, OutgoingMessage, parseJson } from './protocol.js';
import type { Chat21Service } from './service.js';
import { inboxBase, isServerTopic, mayRead, parsePublish, type PublishOp } from './topics.js';

/** The command each publish is timed and counted as (presence publishes run nothing). */
const OP_COMMAND: Record<PublishOp['op'], string | null> = {
  outgoing: 'send',
  receipt: 'read',
  conversation: 'read',
  archive: 'archive',
  presence: null,
  unknown: 'unknown',
};

export class Chat21Mqtt implements MqttApp<PublishOp> {
  private readonly app: string;

  constructor(
    private readonly chat21: Chat21Service,
    private readonly log: Logger,
  ) {
    this.app = chat21.appId;
  }

  checkUser(identity: Identity): void {
    // "+" is MQTT's single-level wildcard: no filter can name such a user's inbox literally.
    if (identity.id.includes('+')) throw new ParleyError('unauthorized', 'user ids with "+" cannot have an MQTT inbox');
  }

  publishOp(topic: string, user: string): PublishOp | null {
    return parsePublish(topic, this.app, user);
  }

  mayRead(filter: string, user: string): boolean {
    return mayRead(filter, this.app, user);
  }

  serverTopic(topic: string): boolean {
    return isServerTopic(topic);
  }

  command(op: PublishOp): string | null {
    return OP_COMMAND[op.op];
  }

  async run(s: TransportSession, op: PublishOp, payload: Buffer): Promise<void> {
    switch (op.op) {
      case 'outgoing':
        await this.chat21.send(s, op.to, validate(OutgoingMessage, parseJson(payload), 'message'));
        return;
      case 'receipt':
        validate(MessageUpdate, parseJson(payload), 'update');
        await this.chat21.receipt(s, op.conversWith, op.messageId);
        return;
      case 'conversation':
        await this.chat21.updateConversation(s, op.conversWith, validate(ConversationUpdate, parseJson(payload), 'conversation update'));
        return;
      case 'archive':
        if (payload.length > 0) parseJson(payload);
        await this.chat21.archive(s, op.conversWith);
        return;
      default:
        throw new ParleyError('invalid', 'no such operation: see docs/chat21.md for the topics');
    }
  }

  errorTopic(user: string): string {
    return `${inboxBase(this.app, user)}/errors/clienterror`;
  }

  openInbox(identity: Identity, io: InboxIO): Conn {
    return new Inbox(identity, {
      chat21: this.chat21,
      log: this.log,
      publish: (topic, payload) => io.publish(topic, payload),
      disconnect: (code, reason) => io.disconnect(code, reason),
      disconnectSessions: (match, reason) => io.disconnectSessions(match, reason),
    });
  }
}
