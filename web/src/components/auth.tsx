// The sign-in and registration screen of built-in accounts. A new password is estimated as it
// is typed (the server's own rule, src/accounts/strength.ts), so a weak one is named before
// the round trip.
import { useEffect, useState } from 'preact/hooks';
import { MIN_PASSWORD_SCORE, passwordStrength, type PasswordStrength } from '../../../src/accounts/strength.js';
import { describeError } from '../api.js';
import { Session } from '../session.js';
import { checkDisplayName, checkLoginName, checkNewPassword, checkPassword, checkUsername } from '../validate.js';
import { Field } from './ui.js';

export function AuthScreen({ onSession, notice, onEnd }: { onSession: (s: Session) => void; notice: string; onEnd: (reason: string) => void }) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [errors, setErrors] = useState<Record<string, string | null>>({});
  const [failure, setFailure] = useState('');
  const [busy, setBusy] = useState(false);
  const [strength, setStrength] = useState<PasswordStrength | null>(null);

  useEffect(() => {
    if (mode !== 'register' || password.length < 1) {
      setStrength(null);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      passwordStrength(password, [username, name]).then(
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
  }, [mode, password, username, name]);

  async function submit(e: Event) {
    e.preventDefault();
    const user = mode === 'register' ? username.trim().toLowerCase() : username.trim();
    const found: Record<string, string | null> =
      mode === 'register'
        ? { username: checkUsername(user), password: checkNewPassword(password), name: checkDisplayName(name.trim()) }
        : { username: checkLoginName(user), password: checkPassword(password) };
    if (mode === 'register' && !found.password) {
      setBusy(true);
      const s = await passwordStrength(password, [user, name.trim()]).catch(() => null);
      setBusy(false);
      if (s && !s.ok) found.password = weakPassword(s);
    }
    setErrors(found);
    setFailure('');
    if (Object.values(found).some(Boolean)) return;
    setBusy(true);
    try {
      const s = mode === 'register' ? await Session.register(user, password, name.trim(), onEnd) : await Session.login(user, password, onEnd);
      onSession(s);
    } catch (err) {
      const { code, details } = err as { code?: string; details?: Record<string, unknown> };
      if (mode === 'register' && code === 'conflict') setErrors({ username: 'This username is taken.' });
      else if (mode === 'register' && code === 'invalid' && details?.field === 'password') {
        setErrors({
          password: weakPassword({
            warning: typeof details.warning === 'string' ? details.warning : '',
            suggestions: Array.isArray(details.suggestions) ? details.suggestions.map(String) : [],
          }),
        });
      } else if (mode === 'login' && code === 'unauthorized') setFailure('Wrong username or password.');
      else if (mode === 'register' && code === 'forbidden') setFailure('Registration is closed on this server.');
      else setFailure(describeError(err));
      setBusy(false);
    }
  }

  function switchTo(m: 'login' | 'register') {
    setStrength(null);
    setMode(m);
    setErrors({});
    setFailure('');
  }

  return (
    <main class="auth">
      <div class="auth-card">
        <h1 class="brand">
          <span class="logo" aria-hidden="true" />
          Parley
        </h1>
        {notice && (
          <p class="notice-inline" role="status">
            {notice}
          </p>
        )}
        <div class="tabs" role="group" aria-label="Account">
          <button type="button" aria-pressed={mode === 'login'} onClick={() => switchTo('login')}>
            Sign in
          </button>
          <button type="button" aria-pressed={mode === 'register'} onClick={() => switchTo('register')}>
            Create account
          </button>
        </div>
        <form onSubmit={submit} noValidate aria-label={mode === 'login' ? 'Sign in' : 'Create account'}>
          <Field
            label="Username"
            value={username}
            onInput={setUsername}
            error={errors.username}
            autoFocus
            autoComplete="username"
            name="username"
            hint={mode === 'register' ? '3–32 lowercase letters, digits, _ . or -. Others find you by it.' : undefined}
          />
          {mode === 'register' && (
            <Field label="Display name (optional)" value={name} onInput={setName} error={errors.name} autoComplete="nickname" name="name" />
          )}
          <Field
            label="Password"
            password
            value={password}
            onInput={(v) => {
              setPassword(v);
              setErrors((x) => ({ ...x, password: null }));
            }}
            error={errors.password}
            name="password"
            autoComplete={mode === 'register' ? 'new-password' : 'current-password'}
            hint={mode === 'register' ? 'At least 8 characters, hard to guess: a few unrelated words work well.' : undefined}
          />
          {mode === 'register' && strength && <StrengthMeter s={strength} />}
          {failure && (
            <p class="error" role="alert">
              {failure}
            </p>
          )}
          <button type="submit" class="primary wide" disabled={busy}>
            {busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
          </button>
        </form>
      </div>
    </main>
  );
}

const STRENGTH = ['Very weak', 'Weak', 'Fair', 'Good', 'Strong'];

/** The estimate as the user types: a bar and a word, with what to do about it. */
export function StrengthMeter({ s }: { s: PasswordStrength }) {
  return (
    <div class={`strength strength-${s.score}`}>
      <meter min={0} max={4} low={MIN_PASSWORD_SCORE} high={3} optimum={4} value={s.score} aria-label="Password strength" />
      <small aria-live="polite">
        {STRENGTH[s.score]}
        {s.ok ? '' : ' — too easy to guess'}
        {s.warning ? `. ${s.warning}` : '.'}
      </small>
    </div>
  );
}

/** Why a password is refused, and how to do better. */
export function weakPassword(s: Pick<PasswordStrength, 'warning' | 'suggestions'>): string {
  return ['This password is too easy to guess.', s.warning, ...s.suggestions].filter(Boolean).join(' ');
}
