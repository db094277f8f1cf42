// REST routes of Web Push: the server's VAPID public key, and the caller's browser
// subscriptions (add, remove). The PushService decides; these routes validate and shape.
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PushService } from '../../push/index.js';
import { ERRORS, SECURED } from './api.js';
import { authenticated } from './auth.js';

export interface PushRouteDeps {
  push: PushService;
  authenticate: (req: FastifyRequest) => Promise<void>;
}

const Endpoint = Type.String({ minLength: 9, maxLength: 2048, pattern: '^https://', description: 'The push service URL of the browser (https)' });

/** A browser's PushSubscription as its toJSON() gives it. */
export const PushSubscriptionBody = Type.Object(
  {
    endpoint: Endpoint,
    expirationTime: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
    keys: Type.Object(
      {
        p256dh: Type.String({ pattern: '^[A-Za-z0-9_-]{87}$', description: "The browser's P-256 public key, base64url (65 bytes)" }),
        auth: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: "The browser's auth secret, base64url (16 bytes)" }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, description: 'A PushSubscription (JSON)' },
);

const NO_QUERY = Type.Object({}, { additionalProperties: false });

export function registerPushRoutes(app: FastifyInstance, prefix: string, deps: PushRouteDeps): void {
  const { push } = deps;
  const tags = ['push'];
  void app.register(
    async (scope) => {
      const api = scope.withTypeProvider<TypeBoxTypeProvider>();
      api.get(
        '/push/key',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'pushKey',
            tags,
            security: SECURED,
            querystring: NO_QUERY,
            summary: 'The VAPID public key to subscribe with (`applicationServerKey`); `unavailable` when Web Push is off.',
            response: { 200: Type.Object({ publicKey: Type.String({ description: 'base64url' }) }), ...ERRORS },
          },
        },
        async () => ({ publicKey: push.publicKey() }),
      );

      api.post(
        '/push/subscriptions',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'pushSubscribe',
            tags,
            security: SECURED,
            querystring: NO_QUERY,
            body: PushSubscriptionBody,
            summary:
              'Notify this browser of direct messages and mentions while you have no open connection. The same endpoint again replaces it; past `push.subscriptionsPerUser` it is `conflict`.',
            response: { 201: Type.Object({ endpoint: Type.String() }), ...ERRORS },
          },
        },
        async (req, reply) => {
          await push.subscribe(authenticated(req), req.body);
          return reply.code(201).send({ endpoint: req.body.endpoint });
        },
      );

      api.delete(
        '/push/subscriptions',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'pushUnsubscribe',
            tags,
            security: SECURED,
            querystring: NO_QUERY,
            body: Type.Object({ endpoint: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
            summary: 'Stop notifying the browser of this endpoint (`not_found` when you have no such subscription).',
            response: { 204: Type.Null({ description: 'Removed' }), ...ERRORS },
          },
        },
        async (req, reply) => {
          await push.unsubscribe(authenticated(req), req.body.endpoint);
          return reply.code(204).send(null);
        },
      );
    },
    { prefix },
  );
}
