// SQLite implementation of the Directory port, on the database handle of SqliteStore. LIKE is
// case-insensitive for ASCII in SQLite, which is what the port promises.
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import { containsPattern, type Directory, type DirectoryRoom, type DirectoryUser, type Page } from '../directory.js';

interface UserRow {
  id: string;
  name: string;
  created_at: number;
  account: number;
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

function read<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(new ParleyError('unavailable', `storage failed: ${(err as Error).message}`));
  }
}

function page<R, T>(rows: R[], limit: number, map: (r: R) => T): Page<T> {
  return { items: rows.slice(0, limit).map(map), more: rows.length > limit };
}

export class SqliteDirectory implements Directory {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      users: db.prepare(`SELECT u.id, u.name, u.created_at, a.user_id IS NOT NULL AS account
        FROM users u LEFT JOIN accounts a ON a.user_id = u.id
        WHERE u.id LIKE @p ESCAPE '\\' OR u.name LIKE @p ESCAPE '\\' ORDER BY u.id LIMIT @n`),
      rooms: db.prepare(`SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.created_at,
          (SELECT count(*) FROM members m WHERE m.room_id = r.id) AS members
        FROM rooms r WHERE r.kind <> 'direct' AND (r.id LIKE @p ESCAPE '\\' OR r.name LIKE @p ESCAPE '\\') ORDER BY lower(r.name), r.id LIMIT @n`),
    };
  }

  findUsers(query: string, limit: number): Promise<Page<DirectoryUser>> {
    return read(() =>
      page(this.s.users.all({ p: containsPattern(query), n: limit + 1 }) as UserRow[], limit, (r) => ({
        id: r.id,
        name: r.name,
        account: r.account === 1,
        createdAt: r.created_at,
      })),
    );
  }

  findRooms(query: string, limit: number): Promise<Page<DirectoryRoom>> {
    return read(() =>
      page(this.s.rooms.all({ p: containsPattern(query), n: limit + 1 }) as RoomRow[], limit, (r) => ({
        id: r.id,
        kind: r.kind,
        name: r.name,
        topic: r.topic,
        createdBy: r.created_by,
        createdAt: r.created_at,
        members: r.members,
      })),
    );
  }
}
