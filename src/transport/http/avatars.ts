// REST routes of users' pictures: set and remove your own (the body is the image itself),
// look up signed URLs of others', and serve one by its signed URL (for <img src>). The
// AvatarService decides; these routes adapt bytes and headers.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ParleyError } from '../../errors.js';
import { UserId } from '../../protocol/schema.js';
import { AVATAR_LOOKUP, AVATAR_MAX_BYTES, AVATAR_PX, type AvatarService } from '../../service/avatars.js';
import { ERRORS, SECURED } from './api.js';
import { authenticated } from './auth.js';

export interface AvatarRouteDeps {
  avatars: AvatarService;
  authenticate: (req: FastifyRequest) => Promise<void>;
}

const NO_QUERY = Type.Object({}, { additionalProperties: false });
const BlobId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' });

export function registerAvatarRoutes(app: FastifyInstance, prefix: string, deps: AvatarRouteDeps): void {
  const { avatars } = deps;
  const tags = ['users'];
  void app.register(
    async (scope) => {
      // The body of PUT /me/avatar is the image; small enough to be read whole.
      scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: AVATAR_MAX_BYTES }, (_req, body, done) => {
        done(null, body);
      });

      scope.put(
        '/me/avatar',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'setAvatar',
            tags,
            security: SECURED,
            querystring: NO_QUERY,
            summary: `Set your picture. The body is the image (PNG, JPEG, GIF, WebP or AVIF, at most ${AVATAR_MAX_BYTES} bytes); it is kept as a ${AVATAR_PX}×${AVATAR_PX} WebP without metadata.`,
            response: { 200: Type.Object({ url: Type.String({ description: 'Signed URL of the picture for you' }), expiresAt: Type.Integer() }), ...ERRORS },
          },
        },
        async (req) => {
          if (!Buffer.isBuffer(req.body)) throw new ParleyError('invalid', 'send the image as the body', { field: 'file' });
          return avatars.set(authenticated(req).id, req.body);
        },
      );

      scope.delete(
        '/me/avatar',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'removeAvatar',
            tags,
            security: SECURED,
            querystring: NO_QUERY,
            summary: 'Remove your picture (others see your initials again).',
            response: { 204: Type.Null({ description: 'Removed' }), ...ERRORS },
          },
        },
        async (req, reply) => {
          await avatars.remove(authenticated(req).id);
          return reply.code(204).send(null);
        },
      );

      scope.get(
        '/avatars',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'avatars',
            tags,
            security: SECURED,
            querystring: Type.Object(
              { users: Type.String({ minLength: 1, maxLength: AVATAR_LOOKUP * 130, description: `Up to ${AVATAR_LOOKUP} user ids, comma-separated` }) },
              { additionalProperties: false },
            ),
            summary: "Signed URLs of users' pictures, for you (users without a picture are absent).",
            response: { 200: Type.Object({ avatars: Type.Record(Type.String(), Type.String()) }), ...ERRORS },
          },
        },
        async (req) => {
          const users = (req.query as { users: string }).users.split(',').filter(Boolean);
          if (users.length > AVATAR_LOOKUP) throw new ParleyError('invalid', `at most ${AVATAR_LOOKUP} users at a time`, { field: 'users' });
          return { avatars: await avatars.urls(authenticated(req).id, users) };
        },
      );

      scope.get(
        '/users/:user/avatar',
        {
          schema: {
            operationId: 'avatar',
            tags,
            security: [],
            summary: "A user's picture (image/webp), by the signed URL of GET /avatars or PUT /me/avatar.",
            params: Type.Object({ user: UserId }),
            querystring: Type.Object(
              {
                v: BlobId,
                u: Type.String({ minLength: 1, maxLength: 256 }),
                exp: Type.Integer({ minimum: 0 }),
                sig: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
              },
              { additionalProperties: false },
            ),
            response: { 200: Type.String({ format: 'binary' }), ...ERRORS },
          },
        },
        async (req, reply) => {
          const { user } = req.params as { user: string };
          const q = req.query as { v: string; u: string; exp: number; sig: string };
          const body = await avatars.open(user, q.v, q);
          return reply
            .type('image/webp')
            .header('x-content-type-options', 'nosniff')
            .header('content-security-policy', "default-src 'none'; sandbox")
            .header('cross-origin-resource-policy', 'same-origin')
            .header('cache-control', 'private, max-age=600')
            .send(body);
        },
      );
    },
    { prefix },
  );
}
