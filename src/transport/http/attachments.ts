// REST routes of attachments. An upload's body is the file itself, streamed from the socket to
// the blob store (never parsed, never held whole); the name comes in `X-Filename`. Files are
// read with a bearer token or a signed URL, and served so that a browser never runs them:
// the detected type, `nosniff`, a sandboxing Content-Security-Policy, `attachment` for all but
// images. The AttachmentService decides; these routes adapt bytes and headers.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../../auth/jwt.js';
import { ParleyError } from '../../errors.js';
import { RoomId } from '../../protocol/schema.js';
import type { AttachmentService, AttachmentView, Variant } from '../../service/attachments.js';
import { contentDisposition, IMAGE_TYPES, TEXT_TYPES } from '../../service/media.js';
import { ERRORS, SECURED } from './api.js';

export interface AttachmentRouteDeps {
  attachments: AttachmentService;
  /** The API's authentication (bearer token or API key), as for every other route. */
  authenticate: (req: FastifyRequest) => Promise<void>;
}

const AttachmentId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'Attachment id' });

export const AttachmentViewSchema = Type.Object(
  {
    id: AttachmentId,
    room: RoomId,
    uploader: Type.String(),
    name: Type.String({ description: 'The file name, sanitised' }),
    size: Type.Integer({ description: 'Bytes stored' }),
    type: Type.String({ description: 'Content type detected from the bytes' }),
    width: Type.Optional(Type.Integer({ description: 'Images: width in pixels (orientation applied)' })),
    height: Type.Optional(Type.Integer({ description: 'Images: height in pixels' })),
    createdAt: Type.Integer(),
    message: Type.Union([Type.Integer(), Type.Null()], { description: 'seq of the message that carries it; null until sent' }),
    url: Type.String({ description: 'Signed URL of the file for the caller, valid until expiresAt' }),
    previewUrl: Type.Optional(Type.String({ description: 'Images: signed URL of the preview' })),
    expiresAt: Type.Integer({ description: 'When the signed URLs stop working (ms)' }),
  },
  { description: 'An uploaded attachment', additionalProperties: false },
);

/** The signed-URL parameters: all three, or none (then a bearer token or API key is needed). */
const SignedQuery = Type.Object(
  {
    u: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    exp: Type.Optional(Type.Integer({ minimum: 0 })),
    sig: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
  },
  { additionalProperties: false },
);

const NO_QUERY = Type.Object({}, { additionalProperties: false });

/** Served files may not run anything, embed anything or be framed. */
const FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'";

export function registerAttachmentRoutes(app: FastifyInstance, prefix: string, deps: AttachmentRouteDeps): void {
  const { attachments } = deps;
  const tags = ['attachments'];
  void app.register(
    async (scope) => {
      // Upload bodies are read by the route itself, as a stream, whatever their type.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => {
        done(null);
      });

      scope.post(
        '/rooms/:room/attachments',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'upload',
            tags,
            security: SECURED,
            summary: 'Upload a file to a room (members). The body is the file; its name goes in X-Filename (percent-encoded UTF-8).',
            params: Type.Object({ room: RoomId }),
            querystring: NO_QUERY,
            headers: Type.Object({
              'x-filename': Type.Optional(Type.String({ maxLength: 4096, description: 'The file name, percent-encoded UTF-8 (encodeURIComponent)' })),
              'content-type': Type.Optional(Type.String({ description: 'A hint only: the type is detected from the bytes' })),
            }),
            response: { 201: AttachmentViewSchema, ...ERRORS },
          },
        },
        async (req, reply) => {
          const { room } = req.params as { room: string };
          const raw = req.headers['x-filename'] as string | undefined;
          let name = 'file';
          if (raw !== undefined) {
            try {
              name = decodeURIComponent(raw);
            } catch {
              throw new ParleyError('invalid', 'x-filename: not percent-encoded UTF-8', { field: 'x-filename', in: 'header' });
            }
          }
          const lengthHeader = req.headers['content-length'];
          const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
          try {
            const view = await attachments.upload(req.identity as Identity, room, {
              // Not destroyed when the upload stops early, so the refusal can still be answered.
              body: req.raw.iterator({ destroyOnReturn: false }),
              name,
              declaredType: req.headers['content-type'],
              length: Number.isFinite(length) ? length : undefined,
            });
            return reply
              .code(201)
              .header('location', `${prefix}/attachments/${view.id}`)
              .send(view satisfies AttachmentView);
          } catch (err) {
            // The rest of the body is not read: the connection cannot carry another request.
            if (!req.raw.complete) void reply.header('connection', 'close');
            throw err;
          }
        },
      );

      const serve = (variant: Variant) => async (req: FastifyRequest, reply: FastifyReply) => {
        const { id } = req.params as { id: string };
        const q = req.query as { u?: string; exp?: number; sig?: string };
        const signed = q.u !== undefined || q.exp !== undefined || q.sig !== undefined;
        let a;
        if (signed) {
          if (q.u === undefined || q.exp === undefined || q.sig === undefined) {
            throw new ParleyError('invalid', 'a signed URL needs u, exp and sig', { in: 'query' });
          }
          a = await attachments.readableSigned(id, variant, { u: q.u, exp: q.exp, sig: q.sig });
        } else {
          await deps.authenticate(req);
          a = await attachments.readable(req.identity as Identity, id);
        }
        const body = await attachments.open(a, variant);
        const type = variant === 'preview' ? 'image/webp' : a.type;
        const inline = variant === 'preview' || IMAGE_TYPES.includes(a.type);
        void reply
          .type(TEXT_TYPES.includes(type) ? `${type}; charset=utf-8` : type)
          .header('content-disposition', contentDisposition(inline ? 'inline' : 'attachment', a.name))
          .header('x-content-type-options', 'nosniff')
          .header('content-security-policy', FILE_CSP)
          .header('cross-origin-resource-policy', 'same-origin')
          .header('referrer-policy', 'no-referrer')
          // The bytes under an id never change; who may read them can, so only the browser keeps them.
          .header('cache-control', `private, max-age=${attachments.opts.urlTtlSec}`);
        if (variant === 'file') void reply.header('content-length', String(a.size));
        return reply.send(body);
      };
      const readSchema = (variant: Variant) => ({
        operationId: variant === 'file' ? 'attachment' : 'attachmentPreview',
        tags,
        security: [...SECURED, {}],
        summary:
          variant === 'file'
            ? 'The file (members of its room, administrators): with a bearer token or API key, or a signed URL (u, exp, sig).'
            : 'The preview of an image (WebP, at most attachments.previewPx on its longer side).',
        params: Type.Object({ id: AttachmentId }),
        querystring: SignedQuery,
        response: {
          200: Type.String({ format: 'binary', description: variant === 'file' ? "The file's bytes, with its detected type" : 'The preview (image/webp)' }),
          ...ERRORS,
        },
      });
      scope.get('/attachments/:id', { schema: readSchema('file') }, serve('file'));
      scope.get('/attachments/:id/preview', { schema: readSchema('preview') }, serve('preview'));

      scope.get(
        '/attachments/:id/meta',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'attachmentMeta',
            tags,
            security: SECURED,
            summary: "An attachment's record, with fresh signed URLs for the caller (members of its room, administrators).",
            params: Type.Object({ id: AttachmentId }),
            querystring: NO_QUERY,
            response: { 200: AttachmentViewSchema, ...ERRORS },
          },
        },
        async (req) => {
          const user = req.identity as Identity;
          return attachments.view(await attachments.readable(user, (req.params as { id: string }).id), user.id);
        },
      );

      scope.delete(
        '/attachments/:id',
        {
          onRequest: deps.authenticate,
          schema: {
            operationId: 'deleteAttachment',
            tags,
            security: SECURED,
            summary: "Delete an attachment and its bytes (the uploader, the room's owners and admins, administrators).",
            params: Type.Object({ id: AttachmentId }),
            querystring: NO_QUERY,
            response: { 200: Type.Object({ attachment: AttachmentId }), ...ERRORS },
          },
        },
        async (req) => {
          const { id } = req.params as { id: string };
          await attachments.remove(req.identity as Identity, id);
          return { attachment: id };
        },
      );
    },
    { prefix },
  );
}
