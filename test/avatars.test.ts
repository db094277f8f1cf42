// Users' pictures at the wire: set with the image as the body, kept as a small square WebP
// without metadata, looked up by anyone signed in as URLs signed for them, served by those
// URLs only, replaced and removed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { startServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.close();
});

async function call(method: string, path: string, token: string | null, body?: Buffer, type = 'image/png') {
  const r = await fetch(`${srv.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': type } : {}) },
    ...(body ? { body: new Uint8Array(body) } : {}),
  });
  const buf = Buffer.from(await r.arrayBuffer());
  let json: any = null;
  if ((r.headers.get('content-type') ?? '').includes('json')) json = JSON.parse(buf.toString('utf8'));
  return { status: r.status, json, buf, headers: r.headers };
}

/** A photo with EXIF (a GPS position and a camera) and a landscape shape. */
async function photo(width = 800, height = 400): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .withExif({ IFD0: { Make: 'SecretCam', Model: 'X1' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
    .jpeg()
    .toBuffer();
}

describe('avatars', () => {
  it('a picture is kept as a 256 px square WebP without metadata, and others read it through URLs signed for them', async () => {
    const amy = await srv.token('amy');
    const set = await call('PUT', '/api/v1/me/avatar', amy, await photo(), 'image/jpeg');
    expect(set.status, JSON.stringify(set.json)).toBe(200);
    const bob = await srv.token('bob');
    const look = await call('GET', '/api/v1/avatars?users=amy,bob,nobody', bob);
    expect(look.status).toBe(200);
    expect(Object.keys(look.json.avatars)).toEqual(['amy']);
    const url: string = look.json.avatars.amy;
    expect(url).toMatch(/^\/api\/v1\/users\/amy\/avatar\?v=[A-Za-z0-9_-]{22}&u=bob&exp=\d+&sig=/);
    const img = await call('GET', url, null);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/webp');
    expect(img.headers.get('x-content-type-options')).toBe('nosniff');
    const meta = await sharp(img.buf).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 256, 256]);
    expect(meta.exif).toBeUndefined();
    expect(img.buf.includes(Buffer.from('SecretCam'))).toBe(false);
    // A URL changed in any part is refused; the look-up needs a signed-in caller.
    expect((await call('GET', url.replace('u=bob', 'u=eve'), null)).status).toBe(401);
    expect((await call('GET', url.replace(/exp=\d+/, 'exp=9999999999'), null)).status).toBe(401);
    expect((await call('GET', url.replace('/amy/', '/bob/'), null)).status).toBe(401);
    expect((await call('GET', '/api/v1/avatars?users=amy', null)).status).toBe(401);
    // A new picture replaces it: the old URL stops working.
    expect((await call('PUT', '/api/v1/me/avatar', amy, await photo(300, 600), 'image/jpeg')).status).toBe(200);
    expect((await call('GET', url, null)).status).toBe(404);
    const again = await call('GET', '/api/v1/avatars?users=amy', bob);
    expect((await call('GET', again.json.avatars.amy, null)).status).toBe(200);
    // Removed: initials again.
    expect((await call('DELETE', '/api/v1/me/avatar', amy)).status).toBe(204);
    expect((await call('GET', '/api/v1/avatars?users=amy', bob)).json.avatars).toEqual({});
    expect((await call('GET', again.json.avatars.amy, null)).status).toBe(404);
    expect((await call('DELETE', '/api/v1/me/avatar', amy)).json.error.code).toBe('not_found');
  });

  it('refuses what is not an image, an empty body, a picture too large, and one that does not decode', async () => {
    const t = await srv.token('cy');
    const notImage = await call('PUT', '/api/v1/me/avatar', t, Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n'), 'image/png');
    expect([notImage.status, notImage.json.error.code]).toEqual([400, 'invalid']);
    const text = await call('PUT', '/api/v1/me/avatar', t, Buffer.from('hello, not a picture'), 'text/plain');
    expect(text.json.error.code).toBe('invalid');
    const empty = await fetch(`${srv.url}/api/v1/me/avatar`, { method: 'PUT', headers: { authorization: `Bearer ${t}`, 'content-type': 'image/png' } });
    expect(empty.status).toBe(400);
    const big = Buffer.concat([await photo(10, 10), Buffer.alloc(5 * 1024 * 1024)]);
    const tooBig = await call('PUT', '/api/v1/me/avatar', t, big, 'image/jpeg');
    expect([tooBig.status, tooBig.json.error.code]).toEqual([413, 'too_large']);
    const png = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const broken = await call('PUT', '/api/v1/me/avatar', t, Buffer.concat([png.subarray(0, 40), Buffer.alloc(50)]), 'image/png');
    expect(broken.json.error.code).toBe('invalid');
    expect((await call('GET', '/api/v1/avatars?users=cy', t)).json.avatars).toEqual({});
  });
});
