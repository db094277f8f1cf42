// Row shapes and row-to-model mappers shared by the SQL stores (store/sqlite, store/postgres):
// both keep the same columns, times as ms since the epoch and JSON as text.
import type { AccessMode, Ban, Member, Message, Role, Room, ThreadSummary } from '../protocol/schema.js';
import type { MessageMeta } from './store.js';
import type { Account, RefreshSession, SessionInfo } from './accounts.js';

export interface MessageRow {
  room_id: string;
  seq: number;
  kind: Message['kind'];
  user_id: string;
  name: string;
  ts: number;
  text: string | null;
  target: number | null;
  data: string | null;
  hidden_for: string | null;
  profile?: string | null;
  /** Mentions and reply quote (MessageMeta as JSON), or null. */
  meta?: string | null;
  /** Posted by the server-side API (1 or true), else null. */
  system: number | boolean | null;
  /** A thread root's summary (ThreadSummary as JSON), or null. */
  summary?: string | null;
}
export interface RoomRow {
  id: string;
  kind: Room['kind'];
  name: string;
  topic: string;
  created_by: string | null;
  created_at: number;
  last_seq: number;
  access: AccessMode;
  retention_count: number | null;
  retention_ms: number | null;
}
export interface MemberRow {
  room_id: string;
  user_id: string;
  role: Role;
  joined_at: number;
  read_seq: number;
  join_seq: number;
  muted_until: number | null;
}
export interface BanRow {
  room_id: string;
  user_id: string;
  until: number | null;
  reason: string;
  by: string | null;
  created_at: number;
}

/** muted_until value meaning "until further notice". */
export const FOREVER = Number.MAX_SAFE_INTEGER;
export const DAY_MS = 86_400_000;

export const MSG_COLS = 'room_id, seq, kind, user_id, name, ts, text, target, data, hidden_for, system, meta';
export const ROOM_COLS = 'id, kind, name, topic, created_by, created_at, last_seq, access, retention_count, retention_ms';
export const MEMBER_COLS = 'room_id, user_id, role, joined_at, read_seq, join_seq, muted_until';

export function rowToMessage(r: MessageRow, viewer?: string): Message {
  if (viewer !== undefined && r.hidden_for === viewer) {
    return { room: r.room_id, seq: r.seq, kind: 'hidden', user: r.user_id, name: r.name, ts: r.ts };
  }
  const m: Message = { room: r.room_id, seq: r.seq, kind: r.kind, user: r.user_id, name: r.name, ts: r.ts };
  if (r.text !== null) m.text = r.text;
  if (r.target !== null) m.target = r.target;
  if (r.data !== null) m.data = JSON.parse(r.data) as Record<string, unknown>;
  if (r.profile && r.profile !== '{}') m.profile = JSON.parse(r.profile) as Record<string, unknown>;
  if (r.system) m.system = true;
  if (r.meta) Object.assign(m, JSON.parse(r.meta) as MessageMeta);
  if (r.summary) m.summary = JSON.parse(r.summary) as ThreadSummary;
  return m;
}
export const rowToRoom = (r: RoomRow): Room => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  topic: r.topic,
  createdBy: r.created_by,
  createdAt: r.created_at,
  lastSeq: r.last_seq,
  access: r.access,
  retention: { count: r.retention_count, days: r.retention_ms === null ? null : r.retention_ms / DAY_MS },
});
export function rowToMember(r: MemberRow): Member {
  const m: Member = { room: r.room_id, user: r.user_id, role: r.role, joinedAt: r.joined_at, joinSeq: r.join_seq, readSeq: r.read_seq };
  if (r.muted_until !== null) m.mutedUntil = r.muted_until === FOREVER ? null : r.muted_until;
  return m;
}
export const rowToBan = (r: BanRow): Ban => ({
  room: r.room_id === '' ? null : r.room_id,
  user: r.user_id,
  until: r.until,
  reason: r.reason,
  by: r.by,
  createdAt: r.created_at,
});

export interface AccountRow {
  user_id: string;
  username: string;
  password_hash: string;
  created_at: number;
  updated_at: number;
}
export interface SessionRow {
  id: string;
  user_id: string;
  refresh_hash: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export const toAccount = (r: AccountRow): Account => ({
  userId: r.user_id,
  username: r.username,
  passwordHash: r.password_hash,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
export const toSession = (r: SessionRow): RefreshSession => ({
  id: r.id,
  userId: r.user_id,
  refreshHash: r.refresh_hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export interface SessionInfoRow {
  id: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  user_agent: string;
}
export const toSessionInfo = (r: SessionInfoRow): SessionInfo => ({
  id: r.id,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
  userAgent: r.user_agent,
});
/** The meta column of a message: its mentions, reply and thread fields as JSON, or null without any. */
export function metaText(m: MessageMeta): string | null {
  const meta: MessageMeta = {};
  if (m.mentions !== undefined) meta.mentions = m.mentions;
  if (m.mentionsAll !== undefined) meta.mentionsAll = m.mentionsAll;
  if (m.replyTo !== undefined) meta.replyTo = m.replyTo;
  if (m.quote !== undefined) meta.quote = m.quote;
  if (m.thread !== undefined) meta.thread = m.thread;
  if (m.alsoToRoom !== undefined) meta.alsoToRoom = m.alsoToRoom;
  return Object.keys(meta).length === 0 ? null : JSON.stringify(meta);
}

/**
 * The thread columns of a message row: the root it belongs to, and whether it is kept out
 * of the room's main timeline (a thread reply not also sent to the room, or an edit, delete
 * or reaction of one).
 */
export const threadColumns = (m: MessageMeta): { thread: number | null; threadOnly: 1 | null } => ({
  thread: m.thread ?? null,
  threadOnly: m.thread !== undefined && m.alsoToRoom !== true ? 1 : null,
});

/** Adds users to a meta column's mentions (an edit mentions them now). */
export function withMentions(meta: string | null, users: readonly string[]): string {
  const m = (meta ? JSON.parse(meta) : {}) as MessageMeta;
  const all = new Set(m.mentions ?? []);
  for (const u of users) all.add(u);
  m.mentions = [...all];
  return JSON.stringify(m);
}
