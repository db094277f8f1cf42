// The `chat21` section of the configuration: the Chat21 app id, its REST API and the shared
// key of an existing Chat21 deployment. (The MQTT listener is the `mqtt` section.)
import { Type, type Static } from '@sinclair/typebox';

export const Chat21Config = Type.Object(
  {
    appId: Type.String({ default: 'tilechat', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'The Chat21 app id in topics and REST paths' }),
    rest: Type.Boolean({ default: true, description: 'Serve the Chat21-compatible REST API when mqtt.enabled' }),
    restPrefix: Type.String({
      default: '/api',
      pattern: '^(/[A-Za-z0-9._~-]+)+$',
      description: 'Prefix of the Chat21-compatible REST API (routes are under PREFIX/APPID)',
    }),
    instancesPerUser: Type.Integer({
      default: 10,
      minimum: 1,
      maximum: 1000,
      description: "Push-notification instances (devices) kept per user; saving one more removes the user's least recently saved one",
    }),
    tokenKey: Type.Optional(
      Type.String({
        minLength: 8,
        description:
          'An HS256 key whose tokens the MQTT endpoint and the Chat21 REST API accept besides the configured ones (existing Chat21 deployments sign with their JWT_KEY, default "tokenKey")',
      }),
    ),
  },
  { default: {}, additionalProperties: false },
);
export type Chat21Config = Static<typeof Chat21Config>;

/** Where the Chat21 REST API is mounted: PREFIX/APPID. */
export const chat21RestBase = (c: Chat21Config): string => `${c.restPrefix}/${c.appId}`;

/** Checks beyond the schema; returns the bad key and why, or null. */
export function checkChat21(c: Chat21Config): { key: string; message: string } | null {
  const base = chat21RestBase(c);
  if (/^\/api\/(v1|docs)(\/|$)/.test(base + '/')) {
    return { key: 'chat21.appId', message: `${base} would collide with Parley's own /api/v1 and /api/docs routes` };
  }
  return null;
}
