// Dialogs: create a room, browse and join channels, a room's settings (owners and admins:
// name, topic, access mode and list, bans), and a user's card (direct message, kick, ban).
import { useEffect, useState } from 'preact/hooks';
import type { Ban, Room } from '../../../src/protocol/schema.js';
import { describeError, describeJoinError } from '../api.js';
import type { Chat } from '../chat.js';
import { compareNames, formatFull } from '../format.js';
import { checkReason, checkRoomName, checkTopic, checkUserId, LIMITS } from '../validate.js';
import { Avatar, confirmAction, Dialog, Field } from './ui.js';

type Go = (room: string | null) => void;

export function CreateRoom({ chat, onClose, go }: { chat: Chat; onClose: () => void; go: Go }) {
  const [kind, setKind] = useState<'channel' | 'group'>('channel');
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const [errors, setErrors] = useState<Record<string, string | null>>({});
  const [failure, setFailure] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const found = { name: checkRoomName(name.trim()), topic: checkTopic(topic.trim()) };
    setErrors(found);
    if (found.name || found.topic) return;
    setBusy(true);
    try {
      const room = await chat.client.createRoom(kind, name.trim(), topic.trim() ? { topic: topic.trim() } : {});
      chat.adopt(room, 'owner');
      onClose();
      go(room.id);
    } catch (err) {
      const taken = nameTaken(err, name.trim());
      if (taken) setErrors({ name: taken });
      else setFailure(describeError(err));
      setBusy(false);
    }
  }
  return (
    <Dialog title="Create a room" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <fieldset class="kinds">
          <legend>Kind</legend>
          <label class="radio">
            <input type="radio" name="kind" value="channel" checked={kind === 'channel'} onChange={() => setKind('channel')} />
            <span>
              <strong>Channel</strong>
              <small>Public: anyone can find and join it.</small>
            </span>
          </label>
          <label class="radio">
            <input type="radio" name="kind" value="group" checked={kind === 'group'} onChange={() => setKind('group')} />
            <span>
              <strong>Private group</strong>
              <small>Only people you invite.</small>
            </span>
          </label>
        </fieldset>
        <Field label="Name" value={name} onInput={setName} error={errors.name} autoFocus maxLength={LIMITS.roomName} name="room-name" />
        <Field label="Topic (optional)" value={topic} onInput={setTopic} error={errors.topic} maxLength={LIMITS.topic} name="room-topic" />
        {failure && (
          <p class="error" role="alert">
            {failure}
          </p>
        )}
        <div class="row end">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** A channel name another channel has (the server compares them without case). */
function nameTaken(err: unknown, name: string): string | null {
  const e = err as { code?: string; details?: Record<string, unknown> } | null;
  return e?.code === 'conflict' && e.details?.field === 'name' ? `A channel named “${name}” exists already. Choose another name.` : null;
}

/** A topic that runs past three lines shows them, and the rest on demand. */
function Topic({ text }: { text: string }) {
  const [whole, setWhole] = useState(false);
  const long = text.length > TOPIC_SHOWN;
  return (
    <>
      <small class={long && !whole ? 'muted clamped' : 'muted'}>{text}</small>
      {long && (
        <button type="button" class="link topic-more" aria-expanded={whole} onClick={() => setWhole(!whole)}>
          {whole ? 'Show less' : 'Show all'}
        </button>
      )}
    </>
  );
}

/** Characters of a topic that three lines hold on a phone, about. */
const TOPIC_SHOWN = 120;

export function BrowseChannels({ chat, onClose, go }: { chat: Chat; onClose: () => void; go: Go }) {
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [filter, setFilter] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    chat.client.listRooms('public').then(
      (r) => setRooms(r.rooms),
      (err) => setError(describeError(err)),
    );
  }, []);
  async function join(room: Room) {
    try {
      const r = await chat.client.join(room.id);
      chat.adopt(r.room, 'member');
      onClose();
      go(room.id);
    } catch (err) {
      setError(describeJoinError(err, room.name));
    }
  }
  const q = filter.trim().toLowerCase();
  // By name, as a reader looks for one (the server lists them by id).
  const shown = (rooms ?? [])
    .filter((r) => !q || r.name.toLowerCase().includes(q) || r.topic.toLowerCase().includes(q))
    .sort((a, b) => compareNames(a.name, b.name));
  return (
    <Dialog title="Browse channels" onClose={onClose} wide>
      <Field label="Filter" value={filter} onInput={setFilter} autoFocus placeholder="name or topic" name="filter" />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!rooms && !error && (
        <p class="muted" role="status">
          {chat.conn === 'online' ? 'Loading channels…' : 'You are offline. Channels are listed when the connection is back.'}
        </p>
      )}
      {rooms && shown.length === 0 && <p class="muted">{rooms.length ? 'No channel matches.' : 'No channels yet. Create the first one.'}</p>}
      <ul class="channel-list">
        {shown.map((r) => {
          const joined = chat.rooms.has(r.id);
          return (
            <li key={r.id}>
              <div class="channel-text">
                <strong class="channel-name"># {r.name}</strong>
                {r.topic && <Topic text={r.topic} />}
              </div>
              {joined ? (
                <button
                  type="button"
                  onClick={() => {
                    onClose();
                    go(r.id);
                  }}
                  aria-label={`Open ${r.name}`}
                >
                  Open
                </button>
              ) : (
                <button type="button" class="primary" onClick={() => void join(r)} aria-label={`Join ${r.name}`}>
                  Join
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </Dialog>
  );
}

export function RoomSettings({ chat, room, onClose }: { chat: Chat; room: string; onClose: () => void }) {
  const entry = chat.rooms.get(room);
  const [name, setName] = useState(entry?.room.name ?? '');
  const [topic, setTopic] = useState(entry?.room.topic ?? '');
  const [access, setAccess] = useState(entry?.room.access ?? 'blacklist');
  const [errors, setErrors] = useState<Record<string, string | null>>({});
  const [failure, setFailure] = useState('');
  const [busy, setBusy] = useState(false);
  if (!entry) return null;
  const r = entry.room;
  async function submit(e: Event) {
    e.preventDefault();
    const found = { name: checkRoomName(name.trim()), topic: checkTopic(topic.trim()) };
    setErrors(found);
    if (found.name || found.topic) return;
    const patch: { name?: string; topic?: string; access?: 'blacklist' | 'whitelist' } = {};
    if (name.trim() !== r.name) patch.name = name.trim();
    if (topic.trim() !== r.topic) patch.topic = topic.trim();
    if (access !== r.access) patch.access = access;
    if (Object.keys(patch).length === 0) return onClose();
    setBusy(true);
    try {
      await chat.client.updateRoom(room, patch);
      chat.notify('Room settings saved.');
      onClose();
    } catch (err) {
      const taken = nameTaken(err, name.trim());
      if (taken) setErrors({ name: taken });
      else setFailure(describeError(err));
      setBusy(false);
    }
  }
  return (
    <Dialog title={`Settings of “${r.name}”`} onClose={onClose} wide>
      <form onSubmit={submit} noValidate>
        <Field label="Name" value={name} onInput={setName} error={errors.name} maxLength={LIMITS.roomName} name="room-name" autoFocus />
        <Field label="Topic" value={topic} onInput={setTopic} error={errors.topic} maxLength={LIMITS.topic} name="room-topic" multiline />
        <div class="field">
          <label for="room-access">Who may be a member</label>
          <select id="room-access" value={access} onChange={(e) => setAccess(e.currentTarget.value as 'blacklist' | 'whitelist')}>
            <option value="blacklist">Everyone except the black list</option>
            <option value="whitelist">Only the white list (and owners, admins)</option>
          </select>
          {access === 'whitelist' && r.access !== 'whitelist' && <small class="hint">Members not on the white list are removed when you save.</small>}
        </div>
        {failure && (
          <p class="error" role="alert">
            {failure}
          </p>
        )}
        <div class="row end">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
        </div>
      </form>
      <AccessList chat={chat} room={room} list={r.access === 'whitelist' ? 'white' : 'black'} />
      <Bans chat={chat} room={room} />
    </Dialog>
  );
}

function AccessList({ chat, room, list }: { chat: Chat; room: string; list: 'black' | 'white' }) {
  const [users, setUsers] = useState<string[] | null>(null);
  const [user, setUser] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    chat.client.request('accessList', { room, list }).then(
      (r) => setUsers(r.users),
      (err) => setError(describeError(err)),
    );
  }, [list]);
  async function change(add: string[], remove: string[]) {
    try {
      const r = await chat.client.request('access', { room, list, ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) });
      setUsers(r.users);
      setUser('');
      if (r.removed.length) chat.notify(`Removed from the room: ${r.removed.map((u) => chat.nameOf(u)).join(', ')}.`);
    } catch (err) {
      setError(describeError(err));
    }
  }
  function submit(e: Event) {
    e.preventDefault();
    const id = user.trim();
    const bad = checkUserId(id);
    setError(bad);
    if (!bad) void change([id], []);
  }
  const label = list === 'white' ? 'White list (allowed users)' : 'Black list (refused users)';
  return (
    <section class="settings-section" aria-label={label}>
      <h3>{label}</h3>
      {users && users.length === 0 && <p class="muted">Nobody.</p>}
      <ul class="plain-list">
        {(users ?? []).map((u) => (
          <li key={u}>
            <span>
              {chat.nameOf(u)} <small class="muted">{u}</small>
            </span>
            <button type="button" class="ghost" onClick={() => void change([], [u])} aria-label={`Remove ${u} from the ${list} list`}>
              Remove
            </button>
          </li>
        ))}
      </ul>
      <form class="row" onSubmit={submit} noValidate>
        <label class="sr-only" for={`access-${list}`}>
          User id to add to the {list} list
        </label>
        <input
          id={`access-${list}`}
          value={user}
          placeholder="user id"
          autoComplete="off"
          spellcheck={false}
          aria-invalid={error ? true : undefined}
          onInput={(e) => {
            setUser(e.currentTarget.value);
            setError(null);
          }}
        />
        <button type="submit">Add</button>
      </form>
      {error && (
        <small class="error" role="alert">
          {error}
        </small>
      )}
    </section>
  );
}

function Bans({ chat, room }: { chat: Chat; room: string }) {
  const [bans, setBans] = useState<Ban[] | null>(null);
  const [error, setError] = useState('');
  const load = () =>
    chat.client.request('bans', { room }).then(
      (r) => setBans(r.bans),
      (err) => setError(describeError(err)),
    );
  useEffect(() => {
    void load();
  }, []);
  async function lift(user: string) {
    try {
      await chat.client.request('unban', { room, user });
      await load();
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <section class="settings-section" aria-label="Bans">
      <h3>Bans</h3>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {bans && bans.length === 0 && <p class="muted">Nobody is banned.</p>}
      <ul class="plain-list">
        {(bans ?? []).map((b) => (
          <li key={b.user}>
            <span>
              {chat.nameOf(b.user)}{' '}
              <small class="muted">
                {b.until ? `until ${formatFull(b.until)}` : 'permanently'}
                {b.reason ? ` — ${b.reason}` : ''}
              </small>
            </span>
            <button type="button" class="ghost" onClick={() => void lift(b.user)} aria-label={`Lift the ban of ${b.user}`}>
              Lift
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

const BAN_DURATIONS: Array<[string, number | null]> = [
  ['1 hour', 3600],
  ['1 day', 86400],
  ['1 week', 7 * 86400],
  ['Permanently', null],
];

export function UserCard({ chat, user, room, onClose, go }: { chat: Chat; user: string; room: string | null; onClose: () => void; go: Go }) {
  const [reason, setReason] = useState('');
  const [duration, setDuration] = useState('0');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const name = chat.nameOf(user);
  const me = user === chat.me.id;
  const entry = room ? chat.rooms.get(room) : undefined;
  const member = room ? chat.members.get(room)?.find((m) => m.user === user) : undefined;
  const online = room ? chat.onlineIn(room)?.has(user) : undefined;
  const moderate = room && member && chat.canModerate(room, user);
  // Roles are the owner's to set (administrators act as owners).
  const setsRoles = !!(room && member && !me && entry && entry.room.kind !== 'direct' && chat.myRole(room) === 'owner');

  async function message() {
    setBusy(true);
    try {
      const r = await chat.directWith(user);
      onClose();
      go(r.id);
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }

  async function setRole(role: 'admin' | 'member' | 'owner') {
    if (!room) return;
    if (
      role === 'owner' &&
      !(await confirmAction({ title: `Hand “${entry!.room.name}” to ${name}?`, body: 'They become its owner and you an admin.', action: 'Hand over' }))
    )
      return;
    setBusy(true);
    try {
      await chat.client.role(room, user, role);
      chat.notify(role === 'owner' ? `${name} now owns the room.` : `${name} is now ${role === 'admin' ? 'an admin' : 'a member'}.`);
      onClose();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }

  async function moderateAs(what: 'kick' | 'ban') {
    const bad = checkReason(reason.trim());
    setError(bad);
    if (bad || !room) return;
    setBusy(true);
    try {
      const why = reason.trim() || undefined;
      if (what === 'kick') await chat.client.kick(room, user, why);
      else {
        const seconds = BAN_DURATIONS[Number(duration)]![1];
        await chat.client.ban(user, { room, ...(seconds ? { seconds } : {}), ...(why ? { reason: why } : {}) });
      }
      chat.notify(`${name} was ${what === 'kick' ? 'removed' : 'banned'}.`);
      onClose();
    } catch (err) {
      setError(describeError(err));
      setBusy(false);
    }
  }

  return (
    <Dialog title={name} onClose={onClose}>
      <div class="user-card">
        <Avatar id={user} name={name} online={online} />
        <div>
          <div>
            <strong>{name}</strong>
            {me && <span class="muted"> (you)</span>}
          </div>
          <div class="muted">
            @{user}
            {member && member.role !== 'member' ? ` · ${member.role}` : ''}
            {online !== undefined && ` · ${online ? 'online' : 'offline'}`}
          </div>
        </div>
      </div>
      {!me && (
        <div class="row">
          <button type="button" class="primary" disabled={busy} onClick={() => void message()}>
            Send a direct message
          </button>
        </div>
      )}
      {setsRoles && member && (
        <section class="settings-section" aria-label="Role">
          <h3>Role in “{entry.room.name}”</h3>
          <div class="row">
            {member.role === 'member' ? (
              <button type="button" disabled={busy} onClick={() => void setRole('admin')}>
                Make admin
              </button>
            ) : (
              <button type="button" disabled={busy} onClick={() => void setRole('member')}>
                Make member
              </button>
            )}
            <button type="button" disabled={busy} onClick={() => void setRole('owner')}>
              Hand over ownership
            </button>
          </div>
        </section>
      )}
      {moderate && entry && (
        <section class="settings-section" aria-label="Moderation">
          <h3>Moderate in “{entry.room.name}”</h3>
          <Field label="Reason (optional, shown to them)" value={reason} onInput={setReason} maxLength={LIMITS.reason} name="reason" />
          <div class="field">
            <label for="ban-duration">Ban for</label>
            <select id="ban-duration" value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
              {BAN_DURATIONS.map(([label], i) => (
                <option key={label} value={String(i)}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div class="row">
            <button type="button" disabled={busy} onClick={() => void moderateAs('kick')}>
              Kick
            </button>
            <button type="button" class="danger" disabled={busy} onClick={() => void moderateAs('ban')}>
              Ban
            </button>
          </div>
        </section>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  );
}
