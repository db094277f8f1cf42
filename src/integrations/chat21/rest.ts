// The Chat21-compatible REST API (chat21-http-server's routes) under PREFIX/APPID, e.g.
// /api/tilechat/groups, registered as a fastify plugin on the HTTP transport's app. It
// authenticates with the raw JWT in `Authorization` (or ?jwt=, ?JWT=, ?token=), admits the
// user as every transport does, validates paths and bodies in the route schemas (the Chat21
// shapes of protocol.ts, checked by the protocol's one validation), calls the Chat21 service,
// and answers in the `{success, result}` shape Chat21 clients read; errors are
// `{success: false, msg, code}` with the status of Parley's error table.
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import type { Metrics } from '../../observability/metrics.js';
import { USER_ID_PATTERN } from '../../protocol/schema.js';
import type { Service } from '../../service/index.js';
import { HTTP_STATUS, toHttpError } from '../../transport/http/errors.js';
import { GroupAttributes, GroupId, JoinGroup, Json, NewGroup, RenameGroup, RestMessage, SetMembers } from './protocol.js';
import type { Caller, Chat21Service } from './service.js';

export interface Chat21RestOptions {
  chat21: Chat21Service;
  verify: Verifier;
  /** Every authenticated request is admitted as on every transport (bans, the user's record). */
  service: Pick<Service, 'admit'>;
  metrics: Pick<Metrics, 'error'>;
  log: { error(obj: object, msg: string): void };
}

const UserParam = Type.String({ pattern: USER_ID_PATTERN, description: 'A user id' });
const InstanceId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,512}$', description: 'A push-notification instance (device) id' });
/** A conversation: a user id (the direct conversation) or a group id; its rule is the service's (`conversation`). */
const ConversWith = Type.String({ minLength: 1, description: 'A user id, or a group id (one containing "group-")' });

const P = {
  user: Type.Object({ userid: UserParam }),
  userConversation: Type.Object({ userid: UserParam, cw: ConversWith }),
  conversation: Type.Object({ cw: ConversWith }),
  group: Type.Object({ gid: GroupId }),
  groupMember: Type.Object({ gid: GroupId, mid: UserParam }),
  instance: Type.Object({ userid: UserParam, iid: InstanceId }),
};
/** Where a token may come instead of the Authorization header; other parameters are ignored. */
const TokenQuery = Type.Object({ jwt: Type.Optional(Type.String()), JWT: Type.Optional(Type.String()), token: Type.Optional(Type.String()) });

declare module 'fastify' {
  interface FastifyRequest {
    chat21User?: Identity;
  }
}

/** The token of a request: the raw Authorization header (a "JWT " or "Bearer " prefix is dropped) or a query parameter. */
function tokenOf(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.trim() !== '') return h.trim().replace(/^(JWT|Bearer)\s+/i, '');
  const q = (req.query ?? {}) as Partial<Record<'jwt' | 'JWT' | 'token', unknown>>;
  for (const k of ['jwt', 'JWT', 'token'] as const) {
    const v = q[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  throw new ParleyError('unauthorized', 'send the JWT in the Authorization header');
}

/** The caller of a request, as the Chat21 service runs it. */
function caller(req: FastifyRequest): Caller {
  const user = req.chat21User;
  if (!user) throw new ParleyError('unauthorized', 'send the JWT in the Authorization header');
  return { user, via: 'http' };
}

/** Chat21 paths name the user; Parley only lets it be the token's user. */
function self(req: FastifyRequest, userid: string): Caller {
  const c = caller(req);
  if (userid !== c.user.id) throw new ParleyError('forbidden', 'you can only read your own conversations');
  return c;
}

const ok = (result: unknown) => ({ success: true, result });

/** The Chat21 REST API; register it with `{ prefix: PREFIX/APPID }`. */
export const chat21Rest: FastifyPluginAsync<Chat21RestOptions> = async (scope: FastifyInstance, deps: Chat21RestOptions) => {
  const c21 = deps.chat21;
  const api = scope.withTypeProvider<TypeBoxTypeProvider>();
  api.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    if (e.code === 'internal') deps.log.error({ err, url: req.url }, 'chat21 request failed');
    deps.metrics.error(e.code, 'http');
    return reply.code(HTTP_STATUS[e.code]).send({ success: false, msg: e.message, code: e.code, ...(e.details ? { details: e.details } : {}) });
  });
  api.addHook('onRequest', async (req) => {
    const user = await deps.verify(tokenOf(req));
    await deps.service.admit(user);
    req.chat21User = user;
  });
  // Chat21 clients send some writes without a body: they read as an empty one.
  api.addHook('preValidation', async (req) => {
    if (req.body === undefined || req.body === null) req.body = {};
  });
  const tags = ['chat21'];
  const doc = (operationId: string, summary: string) => ({ operationId: `chat21.${operationId}`, summary, tags, querystring: TokenQuery });

  api.get('/:userid/conversations', { schema: { ...doc('conversations', 'Your active conversations, newest first'), params: P.user } }, async (req) =>
    ok(await c21.conversations(self(req, req.params.userid), false)),
  );
  for (const [url, id] of [
    ['/:userid/conversations/archived', 'archivedConversations'],
    ['/:userid/archived_conversations', 'archivedConversations2'],
  ] as const) {
    api.get(url, { schema: { ...doc(id, 'Your archived conversations, newest first'), params: P.user } }, async (req) =>
      ok(await c21.conversations(self(req, req.params.userid), true)),
    );
  }
  for (const [url, archived, id] of [
    ['/:userid/conversations/:cw', false, 'conversation'],
    ['/:userid/archived_conversations/:cw', true, 'archivedConversation'],
  ] as const) {
    api.get(url, { schema: { ...doc(id, archived ? 'One archived conversation' : 'One active conversation'), params: P.userConversation } }, async (req) => {
      const c = self(req, req.params.userid);
      const { room } = c21.conversation(c.user, req.params.cw);
      return ok(await c21.conversations(c, archived, room));
    });
  }
  api.get(
    '/:userid/conversations/:cw/messages',
    { schema: { ...doc('messages', "The conversation's last 200 messages, newest first"), params: P.userConversation } },
    async (req) => ok(await c21.messages(self(req, req.params.userid), req.params.cw)),
  );
  api.delete(
    '/conversations/:cw',
    { schema: { ...doc('archive', 'Archive a conversation until its next message'), params: P.conversation } },
    async (req, reply) => {
      await c21.archive(caller(req), req.params.cw);
      return reply.code(201).send({ success: true });
    },
  );
  api.post('/messages', { schema: { ...doc('send', 'Send a message to a user or a group'), body: RestMessage } }, async (req) => {
    const { recipient_id: to, ...msg } = req.body;
    return ok(await c21.send(caller(req), to, msg));
  });
  api.post('/groups', { schema: { ...doc('createGroup', 'Create a group'), body: NewGroup } }, async (req, reply) => {
    const group = await c21.createGroup(caller(req), req.body);
    return reply.code(201).send({ success: true, group });
  });
  api.get('/groups/:gid', { schema: { ...doc('group', 'A group'), params: P.group } }, async (req) => ok(await c21.group(caller(req), req.params.gid)));
  api.post('/groups/:gid/members', { schema: { ...doc('joinGroup', 'Add a member to a group'), params: P.group, body: JoinGroup } }, async (req) =>
    ok(await c21.join(caller(req), req.params.gid, req.body.member_id)),
  );
  api.put('/groups/:gid/members', { schema: { ...doc('setMembers', "Set a group's members"), params: P.group, body: SetMembers } }, async (req) =>
    ok(await c21.setMembers(caller(req), req.params.gid, req.body.members)),
  );
  api.delete(
    '/groups/:gid/members/:mid',
    { schema: { ...doc('leaveGroup', 'Remove a member from a group (yourself: leave it)'), params: P.groupMember } },
    async (req) => ok(await c21.leave(caller(req), req.params.gid, req.params.mid)),
  );
  api.put('/groups/:gid', { schema: { ...doc('renameGroup', 'Rename a group'), params: P.group, body: RenameGroup } }, async (req) =>
    ok(await c21.rename(caller(req), req.params.gid, req.body.group_name)),
  );
  api.put(
    '/groups/:gid/attributes',
    { schema: { ...doc('groupAttributes', "Replace a group's attributes"), params: P.group, body: GroupAttributes } },
    async (req) => ok(await c21.setAttributes(caller(req), req.params.gid, req.body.attributes)),
  );
  api.post(
    '/:userid/instances/:iid',
    { schema: { ...doc('saveInstance', 'Record a push-notification instance (device)'), params: P.instance, body: Json } },
    async (req) => {
      await c21.saveInstance(self(req, req.params.userid), req.params.iid, req.body);
      return { success: true };
    },
  );
};
