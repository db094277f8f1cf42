// What an uploaded file is and how it may be shown: its real content type from its first
// bytes (file-type) checked against the allow-list, its name made safe to show and to save,
// and, for images, the original without metadata and a bounded preview (sharp).
import { fileTypeFromBuffer } from 'file-type';
import sharp from 'sharp';
import { ParleyError } from '../errors.js';

/** Images Parley decodes: their metadata is stripped, a preview made, and they are shown inline. */
export const IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/tiff'];

/** Detected types accepted besides any `image/*`, `audio/*` and `video/*`. */
export const DOCUMENT_TYPES: readonly string[] = [
  'application/pdf',
  'application/zip',
  'application/gzip',
  'application/x-bzip2',
  'application/x-xz',
  'application/x-7z-compressed',
  'application/x-tar',
  'application/rtf',
  'application/epub+zip',
  'application/x-cfb',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation',
];

/** Types a file with no recognisable signature may keep when its sender says so and it holds no NUL byte. */
export const TEXT_TYPES: readonly string[] = ['text/plain', 'text/csv', 'text/markdown'];

/** What a file whose bytes say nothing is stored and served as. */
export const UNKNOWN_TYPE = 'application/octet-stream';

/** Bytes read before the type is decided (zip-based formats name themselves in their first entries). */
export const SAMPLE_BYTES = 64 * 1024;

const allowed = (type: string): boolean => /^(image|audio|video)\//.test(type) || DOCUMENT_TYPES.includes(type);

/**
 * The type of a file from its first bytes. A recognised type outside the allow-list
 * (programs, disk images, packages…) is refused with `invalid`, whatever the name or the
 * declared type say; an unrecognised one is `application/octet-stream`, or the declared text
 * type when it is one of TEXT_TYPES and the sample holds no NUL byte.
 */
export async function detectType(sample: Buffer, declared: string | undefined): Promise<string> {
  const found = await fileTypeFromBuffer(sample);
  if (found) {
    if (!allowed(found.mime)) {
      throw new ParleyError('invalid', `files of type ${found.mime} are not accepted`, { field: 'type', type: found.mime });
    }
    return found.mime;
  }
  const base = declared?.split(';')[0]?.trim().toLowerCase();
  if (base && TEXT_TYPES.includes(base) && !sample.includes(0)) return base;
  return UNKNOWN_TYPE;
}

/** Longest name kept, in characters (the extension is kept whole when it is short). */
export const NAME_CHARS = 180;

/**
 * A file name safe to show and to save: the last path part only, NFC, without control and
 * format characters (bidi overrides and isolates, zero-width characters other than the
 * joiners emoji and scripts need), without characters Windows refuses in names, without
 * leading dots, at most NAME_CHARS characters; `file` when nothing is left.
 */
export function sanitizeName(raw: string): string {
  // Lone surrogates first: they cannot be normalised or encoded.
  let n = raw.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '').normalize('NFC');
  n = n.split(/[/\\]/).pop() ?? '';
  n = n.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => (c === '\u200c' || c === '\u200d' ? c : ''));
  n = n.replace(/[<>:"|?*]/g, '_').replace(/\s+/g, ' ');
  n = n.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '');
  const chars = [...n];
  if (chars.length > NAME_CHARS) {
    const dot = n.lastIndexOf('.');
    const ext = dot > 0 ? [...n.slice(dot)] : [];
    n =
      ext.length > 1 && ext.length <= 16
        ? chars
            .slice(0, NAME_CHARS - ext.length)
            .join('')
            .replace(/[\s.]+$/, '') + ext.join('')
        : chars
            .slice(0, NAME_CHARS)
            .join('')
            .replace(/[\s.]+$/, '');
  }
  return n === '' ? 'file' : n;
}

/** `Content-Disposition` for a stored file: a quoted ASCII fallback and the UTF-8 name (RFC 6266). */
export function contentDisposition(kind: 'inline' | 'attachment', name: string): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/["\\]/g, '_');
  const utf8 = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

export interface ProcessedImage {
  /** The original re-encoded in its own format without metadata (colour profile kept). */
  original: Buffer;
  /** A WebP at most `previewPx` on its longer side. */
  preview: Buffer;
  width: number;
  height: number;
}

/** Images are decoded one at a time per slot: each holds its file and decoded pixels in memory. */
export const IMAGE_SLOTS = 2;

/**
 * Decodes an image (refusing more than `maxPixels` pixels before decoding them: a small file
 * that claims a huge picture is a decompression bomb), applies its EXIF orientation, and
 * makes the metadata-free original and the preview. `too_large` past the pixel limit,
 * `invalid` when the bytes do not decode as the type they claim.
 */
export async function processImage(input: Buffer, type: string, opts: { maxPixels: number; previewPx: number }): Promise<ProcessedImage> {
  const animated = type === 'image/gif' || type === 'image/webp';
  const open = (all: boolean) => sharp(input, { limitInputPixels: opts.maxPixels, failOn: 'error', animated: all && animated, sequentialRead: true });
  try {
    const meta = await open(false).metadata();
    if ((meta.width ?? 0) * (meta.height ?? 0) > opts.maxPixels) throw new Error('Input image exceeds pixel limit');
    const { width, height } = meta.autoOrient ?? { width: meta.width ?? 0, height: meta.height ?? 0 };
    // Without keepMetadata sharp writes no EXIF, XMP or IPTC; the ICC profile keeps the colours.
    let img = open(true).keepIccProfile();
    if (!animated) img = img.autoOrient();
    const original = await (
      type === 'image/jpeg'
        ? img.jpeg({ quality: 90 })
        : type === 'image/png'
          ? img.png()
          : type === 'image/gif'
            ? img.gif()
            : type === 'image/webp'
              ? img.webp({ quality: 90 })
              : type === 'image/tiff'
                ? img.tiff()
                : img.avif({ quality: 70 })
    ).toBuffer();
    const preview = await open(false)
      .autoOrient()
      .resize(opts.previewPx, opts.previewPx, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 75 })
      .toBuffer();
    return { original, preview, width, height };
  } catch (err) {
    if (err instanceof ParleyError) throw err;
    const msg = (err as Error).message ?? '';
    if (/pixel limit/i.test(msg)) {
      throw new ParleyError('too_large', `the image has more than ${opts.maxPixels} pixels`, { limit: opts.maxPixels, field: 'pixels' });
    }
    throw new ParleyError('invalid', 'the image cannot be decoded', { field: 'file' });
  }
}
