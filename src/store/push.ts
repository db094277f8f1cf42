// The PushStore port: the Web Push subscriptions of users (one per browser that turned
// notifications on) and, for stores shared by several nodes, the VAPID key pair they all sign
// with. Implementations: store/sqlite/push.ts and store/postgres/push.ts, in the Store's
// database.
//
// Contract
// - Each method is one atomic statement; a write's promise settles after it is durable.
// - A subscription is identified by its endpoint: adding one that exists replaces it (its
//   keys, user and session), so a browser that a second account signs in to stops notifying
//   the first. `add` refuses with `conflict` when the user already has `max` other ones.
// - A subscription made by a session of a built-in account names it; `removeSession` removes
//   those of an ended session.
// - `vapidKeys` is insert-if-absent: the first pair offered is kept and every later call, on
//   any node, resolves with that one.

export interface PushSubscriptionRecord {
  endpoint: string;
  user: string;
  /** The account session that subscribed, or null (external tokens, API keys). */
  session: string | null;
  /** The browser's P-256 public key and auth secret, base64url as the browser gave them. */
  p256dh: string;
  auth: string;
  createdAt: number;
}

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export interface PushStore {
  /** Adds or replaces the subscription of `s.endpoint` (see the contract). */
  add(s: PushSubscriptionRecord, max: number): Promise<void>;
  /** Removes the user's subscription with this endpoint; resolves with whether there was one. */
  remove(user: string, endpoint: string): Promise<boolean>;
  /** Removes a subscription whoever owns it (the push service said it is gone). */
  removeEndpoint(endpoint: string): Promise<void>;
  /** Removes the subscriptions made by these sessions. */
  removeSessions(sessions: string[]): Promise<number>;
  /** Removes every subscription of the user made by a session other than `keep`. */
  removeUserSessions(user: string, keep?: string): Promise<number>;
  /** The subscriptions of these users. */
  ofUsers(users: string[]): Promise<PushSubscriptionRecord[]>;
  /** The stored key pair; stores `offer` first when there is none (see the contract). */
  vapidKeys(offer: VapidKeys): Promise<VapidKeys>;
}
