// The AvatarStore port: which blob (in the BlobStore of attachments) is each user's picture.
// Implementations: store/sqlite/avatars.ts and store/postgres/avatars.ts, in the Store's
// database.
//
// Contract
// - Each method is one atomic statement; a write's promise settles after it is durable.
// - `set` and `remove` resolve with the blob they replaced or removed (null when there was
//   none), so the caller deletes its bytes: a blob handed back here is never returned again.
export interface AvatarRecord {
  user: string;
  blob: string;
  updatedAt: number;
}

export interface AvatarStore {
  /** The pictures of these users (users without one are absent). */
  ofUsers(users: string[]): Promise<AvatarRecord[]>;
  /** Makes `blob` the user's picture; resolves with the one it replaced. */
  set(user: string, blob: string, at: number): Promise<string | null>;
  /** Removes the user's picture; resolves with its blob. */
  remove(user: string): Promise<string | null>;
}
