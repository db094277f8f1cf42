// Password hashing for built-in accounts: argon2id, encoded as a PHC string so each hash
// carries its own parameters (changing the configured cost affects new hashes only).
import argon2 from 'argon2';

export interface HashCost {
  /** Memory per hash, KiB. */
  memoryKiB: number;
  /** Passes over that memory. */
  passes: number;
}

export class PasswordHasher {
  /** A hash of a password nobody knows, so a login for an unknown user costs as much as a real one. */
  private decoy: Promise<string> | null = null;

  constructor(private readonly cost: HashCost) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, memoryCost: this.cost.memoryKiB, timeCost: this.cost.passes });
  }

  /**
   * True when `password` matches `hash`. With no hash (unknown user) it verifies against a
   * decoy and answers false, so response time does not tell which usernames exist.
   */
  async verify(hash: string | null, password: string): Promise<boolean> {
    if (hash === null) {
      this.decoy ??= this.hash(`decoy-${Math.random()}`);
      await argon2.verify(await this.decoy, password).catch(() => false);
      return false;
    }
    try {
      return await argon2.verify(hash, password);
    } catch {
      // A malformed stored hash must not let anyone in, nor crash the request.
      return false;
    }
  }
}
