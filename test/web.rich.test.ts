// Rich messages in a real browser: the Markdown subset and its links, hostile input that
// must stay inert, the full emoji picker, notifications of direct messages while the tab is
// hidden, and password strength at registration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { axeViolations, createRoom, device, invite, item, login, openRoom, person, register, send, signIn, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;
let rich = '';

/**
 * Records the notifications the page shows and the permission prompts it makes; the real API
 * still runs. The profile grants notifications, but until the page asks the browser answers
 * "default", as one that was never asked does (headless Chromium shows no prompt to click).
 */
function watchNotifications(): void {
  const w = window as unknown as { __notes: Array<{ title: string; body: string }>; __asked: number; Notification: typeof Notification };
  w.__notes = [];
  w.__asked = 0;
  const Real = w.Notification;
  class Watched extends Real {
    constructor(title: string, opts?: NotificationOptions) {
      super(title, opts);
      w.__notes.push({ title, body: opts?.body ?? '' });
    }
    static override requestPermission(...args: Parameters<typeof Notification.requestPermission>) {
      w.__asked++;
      return Real.requestPermission(...args);
    }
    static override get permission() {
      return w.__asked > 0 ? Real.permission : 'default';
    }
  }
  w.Notification = Watched;
}

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
  const ctx = await web.context({ permissions: ['notifications'] });
  await ctx.addInitScript(watchNotifications);
  bob = await web.page(ctx);
  await register(web, bob, 'bob', 'Bob Builder');
  rich = await createRoom(alice, 'Rich', { kind: 'group' });
  await invite(alice, 'bob');
  await openRoom(bob, 'Rich');
});

afterAll(async () => {
  await web?.close();
});

const MARKDOWN = [
  '**bold** _em_ ~~gone~~ `code <b>`',
  '> quoted',
  '',
  '- one',
  '- two',
  '',
  '1. first',
  '',
  '```',
  'let x = 1 < 2;',
  '```',
  '',
  '# not a heading',
  '[site](https://example.com/a?b=c) www.example.org/path mailto:someone@example.com',
  '(https://en.wikipedia.org/wiki/Foo_(bar)) and https://en.wikipedia.org/wiki/Foo_(bar)',
].join('\n');

/** Bob on a phone (touch, 390 px), in the Rich room. */
async function bobsPhone(): Promise<Page> {
  const phone = await web.page(await web.context({ viewport: { width: 390, height: 780 }, hasTouch: true, isMobile: true }));
  await phone.goto(`${web.srv.url}/r/${rich}`);
  await signIn(phone, 'bob');
  return phone;
}

describe('Markdown', () => {
  it('renders the documented subset, with links that open safely', async () => {
    await bob.locator('#composer').fill(MARKDOWN);
    await bob.locator('#composer').press('Enter');
    const m = alice.locator('.message-list .msg', { hasText: 'quoted' });
    await m.waitFor();
    const text = m.locator('.msg-text');
    await text.locator('strong', { hasText: 'bold' }).waitFor();
    expect(await text.locator('em').textContent()).toBe('em');
    expect(await text.locator('s, del').textContent()).toBe('gone');
    expect(await text.locator('code').first().textContent()).toBe('code <b>');
    expect(await text.locator('blockquote').textContent()).toContain('quoted');
    expect(await text.locator('ul > li').allTextContents()).toEqual(['one', 'two']);
    expect(await text.locator('ol > li').allTextContents()).toEqual(['first']);
    expect(await text.locator('pre code').textContent()).toBe('let x = 1 < 2;\n');
    expect(await text.locator('h1').count()).toBe(0);
    await text.getByText('# not a heading').waitFor();
    const links = await text.locator('a').evaluateAll((as) =>
      as.map((a) => ({
        href: a.getAttribute('href'),
        text: a.textContent,
        target: a.getAttribute('target'),
        rel: a.getAttribute('rel'),
      })),
    );
    expect(links.map((l) => [l.text, l.href])).toEqual([
      ['site', 'https://example.com/a?b=c'],
      ['www.example.org/path', 'https://www.example.org/path'],
      ['mailto:someone@example.com', 'mailto:someone@example.com'],
      ['https://en.wikipedia.org/wiki/Foo_(bar)', 'https://en.wikipedia.org/wiki/Foo_(bar)'],
      ['https://en.wikipedia.org/wiki/Foo_(bar)', 'https://en.wikipedia.org/wiki/Foo_(bar)'],
    ]);
    for (const l of links) {
      expect(l.target).toBe('_blank');
      expect(l.rel?.split(' ')).toEqual(expect.arrayContaining(['noopener', 'noreferrer']));
    }
    // The room list previews it as it reads, without the Markdown's marks.
    const preview = alice.locator('nav li', { hasText: 'Rich' }).locator('.room-preview');
    await expect
      .poll(() => preview.textContent())
      .toMatch(/: bold em gone code <b> quoted one two first let x = 1 < 2; # not a heading site www\.example\.org\/path mailto:someone@example\.com \(https:/);
    // The message is stored as written.
    const r = await fetch(`${web.srv.url}/api/v1/rooms/${rich}/messages?limit=5`, { headers: { authorization: `Bearer ${await login(web, 'alice')}` } });
    const stored = ((await r.json()) as { messages: Array<{ text?: string }> }).messages.map((x) => x.text);
    expect(stored).toContain(MARKDOWN);
  });

  it('keeps hostile input inert: no script, no HTML, no javascript: or data: links, no injected attributes', async () => {
    const hostile = [
      '[click](javascript:alert(1))',
      '[enc](java&#115;cript:alert(2))',
      '[spaced]( javascript:alert(3))',
      '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg==)',
      '[vb](vbscript:msgbox(5))',
      '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> <a href="javascript:alert(6)">a</a>',
      '[x](https://a.example/" onmouseover="window.__pwned=3)',
      '![pic](https://example.com/x.png)',
      '<iframe src="https://example.com"></iframe> <b onclick="window.__pwned=4">b</b>',
      'JAVASCRIPT:alert(7) javascript:alert(8)',
    ];
    for (const h of hostile) await send(bob, h);
    await alice.locator('.message-list').getByText('JAVASCRIPT:alert(7) javascript:alert(8)').waitFor();
    for (const page of [alice, bob]) {
      const list = page.locator('.message-list');
      expect(await list.locator('.msg-text img, .msg-text script, .msg-text iframe, .msg-text b').count()).toBe(0);
      const hrefs = await list.locator('.msg-text a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
      for (const href of hrefs) expect(href, href).toMatch(/^(https?:|mailto:)/);
      expect(await list.evaluate((el) => [...el.querySelectorAll('*')].some((n) => [...n.attributes].some((a) => a.name.startsWith('on'))))).toBe(false);
      expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    }
    await alice.locator('.message-list').getByText('<img src=x onerror="window.__pwned=1">', { exact: false }).first().waitFor();
  });
});

describe('the emoji picker', () => {
  it('searches every emoji, for a reaction and for the message box', async () => {
    await send(alice, 'react to me');
    const target = item(bob, 'react to me');
    await target.hover();
    await target.getByRole('button', { name: 'Add reaction' }).click();
    await bob.getByRole('button', { name: 'More emoji…' }).click();
    const picker = bob.getByRole('dialog', { name: 'Choose an emoji' });
    await picker.getByRole('button', { name: 'grinning face', exact: true }).waitFor();
    expect(await axeViolations(bob)).toEqual([]);
    await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('rocket');
    await picker.getByRole('button', { name: 'rocket', exact: true }).click();
    await item(alice, 'react to me')
      .getByRole('button', { name: /^🚀 1, by Bob Builder/ })
      .waitFor();

    await bob.locator('#composer').fill('party ');
    await bob.getByRole('button', { name: 'Insert emoji' }).click();
    await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('party popper');
    await picker.getByRole('button', { name: 'party popper', exact: true }).click();
    expect(await bob.locator('#composer').inputValue()).toBe('party 🎉');
    await expect.poll(() => bob.evaluate(() => document.activeElement?.id)).toBe('composer');
  });

  it('offers only emoji the bundled font draws, each as one picture', async () => {
    // Used before the picker left them out: phoenix (Emoji 15.1) is not offered again.
    await bob.evaluate(() => localStorage.setItem('parley.emoji.recent', JSON.stringify(['\u{1F426}\u200D\u{1F525}', '\u2764\uFE0F', '\u{1F44D}'])));
    await bob.getByRole('button', { name: 'Insert emoji' }).click();
    const picker = bob.getByRole('dialog', { name: 'Choose an emoji' });
    const recent = picker.getByRole('region', { name: 'Recently used' });
    await recent.getByRole('button').first().waitFor();
    const shown = await recent.getByRole('button').allTextContents();
    expect(shown.map((e) => e.replaceAll('\uFE0F', ''))).toEqual(['\u2764', '\u{1F44D}']);
    const search = picker.getByRole('searchbox', { name: 'Search emoji' });
    await search.fill('shaking face');
    await picker.getByRole('button', { name: 'shaking face', exact: true }).waitFor(); // Emoji 15.0
    // Emoji 15.1 (combined) and 16.0: the font would draw a bird beside a fire, or a box.
    for (const query of ['phoenix', 'lime', 'bags under']) {
      await search.fill(query);
      await picker.getByText(`No emoji matches “${query}”.`).waitFor();
      expect(await picker.getByRole('heading', { name: /^Results for/ }).count()).toBe(0);
    }
    // The font's digits alone are blank: its keycaps 0-9 were empty buttons; 🔟 is drawn.
    await search.fill('keycap 1');
    await picker.getByRole('button', { name: 'keycap: 10', exact: true }).waitFor();
    expect(await picker.getByRole('button', { name: 'keycap: 1', exact: true }).count()).toBe(0);
    // Every combined emoji offered is drawn by the font as one picture, not as its parts.
    await search.fill('');
    await picker.getByRole('button', { name: 'grinning face', exact: true }).waitFor();
    const split = await picker.evaluate(async (el) => {
      await document.fonts.ready;
      const drawn = (b: Element) => {
        const r = document.createRange();
        r.selectNodeContents(b);
        return r.getBoundingClientRect().width;
      };
      const buttons = [...el.querySelectorAll('.emoji-grid button')];
      const one = drawn(buttons.find((b) => b.textContent === '😀')!);
      return buttons.filter((b) => [...b.textContent.replace(/\uFE0F$/, '')].length > 1 && drawn(b) > one * 1.5).map((b) => b.textContent);
    });
    expect(split).toEqual([]);
    await bob.keyboard.press('Escape');
  });

  it('opens from a tapped message on a phone, over the conversation, and reacts', async () => {
    await send(alice, 'tap to react');
    const phone = await bobsPhone();
    try {
      const line = item(phone, 'tap to react');
      await line.locator('.msg-text').tap();
      await line.getByRole('button', { name: 'Add reaction' }).tap();
      await phone.getByRole('button', { name: 'More emoji…' }).tap();
      const picker = phone.getByRole('dialog', { name: 'Choose an emoji' });
      const rocket = picker.getByRole('button', { name: 'rocket', exact: true });
      await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('rocket');
      await rocket.waitFor();
      // Drawn on screen, not a dialog of no size inside a hidden toolbar that blocks the page.
      const box = (await picker.boundingBox())!;
      expect(box.width).toBeGreaterThan(300);
      await rocket.tap();
      await item(alice, 'tap to react')
        .getByRole('button', { name: /^🚀 1, by Bob Builder/ })
        .waitFor();
      await picker.waitFor({ state: 'hidden' });
      // The page takes taps again.
      await phone.locator('#composer').tap();
      await expect.poll(() => phone.evaluate(() => document.activeElement?.id)).toBe('composer');
    } finally {
      await phone.context().close();
    }
  });

  it('moves down and up a line with the arrow keys, whatever the length of the line above', async () => {
    // Two recently used emoji: a line of two above the full lines of the first group.
    await bob.evaluate(() => localStorage.setItem('parley.emoji.recent', JSON.stringify(['\u{1F680}', '\u{1F355}'])));
    await bob.getByRole('button', { name: 'Insert emoji' }).click();
    const picker = bob.getByRole('dialog', { name: 'Choose an emoji' });
    await picker.getByRole('button', { name: 'grinning face', exact: true }).waitFor();
    const at = () =>
      bob.evaluate(() => {
        const r = document.activeElement!.getBoundingClientRect();
        return {
          label: document.activeElement!.getAttribute('aria-label') ?? document.activeElement!.textContent,
          x: Math.round(r.left),
          y: Math.round(r.top),
        };
      });
    await picker.getByRole('searchbox', { name: 'Search emoji' }).press('ArrowDown');
    const first = await at();
    const path = [first];
    for (let i = 0; i < 3; i++) {
      await bob.keyboard.press('ArrowDown');
      path.push(await at());
    }
    // Each press goes one line down, staying in the first column.
    for (let i = 1; i < path.length; i++) {
      expect(path[i]!.y, JSON.stringify(path)).toBeGreaterThan(path[i - 1]!.y);
      expect(Math.abs(path[i]!.x - first.x), JSON.stringify(path)).toBeLessThanOrEqual(2);
    }
    await bob.keyboard.press('ArrowUp');
    expect(await at()).toEqual(path[2]);
    await bob.keyboard.press('Escape');
    await picker.waitFor({ state: 'hidden' });
  });

  it("opens the author's card when a phone taps their name, though the message's actions then take a row", async () => {
    await send(bob, 'a line from bob');
    await send(alice, 'tap my name');
    const phone = await bobsPhone();
    try {
      const line = item(phone, 'tap my name');
      await line.waitFor();
      await line.locator('.msg-head .name').tap();
      await phone.getByRole('dialog', { name: 'Alice Liddell' }).waitFor();
      // A reaction chip too.
      await phone.keyboard.press('Escape');
      await send(alice, 'tap my chip');
      const chipped = item(phone, 'tap my chip');
      await chipped.waitFor();
      await item(alice, 'tap my chip').hover();
      await item(alice, 'tap my chip').getByRole('button', { name: 'Add reaction' }).click();
      await alice.getByRole('group', { name: 'Reactions' }).getByRole('button').first().click();
      const chip = chipped.locator('.reactions button').first();
      await chip.waitFor();
      await chip.tap();
      await expect.poll(() => chip.getAttribute('aria-pressed')).toBe('true');
    } finally {
      await phone.context().close();
    }
  });

  it("tells a phone in a room of other rooms' news on its way back; Reply goes to the message box", async () => {
    const phone = await bobsPhone();
    try {
      const back = phone.getByRole('button', { name: /^Back to rooms/ });
      await back.waitFor();
      expect(await back.getAttribute('aria-label')).toBe('Back to rooms');
      const a = await device(web, 'alice');
      const side = await a.createRoom('group', 'Side room');
      await a.invite(side.id, 'bob');
      await a.send(side.id, 'psst, over here');
      a.close();
      await expect.poll(() => back.getAttribute('aria-label')).toBe('Back to rooms, 1 unread room');
      expect(await back.locator('.back-badge').isVisible()).toBe(true);
    } finally {
      await phone.context().close();
    }
    await item(bob, 'tap my name').hover();
    await item(bob, 'tap my name').getByRole('button', { name: 'Reply', exact: true }).click();
    await expect.poll(() => bob.evaluate(() => document.activeElement?.id)).toBe('composer');
    await bob.getByRole('button', { name: 'Cancel reply' }).click();
  });

  it('fills the width of a phone with its columns, leaving no strip at the edge', async () => {
    const size = bob.viewportSize()!;
    const picker = bob.getByRole('dialog', { name: 'Choose an emoji' });
    try {
      await bob.setViewportSize({ width: 360, height: 740 });
      await bob.getByRole('button', { name: 'Insert emoji' }).click();
      await picker.getByRole('button', { name: 'grinning face', exact: true }).waitFor();
      // The first full line of a group (the recently used ones may not fill one).
      const strip = await picker.evaluate((el) => {
        const row = [...el.querySelectorAll('.emoji-row')].find((r) => r.querySelectorAll('button').length > 20)!;
        const buttons = [...row.querySelectorAll('button')];
        const top = buttons[0]!.offsetTop;
        const last = buttons.filter((b) => b.offsetTop === top).pop()!;
        return row.getBoundingClientRect().right - last.getBoundingClientRect().right;
      });
      expect(strip).toBeLessThanOrEqual(2);
    } finally {
      if (await picker.isVisible()) await bob.keyboard.press('Escape');
      await picker.waitFor({ state: 'hidden' });
      await bob.setViewportSize(size);
    }
  });
});

describe('notifications', () => {
  it('are never asked for on load; once turned on, a direct message notifies while the tab is hidden', async () => {
    expect(await bob.evaluate(() => (window as unknown as { __asked: number }).__asked)).toBe(0);
    await bob.getByRole('button', { name: 'Preferences' }).click();
    const prefs = bob.getByRole('dialog', { name: 'Preferences' });
    const box = prefs.getByRole('checkbox', { name: 'Notify me of direct messages and mentions while Parley is in the background or closed' });
    // Drawn as a box whatever the width (beside its long label on a phone it shrank to a sliver).
    const size = bob.viewportSize()!;
    try {
      await bob.setViewportSize({ width: 360, height: 740 });
      const drawn = (await box.boundingBox())!;
      expect(Math.min(drawn.width, drawn.height), JSON.stringify(drawn)).toBeGreaterThanOrEqual(14);
    } finally {
      await bob.setViewportSize(size);
    }
    await box.check();
    await expect.poll(() => bob.evaluate(() => (window as unknown as { __asked: number }).__asked)).toBe(1);
    await prefs.getByRole('button', { name: 'Close' }).click();

    await alice.getByLabel('Message a user', { exact: true }).fill('bob');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('heading', { name: 'Bob Builder' }).waitFor();
    await bob.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await send(alice, 'are you there?');
    await openRoom(alice, 'Rich');
    await send(alice, 'a group message notifies nobody');
    await expect
      .poll(() => bob.evaluate(() => (window as unknown as { __notes: unknown[] }).__notes))
      .toEqual([{ title: 'Alice Liddell', body: 'are you there?' }]);
    await bob.waitForTimeout(300);
    expect(await bob.evaluate(() => (window as unknown as { __notes: unknown[] }).__notes)).toHaveLength(1);
  });
});

describe('passwords', () => {
  it('refuses easily guessed ones with a clear message, in the app and on the server', async () => {
    const page = await web.page(await web.context());
    await page.goto(web.srv.url);
    await page.getByRole('button', { name: 'Create account', pressed: false }).click();
    const form = page.getByRole('form', { name: 'Create account' });
    await form.getByLabel('Username').fill('weakling');
    for (const pw of ['password', '12345678']) {
      await form.getByLabel('Password', { exact: true }).fill(pw);
      await form.getByRole('button', { name: 'Create account' }).click();
      await form
        .getByText(/heavily used password|too easy to guess/)
        .first()
        .waitFor();
    }
    expect(await page.getByRole('heading', { name: /Welcome/ }).count()).toBe(0);
    for (const password of ['password', '12345678', 'weakling1']) {
      const r = await fetch(`${web.srv.url}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'weakling', password }),
      });
      expect(r.status, password).toBe(400);
      expect(await r.json()).toMatchObject({ error: { code: 'invalid', details: { field: 'password' } } });
    }
    await form.getByLabel('Password', { exact: true }).fill('plum orchard quietly');
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Welcome, weakling' }).waitFor();
    await page.context().close();
    expect(web.pageErrors).toEqual([]);
  });
});
