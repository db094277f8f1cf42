// Notifications and account settings in a real browser: the service worker that shows Web
// Push notifications (registered without asking anything, served from the root with its
// scope), the setting that turns notifications on, a push delivered to the worker showing its
// notification, the per-room notification level in the room header, and the password change
// in the profile. Headless Chromium has no push service to subscribe with, so the delivery
// from the server to the browser is tested at the wire in push.test.ts; here the push is
// handed to the worker through the DevTools protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { axeViolations, createRoom, invite, login, messages, openRoom, PASSWORD, person, register, send, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
});

afterAll(async () => {
  await web?.close();
});

describe('service worker', () => {
  it('is served from the root as JavaScript and registers with the whole app as its scope, asking for nothing', async () => {
    const r = await fetch(`${web.srv.url}/sw.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^(application|text)\/javascript/);
    expect(r.headers.get('cache-control')).toBe('no-cache');
    const reg = await alice.evaluate(async () => {
      const x = await navigator.serviceWorker.ready;
      return { scope: x.scope, script: x.active?.scriptURL ?? '', permission: Notification.permission };
    });
    expect(reg).toEqual({ scope: `${web.srv.url}/`, script: `${web.srv.url}/sw.js`, permission: 'default' });
  });

  it('shows the notification of a push: who wrote, where, the text; one per room', async () => {
    const ctx = await web.context({ permissions: ['notifications'] });
    const page = await web.page(ctx);
    await register(web, page, 'pushy', 'Pushy Pete');
    const cdp = await ctx.newCDPSession(page);
    const registrations = new Promise<Array<{ registrationId: string; scopeURL: string }>>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: Array<{ registrationId: string; scopeURL: string; isDeleted: boolean }> }) => {
        const live = e.registrations.filter((x) => !x.isDeleted);
        if (live.length > 0) resolve(live);
      });
    });
    await page.evaluate(() => navigator.serviceWorker.ready);
    await cdp.send('ServiceWorker.enable');
    const [reg] = await registrations;
    const push = (data: unknown) =>
      cdp.send('ServiceWorker.deliverPushMessage', { origin: web.srv.url, registrationId: reg!.registrationId, data: JSON.stringify(data) });
    const shown = () =>
      page.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({
          title: n.title,
          body: n.body,
          tag: n.tag,
          room: (n.data as { room: string }).room,
        })),
      );

    // Headless Chromium, when busy, can drop a push handed to it through DevTools (the worker
    // never sees it). Each push is handed over again until its notification shows; the same
    // push twice replaces its own notification, so the end state is the same.
    type Push = { room: string; roomName: string; kind: string; seq: number; name: string; text: string; reason: string };
    const deliver = async (p: Push) => {
      const has = async () => (await shown()).some((n) => n.tag === `parley-${p.room}` && n.body === p.text);
      for (let attempt = 0; attempt < 6; attempt++) {
        await push(p);
        const until = Date.now() + 2000;
        while (Date.now() < until) {
          if (await has()) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      expect.fail(`the notification of ${JSON.stringify(p)} did not show`);
    };

    await deliver({ room: 'dm_a', roomName: '', kind: 'direct', seq: 3, name: 'Alice Liddell', text: 'are you there?', reason: 'message' });
    expect(await shown()).toEqual([{ title: 'Alice Liddell', body: 'are you there?', tag: 'parley-dm_a', room: 'dm_a' }]);
    await deliver({ room: 'grp1', roomName: 'Project X', kind: 'group', seq: 9, name: 'Bob', text: '@pushy look', reason: 'mention' });
    await deliver({ room: 'grp1', roomName: 'Project X', kind: 'group', seq: 10, name: 'Bob', text: '@pushy again', reason: 'mention' });
    await deliver({ room: 'chan', roomName: 'general', kind: 'channel', seq: 1, name: 'Cy', text: 'hello all', reason: 'message' });
    await expect
      .poll(async () => (await shown()).sort((a, b) => a.tag.localeCompare(b.tag)))
      .toEqual([
        { title: 'Cy in #general', body: 'hello all', tag: 'parley-chan', room: 'chan' },
        { title: 'Alice Liddell', body: 'are you there?', tag: 'parley-dm_a', room: 'dm_a' },
        { title: 'Bob mentioned you in Project X', body: '@pushy again', tag: 'parley-grp1', room: 'grp1' },
      ]);
    expect(web.pageErrors).toEqual([]);
    await ctx.close();
  });

  it('notifications are turned on in Preferences; the browser is asked only then', async () => {
    const ctx = await web.context();
    const page = await web.page(ctx);
    await register(web, page, 'asker', 'Ann Asker');
    expect(await page.evaluate(() => Notification.permission)).toBe('default');
    await page.getByRole('button', { name: 'Preferences' }).click();
    const prefs = page.getByRole('dialog', { name: 'Preferences' });
    const box = prefs.getByRole('checkbox', { name: 'Notify me of direct messages and mentions while Parley is in the background or closed' });
    expect(await box.isChecked()).toBe(false);
    await ctx.grantPermissions(['notifications']);
    await box.check();
    // Headless Chromium has no push service: the in-page notifications are on, and the app
    // says in words whether notifications while Parley is closed could be set up.
    await expect.poll(() => box.isChecked()).toBe(true);
    await prefs.locator('#push-note').waitFor();
    expect(await axeViolations(page, 'dialog')).toEqual([]);
    await ctx.close();
  });
});

describe('room notification level', () => {
  it('the bell in the room header shows the level and changes it; the server and a reload agree', async () => {
    const room = await createRoom(alice, 'Bells', { kind: 'group' });
    const bell = alice.locator('.conv-head .notify-button');
    expect(await bell.getAttribute('aria-label')).toBe('Notifications: Only mentions');
    await bell.click();
    const menu = alice.getByRole('menu', { name: 'Notify me of' });
    expect(await menu.getByRole('menuitemradio', { checked: true }).textContent()).toContain('Only mentions');
    expect(await axeViolations(alice, '.conv-head')).toEqual([]);
    // The keyboard moves through the choices.
    await alice.keyboard.press('ArrowDown');
    await alice.keyboard.press('Enter');
    await expect.poll(() => bell.getAttribute('aria-label')).toBe('Notifications: Nothing');
    expect(await menu.count()).toBe(0);
    const device = await web.srv.client('alice', { token: await login(web, 'alice') });
    expect((await device.notifications(room)).level).toBe('none');
    await bell.click();
    await menu.getByRole('menuitemradio', { name: /All messages/ }).click();
    await expect.poll(async () => (await device.notifications(room)).level).toBe('all');
    device.close();
    await alice.reload();
    await expect.poll(() => alice.locator('.conv-head .notify-button').getAttribute('aria-label')).toBe('Notifications: All messages');
  });
});

describe('password', () => {
  it('is changed in the profile: the current one is checked, a weak one refused with why, other devices signed out if asked', async () => {
    const page = await person(web, 'carol', 'Carol Clark');
    const other = await login(web, 'carol');
    await page.getByRole('button', { name: /^Your profile/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Your profile' });
    const form = dialog.getByRole('form', { name: 'Change password' });
    await form.getByLabel('Current password').fill('not my password');
    await form.getByLabel('New password').fill('password');
    await form.locator('meter').waitFor();
    await form.getByRole('button', { name: 'Change password' }).click();
    await form
      .getByRole('alert')
      .filter({ hasText: /too easy to guess/ })
      .waitFor();
    await form.getByLabel('New password').fill('plum jam under the stairs');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByRole('alert').filter({ hasText: 'That is not your current password.' }).waitFor();
    await form.getByLabel('Current password').fill(PASSWORD);
    expect(await form.getByRole('checkbox', { name: 'Sign out my other devices' }).isChecked()).toBe(true);
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByRole('status').filter({ hasText: 'Password changed. Your other devices were signed out.' }).waitFor();
    expect(await axeViolations(page, 'dialog')).toEqual([]);
    // The other device is signed out; this one carries on, and the new password signs in.
    const me = await fetch(`${web.srv.url}/api/v1/me`, { headers: { authorization: `Bearer ${other}` } });
    expect(me.status).toBe(401);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.reload();
    await page.getByRole('heading', { name: 'Welcome, Carol Clark' }).waitFor();
    const r = await fetch(`${web.srv.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'carol', password: 'plum jam under the stairs' }),
    });
    expect(r.status).toBe(200);
  });
});

describe('picture', () => {
  it('is chosen in the profile and shown wherever the user is: header, messages, member list, for others too; removed, initials again', async () => {
    const dora = await person(web, 'dora', 'Dora Dale');
    const eli = await person(web, 'eli', 'Eli Eng');
    await createRoom(dora, 'Pictures', { kind: 'group' });
    await invite(dora, 'eli');
    await send(dora, 'look at my picture');
    await dora.getByRole('button', { name: /^Your profile/ }).click();
    const dialog = dora.getByRole('dialog', { name: 'Your profile' });
    expect(await dialog.locator('.profile-picture .avatar img').count()).toBe(0);
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 20, g: 160, b: 90 } } })
      .png()
      .toBuffer();
    await dialog.getByTestId('avatar-input').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png });
    await dialog.getByRole('status').filter({ hasText: 'Picture saved.' }).waitFor();
    await dialog.locator('.profile-picture .avatar img').waitFor();
    expect(await axeViolations(dora, 'dialog')).toEqual([]);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dora.locator('.me-button .avatar img').waitFor();
    // Eli sees it beside Dora's message and in the member list; the image loads.
    await openRoom(eli, 'Pictures');
    await messages(eli, 'look at my picture').waitFor();
    const shown = eli.locator('.avatar img[src*="/users/dora/avatar"]').first();
    await shown.waitFor();
    await expect.poll(() => shown.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(256);
    await dora.getByRole('button', { name: /^Your profile/ }).click();
    await dialog.getByRole('button', { name: 'Remove picture' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Picture removed.' }).waitFor();
    expect(await dialog.locator('.profile-picture .avatar img').count()).toBe(0);
    expect(web.pageErrors).toEqual([]);
  });
});
