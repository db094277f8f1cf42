// The conversation's timeline in a real browser: opening a room with hundreds of unread
// messages at the first unread and paging both ways from there, the "New messages" line,
// one's own messages, drafts, search with a jump into the history, and read receipts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ParleyClient } from '../src/client/index.js';
import {
  axeViolations,
  createRoom,
  device,
  inView,
  invite,
  item,
  messages,
  openRoom,
  person,
  roomLink,
  send,
  signIn,
  slowFrames,
  startWeb,
  type Web,
} from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;
let aliceDevice: ParleyClient;
let busy = '';
const pad = (i: number) => String(i).padStart(3, '0');

beforeAll(async () => {
  web = await startWeb();
  [alice, bob] = await Promise.all([person(web, 'alice', 'Alice Liddell'), person(web, 'bob', 'Bob Builder')]);
  aliceDevice = await device(web, 'alice');
});

afterAll(async () => {
  aliceDevice?.close();
  await web?.close();
});

/** Sends many messages from Alice's other device, in order, without waiting for each. */
async function flood(room: string, texts: string[]): Promise<void> {
  for (let i = 0; i < texts.length; i += 50) await Promise.all(texts.slice(i, i + 50).map((t) => aliceDevice.send(room, t)));
}

/** The texts of the rows of the open conversation, in order (day lines and the divider included). */
function rows(page: Page): Promise<string[]> {
  return page.locator('.message-list > li').allInnerTexts();
}

describe('a room with hundreds of unread messages', () => {
  it('opens at the first unread message, below a "New messages" line, and pages both ways from there', async () => {
    busy = await createRoom(alice, 'Busy');
    await flood(
      busy,
      Array.from({ length: 150 }, (_, i) => (i === 9 ? 'needle in the old haystack' : `old${pad(i + 1)}`)),
    );
    await bob.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
    await bob.getByRole('dialog', { name: 'Browse channels' }).getByRole('button', { name: 'Join Busy' }).click();
    await messages(bob, 'old150').waitFor();
    await createRoom(bob, 'Elsewhere', { kind: 'group' });

    await flood(
      busy,
      Array.from({ length: 260 }, (_, i) => `m${pad(i + 1)}`),
    );
    await bob.getByRole('link', { name: /^Busy\s*, 260 unread messages/ }).waitFor();
    // Nothing of the room is in the page yet, as on the next morning.
    await bob.reload();
    await openRoom(bob, 'Busy');
    // The first unread message is on screen at once, before any scrolling.
    await messages(bob, 'm001').waitFor();
    expect(await inView(bob, messages(bob, 'm001'))).toBe(true);
    const shown = await rows(bob);
    const divider = shown.findIndex((t) => t.includes('New messages'));
    expect(divider, shown.slice(0, 5).join(' | ')).toBeGreaterThan(0);
    expect(shown[divider + 1]).toContain('m001');
    expect(shown[divider - 1]).toContain('Bob Builder joined');
    // Nothing was read yet: the newest messages were not on screen.
    expect(await bob.getByRole('link', { name: /^Busy\s*, 260 unread messages/ }).count()).toBe(1);

    const log = bob.locator('.messages');
    await expect
      .poll(
        async () => {
          await log.evaluate((el) => {
            el.scrollTop = 0;
          });
          return messages(bob, 'old001').count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    await bob.getByText('This is the beginning of Busy.').waitFor();

    await expect
      .poll(
        async () => {
          await log.evaluate((el) => {
            el.scrollTop = el.scrollHeight;
          });
          return messages(bob, 'm260').count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    for (const t of ['old001', 'old150', 'm001', 'm130', 'm260']) expect(await messages(bob, t).count(), t).toBe(1);
    // Every row once, in order: the pages met without a hole or an overlap.
    const texts = await bob.locator('.message-list .msg-text').allInnerTexts();
    const ms = texts.filter((t) => /^m\d{3}$/.test(t));
    expect(ms).toEqual(Array.from({ length: 260 }, (_, i) => `m${pad(i + 1)}`));
    // Read once the newest messages are on screen.
    await expect
      .poll(
        async () => {
          await log.evaluate((el) => {
            el.scrollTop = el.scrollHeight;
          });
          return bob.getByRole('link', { name: /^Busy\s*, \d+ unread/ }).count();
        },
        { timeout: 10_000 },
      )
      .toBe(0);
    expect(await roomLink(bob, 'Busy').count()).toBe(1);
  });

  it("shows one's own new message when sending while scrolled up", async () => {
    const log = bob.locator('.messages');
    await log.evaluate((el) => {
      el.scrollTop = 0;
    });
    await expect.poll(() => inView(bob, messages(bob, 'm260'))).toBe(false);
    await send(bob, 'my reply from up there');
    await messages(bob, 'my reply from up there').waitFor();
    await expect.poll(() => inView(bob, messages(bob, 'my reply from up there'))).toBe(true);
  });
});

describe('what counts as new', () => {
  it('puts the "New messages" line above the first message of others, not above one\'s own', async () => {
    await createRoom(alice, 'Quiet', { kind: 'group' });
    await invite(alice, 'bob');
    await send(alice, 'welcome to quiet');
    await openRoom(bob, 'Quiet');
    await messages(bob, 'welcome to quiet').waitFor();
    await send(bob, 'mine one');
    await send(bob, 'mine two');
    await messages(bob, 'mine two').waitFor();
    await openRoom(bob, 'Elsewhere');
    await send(alice, 'theirs after');
    await roomLink(bob, 'Quiet').locator('.badge', { hasText: '1' }).waitFor();
    // The first frame of the room has the line where it belongs now, not where it was on the
    // last visit, even when frames come late (a busy machine).
    const restore = await slowFrames(bob, 500);
    let shown: string[];
    try {
      await openRoom(bob, 'Quiet');
      await messages(bob, 'theirs after').waitFor();
      shown = await rows(bob);
    } finally {
      await restore();
    }
    const divider = shown.findIndex((t) => t.includes('New messages'));
    expect(divider).toBeGreaterThan(0);
    expect(shown[divider + 1]).toContain('theirs after');
    expect(shown[divider - 1]).toContain('mine two');
  });

  it('keeps a half-written message per room across a reload', async () => {
    await bob.locator('#composer').fill('half-written thought');
    await openRoom(bob, 'Elsewhere');
    await bob.locator('#composer').fill('another draft');
    await bob.reload();
    await bob.locator('.conv-head h1', { hasText: 'Elsewhere' }).waitFor();
    await expect.poll(() => bob.locator('#composer').inputValue()).toBe('another draft');
    await openRoom(bob, 'Quiet');
    await expect.poll(() => bob.locator('#composer').inputValue()).toBe('half-written thought');
    // Sending clears the draft for good.
    await bob.locator('#composer').press('Enter');
    await messages(bob, 'half-written thought').waitFor();
    await bob.reload();
    await bob.locator('.conv-head h1', { hasText: 'Quiet' }).waitFor();
    await messages(bob, 'half-written thought').waitFor();
    expect(await bob.locator('#composer').inputValue()).toBe('');
  });

  it('shows who has read up to a message in a small room', async () => {
    await openRoom(alice, 'Quiet');
    await send(alice, 'did you read this');
    const mine = item(alice, 'did you read this');
    await mine.waitFor();
    await messages(bob, 'did you read this').waitFor();
    await mine.getByLabel('Seen by Bob Builder').waitFor();
    // The receipt moves on with the reader.
    await send(alice, 'and this');
    await item(alice, 'and this').getByLabel('Seen by Bob Builder').waitFor();
    expect(await mine.getByLabel('Seen by Bob Builder').count()).toBe(0);
  });

  it('reads a room up to a reply sent from another device, and puts the line below that reply', async () => {
    const replied = await createRoom(alice, 'Replied', { kind: 'group' });
    await invite(alice, 'bob');
    await openRoom(bob, 'Elsewhere');
    await send(alice, 'a question for bob');
    await roomLink(bob, 'Replied').locator('.badge', { hasText: '1' }).waitFor();
    const phone = await device(web, 'bob');
    try {
      await phone.send(replied, 'answered from the phone');
    } finally {
      phone.close();
    }
    await expect.poll(() => roomLink(bob, 'Replied').locator('.badge').count(), { timeout: 10_000 }).toBe(0);
    await send(alice, 'a follow-up');
    await roomLink(bob, 'Replied').locator('.badge', { hasText: '1' }).waitFor();
    await openRoom(bob, 'Replied');
    await messages(bob, 'a follow-up').waitFor();
    const shown = await rows(bob);
    const divider = shown.findIndex((t) => t.includes('New messages'));
    expect(divider).toBeGreaterThan(0);
    expect(shown[divider + 1]).toContain('a follow-up');
    expect(shown[divider - 1]).toContain('answered from the phone');
  });
});

describe('search', () => {
  it("finds messages in all of one's rooms and jumps to one with its surroundings loaded", async () => {
    await openRoom(bob, 'Elsewhere');
    const box = bob.getByRole('searchbox', { name: 'Search messages' });
    await box.fill('needle');
    await box.press('Enter');
    const results = bob.getByRole('region', { name: 'Search results' });
    const hit = results.getByRole('button', { name: /needle in the old haystack/ });
    await hit.waitFor();
    expect(await results.getByText('#Busy').count()).toBeGreaterThan(0);
    expect(await axeViolations(bob)).toEqual([]);
    await hit.click();
    await bob.locator('.conv-head h1', { hasText: 'Busy' }).waitFor();
    const target = item(bob, 'needle in the old haystack');
    await target.waitFor();
    await expect.poll(() => target.getAttribute('class')).toContain('target');
    await expect.poll(() => inView(bob, target)).toBe(true);
    await expect.poll(() => target.evaluate((el) => el === document.activeElement)).toBe(true);
    for (const t of ['old009', 'old011']) await messages(bob, t).waitFor();
    // Only the surroundings were loaded: the newest page comes on scrolling down.
    expect(await messages(bob, 'm260').count()).toBe(0);
    const log = bob.locator('.messages');
    await expect
      .poll(
        async () => {
          await log.evaluate((el) => {
            el.scrollTop = el.scrollHeight;
          });
          return messages(bob, 'my reply from up there').count();
        },
        { timeout: 20_000 },
      )
      .toBe(1);
    expect(await messages(bob, 'needle in the old haystack').count()).toBe(1);
    expect(web.pageErrors).toEqual([]);
  });

  it('searches again, still "Searching…", when the server answers that its index is catching up', async () => {
    // The server says so (`unavailable` with retryAfterMs) when its index lags behind what was
    // just sent, as on a busy machine: here the first two answers are that one.
    const page = await web.page(await web.context());
    let refused = 0;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const f = typeof m === 'string' ? (JSON.parse(m) as { id?: number; cmd?: string }) : null;
        if (f?.cmd === 'search' && refused < 2) {
          refused++;
          ws.send(
            JSON.stringify({
              id: f.id,
              ok: false,
              error: { code: 'unavailable', message: 'the search index is catching up; retry shortly', details: { retryAfterMs: 300 } },
            }),
          );
          return;
        }
        server.send(m);
      });
      server.onMessage((m) => ws.send(m));
    });
    try {
      await page.goto(web.srv.url);
      await signIn(page, 'bob');
      const box = page.getByRole('searchbox', { name: 'Search messages' });
      await box.fill('needle');
      await box.press('Enter');
      await page
        .getByRole('region', { name: 'Search results' })
        .getByRole('button', { name: /needle in the old haystack/ })
        .waitFor();
      expect(refused).toBe(2);
      expect(await page.getByText('Could not search').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('on a phone, jumps to a result in a room opened before (its messages already loaded)', async () => {
    const room = await createRoom(alice, 'Pocket');
    await flood(room, ['the pocket roadmap, at the top', ...Array.from({ length: 44 }, (_, i) => `pocket filler ${i}`)]);
    const phone = await web.page(await web.context({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true }));
    try {
      await phone.goto(`${web.srv.url}/r/${room}`);
      await signIn(phone, 'alice');
      await messages(phone, 'pocket filler 43').waitFor();
      await phone.getByRole('button', { name: 'Back to rooms' }).tap();
      const box = phone.getByRole('searchbox', { name: 'Search messages' });
      await box.fill('pocket roadmap');
      await box.press('Enter');
      await phone
        .getByRole('region', { name: 'Search results' })
        .getByRole('button', { name: /the pocket roadmap/ })
        .tap();
      const target = item(phone, 'the pocket roadmap, at the top');
      await expect.poll(() => target.getAttribute('class')).toContain('target');
      // In view, not left above it by the opening of the room placed after it.
      await expect.poll(() => inView(phone, target)).toBe(true);
    } finally {
      await phone.context().close();
    }
  });
});

describe('a burst of messages', () => {
  it('draws hundreds of messages that arrive at once in a few renders and moves the read marker a few times', async () => {
    const room = await createRoom(alice, 'Burst', { kind: 'group' });
    await send(alice, 'before the burst');
    await messages(alice, 'before the burst').waitFor();
    // Each change of the message list reaches a MutationObserver once per render.
    await alice.evaluate(() => {
      const w = window as unknown as { renders: number };
      w.renders = 0;
      new MutationObserver(() => {
        w.renders++;
      }).observe(document.querySelector('.message-list')!, { childList: true, subtree: true, characterData: true, attributes: true });
    });
    // The page stops at its next script (the first frame of the burst), as a busy or slow
    // device would: the rest of the burst waits in line until it goes on.
    const cdp = await alice.context().newCDPSession(alice);
    let reads = 0;
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketFrameSent', (e) => {
      if (/"cmd":"read"/.test(e.response.payloadData)) reads++;
    });
    await cdp.send('Debugger.enable');
    const paused = new Promise((resolve) => cdp.once('Debugger.paused', resolve));
    await cdp.send('Debugger.pause');
    const burst = Array.from({ length: 200 }, (_, i) => `burst${pad(i + 1)}`);
    await flood(room, burst);
    await paused;
    await cdp.send('Debugger.resume');
    await messages(alice, 'burst200').waitFor();
    const texts = (await alice.locator('.message-list .msg-text').allInnerTexts()).filter((t) => t.startsWith('burst'));
    expect(texts).toEqual(burst);
    const renders = await alice.evaluate(() => (window as unknown as { renders: number }).renders);
    expect(renders).toBeLessThan(50);
    // Read as it arrived: the read marker reaches the newest message in a few moves.
    const entry = async () => (await aliceDevice.inbox()).rooms.find((e) => e.room.id === room)!;
    const last = (await entry()).room.lastSeq;
    await expect.poll(async () => (await entry()).readSeq).toBe(last);
    await cdp.detach();
    expect(reads).toBeLessThan(20);
  });
});
