// What the app remembers in this browser beyond the session: the theme, whether to notify of
// direct messages, the emoji used last, and each room's unsent draft (per user). Storage may
// be full or blocked; then the app works the same and forgets on reload.

export type Theme = 'system' | 'light' | 'dark';

const THEME = 'parley.theme';
const NOTIFY = 'parley.notify';
const RECENT = 'parley.emoji.recent';

function get(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function set(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Not kept: see above.
  }
}

export function theme(): Theme {
  const t = get(THEME);
  return t === 'light' || t === 'dark' ? t : 'system';
}

/** Applies a theme to the page (the stylesheet reads `data-theme`; absent follows the system). */
export function applyTheme(t: Theme = theme()): void {
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

export function setTheme(t: Theme): void {
  set(THEME, t === 'system' ? null : t);
  applyTheme(t);
}

/** 'on' and 'off' are the user's answer; null: never asked. */
export function notifyChoice(): 'on' | 'off' | null {
  const v = get(NOTIFY);
  return v === 'on' || v === 'off' ? v : null;
}

export function setNotifyChoice(v: 'on' | 'off'): void {
  set(NOTIFY, v);
}

export function recentEmoji(): string[] {
  try {
    const v = JSON.parse(get(RECENT) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((e): e is string => typeof e === 'string').slice(0, 16) : [];
  } catch {
    return [];
  }
}

export function rememberEmoji(emoji: string): void {
  set(RECENT, JSON.stringify([emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, 16)));
}

/** Unsent text per room, kept across reloads; one key per user, so another account sees none. */
export class Drafts {
  private readonly key: string;
  private readonly all: Record<string, string>;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(user: string) {
    this.key = `parley.drafts.${user}`;
    let v: unknown;
    try {
      v = JSON.parse(get(this.key) ?? '{}');
    } catch {
      v = null;
    }
    this.all =
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'))
        : {};
  }

  get(room: string): string {
    return this.all[room] ?? '';
  }

  set(room: string, text: string): void {
    if (text.trim()) this.all[room] = text;
    else delete this.all[room];
    // Written after a pause in typing, and at once when the page is left (flush).
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), 400);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    set(this.key, Object.keys(this.all).length ? JSON.stringify(this.all) : null);
  }
}
