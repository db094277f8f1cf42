// The tokens Chat21 clients bring: besides those of the configured issuer, HS256 tokens signed
// with the shared key of an existing Chat21 deployment (`chat21.tokenKey`, its JWT_KEY), for
// the endpoints Chat21 clients use (MQTT and the Chat21 REST API) only.
import { sharedKeyVerifier, type Verifier } from '../../auth/jwt.js';
import type { Config } from '../../config.js';

/**
 * A verifier that tries the configured one first, then the shared key. A token signed with
 * the key never makes a Parley administrator: that takes a token of the configured issuer.
 * A token the key does not verify is refused with the configured verifier's reason.
 */
export function withSharedKey(main: Verifier, key: string, cfg: Config): Verifier {
  const shared = sharedKeyVerifier(key, cfg);
  return async (token: string) => {
    try {
      return await main(token);
    } catch (first) {
      const identity = await shared(token);
      if (!identity) throw first;
      return { ...identity, admin: false };
    }
  };
}
