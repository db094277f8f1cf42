// SQLite implementation of the PushStore port, on the database handle of SqliteStore (tables
// from its migrations). Each method is one statement or one transaction, run at once.
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { PushStore, PushSubscriptionRecord, VapidKeys } from '../push.js';
import { guard } from './guard.js';

interface Row {
  endpoint: string;
  user_id: string;
  session_id: string | null;
  p256dh: string;
  auth: string;
  created_at: number;
}

const toRecord = (r: Row): PushSubscriptionRecord => ({
  endpoint: r.endpoint,
  user: r.user_id,
  session: r.session_id,
  p256dh: r.p256dh,
  auth: r.auth,
  createdAt: Number(r.created_at),
});

export class SqlitePushStore implements PushStore {
  private readonly s;
  private readonly addTx: (s: PushSubscriptionRecord, max: number) => void;

  constructor(private readonly db: Database.Database) {
    this.s = {
      count: db.prepare('SELECT count(*) FROM push_subscriptions WHERE user_id = ? AND endpoint <> ?').pluck(),
      upsert: db.prepare(`INSERT INTO push_subscriptions (endpoint, user_id, session_id, p256dh, auth, created_at)
        VALUES (@endpoint, @user, @session, @p256dh, @auth, @createdAt)
        ON CONFLICT(endpoint) DO UPDATE SET user_id = excluded.user_id, session_id = excluded.session_id,
          p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`),
      remove: db.prepare('DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?'),
      removeEndpoint: db.prepare('DELETE FROM push_subscriptions WHERE endpoint = ?'),
      removeSession: db.prepare('DELETE FROM push_subscriptions WHERE session_id = ?'),
      removeUserSessions: db.prepare('DELETE FROM push_subscriptions WHERE user_id = ? AND session_id IS NOT NULL AND session_id IS NOT ?'),
      ofUser: db.prepare('SELECT endpoint, user_id, session_id, p256dh, auth, created_at FROM push_subscriptions WHERE user_id = ?'),
      vapid: db.prepare('SELECT public_key, private_key FROM push_vapid WHERE id = 1'),
      offerVapid: db.prepare('INSERT INTO push_vapid (id, public_key, private_key) VALUES (1, ?, ?) ON CONFLICT(id) DO NOTHING'),
    };
    this.addTx = db.transaction((s: PushSubscriptionRecord, max: number) => {
      if ((this.s.count.get(s.user, s.endpoint) as number) >= max) {
        throw new ParleyError('conflict', `at most ${max} push subscriptions per user; remove one first`, { limit: max });
      }
      this.s.upsert.run(s);
    });
  }

  add(s: PushSubscriptionRecord, max: number): Promise<void> {
    return guard(() => this.addTx(s, max));
  }

  remove(user: string, endpoint: string): Promise<boolean> {
    return guard(() => this.s.remove.run(user, endpoint).changes > 0);
  }

  removeEndpoint(endpoint: string): Promise<void> {
    return guard(() => {
      this.s.removeEndpoint.run(endpoint);
    });
  }

  removeSessions(sessions: string[]): Promise<number> {
    return guard(() => this.db.transaction(() => sessions.reduce((n, id) => n + this.s.removeSession.run(id).changes, 0))());
  }

  removeUserSessions(user: string, keep?: string): Promise<number> {
    return guard(() => this.s.removeUserSessions.run(user, keep ?? null).changes);
  }

  ofUsers(users: string[]): Promise<PushSubscriptionRecord[]> {
    return guard(() => users.flatMap((u) => (this.s.ofUser.all(u) as Row[]).map(toRecord)));
  }

  vapidKeys(offer: VapidKeys): Promise<VapidKeys> {
    return guard(() => {
      this.s.offerVapid.run(offer.publicKey, offer.privateKey);
      const r = this.s.vapid.get() as { public_key: string; private_key: string };
      return { publicKey: r.public_key, privateKey: r.private_key };
    });
  }
}
