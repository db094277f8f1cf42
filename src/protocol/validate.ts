// The one validation of input from outside: WebSocket frames, REST bodies, queries and paths,
// MQTT payloads, Chat21 bodies, arguments rewritten by hooks and JWT claims all pass through
// `validate` (or `inputProblem` where no schema applies). Besides the schema, every input
// keeps two rules no JSON schema can state:
// - objects and arrays nest at most MAX_DEPTH levels, the input itself being the first;
// - every string, object keys included, is well-formed text: no NUL character (no database
//   stores it in text) and no lone UTF-16 surrogate (it has no UTF-8 form, so what was stored
//   would differ from what was delivered live).
import type { Static, TSchema } from '@sinclair/typebox';
import { Kind } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { ParleyError } from '../errors.js';

/** Deepest nesting of objects and arrays accepted in any input (the input itself is level 1). */
export const MAX_DEPTH = 32;

/** A NUL, a high surrogate not followed by a low one, or a low one not preceded by a high one. */
const ILL_FORMED = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string is not acceptable text, or null when it is. */
export function textProblem(s: string): string | null {
  const m = ILL_FORMED.exec(s);
  if (!m) return null;
  return m[0] === '\0' ? 'NUL characters are not allowed' : 'lone UTF-16 surrogates are not allowed (the text is not valid Unicode)';
}

/** Bidirectional embeddings, overrides and isolates: in a name they turn the text after it around. */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/**
 * A name as it is kept and shown beside other text (a display name, a room's name or topic):
 * without bidirectional controls, which would run on into the text an app writes after it
 * ("Mallory added Victim" drawn reversed), and trimmed. May be empty.
 */
export function plainName(s: string): string {
  return s.replace(BIDI_CONTROLS, '').trim();
}

/** The first `max` UTF-16 units of `s`, one fewer when that would split a surrogate pair. */
export function truncateText(s: string, max: number): string {
  if (s.length <= max) return s;
  const last = s.charCodeAt(max - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

export interface InputProblem {
  /** Dotted path of the offending value ('' for the input itself), e.g. "data.a.0". */
  field: string;
  message: string;
}

interface Found {
  path: Array<string | number>;
  message: string;
}

/**
 * The first place where `value` breaks the depth or the text rule, or null. Walks at most
 * MAX_DEPTH levels, so a hostile input cannot exhaust the stack here; the path is only built
 * for a problem, so input that keeps the rules costs no allocation.
 */
export function inputProblem(value: unknown): InputProblem | null {
  const found = walk(value, 1);
  return found ? { field: found.path.join('.'), message: found.message } : null;
}

function walk(value: unknown, depth: number): Found | null {
  if (typeof value === 'string') {
    const p = textProblem(value);
    return p ? { path: [], message: p } : null;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (depth > MAX_DEPTH) return { path: [], message: `nested deeper than ${MAX_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = walk(value[i], depth + 1);
      if (p) {
        p.path.unshift(i);
        return p;
      }
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const k = textProblem(key);
    // The key itself is named with its bad characters replaced, so the reply stays valid text.
    if (k) return { path: [key.replace(/[\0\uD800-\uDFFF]/g, '\uFFFD')], message: `key: ${k}` };
    const p = walk((value as Record<string, unknown>)[key], depth + 1);
    if (p) {
      p.path.unshift(key);
      return p;
    }
  }
  return null;
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function compile(schema: TSchema): TypeCheck<TSchema> {
  let c = compiled.get(schema);
  if (!c) compiled.set(schema, (c = TypeCompiler.Compile(schema)));
  return c;
}

/** `invalid`, naming the field the way every transport does: "what: field: problem". */
function invalid(what: string | undefined, field: string, detail: string): ParleyError {
  const message = [what, field || undefined, detail].filter((s) => s !== undefined && s !== '').join(': ');
  return new ParleyError('invalid', message, field ? { field } : undefined);
}

/** The first schema error of `value`, or null when it matches. */
export function schemaProblem(schema: TSchema, value: unknown): InputProblem | null {
  const c = compile(schema);
  if (c.Check(value)) return null;
  const e = c.Errors(value).First();
  if (!e) return { field: '', message: 'invalid' };
  return {
    field: e.path.replace(/^\//, '').replace(/\//g, '.'),
    message: e.message.includes('Unexpected property') ? 'unexpected field' : e.message,
  };
}

/**
 * Checks `value` against the input rules and `schema`; returns it typed, or throws `invalid`
 * naming the field (prefixed with `what` when given, e.g. "body").
 */
export function validate<T extends TSchema>(schema: T, value: unknown, what?: string): Static<T> {
  const p = inputProblem(value) ?? schemaProblem(schema, value);
  if (p) throw invalid(what, p.field, p.message);
  return value;
}

/** Throws `invalid` when `value` breaks the depth or text rule (inputs without a schema). */
export function checkInput(value: unknown, what?: string): void {
  const p = inputProblem(value);
  if (p) throw invalid(what, p.field, p.message);
}

interface FastifyValidationIssue {
  message: string;
  instancePath: string;
  keyword: string;
  schemaPath: string;
  params: Record<string, unknown>;
}
type FastifyValidator = (value: unknown) => { value: unknown } | { error: FastifyValidationIssue[] };

/** A whole number as text: what a query or path string must be to stand for an integer. */
const INTEGER_TEXT = /^[+-]?\d+$/;

/**
 * Query, path and header strings converted to the schema's types. TypeBox's conversion
 * truncates ("2.9" and "2e3" both become the integer 2), so an integer field whose string is
 * not a whole number keeps its string, and the schema refuses it (`invalid`), as the same value
 * in a WebSocket frame is refused.
 */
function convert(schema: TSchema, value: unknown): unknown {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  const inexact: Array<[string, string]> = [];
  if (props && typeof value === 'object' && value !== null) {
    for (const [key, field] of Object.entries(props)) {
      const given = (value as Record<string, unknown>)[key];
      if ((field as { type?: unknown }).type === 'integer' && typeof given === 'string' && !INTEGER_TEXT.test(given)) inexact.push([key, given]);
    }
  }
  const converted = Value.Convert(schema, value);
  if (inexact.length === 0 || typeof converted !== 'object' || converted === null) return converted;
  for (const [key, given] of inexact) (converted as Record<string, unknown>)[key] = given;
  return converted;
}

/**
 * The validator compiler of the HTTP transport: request schemas (TypeBox) checked by
 * `validate`'s rules. Query, path and header strings are first converted to the schema's
 * types (a "?limit=5" is the number 5), as the WebSocket frame would carry them.
 */
export function httpValidatorCompiler({ schema, httpPart }: { schema: unknown; httpPart?: string }): FastifyValidator {
  const s = schema as TSchema;
  if (!s || typeof s !== 'object' || !(Kind in s)) throw new TypeError('request schemas must be TypeBox schemas');
  compile(s);
  return (value) => {
    const converted = httpPart === 'body' ? value : convert(s, value);
    const p = inputProblem(converted) ?? schemaProblem(s, converted);
    if (!p) return { value: converted };
    return { error: [{ message: p.message, instancePath: p.field ? '/' + p.field.replace(/\./g, '/') : '', keyword: 'parley', schemaPath: '', params: {} }] };
  };
}
