// PostgreSQL implementation of the VersionStore port, on the pool of PostgresStore.
import type pg from 'pg';
import type { Edit, VersionStore } from '../versions.js';
import { query } from './pool.js';

export class PostgresVersionStore implements VersionStore {
  constructor(private readonly pool: pg.Pool) {}

  async edits(room: string, seq: number, viewer?: string): Promise<{ edits: Edit[]; deleted: boolean }> {
    const { rows } = await query<{ seq: string; text: string; ts: string; kind: string; hidden_for: string | null }>(
      this.pool,
      "SELECT seq, text, ts, kind, hidden_for FROM messages WHERE room_id = $1 AND target = $2 AND kind IN ('edit', 'delete') ORDER BY seq",
      [room, seq],
    );
    return {
      edits: rows
        .filter((r) => r.kind === 'edit' && (viewer === undefined || r.hidden_for !== viewer))
        .map((r) => ({ seq: Number(r.seq), text: r.text, ts: Number(r.ts) })),
      deleted: rows.some((r) => r.kind === 'delete'),
    };
  }
}
