// Your profile: the display name others see, and the devices signed in to your account, each
// of which can be signed out from here (its open connections close at once).
import { useEffect, useState } from 'preact/hooks';
import { describeError } from '../api.js';
import type { Chat } from '../chat.js';
import { deviceName, formatFull, formatShort } from '../format.js';
import type { Session, SessionInfo } from '../session.js';
import { confirmAction, Dialog, Field } from './ui.js';

const NAME_MAX = 100;

export function Profile({ chat, session, onClose }: { chat: Chat; session: Session; onClose: () => void }) {
  return (
    <Dialog title="Your profile" onClose={onClose} wide>
      <NameForm chat={chat} />
      <Devices session={session} />
    </Dialog>
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
      <Field label="Display name" value={name} onInput={(v) => { setName(v); setSaved(false); }} error={error}
        hint={`Shown with your messages from now on (@${chat.me.id}). Messages already sent keep the name they were sent with.`}
        maxLength={NAME_MAX} autoComplete="name" />
      <div class="row end">
        {saved && <span class="saved" role="status">Saved.</span>}
        <button type="submit" class="primary" disabled={busy || name.trim() === chat.me.name}>Save name</button>
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
  useEffect(() => { void load(); }, []);
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
      {error && <p class="error" role="alert">{error}</p>}
      {list === null && !error && <p class="muted">Loading devices…</p>}
      {list && (
        <ul class="device-list">
          {list.map((s) => {
            const name = deviceName(s.userAgent);
            return (
              <li key={s.id} class="device" data-current={s.current || undefined}>
                <div class="device-text">
                  <strong class="device-name" title={s.userAgent || undefined}>{name}</strong>
                  {s.current && <span class="badge">This device</span>}
                  <small class="muted">
                    Signed in <time dateTime={new Date(s.createdAt).toISOString()} title={formatFull(s.createdAt)}>{formatShort(s.createdAt)}</time>
                    {' · '}last active <time dateTime={new Date(s.lastUsedAt).toISOString()} title={formatFull(s.lastUsedAt)}>{formatShort(s.lastUsedAt)}</time>
                  </small>
                </div>
                {!s.current && (
                  <button type="button" class="danger-ghost" disabled={busy} aria-label={`Sign out ${name}, signed in ${formatFull(s.createdAt)}`}
                    onClick={() => void end(s)}>Sign out</button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {others > 0 && (
        <div class="row end">
          <button type="button" disabled={busy} onClick={() => void endOthers()}>Sign out all other devices</button>
        </div>
      )}
    </section>
  );
}
