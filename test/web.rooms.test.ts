// Rooms in a real browser: who is online as members come and go, what a kicked or banned
// member reads, channel names, the message length limit, and the app while the server is away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import type { ParleyClient } from '../src/client/index.js';
import { createRoom, device, messages, openRoom, person, roomLink, send, signIn, startWeb, type Web } from './web-helpers.js';

const LIMIT = 300;
let web: Web;
let alice: Page;
let bob: Page;
let carol: ParleyClient;
let lobby = '';

beforeAll(async () => {
  web = await startWeb({ limits: { textChars: LIMIT } });
  [alice, bob] = await Promise.all([person(web, 'alice', 'Alice Liddell'), person(web, 'bob', 'Bob Builder')]);
});

afterAll(async () => {
  carol?.close();
  await web?.close();
});

const onlineButton = (page: Page) => page.locator('.conv-actions').getByRole('button', { name: /online|Members/ });

async function joinByBrowsing(page: Page, name: string): Promise<void> {
  await page.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
  await page
    .getByRole('dialog', { name: 'Browse channels' })
    .getByRole('button', { name: `Join ${name}` })
    .click();
}

describe('presence', () => {
  it('counts a member who joins while online, and stops counting one who is removed', async () => {
    lobby = await createRoom(alice, 'Lobby');
    await joinByBrowsing(bob, 'Lobby');
    await bob.locator('.conv-head h1', { hasText: 'Lobby' }).waitFor();
    await expect.poll(() => onlineButton(alice).textContent()).toContain('2 online');

    carol = await web.srv.client('carol');
    await carol.join(lobby);
    await expect.poll(() => onlineButton(alice).textContent()).toContain('3 online');
    await expect.poll(() => onlineButton(bob).textContent()).toContain('3 online');

    const owner = await device(web, 'alice');
    await owner.kick(lobby, 'carol');
    owner.close();
    await expect.poll(() => onlineButton(alice).textContent()).toContain('2 online');
    await expect.poll(() => onlineButton(bob).textContent()).toContain('2 online');
  });

  it('shows who is online to someone who joins from a pasted room link', async () => {
    await carol.join(lobby);
    const dave = await person(web, 'dave', 'Dave Dee');
    await dave.goto(`${web.srv.url}/r/${lobby}`);
    await dave.getByRole('button', { name: 'Join channel' }).click();
    await dave.locator('.conv-head h1', { hasText: 'Lobby' }).waitFor();
    await expect.poll(() => onlineButton(dave).textContent()).toContain('4 online');
    await expect.poll(() => onlineButton(alice).textContent()).toContain('4 online');
    await dave.context().close();
    await expect.poll(() => onlineButton(alice).textContent()).toContain('3 online');
  });
});

describe('moderation as the member sees it', () => {
  it('tells a kicked member the reason', async () => {
    await onlineButton(alice).click();
    await alice
      .locator('.members')
      .getByRole('button', { name: /Bob Builder/ })
      .click();
    const card = alice.getByRole('dialog', { name: 'Bob Builder' });
    await card.getByLabel('Reason (optional, shown to them)').fill('off topic');
    await card.getByRole('button', { name: 'Kick' }).click();
    await bob.getByText(/removed you.*off topic/).waitFor();
    await expect.poll(() => roomLink(bob, 'Lobby').count()).toBe(0);
  });

  it('tells a banned member trying to rejoin that they are banned, why and until when', async () => {
    await joinByBrowsing(bob, 'Lobby');
    await bob.locator('.conv-head h1', { hasText: 'Lobby' }).waitFor();
    await alice
      .locator('.members')
      .getByRole('button', { name: /Bob Builder/ })
      .click();
    const card = alice.getByRole('dialog', { name: 'Bob Builder' });
    await card.getByLabel('Reason (optional, shown to them)').fill('spam');
    await card.getByLabel('Ban for').selectOption({ label: '1 day' });
    await card.getByRole('button', { name: 'Ban' }).click();
    await bob.getByText('“Lobby” banned you (spam).').waitFor();

    await bob.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
    const browse = bob.getByRole('dialog', { name: 'Browse channels' });
    await browse.getByRole('button', { name: 'Join Lobby' }).click();
    const refusal = browse.getByRole('alert');
    await refusal.waitFor();
    const text = await refusal.textContent();
    expect(text).toMatch(/You are banned from “Lobby” until .+: spam/);
    expect(text).not.toContain('That user');
    await browse.getByRole('button', { name: 'Close' }).click();

    // The same from a pasted link.
    await bob.goto(`${web.srv.url}/r/${lobby}`);
    await bob.getByRole('button', { name: 'Join channel' }).click();
    await bob.getByText(/You are banned from “Lobby” until .+: spam/).waitFor();
  });
});

describe('channel names', () => {
  it('are unique on the server, whatever their case', async () => {
    await bob.getByRole('button', { name: 'New room' }).click();
    const dialog = bob.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('LOBBY');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    await dialog.getByText('A channel named “LOBBY” exists already. Choose another name.').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // A private group may share a channel's name: nobody outside it sees it.
    await createRoom(bob, 'Lobby', { kind: 'group' });
    await bob.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
    const browse = bob.getByRole('dialog', { name: 'Browse channels' });
    await browse.getByRole('button', { name: 'Join Lobby' }).waitFor();
    expect(await browse.getByRole('listitem').count()).toBe(1);
    await browse.getByRole('button', { name: 'Close' }).click();
  });
});

describe('browsing channels on a phone', () => {
  it('shows that the list goes on below its edge, and not once its end is reached', async () => {
    const owner = await web.srv.client('hallkeeper');
    for (let i = 1; i <= 14; i++) await owner.createRoom('channel', `Hall ${String(i).padStart(2, '0')}`);
    const topic = 'Where the halls meet: notices, lost and found, the rota for the kitchen and who has the key to the roof this week';
    await owner.createRoom('channel', 'Hall 00', { topic });
    const essay = `${'The long rules of the hall, read them all before you post. '.repeat(6)}The end.`;
    await owner.createRoom('channel', 'Hall 99', { topic: essay });
    owner.close();
    const phone = await web.page(await web.context({ viewport: { width: 360, height: 640 }, hasTouch: true, isMobile: true }));
    await phone.goto(web.srv.url);
    await signIn(phone, 'bob');
    await phone.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
    const list = phone.getByRole('dialog', { name: 'Browse channels' }).locator('.channel-list');
    await list.getByText('# Hall 14').waitFor();
    // By name, not by the rooms' ids.
    const names = await list.locator('.channel-name').allTextContents();
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base', numeric: true })));
    expect(await list.evaluate((el) => el.scrollHeight > el.clientHeight + 40)).toBe(true);
    // A long topic wraps, whole: a phone cannot hover to read a cut one.
    const shownTopic = list.getByText(topic);
    expect(await shownTopic.evaluate((el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().height > 40)).toBe(true);
    // The brightness of the list's bottom edge, in the middle (away from names and buttons).
    const bottomEdge = async () => {
      const { data, info } = await sharp(await list.screenshot())
        .raw()
        .toBuffer({ resolveWithObject: true });
      let sum = 0;
      let n = 0;
      for (let y = info.height - 3; y < info.height; y++) {
        for (let x = Math.floor(info.width * 0.45); x < info.width * 0.55; x++) {
          const i = (y * info.width + x) * info.channels;
          sum += (data[i]! + data[i + 1]! + data[i + 2]!) / 3;
          n++;
        }
      }
      return sum / n;
    };
    expect(await bottomEdge()).toBeLessThan(215);
    await list.evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await expect.poll(bottomEdge).toBeGreaterThan(220);
    // A topic longer than three lines shows three, and the rest on demand.
    const long = list.getByText(essay);
    const lines = () => long.evaluate((el) => Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)));
    expect(await lines()).toBe(3);
    await list.getByRole('button', { name: 'Show all' }).click();
    await expect.poll(lines).toBeGreaterThan(3);
    await list.getByRole('button', { name: 'Show less' }).click();
    await expect.poll(lines).toBe(3);
    await phone.context().close();
  });
});

describe('names stored with a bidirectional override', () => {
  it('do not turn around the words and time shown after them', async () => {
    // Stored before names lost such controls (the server removes them now): set in the store.
    const owner = await web.srv.client('rlo-owner');
    const room = await owner.createRoom('group', 'Spoof check');
    await web.srv.parley.store.upsertUser({ id: 'rlo-mallory', name: 'Mallory \u202E', profile: {} });
    await owner.invite(room.id, 'rlo-mallory');
    await owner.invite(room.id, 'bob');
    owner.close();
    await openRoom(bob, 'Spoof check');
    const line = bob.locator('.message-list li.system', { hasText: 'Mallory' });
    await line.waitFor();
    // The time after the name reads left to right: its first character is drawn left of its last.
    const order = await line.locator('time').evaluate((t) => {
      const text = t.firstChild!;
      const at = (i: number) => {
        const r = document.createRange();
        r.setStart(text, i);
        r.setEnd(text, i + 1);
        return r.getBoundingClientRect().left;
      };
      return at(text.textContent!.length - 1) - at(0);
    });
    expect(order).toBeGreaterThan(0);
  });
});

describe('the message length limit', () => {
  it('is said before sending, and a text over it stays in the message box', async () => {
    await openRoom(alice, 'Lobby');
    const box = alice.locator('#composer');
    await box.fill('x'.repeat(LIMIT - 10));
    await alice.getByText(`${LIMIT - 10} / ${LIMIT}`).waitFor();
    await box.fill('y'.repeat(LIMIT + 12));
    await alice.getByText(`12 characters too long (the limit is ${LIMIT}).`).waitFor();
    await box.press('Enter');
    await alice.waitForTimeout(300);
    expect(await box.inputValue()).toBe('y'.repeat(LIMIT + 12));
    expect(await alice.locator('.msg.pending').count()).toBe(0);
    await box.fill('short again');
    await box.press('Enter');
    await messages(alice, 'short again').waitFor();
  });
});

describe('while the server is away', () => {
  it('says so everywhere, and the page is back within moments of the server', async () => {
    await alice.getByLabel('Message a user', { exact: true }).fill('bob');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('heading', { name: 'Bob Builder' }).waitFor();
    await alice.locator('.conv-head .topic', { hasText: 'Online' }).waitFor();

    await web.stop();
    await alice.locator('.conn[data-state="reconnecting"]').waitFor();
    await send(alice, 'queued one');
    await send(alice, 'queued two');
    const pill = alice.locator('.conn');
    await pill.getByText('2 queued').waitFor();
    expect(
      await pill.evaluate((el) =>
        [...el.querySelectorAll('*')].every((c) => {
          const r = c.getBoundingClientRect();
          const p = el.getBoundingClientRect();
          return r.right <= p.right + 0.5 && r.left >= p.left - 0.5;
        }),
      ),
    ).toBe(true);
    expect(await alice.locator('.conv-head .topic').textContent()).not.toBe('Online');

    await alice.locator('.sidebar').getByRole('button', { name: 'Browse channels' }).click();
    const browse = alice.getByRole('dialog', { name: 'Browse channels' });
    await browse.getByText('You are offline. Channels are listed when the connection is back.').waitFor();

    await web.restart();
    const back = Date.now();
    await browse.getByRole('button', { name: 'Open Lobby' }).waitFor({ timeout: 15_000 });
    await alice.locator('.conn[data-state="back"], .conn[data-state="online"]').waitFor({ timeout: 15_000 });
    expect(Date.now() - back).toBeLessThan(3_000);
    await browse.getByRole('button', { name: 'Close' }).click();
    await messages(alice, 'queued two').waitFor();
    await expect.poll(() => alice.locator('.msg.pending').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  });
});
