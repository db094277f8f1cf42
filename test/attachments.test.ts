// Attachments at the wire: uploads over raw HTTP, files read with a bearer token or a signed
// URL, and what a user relies on — only members upload and read, a disguised file gets its
// real type or is refused, an oversized upload leaves nothing, a signed URL expires and names
// one file, names cannot reach outside storage, images lose their metadata, and files go with
// their message, their room, retention, or when they are never sent.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyClient, type ClientError, type Message } from '../src/client/index.js';
import { collect, RawSocket, removeDir, startServer, waitFor, type TestServer } from './helpers.js';

let srv: TestServer;
const tokens: Record<string, string> = {};
const MAX = 256 * 1024;

beforeAll(async () => {
  srv = await startServer({ attachments: { maxBytes: MAX, maxImagePixels: 4_000_000 }, plugins: { rateLimit: { enabled: false } } });
  for (const u of ['alice', 'bob', 'mallory', 'carol']) tokens[u] = await srv.token(u);
  await call('alice', 'POST', '/rooms', { kind: 'group', name: 'Files', room: 'files' });
  await call('alice', 'POST', '/rooms/files/members', { user: 'bob' });
  await call('alice', 'POST', '/rooms/files/members', { user: 'carol' });
});
afterAll(async () => {
  await srv?.close();
  removeDir(srv.dataDir);
});

async function call(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${srv.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${tokens[user]}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: r.status, body: r.status === 204 ? {} : ((await r.json()) as Record<string, unknown>) };
}

interface View {
  id: string;
  name: string;
  size: number;
  type: string;
  width?: number;
  height?: number;
  url: string;
  previewUrl?: string;
  message: number | null;
}

async function upload(user: string, room: string, bytes: Buffer, name?: string, type = 'application/octet-stream') {
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[user]}`, 'content-type': type };
  if (name !== undefined) headers['x-filename'] = encodeURIComponent(name);
  const r = await fetch(`${srv.url}/api/v1/rooms/${room}/attachments`, { method: 'POST', headers, body: new Uint8Array(bytes) });
  return { status: r.status, body: (await r.json()) as View & { error?: { code: string; details?: Record<string, unknown> } }, headers: r.headers };
}

async function get(path: string, user?: string) {
  const r = await fetch(`${srv.url}${path}`, user ? { headers: { authorization: `Bearer ${tokens[user]}` } } : {});
  const bytes = Buffer.from(await r.arrayBuffer());
  return {
    status: r.status,
    bytes,
    headers: r.headers,
    error: r.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(bytes.toString()) as { error: { code: string } }) : null,
  };
}

/** Every file the disk blob store holds (blobs and part files). */
const stored = (): string[] =>
  readdirSync(join(srv.dataDir, 'attachments'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);

const png = (w: number, h: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: '#3a7' } })
    .png()
    .toBuffer();

/** A PNG whose header claims `w` x `h` pixels, with a few bytes of data: a decompression bomb. */
function claimedPng(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const t = Buffer.from(type, 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([t, data])));
    return Buffer.concat([len, t, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(4096))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('uploading', () => {
  it('a member uploads a file and reads it back; the answer names it, its size and its real type', async () => {
    const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(5000)]);
    const up = await upload('bob', 'files', bytes, 'report.pdf', 'application/pdf');
    expect(up.status).toBe(201);
    expect(up.headers.get('location')).toBe(`/api/v1/attachments/${up.body.id}`);
    expect(up.body).toMatchObject({ name: 'report.pdf', size: bytes.length, type: 'application/pdf', room: 'files', uploader: 'bob', message: null });
    const back = await get(`/api/v1/attachments/${up.body.id}`, 'alice');
    expect(back.status).toBe(200);
    expect(back.bytes.equals(bytes)).toBe(true);
    expect(back.headers.get('content-type')).toBe('application/pdf');
    expect(back.headers.get('content-disposition')).toBe('attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf');
    expect(back.headers.get('x-content-type-options')).toBe('nosniff');
    expect(back.headers.get('content-security-policy')).toContain('sandbox');
    expect(back.headers.get('content-security-policy')).toContain("default-src 'none'");
    // The meta route gives fresh signed URLs to another member.
    const meta = await call('carol', 'GET', `/attachments/${up.body.id}/meta`);
    expect(meta.status).toBe(200);
    expect(meta.body.url).toMatch(/\?u=carol&exp=\d+&sig=/);
  });

  it('a non-member can neither upload to a room nor read its files, by header or signed URL', async () => {
    const up = await upload('alice', 'files', Buffer.from('hello'), 'a.txt', 'text/plain');
    expect(up.status).toBe(201);
    expect((await upload('mallory', 'files', Buffer.from('x'), 'x.txt')).body.error?.code).toBe('forbidden');
    expect((await get(`/api/v1/attachments/${up.body.id}`, 'mallory')).status).toBe(403);
    expect((await get(`/api/v1/attachments/${up.body.id}`)).status).toBe(401);
    expect((await call('mallory', 'GET', `/attachments/${up.body.id}/meta`)).status).toBe(403);
    expect((await call('mallory', 'DELETE', `/attachments/${up.body.id}`)).status).toBe(403);
    // Without membership there is no signed URL to be had; one forged for mallory fails.
    const forged = up.body.url.replace('u=alice', 'u=mallory');
    expect((await get(forged)).status).toBe(401);
    expect((await upload('alice', 'nowhere', Buffer.from('x'))).status).toBe(404);
  });

  it('a disguised program is refused whatever its name and declared type; a real image keeps its real type', async () => {
    const exe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(58), randomBytes(2000)]);
    const refused = await upload('bob', 'files', exe, 'cute-cat.png', 'image/png');
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'invalid', details: { field: 'type', type: 'application/x-msdownload' } });
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), randomBytes(500)]);
    expect((await upload('bob', 'files', elf, 'notes.txt', 'text/plain')).status).toBe(400);
    // HTML has no signature: whatever it claims, it is stored as bytes to download, never shown.
    const html = await upload('bob', 'files', Buffer.from('<html><script>alert(1)</script></html>'), 'pic.png', 'image/png');
    expect(html.body.type).toBe('application/octet-stream');
    const served = await get(html.body.url);
    expect(served.headers.get('content-type')).toBe('application/octet-stream');
    expect(served.headers.get('content-disposition')).toMatch(/^attachment;/);
    // A PNG named .exe is a PNG.
    const real = await upload('bob', 'files', await png(30, 20), 'setup.exe', 'application/x-msdownload');
    expect(real.body).toMatchObject({ type: 'image/png', width: 30, height: 20 });
    expect(stored().filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('an upload past attachments.maxBytes is too_large and leaves nothing, declared or streamed', async () => {
    const before = stored().length;
    const big = await upload('bob', 'files', randomBytes(MAX + 1), 'big.bin');
    expect(big.status).toBe(413);
    expect(big.body.error?.code).toBe('too_large');
    // Streamed without a length: refused at the first byte past the limit, mid-body.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${srv.url}/api/v1/rooms/files/attachments`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens.bob}`, 'transfer-encoding': 'chunked', 'x-filename': 'stream.bin' },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < MAX * 4) {
          sent += 16 * 1024;
          if (!req.write(randomBytes(16 * 1024))) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.code).toBe('too_large');
    expect(stored().length).toBe(before);
    expect((await upload('bob', 'files', randomBytes(MAX), 'exact.bin')).status).toBe(201);
  });

  it('names lose path parts, control and bidi characters, and are capped; nothing is written outside storage', async () => {
    const cases: Array<[string, string]> = [
      ['../../../../etc/passwd', 'passwd'],
      ['..\\..\\windows\\system.ini', 'system.ini'],
      ['invoice\u202Egpj.exe', 'invoicegpj.exe'],
      ['a\u0000b\u0007c\nd.txt', 'abcd.txt'],
      ['..', 'file'],
      ['.hidden', 'hidden'],
      ['what?<x>.txt', 'what__x_.txt'],
      ['👨‍👩‍👧 family.txt', '👨‍👩‍👧 family.txt'],
      ['x'.repeat(400) + '.txt', 'x'.repeat(176) + '.txt'],
    ];
    for (const [given, kept] of cases) {
      const up = await upload('bob', 'files', Buffer.from('plain text'), given, 'text/plain');
      expect(up.status, given).toBe(201);
      expect(up.body.name, given).toBe(kept);
      const cd = (await get(up.body.url)).headers.get('content-disposition')!;
      expect(cd).not.toMatch(/[/\\]/);
    }
    const ids = stored();
    expect(ids.every((f) => /^[A-Za-z0-9_-]{22}$/.test(f))).toBe(true);
    const bad = await fetch(`${srv.url}/api/v1/rooms/files/attachments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.bob}`, 'x-filename': '%E0%A4%A' },
      body: 'x',
    });
    expect(bad.status).toBe(400);
  });

  it('a muted member cannot upload', async () => {
    await call('alice', 'PUT', '/rooms/files/members/carol/mute', { seconds: 60 });
    const up = await upload('carol', 'files', Buffer.from('x'), 'x.txt');
    expect(up.body.error).toMatchObject({ code: 'forbidden', details: { reason: 'muted' } });
    await call('alice', 'DELETE', '/rooms/files/members/carol/mute');
  });
});

describe('images', () => {
  it('an image gets a bounded WebP preview and its size; EXIF and GPS are stripped from both, orientation applied', async () => {
    // 800 x 400 stored sideways (orientation 6: shown rotated to 400 x 800), with a camera's metadata.
    const photo = await sharp({ create: { width: 800, height: 400, channels: 3, background: '#a33' } })
      .withExif({ IFD0: { Copyright: 'SECRET-MARKER' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 22/1 0/1' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    expect((await sharp(photo).metadata()).exif?.includes('SECRET-MARKER')).toBe(true);
    const up = await upload('bob', 'files', photo, 'IMG_0001.JPG', 'image/jpeg');
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ type: 'image/jpeg', width: 400, height: 800 });
    const original = await get(up.body.url);
    expect(original.headers.get('content-disposition')).toMatch(/^inline;/);
    const meta = await sharp(original.bytes).metadata();
    expect(meta.exif).toBeUndefined();
    expect(original.bytes.includes('SECRET-MARKER')).toBe(false);
    expect([meta.width, meta.height]).toEqual([400, 800]);
    const preview = await get(up.body.previewUrl!);
    expect(preview.headers.get('content-type')).toBe('image/webp');
    const pm = await sharp(preview.bytes).metadata();
    expect([pm.format, pm.width, pm.height, pm.exif]).toEqual(['webp', 180, 360, undefined]);
    // The preview URL reads the preview only.
    expect((await get(up.body.previewUrl!.replace('/preview?', '?'))).status).toBe(401);
  });

  it('a TIFF is re-encoded without its metadata too, and gets a preview', async () => {
    // The author in XMP (what sharp writes into a TIFF; a camera's TIFF tags go the same way).
    const scan = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#3a7' } })
      .withXmp(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>SECRET-ARTIST</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>',
      )
      .tiff()
      .toBuffer();
    expect(scan.includes('SECRET-ARTIST')).toBe(true);
    const up = await upload('bob', 'files', scan, 'scan.tif', 'image/tiff');
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ type: 'image/tiff', width: 300, height: 200 });
    const original = await get(up.body.url);
    expect(original.bytes.includes('SECRET-ARTIST')).toBe(false);
    expect((await sharp(original.bytes).metadata()).format).toBe('tiff');
    expect((await get(up.body.previewUrl!)).status).toBe(200);
  });

  it('a decompression bomb is refused before it is decoded, and leaves nothing', async () => {
    const before = stored().length;
    const bomb = claimedPng(30_000, 30_000);
    expect(bomb.length).toBeLessThan(1000);
    const up = await upload('bob', 'files', bomb, 'bomb.png', 'image/png');
    expect(up.status).toBe(413);
    expect(up.body.error).toMatchObject({ code: 'too_large', details: { field: 'pixels' } });
    const broken = await upload('bob', 'files', claimedPng(10, 10).subarray(0, 60), 'broken.png', 'image/png');
    expect(broken.body.error?.code).toBe('invalid');
    expect(stored().length).toBe(before);
  });
});

describe('signed URLs', () => {
  it('expire, name one file and one user, and stop working when the user leaves the room', async () => {
    const a = (await upload('bob', 'files', Buffer.from('first'), 'a.txt', 'text/plain')).body;
    const b = (await upload('bob', 'files', Buffer.from('second'), 'b.txt', 'text/plain')).body;
    expect((await get(a.url)).bytes.toString()).toBe('first');
    // Another file's id under this signature.
    expect((await get(a.url.replace(a.id, b.id))).status).toBe(401);
    // Expired.
    const past = srv.parley.attachments.signedUrl(a.id, 'file', 'bob', Math.floor(Date.now() / 1000) - 1);
    const expired = await get(past);
    expect(expired.status).toBe(401);
    expect(expired.error?.error).toMatchObject({ code: 'unauthorized', details: { reason: 'expired' } });
    // A longer expiry written into a good URL.
    expect((await get(a.url.replace(/exp=\d+/, 'exp=9999999999'))).status).toBe(401);
    expect((await get(`/api/v1/attachments/${a.id}?u=bob`)).status).toBe(400);
    // Carol's URL works until carol is removed from the room.
    const carols = (await call('carol', 'GET', `/attachments/${a.id}/meta`)).body.url as string;
    expect((await get(carols)).status).toBe(200);
    await call('alice', 'DELETE', '/rooms/files/members/carol');
    expect((await get(carols)).status).toBe(403);
    await call('alice', 'POST', '/rooms/files/members', { user: 'carol' });
  });
});

describe('removal', () => {
  it('the uploader or a room moderator deletes a file; another member cannot', async () => {
    const a = (await upload('bob', 'files', Buffer.from('mine'), 'm.txt')).body;
    expect((await call('carol', 'DELETE', `/attachments/${a.id}`)).status).toBe(403);
    expect((await call('bob', 'DELETE', `/attachments/${a.id}`)).body).toEqual({ attachment: a.id });
    expect((await get(`/api/v1/attachments/${a.id}`, 'bob')).status).toBe(404);
    const b = (await upload('bob', 'files', Buffer.from('theirs'), 't.txt')).body;
    expect((await call('alice', 'DELETE', `/attachments/${b.id}`)).status).toBe(200);
    expect((await call('alice', 'DELETE', `/attachments/${b.id}`)).status).toBe(404);
  });

  it('deleting the message that carries a file removes the file', async () => {
    const a = (await upload('bob', 'files', await png(50, 50), 'p.png')).body;
    const before = stored().length;
    const sent = await call('bob', 'POST', '/rooms/files/messages', { text: 'look', attachments: [a.id] });
    expect(sent.status).toBe(201);
    expect((await call('bob', 'DELETE', `/rooms/files/messages/${sent.body.seq as number}`)).status).toBe(200);
    expect((await get(`/api/v1/attachments/${a.id}`, 'bob')).status).toBe(404);
    expect(stored().length).toBe(before - 2);
  });

  it('deleting the room removes its files, sent or not', async () => {
    await call('alice', 'POST', '/rooms', { kind: 'group', name: 'Gone', room: 'gone' });
    const a = (await upload('alice', 'gone', Buffer.from('one'), 'a.txt')).body;
    const b = (await upload('alice', 'gone', Buffer.from('two'), 'b.txt')).body;
    expect((await call('alice', 'POST', '/rooms/gone/messages', { text: 'x', attachments: [a.id] })).status).toBe(201);
    const before = stored().length;
    expect((await call('alice', 'DELETE', '/rooms/gone')).status).toBe(200);
    expect(stored().length).toBe(before - 2);
    expect(await srv.parley.attachments.bind('gone', 'alice', [b.id], 99).catch((e: { code: string }) => e.code)).toBe('conflict');
  });

  it('retention that removes a message removes its files', async () => {
    await call('alice', 'POST', '/rooms', { kind: 'group', name: 'Short', room: 'short' });
    const a = (await upload('alice', 'short', Buffer.from('old'), 'old.txt')).body;
    expect((await call('alice', 'POST', '/rooms/short/messages', { text: 'with a file', attachments: [a.id] })).status).toBe(201);
    await call('alice', 'PATCH', '/rooms/short', { retention: { count: 2 } });
    for (let i = 0; i < 3; i++) await call('alice', 'POST', '/rooms/short/messages', { text: `later ${i}` });
    expect((await get(`/api/v1/attachments/${a.id}`, 'alice')).status).toBe(200);
    expect(await srv.parley.sweep()).toBeGreaterThan(0);
    expect((await get(`/api/v1/attachments/${a.id}`, 'alice')).status).toBe(404);
  });

  it('an upload never sent is removed once attachments.unboundTtlSec has passed', async () => {
    const a = (await upload('bob', 'files', Buffer.from('draft'), 'd.txt')).body;
    const ttl = srv.config.attachments.unboundTtlSec * 1000;
    await srv.parley.attachments.sweep(Date.now() + ttl - 60_000);
    expect((await get(`/api/v1/attachments/${a.id}`, 'bob')).status).toBe(200);
    expect(await srv.parley.attachments.sweep(Date.now() + ttl + 1000)).toBeGreaterThan(0);
    expect((await get(`/api/v1/attachments/${a.id}`, 'bob')).status).toBe(404);
  });
});

describe('messages with attachments', () => {
  async function connect(user: string): Promise<RawSocket> {
    const s = await RawSocket.open(srv.wsUrl);
    const r = await s.call({ id: 'auth', cmd: 'auth', token: tokens[user] });
    expect(r.ok).toBe(true);
    return s;
  }
  const messagesOf = (s: RawSocket) =>
    s.frames.filter((f) => f.ev === 'message').map((f) => f.data as { seq: number; text: string; data?: { attachments?: unknown } });

  it('a send names uploads; the stored message and every delivery carry them, and a retry is a duplicate', async () => {
    const bob = await connect('bob');
    const alice = await connect('alice');
    const img = (await upload('bob', 'files', await png(64, 32), 'chart.png')).body;
    const pdf = (await upload('bob', 'files', Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(300)]), 'notes.pdf')).body;
    const carried = [
      { id: img.id, name: 'chart.png', size: img.size, type: 'image/png', width: 64, height: 32 },
      { id: pdf.id, name: 'notes.pdf', size: pdf.size, type: 'application/pdf' },
    ];
    const sent = await bob.call({ id: 1, cmd: 'send', room: 'files', text: '', attachments: [img.id, pdf.id], key: 'with-files' });
    expect(sent).toMatchObject({ ok: true, data: { duplicate: false } });
    const seq = (sent.data as { seq: number }).seq;
    for (const s of [alice, bob]) {
      await waitFor(() => messagesOf(s).some((m) => m.seq === seq), 5000, 'delivery');
      expect(messagesOf(s).find((m) => m.seq === seq)).toMatchObject({ text: '', data: { attachments: carried } });
    }
    const again = await bob.call({ id: 2, cmd: 'send', room: 'files', text: '', attachments: [img.id, pdf.id], key: 'with-files' });
    expect(again).toMatchObject({ ok: true, data: { seq, duplicate: true } });
    const h = await alice.call({ id: 3, cmd: 'history', room: 'files', after: seq - 1 });
    const stored = (h.data as { messages: Array<{ seq: number; data?: unknown }> }).messages;
    expect(stored.map((m) => m.seq)).toEqual([seq]);
    expect(stored[0]!.data).toEqual({ attachments: carried });
    expect((await call('alice', 'GET', `/attachments/${img.id}/meta`)).body.message).toBe(seq);
    bob.close();
    alice.close();
  });

  it('an unknown, foreign, other-room or sent upload is refused with a code, and nothing is stored', async () => {
    const bob = await connect('bob');
    await call('alice', 'POST', '/rooms', { kind: 'group', name: 'Other', room: 'other' });
    await call('alice', 'POST', '/rooms/other/members', { user: 'bob' });
    const mine = (await upload('bob', 'files', Buffer.from('mine'), 'mine.txt')).body;
    const carols = (await upload('carol', 'files', Buffer.from('carol'), 'c.txt')).body;
    const elsewhere = (await upload('bob', 'other', Buffer.from('other'), 'o.txt')).body;
    const sentOne = (await upload('bob', 'files', Buffer.from('sent'), 's.txt')).body;
    expect((await bob.call({ id: 1, cmd: 'send', room: 'files', text: 'first', attachments: [sentOne.id] })).ok).toBe(true);
    const last = (await call('bob', 'GET', '/rooms/files')).body.lastSeq as number;
    const refused = async (frame: Record<string, unknown>) => {
      const r = await bob.call({ id: 9, cmd: 'send', room: 'files', text: 'x', ...frame });
      expect(r.ok, JSON.stringify(frame)).toBe(false);
      return r.error as { code: string; details?: Record<string, unknown> };
    };
    expect(await refused({ attachments: [randomBytes(16).toString('base64url')] })).toMatchObject({ code: 'not_found', details: { field: 'attachments' } });
    expect(await refused({ attachments: [mine.id, carols.id] })).toMatchObject({ code: 'not_found', details: { attachment: carols.id } });
    expect(await refused({ attachments: [elsewhere.id] })).toMatchObject({ code: 'not_found', details: { attachment: elsewhere.id } });
    expect(await refused({ attachments: [sentOne.id] })).toMatchObject({ code: 'conflict', details: { attachment: sentOne.id } });
    expect(await refused({ attachments: ['../../etc/passwd'] })).toMatchObject({ code: 'invalid' });
    expect(await refused({ attachments: [mine.id, mine.id] })).toMatchObject({ code: 'invalid' });
    expect(await refused({ attachments: [] })).toMatchObject({ code: 'invalid' });
    expect(await refused({ data: { attachments: [{ id: carols.id, name: 'c.txt', size: 5, type: 'text/plain' }] } })).toMatchObject({
      code: 'invalid',
      details: { field: 'data.attachments' },
    });
    expect(await refused({ text: '' })).toMatchObject({ code: 'invalid', details: { field: 'text' } });
    // Over REST the same rule answers the same code.
    expect((await call('bob', 'POST', '/rooms/files/messages', { text: 'x', attachments: [carols.id] })).status).toBe(404);
    expect((await call('bob', 'GET', '/rooms/files')).body.lastSeq).toBe(last);
    expect((await call('bob', 'GET', `/attachments/${mine.id}/meta`)).body.message).toBeNull();
    bob.close();
  });

  it('deleting the message removes its files', async () => {
    const bob = await connect('bob');
    const a = (await upload('bob', 'files', await png(20, 20), 'gone.png')).body;
    const sent = await bob.call({ id: 1, cmd: 'send', room: 'files', text: 'soon gone', attachments: [a.id] });
    const seq = (sent.data as { seq: number }).seq;
    expect((await get(`/api/v1/attachments/${a.id}`, 'alice')).status).toBe(200);
    expect((await bob.call({ id: 2, cmd: 'delete', room: 'files', target: seq })).ok).toBe(true);
    expect((await get(`/api/v1/attachments/${a.id}`, 'alice')).status).toBe(404);
    expect((await get(a.previewUrl!)).status).toBe(404);
    bob.close();
  });

  it("the SDK uploads a file and sends it; the other member's SDK gets the message with it; errors keep their code", async () => {
    const bob = new ParleyClient({ url: srv.url, token: tokens.bob! });
    const alice = new ParleyClient({ url: srv.url, token: tokens.alice! });
    await Promise.all([bob.connect(), alice.connect()]);
    const seen: Message[] = collect(alice, 'files');
    let progress = 0;
    const up = await bob.upload('files', new Uint8Array(await png(40, 10)), {
      name: 'sdk.png',
      onProgress: (n) => {
        progress = n;
      },
    });
    expect(up).toMatchObject({ name: 'sdk.png', type: 'image/png', width: 40, height: 10, message: null });
    expect(progress).toBeGreaterThan(0);
    const { seq } = await bob.send('files', 'from the SDK', { attachments: [up.id] });
    await waitFor(() => seen.some((m) => m.seq === seq), 5000, 'delivery');
    expect(seen.find((m) => m.seq === seq)!.data).toEqual({
      attachments: [{ id: up.id, name: 'sdk.png', size: up.size, type: 'image/png', width: 40, height: 10 }],
    });
    const tooBig = await bob.upload('files', new Uint8Array(MAX + 1), { name: 'big.bin' }).catch((e: ClientError) => e);
    expect((tooBig as ClientError).code).toBe('too_large');
    bob.close();
    alice.close();
  });
});

describe('unsent uploads per user', () => {
  it('a user holds at most attachments.unsentBytesPerUser of uploads no message carries; sending one frees its share', async () => {
    const cap = 3000;
    const s = await startServer({ attachments: { maxBytes: MAX, unsentBytesPerUser: cap }, plugins: { rateLimit: { enabled: false } } });
    try {
      const token: Record<string, string> = { dora: await s.token('dora'), eli: await s.token('eli') };
      const rest = (user: string, method: string, path: string, body?: unknown) =>
        fetch(`${s.url}/api/v1${path}`, {
          method,
          headers: { authorization: `Bearer ${token[user]}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : null,
        });
      const put = async (user: string, bytes: number) => {
        const r = await fetch(`${s.url}/api/v1/rooms/quota/attachments`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token[user]}`, 'content-type': 'application/octet-stream' },
          body: new Uint8Array(randomBytes(bytes)),
        });
        return { status: r.status, body: (await r.json()) as { id: string; error?: { code: string; details?: Record<string, unknown> } } };
      };
      const files = () => readdirSync(join(s.dataDir, 'attachments'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
      expect((await rest('dora', 'POST', '/rooms', { kind: 'group', name: 'Quota', room: 'quota' })).status).toBe(201);
      expect((await rest('dora', 'POST', '/rooms/quota/members', { user: 'eli' })).status).toBeLessThan(300);
      const kept: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await put('dora', 1000);
        expect(r.status).toBe(201);
        kept.push(r.body.id);
      }
      const before = files();
      // One byte more than the cap allows: refused, with the reason, and nothing kept of it.
      const over = await put('dora', 1);
      expect(over.status).toBe(429);
      expect(over.body.error).toMatchObject({ code: 'rate_limited', details: { reason: 'unsent_uploads', limit: cap, held: 3000 } });
      expect(files()).toBe(before);
      // Another user's uploads are their own.
      expect((await put('eli', 1000)).status).toBe(201);
      // A sent upload no longer counts; a deleted one neither.
      const ws = await RawSocket.open(s.wsUrl);
      expect((await ws.call({ id: 'a', cmd: 'auth', token: token.dora })).ok).toBe(true);
      expect((await ws.call({ id: 's', cmd: 'send', room: 'quota', text: 'here', attachments: [kept[0]] })).ok).toBe(true);
      ws.close();
      expect((await put('dora', 1000)).status).toBe(201);
      expect((await put('dora', 1)).status).toBe(429);
      expect((await rest('dora', 'DELETE', `/attachments/${kept[1]}`)).status).toBe(200);
      expect((await put('dora', 1000)).status).toBe(201);
    } finally {
      await s.close();
      removeDir(s.dataDir);
    }
  });
});
