// Choosing an emoji: the quick palette of a message's "Add reaction" button, and the full
// picker (every emoji, searchable by name and keyword, recently used first) for reactions and
// the message box. Both are moved through with the arrow keys.
import type { TargetedKeyboardEvent } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { loadEmoji, searchEmoji, type EmojiData, type EmojiEntry } from '../emoji.js';
import { recentEmoji, rememberEmoji } from '../prefs.js';
import { Dialog, pointerIsFine } from './ui.js';

const bare = (emoji: string): string => emoji.replaceAll('\uFE0F', '');

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];

/**
 * Arrow keys, Home and End move focus among `selector` items inside `container`, laid out in
 * rows of `cols`, or, when `cols` is 0, as drawn: up and down go to the nearest item of the
 * line above or below (sections of the grid may hold lines of any length). True if it moved.
 */
export function moveInGrid(e: KeyboardEvent, container: HTMLElement, selector: string, cols = 0): boolean {
  const items = Array.from(container.querySelectorAll<HTMLElement>(selector));
  const at = items.indexOf(document.activeElement as HTMLElement);
  if (at < 0) return false;
  const vertical = e.key === 'ArrowUp' || e.key === 'ArrowDown';
  const next =
    vertical && !cols
      ? lineNeighbour(items, at, e.key === 'ArrowDown')
      : { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowUp: at - cols, ArrowDown: at + cols, Home: 0, End: items.length - 1 }[e.key];
  if (next === undefined) return false;
  e.preventDefault();
  const target = items[Math.max(0, Math.min(items.length - 1, next))];
  if (target) {
    for (const el of items) el.tabIndex = el === target ? 0 : -1;
    target.focus();
  }
  return true;
}

/** The item of the next line down (or up) nearest to `at` across; `at` itself on the last line. */
function lineNeighbour(items: HTMLElement[], at: number, down: boolean): number {
  const boxes = items.map((el) => el.getBoundingClientRect());
  const from = boxes[at]!;
  let line: number | undefined;
  for (const b of boxes) {
    if (down ? b.top > from.top + 1 && (line === undefined || b.top < line) : b.top < from.top - 1 && (line === undefined || b.top > line)) line = b.top;
  }
  if (line === undefined) return at;
  let best = at;
  let gap = Infinity;
  boxes.forEach((b, i) => {
    const d = Math.abs(b.left - from.left);
    if (Math.abs(b.top - line) <= 1 && d < gap) {
      best = i;
      gap = d;
    }
  });
  return best;
}

/** The palette under "Add reaction": a few common reactions and the way to all of them. */
export function QuickReactions({ onPick, onMore, up }: { onPick: (emoji: string) => void; onMore: () => void; up: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector<HTMLButtonElement>('button')?.focus();
  }, []);
  return (
    <div
      ref={ref}
      class={`picker${up ? ' up' : ''}`}
      role="group"
      aria-label="Reactions"
      onKeyDown={(e: TargetedKeyboardEvent<HTMLDivElement>) => moveInGrid(e, e.currentTarget, 'button', 3)}
    >
      {QUICK_REACTIONS.map((emoji, i) => (
        <button
          key={emoji}
          type="button"
          class="icon emoji"
          tabIndex={i === 0 ? 0 : -1}
          aria-label={`React with ${emoji}`}
          onClick={() => {
            rememberEmoji(emoji);
            onPick(emoji);
          }}
        >
          {emoji}
        </button>
      ))}
      <button type="button" class="icon more" tabIndex={-1} aria-label="More emoji…" title="More emoji" onClick={onMore}>
        …
      </button>
    </div>
  );
}

/** Every emoji, by group or by search; `onPick` gets the one chosen. */
export function EmojiPicker({ title = 'Choose an emoji', onPick, onClose }: { title?: string; onPick: (emoji: string) => void; onClose: () => void }) {
  const [data, setData] = useState<EmojiData | null>(null);
  const [failed, setFailed] = useState(false);
  const [query, setQuery] = useState('');
  const grid = useRef<HTMLDivElement>(null);
  useEffect(() => {
    loadEmoji().then(setData, () => setFailed(true));
  }, []);
  const recent = useMemo(() => recentEmoji(), []);
  const found = useMemo(() => (data && query.trim() ? searchEmoji(data, query) : null), [data, query]);
  const pick = (emoji: string) => {
    rememberEmoji(emoji);
    onPick(emoji);
  };
  // Keyed without FE0F: the list may keep an emoji with or without it (as the font draws it).
  const byEmoji = useMemo(() => new Map(data?.all.map((e) => [bare(e.emoji), e]) ?? []), [data]);
  // A recent emoji the list leaves out (the font cannot draw it) is not offered again.
  const recentEntries = recent.flatMap((e) => byEmoji.get(bare(e)) ?? []);
  const sections: Array<{ name: string; items: EmojiEntry[] }> = found
    ? found.length
      ? [{ name: `Results for “${query.trim()}”`, items: found }]
      : []
    : [...(recentEntries.length ? [{ name: 'Recently used', items: recentEntries }] : []), ...(data?.groups ?? [])];
  let first = true;
  return (
    <Dialog title={title} onClose={onClose} wide cls="emoji-dialog">
      <input
        type="search"
        class="emoji-search"
        aria-label="Search emoji"
        placeholder="Search emoji"
        value={query}
        data-autofocus={pointerIsFine() ? true : undefined}
        onInput={(e) => setQuery(e.currentTarget.value)}
        onKeyDown={(e) => {
          // Enter picks the best match (and never submits a form around the picker).
          if (e.key === 'Enter') {
            e.preventDefault();
            if (found?.[0]) pick(found[0].emoji);
          } else if (e.key === 'ArrowDown') {
            e.preventDefault();
            grid.current?.querySelector<HTMLButtonElement>('button')?.focus();
          }
        }}
      />
      {!data && !failed && <p class="muted">Loading emoji…</p>}
      {failed && (
        <p class="error" role="alert">
          The emoji list could not be loaded. Try again later.
        </p>
      )}
      {found && found.length === 0 && <p class="muted">No emoji matches “{query.trim()}”.</p>}
      <div class="emoji-grid" ref={grid} onKeyDown={(e: TargetedKeyboardEvent<HTMLDivElement>) => moveInGrid(e, e.currentTarget, 'button')}>
        {sections.map((s) => (
          <section key={s.name} aria-label={s.name}>
            <h3>{s.name}</h3>
            <div class="emoji-row">
              {s.items.map((e) => {
                const tab = first ? 0 : -1;
                first = false;
                return (
                  <button
                    key={`${s.name}-${e.emoji}`}
                    type="button"
                    class="emoji"
                    tabIndex={tab}
                    aria-label={e.label}
                    title={e.label}
                    onClick={() => pick(e.emoji)}
                  >
                    {e.emoji}
                  </button>
                );
              })}
            </div>
          </section>
        ))}
      </div>
    </Dialog>
  );
}
