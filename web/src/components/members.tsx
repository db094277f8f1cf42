// The members of the open room, online first, with an invite form where the user may invite.
import type { Chat, RoomEntry } from '../chat.js';
import { Icon } from './icons.js';
import { Avatar, UserIdForm } from './ui.js';

const RANK = { owner: 0, admin: 1, member: 2 } as const;

export function MembersPanel({
  chat,
  room,
  entry,
  openUser,
  onClose,
}: {
  chat: Chat;
  room: string;
  entry: RoomEntry;
  openUser: (user: string) => void;
  onClose: () => void;
}) {
  const members = chat.members.get(room);
  const known = chat.onlineIn(room);
  const online = known ?? new Set<string>();
  const sorted = [...(members ?? [])].sort(
    (a, b) => Number(online.has(b.user)) - Number(online.has(a.user)) || RANK[a.role] - RANK[b.role] || chat.nameOf(a.user).localeCompare(chat.nameOf(b.user)),
  );
  const canInvite = entry.room.kind === 'channel' || entry.role === 'owner' || entry.role === 'admin';
  return (
    <aside id="members-panel" class="members" aria-label="Members">
      <header class="members-head">
        <h2>Members {members && <span class="muted">({members.length})</span>}</h2>
        <button type="button" class="icon" aria-label="Close members" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      {canInvite && <InviteForm chat={chat} room={room} />}
      {!members && <p class="muted pad">Loading members…</p>}
      <ul class="member-list">
        {sorted.map((m) => {
          const on = online.has(m.user);
          return (
            <li key={m.user}>
              <button type="button" class="member" onClick={() => openUser(m.user)}>
                <Avatar id={m.user} name={chat.nameOf(m.user)} size="sm" online={known ? on : undefined} />
                <span class="member-name">
                  {chat.nameOf(m.user)}
                  {m.user === chat.me.id && <span class="muted"> (you)</span>}
                </span>
                {m.role !== 'member' && <span class="role">{m.role}</span>}
                {known && <span class="sr-only">{on ? ', online' : ', offline'}</span>}
              </button>
            </li>
          );
        })}
      </ul>
    </aside>
  );
}

function InviteForm({ chat, room }: { chat: Chat; room: string }) {
  return (
    <UserIdForm
      chat={chat}
      id="invite-user"
      cls="invite-form"
      label="Invite a user"
      action="Invite"
      onUser={async (found) => {
        await chat.client.invite(room, found.id);
        chat.notify(`${found.name} was added.`);
      }}
      failure={(err, id) => ((err as { code?: string }).code === 'conflict' ? `${id} is already a member.` : null)}
    />
  );
}
