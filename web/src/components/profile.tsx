// Your profile: the display name others see, your password, and the devices signed in to your
// account, each of which can be signed out from here (its open connections close at once).
import { useEffect, useRef, useState } from 'preact/hooks';
import { passwordStrength, type PasswordStrength } from '../../../src/accounts/strength.js';
import { describeError } from '../api.js';
import { notifyChoice } from '../prefs.js';
import { subscribePush } from '../push.js';
import { checkNewPassword, checkPassword } from '../validate.js';
import { StrengthMeter, weakPassword } from './auth.js';
import type { Chat } from '../chat.js';
import { deviceName, formatFull, formatShort } from '../format.js';
import type { Session, SessionInfo } from '../session.js';
import { Avatar, confirmAction, Dialog, Field } from './ui.js';
import { forgetAvatar, useAvatar } from '../avatars.js';

const NAME_MAX = 100;

export function Profile({ chat, session, onClose }: { chat: Chat; session: Session; onClose: () => void }) {
  const [devicesVersion, setDevicesVersion] = useState(0);
  return (
    <Dialog title="Your profile" onClose={onClose} wide>
      <PictureForm chat={chat} session={session} />
      <NameForm chat={chat} />
      <PasswordForm chat={chat} session={session} onChanged={() => setDevicesVersion((n) => n + 1)} />
      <Devices key={devicesVersion} session={session} />
    </Dialog>
  );
}

/** Largest picture the server takes (src/service/avatars.ts). */
const PICTURE_MAX = 5 * 1024 * 1024;

/** Your picture: chosen from a file (made a small square by the server), or removed for your initials. */
function PictureForm({ chat, session }: { chat: Chat; session: Session }) {
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const has = useAvatar(chat.me.id) !== null;
  async function run(what: () => Promise<unknown>, done: string) {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      await what();
      forgetAvatar(chat.me.id);
      setStatus(done);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }
  function pick(e: Event) {
    const input = e.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    if (file.size > PICTURE_MAX) return setError(`That picture is too large: at most ${Math.round(PICTURE_MAX / 1024 / 1024)} MB.`);
    if (!file.type.startsWith('image/')) return setError('Choose an image (PNG, JPEG, GIF, WebP or AVIF).');
    void run(async () => session.setAvatar(file), 'Picture saved.');
  }
  return (
    <section class="profile-picture" aria-labelledby="picture-title">
      <h3 id="picture-title">Picture</h3>
      <div class="row">
        <Avatar id={chat.me.id} name={chat.me.name} size="md" />
        <button type="button" disabled={busy} onClick={() => input.current?.click()}>
          {has ? 'Change picture' : 'Choose a picture'}
        </button>
        <input
          ref={input}
          type="file"
          accept="image/png,image/jpeg,image/gif,image/webp,image/avif"
          hidden
          aria-hidden="true"
          tabIndex={-1}
          data-testid="avatar-input"
          onChange={pick}
        />
        {has && (
          <button type="button" class="ghost" disabled={busy} onClick={() => void run(() => session.removeAvatar(), 'Picture removed.')}>
            Remove picture
          </button>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {status && (
        <p class="saved" role="status">
          {status}
        </p>
      )}
    </section>
  );
}

function NameForm({ chat }: { chat: Chat }) {
  const [name, setName] = useState(chat.me.name);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const clean = name.trim();
    setSaved(false);
    if (!clean) return setError('Enter a name.');
    if ([...clean].length > NAME_MAX) return setError(`At most ${NAME_MAX} characters.`);
    setError(null);
    setBusy(true);
    try {
      await chat.rename(clean);
      setName(clean);
      setSaved(true);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="profile-name" onSubmit={(e) => void submit(e)} noValidate aria-label="Your name">
      <Field
        label="Display name"
        value={name}
        onInput={(v) => {
          setName(v);
          setSaved(false);
        }}
        error={error}
        hint={`Shown with your messages from now on (@${chat.me.id}). Messages already sent keep the name they were sent with.`}
        maxLength={NAME_MAX}
        autoComplete="name"
      />
      <div class="row end">
        {saved && (
          <span class="saved" role="status">
            Saved.
          </span>
        )}
        <button type="submit" class="primary" disabled={busy || name.trim() === chat.me.name}>
          Save name
        </button>
      </div>
    </form>
  );
}

/**
 * The password: the current one, then a new one estimated as it is typed by the rule the
 * server applies (src/accounts/strength.ts); other devices signed out if the user says so.
 */
function PasswordForm({ chat, session, onChanged }: { chat: Chat; session: Session; onChanged: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [others, setOthers] = useState(true);
  const [errors, setErrors] = useState<{ current?: string | null; next?: string | null }>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [strength, setStrength] = useState<PasswordStrength | null>(null);
  const inputs = [chat.me.id, chat.me.name];
  useEffect(() => {
    if (!next) return setStrength(null);
    let live = true;
    const t = setTimeout(() => {
      passwordStrength(next, inputs).then(
        (s) => {
          if (live) setStrength(s);
        },
        () => {},
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [next]);
  async function submit(e: Event) {
    e.preventDefault();
    setSaved(null);
    setFailure(null);
    const found = { current: checkPassword(current), next: checkNewPassword(next) };
    if (!found.next) {
      const s = await passwordStrength(next, inputs).catch(() => null);
      if (s && !s.ok) found.next = weakPassword(s);
    }
    setErrors(found);
    if (found.current || found.next) return;
    setBusy(true);
    try {
      await session.changePassword(current, next, others);
      setCurrent('');
      setNext('');
      setSaved(others ? 'Password changed. Your other devices were signed out.' : 'Password changed.');
      onChanged();
      // The server dropped this browser's push subscription with the old session.
      if (others && notifyChoice() === 'on') void subscribePush(() => session.token());
    } catch (err) {
      const x = err as { code?: string; details?: Record<string, unknown> };
      if (x.code === 'forbidden' && x.details?.field === 'oldPassword') setErrors({ current: 'That is not your current password.' });
      else if (x.code === 'invalid' && x.details?.field === 'newPassword') {
        setErrors({
          next: weakPassword({
            warning: typeof x.details.warning === 'string' ? x.details.warning : '',
            suggestions: Array.isArray(x.details.suggestions) ? x.details.suggestions.map(String) : [],
          }),
        });
      } else setFailure(describeError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="profile-password" onSubmit={(e) => void submit(e)} noValidate aria-label="Change password">
      <h3>Password</h3>
      <input type="text" name="username" autoComplete="username" value={chat.me.id} hidden readOnly />
      <Field
        label="Current password"
        password
        value={current}
        onInput={(v) => {
          setCurrent(v);
          setErrors((x) => ({ ...x, current: null }));
        }}
        error={errors.current ?? null}
        autoComplete="current-password"
        name="current-password"
      />
      <Field
        label="New password"
        password
        value={next}
        onInput={(v) => {
          setNext(v);
          setSaved(null);
          setErrors((x) => ({ ...x, next: null }));
        }}
        error={errors.next ?? null}
        autoComplete="new-password"
        name="new-password"
      />
      {strength && <StrengthMeter s={strength} />}
      <label class="radio">
        <input type="checkbox" checked={others} onChange={(e) => setOthers(e.currentTarget.checked)} />
        <span>Sign out my other devices</span>
      </label>
      {failure && (
        <p class="error" role="alert">
          {failure}
        </p>
      )}
      <div class="row end">
        {saved && (
          <span class="saved" role="status">
            {saved}
          </span>
        )}
        <button type="submit" class="primary" disabled={busy || !current || !next}>
          Change password
        </button>
      </div>
    </form>
  );
}

function Devices({ session }: { session: Session }) {
  const [list, setList] = useState<SessionInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function load() {
    try {
      setList(await session.sessions());
      setError(null);
    } catch (err) {
      setError(describeError(err));
    }
  }
  useEffect(() => {
    void load();
  }, []);
  async function end(s: SessionInfo) {
    const name = deviceName(s.userAgent);
    const yes = await confirmAction({
      title: `Sign out ${name}?`,
      body: `${name} (signed in ${formatFull(s.createdAt)}) will have to sign in again. Parley closes its open connections now.`,
      action: 'Sign out',
    });
    if (!yes) return;
    setBusy(true);
    try {
      await session.endSession(s.id);
    } catch (err) {
      // Already signed out elsewhere: the list below shows how things stand.
      if ((err as { code?: string }).code !== 'not_found') setError(describeError(err));
    } finally {
      setBusy(false);
    }
    await load();
  }
  async function endOthers() {
    const yes = await confirmAction({
      title: 'Sign out every other device?',
      body: 'Every device but this one will have to sign in again.',
      action: 'Sign out others',
    });
    if (!yes) return;
    setBusy(true);
    try {
      await session.endOtherSessions();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
    await load();
  }
  const others = list?.filter((s) => !s.current).length ?? 0;
  return (
    <section class="devices" aria-labelledby="devices-title">
      <h3 id="devices-title">Signed-in devices</h3>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list === null && !error && <p class="muted">Loading devices…</p>}
      {list && (
        <ul class="device-list">
          {list.map((s) => {
            const name = deviceName(s.userAgent);
            return (
              <li key={s.id} class="device" data-current={s.current || undefined}>
                <div class="device-text">
                  <strong class="device-name" title={s.userAgent || undefined}>
                    {name}
                  </strong>
                  {s.current && <span class="badge">This device</span>}
                  <small class="muted">
                    Signed in{' '}
                    <time dateTime={new Date(s.createdAt).toISOString()} title={formatFull(s.createdAt)}>
                      {formatShort(s.createdAt)}
                    </time>
                    {' · '}last active{' '}
                    <time dateTime={new Date(s.lastUsedAt).toISOString()} title={formatFull(s.lastUsedAt)}>
                      {formatShort(s.lastUsedAt)}
                    </time>
                  </small>
                </div>
                {!s.current && (
                  <button
                    type="button"
                    class="danger-ghost"
                    disabled={busy}
                    aria-label={`Sign out ${name}, signed in ${formatFull(s.createdAt)}`}
                    onClick={() => void end(s)}
                  >
                    Sign out
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {others > 0 && (
        <div class="row end">
          <button type="button" disabled={busy} onClick={() => void endOthers()}>
            Sign out all other devices
          </button>
        </div>
      )}
    </section>
  );
}
