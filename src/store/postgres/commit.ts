// Writes one batch of the room log (store/writer.ts) on PostgreSQL: one statement per table
// (and per kind of change) for the whole batch, whatever its size, each row passed as arrays
// and expanded with unnest. The messages and thread summaries go through one function,
// parley_write_log (migration 12), so a batch of nothing else (nearly every batch: sends) is a
// single statement, its own transaction, fenced inside it: one round trip. No row is locked to
// decide anything: the room's owner decided it (seqs included) before the batch was written;
// the unique keys are the safety net.
import pg from 'pg';
import { FencedError } from '../../cluster/fence.js';
import type { Member, Message } from '../../protocol/schema.js';
import { channelNameKey } from '../store.js';
import { KeyConflictError, type Batch } from '../writer.js';
import { DAY_MS, FOREVER, metaText, threadColumns } from '../rows.js';
import { toTsvector } from './search-text.js';

const mutedValue = (m: Member): number | null => (m.mutedUntil === undefined ? null : (m.mutedUntil ?? FOREVER));
const retentionMs = (days: number | null): number | null => (days === null ? null : Math.round(days * DAY_MS));

/** The statements of a batch, in the order the Batch contract gives. */
export async function writeBatch(c: pg.ClientBase, b: Batch): Promise<void> {
  if (b.deleteRooms.length > 0) {
    const all = b.deleteRooms.map((r) => r.id);
    const drop = b.deleteRooms.filter((r) => !r.keepHistory).map((r) => r.id);
    if (drop.length > 0) {
      await c.query('DELETE FROM messages WHERE room_id = ANY($1::text[])', [drop]);
      await c.query('DELETE FROM threads WHERE room_id = ANY($1::text[])', [drop]);
    }
    await c.query('DELETE FROM bans WHERE room_id = ANY($1::text[])', [all]);
    // Members and access lists go with the row (ON DELETE CASCADE).
    await c.query('DELETE FROM rooms WHERE id = ANY($1::text[])', [all]);
  }
  if (b.insertRooms.length > 0) {
    const r = b.insertRooms;
    await c.query(
      `INSERT INTO rooms (id, kind, name, topic, created_by, created_at, direct_key, name_key, last_seq, access, retention_count, retention_ms)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[],
        $10::text[], $11::integer[], $12::bigint[])`,
      [
        r.map((x) => x.room.id),
        r.map((x) => x.room.kind),
        r.map((x) => x.room.name),
        r.map((x) => x.room.topic),
        r.map((x) => x.room.createdBy),
        r.map((x) => x.room.createdAt),
        r.map((x) => x.directKey),
        r.map((x) => (x.room.kind === 'channel' ? channelNameKey(x.room.name) : null)),
        r.map((x) => x.floor),
        r.map((x) => x.room.access),
        r.map((x) => x.room.retention.count),
        r.map((x) => retentionMs(x.room.retention.days)),
      ],
    );
  }
  if (b.updateRooms.length > 0) {
    const r = b.updateRooms;
    await c.query(
      `UPDATE rooms r SET name = u.name, topic = u.topic, access = u.access, retention_count = u.rc, retention_ms = u.rms,
        name_key = CASE WHEN u.renamed AND r.kind = 'channel' THEN u.name_key ELSE r.name_key END
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::boolean[], $8::text[])
        AS u(id, name, topic, access, rc, rms, renamed, name_key)
      WHERE r.id = u.id`,
      [
        r.map((x) => x.room.id),
        r.map((x) => x.room.name),
        r.map((x) => x.room.topic),
        r.map((x) => x.room.access),
        r.map((x) => x.room.retention.count),
        r.map((x) => retentionMs(x.room.retention.days)),
        r.map((x) => x.renamed),
        r.map((x) => channelNameKey(x.room.name)),
      ],
    );
  }
  if (b.deleteMembers.length > 0) {
    const m = b.deleteMembers;
    await c.query(
      `DELETE FROM members m USING unnest($1::text[], $2::text[]) AS d(room_id, user_id)
      WHERE m.room_id = d.room_id AND m.user_id = d.user_id`,
      [m.map((x) => x.room), m.map((x) => x.user)],
    );
  }
  if (b.insertMembers.length > 0) {
    const m = b.insertMembers;
    await c.query(
      `INSERT INTO members (room_id, user_id, role, joined_at, read_seq, join_seq, muted_until)
      SELECT r, u, role, j, 0, js, mu FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS x(r, u, role, j, js, mu)`,
      [m.map((x) => x.room), m.map((x) => x.user), m.map((x) => x.role), m.map((x) => x.joinedAt), m.map((x) => x.joinSeq), m.map(mutedValue)],
    );
  }
  if (b.updateMembers.length > 0) {
    const m = b.updateMembers;
    await c.query(
      `UPDATE members m SET role = x.role, muted_until = x.mu
      FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS x(r, u, role, mu)
      WHERE m.room_id = x.r AND m.user_id = x.u`,
      [m.map((x) => x.room), m.map((x) => x.user), m.map((x) => x.role), m.map(mutedValue)],
    );
  }
  const banSet = b.bans.filter((x) => x.ban !== null);
  const banLifted = b.bans.filter((x) => x.ban === null);
  if (banSet.length > 0) {
    await c.query(
      `INSERT INTO bans (room_id, user_id, until, reason, by, created_at)
      SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
      ON CONFLICT (room_id, user_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, created_at = excluded.created_at`,
      [
        banSet.map((x) => x.room),
        banSet.map((x) => x.user),
        banSet.map((x) => x.ban!.until),
        banSet.map((x) => x.ban!.reason),
        banSet.map((x) => x.ban!.by),
        banSet.map((x) => x.ban!.createdAt),
      ],
    );
  }
  if (banLifted.length > 0) {
    await c.query(`DELETE FROM bans b USING unnest($1::text[], $2::text[]) AS d(r, u) WHERE b.room_id = d.r AND b.user_id = d.u`, [
      banLifted.map((x) => x.room),
      banLifted.map((x) => x.user),
    ]);
  }
  const listed = b.access.filter((x) => x.on);
  const unlisted = b.access.filter((x) => !x.on);
  if (listed.length > 0) {
    await c.query(`INSERT INTO access_lists (room_id, list, user_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`, [
      listed.map((x) => x.room),
      listed.map((x) => x.list),
      listed.map((x) => x.user),
    ]);
  }
  if (unlisted.length > 0) {
    await c.query(
      `DELETE FROM access_lists a USING unnest($1::text[], $2::text[], $3::text[]) AS d(r, l, u)
      WHERE a.room_id = d.r AND a.list = d.l AND a.user_id = d.u`,
      [unlisted.map((x) => x.room), unlisted.map((x) => x.list), unlisted.map((x) => x.user)],
    );
  }
  const blocked = b.blocks.filter((x) => x.on);
  const unblocked = b.blocks.filter((x) => !x.on);
  if (blocked.length > 0) {
    await c.query(
      `INSERT INTO blocks (user_id, blocked_id, created_at) SELECT u, o, $3::bigint FROM unnest($1::text[], $2::text[]) AS x(u, o)
      ON CONFLICT DO NOTHING`,
      [blocked.map((x) => x.user), blocked.map((x) => x.other), Date.now()],
    );
  }
  if (unblocked.length > 0) {
    await c.query('DELETE FROM blocks k USING unnest($1::text[], $2::text[]) AS d(u, o) WHERE k.user_id = d.u AND k.blocked_id = d.o', [
      unblocked.map((x) => x.user),
      unblocked.map((x) => x.other),
    ]);
  }
  if (b.messages.length > 0 || b.threads.length > 0) await writeLog(c, b, null);
  for (const x of b.mentions) {
    // The mentions kept with the edited message gain those its edit added (once each).
    await c.query(
      `UPDATE messages SET meta = jsonb_set(coalesce(meta, '{}')::jsonb, '{mentions}', (
        SELECT coalesce(jsonb_agg(DISTINCT u), '[]'::jsonb) FROM (
          SELECT jsonb_array_elements_text(coalesce(meta::jsonb -> 'mentions', '[]'::jsonb)) AS u UNION SELECT unnest($3::text[])
        ) v))::text
      WHERE room_id = $1 AND seq = $2`,
      [x.room, x.seq, x.users],
    );
  }
}

/** Whether the batch holds nothing but messages and thread summaries: `writeLog` alone writes it, in one round trip. */
export function logOnly(b: Batch): boolean {
  return (
    b.mentions.length === 0 &&
    b.deleteRooms.length === 0 &&
    b.insertRooms.length === 0 &&
    b.updateRooms.length === 0 &&
    b.deleteMembers.length === 0 &&
    b.insertMembers.length === 0 &&
    b.updateMembers.length === 0 &&
    b.bans.length === 0 &&
    b.access.length === 0 &&
    b.blocks.length === 0
  );
}

/** SQLSTATEs raised by parley_write_log (migration 12). */
const FENCED = 'PY001';
const KEY_TAKEN = 'PY002';

/**
 * Writes the batch's messages and thread summaries with one statement, parley_write_log
 * (migration 12). Outside a transaction that statement is the transaction: with an epoch it
 * enters the fence first, so a batch of nothing else commits, fenced, in one round trip.
 * Inside one, pass no epoch (the transaction entered the fence). Rejects with FencedError
 * or KeyConflictError as commit's contract says, with the driver's error otherwise.
 *
 * Search finds only the current version of a message: an edit replaces what its thread
 * matches, a delete removes it. Versions stored before the batch lose their vector (the
 * function's UPDATE); versions within the batch never get one.
 */
export async function writeLog(c: pg.ClientBase, b: Batch, epoch: number | null): Promise<void> {
  const msgs = b.messages.map((r) => r.message);
  const tsv = msgs.map((m) => ((m.kind === 'text' || m.kind === 'edit') && m.text !== undefined ? toTsvector(m.text) : null));
  const at = new Map<string, number>();
  const targets: Array<{ room: string; seq: number }> = [];
  msgs.forEach((m: Message, i) => {
    if ((m.kind === 'edit' || m.kind === 'delete') && m.target !== undefined) {
      targets.push({ room: m.room, seq: m.target });
      for (const [k, j] of at) {
        const o = msgs[j]!;
        if (o.room === m.room && (o.seq === m.target || (o.kind === 'edit' && o.target === m.target))) {
          tsv[j] = null;
          at.delete(k);
        }
      }
    }
    if (tsv[i] !== null) at.set(`${m.room}\n${m.seq}`, i);
  });
  // One row object per message, short keys named by migration 12's json_to_recordset; absent
  // fields (undefined) are left out of the JSON and read as NULL.
  const rows = msgs.map((m, i) => {
    const t = threadColumns(m);
    return {
      r: m.room,
      s: m.seq,
      k: m.kind,
      u: m.user,
      n: m.name,
      t: m.ts,
      x: m.text,
      g: m.target,
      d: m.data === undefined ? undefined : JSON.stringify(m.data),
      y: b.messages[i]!.key,
      h: b.messages[i]!.hiddenFor,
      v: tsv[i],
      sy: m.system ? true : undefined,
      m: metaText(m),
      th: t.thread,
      o: t.threadOnly ? true : undefined,
    };
  });
  try {
    await c.query({
      // Named, so each connection has it parsed once: it runs with nearly every send.
      name: 'parley_write_log',
      text: 'SELECT parley_write_log($1, $2, $3, $4, $5, $6, $7)',
      values: [
        epoch,
        JSON.stringify(rows),
        targets.map((t) => t.room),
        targets.map((t) => t.seq),
        b.threads.map((t) => t.room),
        b.threads.map((t) => t.root),
        b.threads.map((t) => JSON.stringify(t.summary)),
      ],
    });
  } catch (err) {
    const code = err instanceof pg.DatabaseError ? err.code : undefined;
    // A key stored before (by an earlier owner, or a retry) was skipped: nothing of the batch commits.
    if (code === KEY_TAKEN) throw new KeyConflictError();
    if (code === FENCED && epoch !== null) {
      const current = (err as pg.DatabaseError).detail;
      throw new FencedError(epoch, current ? Number(current) : null);
    }
    throw err;
  }
}
