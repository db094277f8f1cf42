// Input rules of the app's forms. They repeat the server's schemas (src/protocol/schema.ts and
// src/accounts/schema.ts; test/web.unit.test.ts checks they agree) so that a mistake is named
// next to its field before any round trip; the server stays the authority.

export const USER_ID_RE = /^[A-Za-z0-9_.@|:+-]{1,128}$/;
export const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;

export const LIMITS = {
  roomName: 100,
  topic: 500,
  displayName: 100,
  passwordMin: 8,
  passwordMax: 256,
  reason: 500,
  emoji: 32,
} as const;

/** A field's problem in words, or null when it is fine. */
export type Check = string | null;

export function checkUsername(v: string): Check {
  if (v.length < 3) return 'At least 3 characters.';
  if (v.length > 32) return 'At most 32 characters.';
  if (!USERNAME_RE.test(v)) return 'Only lowercase letters, digits and _ . - are allowed.';
  return null;
}

export function checkLoginName(v: string): Check {
  if (v.length === 0) return 'Enter your username.';
  if (v.length > 64) return 'At most 64 characters.';
  return null;
}

export function checkNewPassword(v: string): Check {
  if (v.length < LIMITS.passwordMin) return `At least ${LIMITS.passwordMin} characters.`;
  if (v.length > LIMITS.passwordMax) return `At most ${LIMITS.passwordMax} characters.`;
  return null;
}

export function checkPassword(v: string): Check {
  if (v.length === 0) return 'Enter your password.';
  if (v.length > LIMITS.passwordMax) return `At most ${LIMITS.passwordMax} characters.`;
  return null;
}

export function checkDisplayName(v: string): Check {
  return v.length > LIMITS.displayName ? `At most ${LIMITS.displayName} characters.` : null;
}

export function checkUserId(v: string): Check {
  if (v.length === 0) return 'Enter a user id.';
  if (!USER_ID_RE.test(v)) return 'A user id is 1–128 letters, digits or _ . @ | : + -';
  return null;
}

export function checkRoomName(v: string): Check {
  if (v.length === 0) return 'Give the room a name.';
  if (v.length > LIMITS.roomName) return `At most ${LIMITS.roomName} characters.`;
  return null;
}

export function checkTopic(v: string): Check {
  return v.length > LIMITS.topic ? `At most ${LIMITS.topic} characters.` : null;
}

export function checkReason(v: string): Check {
  return v.length > LIMITS.reason ? `At most ${LIMITS.reason} characters.` : null;
}

/** Message text: the server's configured limit (limits.textChars) is checked by the server. */
export function checkText(v: string): Check {
  return v.trim().length === 0 ? 'A message cannot be empty.' : null;
}
