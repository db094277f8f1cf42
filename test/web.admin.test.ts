// The admin screen in a real browser, for an account listed in accounts.admins: live figures,
// finding and banning a user (and lifting it), finding and deleting a room, the word list and
// webhook delivery status. Other users are not offered it.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { axeViolations, createRoom, login, PASSWORD, person, post, screenshot, searchPlaceholder, send, signIn, startWeb, type Web } from './web-helpers.js';

const ACCOUNTS = { hashMemoryKib: 8192, hashPasses: 1 };
let web: Web;
let hook: Server;
let ops: Page;
let bob: Page;
let den = '';

beforeAll(async () => {
  hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(503).end());
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}`;
  web = await startWeb({
    plugins: {
      rateLimit: { enabled: false },
      wordFilter: { enabled: true, mode: 'mask', words: ['darn'] },
      webhooks: { enabled: true, maxAttempts: 1, endpoints: [{ url: `${hookUrl}/services/SECRETPATH`, format: 'slack', events: ['message.sent'] }] },
    },
  });
  // The operator's account exists before it is listed as an administrator.
  const r = await fetch(`${web.srv.url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'opsy', password: PASSWORD, name: 'Ops Person' }),
  });
  expect(r.status).toBe(201);
  bob = await person(web, 'bob', 'Bob Builder');
  den = await createRoom(bob, 'Bob Den');
  await web.stop();
  await web.restart({ accounts: { ...ACCOUNTS, admins: ['opsy'] } });
  ops = await web.page(await web.context());
  await ops.goto(web.srv.url);
  await signIn(ops, 'opsy');
  await ops.getByRole('heading', { name: 'Welcome, Ops Person' }).waitFor();
});

afterAll(async () => {
  await web?.close();
  await new Promise<void>((r) => {
    hook?.closeAllConnections();
    hook?.close(() => r());
  });
});

const admin = (page: Page) => page.getByRole('dialog', { name: 'Server administration' });

async function openAdmin(section: string) {
  if (!(await admin(ops).isVisible())) await ops.getByRole('button', { name: 'Server administration' }).click();
  await admin(ops).getByRole('button', { name: section, exact: true }).click();
}

describe('admin screen', () => {
  it('is offered to administrators only', async () => {
    await bob.reload();
    await bob.getByRole('button', { name: /^Your profile/ }).waitFor();
    expect(await bob.getByRole('button', { name: 'Server administration' }).count()).toBe(0);
    await ops.getByRole('button', { name: 'Server administration' }).waitFor();
  });

  it('shows live connections and message rates of the node', async () => {
    await openAdmin('Live figures');
    const figure = (name: string) => admin(ops).locator(`[data-figure="${name}"]`);
    // Two pages are connected: the operator's and Bob's.
    await expect.poll(() => figure('connections').textContent()).toBe('2');
    const token = await login(web, 'bob');
    let seen = 0;
    const sending = (async () => {
      for (let i = 0; i < 20; i++) {
        await post(web, token, den, `burst ${i}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await expect
      .poll(
        async () => {
          seen = Math.max(seen, Number(await figure('in-rate').textContent()) || 0);
          return seen;
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThan(0);
    await sending;
    expect(await axeViolations(ops, 'dialog')).toEqual([]);
    await screenshot(ops, 'web-admin.png');
  });

  it("leaves the top bar's search field room for its placeholder at phone width", async () => {
    // An administrator's bar has one button more; the words "Log out" give way to an icon.
    const phone = await web.page(await web.context({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true }));
    await phone.goto(web.srv.url);
    await signIn(phone, 'opsy');
    await phone.getByRole('button', { name: 'Server administration' }).waitFor();
    // Polled: the field is measured once the bar is laid out.
    await expect
      .poll(async () => {
        const { text, box } = await searchPlaceholder(phone);
        return box > 0 && text <= box;
      })
      .toBe(true);
    const logout = phone.getByRole('button', { name: 'Log out' });
    expect((await logout.boundingBox())!.width).toBeLessThan(48);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    await screenshot(phone, 'web-admin-phone.png');
    await phone.context().close();
  });

  it('keeps the search field usable at phone width while connecting; the pill is its dot', async () => {
    // The WebSocket opens but the server never answers: the bar says "Connecting…".
    const phone = await web.page(await web.context({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true }));
    await phone.routeWebSocket(/./, () => {});
    await phone.goto(web.srv.url);
    await signIn(phone, 'opsy');
    await phone.getByRole('button', { name: 'Server administration' }).waitFor();
    const pill = phone.locator('.conn');
    expect(await pill.getAttribute('data-state')).toBe('connecting');
    await expect.poll(async () => (await searchPlaceholder(phone)).box).toBeGreaterThanOrEqual(70);
    // No room for the words: the pill is its dot (not a dot and a sliver of a letter); the
    // state stays readable in its colour, its title and, for screen readers, its words.
    expect((await phone.locator('.conn-dot').boundingBox())!.width).toBeGreaterThan(0);
    expect((await pill.boundingBox())!.width).toBeLessThanOrEqual(30);
    expect(await pill.textContent()).toBe('Connecting…');
    expect(await pill.getAttribute('title')).toBe('Connecting…');
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    // Wider, the words would fit, but the search field does not give room to them and take it
    // back once online: it is as wide while connecting as after.
    const searchWidth = async (page: Page) => (await page.getByRole('searchbox', { name: 'Search messages' }).boundingBox())!.width;
    await phone.setViewportSize({ width: 600, height: 740 });
    const connecting = await searchWidth(phone);
    const online = await web.page(await web.context({ viewport: { width: 600, height: 740 }, hasTouch: true, isMobile: true }));
    await online.goto(web.srv.url);
    await signIn(online, 'opsy');
    await online.locator('.conn[data-state="online"]').waitFor();
    expect(await searchWidth(online)).toBe(connecting);
    await online.context().close();
    await phone.context().close();
  });

  it('finds a user, bans them from the server (their page is told) and lifts the ban', async () => {
    await openAdmin('Users');
    await admin(ops).getByLabel('Find users').fill('builder');
    const row = admin(ops).locator('[data-user="bob"]');
    await row.waitFor();
    await expect.poll(() => admin(ops).locator('.admin-row').count()).toBe(1);
    await row.getByRole('button', { name: 'Ban Bob Builder (@bob)' }).click();
    const form = row.getByRole('form', { name: 'Ban Bob Builder' });
    await form.getByLabel('Ban for').selectOption('1 hour');
    await form.getByLabel('Reason (shown to them)').fill('spamming the den');
    await form.getByRole('button', { name: 'Ban from the server' }).click();
    await row.getByText(/^Banned until .+: spamming the den$/).waitFor();
    await bob
      .getByText(/banned from this server/)
      .first()
      .waitFor();

    await row.getByRole('button', { name: 'Lift the ban on Bob Builder (@bob)' }).click();
    await row.getByRole('button', { name: 'Ban Bob Builder (@bob)' }).waitFor();
    expect(await row.getByText(/^Banned/).count()).toBe(0);
    // Bob can sign in again.
    expect(await login(web, 'bob')).toBeTruthy();
  });

  it('finds a room with its member count and deletes it', async () => {
    await openAdmin('Rooms');
    await admin(ops).getByLabel('Find rooms').fill('den');
    const row = admin(ops).locator(`[data-room="${den}"]`);
    await expect.poll(() => row.locator('[data-members]').textContent()).toBe('1 member');
    await row.getByRole('button', { name: 'Delete Bob Den' }).click();
    await ops.getByRole('alertdialog', { name: 'Delete Bob Den?' }).getByRole('button', { name: 'Delete room' }).click();
    await expect.poll(() => row.count()).toBe(0);
    await admin(ops).getByText('No room matches.').waitFor();
    const r = await fetch(`${web.srv.url}/api/v1/rooms/${den}`, { headers: { authorization: `Bearer ${await login(web, 'opsy')}` } });
    expect(r.status).toBe(404);
  });

  it('lists rooms by name, each on a short date (the full one as its title)', async () => {
    const owner = await web.srv.client('lister');
    for (const name of ['Zeta list', 'alpha list 10', 'Alpha list 9']) await owner.createRoom('channel', name);
    owner.close();
    await openAdmin('Rooms');
    await admin(ops).getByLabel('Find rooms').fill('list');
    const names = admin(ops).locator('.admin-row strong');
    await expect.poll(() => names.allTextContents()).toEqual(['Alpha list 9', 'alpha list 10', 'Zeta list']);
    const day = admin(ops).locator('.admin-row time').first();
    const [text, title] = [await day.textContent(), await day.getAttribute('title')];
    // "Dec 6, 2026" in the row, "Sunday, December 6, 2026 at 1:23 PM" as its title.
    expect(title).toContain(String(new Date().getFullYear()));
    expect(text!.length).toBeLessThan(title!.length - 8);
  });

  it('edits the word list, which applies to messages at once', async () => {
    await openAdmin('Word list');
    // The configured word is shown, not removable here.
    await admin(ops).locator('.word', { hasText: 'darn' }).waitFor();
    await admin(ops).getByLabel('Words to block').fill('heck, gosh');
    await admin(ops).getByRole('button', { name: 'Block' }).click();
    await admin(ops).getByRole('button', { name: 'Unblock heck' }).waitFor();
    await admin(ops).getByRole('button', { name: 'Close' }).click();
    await createRoom(ops, 'Word Test');
    await send(ops, 'oh heck');
    await ops.locator('.message-list .msg-text', { hasText: /^oh \*+$/ }).waitFor();

    await openAdmin('Word list');
    await admin(ops).getByRole('button', { name: 'Unblock heck' }).click();
    await expect.poll(() => admin(ops).getByRole('button', { name: 'Unblock heck' }).count()).toBe(0);
    await admin(ops).getByRole('button', { name: 'Unblock gosh' }).waitFor();
  });

  it('shows webhook deliveries that failed, by endpoint origin only', async () => {
    await openAdmin('Webhooks');
    const row = admin(ops).locator('tbody tr').first();
    await expect
      .poll(
        async () => {
          await admin(ops).getByRole('button', { name: 'Live figures' }).click();
          await admin(ops).getByRole('button', { name: 'Webhooks', exact: true }).click();
          return (await row.textContent()) ?? '';
        },
        { timeout: 10_000 },
      )
      .toMatch(/HTTP 503/);
    expect(await row.textContent()).toContain('127.0.0.1');
    expect(await row.textContent()).not.toContain('SECRETPATH');
    expect(web.pageErrors).toEqual([]);
  });

  it('says the word filter and webhooks are off without asking for their routes', async () => {
    await web.stop();
    await web.restart({ accounts: { ...ACCOUNTS, admins: ['opsy'] }, plugins: { rateLimit: { enabled: false } } });
    const failed: string[] = [];
    ops.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`);
    });
    await ops.reload();
    await ops.getByRole('button', { name: 'Server administration' }).waitFor();
    await openAdmin('Word list');
    await admin(ops).getByText('The word filter is off on this server').waitFor();
    await admin(ops).getByRole('button', { name: 'Webhooks', exact: true }).click();
    await admin(ops).getByText('No webhooks are configured').waitFor();
    // Nothing the console would show as an error.
    expect(failed).toEqual([]);
  });
});
