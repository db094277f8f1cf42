// Small shared pieces: the store hook, avatars, labelled form fields and the modal dialog.
import type { ComponentChildren, TargetedEvent } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import type { Chat } from '../chat.js';
import { hue, initials } from '../format.js';
import { describeError } from '../api.js';
import { checkUserId } from '../validate.js';
import { Icon } from './icons.js';
import { useAvatar } from '../avatars.js';

/** Re-renders the component whenever the chat state changes. */
export function useChat(chat: Chat): void {
  const [, bump] = useState(0);
  useEffect(() => chat.subscribe(() => bump((n) => n + 1)), [chat]);
}

export function Avatar({ id, name, size = 'md', online }: { id: string; name: string; size?: 'xs' | 'sm' | 'md'; online?: boolean }) {
  const url = useAvatar(id);
  const [broken, setBroken] = useState<string | null>(null);
  return (
    <span class={`avatar avatar-${size}`} style={{ '--h': String(hue(id)) }} aria-hidden="true" data-picture={url && broken !== url ? '' : undefined}>
      {initials(name)}
      {url && broken !== url && <img src={url} alt="" loading="lazy" decoding="async" onError={() => setBroken(url)} />}
      {online !== undefined && <span class={`dot ${online ? 'on' : 'off'}`} />}
    </span>
  );
}

interface FieldProps {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | null;
  hint?: string;
  password?: boolean;
  autoComplete?: string;
  autoFocus?: boolean;
  maxLength?: number;
  placeholder?: string;
  multiline?: boolean;
  required?: boolean;
  name?: string;
}

/** A labelled input whose error is announced and tied to it (aria-describedby). */
export function Field(p: FieldProps) {
  const id = useId();
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  useEffect(() => {
    if (p.autoFocus) ref.current?.focus();
  }, []);
  const described = [p.hint ? `${id}-hint` : '', p.error ? `${id}-err` : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    ref,
    value: p.value,
    name: p.name,
    placeholder: p.placeholder,
    maxLength: p.maxLength,
    required: p.required,
    'aria-invalid': p.error ? true : undefined,
    'aria-describedby': described,
    onInput: (e: TargetedEvent<HTMLInputElement | HTMLTextAreaElement>) => p.onInput(e.currentTarget.value),
  };
  return (
    <div class="field">
      <label for={id}>{p.label}</label>
      {p.multiline ? (
        <textarea {...common} rows={3} />
      ) : p.password ? (
        <input {...common} type="password" autoComplete={p.autoComplete} />
      ) : (
        <input {...common} type="text" autoComplete={p.autoComplete} />
      )}
      {p.hint && (
        <small id={`${id}-hint`} class="hint">
          {p.hint}
        </small>
      )}
      {p.error && (
        <small id={`${id}-err`} class="error" role="alert">
          {p.error}
        </small>
      )}
    </div>
  );
}

/**
 * A mouse or trackpad points: a field may take focus by itself. On a touch screen focusing a
 * field opens the keyboard over what was just opened, so fields wait for a tap there.
 */
export const pointerIsFine = (): boolean => typeof matchMedia === 'function' && matchMedia('(pointer: fine)').matches;

/**
 * A native modal <dialog>: the browser traps focus, Escape closes it, focus returns after.
 * `alert` makes it an alertdialog (a question that needs an answer), without a close button.
 */
export function Dialog({
  title,
  onClose,
  children,
  wide,
  alert,
  describedBy,
  cls,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
  alert?: boolean;
  describedBy?: string;
  cls?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current!;
    const before = document.activeElement as HTMLElement | null;
    d.showModal();
    d.querySelector<HTMLElement>('[data-autofocus]')?.focus();
    return () => {
      // This runs after the dialog has left the page, a moment later: focus goes back where it
      // was unless it has moved on meanwhile (to the message box, say, where the next Enter
      // would otherwise reopen what was just closed).
      const now = document.activeElement;
      const movedOn = now instanceof HTMLElement && now !== document.body && !d.contains(now);
      if (d.open) d.close();
      if (movedOn) now.focus();
      else before?.focus?.();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={[wide ? 'wide' : '', cls ?? ''].join(' ').trim() || undefined}
      aria-labelledby={titleId}
      role={alert ? 'alertdialog' : undefined}
      aria-describedby={describedBy}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      // Keys typed in a dialog are its own, not the page's behind it (a message list's arrow keys).
      onKeyDown={(e) => e.stopPropagation()}
      onClick={(e) => {
        if (e.target === ref.current) onClose();
      }}
    >
      <div class="dialog-body">
        <header class="dialog-head">
          <h2 id={titleId}>{title}</h2>
          {!alert && (
            <button type="button" class="icon" aria-label="Close" onClick={onClose}>
              <Icon name="close" />
            </button>
          )}
        </header>
        {children}
      </div>
    </dialog>
  );
}

interface Question {
  title: string;
  body: string;
  action: string;
  resolve: (yes: boolean) => void;
}
let ask: ((q: Question) => void) | null = null;

/** Asks in the page (not with the browser's confirm()) before something that cannot be undone. */
export function confirmAction(q: Omit<Question, 'resolve'>): Promise<boolean> {
  return new Promise((resolve) => (ask ? ask({ ...q, resolve }) : resolve(false)));
}

/** Where confirmAction's questions are shown; one per screen. */
export function ConfirmHost() {
  const [q, setQ] = useState<Question | null>(null);
  const bodyId = useId();
  useEffect(() => {
    ask = (next) =>
      setQ((prev) => {
        prev?.resolve(false);
        return next;
      });
    return () => {
      ask = null;
    };
  }, []);
  if (!q) return null;
  const answer = (yes: boolean) => {
    setQ(null);
    q.resolve(yes);
  };
  return (
    <Dialog title={q.title} onClose={() => answer(false)} alert describedBy={bodyId}>
      <p id={bodyId}>{q.body}</p>
      <div class="row end">
        <button type="button" data-autofocus onClick={() => answer(false)}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => answer(true)}>
          {q.action}
        </button>
      </div>
    </Dialog>
  );
}

export function VisuallyHidden({ children }: { children: ComponentChildren }) {
  return <span class="sr-only">{children}</span>;
}

/**
 * A one-field form for a user id (invite, open a direct room): label, input, button, error.
 * It checks the id, looks the user up, and hands the user found to `onUser`; `check` adds a
 * form-specific check and `failure` words an error of `onUser`.
 */
export function UserIdForm({
  chat,
  id,
  cls,
  label,
  action,
  check,
  onUser,
  failure,
}: {
  chat: Chat;
  id: string;
  cls: string;
  label: string;
  action: string;
  check?: (id: string) => string | null;
  onUser: (user: { id: string; name: string }) => Promise<void>;
  failure?: (err: unknown, id: string) => string | null;
}) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: TargetedEvent<HTMLFormElement, Event>) {
    e.preventDefault();
    const user = value.trim();
    const bad = checkUserId(user) ?? check?.(user) ?? null;
    setError(bad);
    if (bad) return;
    setBusy(true);
    try {
      const found = await chat.findUser(user);
      if (!found) {
        setError(`No user “${user}”.`);
        return;
      }
      await onUser(found);
      setValue('');
    } catch (err) {
      setError(failure?.(err, user) ?? describeError(err));
    } finally {
      setBusy(false);
    }
  }
  const errId = `${id}-err`;
  return (
    <form class={cls} onSubmit={submit} noValidate>
      <label for={id}>{label}</label>
      <div class="row">
        <input
          id={id}
          value={value}
          placeholder="user id"
          autoComplete="off"
          spellcheck={false}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errId : undefined}
          onInput={(e) => {
            setValue(e.currentTarget.value);
            setError(null);
          }}
        />
        <button type="submit" disabled={busy}>
          {action}
        </button>
      </div>
      {error && (
        <small id={errId} class="error" role="alert">
          {error}
        </small>
      )}
    </form>
  );
}
