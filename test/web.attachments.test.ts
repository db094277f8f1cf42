// Attachments in a real browser, between two users: files from the picker, pasted and dropped
// go up with visible progress, a failed upload is retried, and the other member sees images
// as previews and other files as cards with their name and size.
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createRoom, invite, openRoom, person, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
  bob = await person(web, 'bob', 'Bob Builder');
  await createRoom(alice, 'Files', { kind: 'group' });
  await invite(alice, 'bob');
  await openRoom(bob, 'Files');
});

afterAll(async () => {
  await web?.close();
});

const png = (w: number, h: number, colour: string) =>
  sharp({ create: { width: w, height: h, channels: 3, background: colour } })
    .png()
    .toBuffer();
const tray = (page: Page) => page.locator('.upload-tray .upload');

/** Hands files to the page as a paste into the message box or a drop on the composer. */
async function giveFiles(page: Page, how: 'paste' | 'drop', files: Array<{ name: string; type: string; bytes: Buffer }>): Promise<void> {
  await page.evaluate(
    ({ how, files }) => {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
      if (how === 'paste') {
        document.querySelector('#composer')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      } else {
        const form = document.querySelector('form.composer')!;
        form.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        form.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    { how, files: files.map((f) => ({ name: f.name, type: f.type, b64: f.bytes.toString('base64') })) },
  );
}

describe('attachments in the web app', () => {
  it('a picked image and file are sent without a text; the other member sees a preview and a card', async () => {
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(3000)]);
    await alice.locator('[data-testid="file-input"]').setInputFiles([
      { name: 'sunset.png', mimeType: 'image/png', buffer: await png(800, 400, '#e63') },
      { name: 'minutes.pdf', mimeType: 'application/pdf', buffer: pdf },
    ]);
    await tray(alice).nth(1).waitFor();
    // The picked image's thumbnail is drawn (the page's policy allows its blob: URL).
    const thumb = alice.locator('.upload-tray img').first();
    await expect.poll(() => thumb.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBe(800);
    await alice.locator('.upload-tray [data-upload="done"]').nth(1).waitFor();
    await alice.locator('#composer').press('Enter');
    await tray(alice).first().waitFor({ state: 'detached' });
    const image = bob.locator('.message-list .attachment-image img[alt="sunset.png"]');
    await image.waitFor();
    await expect.poll(() => image.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBe(360);
    // On a phone the preview fits the message: no sideways scrolling.
    const size = bob.viewportSize()!;
    try {
      await bob.setViewportSize({ width: 360, height: 740 });
      await expect.poll(() => image.evaluate((i) => Math.round(i.getBoundingClientRect().right))).toBeLessThanOrEqual(360);
      expect(await bob.locator('.messages').evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    } finally {
      await bob.setViewportSize(size);
    }
    const card = bob.locator('.message-list .attachment-card', { hasText: 'minutes.pdf' });
    await card.waitFor();
    expect(await card.textContent()).toContain('2.9 KB');
    // The card downloads the file itself.
    const href = await card.getAttribute('href');
    const got = await bob.evaluate(async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer()).length, href!);
    expect(got).toBe(pdf.length);
  });

  it('a pasted image shows its upload progress and goes out with the text', async () => {
    // Hold the upload a moment so the progress can be seen.
    await alice.route('**/attachments', async (route) => {
      await new Promise((r) => setTimeout(r, 800));
      await route.continue();
    });
    await giveFiles(alice, 'paste', [{ name: 'clip.png', type: 'image/png', bytes: await png(120, 90, '#36c') }]);
    await alice.locator('.upload-tray progress').waitFor();
    // Sending before the upload is done is refused with a reason, and nothing is lost.
    await alice.locator('#composer').fill('pasted picture');
    await alice.locator('#composer').press('Enter');
    await alice.getByText('Wait for the uploads to finish.').waitFor();
    await alice.locator('.upload-tray [data-upload="done"]').waitFor();
    await alice.unroute('**/attachments');
    await alice.locator('#composer').press('Enter');
    const msg = bob.locator('.message-list .msg', { hasText: 'pasted picture' });
    await msg.locator('.attachment-image img[alt="clip.png"]').waitFor();
  });

  it('a dropped file whose upload failed is retried, then sent', async () => {
    await alice.route('**/attachments', (route) => route.abort('connectionfailed'));
    await giveFiles(alice, 'drop', [{ name: 'notes.txt', type: 'text/plain', bytes: Buffer.from('dropped notes') }]);
    await alice.locator('.upload-tray [data-upload="failed"]').waitFor();
    await alice.locator('#composer').press('Enter');
    await alice.getByText('An upload failed: retry it or remove it.').waitFor();
    await alice.unroute('**/attachments');
    await alice.locator('.upload-tray').getByRole('button', { name: 'Retry' }).click();
    await alice.locator('.upload-tray [data-upload="done"]').waitFor();
    await alice.locator('#composer').press('Enter');
    const card = bob.locator('.message-list .attachment-card', { hasText: 'notes.txt' });
    await card.waitFor();
    expect(await card.textContent()).toContain('13 B');
  });
});
