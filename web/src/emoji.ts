// Every emoji with its name and keywords (emojibase's English data), for the emoji picker's
// groups and search. The data is a chunk of its own, loaded the first time a picker opens.

export interface EmojiEntry {
  emoji: string;
  /** Its name ("party popper"), also its accessible name in the picker. */
  label: string;
  group: number;
  /** Lower-case words searched: the name's words and emojibase's tags. */
  words: string[];
}

export interface EmojiGroup {
  name: string;
  items: EmojiEntry[];
}

export interface EmojiData {
  groups: EmojiGroup[];
  all: EmojiEntry[];
}

/** emojibase's groups in order; 2 (skin tones and hair components) is not offered on its own. */
const GROUPS = ['Smileys & emotion', 'People & body', '', 'Animals & nature', 'Food & drink', 'Travel & places', 'Activities', 'Objects', 'Symbols', 'Flags'];

interface Compact {
  hexcode: string;
  unicode: string;
  label: string;
  group?: number;
  order?: number;
  tags?: string[];
  shortcodes?: string[];
}

/**
 * The newest Unicode Emoji version the bundled font draws (twemoji-colr-font 15.0.3: Emoji
 * 15.0). Newer emoji would show as an empty box, or a combined one as its parts side by side,
 * so the picker leaves them out; they still show as text where the reader's fonts have them.
 */
export const FONT_EMOJI_VERSION = 15.0;

/** Hexcodes of the emoji newer than `FONT_EMOJI_VERSION`, without variation selectors. */
export function newerThanFont(versions: Record<string, string[]>): Set<string> {
  const newer = new Set<string>();
  for (const [v, codes] of Object.entries(versions)) if (Number(v) > FONT_EMOJI_VERSION) for (const c of codes) newer.add(bare(c));
  return newer;
}

const bare = (hexcode: string) => hexcode.replace(/-FE0F/g, '');

/**
 * The emoji of several code points (joined by U+200D, keycaps) that the bundled font draws as
 * one picture: as written, or else without their variation selectors (U+FE0F), which some of
 * the font's own sequences leave out. Those it would draw as parts side by side, or not at all
 * (a keycap's digit alone is blank in it), are left out. Measured in the page once the font is
 * loaded; outside a page (tests in Node) the list is kept as it is.
 */
async function drawnWhole(all: EmojiEntry[]): Promise<EmojiEntry[]> {
  if (typeof document === 'undefined' || !document.body) return all;
  await document.fonts.load('20px "Parley Emoji"', '😀').catch(() => []);
  const probe = document.createElement('span');
  probe.setAttribute('aria-hidden', 'true');
  probe.style.cssText = 'position:absolute;left:-9999px;top:0;visibility:hidden;white-space:nowrap;font:20px "Parley Emoji"';
  document.body.append(probe);
  const ctx = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  const inked = (text: string) => {
    if (!ctx) return true;
    ctx.canvas.width = ctx.canvas.height = 32;
    ctx.font = '24px "Parley Emoji"';
    ctx.textBaseline = 'top';
    ctx.fillText(text, 2, 2);
    const px = ctx.getImageData(0, 0, 32, 32).data;
    for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) return true;
    return false;
  };
  const width = (text: string) => {
    probe.textContent = text;
    return probe.getBoundingClientRect().width;
  };
  const one = width('😀') * 1.5;
  const whole = (text: string) => width(text) < one && inked(text);
  const kept: EmojiEntry[] = [];
  for (const e of all) {
    const points = [...e.emoji.replace(/\uFE0F$/, '')].length;
    if (points === 1 || whole(e.emoji)) kept.push(e);
    else {
      const plain = e.emoji.replace(/\uFE0F/g, '');
      if (plain !== e.emoji && whole(plain)) kept.push({ ...e, emoji: plain });
    }
  }
  probe.remove();
  return kept;
}

let data: Promise<EmojiData> | null = null;

export function loadEmoji(): Promise<EmojiData> {
  data ??= Promise.all([import('emojibase-data/en/compact.json'), import('emojibase-data/versions/emoji.json')])
    .then(([m, v]) => {
      const raw = ((m as { default?: unknown }).default ?? m) as Compact[];
      const newer = newerThanFont(((v as { default?: unknown }).default ?? v) as Record<string, string[]>);
      const all = raw
        .filter((e) => typeof e.group === 'number' && e.group !== 2 && GROUPS[e.group] && !newer.has(bare(e.hexcode)))
        .sort((a, b) => (a.order ?? 0) - (b.order ?? 0))
        .map((e): EmojiEntry => ({
          emoji: e.unicode,
          label: e.label,
          group: e.group!,
          words: [...new Set([...e.label.toLowerCase().split(/[\s:,.'’()-]+/), ...(e.tags ?? []).map((t) => t.toLowerCase())].filter(Boolean))],
        }));
      return drawnWhole(all);
    })
    .then((all) => {
      const groups = GROUPS.map((name, i) => ({ name, items: all.filter((e) => e.group === i) })).filter((g) => g.name && g.items.length);
      return { groups, all };
    });
  data.catch(() => {
    data = null;
  });
  return data;
}

/** Emoji whose name or keywords start with every word of the query, names first. */
export function searchEmoji(d: EmojiData, query: string, limit = 120): EmojiEntry[] {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return [];
  const phrase = terms.join(' ');
  const hits = d.all.filter((e) => terms.every((t) => e.words.some((w) => w.startsWith(t))));
  // An exact name first, then names that start with the query, then the rest in emoji order.
  const rank = (e: EmojiEntry) => (e.label === phrase ? 0 : e.label.startsWith(phrase) ? 1 : 2);
  return hits.sort((a, b) => rank(a) - rank(b)).slice(0, limit);
}
