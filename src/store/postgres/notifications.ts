// PostgreSQL implementation of the NotificationStore port, on the pool of PostgresStore (same
// database and schema; tables from its migrations). Each method is one statement, so every
// node sees every change at once.
import type pg from 'pg';
import type { MentionAll, NotifyLevel } from '../../protocol/schema.js';
import type { NotificationStore } from '../notifications.js';
import { query } from './pool.js';
import { IN_UNREAD_WINDOW, UNREAD_WINDOW } from './statements.js';

export class PostgresNotificationStore implements NotificationStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, sql, params);
  }

  async level(room: string, user: string): Promise<NotifyLevel | null> {
    const { rows } = await this.query<{ level: NotifyLevel }>('SELECT level FROM notify_levels WHERE room_id = $1 AND user_id = $2', [room, user]);
    return rows[0]?.level ?? null;
  }

  async setLevel(room: string, user: string, level: NotifyLevel): Promise<void> {
    await this.query(
      `INSERT INTO notify_levels (room_id, user_id, level) VALUES ($1, $2, $3)
      ON CONFLICT (room_id, user_id) DO UPDATE SET level = excluded.level`,
      [room, user, level],
    );
  }

  async levels(room: string): Promise<Map<string, NotifyLevel>> {
    const { rows } = await this.query<{ user_id: string; level: NotifyLevel }>('SELECT user_id, level FROM notify_levels WHERE room_id = $1', [room]);
    return new Map(rows.map((r) => [r.user_id, r.level]));
  }

  async levelsIn(user: string, rooms: readonly string[]): Promise<Map<string, NotifyLevel>> {
    if (rooms.length === 0) return new Map();
    // The primary key (room, user) finds each room's row.
    const { rows } = await this.query<{ room_id: string; level: NotifyLevel }>(
      'SELECT room_id, level FROM notify_levels WHERE room_id = ANY($1::text[]) AND user_id = $2',
      [rooms, user],
    );
    return new Map(rows.map((r) => [r.room_id, r.level]));
  }

  async mentionAll(room: string): Promise<MentionAll | null> {
    const { rows } = await this.query<{ mention_all: MentionAll }>('SELECT mention_all FROM room_settings WHERE room_id = $1', [room]);
    return rows[0]?.mention_all ?? null;
  }

  async setMentionAll(room: string, who: MentionAll): Promise<void> {
    await this.query(
      `INSERT INTO room_settings (room_id, mention_all) VALUES ($1, $2)
      ON CONFLICT (room_id) DO UPDATE SET mention_all = excluded.mention_all`,
      [room, who],
    );
  }

  async threadParticipants(room: string, root: number, before: number): Promise<string[]> {
    const { rows } = await this.query<{ user_id: string }>(
      `SELECT user_id FROM messages WHERE room_id = $1 AND seq = $2
      UNION SELECT user_id FROM messages WHERE room_id = $1 AND thread = $2 AND seq < $3 AND kind = 'text'`,
      [room, root, before],
    );
    return rows.map((r) => r.user_id);
  }

  async unreadMentions(user: string): Promise<Map<string, number>> {
    // Among the messages the inbox counts unread ones in (the first UNREAD_SCAN after the
    // marker), counted room by room: each a walk of that room's index, never of all messages.
    const { rows } = await this.query<{ room_id: string; n: string }>(
      `SELECT m.room_id, c.n FROM members m ${UNREAD_WINDOW}
      CROSS JOIN LATERAL (SELECT count(*) AS n FROM messages x WHERE ${IN_UNREAD_WINDOW('x')}
        AND x.meta IS NOT NULL AND x.kind = 'text' AND x.user_id <> m.user_id
        AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id)
        AND ((x.meta::jsonb ->> 'mentionsAll') = 'room' OR (x.meta::jsonb -> 'mentions') ? m.user_id)) c
      WHERE m.user_id = $1 AND c.n > 0`,
      [user],
    );
    return new Map(rows.map((r) => [r.room_id, Number(r.n)]));
  }
}
