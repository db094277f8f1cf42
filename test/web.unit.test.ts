// The web app's own logic, without a browser: its form rules agree with the server's schemas,
// history folds edits, deletes and reactions into the messages they target, and Markdown
// follows its documented subset and link rules.
import { describe, expect, it } from 'vitest';
import { USER_ID_PATTERN } from '../src/protocol/schema.js';
import { USERNAME_PATTERN, RegisterBody } from '../src/accounts/schema.js';
import { Commands } from '../src/protocol/schema.js';
import type { Message } from '../src/protocol/schema.js';
import { fold } from '../web/src/fold.js';
import { checkUserId, checkUsername, LIMITS, USER_ID_RE, USERNAME_RE } from '../web/src/validate.js';
import { initials } from '../web/src/format.js';
import { isSafeUrl } from '../web/src/links.js';
import { markdownToPlain, renderMarkdown } from '../web/src/markdown.js';

describe("the web app's input rules", () => {
  it("are the server's", () => {
    expect(USER_ID_RE.source).toBe(USER_ID_PATTERN);
    expect(USERNAME_RE.source).toBe(USERNAME_PATTERN);
    expect(LIMITS.roomName).toBe(Commands.create.properties.name.maxLength);
    expect(LIMITS.topic).toBe(Commands.create.properties.topic.maxLength);
    expect(LIMITS.passwordMin).toBe(RegisterBody.properties.password.minLength);
    expect(LIMITS.passwordMax).toBe(RegisterBody.properties.password.maxLength);
    expect(LIMITS.displayName).toBe(RegisterBody.properties.name.maxLength);
    expect(LIMITS.reason).toBe(Commands.kick.properties.reason.maxLength);
  });

  it('name what is wrong', () => {
    expect(checkUsername('Al')).toMatch(/3/);
    expect(checkUsername('Alice')).toMatch(/lowercase/);
    expect(checkUsername('alice')).toBeNull();
    expect(checkUserId('bob smith')).toMatch(/user id/);
    expect(checkUserId('bob@example.com')).toBeNull();
  });

  it('make avatar initials from names', () => {
    expect(initials('Alice Liddell')).toBe('AL');
    expect(initials('bob')).toBe('B');
    expect(initials('  ')).toBe('?');
    expect(initials('élodie_martin')).toBe('ÉM');
  });
});

const base = { room: 'r', name: 'N', ts: 1 } as const;
const msg = (m: Partial<Message> & Pick<Message, 'seq' | 'kind' | 'user'>): Message => ({ ...base, ...m });

describe('folding history', () => {
  it('applies edits, deletes and reactions to their target, in seq order whatever the arrival order', () => {
    const history = [
      msg({ seq: 5, kind: 'reaction', user: 'b', target: 1, data: { emoji: '👍' } }),
      msg({ seq: 1, kind: 'text', user: 'a', text: 'helo' }),
      msg({ seq: 2, kind: 'text', user: 'b', text: 'bye' }),
      msg({ seq: 3, kind: 'edit', user: 'a', target: 1, text: 'hello' }),
      msg({ seq: 4, kind: 'delete', user: 'b', target: 2 }),
      msg({ seq: 6, kind: 'reaction', user: 'a', target: 1, data: { emoji: '👍' } }),
      msg({ seq: 7, kind: 'reaction', user: 'b', target: 1, data: { emoji: '👍', remove: true } }),
      msg({ seq: 8, kind: 'reaction', user: 'b', target: 1, data: { emoji: '🎉' } }),
      msg({ seq: 9, kind: 'edit', user: 'b', target: 2, text: 'too late' }),
    ];
    const shown = fold(history);
    expect(shown.map((s) => s.seq)).toEqual([1, 2]);
    expect(shown[0]).toMatchObject({ text: 'hello', edited: true, deleted: false });
    expect(shown[0]!.reactions).toEqual([
      { emoji: '👍', users: ['a'] },
      { emoji: '🎉', users: ['b'] },
    ]);
    expect(shown[1]).toMatchObject({ text: '', deleted: true });
  });

  it("tells server posts apart by their mark only, not by their author's id or name", () => {
    const shown = fold([
      msg({ seq: 1, kind: 'text', user: 'system', name: 'System', text: 'real', system: true }),
      msg({ seq: 2, kind: 'text', user: 'system', name: 'System', text: 'forged', data: { system: true } }),
    ]);
    expect(shown.map((s) => [s.text, s.server])).toEqual([
      ['real', true],
      ['forged', false],
    ]);
  });

  it('leaves out changes whose target is not loaded yet', () => {
    const shown = fold([msg({ seq: 10, kind: 'edit', user: 'a', target: 3, text: 'x' }), msg({ seq: 11, kind: 'text', user: 'a', text: 'y' })]);
    expect(shown.map((s) => [s.seq, s.text])).toEqual([[11, 'y']]);
  });
});

/** A rendering as a compact string: elements as tag(attrs){children}, text as itself. */
function flat(node: unknown): string {
  if (node === null || node === undefined || typeof node === 'boolean') return '';
  if (typeof node === 'string' || typeof node === 'number') return String(node);
  if (Array.isArray(node)) return node.map(flat).join('');
  const v = node as { type: string; props: Record<string, unknown> & { children?: unknown } };
  const attrs = ['href', 'start']
    .filter((k) => v.props[k] !== undefined)
    .map((k) => `${k}=${String(v.props[k])}`)
    .join(' ');
  return `${v.type}${attrs ? `(${attrs})` : ''}{${flat(v.props.children)}}`;
}

describe('the link rules', () => {
  it('let only web and mail addresses be links', () => {
    for (const ok of ['https://example.com/a?b=c', 'http://example.com', 'mailto:someone@example.com']) expect(isSafeUrl(ok), ok).toBe(true);
    for (const bad of [
      'javascript:alert(1)',
      'JAVASCRIPT:alert(1)',
      'data:text/html,x',
      'vbscript:x',
      'file:///etc/passwd',
      '/relative',
      '#frag',
      'mailto:',
      'https://',
      'java\tscript:x',
    ]) {
      expect(isSafeUrl(bad), bad).toBe(false);
    }
  });

  it('autolink addresses with a scheme, www. hosts and e-mail addresses, and keep parentheses right', () => {
    expect(flat(renderMarkdown('see www.example.org/path, README.md and a@b.co'))).toBe(
      'p{see a(href=https://www.example.org/path){www.example.org/path}, README.md and a(href=mailto:a@b.co){a@b.co}}',
    );
    expect(flat(renderMarkdown('(https://en.wikipedia.org/wiki/Foo_(bar)) https://x.org/a.'))).toBe(
      'p{(a(href=https://en.wikipedia.org/wiki/Foo_(bar)){https://en.wikipedia.org/wiki/Foo_(bar)}) a(href=https://x.org/a){https://x.org/a}.}',
    );
  });

  it('read as plain text for previews: marks dropped, blocks and breaks as spaces', () => {
    expect(markdownToPlain('**a**\n\n`b` [c](https://x.y) ~~d~~ _e_ 👀 @bob')).toBe('a b c d e 👀 @bob');
    expect(markdownToPlain('> q\n\n- one\n- two\n\n```\nx < 1\n```')).toBe('q one two x < 1');
    expect(markdownToPlain('(https://e.org/a_(b)) <b>x</b> # h')).toBe('(https://e.org/a_(b)) <b>x</b> # h');
    expect(markdownToPlain('```\n```')).toBe('');
  });

  it('render the Markdown subset and leave the rest as text', () => {
    expect(flat(renderMarkdown('**b** _i_ ~~s~~ `<c>`'))).toBe('p{strong{b} em{i} s{s} code{<c>}}');
    // No headings, no HTML, no images (an image's address is a plain link: nothing is fetched).
    expect(flat(renderMarkdown('# title\n<b>x</b> ![i](https://e.org/i.png)'))).toBe('p{# titlebr{}<b>x</b> !a(href=https://e.org/i.png){i}}');
    expect(flat(renderMarkdown('3. three\n4. four'))).toBe('ol(start=3){li{three}li{four}}');
    expect(flat(renderMarkdown('[x](javascript:alert(1)) [y](java&#115;cript:alert(2))'))).toBe('p{[x](javascript:alert(1)) [y](javascript:alert(2))}');
  });
});
