// The admin screen, for server administrators: live figures of this node, users (find, ban
// from the server for a while or for good, lift a ban), rooms (find, member counts, delete),
// the word list and how webhook deliveries are going. The server decides who may do this;
// the app offers it to accounts whose token says they administer the server.
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { api, ApiError, describeError } from '../api.js';
import { compareNames, formatDate, formatFull, formatNumber, plural } from '../format.js';
import type { Session } from '../session.js';
import { confirmAction, Dialog } from './ui.js';

interface AdminUser {
  id: string;
  name: string;
  account: boolean;
  createdAt: number;
}
interface AdminRoom {
  id: string;
  kind: 'channel' | 'group';
  name: string;
  topic: string;
  createdBy: string | null;
  createdAt: number;
  members: number;
}
interface Ban {
  user: string;
  until: number | null;
  reason: string;
  by: string | null;
  createdAt: number;
}
interface Stats {
  at: number;
  connections: Record<string, number>;
  messagesIn: number;
  messagesOut: number;
  uptimeSec: number;
  /** Plugins turned on (absent from an older server). */
  plugins?: string[];
}
interface Hook {
  origin: string;
  format: string;
  events: string[];
  pending: number;
  delivered: number;
  failed: number;
  dropped: number;
  lastDeliveredAt: number | null;
  lastFailedAt: number | null;
  lastError: string | null;
}

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;
type Tab = 'overview' | 'users' | 'rooms' | 'words' | 'webhooks';
const TABS: Array<[Tab, string]> = [
  ['overview', 'Live figures'],
  ['users', 'Users'],
  ['rooms', 'Rooms'],
  ['words', 'Word list'],
  ['webhooks', 'Webhooks'],
];

const DURATIONS: Array<[string, number | null]> = [
  ['1 hour', 3600],
  ['1 day', 86_400],
  ['7 days', 604_800],
  ['30 days', 2_592_000],
  ['For good', null],
];

export function Admin({ session, onClose }: { session: Session; onClose: () => void }) {
  const [tab, setTab] = useState<Tab>('overview');
  const call: Call = async (method, path, body) => api(method, path, { token: await session.token(), body });
  // Which plugins are on, so the tab of one that is off says so without asking for its routes
  // (null while being read; undefined when the server does not say, and the tabs ask).
  const [plugins, setPlugins] = useState<string[] | undefined | null>(null);
  useEffect(() => {
    call<Stats>('GET', '/admin/stats').then(
      (s) => setPlugins(s.plugins),
      () => setPlugins(undefined),
    );
  }, []);
  const loading = <p class="muted">Loading…</p>;
  return (
    <Dialog title="Server administration" onClose={onClose} wide cls="admin">
      <div class="tabs admin-tabs" role="group" aria-label="Sections">
        {TABS.map(([t, label]) => (
          <button key={t} type="button" aria-pressed={tab === t} onClick={() => setTab(t)}>
            {label}
          </button>
        ))}
      </div>
      {tab === 'overview' && <Overview call={call} />}
      {tab === 'users' && <Users call={call} me={session.user.id} />}
      {tab === 'rooms' && <Rooms call={call} />}
      {tab === 'words' && (plugins === null ? loading : <Words call={call} on={plugins?.includes('word-filter')} />)}
      {tab === 'webhooks' && (plugins === null ? loading : <Webhooks call={call} on={plugins?.includes('webhooks')} />)}
    </Dialog>
  );
}

/** Connections now, and messages per second between the last two readings (every 2 s). */
function Overview({ call }: { call: Call }) {
  const [now, setNow] = useState<Stats | null>(null);
  const [rates, setRates] = useState<{ inPerSec: number; outPerSec: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const last = useRef<Stats | null>(null);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = async () => {
      try {
        const s = await call<Stats>('GET', '/admin/stats');
        if (stop) return;
        const prev = last.current;
        if (prev && s.at > prev.at) {
          const sec = (s.at - prev.at) / 1000;
          setRates({ inPerSec: (s.messagesIn - prev.messagesIn) / sec, outPerSec: (s.messagesOut - prev.messagesOut) / sec });
        }
        last.current = s;
        setNow(s);
        setError(null);
      } catch (err) {
        if (!stop) setError(describeError(err));
      }
      if (!stop) timer = setTimeout(() => void read(), 2000);
    };
    void read();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);
  const rate = (n: number | undefined) => (n === undefined ? '…' : n.toFixed(n < 10 ? 1 : 0));
  const conns = now ? Object.values(now.connections).reduce((a, b) => a + b, 0) : null;
  return (
    <section aria-label="Live figures">
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <dl class="figures">
        <div>
          <dt>Connections</dt>
          <dd data-figure="connections">{conns === null ? '…' : formatNumber(conns)}</dd>
          {now && (
            <dd class="muted sub">
              {Object.entries(now.connections)
                .map(([t, n]) => `${t === 'ws' ? 'WebSocket' : t.toUpperCase()} ${formatNumber(n)}`)
                .join(' · ')}
            </dd>
          )}
        </div>
        <div>
          <dt>Messages in per second</dt>
          <dd data-figure="in-rate">{rate(rates?.inPerSec)}</dd>
          {now && <dd class="muted sub">{formatNumber(now.messagesIn)} since start</dd>}
        </div>
        <div>
          <dt>Messages out per second</dt>
          <dd data-figure="out-rate">{rate(rates?.outPerSec)}</dd>
          {now && <dd class="muted sub">{formatNumber(now.messagesOut)} since start</dd>}
        </div>
      </dl>
      <p class="muted">This node, read every 2 seconds{now ? `; up ${formatUptime(now.uptimeSec)}` : ''}. Prometheus reads the same figures from /metrics.</p>
    </section>
  );
}

function formatUptime(sec: number): string {
  if (sec < 3600) return plural(Math.floor(sec / 60), 'minute');
  if (sec < 86_400) return plural(Math.floor(sec / 3600), 'hour');
  return plural(Math.floor(sec / 86_400), 'day');
}

/** A search box that asks again as the query changes (a moment after typing stops). */
function useSearch<T>(load: (q: string) => Promise<T>): {
  query: string;
  setQuery: (q: string) => void;
  data: T | null;
  error: string | null;
  reload: () => void;
} {
  const [query, setQuery] = useState('');
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let stale = false;
    const t = setTimeout(
      () => {
        load(query.trim()).then(
          (d) => {
            if (!stale) {
              setData(d);
              setError(null);
            }
          },
          (err: unknown) => {
            if (!stale) setError(describeError(err));
          },
        );
      },
      round === 0 && query === '' ? 0 : 250,
    );
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [query, round]);
  return { query, setQuery, data, error, reload: () => setRound((n) => n + 1) };
}

function Users({ call, me }: { call: Call; me: string }) {
  const s = useSearch(async (q) => {
    const [found, bans] = await Promise.all([
      call<{ users: AdminUser[]; more: boolean }>('GET', `/admin/users?query=${encodeURIComponent(q)}`),
      call<{ bans: Ban[] }>('GET', '/bans'),
    ]);
    return { ...found, bans: new Map(bans.bans.map((b) => [b.user, b])) };
  });
  const [banning, setBanning] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  async function unban(user: string) {
    setProblem(null);
    try {
      await call('DELETE', `/bans/${encodeURIComponent(user)}`);
    } catch (err) {
      setProblem(describeError(err));
    }
    s.reload();
  }
  return (
    <section aria-label="Users">
      <SearchField label="Find users" value={s.query} onInput={s.setQuery} placeholder="Part of a user id or name" />
      {(s.error || problem) && (
        <p class="error" role="alert">
          {s.error ?? problem}
        </p>
      )}
      {s.data && (
        <ul class="admin-list">
          {s.data.users.length === 0 && <li class="muted">No user matches.</li>}
          {s.data.users.map((u) => {
            const ban = s.data!.bans.get(u.id);
            return (
              <li key={u.id} class="admin-row" data-user={u.id}>
                <div class="admin-text">
                  <strong>{u.name}</strong> <span class="muted">@{u.id}</span>
                  <small class="muted">
                    {u.account ? 'Account' : 'External sign-in'} · since <Day ts={u.createdAt} />
                  </small>
                  {ban && (
                    <small class="banned">
                      Banned {ban.until === null ? 'for good' : `until ${formatFull(ban.until)}`}
                      {ban.reason ? `: ${ban.reason}` : ''}
                    </small>
                  )}
                </div>
                {ban ? (
                  <button type="button" onClick={() => void unban(u.id)} aria-label={`Lift the ban on ${u.name} (@${u.id})`}>
                    Lift ban
                  </button>
                ) : (
                  u.id !== me && (
                    <button type="button" class="danger-ghost" onClick={() => setBanning(u.id)} aria-label={`Ban ${u.name} (@${u.id})`}>
                      Ban
                    </button>
                  )
                )}
                {banning === u.id && (
                  <BanForm
                    call={call}
                    user={u}
                    onDone={() => {
                      setBanning(null);
                      s.reload();
                    }}
                  />
                )}
              </li>
            );
          })}
        </ul>
      )}
      {s.data?.more && <p class="muted">More users match: narrow the search.</p>}
    </section>
  );
}

function BanForm({ call, user, onDone }: { call: Call; user: AdminUser; onDone: () => void }) {
  const [duration, setDuration] = useState('1 day');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const seconds = DURATIONS.find(([label]) => label === duration)?.[1];
    setBusy(true);
    try {
      await call('POST', '/bans', { user: user.id, ...(seconds ? { seconds } : {}), ...(reason.trim() ? { reason: reason.trim() } : {}) });
      onDone();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }
  return (
    <form class="ban-form" onSubmit={(e) => void submit(e)} aria-label={`Ban ${user.name}`}>
      <label>
        Ban for{' '}
        <select value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
          {DURATIONS.map(([label]) => (
            <option key={label} value={label}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Reason (shown to them) <input type="text" value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <p class="muted">Their connections close now; they cannot sign in or connect until the ban ends.</p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row end">
        <button type="button" onClick={onDone}>
          Cancel
        </button>
        <button type="submit" class="danger" disabled={busy}>
          Ban from the server
        </button>
      </div>
    </form>
  );
}

/** A day in a list's row: short enough for one line on a phone, the full date and time on hover. */
function Day({ ts }: { ts: number }) {
  return (
    <time dateTime={new Date(ts).toISOString()} title={formatFull(ts)}>
      {formatDate(ts)}
    </time>
  );
}

/** Rooms by name as a reader orders them ("Room 9" before "Room 10"); the server's page is by lower(name). */
function byName(rooms: AdminRoom[]): AdminRoom[] {
  return [...rooms].sort((a, b) => compareNames(a.name, b.name));
}

function Rooms({ call }: { call: Call }) {
  const s = useSearch((q) => call<{ rooms: AdminRoom[]; more: boolean }>('GET', `/admin/rooms?query=${encodeURIComponent(q)}`));
  const [problem, setProblem] = useState<string | null>(null);
  async function remove(r: AdminRoom) {
    const yes = await confirmAction({
      title: `Delete ${r.name}?`,
      body: `${r.name} and its history are deleted for its ${plural(r.members, 'member')}. This cannot be undone.`,
      action: 'Delete room',
    });
    if (!yes) return;
    setProblem(null);
    try {
      await call('DELETE', `/rooms/${encodeURIComponent(r.id)}`);
    } catch (err) {
      setProblem(describeError(err));
    }
    s.reload();
  }
  return (
    <section aria-label="Rooms">
      <SearchField label="Find rooms" value={s.query} onInput={s.setQuery} placeholder="Part of a room id or name" />
      {(s.error || problem) && (
        <p class="error" role="alert">
          {s.error ?? problem}
        </p>
      )}
      {s.data && (
        <ul class="admin-list">
          {s.data.rooms.length === 0 && <li class="muted">No room matches.</li>}
          {byName(s.data.rooms).map((r) => (
            <li key={r.id} class="admin-row" data-room={r.id}>
              <div class="admin-text">
                <strong>{r.name}</strong> <span class="muted">{r.kind === 'channel' ? 'Channel' : 'Private group'}</span>
                <small class="muted">
                  <span data-members>{plural(r.members, 'member')}</span> · created <Day ts={r.createdAt} />
                  {r.createdBy ? ` by @${r.createdBy}` : ''}
                </small>
              </div>
              <button type="button" class="danger-ghost" onClick={() => void remove(r)} aria-label={`Delete ${r.name}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      {s.data?.more && <p class="muted">More rooms match: narrow the search.</p>}
    </section>
  );
}

/** `on`: whether the plugin is on (undefined: not known yet, so its routes are asked). */
function Words({ call, on }: { call: Call; on: boolean | undefined }) {
  const [list, setList] = useState<{ words: string[]; config: string[] } | null>(null);
  const [off, setOff] = useState(on === false);
  const [word, setWord] = useState('');
  const [error, setError] = useState<string | null>(null);
  const run = async (p: Promise<{ words: string[]; config: string[] }>) => {
    try {
      setList(await p);
      setError(null);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'not_found' && list === null) setOff(true);
      else setError(describeError(err));
    }
  };
  useEffect(() => {
    if (on !== false) void run(call('GET', '/admin/words'));
  }, []);
  if (off)
    return (
      <section aria-label="Word list">
        <p class="muted">The word filter is off on this server (plugins.wordFilter in its configuration).</p>
      </section>
    );
  async function add(e: Event) {
    e.preventDefault();
    const words = word
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean);
    if (words.length === 0) return;
    await run(call('POST', '/admin/words', { words }));
    setWord('');
  }
  return (
    <section aria-label="Word list">
      <form class="row" onSubmit={(e) => void add(e)} aria-label="Add blocked words">
        <label class="sr-only" for="admin-word">
          Words to block
        </label>
        <input
          id="admin-word"
          type="text"
          value={word}
          maxLength={640}
          placeholder="Words to block, separated by commas"
          onInput={(e) => setWord(e.currentTarget.value)}
        />
        <button type="submit" class="primary">
          Block
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list && (
        <ul class="word-list">
          {list.words.length === 0 && list.config.length === 0 && <li class="muted">No blocked words.</li>}
          {list.words.map((w) => (
            <li key={w} class="word">
              <span>{w}</span>
              <button type="button" class="icon" aria-label={`Unblock ${w}`} onClick={() => void run(call('DELETE', `/admin/words/${encodeURIComponent(w)}`))}>
                ×
              </button>
            </li>
          ))}
          {list.config.map((w) => (
            <li key={`c-${w}`} class="word" title="From the configuration file">
              <span>{w}</span>
              <small class="muted">config</small>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Webhooks({ call, on }: { call: Call; on: boolean | undefined }) {
  const [hooks, setHooks] = useState<Hook[] | null>(on === false ? [] : null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (on === false) return;
    call<{ endpoints: Hook[] }>('GET', '/admin/webhooks').then(
      (r) => setHooks(r.endpoints),
      (err: unknown) => {
        if (err instanceof ApiError && err.code === 'not_found') setHooks([]);
        else setError(describeError(err));
      },
    );
  }, []);
  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!hooks) return <p class="muted">Loading…</p>;
  if (hooks.length === 0)
    return (
      <section aria-label="Webhooks">
        <p class="muted">No webhooks are configured (plugins.webhooks).</p>
      </section>
    );
  return (
    <section aria-label="Webhooks">
      <table class="admin-table">
        <thead>
          <tr>
            <th scope="col">Endpoint</th>
            <th scope="col">Delivered</th>
            <th scope="col">Failed</th>
            <th scope="col">Waiting</th>
            <th scope="col">Last error</th>
          </tr>
        </thead>
        <tbody>
          {hooks.map((h, i) => (
            <tr key={i} data-failed={h.failed > 0 || undefined}>
              <th scope="row">
                {h.origin}
                <small class="muted">
                  {' '}
                  {h.format} · {h.events.join(', ')}
                </small>
              </th>
              <td>{formatNumber(h.delivered)}</td>
              <td>
                {formatNumber(h.failed)}
                {h.dropped > 0 ? ` (+${formatNumber(h.dropped)} dropped)` : ''}
              </td>
              <td>{formatNumber(h.pending)}</td>
              <td>{h.lastError ? `${h.lastError}${h.lastFailedAt ? `, ${formatFull(h.lastFailedAt)}` : ''}` : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">Since this node started.</p>
    </section>
  );
}

function SearchField({ label, value, onInput, placeholder }: { label: string; value: string; onInput: (v: string) => void; placeholder: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} type="search" value={value} placeholder={placeholder} maxLength={100} onInput={(e) => onInput(e.currentTarget.value)} />
    </div>
  );
}
