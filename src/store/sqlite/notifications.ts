// SQLite implementation of the NotificationStore port, on the database handle of SqliteStore
// (tables from its migrations).
import type Database from 'better-sqlite3';
import type { MentionAll, NotifyLevel } from '../../protocol/schema.js';
import type { NotificationStore } from '../notifications.js';
import { guard } from './guard.js';
import { IN_UNREAD_WINDOW, UNREAD_MEMBERS } from './statements.js';

export class SqliteNotificationStore implements NotificationStore {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      level: db.prepare('SELECT level FROM notify_levels WHERE room_id = ? AND user_id = ?').pluck(),
      setLevel: db.prepare(`INSERT INTO notify_levels (room_id, user_id, level) VALUES (?, ?, ?)
        ON CONFLICT(room_id, user_id) DO UPDATE SET level = excluded.level`),
      levels: db.prepare('SELECT user_id, level FROM notify_levels WHERE room_id = ?'),
      // The primary key (room, user) finds each room's row.
      levelsIn: db.prepare('SELECT n.room_id, n.level FROM json_each(?) r JOIN notify_levels n ON n.room_id = r.value AND n.user_id = ?'),
      mentionAll: db.prepare('SELECT mention_all FROM room_settings WHERE room_id = ?').pluck(),
      setMentionAll: db.prepare(`INSERT INTO room_settings (room_id, mention_all) VALUES (?, ?)
        ON CONFLICT(room_id) DO UPDATE SET mention_all = excluded.mention_all`),
      // Among the messages the inbox counts unread ones in (the first UNREAD_SCAN after the marker).
      unread: db.prepare(`${UNREAD_MEMBERS} SELECT m.room_id, count(*) AS n FROM m JOIN messages x ON ${IN_UNREAD_WINDOW('x')}
        WHERE x.meta IS NOT NULL AND x.kind = 'text' AND x.user_id <> m.user_id
          AND (x.hidden_for IS NULL OR x.hidden_for <> m.user_id)
          AND (json_extract(x.meta, '$.mentionsAll') = 'room'
            OR EXISTS (SELECT 1 FROM json_each(x.meta, '$.mentions') j WHERE j.value = m.user_id))
        GROUP BY m.room_id`),
      // The root's author, then the thread's repliers (the thread index walks its replies).
      participants: db
        .prepare(
          `SELECT user_id FROM messages WHERE room_id = @room AND seq = @root
        UNION SELECT user_id FROM messages WHERE room_id = @room AND thread = @root AND seq < @before AND kind = 'text'`,
        )
        .pluck(),
    };
  }

  level(room: string, user: string): Promise<NotifyLevel | null> {
    return guard(() => (this.s.level.get(room, user) as NotifyLevel | undefined) ?? null);
  }

  setLevel(room: string, user: string, level: NotifyLevel): Promise<void> {
    return guard(() => {
      this.s.setLevel.run(room, user, level);
    });
  }

  levels(room: string): Promise<Map<string, NotifyLevel>> {
    return guard(() => new Map((this.s.levels.all(room) as Array<{ user_id: string; level: NotifyLevel }>).map((r) => [r.user_id, r.level])));
  }

  levelsIn(user: string, rooms: readonly string[]): Promise<Map<string, NotifyLevel>> {
    return guard(() => {
      if (rooms.length === 0) return new Map<string, NotifyLevel>();
      const rows = this.s.levelsIn.all(JSON.stringify(rooms), user) as Array<{ room_id: string; level: NotifyLevel }>;
      return new Map(rows.map((r) => [r.room_id, r.level]));
    });
  }

  mentionAll(room: string): Promise<MentionAll | null> {
    return guard(() => (this.s.mentionAll.get(room) as MentionAll | undefined) ?? null);
  }

  setMentionAll(room: string, who: MentionAll): Promise<void> {
    return guard(() => {
      this.s.setMentionAll.run(room, who);
    });
  }

  threadParticipants(room: string, root: number, before: number): Promise<string[]> {
    return guard(() => this.s.participants.all({ room, root, before }) as string[]);
  }

  unreadMentions(user: string): Promise<Map<string, number>> {
    return guard(() => new Map((this.s.unread.all(user) as Array<{ room_id: string; n: number }>).map((r) => [r.room_id, r.n])));
  }
}
