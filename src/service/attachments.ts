// Attachments: the rules of uploading, reading and removing files. Who may upload (members
// who are not muted), read (members of the room, administrators) and delete (the uploader,
// the room's owners and admins, administrators); the size limit; the type, name and image
// handling of media.ts; short-lived signed URLs for `<img src>`; and the removal of files
// when their message, their room or retention goes, or when an upload is never sent.
// The bytes go through the BlobStore port, the records through the AttachmentStore port.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { Identity } from '../auth/jwt.js';
import type { BlobSource, BlobStore } from '../blobs/blobs.js';
import { tooLarge } from '../blobs/blobs.js';
import { ParleyError } from '../errors.js';
import type { AttachmentRef, CommandArgs } from '../protocol/schema.js';
import type { Attachment, AttachmentStore } from '../store/attachments.js';
import type { Store } from '../store/store.js';
import { commandHook, ownHook, type Hook } from './hooks.js';
import { detectType, IMAGE_SLOTS, IMAGE_TYPES, processImage, SAMPLE_BYTES, sanitizeName } from './media.js';

export interface AttachmentOptions {
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /** Most pixels an image may have (decompression bombs are refused before decoding). */
  maxImagePixels: number;
  /** Longer side of image previews, in pixels. */
  previewPx: number;
  /** Lifetime of signed URLs, in seconds. */
  urlTtlSec: number;
  /** Uploads no message carries are removed this long after the upload, in seconds. */
  unboundTtlSec: number;
  /** The server secret signed URLs are derived from (the same on every node of a cluster). */
  secret: string;
  /** Uploads one user may have in progress on this node; one more is `rate_limited`. */
  uploadsPerUser: number;
  /** Bytes of unsent uploads one user may hold; an upload beyond is `rate_limited` (0: no cap). */
  unsentBytesPerUser: number;
  /** A deleted room whose messages are kept keeps the files its messages carry. */
  keepDeletedRoomFiles?: boolean;
}

/** An attachment as the API shows it to one reader, with signed URLs made for that reader. */
export interface AttachmentView {
  id: string;
  room: string;
  uploader: string;
  name: string;
  size: number;
  type: string;
  width?: number;
  height?: number;
  createdAt: number;
  /** The seq of the message that carries it; null until one does. */
  message: number | null;
  /** Signed URL of the file, readable without a header until `expiresAt`. */
  url: string;
  /** Signed URL of the preview (images only). */
  previewUrl?: string;
  /** When the signed URLs stop working (ms since the epoch). */
  expiresAt: number;
}

export type Variant = 'file' | 'preview';

export interface Signature {
  u: string;
  exp: number;
  sig: string;
}

export interface Upload {
  body: BlobSource;
  /** The file name the client gave (sanitised here). */
  name: string;
  /** The Content-Type the client declared (only a hint, see media.ts). */
  declaredType?: string;
  /** The declared length, when known: past the limit, refused before reading. */
  length?: number;
}

const ATTACHMENT_ID = /^[A-Za-z0-9_-]{22}$/;
export const API_BASE = '/api/v1/attachments';

export class AttachmentService {
  /** Images are decoded IMAGE_SLOTS at a time, so memory for decoding is bounded. */
  private readonly images = new PQueue({ concurrency: IMAGE_SLOTS });
  private readonly urlKey: Buffer;

  constructor(
    private readonly store: Pick<Store, 'getRoom' | 'getMember' | 'bounds' | 'keyed'>,
    private readonly records: AttachmentStore,
    readonly blobs: BlobStore,
    readonly opts: AttachmentOptions,
    private readonly log: Logger,
  ) {
    // A key of its own, so a signed URL can never pass for any other signature of the secret.
    this.urlKey = createHmac('sha256', opts.secret).update('parley attachment urls v1').digest();
  }

  // ---- uploading ------------------------------------------------------------------------------

  /** Uploads in progress per user on this node. */
  private readonly uploading = new Map<string, number>();

  /** Stores an upload of a member to a room; resolves with its view for the uploader. */
  async upload(user: Identity, room: string, up: Upload): Promise<AttachmentView> {
    const n = this.uploading.get(user.id) ?? 0;
    if (n >= this.opts.uploadsPerUser) {
      throw new ParleyError('rate_limited', `at most ${this.opts.uploadsPerUser} uploads at a time`, { retryAfterMs: 1000 });
    }
    this.uploading.set(user.id, n + 1);
    try {
      return await this.receive(user, room, up);
    } finally {
      const left = (this.uploading.get(user.id) ?? 1) - 1;
      if (left > 0) this.uploading.set(user.id, left);
      else this.uploading.delete(user.id);
    }
  }

  private async receive(user: Identity, room: string, up: Upload): Promise<AttachmentView> {
    await this.requireUploader(user, room);
    if (up.length !== undefined && up.length > this.opts.maxBytes) throw tooLarge(this.opts.maxBytes);
    // Checked before the bytes are read (with the declared length, when there is one) and again
    // with the stored size: a user cannot fill the disk with uploads it never sends.
    await this.requireRoom(user.id, up.length ?? 1);
    const name = sanitizeName(up.name);
    const { sample, rest } = await peek(up.body, SAMPLE_BYTES);
    if (sample.length === 0) throw new ParleyError('invalid', 'the file is empty', { field: 'file' });
    const type = await detectType(sample, up.declaredType);
    let stored = await this.blobs.put(prepend(sample, rest), { maxBytes: this.opts.maxBytes });
    let preview: string | null = null;
    let width: number | null = null;
    let height: number | null = null;
    try {
      if (IMAGE_TYPES.includes(type)) {
        const image = await this.images.add(async () =>
          processImage(await this.readAll(stored.id), type, {
            maxPixels: this.opts.maxImagePixels,
            previewPx: this.opts.previewPx,
          }),
        );
        ({ width, height } = image);
        const clean = await this.blobs.put(once(image.original), { maxBytes: Number.MAX_SAFE_INTEGER });
        await this.blobs.delete(stored.id);
        stored = clean;
        preview = (await this.blobs.put(once(image.preview), { maxBytes: Number.MAX_SAFE_INTEGER })).id;
      }
      await this.requireRoom(user.id, stored.size);
      const a: Attachment = {
        id: randomBytes(16).toString('base64url'),
        room,
        uploader: user.id,
        name,
        size: stored.size,
        type,
        width,
        height,
        blob: stored.id,
        preview,
        sha256: stored.sha256,
        createdAt: Date.now(),
        message: null,
      };
      await this.records.create(a);
      return this.view(a, user.id);
    } catch (err) {
      await this.blobs.delete(stored.id).catch(() => undefined);
      if (preview) await this.blobs.delete(preview).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Refuses an upload of `bytes` that would take the user's unsent uploads past
   * unsentBytesPerUser. Uploads in progress are not counted, so a user may go past it by at
   * most uploadsPerUser uploads per node.
   */
  private async requireRoom(user: string, bytes: number): Promise<void> {
    const cap = this.opts.unsentBytesPerUser;
    if (cap === 0) return;
    const held = await this.records.unsentBytes(user);
    if (held + bytes > cap) {
      throw new ParleyError('rate_limited', `your unsent uploads hold ${held} of ${cap} bytes: send or delete some first`, {
        reason: 'unsent_uploads',
        limit: cap,
        held,
      });
    }
  }

  private async requireUploader(user: Identity, room: string): Promise<void> {
    const member = await this.store.getMember(room, user.id);
    if (!member) {
      if (!(await this.store.getRoom(room))) throw new ParleyError('not_found', 'room not found');
      throw new ParleyError('forbidden', 'not a member of this room');
    }
    if (member.mutedUntil !== undefined && (member.mutedUntil === null || member.mutedUntil > Date.now())) {
      throw new ParleyError('forbidden', 'you are muted in this room', { reason: 'muted', until: member.mutedUntil });
    }
  }

  /** A stored image, whole (at most maxBytes; only for decoding, IMAGE_SLOTS at a time). */
  private async readAll(blob: string): Promise<Buffer> {
    const s = await this.blobs.get(blob);
    if (!s) throw new ParleyError('unavailable', 'the upload was removed while it was processed');
    const parts: Buffer[] = [];
    for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
    return Buffer.concat(parts);
  }

  // ---- reading --------------------------------------------------------------------------------

  /** The attachment if `user` may read it: a member of its room, or an administrator. */
  async readable(user: Identity, id: string): Promise<Attachment> {
    const a = await this.find(id);
    if (user.admin) return a;
    if (!(await this.store.getMember(a.room, user.id))) throw new ParleyError('forbidden', 'not a member of this room');
    return a;
  }

  /**
   * The attachment a signed URL names, if the signature is good, unexpired, for this variant,
   * and its user is still a member of the room (leaving a room ends its URLs at once).
   */
  async readableSigned(id: string, variant: Variant, s: Signature, now = Date.now()): Promise<Attachment> {
    const good = Buffer.from(this.sign(id, variant, s.u, s.exp));
    const given = Buffer.from(s.sig);
    if (good.length !== given.length || !timingSafeEqual(good, given)) throw new ParleyError('unauthorized', 'the signed URL is not valid');
    if (s.exp * 1000 <= now) throw new ParleyError('unauthorized', 'the signed URL has expired', { reason: 'expired' });
    const a = await this.find(id);
    if (!(await this.store.getMember(a.room, s.u))) throw new ParleyError('forbidden', 'not a member of this room');
    return a;
  }

  private async find(id: string): Promise<Attachment> {
    const a = ATTACHMENT_ID.test(id) ? await this.records.get(id) : null;
    if (!a) throw new ParleyError('not_found', 'attachment not found');
    return a;
  }

  /** The bytes of the file or its preview; `not_found` for the preview of a non-image. */
  async open(a: Attachment, variant: Variant): Promise<NodeJS.ReadableStream> {
    const blob = variant === 'file' ? a.blob : a.preview;
    const s = blob ? await this.blobs.get(blob) : null;
    if (!s) throw new ParleyError('not_found', variant === 'preview' ? 'this attachment has no preview' : 'attachment not found');
    return s;
  }

  private sign(id: string, variant: Variant, user: string, exp: number): string {
    return createHmac('sha256', this.urlKey).update(`${id}\n${variant}\n${user}\n${exp}`).digest('base64url');
  }

  /** A URL that lets `user` read the file (or preview) without a header until `exp` (unix seconds). */
  signedUrl(id: string, variant: Variant, user: string, exp: number): string {
    const q = new URLSearchParams({ u: user, exp: String(exp), sig: this.sign(id, variant, user, exp) });
    return `${API_BASE}/${id}${variant === 'preview' ? '/preview' : ''}?${q.toString()}`;
  }

  /** The attachment as `reader` sees it, with signed URLs valid for urlTtlSec. */
  view(a: Attachment, reader: string, now = Date.now()): AttachmentView {
    const exp = Math.floor(now / 1000) + this.opts.urlTtlSec;
    return {
      id: a.id,
      room: a.room,
      uploader: a.uploader,
      name: a.name,
      size: a.size,
      type: a.type,
      ...(a.width !== null ? { width: a.width } : {}),
      ...(a.height !== null ? { height: a.height } : {}),
      createdAt: a.createdAt,
      message: a.message,
      url: this.signedUrl(a.id, 'file', reader, exp),
      ...(a.preview ? { previewUrl: this.signedUrl(a.id, 'preview', reader, exp) } : {}),
      expiresAt: exp * 1000,
    };
  }

  // ---- removing ---------------------------------------------------------------------------------

  /** Deletes an attachment: its uploader, the room's owners and admins, administrators. */
  async remove(user: Identity, id: string): Promise<void> {
    const a = await this.find(id);
    if (a.uploader !== user.id && !user.admin) {
      const me = await this.store.getMember(a.room, user.id);
      if (!me) throw new ParleyError('forbidden', 'not a member of this room');
      if (me.role === 'member') throw new ParleyError('forbidden', 'only the uploader, owners and admins can delete an attachment');
    }
    const gone = await this.records.remove(a.id);
    if (gone) await this.dropBlobs([gone]);
  }

  /** Removes the files of messages that were deleted. */
  async removeForMessages(room: string, seqs: number[]): Promise<number> {
    return this.dropBlobs(await this.records.removeForMessages(room, seqs));
  }

  /**
   * Removes the files of a room that was deleted: all of them, or, when its history is kept
   * (`retention.keepDeletedRoomHistory`), only the uploads no message carries.
   */
  async removeForRoom(room: string): Promise<number> {
    return this.dropBlobs(this.opts.keepDeletedRoomFiles ? await this.records.removeUnboundOfRoom(room) : await this.records.removeForRoom(room));
  }

  /**
   * After retention removed messages: removes the files of messages below each room's first
   * kept seq. Rooms are walked in pages of ids, so the pass costs one bounds read per room
   * that has sent attachments.
   */
  async afterRetention(): Promise<number> {
    let removed = 0;
    let after = '';
    for (;;) {
      const rooms = await this.records.boundRooms(after, 500);
      for (const room of rooms) {
        const { first } = await this.store.bounds(room);
        removed += await this.dropBlobs(await this.records.removeBelow(room, first));
      }
      if (rooms.length < 500) return removed;
      after = rooms[rooms.length - 1]!;
    }
  }

  /**
   * The periodic clean-up: uploads no message carries, unboundTtlSec after they were made,
   * and partial blobs of uploads cut short by a crash (an hour old: no upload takes that long).
   */
  async sweep(now = Date.now()): Promise<number> {
    const removed = await this.sweepUnbound(now);
    await this.blobs.sweepPartial(now - 3600_000);
    return removed;
  }

  /** Removes uploads that no message carries, unboundTtlSec after they were made. */
  async sweepUnbound(now = Date.now()): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch = await this.records.removeUnbound(now - this.opts.unboundTtlSec * 1000, 200);
      removed += await this.dropBlobs(batch);
      if (batch.length < 200) return removed;
    }
  }

  /** Deletes the blobs of removed records; a failure is logged (the record is gone, the bytes are unreachable). */
  private async dropBlobs(list: Attachment[]): Promise<number> {
    for (const a of list) {
      for (const blob of [a.blob, a.preview]) {
        if (blob) await this.blobs.delete(blob).catch((err: unknown) => this.log.warn({ err, blob }, "could not delete an attachment's bytes"));
      }
    }
    return list.length;
  }

  /**
   * Hooks that attach uploads to the message a `send` stores (see forSend; once stored, the
   * uploads are bound to its seq) and remove files with what carried them: a message deleted
   * by `delete`, a room by `destroy` (its unsent uploads too). The after hooks act only on
   * successful commands.
   */
  hooks(): Hook[] {
    return [
      ownHook(
        commandHook({
          name: 'attachments:send',
          commands: ['send'],
          // Both answer at once for a send without attachments (nearly every send).
          before: (ctx) => this.forSend(ctx.user, ctx.args),
          after: (ctx, out) => {
            if (out.result && !out.result.duplicate && ctx.args.attachments) {
              return this.bind(ctx.args.room, ctx.user.id, ctx.args.attachments, out.result.seq).then(() => undefined);
            }
          },
        }),
      ),
      commandHook({
        name: 'attachments:delete',
        commands: ['delete'],
        after: async (ctx, out) => {
          if (out.result) await this.removeForMessages(ctx.args.room, [ctx.args.target]);
        },
      }),
      commandHook({
        name: 'attachments:destroy',
        commands: ['destroy'],
        after: async (ctx, out) => {
          if (out.result) await this.removeForRoom(ctx.args.room);
        },
      }),
    ];
  }

  // ---- for the message integration -----------------------------------------------------------

  /**
   * The rule of a send: the message carries, in `data.attachments`, the uploads its
   * `attachments` name (see claim), and only those: a client cannot write `data.attachments`
   * itself. Resolves with the send's new arguments, or nothing when it names no attachment.
   */
  forSend(user: Identity, a: CommandArgs<'send'>): undefined | Promise<CommandArgs<'send'>> {
    if (a.data && Object.hasOwn(a.data, 'attachments')) {
      throw new ParleyError('invalid', 'data.attachments is set by the server: name uploads in "attachments"', { field: 'data.attachments' });
    }
    if (!a.attachments) return undefined;
    return this.claim(user, a.room, a.attachments, a.key).then((refs) => ({ ...a, data: { ...a.data, attachments: refs } }));
  }

  /**
   * Checks, before a send stores anything, that each id is an unsent upload of `user` in
   * `room`, and returns what the message carries of them, in the given order. An upload sent
   * already is accepted only from the retry of the send that carried it: the same `key`,
   * which the room log answers as a duplicate. Two sends naming one unsent upload at once
   * both pass here; the room log refuses the second (see RoomState.carried).
   */
  async claim(user: Identity, room: string, ids: string[], key?: string): Promise<AttachmentRef[]> {
    if (new Set(ids).size !== ids.length) throw new ParleyError('invalid', 'an attachment is listed twice', { field: 'attachments' });
    const refs: AttachmentRef[] = [];
    let retried: Promise<number | null> | null = null;
    for (const id of ids) {
      const a = ATTACHMENT_ID.test(id) ? await this.records.get(id) : null;
      if (!a || a.room !== room || a.uploader !== user.id) throw new ParleyError('not_found', 'attachment not found', { field: 'attachments', attachment: id });
      if (a.message !== null) {
        retried ??= key === undefined ? Promise.resolve(null) : this.store.keyed(room, user.id, key).then((m) => m?.seq ?? null);
        if ((await retried) !== a.message) throw new ParleyError('conflict', 'this attachment was sent already', { field: 'attachments', attachment: id });
      }
      refs.push(toRef(a));
    }
    return refs;
  }

  /** Records that message `seq` carries the uploads (compare-and-set, see AttachmentStore.bind). */
  async bind(room: string, uploader: string, ids: string[], seq: number): Promise<AttachmentRef[]> {
    return (await this.records.bind(room, uploader, ids, seq)).map(toRef);
  }

  async close(): Promise<void> {
    await this.images.onIdle();
    await this.blobs.close();
  }
}

export function toRef(a: Attachment): AttachmentRef {
  return {
    id: a.id,
    name: a.name,
    size: a.size,
    type: a.type,
    ...(a.width !== null ? { width: a.width } : {}),
    ...(a.height !== null ? { height: a.height } : {}),
  };
}

/** Reads up to `n` bytes of the source; the rest stays to be read from `rest`. */
async function peek(source: BlobSource, n: number): Promise<{ sample: Buffer; rest: AsyncIterator<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let held = 0;
  while (held < n) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    parts.push(b);
    held += b.length;
  }
  const all = Buffer.concat(parts, held);
  // What was read past n goes back in front of the rest.
  return { sample: all.subarray(0, n), rest: held > n ? withFirst(all.subarray(n), it) : it };
}

function withFirst(first: Buffer, it: AsyncIterator<Uint8Array>): AsyncIterator<Uint8Array> {
  let given = false;
  return {
    next: async () => {
      if (!given) {
        given = true;
        return { done: false, value: first };
      }
      return it.next();
    },
    return: async () => (it.return ? it.return() : { done: true, value: undefined }),
  };
}

/** The sample, then the rest of the source. */
async function* prepend(sample: Buffer, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield sample;
  try {
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await rest.return?.();
  }
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}
