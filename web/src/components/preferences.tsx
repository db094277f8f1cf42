// The user's preferences in this browser: light, dark or the system's theme, and notifications
// of direct messages and mentions: in the page while it is in the background, and by Web Push
// while Parley is closed (the permission is asked here, when the user wants them, never on load).
import { useState } from 'preact/hooks';
import { notifyChoice, setNotifyChoice, setTheme, theme, type Theme } from '../prefs.js';
import { subscribePush, unsubscribePush } from '../push.js';
import { Dialog } from './ui.js';

const THEMES: Array<[Theme, string]> = [
  ['system', 'Same as the system'],
  ['light', 'Light'],
  ['dark', 'Dark'],
];

/**
 * Turns notifications on, asking the browser's permission if need be; the outcome in words
 * (null: on). Web Push is then set up in the background; `onPush` hears how that went.
 */
export async function turnOnNotifications(token: () => Promise<string>, onPush?: (problem: string | null) => void): Promise<string | null> {
  if (typeof Notification === 'undefined') return 'This browser cannot show notifications.';
  const permission = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission;
  if (permission !== 'granted') {
    setNotifyChoice('off');
    return 'Your browser blocks notifications from this site; allow them in its site settings, then turn them on here.';
  }
  setNotifyChoice('on');
  void subscribePush(token).then((p) => onPush?.(p));
  return null;
}

export function Preferences({ token, onClose }: { token: () => Promise<string>; onClose: () => void }) {
  const [current, setCurrent] = useState(theme());
  const supported = typeof Notification !== 'undefined';
  const [notify, setNotify] = useState(notifyChoice() === 'on' && supported && Notification.permission === 'granted');
  const [problem, setProblem] = useState<string | null>(null);
  const [pushNote, setPushNote] = useState<string | null>(null);
  function choose(t: Theme) {
    setCurrent(t);
    setTheme(t);
  }
  async function toggle(on: boolean) {
    setProblem(null);
    setPushNote(null);
    if (!on) {
      setNotifyChoice('off');
      setNotify(false);
      await unsubscribePush(token);
      return;
    }
    const failure = await turnOnNotifications(token, (p) => setPushNote(p ?? 'You are also notified while Parley is closed.'));
    setNotify(failure === null);
    setProblem(failure);
  }
  return (
    <Dialog title="Preferences" onClose={onClose}>
      <fieldset class="kinds">
        <legend>Theme</legend>
        {THEMES.map(([t, label]) => (
          <label key={t} class="radio">
            <input type="radio" name="theme" value={t} checked={current === t} onChange={() => choose(t)} />
            <span>{label}</span>
          </label>
        ))}
      </fieldset>
      <fieldset class="kinds">
        <legend>Notifications</legend>
        <label class="radio">
          <input
            type="checkbox"
            checked={notify}
            disabled={!supported}
            aria-describedby={problem ? 'notify-problem' : pushNote ? 'push-note' : undefined}
            onChange={(e) => void toggle(e.currentTarget.checked)}
          />
          <span>Notify me of direct messages and mentions while Parley is in the background or closed</span>
        </label>
        {problem && (
          <small id="notify-problem" class="error" role="alert">
            {problem}
          </small>
        )}
        {pushNote && (
          <small id="push-note" class="muted" role="status">
            {pushNote}
          </small>
        )}
      </fieldset>
    </Dialog>
  );
}
