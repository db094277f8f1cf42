// Roles in a real browser: the owner makes a member an admin and hands the room over from the
// member's card, and a page that is no longer the owner's stops offering it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createRoom, device, openRoom, person, startWeb, type Web } from './web-helpers.js';

let web: Web;
let alice: Page;
let bob: Page;

beforeAll(async () => {
  web = await startWeb();
  [alice, bob] = await Promise.all([person(web, 'alice', 'Alice Liddell'), person(web, 'bob', 'Bob Builder')]);
});

afterAll(async () => {
  await web?.close();
});

const onlineButton = (page: Page) => page.locator('.conv-actions').getByRole('button', { name: /online|Members/ });

describe('roles', () => {
  it("the owner makes a member an admin and hands the room over from the member's card", async () => {
    const room = await createRoom(alice, 'Role call', { kind: 'group' });
    const owner = await device(web, 'alice');
    await owner.invite(room, 'bob');
    const roles = async () => Object.fromEntries((await owner.members(room)).members.map((m) => [m.user, m.role]));
    const bobRow = alice.locator('.members').getByRole('button', { name: /^Bob/ });
    const card = alice.getByRole('dialog', { name: /^Bob/ });
    const openCard = async () => {
      await bobRow.click();
      await card.waitFor();
      return card;
    };
    const closeCard = async () => {
      await alice.keyboard.press('Escape');
      await card.waitFor({ state: 'hidden' });
    };

    await onlineButton(alice).click();
    await bobRow.waitFor();
    await openCard();
    await expect.poll(() => card.getByRole('region', { name: 'Role' }).count()).toBe(1);
    await card.getByRole('button', { name: 'Make admin' }).click();
    await expect.poll(roles).toEqual({ alice: 'owner', bob: 'admin' });
    await card.waitFor({ state: 'hidden' });

    // An admin's card offers Make member, and handing over asks first.
    await openCard();
    await card.getByRole('button', { name: 'Make member' }).waitFor();
    await card.getByRole('button', { name: 'Hand over ownership' }).click();
    const confirm = alice.getByRole('alertdialog', { name: /^Hand “Role call” to Bob/ });
    await confirm.getByRole('button', { name: 'Hand over' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await expect.poll(roles).toEqual({ alice: 'admin', bob: 'owner' });
    await card.waitFor({ state: 'hidden' });
    // Bob reads both changes addressed to him.
    await openRoom(bob, 'Role call');
    await bob.getByText('Alice Liddell made you an admin').waitFor();
    await bob.getByText('Alice Liddell handed the room to you').waitFor();
    await alice.getByText('You handed the room to Bob Builder').waitFor();

    // The page learns it is an admin now: the new owner's card offers no roles to set (nor
    // kick and ban: an admin does not act on the owner).
    await expect
      .poll(
        async () => {
          await openCard();
          const n = (await card.getByRole('region', { name: 'Role' }).count()) + (await card.getByRole('region', { name: 'Moderation' }).count());
          await closeCard();
          return n;
        },
        { timeout: 10_000 },
      )
      .toBe(0);

    // The new owner leaves: the room passes to Alice, its admin, whose page says so and offers
    // her the owner's controls again.
    const leaver = await device(web, 'bob');
    await leaver.leave(room);
    leaver.close();
    await alice.getByText('The room passed to you when Bob Builder left').waitFor();
    await expect.poll(roles).toEqual({ alice: 'owner' });
    owner.close();
  });
});
