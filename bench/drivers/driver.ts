// What the load generator needs from a target's client protocol: connect and authenticate,
// make rooms and memberships (setup, never measured), send with an acknowledgement, and hand
// every received chat text to the checker.
import type { RoomSpec, TargetInfo } from '../types.js';

export type OnText = (room: string, text: string) => void;
/** Called once per send: null when acknowledged, else the error. */
export type Ack = (err: string | null) => void;

export interface ClientConn {
  /** Creates the room as its first member, which then receives it; resolves with the id the
   * target gave the room. `users` are all members, the creator first. */
  createRoom(room: RoomSpec, users: string[]): Promise<string>;
  /** Makes this connection (not the creator) a member that receives the room. */
  joinRoom(room: RoomSpec, actual: string): Promise<void>;
  send(room: string, text: string, ack: Ack): void;
  close(): void;
}

export interface ConnectOptions {
  target: TargetInfo;
  user: string;
  token: string;
  localAddress: string;
  onText: OnText;
  onClose: () => void;
}

export type Connect = (o: ConnectOptions) => Promise<ClientConn>;

/** Rejects after `ms` so a setup step that never answers fails instead of hanging the run. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

export const SETUP_TIMEOUT_MS = 30_000;
