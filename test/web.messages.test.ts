// Mentions, replies, pins and edit history in a real browser, for two people: member
// suggestions while typing "@", the mention badge in the room list and the highlight of a
// message that mentions you, the Reply action and the quote a reply shows, pinning from a
// message and the room's pins, and an edited message's earlier versions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { axeViolations, createRoom, invite, item, messages, openRoom, person, roomLink, send, slowFrames, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
  bob = await person(web, 'bob', 'Bob Builder');
  await createRoom(alice, 'Team', { kind: 'group' });
  await invite(alice, 'bob');
  await openRoom(bob, 'Team');
  // Alice looks at another room while Bob writes in Team.
  await createRoom(alice, 'Elsewhere', { kind: 'group' });
}, 120_000);

afterAll(async () => {
  await web?.close();
});

describe('mentions', () => {
  it('suggests members while typing "@", and the mention shows as a badge and a highlight', async () => {
    const box = bob.locator('#composer');
    await box.pressSequentially('hey @al');
    const list = bob.getByRole('listbox', { name: 'Members to mention' });
    await list.getByRole('option', { name: /Alice Liddell/ }).waitFor();
    // Typing on at once after picking keeps the text in order, even when frames come late (a
    // busy machine).
    const restore = await slowFrames(bob, 300);
    try {
      await box.press('Enter');
      await box.pressSequentially('look at this', { delay: 50 });
      await expect.poll(() => box.inputValue()).toBe('hey @alice look at this');
    } finally {
      await restore();
    }
    await box.press('Enter');
    await messages(bob, 'hey @alice look at this').waitFor();
    // Alice, in another room, sees the mention counted on Team.
    const badge = roomLink(alice, 'Team').locator('.mention-badge');
    await expect.poll(() => badge.textContent()).toBe('@1');
    await openRoom(alice, 'Team');
    const mine = item(alice, 'hey @alice look at this');
    await expect.poll(() => mine.getAttribute('class')).toContain('mentioned');
    expect(await mine.locator('.mention-me').textContent()).toBe('@alice');
    await expect.poll(() => badge.count()).toBe(0);
    expect(await axeViolations(alice, '.message-list')).toEqual([]);
  });
});

describe('replies', () => {
  it('Reply answers a message, and the answer shows a quote of it', async () => {
    await send(bob, 'who brings the cake?');
    const asked = item(alice, 'who brings the cake?');
    await asked.hover();
    await asked.getByRole('button', { name: 'Reply', exact: true }).click();
    await alice.getByRole('status').filter({ hasText: 'Replying to Bob Builder' }).waitFor();
    await send(alice, 'I do');
    for (const page of [alice, bob]) {
      const quote = item(page, 'I do').locator('.quote');
      await quote.waitFor();
      expect(await quote.textContent()).toBe('In reply to Bob Builder who brings the cake?');
    }
    expect(await alice.getByRole('status').filter({ hasText: 'Replying to' }).count()).toBe(0);
  });
});

describe('pins and edit history', () => {
  it("a moderator pins a message and both see it in the room's pins; a member has no pin action", async () => {
    await send(bob, 'the plan: meet at noon');
    const theirs = item(alice, 'the plan: meet at noon');
    await theirs.hover();
    await theirs.getByRole('button', { name: 'Pin message' }).click();
    const own = item(bob, 'the plan: meet at noon');
    await own.hover();
    expect(await own.getByRole('button', { name: 'Pin message' }).count()).toBe(0);
    await bob.locator('.conv-actions').getByRole('button', { name: 'Pins' }).click();
    const dialog = bob.getByRole('dialog', { name: 'Pinned messages' });
    await dialog.getByText('the plan: meet at noon').waitFor();
    expect(await dialog.getByRole('button', { name: 'Unpin' }).count()).toBe(0);
    await dialog.getByRole('button', { name: 'Close' }).click();
    // Bob edits the pinned message: Alice's open list shows it as it reads now.
    await alice.locator('.conv-actions').getByRole('button', { name: 'Pins' }).click();
    const pins = alice.getByRole('dialog', { name: 'Pinned messages' });
    await pins.getByText('the plan: meet at noon').waitFor();
    await own.hover();
    await own.getByRole('button', { name: 'Edit message' }).click();
    const edit = bob.getByRole('textbox', { name: 'Edit message' });
    await edit.fill('the plan: meet at one');
    await edit.press('Enter');
    await pins.getByText('the plan: meet at one').waitFor();
    // Alice unpins from the list; Bob's open list follows.
    await bob.locator('.conv-actions').getByRole('button', { name: 'Pins' }).click();
    await pins.getByRole('button', { name: 'Unpin' }).click();
    await bob.getByRole('dialog', { name: 'Pinned messages' }).getByText('Nothing is pinned in this room.').waitFor();
    await bob.getByRole('dialog', { name: 'Pinned messages' }).getByRole('button', { name: 'Close' }).click();
    await alice.getByRole('dialog', { name: 'Pinned messages' }).getByRole('button', { name: 'Close' }).click();
  });

  it('"edited" opens the earlier versions of a message', async () => {
    await send(bob, 'meet at 11');
    const mine = item(bob, 'meet at 11');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit message' }).click();
    const edit = bob.getByRole('textbox', { name: 'Edit message' });
    await edit.fill('meet at 12');
    await edit.press('Enter');
    const theirs = item(alice, 'meet at 12');
    await theirs.hover();
    await theirs.getByRole('button', { name: '(edited)' }).click();
    const dialog = alice.getByRole('dialog', { name: 'Earlier versions' });
    await dialog.locator('.version-text').nth(1).waitFor();
    expect(await dialog.locator('.version-text').allTextContents()).toEqual(['meet at 11', 'meet at 12']);
    expect(await axeViolations(alice, 'dialog')).toEqual([]);
  });
});
