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
  unicode: string;
  label: string;
  group?: number;
  order?: number;
  tags?: string[];
  shortcodes?: string[];
}

let data: Promise<EmojiData> | null = null;

export function loadEmoji(): Promise<EmojiData> {
  data ??= import('emojibase-data/en/compact.json').then((m) => {
    const raw = ((m as { default?: unknown }).default ?? m) as Compact[];
    const all = raw
      .filter((e) => typeof e.group === 'number' && e.group !== 2 && GROUPS[e.group])
      .sort((a, b) => (a.order ?? 0) - (b.order ?? 0))
      .map((e): EmojiEntry => ({
        emoji: e.unicode,
        label: e.label,
        group: e.group!,
        words: [...new Set([...e.label.toLowerCase().split(/[\s:,.'’()-]+/), ...(e.tags ?? []).map((t) => t.toLowerCase())].filter(Boolean))],
      }));
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
