// The one table from Parley's stable error codes to HTTP statuses, and the error replies of
// the HTTP transport: every failure, from schema validation to a service refusal, answers
// { "error": { "code", "message", "details"? } } with the status of its code.
import type { FastifyError, FastifyReply } from 'fastify';
import { ParleyError, toParleyError, type ErrorCode } from '../../errors.js';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** Where fastify found a validation problem, in the words an API user reads. */
const PARTS: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

interface ValidationIssue {
  instancePath?: string;
  message?: string;
}

/** A schema failure as `invalid`, naming the field the way the WebSocket protocol does. */
function validationError(issues: ValidationIssue[], context: string | undefined): ParleyError {
  const part = PARTS[context ?? 'body'] ?? 'body';
  const first = issues[0] ?? {};
  const field = (first.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const raw = first.message ?? 'invalid';
  const detail = raw.includes('Unexpected property') ? 'unexpected field' : raw;
  const message = field ? `${field}: ${detail}` : `${part}: ${detail}`;
  return new ParleyError('invalid', message, field ? { field, in: part } : { in: part });
}

/** Normalises anything a route or fastify itself threw into a coded error. */
export function toHttpError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  const fe = err as Partial<FastifyError> | null;
  if (fe && Array.isArray(fe.validation)) return validationError(fe.validation, fe.validationContext);
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new ParleyError('too_large', fe?.message);
  if (status === 404) return new ParleyError('not_found', fe?.message);
  if (status >= 400 && status < 500) return new ParleyError('invalid', fe?.message);
  return toParleyError(err);
}

/** Writes the error reply, with the headers its code calls for. */
export function sendError(reply: FastifyReply, e: ParleyError): FastifyReply {
  if (e.code === 'unauthorized') void reply.header('www-authenticate', 'Bearer');
  const retryMs = e.details?.retryAfterMs;
  if (e.code === 'rate_limited' || e.code === 'unavailable') {
    if (typeof retryMs === 'number' && retryMs > 0) void reply.header('retry-after', String(Math.ceil(retryMs / 1000)));
    else if (e.code === 'rate_limited') void reply.header('retry-after', '1');
  }
  return reply.code(HTTP_STATUS[e.code]).send({ error: e.toJSON() });
}
