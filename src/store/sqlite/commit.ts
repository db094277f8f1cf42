// Writes one batch of the room log (store/writer.ts) in one SQLite transaction, row by row with
// prepared statements, in the batch's order. A single node is never fenced.
import type Database from 'better-sqlite3';
import { ParleyError } from '../../errors.js';
import type { Member } from '../../protocol/schema.js';
import { channelNameKey } from '../store.js';
import { KeyConflictError, type Batch } from '../writer.js';
import { DAY_MS, FOREVER, metaText, threadColumns, withMentions } from '../rows.js';
import type { Statements } from './statements.js';

const mutedValue = (m: Member): number | null => (m.mutedUntil === undefined ? null : (m.mutedUntil ?? FOREVER));

export class BatchWriter {
  private readonly tx: (b: Batch) => void;

  /** `nextFtsId` numbers text, edit and delete messages for the search index (search-index.ts). */
  constructor(db: Database.Database, s: Statements, nextFtsId: () => number) {
    this.tx = db.transaction((b: Batch) => {
      for (const { id, keepHistory } of b.deleteRooms) {
        if (!keepHistory) {
          s.deleteRoomMessages.run(id);
          s.deleteRoomThreads.run(id);
        }
        s.deleteRoomBans.run(id);
        // Members and access lists go with the row (ON DELETE CASCADE).
        s.deleteRoom.run(id);
      }
      for (const { room: r, directKey, floor } of b.insertRooms) {
        s.insertRoom.run(
          r.id,
          r.kind,
          r.name,
          r.topic,
          r.createdBy,
          r.createdAt,
          directKey,
          r.kind === 'channel' ? channelNameKey(r.name) : null,
          floor,
          r.access,
          r.retention.count,
          r.retention.days === null ? null : Math.round(r.retention.days * DAY_MS),
        );
      }
      for (const { room: r, renamed } of b.updateRooms) {
        s.updateRoom.run(r.name, r.topic, r.access, r.retention.count, r.retention.days === null ? null : Math.round(r.retention.days * DAY_MS), r.id);
        if (renamed) s.setNameKey.run(channelNameKey(r.name), r.id);
      }
      for (const m of b.deleteMembers) s.deleteMember.run(m.room, m.user);
      for (const m of b.insertMembers) s.insertMember.run(m.room, m.user, m.role, m.joinedAt, m.joinSeq, mutedValue(m));
      for (const m of b.updateMembers) s.updateMember.run(m.role, mutedValue(m), m.room, m.user);
      for (const { room, user, ban } of b.bans) {
        if (ban) s.upsertBan.run(room, user, ban.until, ban.reason, ban.by, ban.createdAt);
        else s.deleteBan.run(room, user);
      }
      for (const a of b.access) {
        if (a.on) s.accessAdd.run(a.room, a.list, a.user);
        else s.accessRemove.run(a.room, a.list, a.user);
      }
      for (const x of b.blocks) {
        if (x.on) s.block.run(x.user, x.other, Date.now());
        else s.unblock.run(x.user, x.other);
      }
      for (const { message: m, key, hiddenFor } of b.messages) {
        // Texts, edits and deletes are queued for the search index by their fts_id.
        const ftsId = m.kind === 'text' || m.kind === 'edit' || m.kind === 'delete' ? nextFtsId() : null;
        const { thread, threadOnly } = threadColumns(m);
        const { changes } = s.insertMessage.run(
          m.room,
          m.seq,
          m.kind,
          m.user,
          m.name,
          m.ts,
          m.text ?? null,
          m.target ?? null,
          m.data === undefined ? null : JSON.stringify(m.data),
          key,
          hiddenFor,
          ftsId,
          m.system ? 1 : null,
          metaText(m),
          thread,
          threadOnly,
        );
        if (changes === 0) throw new KeyConflictError();
      }
      for (const t of b.threads) s.putThread.run(t.room, t.root, JSON.stringify(t.summary));
      for (const x of b.mentions) {
        const meta = s.getMeta.get(x.room, x.seq) as string | null | undefined;
        if (meta !== undefined) s.setMeta.run(withMentions(meta, x.users), x.room, x.seq);
      }
    });
  }

  /** Commits the batch, or throws having written nothing of it. */
  write(b: Batch): void {
    try {
      this.tx(b);
    } catch (err) {
      if (err instanceof KeyConflictError || err instanceof ParleyError) throw err;
      const e = err as { code?: string; message?: string };
      if (typeof e.code === 'string' && /^SQLITE_CONSTRAINT/.test(e.code)) throw new ParleyError('conflict', 'already exists');
      if (typeof e.code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN)/.test(e.code)) {
        throw new ParleyError('unavailable', `storage failed: ${e.message}`);
      }
      throw new ParleyError('internal', `storage error: ${e.message ?? String(err)}`);
    }
  }
}
