// Runs a synchronous SQLite call as the ports promise: a rejection (`unavailable` for a
// database failure, the ParleyError itself for a refusal), never a throw.
import { ParleyError } from '../../errors.js';

export function guard<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    if (err instanceof ParleyError) return Promise.reject(err);
    const e = err as { message?: string };
    return Promise.reject(new ParleyError('unavailable', `storage failed: ${e.message ?? 'database closed'}`));
  }
}
