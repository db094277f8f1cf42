// Users' pictures: uploaded by their owner (an image only, at most AVATAR_MAX_BYTES), decoded
// with the same limits as attachments, cropped to a AVATAR_PX square WebP without metadata,
// kept as a blob of the attachments' BlobStore; read by anyone signed in, through short-lived
// URLs signed for one reader (an <img src> sends no Authorization header).
import { createHmac, timingSafeEqual } from 'node:crypto';
import PQueue from 'p-queue';
import sharp from 'sharp';
import type { Logger } from 'pino';
import type { BlobStore } from '../blobs/blobs.js';
import { ParleyError } from '../errors.js';
import type { AvatarStore } from '../store/avatars.js';
import { detectType, IMAGE_SLOTS, IMAGE_TYPES } from './media.js';

/** Largest picture accepted, in bytes (before it is made small). */
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
/** Side of the square a picture is cropped and scaled to, in pixels. */
export const AVATAR_PX = 256;
/** Users whose pictures one look-up may ask for. */
export const AVATAR_LOOKUP = 100;
const API_BASE = '/api/v1/users';

export interface AvatarOptions {
  secret: string;
  maxImagePixels: number;
  urlTtlSec: number;
}

export interface Signature {
  u: string;
  exp: number;
  sig: string;
}

export class AvatarService {
  private readonly images = new PQueue({ concurrency: IMAGE_SLOTS });
  private readonly urlKey: Buffer;

  constructor(
    private readonly store: AvatarStore,
    private readonly blobs: BlobStore,
    private readonly opts: AvatarOptions,
    private readonly log: Logger,
  ) {
    this.urlKey = createHmac('sha256', opts.secret).update('parley avatar urls v1').digest();
  }

  /** Makes `bytes` the user's picture; resolves with its URL for the user. */
  async set(user: string, bytes: Buffer): Promise<{ url: string; expiresAt: number }> {
    if (bytes.length === 0) throw new ParleyError('invalid', 'the picture is empty', { field: 'file' });
    if (bytes.length > AVATAR_MAX_BYTES)
      throw new ParleyError('too_large', `a picture may have at most ${AVATAR_MAX_BYTES} bytes`, { limit: AVATAR_MAX_BYTES });
    const type = await detectType(bytes.subarray(0, 64 * 1024), undefined);
    if (!IMAGE_TYPES.includes(type))
      throw new ParleyError('invalid', `a picture must be an image (PNG, JPEG, GIF, WebP or AVIF), not ${type}`, { field: 'file', type });
    const square = await this.images.add(() => squareWebp(bytes, this.opts.maxImagePixels));
    const blob = await this.blobs.put(once(square), { maxBytes: Number.MAX_SAFE_INTEGER });
    const at = Date.now();
    let old: string | null;
    try {
      old = await this.store.set(user, blob.id, at);
    } catch (err) {
      await this.blobs.delete(blob.id).catch(() => false);
      throw err;
    }
    if (old) await this.blobs.delete(old).catch((err: unknown) => this.log.warn({ err }, 'could not delete a replaced picture'));
    return this.url(user, blob.id, user, at);
  }

  /** Removes the user's picture; `not_found` when it has none. */
  async remove(user: string): Promise<void> {
    const old = await this.store.remove(user);
    if (!old) throw new ParleyError('not_found', 'you have no picture');
    await this.blobs.delete(old).catch((err: unknown) => this.log.warn({ err }, 'could not delete a removed picture'));
  }

  /** Signed URLs of these users' pictures for `reader` (users without one are absent). */
  async urls(reader: string, users: string[]): Promise<Record<string, string>> {
    const records = await this.store.ofUsers([...new Set(users)].slice(0, AVATAR_LOOKUP));
    const now = Date.now();
    return Object.fromEntries(records.map((r) => [r.user, this.url(r.user, r.blob, reader, now).url]));
  }

  private url(user: string, blob: string, reader: string, now: number): { url: string; expiresAt: number } {
    const exp = Math.floor(now / 1000) + this.opts.urlTtlSec;
    const q = new URLSearchParams({ v: blob, u: reader, exp: String(exp), sig: this.sign(user, blob, reader, exp) });
    return { url: `${API_BASE}/${encodeURIComponent(user)}/avatar?${q.toString()}`, expiresAt: exp * 1000 };
  }

  private sign(user: string, blob: string, reader: string, exp: number): string {
    return createHmac('sha256', this.urlKey).update(`${user}\n${blob}\n${reader}\n${exp}`).digest('base64url');
  }

  /** The bytes a signed URL names: a good, unexpired signature for the user's current picture. */
  async open(user: string, blob: string, s: Signature, now = Date.now()): Promise<NodeJS.ReadableStream> {
    const good = Buffer.from(this.sign(user, blob, s.u, s.exp));
    const given = Buffer.from(s.sig);
    if (good.length !== given.length || !timingSafeEqual(good, given)) throw new ParleyError('unauthorized', 'the signed URL is not valid');
    if (s.exp * 1000 <= now) throw new ParleyError('unauthorized', 'the signed URL has expired', { reason: 'expired' });
    const [current] = await this.store.ofUsers([user]);
    const stream = current?.blob === blob ? await this.blobs.get(blob) : null;
    if (!stream) throw new ParleyError('not_found', 'no such picture');
    return stream;
  }
}

/** The centre square of an image, AVATAR_PX wide, as WebP: no metadata, orientation applied, first frame. */
async function squareWebp(input: Buffer, maxPixels: number): Promise<Buffer> {
  try {
    return await sharp(input, { limitInputPixels: maxPixels, failOn: 'error', animated: false })
      .autoOrient()
      .resize(AVATAR_PX, AVATAR_PX, { fit: 'cover', position: 'attention' })
      .webp({ quality: 82 })
      .toBuffer();
  } catch (err) {
    if (/pixel limit/i.test((err as Error).message ?? '')) {
      throw new ParleyError('too_large', `the image has more than ${maxPixels} pixels`, { limit: maxPixels, field: 'pixels' });
    }
    throw new ParleyError('invalid', 'the image cannot be decoded', { field: 'file' });
  }
}

async function* once(b: Buffer): AsyncIterable<Uint8Array> {
  yield b;
}
