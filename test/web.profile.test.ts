// Your profile in a real browser: changing the display name, and the devices signed in to your
// account, one of which is signed out from another.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { axeViolations, createRoom, messages, person, send, signIn, startWeb, type Web } from './web-helpers.js';

const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
let web: Web;
let alice: Page;

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
});

afterAll(async () => {
  await web?.close();
});

async function openProfile(page: Page) {
  await page.getByRole('button', { name: /^Your profile/ }).click();
  return page.getByRole('dialog', { name: 'Your profile' });
}

describe('profile', () => {
  it('changes the display name: the header, new messages and other people see it', async () => {
    await createRoom(alice, 'Tea Party');
    await send(alice, 'before the change');
    await messages(alice, 'before the change').waitFor();

    const dialog = await openProfile(alice);
    const field = dialog.getByLabel('Display name');
    expect(await field.inputValue()).toBe('Alice Liddell');
    await field.fill('   ');
    await dialog.getByRole('button', { name: 'Save name' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'Enter a name.' }).waitFor();
    await field.fill('Alice Pleasance');
    await dialog.getByRole('button', { name: 'Save name' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    expect(await axeViolations(alice, 'dialog')).toEqual([]);
    await dialog.getByRole('button', { name: 'Close' }).click();

    await expect.poll(() => alice.locator('.me-name').textContent()).toBe('Alice Pleasance');
    await send(alice, 'after the change');
    await messages(alice, 'after the change').waitFor();
    const r = await fetch(`${web.srv.url}/api/v1/users/alice`, { headers: { authorization: `Bearer ${await web.srv.token('bystander')}` } });
    expect(((await r.json()) as { name: string }).name).toBe('Alice Pleasance');
    // A reload keeps it (the stored session and the server agree).
    await alice.reload();
    await expect.poll(() => alice.locator('.me-name').textContent()).toBe('Alice Pleasance');
  });

  it('a dialog closed on the way to the message box leaves focus there: Enter sends', async () => {
    const dialog = await openProfile(alice);
    await dialog.waitFor();
    // Focus goes to the message box as soon as the dialog has left the page; the dialog's own
    // return of focus to the profile button, a moment later, must not take it back (Enter
    // would open the profile again instead of sending).
    const focusAfter = await alice.evaluate(async () => {
      const d = document.querySelector<HTMLDialogElement>('dialog[open]')!;
      const composer = document.getElementById('composer')!;
      await new Promise<void>((resolve) => {
        const mo = new MutationObserver(() => {
          if (d.isConnected && d.open) return;
          mo.disconnect();
          composer.focus();
          resolve();
        });
        mo.observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['open'] });
        d.querySelector<HTMLButtonElement>('button[aria-label="Close"]')!.click();
      });
      await new Promise((r) => setTimeout(r, 300));
      return document.activeElement?.id;
    });
    expect(focusAfter).toBe('composer');
    await alice.keyboard.type('typed straight away');
    await alice.keyboard.press('Enter');
    await messages(alice, 'typed straight away').waitFor();
    expect(await dialog.isVisible()).toBe(false);
  });

  it('lists the signed-in devices and signs one out: that device is back at the sign-in screen', async () => {
    const phone = await web.page(await web.context({ userAgent: PHONE_UA, viewport: { width: 390, height: 800 } }));
    await phone.goto(web.srv.url);
    await signIn(phone, 'alice');
    await phone.getByRole('button', { name: /^Your profile/ }).waitFor();

    const dialog = await openProfile(alice);
    const devices = dialog.locator('.device');
    await expect.poll(() => devices.count()).toBe(2);
    const current = devices.filter({ hasText: 'This device' });
    expect(await current.locator('.device-name').textContent()).toBe('Chrome on Linux');
    expect(await current.getByRole('button').count()).toBe(0);
    const other = devices.filter({ hasText: 'Chrome on Android' });
    expect(await other.textContent()).toMatch(/Signed in .+ · last active .+/);

    await other.getByRole('button', { name: /^Sign out Chrome on Android/ }).click();
    await alice.getByRole('alertdialog', { name: 'Sign out Chrome on Android?' }).getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => devices.count()).toBe(1);
    // The phone's connection was closed by the server: it finds its session ended at once,
    // without waiting for its access token to expire.
    await phone.getByRole('form', { name: 'Sign in' }).waitFor({ timeout: 8_000 });
    await phone.getByText('Your session has ended').waitFor();
    // Alice's own page carries on.
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await send(alice, 'still here');
    await messages(alice, 'still here').waitFor();
    await phone.context().close();
  });

  it('signs every other device out at once', async () => {
    const others = await Promise.all(
      [1, 2].map(async () => {
        const p = await web.page(await web.context());
        await p.goto(web.srv.url);
        await signIn(p, 'alice');
        await p.getByRole('heading', { name: 'Welcome, Alice Pleasance' }).waitFor();
        return p;
      }),
    );
    const dialog = await openProfile(alice);
    await expect.poll(() => dialog.locator('.device').count()).toBe(3);
    await dialog.getByRole('button', { name: 'Sign out all other devices' }).click();
    await alice.getByRole('alertdialog').getByRole('button', { name: 'Sign out others' }).click();
    await expect.poll(() => dialog.locator('.device').count()).toBe(1);
    for (const p of others) await p.getByRole('form', { name: 'Sign in' }).waitFor({ timeout: 8_000 });
    expect(web.pageErrors).toEqual([]);
  });
});
