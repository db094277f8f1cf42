// Building and parsing WebSocket frames. Push events are serialised here, once per event.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { ParleyError } from '../errors.js';
import { Commands, type CommandFrame, type CommandName, type EventMap, type EventName } from './schema.js';

/** Serialises a push event to the bytes every recipient receives. */
export function encodeEvent<E extends EventName>(ev: E, data: EventMap[E]): Buffer {
  return Buffer.from(eventText(ev, data));
}
export function eventText<E extends EventName>(ev: E, data: EventMap[E]): string {
  return JSON.stringify({ ev, data });
}

const checks = new Map<string, TypeCheck<TSchema>>(
  Object.entries(Commands).map(([name, schema]) => [name, TypeCompiler.Compile(schema as TSchema)]),
);

export interface ParsedFrame { id: string | number | null; frame?: CommandFrame; error?: ParleyError }

/** Parses and validates one client frame. Never throws: problems come back as `error`. */
export function parseFrame(text: string): ParsedFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { id: null, error: new ParleyError('invalid', 'frame is not valid JSON') };
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return { id: null, error: new ParleyError('invalid', 'frame must be a JSON object') };
  }
  const obj = raw as Record<string, unknown>;
  const id = (typeof obj.id === 'number' && Number.isSafeInteger(obj.id) && obj.id >= 0) ||
    (typeof obj.id === 'string' && obj.id.length > 0 && obj.id.length <= 64) ? obj.id as string | number : null;
  if (id === null) return { id: null, error: new ParleyError('invalid', 'frame needs an "id": a non-negative integer or a string of 1-64 characters') };
  if (typeof obj.cmd !== 'string') return { id, error: new ParleyError('invalid', 'frame needs a "cmd" string') };
  const check = checks.get(obj.cmd);
  if (!check || !Object.hasOwn(Commands, obj.cmd)) {
    return { id, error: new ParleyError('invalid', `unknown command "${obj.cmd.slice(0, 40)}"`) };
  }
  if (!check.Check(raw)) {
    const e = check.Errors(raw).First();
    const field = e ? e.path.replace(/^\//, '').replace(/\//g, '.') : '';
    const detail = e ? (e.message.includes('Unexpected property') ? 'unexpected field' : e.message) : 'invalid';
    return { id, error: new ParleyError('invalid', field ? `${field}: ${detail}` : detail, field ? { field } : undefined) };
  }
  return { id, frame: raw as CommandFrame };
}

export const isCommand = <N extends CommandName>(f: CommandFrame, name: N): f is CommandFrame<N> => f.cmd === name;
