// The Chat21-compatible REST API (chat21-http-server's routes) under PREFIX/APPID, e.g.
// /api/tilechat/groups. It authenticates with the raw JWT in `Authorization` (or ?jwt=,
// ?JWT=, ?token=), checks each input against its Chat21 schema, calls the Chat21 service,
// and answers in the `{success, result}` shape Chat21 clients read; errors are
// `{success: false, msg, code}` with the status of Parley's error table.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Identity, Verifier } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import {
  GroupAttributes, GroupId, JoinGroup, NewGroup, RenameGroup, RestMessage, SetMembers, check,
} from '../../protocol/chat21.js';
import { USER_ID_PATTERN } from '../../protocol/schema.js';
import type { Chat21Service } from '../../service/chat21.js';
import { HTTP_STATUS, toHttpError } from './errors.js';
import type { Metrics } from './metrics.js';

export interface Chat21RestDeps {
  chat21: Chat21Service;
  verify: Verifier;
  /** Runs once a token is verified (bans, recording the user), as for Parley's REST API. */
  admit(user: Identity): Promise<void>;
  metrics: Metrics;
  log: { error(obj: object, msg: string): void };
}

const UserParam = Type.String({ pattern: USER_ID_PATTERN });
const InstanceId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,512}$' });
const Json = Type.Record(Type.String(), Type.Unknown());

declare module 'fastify' {
  interface FastifyRequest {
    chat21User?: Identity;
  }
}

/** The token of a request: the raw Authorization header (a "JWT " or "Bearer " prefix is dropped) or a query parameter. */
function tokenOf(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.trim() !== '') return h.trim().replace(/^(JWT|Bearer)\s+/i, '');
  const q = req.query as Record<string, unknown>;
  for (const k of ['jwt', 'JWT', 'token']) if (typeof q[k] === 'string' && q[k] !== '') return q[k] as string;
  throw new ParleyError('unauthorized', 'send the JWT in the Authorization header');
}

const param = (req: FastifyRequest, name: string): string => (req.params as Record<string, string>)[name] ?? '';

export function registerChat21Routes(app: FastifyInstance, prefix: string, deps: Chat21RestDeps): void {
  const c21 = deps.chat21;
  void app.register(async (api) => {
    api.setErrorHandler((err, req, reply) => {
      const e = toHttpError(err);
      if (e.code === 'internal') deps.log.error({ err, url: req.url }, 'chat21 request failed');
      deps.metrics.error(e.code, 'http');
      return reply.code(HTTP_STATUS[e.code]).send({ success: false, msg: e.message, code: e.code, ...(e.details ? { details: e.details } : {}) });
    });
    api.addHook('onRequest', async (req) => {
      const user = await deps.verify(tokenOf(req));
      await deps.admit(user);
      req.chat21User = user;
    });
    const me = (req: FastifyRequest): Identity => req.chat21User!;
    /** Chat21 paths name the user; Parley only lets it be the token's user. */
    const self = (req: FastifyRequest): Identity => {
      const u = me(req);
      const id = check(UserParam, param(req, 'userid'), 'userid');
      if (id !== u.id) throw new ParleyError('forbidden', 'you can only read your own conversations');
      return u;
    };
    const gid = (req: FastifyRequest): string => check(GroupId, param(req, 'gid'), 'group id');
    const ok = (result: unknown) => ({ success: true, result });

    api.get('/:userid/conversations', async (req) => ok(await c21.conversations(self(req), false)));
    const archived = async (req: FastifyRequest) => ok(await c21.conversations(self(req), true));
    api.get('/:userid/conversations/archived', archived);
    api.get('/:userid/archived_conversations', archived);
    const detail = (isArchived: boolean) => async (req: FastifyRequest) => {
      const u = self(req);
      const { room } = c21.conversation(u, param(req, 'cw'));
      return ok(await c21.conversations(u, isArchived, room));
    };
    api.get('/:userid/conversations/:cw', detail(false));
    api.get('/:userid/archived_conversations/:cw', detail(true));
    api.get('/:userid/conversations/:cw/messages', async (req) => ok(await c21.messages(self(req), param(req, 'cw'))));
    api.delete('/conversations/:cw', async (req, reply: FastifyReply) => {
      await c21.archive(me(req), param(req, 'cw'));
      return reply.code(201).send({ success: true });
    });
    api.post('/messages', async (req) => {
      const b = check(RestMessage, req.body ?? {}, 'body');
      const { recipient_id: to, ...msg } = b;
      return ok(await c21.send(me(req), to, msg));
    });
    api.post('/groups', async (req, reply: FastifyReply) => {
      const group = await c21.createGroup(me(req), check(NewGroup, req.body ?? {}, 'body'));
      return reply.code(201).send({ success: true, group });
    });
    api.get('/groups/:gid', async (req) => ok(await c21.group(me(req), gid(req))));
    const join = async (req: FastifyRequest) => ok(await c21.join(me(req), gid(req), check(JoinGroup, req.body ?? {}, 'body').member_id));
    api.post('/groups/:gid/members', join);
    api.put('/groups/:gid/members', async (req) => ok(await c21.setMembers(me(req), gid(req), check(SetMembers, req.body ?? {}, 'body').members)));
    api.delete('/groups/:gid/members/:mid', async (req) => ok(await c21.leave(me(req), gid(req), check(UserParam, param(req, 'mid'), 'member id'))));
    api.put('/groups/:gid', async (req) => ok(await c21.rename(me(req), gid(req), check(RenameGroup, req.body ?? {}, 'body').group_name)));
    api.put('/groups/:gid/attributes', async (req) => ok(await c21.setAttributes(me(req), gid(req), check(GroupAttributes, req.body ?? {}, 'body').attributes)));
    api.post('/:userid/instances/:iid', async (req) => {
      const u = self(req);
      await c21.saveInstance(u, check(InstanceId, param(req, 'iid'), 'instance id'), check(Json, req.body ?? {}, 'body'));
      return { success: true };
    });
  }, { prefix });
}
