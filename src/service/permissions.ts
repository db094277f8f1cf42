// Who may moderate a room and whom: pure decisions on facts the caller has read (the acting
// user, its membership, the target's role). The service's moderation commands and the Chat21
// integration decide with these, so the rule exists once.
import { ParleyError } from '../errors.js';
import type { Member, Role } from '../protocol/schema.js';

/** Rank of each role: a moderator acts only on members of a lower rank. */
export const ROLE_RANK: Readonly<Record<Role, number>> = { owner: 2, admin: 1, member: 0 };

/**
 * The role `user` moderates a room with: its own when it is the room's owner or an admin,
 * `owner` for administrators (they moderate every room without being members). Throws
 * `forbidden` for anyone else.
 */
export function moderatorRole(user: { admin: boolean }, member: Pick<Member, 'role'> | null): Role {
  if (user.admin) return 'owner';
  if (!member) throw new ParleyError('forbidden', 'not a member of this room');
  if (member.role === 'member') throw new ParleyError('forbidden', 'only owners and admins can do this');
  return member.role;
}

/** Throws `forbidden` unless `role` outranks `target` (owners act on admins, admins on members). */
export function requireOutrank(role: Role, target: Role): void {
  if (ROLE_RANK[target] >= ROLE_RANK[role]) throw new ParleyError('forbidden', `a ${role} cannot do this to a ${target}`);
}
