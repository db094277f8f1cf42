// The user's preferences in this browser: light, dark or the system's theme, and browser
// notifications of direct messages (the permission is asked here, when the user wants them,
// never on load).
import { useState } from 'preact/hooks';
import { notifyChoice, setNotifyChoice, setTheme, theme, type Theme } from '../prefs.js';
import { Dialog } from './ui.js';

const THEMES: Array<[Theme, string]> = [['system', 'Same as the system'], ['light', 'Light'], ['dark', 'Dark']];

/** Turns direct-message notifications on, asking the browser's permission if need be; the outcome in words. */
export async function turnOnNotifications(): Promise<string | null> {
  if (typeof Notification === 'undefined') return 'This browser cannot show notifications.';
  const permission = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission;
  if (permission !== 'granted') {
    setNotifyChoice('off');
    return 'Your browser blocks notifications from this site; allow them in its site settings, then turn them on here.';
  }
  setNotifyChoice('on');
  return null;
}

export function Preferences({ onClose }: { onClose: () => void }) {
  const [current, setCurrent] = useState(theme());
  const supported = typeof Notification !== 'undefined';
  const [notify, setNotify] = useState(notifyChoice() === 'on' && supported && Notification.permission === 'granted');
  const [problem, setProblem] = useState<string | null>(null);
  function choose(t: Theme) {
    setCurrent(t);
    setTheme(t);
  }
  async function toggle(on: boolean) {
    setProblem(null);
    if (!on) {
      setNotifyChoice('off');
      setNotify(false);
      return;
    }
    const failure = await turnOnNotifications();
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
          <input type="checkbox" checked={notify} disabled={!supported} aria-describedby={problem ? 'notify-problem' : undefined}
            onChange={(e) => void toggle(e.currentTarget.checked)} />
          <span>Notify me of direct messages while Parley is in the background</span>
        </label>
        {problem && <small id="notify-problem" class="error" role="alert">{problem}</small>}
      </fieldset>
    </Dialog>
  );
}
