// REST routes of the admin screen under /api/v1/admin, for server administrators (an account
// listed in accounts.admins, a token with parley_admin, or an API key): find users and rooms,
// and this node's live figures. Bans, room deletion, the word list and webhook status have
// their own routes (/bans, DELETE /rooms/:room, the plugins' /admin/words and /admin/webhooks).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Verifier } from '../../auth/jwt.js';
import { requireAdmin } from '../../plugins/admin.js';
import type { Directory } from '../../store/directory.js';
import { ERRORS, SECURED } from './api.js';
import type { Metrics, TransportName } from '../../observability/metrics.js';

export interface AdminDeps {
  directory: Directory;
  metrics: Metrics;
  verify: Verifier;
  apiKeys: readonly string[];
  /** Open client connections of this node per transport. */
  connections(): Partial<Record<TransportName, number>>;
  /** Names of the plugins turned on. */
  plugins(): string[];
}

const Find = Type.Object(
  {
    query: Type.Optional(Type.String({ maxLength: 100, description: 'Part of the id or name, any case; empty: all' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  },
  { additionalProperties: false },
);

const DirectoryUser = Type.Object({
  id: Type.String(),
  name: Type.String(),
  account: Type.Boolean({ description: 'Has a built-in account (else came with an external token)' }),
  createdAt: Type.Integer(),
});
const DirectoryRoom = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('channel'), Type.Literal('group')]),
  name: Type.String(),
  topic: Type.String(),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Integer(),
  members: Type.Integer(),
});
const Stats = Type.Object(
  {
    at: Type.Integer({ description: 'When these were read (ms)' }),
    connections: Type.Record(Type.String(), Type.Integer(), { description: 'Open client connections of this node per transport' }),
    messagesIn: Type.Integer({ description: 'Messages accepted by this node since it started' }),
    messagesOut: Type.Integer({ description: 'Messages written to connections by this node since it started' }),
    uptimeSec: Type.Number({ description: "How long the node's process has run" }),
    plugins: Type.Array(Type.String(), {
      description: 'Plugins turned on, by name (the word list needs `word-filter`, webhook status `webhooks`)',
    }),
  },
  { description: 'Counters of this node; two readings give rates per second' },
);

export function registerAdminRoutes(api: FastifyInstance, deps: AdminDeps): void {
  const guard = requireAdmin({ verify: deps.verify, apiKeys: deps.apiKeys });
  const tags = ['admin'];
  api.get(
    '/admin/users',
    {
      preHandler: guard,
      schema: {
        operationId: 'adminUsers',
        tags,
        security: SECURED,
        querystring: Find,
        summary: 'Find users by id or display name (administrators); server bans are listed by GET /bans.',
        response: { 200: Type.Object({ users: Type.Array(DirectoryUser), more: Type.Boolean() }), ...ERRORS },
      },
    },
    async (req) => {
      const q = req.query as { query?: string; limit?: number };
      const page = await deps.directory.findUsers(q.query?.trim() ?? '', q.limit ?? 50);
      return { users: page.items, more: page.more };
    },
  );

  api.get(
    '/admin/rooms',
    {
      preHandler: guard,
      schema: {
        operationId: 'adminRooms',
        tags,
        security: SECURED,
        querystring: Find,
        summary: 'Find channels and groups by id or name, by name (case aside), with their member counts (administrators); direct rooms are never listed.',
        response: { 200: Type.Object({ rooms: Type.Array(DirectoryRoom), more: Type.Boolean() }), ...ERRORS },
      },
    },
    async (req) => {
      const q = req.query as { query?: string; limit?: number };
      const page = await deps.directory.findRooms(q.query?.trim() ?? '', q.limit ?? 50);
      return { rooms: page.items, more: page.more };
    },
  );

  api.get(
    '/admin/stats',
    {
      preHandler: guard,
      schema: {
        operationId: 'adminStats',
        tags,
        security: SECURED,
        querystring: Type.Object({}, { additionalProperties: false }),
        summary: 'Live figures of this node: open connections, messages in and out since start (administrators).',
        response: { 200: Stats, ...ERRORS },
      },
    },
    async () => ({
      at: Date.now(),
      connections: deps.connections(),
      ...(await deps.metrics.totals()),
      uptimeSec: Math.round(process.uptime()),
      plugins: deps.plugins(),
    }),
  );
}
