// The web app by keyboard, for screen readers (axe-core on the main screens), at phone width,
// in light and dark, in the reader's locale, with long names; and screenshots for review.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import {
  axeViolations,
  createRoom,
  invite,
  item,
  messages,
  openRoom,
  person,
  screenshot,
  searchPlaceholder,
  send,
  signIn,
  startWeb,
  type Web,
} from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;
let group = '';
/** A channel whose name is too long for a phone's width. */
let longRoom = '';

beforeAll(async () => {
  web = await startWeb();
  [alice, bob] = await Promise.all([person(web, 'alice', 'Alice Liddell'), person(web, 'bob', 'Bob Builder')]);
  group = await createRoom(alice, 'Project X', { kind: 'group' });
  await invite(alice, 'bob');
  for (let i = 1; i <= 30; i++) await send(alice, `line ${i}`);
  await messages(alice, 'line 30').waitFor();
});

afterAll(async () => {
  await web?.close();
});

/** What has keyboard focus, described. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    return { tag: el?.tagName ?? '', id: el?.id ?? '', seq: el?.dataset.seq ?? '', text: el?.textContent ?? '', label: el?.getAttribute('aria-label') ?? '' };
  });

describe('keyboard', () => {
  it('puts focus somewhere useful after signing in, and offers no skip link to a missing message box', async () => {
    const page = await web.page(await web.context());
    await page.goto(web.srv.url);
    await signIn(page, 'bob');
    await page.getByRole('heading', { name: 'Welcome, Bob Builder' }).waitFor();
    await expect.poll(async () => (await focused(page)).tag).not.toBe('BODY');
    const f = await focused(page);
    expect(f.id === 'composer' || /room-link/.test(await page.evaluate(() => document.activeElement?.className ?? '')), JSON.stringify(f)).toBe(true);
    // No conversation is open: there is no message box to skip to.
    expect(await page.getByRole('link', { name: 'Skip to message box' }).count()).toBe(0);
    await page.context().close();
  });

  it('makes the message list one tab stop, moved through with the arrow keys', async () => {
    await openRoom(bob, 'Project X');
    await messages(bob, 'line 30').waitFor();
    // Opened at the first unread line: down to the newest, where the list ends at the message box.
    await bob.getByRole('button', { name: /new messages ↓|Jump to latest/ }).click();
    await expect.poll(() => bob.getByRole('button', { name: /new messages ↓|Jump to latest/ }).count()).toBe(0);
    const stops = await bob
      .locator('.messages')
      .evaluate(
        (log) =>
          [...log.querySelectorAll<HTMLElement>('a, button, input, textarea, select, [tabindex]')].filter(
            (el) => el.tabIndex >= 0 && !(el as HTMLButtonElement).disabled,
          ).length + (log.tabIndex >= 0 ? 1 : 0),
      );
    expect(stops).toBe(1);

    await bob.locator('#composer').focus();
    await bob.keyboard.press('Shift+Tab');
    let f = await focused(bob);
    expect(f.seq, JSON.stringify(f)).not.toBe('');
    const last = Number(f.seq);
    await bob.keyboard.press('ArrowUp');
    f = await focused(bob);
    expect(Number(f.seq)).toBeLessThan(last);
    expect(f.text).toContain('line 29');
    await bob.keyboard.press('ArrowDown');
    expect((await focused(bob)).text).toContain('line 30');
    // One more Shift+Tab leaves the list for what is above it.
    await bob.keyboard.press('Shift+Tab');
    f = await focused(bob);
    expect(f.seq).toBe('');
    expect(await bob.evaluate(() => !!document.activeElement?.closest('.messages'))).toBe(false);
  });

  it("reaches a message's actions with Enter, and picks a reaction with the arrow keys", async () => {
    await bob.locator('#composer').focus();
    await bob.keyboard.press('Shift+Tab');
    expect((await focused(bob)).text).toContain('line 30');
    await bob.keyboard.press('Enter');
    const f = await focused(bob);
    expect(f.label || f.text).toMatch(/reaction|Alice/);
    const add = item(bob, 'line 30').getByRole('button', { name: 'Add reaction' });
    await add.focus();
    await bob.keyboard.press('Enter');
    const picker = bob.getByRole('group', { name: 'Reactions' });
    await picker.waitFor();
    const first = await focused(bob);
    await bob.keyboard.press('ArrowRight');
    const second = await focused(bob);
    expect(second.label).not.toBe(first.label);
    expect(second.label).toMatch(/^React with /);
    await bob.keyboard.press('Enter');
    const emoji = second.label.replace('React with ', '');
    await item(alice, 'line 30')
      .getByRole('button', { name: new RegExp(`^${emoji} 1, by Bob Builder`) })
      .waitFor();
    await bob.keyboard.press('Escape');
    expect((await focused(bob)).text).toContain('line 30');
  });
});

describe('screen readers', () => {
  it('axe finds no serious or critical problem on the main screens', async () => {
    const guest = await web.page(await web.context());
    await guest.goto(web.srv.url);
    await guest.getByRole('form', { name: 'Sign in' }).waitFor();
    expect(await axeViolations(guest)).toEqual([]);
    await guest.context().close();

    await openRoom(bob, 'Project X');
    const texts = ['a reaction target', 'unread one'];
    await send(alice, texts[0]!);
    await item(bob, texts[0]!).hover();
    await item(bob, texts[0]!).getByRole('button', { name: 'Add reaction' }).click();
    await bob.getByRole('button', { name: 'React with 👍' }).click();
    await item(alice, texts[0]!).getByRole('button', { name: /👍 1/ }).waitFor();
    expect(await axeViolations(bob)).toEqual([]);

    if (!(await alice.locator('.members').isVisible()))
      await alice
        .locator('.conv-actions')
        .getByRole('button', { name: /online|Members/ })
        .click();
    await alice.locator('.members').waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await alice.getByRole('button', { name: 'Settings' }).click();
    await alice.getByRole('dialog', { name: /Settings of/ }).waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await alice.keyboard.press('Escape');
    await alice.locator('.members').getByRole('button', { name: 'Close members' }).click();

    const phone = await web.page(await web.context({ viewport: { width: 390, height: 780 }, hasTouch: true, isMobile: true }));
    await phone.goto(`${web.srv.url}/r/${group}`);
    await signIn(phone, 'bob');
    await messages(phone, 'line 30').waitFor();
    expect(await axeViolations(phone)).toEqual([]);
    await phone.context().close();
  });

  it('every screen has one main landmark and a level-one heading', async () => {
    const PAGE_RULES = ['page-has-heading-one', 'landmark-one-main'];
    const carol = await person(web, 'carol', 'Carol Page');
    expect(await axeViolations(carol, 'html', PAGE_RULES)).toEqual([]);
    await createRoom(carol, 'Carol room', { kind: 'group' });
    expect(await axeViolations(carol, 'html', PAGE_RULES)).toEqual([]);
    // A channel carol is no member of, and a room that does not exist.
    const open = await createRoom(alice, 'Open door');
    await openRoom(alice, 'Project X');
    await carol.goto(`${web.srv.url}/r/${open}`);
    await carol.getByRole('button', { name: 'Join channel' }).waitFor();
    expect(await axeViolations(carol, 'html', PAGE_RULES)).toEqual([]);
    await carol.goto(`${web.srv.url}/r/no_such_room`);
    await carol.getByRole('heading', { level: 1, name: 'Room not found' }).waitFor();
    expect(await axeViolations(carol, 'html', PAGE_RULES)).toEqual([]);
    // At phone width a channel's long name is cut; the page does not scroll sideways.
    const long = (longRoom = await createRoom(alice, 'Quarterly planning and roadmap review of the whole team'));
    await openRoom(alice, 'Project X');
    await carol.setViewportSize({ width: 390, height: 780 });
    await carol.goto(`${web.srv.url}/r/${long}`);
    await carol.getByRole('button', { name: 'Join channel' }).waitFor();
    expect(await carol.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await carol.context().close();
  });
});

describe('details that look unfinished', () => {
  it('asks before deleting or leaving in the page itself, not in a browser box', async () => {
    let native = 0;
    bob.on('dialog', (d) => {
      native++;
      void d.dismiss();
    });
    await send(bob, 'soon gone');
    const mine = item(bob, 'soon gone');
    await mine.hover();
    await mine.getByRole('button', { name: 'Delete message' }).click();
    const ask = bob.getByRole('alertdialog', { name: 'Delete this message?' });
    await ask.waitFor();
    await ask.getByRole('button', { name: 'Cancel' }).click();
    expect(await messages(bob, 'soon gone').count()).toBe(1);
    await mine.hover();
    await mine.getByRole('button', { name: 'Delete message' }).click();
    await ask.getByRole('button', { name: 'Delete' }).click();
    await alice.getByText('This message was deleted.').first().waitFor();

    await bob.locator('.conv-actions').getByRole('button', { name: 'Leave' }).click();
    const leave = bob.getByRole('alertdialog', { name: 'Leave Project X?' });
    await leave.waitFor();
    await leave.getByRole('button', { name: 'Cancel' }).click();
    expect(native).toBe(0);
  });

  it("shows a message's actions at phone width only when the message is tapped", async () => {
    const phone = await web.page(await web.context({ viewport: { width: 390, height: 780 }, hasTouch: true, isMobile: true }));
    await phone.goto(`${web.srv.url}/r/${group}`);
    await signIn(phone, 'alice');
    const line = item(phone, 'line 30');
    await line.waitFor();
    expect(await line.getByRole('button', { name: 'Add reaction' }).isVisible()).toBe(false);
    await line.locator('.msg-text').tap();
    await line.getByRole('button', { name: 'Add reaction' }).waitFor({ state: 'visible' });
    // The actions are on top, where a tap reaches them.
    const reachable = (msg: Locator) =>
      msg.getByRole('button', { name: 'Add reaction' }).evaluate((b) => {
        const r = b.getBoundingClientRect();
        return b.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
      });
    expect(await reachable(line)).toBe(true);
    // The first message of a run shows its author and time: its actions leave them in view.
    const first = phone
      .locator('.msg', { has: phone.locator('.msg-head') })
      .filter({ has: phone.locator('.msg-actions') })
      .last();
    await first.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await first.locator('.msg-text').first().tap();
    await first.getByRole('button', { name: 'Add reaction' }).waitFor({ state: 'visible' });
    expect(await reachable(first)).toBe(true);
    const head = (await first.locator('.msg-head').boundingBox())!;
    const bar = (await first.getByRole('toolbar').boundingBox())!;
    expect(bar.y >= head.y + head.height || bar.x >= head.x + head.width, JSON.stringify({ head, bar })).toBe(true);
    await line.locator('.msg-text').tap();
    await line.getByRole('button', { name: 'Add reaction' }).waitFor({ state: 'visible' });
    await screenshot(phone, 'web-phone.png');
    // All the emoji open without the keyboard covering them: the search field waits for a tap.
    await line.getByRole('button', { name: 'Add reaction' }).click();
    await phone.getByRole('button', { name: 'More emoji…' }).click();
    const picker = phone.getByRole('dialog', { name: 'Choose an emoji' });
    await picker.locator('.emoji-grid button').first().waitFor();
    expect(await picker.getByRole('searchbox', { name: 'Search emoji' }).evaluate((e) => document.activeElement === e)).toBe(false);
    await picker.getByRole('button', { name: 'Close', exact: true }).click();
    // A tap on Edit opens the editor, though focus entering the message re-renders the list
    // under the finger; it offers Save and Cancel, with no word of keys a phone has none of.
    await line.locator('.msg-text').tap();
    await line.getByRole('button', { name: 'Edit message' }).tap();
    const editing = phone.locator('.edit-form');
    await editing.getByRole('button', { name: 'Cancel' }).waitFor();
    expect(await editing.getByText('Enter to save, Escape to cancel').isVisible()).toBe(false);
    await editing.getByRole('button', { name: 'Cancel' }).click();
    // The top bar's buttons are big enough for a finger; Leave is drawn like the actions beside it.
    for (const b of await phone.locator('.topbar button').all()) {
      const box = await b.boundingBox();
      if (box) expect(Math.min(box.width, box.height), (await b.getAttribute('title')) ?? (await b.textContent()) ?? '').toBeGreaterThanOrEqual(44);
    }
    const border = (name: string) =>
      phone
        .locator('.conv-actions')
        .getByRole('button', { name, exact: true })
        .evaluate((b) => getComputedStyle(b).borderTopColor);
    expect(await border('Leave')).toBe(await border('Pins'));
    // The top bar's search field shows the whole of its placeholder at phone width.
    // Polled: the field is measured once the bar is laid out.
    await expect
      .poll(async () => {
        const { text, box } = await searchPlaceholder(phone);
        return box > 0 && text <= box;
      })
      .toBe(true);
    // The room's name stays readable beside its actions, and no action leaves the screen.
    const title = (await phone.locator('#conv-title').boundingBox())!;
    expect(title.width).toBeGreaterThan(120);
    for (const b of await phone.locator('.conv-head button').all()) {
      const box = await b.boundingBox();
      if (box) expect(box.x + box.width, (await b.textContent()) ?? '').toBeLessThanOrEqual(390);
    }
    // The bell's menu opens inside the screen.
    await phone.getByRole('button', { name: /^Notifications:/ }).click();
    const menu = (await phone.getByRole('menu', { name: 'Notify me of' }).boundingBox())!;
    expect(menu.x).toBeGreaterThanOrEqual(0);
    expect(menu.x + menu.width).toBeLessThanOrEqual(390);
    // Its items' words wrap inside it.
    for (const entry of await phone.getByRole('menuitemradio').all()) {
      expect(await entry.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    }
    await screenshot(phone, 'web-phone-bell.png');
    await phone.keyboard.press('Escape');
    // A dialog's title is read whole: it wraps instead of being cut.
    await phone.goto(`${web.srv.url}/r/${longRoom}`);
    await phone.locator('.conv-actions').getByRole('button', { name: 'Settings' }).click();
    const heading = phone.getByRole('dialog', { name: /Settings of/ }).locator('.dialog-head h2');
    expect(await heading.evaluate((h) => h.scrollWidth <= h.clientWidth)).toBe(true);
    const box = (await heading.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    await screenshot(phone, 'web-phone-dialog.png');
    await phone.keyboard.press('Escape');
    // Touch cannot hover for a title, so a long name is shown whole where one picks a room: in
    // Browse and in search results it wraps; in the room list it takes a second line before it
    // is cut (the open room's header has it whole).
    await send(phone, 'kickoff of the roadmap');
    // Stored (no longer pending) before the page is left.
    await phone.locator('.message-list .msg:not(.pending) .msg-text', { hasText: 'kickoff of the roadmap' }).waitFor();
    await phone.goto(web.srv.url);
    const listed = phone.locator('.room-name', { hasText: 'Quarterly planning' });
    await expect.poll(() => listed.evaluate((e) => e.clientHeight / parseFloat(getComputedStyle(e).lineHeight))).toBeGreaterThan(1.5);
    const whole = (e: Element) => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight;
    await phone.getByRole('button', { name: 'Browse channels' }).click();
    const browsed = phone.getByRole('dialog', { name: 'Browse channels' }).locator('.channel-name', { hasText: 'Quarterly planning' });
    await expect.poll(() => browsed.evaluate(whole)).toBe(true);
    await phone.keyboard.press('Escape');
    await phone.getByRole('searchbox', { name: 'Search messages' }).fill('kickoff');
    await phone.keyboard.press('Enter');
    const found = phone.locator('.result-room', { hasText: 'Quarterly planning' });
    await found.waitFor({ timeout: 20_000 }).catch(async (err: unknown) => {
      // Say what the search showed instead: an error, no result, or the room under another name.
      throw new Error(`no result in "Quarterly planning…"; the page showed: ${JSON.stringify(await phone.locator('main').innerText())}`, { cause: err });
    });
    await expect.poll(() => found.evaluate(whole)).toBe(true);
    // Focus moves to the results' heading for screen readers, with no ring drawn round it.
    const results = phone.getByRole('heading', { name: /^Results for/ });
    await expect.poll(() => results.evaluate((e) => document.activeElement === e)).toBe(true);
    expect(await results.evaluate((e) => getComputedStyle(e).outlineStyle)).toBe('none');
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(phone, 'web-phone-search.png');
    await phone.context().close();
  });

  it('words direct rooms and private groups as what they are', async () => {
    await openRoom(alice, 'Project X');
    expect(await alice.locator('#composer').getAttribute('placeholder')).toBe('Message Project X');
    await createRoom(alice, 'town', { kind: 'channel' });
    expect(await alice.locator('#composer').getAttribute('placeholder')).toBe('Message #town');
    await alice.getByLabel('Message a user', { exact: true }).fill('bob');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('heading', { name: 'Bob Builder' }).waitFor();
    expect(await alice.locator('#composer').getAttribute('placeholder')).toBe('Message Bob Builder');
    await alice.getByText('This is the beginning of your conversation with Bob Builder.').waitFor();
  });

  it("shows times in the reader's locale and time zone", async () => {
    // A zone where the message's hour is 3 in the afternoon: "3:04 PM" in English, not
    // "03:04 PM". The message's own time, not now's: the hour may have turned since it was sent.
    await openRoom(alice, 'Project X');
    const sent = await item(alice, 'line 30').locator('time').first().getAttribute('datetime');
    const utc = new Date(sent!).getUTCHours();
    const offset = ((15 - utc + 36) % 24) - 12;
    const timezoneId = offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
    for (const [locale, pattern] of [
      ['en-US', /^3:\d\d\sPM$/],
      ['de-DE', /^15:\d\d$/],
    ] as const) {
      const page = await web.page(await web.context({ locale, timezoneId }));
      await page.goto(`${web.srv.url}/r/${group}`);
      await signIn(page, 'alice');
      const line = item(page, 'line 30');
      await line.waitFor();
      const time = (await line.locator('time').first().textContent())!.trim();
      expect(time, `${locale} ${timezoneId}`).toMatch(pattern);
      await page.context().close();
    }
  });

  it('draws reactions with the bundled emoji font', async () => {
    const page = alice;
    await openRoom(page, 'Project X');
    await item(page, 'a reaction target').getByRole('button', { name: /👍 1/ }).waitFor();
    await expect
      .poll(() => page.evaluate(() => [...document.fonts].some((f) => f.family.replace(/"/g, '') === 'Parley Emoji' && f.status === 'loaded')), {
        timeout: 10_000,
      })
      .toBe(true);
    // And it draws in colour in this browser (a font whose glyphs this browser cannot draw leaves them blank).
    const coloured = await page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 48;
      const ctx = canvas.getContext('2d')!;
      ctx.font = '40px "Parley Emoji"';
      ctx.textBaseline = 'top';
      ctx.fillText('👍', 2, 2);
      const px = ctx.getImageData(0, 0, 48, 48).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3]! > 200 && Math.abs(px[i]! - px[i + 2]!) > 60) n++;
      return n;
    });
    expect(coloured).toBeGreaterThan(100);
  });

  it('keeps long names inside their boxes', async () => {
    const long = 'Maximiliana Wolkenkratzer-Sonnenuntergang von Donnersmarck und Hohenzollern-Sigmaringen Jr';
    const page = await person(web, 'maxi', long.slice(0, 90));
    await page.getByLabel('Message a user', { exact: true }).fill('alice');
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await send(page, 'hello from a long name');
    const room = await createRoom(page, 'R'.repeat(90), { kind: 'group' });
    await send(page, 'in a long room');
    await messages(page, 'in a long room').waitFor();
    const log = page.locator('.messages');
    const wide = () => log.evaluate((el) => el.scrollWidth - el.clientWidth);
    expect(await wide()).toBeLessThanOrEqual(0);
    const box = page.locator('#composer');
    const oneLine = async () => (await box.boundingBox())!.height;
    expect(await oneLine()).toBeLessThan(48);
    await page.setViewportSize({ width: 390, height: 780 });
    await page.goto(`${web.srv.url}/r/${room}`);
    await messages(page, 'in a long room').waitFor();
    expect(await wide()).toBeLessThanOrEqual(0);
    expect(await oneLine()).toBeLessThan(48);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);
    await page.context().close();
  });
});

describe('themes', () => {
  it("switch between light, dark and the system's, and the choice survives a reload", async () => {
    await openRoom(alice, 'Project X');
    const bg = () => alice.evaluate(() => getComputedStyle(document.querySelector('.main')!).backgroundColor);
    await alice.emulateMedia({ colorScheme: 'light' });
    await alice.getByRole('button', { name: 'Preferences' }).click();
    const prefs = alice.getByRole('dialog', { name: 'Preferences' });
    await prefs.waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    const light = await bg();
    await prefs.getByLabel('Dark').check();
    await expect.poll(bg).not.toBe(light);
    const dark = await bg();
    await prefs.getByRole('button', { name: 'Close' }).click();
    await screenshot(alice, 'web-dark.png');
    await alice.reload();
    await messages(alice, 'line 30').waitFor();
    expect(await bg()).toBe(dark);
    await alice.getByRole('button', { name: 'Preferences' }).click();
    await prefs.getByLabel('Same as the system').check();
    await expect.poll(bg).toBe(light);
    await alice.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(bg).toBe(dark);
    await alice.emulateMedia({ colorScheme: 'light' });
    await prefs.getByLabel('Light').check();
    await prefs.getByRole('button', { name: 'Close' }).click();
    await alice
      .locator('.conv-actions')
      .getByRole('button', { name: /online|Members/ })
      .click();
    await screenshot(alice, 'web-main.png');
    expect(web.pageErrors).toEqual([]);
  });
});
