// What the browser tests of the web app share: a real Parley node serving the built app,
// Debian's chromium driven by playwright-core, users who register through the app, and the
// few look-ups every test makes (a message, a room of the room list, the composer).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect } from 'vitest';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { ParleyClient } from '../src/client/index.js';
import { findWebRoot } from '../src/transport/http/index.js';
import { freePort, removeDir, startServer, tempDir, type TestServer } from './helpers.js';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
export const OUT = join(import.meta.dirname, '..', 'test-output');
export const PASSWORD = 'correct horse battery';
/** Cheap password hashes: the tests are about the app, not argon2's cost. */
// Cheap password hashes; history is seeded faster than a person types, so no rate limit.
const FAST = { accounts: { hashMemoryKib: 8192, hashPasses: 1 }, plugins: { rateLimit: { enabled: false } } };

export interface Web {
  srv: TestServer;
  port: number;
  dataDir: string;
  browser: Browser;
  /** JavaScript errors raised in any page (each test file expects none). */
  pageErrors: string[];
  /** A fresh browser profile (its own storage): one per person. */
  context(opts?: BrowserContextOptions): Promise<BrowserContext>;
  page(ctx: BrowserContext): Promise<Page>;
  /**
   * Stops the node (the pages see it go away); `restart` brings it back on the same port and
   * data, with `more` settings replacing top-level sections of its configuration.
   */
  stop(): Promise<void>;
  restart(more?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export async function startWeb(overrides: Record<string, unknown> = {}): Promise<Web> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  if (!findWebRoot()) throw new Error('dist/web is missing: run `npm run build` first (npm test does)');
  const dataDir = tempDir('parley-web-');
  const port = await freePort();
  const config = { port, ...FAST, ...overrides };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  const web: Web = {
    srv: await startServer(config, dataDir),
    port,
    dataDir,
    browser,
    pageErrors: [],
    async context(opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
      ctx.setDefaultTimeout(10_000);
      return ctx;
    },
    async page(ctx) {
      const page = await ctx.newPage();
      page.on('pageerror', (e) => web.pageErrors.push(e.message));
      return page;
    },
    async stop() {
      await web.srv.close();
    },
    async restart(more = {}) {
      web.srv = await startServer({ ...config, ...more }, dataDir);
    },
    async close() {
      await browser.close();
      await web.srv?.close().catch(() => {});
      removeDir(dataDir);
    },
  };
  return web;
}

/** Registers through the app's own form and waits for the signed-in screen. */
export async function register(web: Web, page: Page, username: string, name: string): Promise<void> {
  await page.goto(web.srv.url);
  await page.getByRole('button', { name: 'Create account', pressed: false }).click();
  const form = page.getByRole('form', { name: 'Create account' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Display name (optional)').fill(name);
  await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await form.getByRole('button', { name: 'Create account' }).click();
  // The first registration of a profile loads the password estimator's dictionaries.
  await page.getByRole('heading', { name: `Welcome, ${name}` }).waitFor({ timeout: 30_000 });
}

/** A new person in their own browser profile, registered and signed in. */
export async function person(web: Web, username: string, name: string, opts: BrowserContextOptions = {}): Promise<Page> {
  const page = await web.page(await web.context(opts));
  await register(web, page, username, name);
  return page;
}

export async function send(page: Page, text: string): Promise<void> {
  const box = page.locator('#composer');
  await box.fill(text);
  await box.press('Enter');
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The shown messages (pending ones included) of the open conversation with exactly this text. */
export function messages(page: Page, text: string) {
  return page.locator('.message-list .msg-text').filter({ hasText: new RegExp(`^${escape(text)}( \\(edited\\))?$`) });
}

/** The whole message item (with its actions) of a shown message. */
export function item(page: Page, text: string) {
  return page.locator('.message-list .msg', { has: page.locator('.msg-text', { hasText: new RegExp(`^${escape(text)}( \\(edited\\))?$`) }) });
}

/** A room of the room list, by its shown name (followed, for screen readers, by its unread and mention counts). */
export function roomLink(page: Page, name: string) {
  return page.locator('a.room-link', {
    has: page.locator('.room-name', { hasText: new RegExp(`^${escape(name)}(, \\d+ unread messages?)?(, \\d+ unread mentions?)?$`) }),
  });
}

/** Opens a room from the room list and waits until its conversation is shown. */
export async function openRoom(page: Page, name: string): Promise<void> {
  await roomLink(page, name).click();
  await page.locator('.conv-head h1', { hasText: name }).waitFor();
}

/** Creates a channel or private group through the app and waits until it is open; its id. */
export async function createRoom(page: Page, name: string, opts: { kind?: 'channel' | 'group'; topic?: string } = {}): Promise<string> {
  await page.getByRole('button', { name: 'New room' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a room' });
  if (opts.kind === 'group') await dialog.getByLabel('Private group').check();
  await dialog.getByLabel('Name').fill(name);
  if (opts.topic) await dialog.getByLabel('Topic (optional)').fill(opts.topic);
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('.conv-head h1', { hasText: name }).waitFor();
  return new URL(page.url()).pathname.slice('/r/'.length);
}

/** Invites a user by id from the open room's member panel. */
export async function invite(page: Page, user: string): Promise<void> {
  const panel = page.locator('.members');
  if (!(await panel.isVisible()))
    await page
      .locator('.conv-actions')
      .getByRole('button', { name: /online|Members/ })
      .click();
  await page.getByLabel('Invite a user').fill(user);
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  await page
    .getByText(/was added\./)
    .last()
    .waitFor();
}

export async function login(web: Web, username: string): Promise<string> {
  const r = await fetch(`${web.srv.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { accessToken: string }).accessToken;
}

/** Posts through the REST API (another device of the same user); the seq it got. */
export async function post(web: Web, token: string, room: string, text: string): Promise<number> {
  const r = await fetch(`${web.srv.url}/api/v1/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ text }),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { seq: number }).seq;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, name) });
}

/**
 * Runs axe-core in the page and returns its serious and critical violations, or with `rules`
 * the violations of those rules only, of any impact. axe is evaluated through the DevTools
 * protocol, which the page's Content-Security-Policy does not govern.
 */
export async function axeViolations(page: Page, context = 'body', rules?: string[]): Promise<string[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(
    async ([ctx, only]) => {
      const axe = (
        window as unknown as {
          axe: {
            run(
              c: string,
              o: unknown,
            ): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[]; failureSummary: string }> }> }>;
          };
        }
      ).axe;
      const r = await axe.run(ctx, only ? { resultTypes: ['violations'], runOnly: { type: 'rule', values: only } } : { resultTypes: ['violations'] });
      return r.violations
        .filter((v) => only || v.impact === 'serious' || v.impact === 'critical')
        .map(
          (v) =>
            `${v.id} (${v.impact}): ${v.help} — ${v.nodes
              .slice(0, 3)
              .map((n) => `${n.target.join(' ')}: ${n.failureSummary}`)
              .join(' | ')}`,
        );
    },
    [context, rules] as const,
  );
  return found;
}
let axeSource: string | undefined;

export { removeDir };

/** An SDK connection of a registered user (its other device), with the account's own token. */
export async function device(web: Web, username: string): Promise<ParleyClient> {
  const token = await login(web, username);
  const c = new ParleyClient({ url: web.srv.url, token, WebSocket: WebSocket as never });
  await c.connect();
  return c;
}

/** Whether the element is inside the visible part of the message log. */
export async function inView(page: Page, locator: ReturnType<Page['locator']>): Promise<boolean> {
  const log = await page.locator('.messages').boundingBox();
  const box = await locator.boundingBox();
  if (!log || !box) return false;
  return box.y >= log.y - 1 && box.y + box.height <= log.y + log.height + 1;
}

/** Signs in through the app's form (the page shows it: a fresh profile, or after logging out). */
export async function signIn(page: Page, username: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

/** The top bar's search field: the width of its placeholder's text, and of the box for it. */
export function searchPlaceholder(page: Page): Promise<{ text: number; box: number }> {
  return page.getByRole('searchbox', { name: 'Search messages' }).evaluate((el: HTMLInputElement) => {
    const s = getComputedStyle(el);
    const ctx = document.createElement('canvas').getContext('2d')!;
    ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    return { text: ctx.measureText(el.placeholder).width, box: el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) };
  });
}

/**
 * Makes the page's animation frames come `ms` late, as on a busy machine, until the returned
 * function is called.
 */
export async function slowFrames(page: Page, ms: number): Promise<() => Promise<void>> {
  await page.evaluate((delay) => {
    const w = window as unknown as { fastFrames?: typeof requestAnimationFrame };
    w.fastFrames ??= window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (cb) => w.fastFrames!(() => setTimeout(() => cb(performance.now()), delay));
  }, ms);
  return async () => {
    await page.evaluate(() => {
      const w = window as unknown as { fastFrames?: typeof requestAnimationFrame };
      if (w.fastFrames) window.requestAnimationFrame = w.fastFrames;
    });
  };
}
