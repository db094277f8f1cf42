// REST routes of the built-in accounts under /api/v1/auth (and PATCH /me, the account's
// display name). They hold no rules: the AccountService decides; these routes validate, pass
// the client address for throttling and the User-Agent that names a session, and shape the
// reply.
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { AccountService } from '../../accounts/index.js';
import { LoginBody, PasswordBody, ProfileBody, RefreshBody, RegisterBody, SessionId, SessionView, Tokens } from '../../accounts/schema.js';
import { User } from '../../protocol/schema.js';
import { ERRORS, SECURED } from './api.js';
import { authenticated } from './auth.js';

/** What names a session in its owner's list: the client's User-Agent header. */
const userAgent = (req: FastifyRequest): string => {
  const ua = req.headers['user-agent'];
  return typeof ua === 'string' ? ua.slice(0, 256) : '';
};
const NO_QUERY = Type.Object({}, { additionalProperties: false });

export function registerAccountRoutes(scope: FastifyInstance, accounts: AccountService, authenticate: onRequestAsyncHookHandler): void {
  const api = scope.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['auth'];
  api.post(
    '/auth/register',
    {
      schema: {
        operationId: 'register',
        tags,
        security: [],
        summary: 'Create a built-in account and sign in (refused with `forbidden` when registration is off).',
        body: RegisterBody,
        response: { 201: Tokens, ...ERRORS },
      },
    },
    async (req, reply) => reply.code(201).send(await accounts.register(req.body, req.ip, userAgent(req))),
  );

  api.post(
    '/auth/login',
    {
      schema: {
        operationId: 'login',
        tags,
        security: [],
        summary: 'Sign in; failed attempts are limited per account and per address (`rate_limited`, Retry-After).',
        body: LoginBody,
        response: { 200: Tokens, ...ERRORS },
      },
    },
    async (req) => accounts.login(req.body, req.ip, userAgent(req)),
  );

  api.post(
    '/auth/refresh',
    {
      schema: {
        operationId: 'refresh',
        tags,
        security: [],
        summary: 'Trade a refresh token for new tokens; the old refresh token is spent (using it again ends the session).',
        body: RefreshBody,
        response: { 200: Tokens, ...ERRORS },
      },
    },
    async (req) => accounts.refresh(req.body.refreshToken),
  );

  api.post(
    '/auth/logout',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'logout',
        tags,
        security: SECURED,
        summary: 'End this session: its refresh token and access tokens stop working for new requests and connections.',
        response: { 204: Type.Null({ description: 'Signed out' }), ...ERRORS },
      },
    },
    async (req, reply) => {
      await accounts.logout(authenticated(req));
      return reply.code(204).send(null);
    },
  );

  api.post(
    '/auth/password',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'changePassword',
        tags,
        security: SECURED,
        summary: 'Change the password; every session of the account ends and a new one is returned.',
        body: PasswordBody,
        response: { 200: Tokens, ...ERRORS },
      },
    },
    async (req) => accounts.changePassword(authenticated(req), req.body, req.ip, userAgent(req)),
  );

  api.patch(
    '/me',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'setProfile',
        tags: ['users'],
        security: SECURED,
        summary: 'Change your display name (built-in accounts). It shows with your messages from now on; those sent before keep the name they were sent with.',
        body: ProfileBody,
        response: { 200: User, ...ERRORS },
      },
    },
    async (req) => accounts.setName(authenticated(req), req.body.name),
  );

  api.get(
    '/auth/sessions',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'sessions',
        tags,
        security: SECURED,
        querystring: NO_QUERY,
        summary: "Your account's live sessions (signed-in devices), the one of this request marked `current`.",
        response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...ERRORS },
      },
    },
    async (req) => ({ sessions: await accounts.sessions(authenticated(req)) }),
  );

  api.delete(
    '/auth/sessions/:session',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'endSession',
        tags,
        security: SECURED,
        params: Type.Object({ session: SessionId }),
        querystring: NO_QUERY,
        summary: 'End one of your sessions: its refresh token and access tokens stop working for new requests and connections.',
        response: { 204: Type.Null({ description: 'Ended' }), ...ERRORS },
      },
    },
    async (req, reply) => {
      await accounts.endSession(authenticated(req), req.params.session);
      return reply.code(204).send(null);
    },
  );

  api.delete(
    '/auth/sessions',
    {
      onRequest: authenticate,
      schema: {
        operationId: 'endOtherSessions',
        tags,
        security: SECURED,
        querystring: NO_QUERY,
        summary: 'End every session of your account but this one (sign out everywhere else).',
        response: { 200: Type.Object({ ended: Type.Integer({ description: 'Sessions ended' }) }), ...ERRORS },
      },
    },
    async (req) => ({ ended: await accounts.endOtherSessions(authenticated(req)) }),
  );
}
