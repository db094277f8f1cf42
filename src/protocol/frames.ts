// Building and parsing WebSocket frames. Push events are serialised here, once per event.
import type { TSchema } from '@sinclair/typebox';
import { ParleyError } from '../errors.js';
import { Commands, type CommandFrame, type CommandName, type EventMap, type EventName } from './schema.js';
import { validate } from './validate.js';

/** Serialises a push event to the bytes every recipient receives. */
export function encodeEvent<E extends EventName>(ev: E, data: EventMap[E]): Buffer {
  return Buffer.from(eventText(ev, data));
}
export function eventText<E extends EventName>(ev: E, data: EventMap[E]): string {
  return JSON.stringify({ ev, data });
}

export interface ParsedFrame {
  id: string | number | null;
  frame?: CommandFrame;
  error?: ParleyError;
}

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
  const id =
    (typeof obj.id === 'number' && Number.isSafeInteger(obj.id) && obj.id >= 0) || (typeof obj.id === 'string' && obj.id.length > 0 && obj.id.length <= 64)
      ? obj.id
      : null;
  if (id === null) return { id: null, error: new ParleyError('invalid', 'frame needs an "id": a non-negative integer or a string of 1-64 characters') };
  if (typeof obj.cmd !== 'string') return { id, error: new ParleyError('invalid', 'frame needs a "cmd" string') };
  if (!Object.hasOwn(Commands, obj.cmd)) {
    return { id, error: new ParleyError('invalid', `unknown command "${obj.cmd.slice(0, 40).replace(/[\0\uD800-\uDFFF]/g, '\uFFFD')}"`) };
  }
  try {
    return { id, frame: validateCommand(obj.cmd as CommandName, raw) };
  } catch (err) {
    return { id, error: err as ParleyError };
  }
}

/** Validates a whole command frame ({id, cmd, ...args}) against its command's schema. */
export function validateCommand<N extends CommandName>(cmd: N, frame: unknown): CommandFrame<N> {
  return validate(Commands[cmd] as TSchema, frame) as CommandFrame<N>;
}
