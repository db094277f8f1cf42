// REST routes of the built-in accounts under /api/v1/auth. They hold no rules: the
// AccountService decides; these routes validate, pass the client address for throttling and
// shape the reply.
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { AccountService } from '../../accounts/index.js';
import { LoginBody, PasswordBody, RefreshBody, RegisterBody, Tokens } from '../../accounts/schema.js';
import { ERRORS, SECURED } from './api.js';
import { authenticated } from './auth.js';

export function registerAccountRoutes(scope: FastifyInstance, accounts: AccountService, authenticate: onRequestAsyncHookHandler): void {
  const api = scope.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['auth'];
  api.post('/auth/register', {
    schema: {
      operationId: 'register', tags, security: [],
      summary: 'Create a built-in account and sign in (refused with `forbidden` when registration is off).',
      body: RegisterBody, response: { 201: Tokens, ...ERRORS },
    },
  }, async (req, reply) => reply.code(201).send(await accounts.register(req.body, req.ip)));

  api.post('/auth/login', {
    schema: {
      operationId: 'login', tags, security: [],
      summary: 'Sign in; failed attempts are limited per account and per address (`rate_limited`, Retry-After).',
      body: LoginBody, response: { 200: Tokens, ...ERRORS },
    },
  }, async (req) => accounts.login(req.body, req.ip));

  api.post('/auth/refresh', {
    schema: {
      operationId: 'refresh', tags, security: [],
      summary: 'Trade a refresh token for new tokens; the old refresh token is spent (using it again ends the session).',
      body: RefreshBody, response: { 200: Tokens, ...ERRORS },
    },
  }, async (req) => accounts.refresh(req.body.refreshToken));

  api.post('/auth/logout', {
    onRequest: authenticate,
    schema: {
      operationId: 'logout', tags, security: SECURED,
      summary: 'End this session: its refresh token and access tokens stop working for new requests and connections.',
      response: { 204: Type.Null({ description: 'Signed out' }), ...ERRORS },
    },
  }, async (req, reply) => {
    await accounts.logout(authenticated(req));
    return reply.code(204).send(null);
  });

  api.post('/auth/password', {
    onRequest: authenticate,
    schema: {
      operationId: 'changePassword', tags, security: SECURED,
      summary: 'Change the password; every session of the account ends and a new one is returned.',
      body: PasswordBody, response: { 200: Tokens, ...ERRORS },
    },
  }, async (req) => accounts.changePassword(authenticated(req), req.body, req.ip));
}
