// Message text as Markdown: the subset documented in docs/web.md (paragraphs and line breaks,
// emphasis, strong, strikethrough, code spans, fenced code, block quotes, lists, links and
// autolinks), parsed by markdown-it and turned into Preact elements token by token. Nothing is
// ever read as HTML: raw HTML is not part of the subset, so `<b>` stays the text "<b>", and
// only the elements listed here can come out. Links follow the rules of links.ts.
import MarkdownIt, { type Token } from 'markdown-it';
import { h, type ComponentChildren, type VNode } from 'preact';
import { configureAutolinks, isSafeUrl, LINK_TARGET } from './links.js';

const md = MarkdownIt('zero', { linkify: true, breaks: true });
md.enable([
  'paragraph',
  'blockquote',
  'list',
  'fence', // blocks; no headings (a line "# x" is text), no indented code, tables or rules
  'newline',
  'escape',
  'entity',
  'backticks',
  'emphasis',
  'strikethrough',
  'link',
  'autolink',
  'linkify', // inline; no images, no HTML
  'text_join',
]);
md.validateLink = isSafeUrl;
configureAutolinks(md.linkify);

/** Elements an opening token may become; any other token is shown as its text. */
const TAGS: Record<string, string> = {
  paragraph_open: 'p',
  blockquote_open: 'blockquote',
  bullet_list_open: 'ul',
  ordered_list_open: 'ol',
  list_item_open: 'li',
  strong_open: 'strong',
  em_open: 'em',
  s_open: 's',
  link_open: 'a',
};

interface Frame {
  token: Token | null;
  children: ComponentChildren[];
}

/** How a rendering is drawn: links are tab stops only where the message list allows (see conversation.tsx). */
interface Options {
  linkTabIndex?: number;
  /** "@" tokens the server counted as mentions, drawn as such; `me` is drawn apart. */
  mentions?: Set<string>;
  me?: string;
}

const MENTION = /(?<![A-Za-z0-9_.@|:+-])@([A-Za-z0-9_.@|:+-]{1,128})/g;
const TRAILING = /[.:|+-]+$/;

/** Plain text with its mention tokens wrapped in marked spans. */
function withMentions(text: string, o: Options): ComponentChildren {
  if (!o.mentions || o.mentions.size === 0 || !text.includes('@')) return text;
  const out: ComponentChildren[] = [];
  let at = 0;
  for (const m of text.matchAll(MENTION)) {
    let id = m[1]!;
    if (!o.mentions.has(id)) id = id.replace(TRAILING, '');
    if (!o.mentions.has(id)) continue;
    out.push(text.slice(at, m.index));
    const own = id === o.me || id === 'room' || id === 'here';
    out.push(h('span', { class: own ? 'mention mention-me' : 'mention' }, `@${id}`));
    at = m.index + 1 + id.length;
  }
  out.push(text.slice(at));
  return out;
}

function element(open: Token, children: ComponentChildren[], o: Options): ComponentChildren {
  const tag = TAGS[open.type];
  // A tight list's paragraphs are not drawn as paragraphs.
  if (!tag || (tag === 'p' && open.hidden)) return children;
  if (tag === 'a') {
    const href = String(open.attrGet('href') ?? '');
    return isSafeUrl(href) ? h('a', { href, tabIndex: o.linkTabIndex, ...LINK_TARGET }, children) : children;
  }
  if (tag === 'ol') {
    const start = Number(open.attrGet('start') ?? 1);
    return h('ol', Number.isSafeInteger(start) && start !== 1 ? { start } : null, children);
  }
  return h(tag, null, children);
}

function leaf(t: Token, o: Options): ComponentChildren {
  switch (t.type) {
    case 'text':
      return withMentions(t.content, o);
    case 'inline':
      return build(t.children ?? [], o);
    case 'code_inline':
      return h('code', null, t.content);
    case 'fence':
      return h('pre', null, h('code', null, t.content));
    case 'softbreak':
    case 'hardbreak':
      return h('br', null);
    default:
      return t.content;
  }
}

function build(tokens: Token[], o: Options): ComponentChildren[] {
  const stack: Frame[] = [{ token: null, children: [] }];
  for (const t of tokens) {
    if (t.nesting === 1) stack.push({ token: t, children: [] });
    else if (t.nesting === -1 && stack.length > 1) {
      const f = stack.pop()!;
      stack[stack.length - 1]!.children.push(element(f.token!, f.children, o));
    } else stack[stack.length - 1]!.children.push(leaf(t, o));
  }
  // Unbalanced tokens never come from markdown-it; were they to, their content still shows.
  while (stack.length > 1) {
    const f = stack.pop()!;
    stack[stack.length - 1]!.children.push(f.children);
  }
  return stack[0]!.children;
}

/** Parsed messages by text: a conversation re-renders often, its texts rarely change. */
const parsed = new Map<string, Token[]>();

function tokensOf(text: string): Token[] {
  let tokens = parsed.get(text);
  if (!tokens) {
    tokens = md.parse(text, {});
    if (parsed.size >= 2000) parsed.delete(parsed.keys().next().value!);
    parsed.set(text, tokens);
  }
  return tokens;
}

/** `text` as elements; `after` (the "edited" mark) goes at the end of its last paragraph. */
export function renderMarkdown(text: string, after?: VNode, o: Options = {}): ComponentChildren {
  const out = build(tokensOf(text), o);
  if (after) {
    const last = out[out.length - 1] as VNode<{ children?: ComponentChildren }> | undefined;
    if (last && typeof last === 'object' && 'type' in last && last.type === 'p') {
      out[out.length - 1] = h('p', null, last.props.children, after);
    } else out.push(after);
  }
  return out;
}

/**
 * `text` as it reads once drawn, on one line: the words of its emphasis, code and links
 * without their marks, blocks and line breaks as spaces (for previews and notifications).
 */
export function markdownToPlain(text: string): string {
  const parts: string[] = [];
  const walk = (tokens: Token[]) => {
    for (const t of tokens) {
      if (t.type === 'inline') walk(t.children ?? []);
      else if (t.type === 'text' || t.type === 'code_inline' || t.type === 'fence') parts.push(t.content);
      // Breaks, and blocks' edges (inline marks such as strong or a link are not blocks).
      else if (t.type === 'softbreak' || t.type === 'hardbreak' || (t.block && t.nesting !== 0)) parts.push(' ');
    }
  };
  walk(tokensOf(text));
  return parts.join('').replace(/\s+/g, ' ').trim();
}
