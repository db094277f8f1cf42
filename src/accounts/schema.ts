// One schema per request and response of the built-in accounts API, used for validation and
// for the OpenAPI document.
import { Type, type Static } from '@sinclair/typebox';
import { User } from '../protocol/schema.js';

/** Usernames are also the account's user id, so they must fit USER_ID_PATTERN (they do). */
export const USERNAME_PATTERN = '^[a-z0-9_.-]{3,32}$';
export const Username = Type.String({ pattern: USERNAME_PATTERN, description: '3-32 of a-z 0-9 _ . - (also the user id)' });
export const Password = Type.String({ minLength: 8, maxLength: 256, description: '8-256 characters' });
const AnyPassword = Type.String({ minLength: 1, maxLength: 256 });

export const RegisterBody = Type.Object(
  {
    username: Username,
    password: Password,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Display name (default: the username)' })),
  },
  { additionalProperties: false },
);

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64, description: 'Case does not matter' }),
    password: AnyPassword,
  },
  { additionalProperties: false },
);

export const RefreshBody = Type.Object(
  {
    refreshToken: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);

export const PasswordBody = Type.Object(
  {
    oldPassword: AnyPassword,
    newPassword: Password,
    signOutOthers: Type.Optional(Type.Boolean({ default: true, description: 'End every other session of the account too (default true)' })),
  },
  { additionalProperties: false },
);

export const Tokens = Type.Object(
  {
    accessToken: Type.String({ description: 'JWT for `Authorization: Bearer` and the WebSocket `auth`' }),
    refreshToken: Type.String({ description: 'Single use: each refresh returns a new one' }),
    tokenType: Type.Literal('Bearer'),
    expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
    user: User,
  },
  { description: "A session's tokens" },
);

export type RegisterBody = Static<typeof RegisterBody>;
export type LoginBody = Static<typeof LoginBody>;
export type PasswordBody = Static<typeof PasswordBody>;
export type Tokens = Static<typeof Tokens>;

export const ProfileBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, description: 'Display name, shown with your messages from now on' }),
  },
  { additionalProperties: false },
);

export const SessionId = Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$', description: 'Session id' });

export const SessionView = Type.Object(
  {
    id: SessionId,
    current: Type.Boolean({ description: 'The session of the request' }),
    createdAt: Type.Integer({ description: 'Signed in at (ms)' }),
    lastUsedAt: Type.Integer({ description: 'Last sign-in or token refresh (ms); a session in use refreshes every few minutes' }),
    expiresAt: Type.Integer({ description: 'Ends at (ms) unless refreshed' }),
    userAgent: Type.String({ description: 'The browser or program that signed in (its User-Agent header)' }),
  },
  { description: 'A live session of your account' },
);

export type ProfileBody = Static<typeof ProfileBody>;
