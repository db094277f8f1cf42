// Threads in a real browser, for two people: "Reply in thread" opens the thread panel beside
// the conversation, a reply stays out of the room's timeline unless "Also send to the room" is
// checked, the root's "N replies" updates live for the other member and opens the thread, and
// a long thread pages its older replies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { axeViolations, createRoom, device, invite, item, messages, openRoom, person, send, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;
let room = '';

beforeAll(async () => {
  web = await startWeb();
  alice = await person(web, 'alice', 'Alice Liddell');
  bob = await person(web, 'bob', 'Bob Builder');
  room = await createRoom(alice, 'Team', { kind: 'group' });
  await invite(alice, 'bob');
  await openRoom(bob, 'Team');
}, 120_000);

afterAll(async () => {
  await web?.close();
});

const panel = (page: Page) => page.locator('#thread-panel');
const replies = (page: Page, text: string) => panel(page).locator('.thread-replies .msg-text', { hasText: text });

describe('threads', () => {
  it('a reply in a thread stays in the thread; its root shows the count live and opens it', async () => {
    await send(alice, 'Plan for Friday?');
    const root = item(bob, 'Plan for Friday?');
    await root.waitFor();
    await root.hover();
    await root.getByRole('button', { name: 'Reply in thread' }).click();
    await panel(bob).locator('.thread-root', { hasText: 'Plan for Friday?' }).waitFor();
    const box = panel(bob).getByLabel('Reply in thread');
    await box.fill('I can bring snacks');
    await box.press('Enter');
    await replies(bob, 'I can bring snacks').waitFor();
    // Not in either timeline; the root counts it, live, for Alice too.
    const link = item(alice, 'Plan for Friday?').locator('.thread-link');
    await expect.poll(() => link.textContent()).toContain('1 reply');
    expect(await messages(alice, 'I can bring snacks').count()).toBe(0);
    expect(await messages(bob, 'I can bring snacks').count()).toBe(0);
    await link.click();
    await replies(alice, 'I can bring snacks').waitFor();
    // Also sent to the room: in the thread and in both timelines.
    await panel(alice).getByLabel('Also send to the room').check();
    await panel(alice).getByLabel('Reply in thread').fill('See you there');
    await panel(alice).getByRole('button', { name: 'Reply', exact: true }).click();
    await replies(alice, 'See you there').waitFor();
    await replies(bob, 'See you there').waitFor();
    await messages(alice, 'See you there').waitFor();
    await messages(bob, 'See you there').waitFor();
    await expect.poll(() => item(bob, 'Plan for Friday?').locator('.thread-link').textContent()).toContain('2 replies');
    await expect.poll(() => panel(bob).locator('h2').textContent()).toContain('2 replies');
    expect(await axeViolations(alice, '#thread-panel')).toEqual([]);
    await panel(bob).getByRole('button', { name: 'Close thread' }).click();
    await expect.poll(() => panel(bob).count()).toBe(0);
  });

  it('the members button shows the members while a thread is open; on a phone the thread takes the screen', async () => {
    const sdk = await device(web, 'alice');
    try {
      const { seq } = await sdk.send(room, 'Side topic');
      await sdk.send(room, 'a first reply', { thread: seq });
      const link = item(bob, 'Side topic').locator('.thread-link');
      await expect.poll(() => link.textContent()).toContain('1 reply');
      await link.click();
      await replies(bob, 'a first reply').waitFor();
      // The checkbox sits beside its label, a checkbox's size, not stretched across the row.
      const also = await panel(bob).getByLabel('Also send to the room').boundingBox();
      expect(also!.width).toBeLessThan(40);
      const toggle = bob.locator('button[aria-controls="members-panel"]');
      await toggle.click();
      await bob.locator('#members-panel').waitFor();
      expect(await toggle.getAttribute('aria-expanded')).toBe('true');
      await expect.poll(() => panel(bob).count()).toBe(0);
      await toggle.click();
      await expect.poll(() => bob.locator('#members-panel').count()).toBe(0);

      await bob.setViewportSize({ width: 390, height: 844 });
      try {
        await link.click();
        await replies(bob, 'a first reply').waitFor();
        const box = await panel(bob).boundingBox();
        expect(box!.width).toBeGreaterThanOrEqual(380);
        expect(await axeViolations(bob, '#thread-panel')).toEqual([]);
        await panel(bob).getByRole('button', { name: 'Close thread' }).click();
      } finally {
        await bob.setViewportSize({ width: 1280, height: 800 });
      }
    } finally {
      sdk.close();
    }
  });

  it('a long thread shows its newest replies and loads older ones on demand', async () => {
    const sdk = await device(web, 'alice');
    try {
      const { seq } = await sdk.send(room, 'Long discussion');
      for (let i = 0; i < 55; i++) await sdk.send(room, `point ${i}`, { thread: seq });
      const root = item(bob, 'Long discussion');
      await expect.poll(() => root.locator('.thread-link').textContent()).toContain('55 replies');
      await root.locator('.thread-link').click();
      await replies(bob, 'point 54').waitFor();
      expect(await replies(bob, 'point 0').count()).toBe(0);
      await panel(bob).getByRole('button', { name: 'Load older replies' }).click();
      await replies(bob, 'point 0').waitFor();
      expect(await panel(bob).locator('.thread-replies li').count()).toBe(55);
      expect(await panel(bob).getByRole('button', { name: 'Load older replies' }).count()).toBe(0);
      // None of them is in the room's timeline.
      expect(await messages(bob, 'point 3').count()).toBe(0);
    } finally {
      sdk.close();
    }
  });
});
