// Chat21 topics: which ones a user may publish and subscribe to (the ACL), and what a publish
// asks for. A user reads only its own inbox subtree `apps/{app}/users/{me}/#` and writes only
// its own inbox subtree and its own outgoing subtree `apps/{app}/outgoing/users/{me}/#`.
// Within those, only the operations below are understood.

export type PublishOp =
  | { op: 'outgoing'; to: string }
  | { op: 'receipt'; conversWith: string; messageId: string }
  | { op: 'conversation'; conversWith: string }
  | { op: 'archive'; conversWith: string }
  | { op: 'presence' }
  | { op: 'unknown' };

/** Topic suffixes only the server publishes; clients may not, and only these are forwarded. */
export const SERVER_SUFFIXES: ReadonlySet<string> = new Set(['clientadded', 'clientupdated', 'clientdeleted', 'clienterror']);

/** Whether only the server publishes on `topic` (its last level is a server suffix). */
export const isServerTopic = (topic: string): boolean => SERVER_SUFFIXES.has(topic.slice(topic.lastIndexOf('/') + 1));

export const inboxBase = (app: string, user: string): string => `apps/${app}/users/${user}`;

/**
 * What a publish on `topic` by `me` asks for, or null when the ACL refuses it: a topic
 * outside the user's own inbox and outgoing subtrees, or a server-only suffix.
 */
export function parsePublish(topic: string, app: string, me: string): PublishOp | null {
  const p = topic.split('/');
  if (p[0] !== 'apps' || p[1] !== app) return null;
  if (SERVER_SUFFIXES.has(p[p.length - 1]!)) return null;
  if (p[2] === 'outgoing') {
    if (p[3] !== 'users' || p[4] !== me) return null;
    if (p.length === 8 && p[5] === 'messages' && p[7] === 'outgoing' && p[6] !== '') return { op: 'outgoing', to: p[6]! };
    return { op: 'unknown' };
  }
  if (p[2] !== 'users' || p[3] !== me) return null;
  const rest = p.slice(4);
  if (rest.length === 4 && rest[0] === 'messages' && rest[3] === 'update' && rest[1] && rest[2]) {
    return { op: 'receipt', conversWith: rest[1], messageId: rest[2] };
  }
  if (rest.length === 3 && rest[0] === 'conversations' && rest[1]) {
    if (rest[2] === 'update') return { op: 'conversation', conversWith: rest[1] };
    if (rest[2] === 'archive') return { op: 'archive', conversWith: rest[1] };
  }
  if (rest.length === 2 && rest[0] === 'presence' && rest[1]) return { op: 'presence' };
  return { op: 'unknown' };
}

/**
 * Whether `me` may subscribe to `filter`: it must name `me`'s inbox literally, so no
 * wildcard can reach another user's topics (`apps/{app}/users/{me}` and anything below).
 */
export function mayRead(filter: string, app: string, me: string): boolean {
  const p = filter.split('/');
  if (p[0] !== 'apps' || p[1] !== app || p[2] !== 'users' || p[3] !== me) return false;
  return p.length === 4 || p.slice(4).every((level, i, all) => level !== '#' || i === all.length - 1);
}
