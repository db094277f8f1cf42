// Which addresses in a message become links, and how they open. The Markdown renderer asks
// here for both its explicit links ([text](url), <url>) and its autolinks, so one rule
// decides everywhere: only web and mail addresses, nothing a browser would run or embed.
import type { LinkifyIt, Match } from 'linkify-it';

/** Schemes a link may have; anything else (javascript:, data:, vbscript:, file:…) stays text. */
const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/** What every link in a message carries: a new tab that cannot reach back into the app. */
export const LINK_TARGET = { target: '_blank', rel: 'noopener noreferrer nofollow' } as const;

/** Whether `url` (already normalised and percent-encoded by the parser) may be a link. */
export function isSafeUrl(url: string): boolean {
  // Browsers ignore tabs, newlines and leading spaces in a scheme; the parser has removed them,
  // but a scheme is only trusted after URL parsing has had the last word.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (!SAFE_SCHEMES.has(parsed.protocol)) return false;
  if (parsed.protocol === 'mailto:') return /^[^@\s]+@[^@\s]+$/.test(decodeURIComponent(parsed.pathname));
  return parsed.hostname.length > 0;
}

/**
 * Autolinks: addresses with a scheme (https://…, mailto:…), bare e-mail addresses, and hosts
 * written with `www.` (opened over https). Other bare names are left alone, so `README.md` or
 * `config.sh` in a sentence stay words. Parentheses balanced inside an address belong to it
 * (`https://en.wikipedia.org/wiki/Foo_(bar)`); one wrapped around it does not.
 */
export function configureAutolinks(linkify: LinkifyIt): void {
  linkify.set({ fuzzyLink: true, fuzzyEmail: true, fuzzyIP: false });
  const match = linkify.match.bind(linkify);
  const accepted = (m: Match) => m.schema !== '' || /^www\./i.test(m.raw);
  linkify.match = (text: string) => {
    const found = (match(text) ?? []).filter(accepted);
    return found.length > 0 ? found : null;
  };
  linkify.test = (text: string) => linkify.match(text) !== null;
  linkify.normalize = (m: Match) => {
    if (!m.schema) m.url = `https://${m.url}`;
    else if (m.schema === 'mailto:' && !/^mailto:/i.test(m.url)) m.url = `mailto:${m.url}`;
  };
}
