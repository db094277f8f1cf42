// SQLite implementation of the AvatarStore port, on the database handle of SqliteStore.
import type Database from 'better-sqlite3';
import type { AvatarRecord, AvatarStore } from '../avatars.js';
import { guard } from './guard.js';

export class SqliteAvatarStore implements AvatarStore {
  private readonly s;
  private readonly setTx: (user: string, blob: string, at: number) => string | null;
  private readonly removeTx: (user: string) => string | null;

  constructor(db: Database.Database) {
    this.s = {
      get: db.prepare('SELECT blob_id FROM avatars WHERE user_id = ?').pluck(),
      one: db.prepare('SELECT user_id, blob_id, updated_at FROM avatars WHERE user_id = ?'),
      upsert: db.prepare(`INSERT INTO avatars (user_id, blob_id, updated_at) VALUES (?, ?, ?)
        ON CONFLICT(user_id) DO UPDATE SET blob_id = excluded.blob_id, updated_at = excluded.updated_at`),
      remove: db.prepare('DELETE FROM avatars WHERE user_id = ?'),
    };
    this.setTx = db.transaction((user: string, blob: string, at: number) => {
      const old = (this.s.get.get(user) as string | undefined) ?? null;
      this.s.upsert.run(user, blob, at);
      return old;
    });
    this.removeTx = db.transaction((user: string) => {
      const old = (this.s.get.get(user) as string | undefined) ?? null;
      this.s.remove.run(user);
      return old;
    });
  }

  ofUsers(users: string[]): Promise<AvatarRecord[]> {
    return guard(() =>
      users.flatMap((u) => {
        const r = this.s.one.get(u) as { user_id: string; blob_id: string; updated_at: number } | undefined;
        return r ? [{ user: r.user_id, blob: r.blob_id, updatedAt: Number(r.updated_at) }] : [];
      }),
    );
  }

  set(user: string, blob: string, at: number): Promise<string | null> {
    return guard(() => this.setTx(user, blob, at));
  }

  remove(user: string): Promise<string | null> {
    return guard(() => this.removeTx(user));
  }
}
