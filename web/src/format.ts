// How users, times and rooms are shown: initials and colours for avatars, times in the
// reader's locale, room titles (a direct room is named after the other member).
import type { RoomEntry } from './chat.js';

/**
 * A name as shown inside a sentence the app writes: without bidirectional controls, so a name
 * stored with an override cannot turn the words after it around (the server removes them from
 * names it is given; older names may hold them).
 */
export function shownName(name: string): string {
  return name.replace(/[\u202A-\u202E\u2066-\u2069]/g, '');
}

export function initials(name: string): string {
  const words = name
    .trim()
    .split(/[\s._-]+/)
    .filter(Boolean);
  const letters = words.length >= 2 ? [words[0]!, words[1]!] : [words[0] ?? '?'];
  return (
    letters
      .map((w) => [...w][0]!.toUpperCase())
      .join('')
      .slice(0, 2) || '?'
  );
}

/** A stable hue per user id, so a person keeps one colour everywhere. */
export function hue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 360;
}

/**
 * The reader's languages in order of preference (the browser's setting, not only its UI
 * language), so times read as the reader writes them: "3:04 PM", "15:04", "15 h 04".
 */
const LOCALES = typeof navigator === 'undefined' ? undefined : [...navigator.languages];
const timeFmt = new Intl.DateTimeFormat(LOCALES, { timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(LOCALES, { month: 'short', day: 'numeric' });
const yearFmt = new Intl.DateTimeFormat(LOCALES, { dateStyle: 'medium' });
const fullFmt = new Intl.DateTimeFormat(LOCALES, { dateStyle: 'full', timeStyle: 'short' });
const longDayFmt = new Intl.DateTimeFormat(LOCALES, { dateStyle: 'full' });
const numberFmt = new Intl.NumberFormat(LOCALES);

export function formatNumber(n: number): string {
  return numberFmt.format(n);
}

/** A file size for people: 812 B, 4.2 KB, 1.3 MB (powers of 1024, as file managers show). */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : new Intl.NumberFormat(LOCALES, { maximumFractionDigits: v < 10 ? 1 : 0 }).format(v)} ${units[i]}`;
}

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

export function formatTime(ts: number): string {
  return timeFmt.format(ts);
}

/** Short time for lists: the time today, the day otherwise. */
export function formatShort(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const n = new Date(now);
  if (sameDay(d, n)) return timeFmt.format(d);
  return d.getFullYear() === n.getFullYear() ? dayFmt.format(d) : yearFmt.format(d);
}

export function formatFull(ts: number): string {
  return fullFmt.format(ts);
}

/** Names in the order a reader looks for one: case and accents aside, "Room 9" before "Room 10". */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, LOCALES, { sensitivity: 'base', numeric: true });
}

/** A date for rows of a list: "Dec 6, 2026" (the full date and time is the element's title). */
export function formatDate(ts: number): string {
  return yearFmt.format(ts);
}

export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function formatDay(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const n = new Date(now);
  if (sameDay(d, n)) return 'Today';
  const y = new Date(now - 86_400_000);
  if (sameDay(d, y)) return 'Yesterday';
  return longDayFmt.format(d);
}

export function roomTitle(e: RoomEntry, nameOf: (user: string) => string): string {
  if (e.room.kind === 'direct') return e.peer ? nameOf(e.peer) : 'Direct conversation';
  return e.room.name || e.room.id;
}

/** How a room is named in running text: "#general", "Project X", "Alice". */
export function roomMention(e: RoomEntry, nameOf: (user: string) => string): string {
  return e.room.kind === 'channel' ? `#${roomTitle(e, nameOf)}` : roomTitle(e, nameOf);
}

/** A long name cut to `max` characters (whole characters, an ellipsis at the end). */
export function shorten(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max
    ? s
    : `${chars
        .slice(0, max - 1)
        .join('')
        .trimEnd()}…`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * A signed-in device in words, from the User-Agent that signed in: "Chrome on Android",
 * "Firefox on Windows". Programs that are not browsers show their own name.
 */
export function deviceName(ua: string): string {
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /OPR\//.test(ua)
      ? 'Opera'
      : /Firefox\//.test(ua)
        ? 'Firefox'
        : /(Chrome|Chromium|CriOS)\//.test(ua)
          ? 'Chrome'
          : /Version\/[\d.]+.*Safari\//.test(ua)
            ? 'Safari'
            : null;
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad|iPod/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : null;
  if (browser) return os ? `${browser} on ${os}` : browser;
  const program = ua.trim().split(/\s+/)[0] ?? '';
  return program ? shorten(program, 40) : 'Unknown device';
}
