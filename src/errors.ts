// The one table of error codes Parley answers with. Every transport maps these codes the
// same way; nothing invents an error string in a handler.

export const ErrorCodes = {
  invalid: 'The request is malformed or a field has the wrong type or value.',
  unauthorized: 'Authentication is missing, expired or invalid.',
  forbidden: 'You are not allowed to do this here.',
  not_found: 'No such room, user or message.',
  conflict: 'This conflicts with the current state.',
  rate_limited: 'Too many requests; retry later.',
  too_large: 'The frame or field exceeds the configured size limit.',
  unavailable: 'The service cannot complete this right now; retry later.',
  internal: 'An unexpected error occurred; nothing was stored.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class ParleyError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? ErrorCodes[code]);
    this.name = 'ParleyError';
    this.code = code;
    if (details) this.details = details;
  }
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

/** Normalises anything thrown into a ParleyError; unknown errors become `internal`. */
export function toParleyError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  return new ParleyError('internal');
}
