// Finds blocked words in a message: whole words, case-insensitive, in any script. Text is cut
// into runs of letters, marks, digits and `_`; runs in scripts written without spaces (Han,
// kana, Thai, Lao, Khmer, Myanmar) are further cut with Intl.Segmenter's dictionary. A run or
// segment is blocked when its lower-cased NFC form is in the list.

const WORD_RUN = /[\p{L}\p{M}\p{N}_]+/gu;
const WORD_ONLY = /^[\p{L}\p{M}\p{N}_]+$/u;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
const MAX_WORD = 64;

let segmenter: Intl.Segmenter | undefined;

/** The form words are stored and compared in, or why `raw` cannot be a blocked word. */
export function normalizeWord(raw: string): { word: string; error?: undefined } | { word?: undefined; error: string } {
  const word = raw.trim().normalize('NFC').toLowerCase();
  if (word.length === 0) return { error: 'a word cannot be empty' };
  if (word.length > MAX_WORD) return { error: `a word has at most ${MAX_WORD} characters` };
  if (!WORD_ONLY.test(word)) return { error: `"${word.slice(0, 64)}" is not one word: use letters, digits, marks or _ only` };
  return { word };
}

interface Hit {
  start: number;
  end: number;
}

export class WordMatcher {
  constructor(private readonly words: ReadonlySet<string>) {}

  get size(): number {
    return this.words.size;
  }

  /** Where blocked words occur in `text` (already NFC), in order. */
  private hits(text: string, firstOnly: boolean): Hit[] {
    const out: Hit[] = [];
    for (const m of text.matchAll(WORD_RUN)) {
      const run = m[0];
      const at = m.index;
      if (this.words.has(run.toLowerCase())) {
        out.push({ start: at, end: at + run.length });
      } else if (UNSPACED.test(run)) {
        segmenter ??= new Intl.Segmenter(undefined, { granularity: 'word' });
        for (const s of segmenter.segment(run)) {
          if (s.isWordLike && this.words.has(s.segment.toLowerCase())) out.push({ start: at + s.index, end: at + s.index + s.segment.length });
        }
      }
      if (firstOnly && out.length > 0) break;
    }
    return out;
  }

  /** The first blocked word in `text`, lower-cased, or null. */
  find(text: string): string | null {
    if (this.words.size === 0) return null;
    const nfc = text.normalize('NFC');
    const [hit] = this.hits(nfc, true);
    return hit ? nfc.slice(hit.start, hit.end).toLowerCase() : null;
  }

  /** `text` with every blocked word replaced by `mask`, or null when there is none. */
  mask(text: string, mask: string): string | null {
    if (this.words.size === 0) return null;
    const nfc = text.normalize('NFC');
    const hits = this.hits(nfc, false);
    if (hits.length === 0) return null;
    let out = '';
    let from = 0;
    for (const h of hits) {
      out += nfc.slice(from, h.start) + mask;
      from = h.end;
    }
    return out + nfc.slice(from);
  }
}
