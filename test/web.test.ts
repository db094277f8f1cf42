// The web app in a real browser (Debian's chromium through playwright-core) against a real
// Parley node serving the built app: what two people see when they chat, across a reload and
// a server restart. The tests run in order and share the two users' pages, as a session would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { mintToken } from '../src/auth/jwt.js';
import { item, login, messages, openRoom, PASSWORD, person, post, roomLink, send, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;
let groupPath = '';

beforeAll(async () => {
  web = await startWeb();
  [alice, bob] = await Promise.all([person(web, 'alice', 'Alice Liddell'), person(web, 'bob', 'Bob Builder')]);
});

afterAll(async () => {
  await web?.close();
});

describe('the web app', () => {
  it("two users create a group, invite, and see each other's messages live, with unread counts and typing", async () => {
    await alice.getByRole('button', { name: 'New room' }).click();
    const dialog = alice.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Private group').check();
    await dialog.getByLabel('Name').fill('Project X');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    await alice.getByRole('heading', { name: 'Project X' }).waitFor();
    groupPath = new URL(alice.url()).pathname;
    expect(groupPath).toMatch(/^\/r\/[A-Za-z0-9_-]+$/);

    await alice
      .locator('.conv-actions')
      .getByRole('button', { name: /online/ })
      .click();
    await alice.getByLabel('Invite a user').fill('bob');
    await alice.getByRole('button', { name: 'Invite', exact: true }).click();
    await roomLink(bob, 'Project X').waitFor();

    await send(alice, 'hello bob');
    await roomLink(bob, 'Project X').locator('.badge', { hasText: '1' }).waitFor();
    await openRoom(bob, 'Project X');
    await messages(bob, 'hello bob').waitFor();
    await expect.poll(() => roomLink(bob, 'Project X').locator('.badge').count()).toBe(0);

    await bob.locator('#composer').pressSequentially('hi al');
    await alice.getByText('Bob Builder is typing…').waitFor();
    await bob.locator('#composer').fill('hi alice');
    await bob.locator('#composer').press('Enter');
    await messages(alice, 'hi alice').waitFor();
    await messages(bob, 'hi alice').waitFor();
    await expect.poll(() => alice.locator('.typing').textContent()).toBe('');
    expect(await messages(alice, 'hello bob').count()).toBe(1);
  });

  it('edits, deletes and reactions appear on the message they target, for both users', async () => {
    await send(bob, 'tpyo here');
    const mine = item(bob, 'tpyo here');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit message' }).click();
    const edit = bob.getByRole('textbox', { name: 'Edit message' });
    await edit.fill('typo fixed');
    await edit.press('Enter');
    await messages(alice, 'typo fixed').waitFor();
    await expect.poll(() => item(alice, 'typo fixed').locator('.edited').count()).toBe(1);
    expect(await messages(alice, 'tpyo here').count()).toBe(0);

    const theirs = item(alice, 'typo fixed');
    await theirs.hover();
    await theirs.getByRole('button', { name: 'Add reaction' }).click();
    await theirs.getByRole('button', { name: 'React with 🎉' }).click();
    await item(bob, 'typo fixed')
      .getByRole('button', { name: /🎉 1, by Alice Liddell/ })
      .waitFor();

    await send(bob, 'delete me');
    const gone = item(bob, 'delete me');
    await gone.hover();
    await gone.getByRole('button', { name: 'Delete message' }).click();
    await bob.getByRole('alertdialog', { name: 'Delete this message?' }).getByRole('button', { name: 'Delete' }).click();
    await alice.getByText('This message was deleted.').waitFor();
    expect(await messages(alice, 'delete me').count()).toBe(0);
  });

  it('a direct conversation opened by user id reaches the other user', async () => {
    await alice.getByLabel('Message a user', { exact: true }).fill('bob');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('heading', { name: 'Bob Builder' }).waitFor();
    await send(alice, 'just between us');
    await openRoom(bob, 'Alice Liddell');
    await messages(bob, 'just between us').waitFor();
    await send(bob, 'sure');
    await messages(alice, 'sure').waitFor();
    // Back to the group for what follows.
    await openRoom(alice, 'Project X');
    await openRoom(bob, 'Project X');
  });

  it('renders an HTML or script payload as text', async () => {
    const payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';
    await send(alice, payload);
    await messages(bob, payload).waitFor();
    expect(await bob.locator('.message-list .msg-text img, .message-list .msg-text script, .message-list .msg-text b').count()).toBe(0);
    expect(await bob.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await alice.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    // The room list shows it as text too.
    expect(await roomLink(bob, 'Project X').locator('.room-preview').textContent()).toContain('<script>');
  });

  it("a server post is shown apart; a user who takes the server's name is not", async () => {
    const room = groupPath.split('/').pop()!;
    const json = (token: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${token}` });
    const invited = await fetch(`${web.srv.url}/api/v1/rooms/${room}/members`, {
      method: 'POST',
      headers: json(await login(web, 'alice')),
      body: JSON.stringify({ user: 'impostor' }),
    });
    expect(invited.status).toBe(201);
    const posted = await fetch(`${web.srv.url}/api/v1/server/post`, {
      method: 'POST',
      headers: json(await mintToken(web.srv.config, 'ops', { admin: true })),
      body: JSON.stringify({ rooms: [room], messages: [{ text: 'Maintenance tonight at 22:00' }] }),
    });
    expect(posted.status).toBe(200);
    await post(web, await web.srv.token('impostor', { name: 'System' }), room, 'Maintenance moved to 23:00');
    await messages(bob, 'Maintenance moved to 23:00').waitFor();
    const real = item(bob, 'Maintenance tonight at 22:00');
    const fake = item(bob, 'Maintenance moved to 23:00');
    expect(await real.evaluate((el) => el.classList.contains('announcement'))).toBe(true);
    expect(await real.locator('.server-tag').textContent()).toBe('Server');
    expect(await fake.locator('.name').textContent()).toBe('System');
    expect(await fake.evaluate((el) => el.classList.contains('announcement'))).toBe(false);
    expect(await fake.locator('.server-tag').count()).toBe(0);
  });

  it('a reload keeps the session, the open room and its history, refreshing an expired access token', async () => {
    const before = await bob.evaluate(() => {
      const s = JSON.parse(localStorage.getItem('parley.session')!) as { refreshToken: string; expiresAt: number };
      localStorage.setItem('parley.session', JSON.stringify({ ...s, expiresAt: Date.now() - 1000 }));
      return s;
    });
    await bob.reload();
    await messages(bob, 'hello bob').waitFor();
    expect(new URL(bob.url()).pathname).toBe(groupPath);
    await messages(bob, 'hi alice').waitFor();
    expect(await bob.getByRole('form', { name: 'Sign in' }).count()).toBe(0);
    await bob.locator('.conn[data-state="online"]').waitFor();
    const after = await bob.evaluate(() => JSON.parse(localStorage.getItem('parley.session')!) as { refreshToken: string; expiresAt: number });
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.expiresAt).toBeGreaterThan(Date.now());
  });

  it('after a server restart the pages reconnect and show what was sent meanwhile exactly once', async () => {
    await web.stop();
    await alice.locator('.conn[data-state="reconnecting"]').waitFor();
    await send(alice, 'queued while offline');
    await send(alice, 'queued second');
    await expect.poll(() => alice.locator('.msg.pending', { hasText: 'Waiting for connection…' }).count()).toBe(2);

    await web.restart();
    // Bob's other device posts through the REST API as soon as the server is back.
    const accessToken = await login(web, 'bob');
    const room = groupPath.slice('/r/'.length);
    for (const text of ['sent meanwhile 1', 'sent meanwhile 2']) await post(web, accessToken, room, text);

    await alice.locator('.conn[data-state="back"]').waitFor();
    for (const page of [alice, bob]) {
      for (const text of ['queued while offline', 'queued second', 'sent meanwhile 1', 'sent meanwhile 2']) await messages(page, text).waitFor();
    }
    await expect.poll(() => alice.locator('.msg.pending').count()).toBe(0);
    // Late duplicates (a resend, a replay) would show up within moments.
    await alice.waitForTimeout(300);
    for (const page of [alice, bob]) {
      for (const text of ['queued while offline', 'queued second', 'sent meanwhile 1', 'sent meanwhile 2', 'hello bob', 'hi alice']) {
        expect(await messages(page, text).count(), `${text} once`).toBe(1);
      }
    }
    const order = await alice.locator('.message-list .msg-text').allTextContents();
    expect(order.indexOf('sent meanwhile 1')).toBeLessThan(order.indexOf('sent meanwhile 2'));
    expect(order.indexOf('queued while offline')).toBeLessThan(order.indexOf('queued second'));
    // The server stored the queued message once.
    const history = await fetch(`${web.srv.url}/api/v1/rooms/${room}/messages?limit=100`, { headers: { authorization: `Bearer ${accessToken}` } });
    const stored = ((await history.json()) as { messages: Array<{ text?: string }> }).messages.map((m) => m.text).filter((t) => t?.startsWith('queued'));
    expect(stored).toEqual(['queued while offline', 'queued second']);
  });

  it('a channel found by browsing is joined; older history loads on scrolling up; a line marks new messages', async () => {
    await alice.getByRole('button', { name: 'New room' }).click();
    const dialog = alice.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('Town square');
    await dialog.getByLabel('Topic (optional)').fill('Everything');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    await alice.getByRole('heading', { name: 'Town square' }).waitFor();
    const room = new URL(alice.url()).pathname.slice('/r/'.length);
    expect(`/r/${room}`).not.toBe(groupPath);
    const token = await login(web, 'alice');
    for (let i = 1; i <= 130; i++) await post(web, token, room, `m${String(i).padStart(3, '0')}`);

    await bob.getByRole('button', { name: 'Browse channels' }).click();
    await bob.getByRole('dialog', { name: 'Browse channels' }).getByRole('button', { name: 'Join Town square' }).click();
    await messages(bob, 'm130').waitFor();
    expect(await messages(bob, 'm001').count()).toBe(0);
    const log = bob.getByRole('log');
    await expect
      .poll(
        async () => {
          await log.evaluate((el) => {
            el.scrollTop = 0;
          });
          return messages(bob, 'm001').count();
        },
        { timeout: 10_000 },
      )
      .toBe(1);
    await bob.getByText('This is the beginning of Town square.').waitFor();
    expect(await messages(bob, 'm064').count()).toBe(1);

    await openRoom(bob, 'Project X');
    await post(web, token, room, 'while you were away');
    await roomLink(bob, 'Town square').locator('.badge', { hasText: '1' }).waitFor();
    await openRoom(bob, 'Town square');
    const rows = bob.locator('.message-list > li');
    await messages(bob, 'while you were away').waitFor();
    const texts = await rows.allInnerTexts();
    const divider = texts.findIndex((t) => t.includes('New messages'));
    expect(divider).toBeGreaterThan(0);
    expect(texts[divider + 1]).toContain('while you were away');
  });

  it('an owner changes the topic and bans a member, who loses the room at once', async () => {
    await alice.getByRole('button', { name: 'Settings' }).click();
    const settings = alice.getByRole('dialog', { name: /Settings of/ });
    await settings.getByRole('textbox', { name: 'Topic' }).fill('Be nice');
    await settings.getByRole('button', { name: 'Save' }).click();
    await bob.locator('.conv-head .topic', { hasText: 'Be nice' }).waitFor();
    await bob.getByText('Alice Liddell changed the topic to “Be nice”').waitFor();

    await alice
      .locator('.conv-actions')
      .getByRole('button', { name: /online/ })
      .click();
    await alice
      .locator('.members')
      .getByRole('button', { name: /Bob Builder/ })
      .click();
    const card = alice.getByRole('dialog', { name: 'Bob Builder' });
    await card.getByLabel('Reason (optional, shown to them)').fill('spam');
    await card.getByRole('button', { name: 'Ban' }).click();
    await bob.getByText('“Town square” banned you (spam).').waitFor();
    await expect.poll(() => roomLink(bob, 'Town square').count()).toBe(0);
    await bob.getByRole('heading', { name: 'Welcome, Bob Builder' }).waitFor();
    await alice.getByText('Alice Liddell removed Bob Builder').waitFor();
  });

  it('logging out ends the session; logging in brings the rooms back', async () => {
    await bob.getByRole('button', { name: 'Log out' }).click();
    const form = bob.getByRole('form', { name: 'Sign in' });
    await form.waitFor();
    await bob.reload();
    await form.getByLabel('Username').fill('bob');
    await form.getByLabel('Password').fill('wrong password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await bob.getByText('Wrong username or password.').waitFor();
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await openRoom(bob, 'Project X');
    await messages(bob, 'sent meanwhile 2').waitFor();
    await openRoom(alice, 'Project X');
  });

  it('raised no page errors', () => {
    expect(web.pageErrors).toEqual([]);
  });
});
