// PostgreSQL implementation of the Directory port, on the pool of PostgresStore. ILIKE
// compares without case.
import type pg from 'pg';
import { containsPattern, type Directory, type DirectoryRoom, type DirectoryUser, type Page } from '../directory.js';
import { query } from './pool.js';

interface UserRow {
  id: string;
  name: string;
  created_at: number;
  account: boolean;
}
interface RoomRow {
  id: string;
  kind: 'channel' | 'group';
  name: string;
  topic: string;
  created_by: string | null;
  created_at: number;
  members: number;
}

function page<R, T>(rows: R[], limit: number, map: (r: R) => T): Page<T> {
  return { items: rows.slice(0, limit).map(map), more: rows.length > limit };
}

export class PostgresDirectory implements Directory {
  constructor(private readonly pool: pg.Pool) {}

  async findUsers(q: string, limit: number): Promise<Page<DirectoryUser>> {
    const { rows } = await query<UserRow>(
      this.pool,
      `SELECT u.id, u.name, u.created_at, a.user_id IS NOT NULL AS account
      FROM users u LEFT JOIN accounts a ON a.user_id = u.id
      WHERE u.id ILIKE $1 OR u.name ILIKE $1 ORDER BY u.id LIMIT $2`,
      [containsPattern(q), limit + 1],
    );
    return page(rows, limit, (r) => ({ id: r.id, name: r.name, account: r.account, createdAt: r.created_at }));
  }

  async findRooms(q: string, limit: number): Promise<Page<DirectoryRoom>> {
    const { rows } = await query<RoomRow>(
      this.pool,
      `SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at,
        (SELECT count(*) FROM members m WHERE m.room_id = r.id)::int AS members
      FROM rooms r WHERE r.kind <> 'direct' AND (r.id ILIKE $1 OR r.name ILIKE $1) ORDER BY lower(r.name), r.id LIMIT $2`,
      [containsPattern(q), limit + 1],
    );
    return page(rows, limit, (r) => ({
      id: r.id,
      kind: r.kind,
      name: r.name,
      topic: r.topic,
      createdBy: r.created_by,
      createdAt: r.created_at,
      members: r.members,
    }));
  }
}
