// Every cell of the permission table (test/permissions/table.ts), checked at the wire on a real
// node: raw WebSocket frames, raw HTTP requests, and raw MQTT clients with the Chat21 REST API.
// Each cell gets a room of its own, set up over REST, so cells run side by side.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSocket, removeDir, waitFor } from './helpers.js';
import { APP, Chat21Peer, startMqttServer } from './mqtt-helpers.js';
import { ROLES, TABLE, TRANSPORTS, outcome, renderPermissions, type Outcome, type Role, type Row, type Transport } from './permissions/table.js';

const API_KEY = 'permission-table-api-key-0123456789';
let s: Awaited<ReturnType<typeof startMqttServer>>;
const tokens = new Map<string, string>();
const sockets = new Map<string, Promise<RawSocket | null>>();
const peers = new Map<string, Promise<Chat21Peer | null>>();

beforeAll(async () => {
  // Every cell gets its own room: the owner creates far more rooms than the default cap allows.
  s = await startMqttServer({
    api: { keys: [API_KEY] },
    limits: { roomsCreatedPerUser: 100_000, roomsPerUser: 100_000 },
    plugins: { rateLimit: { enabled: false } },
  });
  const res = await call(await token('p_root', true), 'POST', '/api/v1/bans', { user: 'p_sbanned' });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  for (const p of sockets.values()) (await p)?.close();
  for (const p of peers.values()) await (await p)?.close();
  await s.close();
  removeDir(s.dataDir);
});

type Auth = string | { apiKey: string };

async function token(user: string, admin = false): Promise<string> {
  let t = tokens.get(user);
  if (!t) tokens.set(user, (t = await s.token(user, { admin })));
  return t;
}

async function call(auth: Auth, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = typeof auth === 'string' ? { authorization: `Bearer ${auth}` } : { 'x-api-key': auth.apiKey };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${s.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A setup step that must succeed. */
async function must(auth: Auth, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await call(auth, method, `/api/v1${path}`, body);
  if (r.status >= 300) throw new Error(`setup ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const ACTOR: Record<Exclude<Role, 'blocked'>, string> = {
  outsider: 'p_outsider',
  member: 'p_member',
  muted: 'p_muted',
  admin: 'p_admin',
  owner: 'p_owner',
  banned: 'p_banned',
  administrator: 'p_root',
  apiKey: 'parley:api',
  serverBanned: 'p_sbanned',
};
const OWNER = 'p_owner';
const PEER = 'p_peer';

interface Fixture {
  room: string;
  actor: string;
  auth: Auth;
  /** The Chat21 conversation id of the room for the actor. */
  cw: string;
  /** Another member's message, and the actor's own (when the action needs one). */
  peerSeq: number;
  ownSeq: number;
  /** The plain member kick, ban, mute and set role act on. */
  target: string;
  fresh: string;
}

let counter = 0;

async function authOf(role: Role, user: string): Promise<Auth> {
  return role === 'apiKey' ? { apiKey: API_KEY } : token(user, role === 'administrator');
}

async function setup(row: Row, role: Role): Promise<Fixture> {
  const n = ++counter;
  const fresh = `p_new${n}`;
  if (role === 'blocked') {
    const blocker = `p_blkr${n}`;
    const actor = `p_blkd${n}`;
    const tb = await token(blocker);
    const ta = await token(actor);
    const room = (await must(tb, 'POST', `/direct/${actor}`)).id as string;
    const peerSeq = (await must(tb, 'POST', `/rooms/${room}/messages`, { text: 'hello from the blocker' })).seq as number;
    const ownSeq = (await must(ta, 'POST', `/rooms/${room}/messages`, { text: 'hello from the blocked' })).seq as number;
    await must(tb, 'PUT', `/blocks/${actor}`);
    return { room, actor, auth: ta, cw: blocker, peerSeq, ownSeq, target: blocker, fresh };
  }
  const actor = ACTOR[role];
  const auth = await authOf(role, actor);
  const room = `group-${row.room[0]}${n}`;
  const owner = await token(OWNER);
  if (role === 'serverBanned') return { room, actor, auth, cw: room, peerSeq: 1, ownSeq: 1, target: PEER, fresh };
  await must(owner, 'POST', '/rooms', { kind: row.room, name: `Room ${n}`, room });
  await must(owner, 'POST', `/rooms/${room}/members`, { user: PEER });
  const peerSeq = (await must(await token(PEER), 'POST', `/rooms/${room}/messages`, { text: 'hello from a member' })).seq as number;
  const needsOwn = row.action === 'editOwn' || row.action === 'deleteOwn';
  const member = role === 'member' || role === 'muted' || role === 'admin';
  if (member || (needsOwn && role !== 'owner')) await must(owner, 'POST', `/rooms/${room}/members`, { user: actor });
  if (role === 'admin') await must(owner, 'PATCH', `/rooms/${room}/members/${actor}`, { role: 'admin' });
  const ownSeq = needsOwn ? ((await must(auth, 'POST', `/rooms/${room}/messages`, { text: 'hello from the actor' })).seq as number) : 0;
  if (role === 'muted') await must(owner, 'PUT', `/rooms/${room}/members/${actor}/mute`, { seconds: 600 });
  if (role === 'outsider' && needsOwn) await must(auth, 'POST', `/rooms/${room}/leave`);
  if (role === 'banned') await must(owner, 'POST', `/rooms/${room}/bans`, { user: actor });
  if ((role === 'administrator' || role === 'apiKey') && needsOwn) await must(owner, 'DELETE', `/rooms/${room}/members/${encodeURIComponent(actor)}`);
  return { room, actor, auth, cw: room, peerSeq, ownSeq, target: PEER, fresh };
}

/** The WebSocket frame and REST request of an action. */
function request(row: Row, f: Fixture): { frame: Record<string, unknown>; method: string; path: string; body?: unknown } {
  const r = `/api/v1/rooms/${f.room}`;
  switch (row.action) {
    case 'history':
    case 'historyChannel':
      return { frame: { cmd: 'history', room: f.room }, method: 'GET', path: `${r}/messages` };
    case 'send':
      return { frame: { cmd: 'send', room: f.room, text: 'new' }, method: 'POST', path: `${r}/messages`, body: { text: 'new' } };
    case 'editOwn':
    case 'editOther': {
      const target = row.action === 'editOwn' ? f.ownSeq : f.peerSeq;
      return { frame: { cmd: 'edit', room: f.room, target, text: 'edited' }, method: 'PATCH', path: `${r}/messages/${target}`, body: { text: 'edited' } };
    }
    case 'deleteOwn':
    case 'deleteOther': {
      const target = row.action === 'deleteOwn' ? f.ownSeq : f.peerSeq;
      return { frame: { cmd: 'delete', room: f.room, target }, method: 'DELETE', path: `${r}/messages/${target}` };
    }
    case 'react':
      return {
        frame: { cmd: 'react', room: f.room, target: f.peerSeq, emoji: 'ok' },
        method: 'POST',
        path: `${r}/messages/${f.peerSeq}/reactions`,
        body: { emoji: 'ok' },
      };
    case 'invite':
    case 'inviteChannel':
      return { frame: { cmd: 'invite', room: f.room, user: f.fresh }, method: 'POST', path: `${r}/members`, body: { user: f.fresh } };
    case 'kick':
      return { frame: { cmd: 'kick', room: f.room, user: f.target }, method: 'DELETE', path: `${r}/members/${f.target}` };
    case 'ban':
      return { frame: { cmd: 'ban', room: f.room, user: f.target }, method: 'POST', path: `${r}/bans`, body: { user: f.target } };
    case 'mute':
      return { frame: { cmd: 'mute', room: f.room, user: f.target, seconds: 60 }, method: 'PUT', path: `${r}/members/${f.target}/mute`, body: { seconds: 60 } };
    case 'setRole':
      return {
        frame: { cmd: 'role', room: f.room, user: f.target, role: 'admin' },
        method: 'PATCH',
        path: `${r}/members/${f.target}`,
        body: { role: 'admin' },
      };
    case 'update':
      return { frame: { cmd: 'update', room: f.room, name: 'Renamed' }, method: 'PATCH', path: r, body: { name: 'Renamed' } };
    case 'destroy':
      return { frame: { cmd: 'destroy', room: f.room }, method: 'DELETE', path: r };
    case 'joinChannel':
    case 'joinGroup':
      return { frame: { cmd: 'join', room: f.room }, method: 'POST', path: `${r}/join` };
    case 'typing':
      return { frame: { cmd: 'typing', room: f.room }, method: 'POST', path: `${r}/typing`, body: {} };
    case 'read':
      return { frame: { cmd: 'read', room: f.room, seq: 1 }, method: 'PUT', path: `${r}/read`, body: { seq: 1 } };
    case 'presence':
      return { frame: { cmd: 'presence', room: f.room }, method: 'GET', path: `${r}/presence` };
    case 'search':
      return { frame: { cmd: 'search', query: 'hello', room: f.room }, method: 'GET', path: `/api/v1/search?query=hello&room=${f.room}` };
    case 'sendThread':
      return {
        frame: { cmd: 'send', room: f.room, text: 'in thread', thread: f.peerSeq },
        method: 'POST',
        path: `${r}/messages`,
        body: { text: 'in thread', thread: f.peerSeq },
      };
    case 'threadHistory':
      return { frame: { cmd: 'history', room: f.room, thread: f.peerSeq }, method: 'GET', path: `${r}/messages?thread=${f.peerSeq}` };
    case 'message':
      return { frame: { cmd: 'message', room: f.room, seq: f.peerSeq }, method: 'GET', path: `${r}/messages/${f.peerSeq}` };
    case 'versions':
      return { frame: { cmd: 'versions', room: f.room, seq: f.peerSeq }, method: 'GET', path: `${r}/messages/${f.peerSeq}/versions` };
    case 'pins':
      return { frame: { cmd: 'pins', room: f.room }, method: 'GET', path: `${r}/pins` };
    case 'pin':
      return { frame: { cmd: 'pin', room: f.room, seq: f.peerSeq }, method: 'PUT', path: `${r}/pins/${f.peerSeq}` };
    case 'unpin':
      return { frame: { cmd: 'unpin', room: f.room, seq: f.peerSeq }, method: 'DELETE', path: `${r}/pins/${f.peerSeq}` };
    case 'notifications':
      return { frame: { cmd: 'notifications', room: f.room, level: 'all' }, method: 'PUT', path: `${r}/notifications`, body: { level: 'all' } };
    case 'settings':
      return { frame: { cmd: 'settings', room: f.room, mentionAll: 'members' }, method: 'PATCH', path: `${r}/settings`, body: { mentionAll: 'members' } };
  }
}

let frameId = 0;

/** An authenticated raw WebSocket of the user (null when `auth` is refused, with the code). */
function socketOf(user: string, auth: string): Promise<RawSocket | null> {
  let p = sockets.get(user);
  if (!p) {
    p = RawSocket.open(s.wsUrl).then(async (ws) => {
      const reply = await ws.call({ id: ++frameId, cmd: 'auth', token: auth });
      if (reply.ok) return ws;
      refusals.set(user, (reply.error as { code: Outcome }).code);
      ws.close();
      return null;
    });
    sockets.set(user, p);
  }
  return p;
}
const refusals = new Map<string, Outcome>();

async function overWs(row: Row, f: Fixture): Promise<Outcome> {
  const ws = await socketOf(f.actor, f.auth as string);
  if (!ws) return refusals.get(f.actor)!;
  const reply = await ws.call({ id: ++frameId, ...request(row, f).frame });
  return reply.ok ? 'ok' : (reply.error as { code: Outcome }).code;
}

async function overRest(row: Row, f: Fixture): Promise<Outcome> {
  const req = request(row, f);
  const r = await call(f.auth, req.method, req.path, req.body);
  return r.status < 300 ? 'ok' : (r.body.error as { code: Outcome }).code;
}

/** A raw MQTT client of the user, subscribed to its inbox (null when the CONNECT is refused). */
function peerOf(user: string, auth: string): Promise<Chat21Peer | null> {
  let p = peers.get(user);
  if (!p) {
    p = Chat21Peer.connect(s.mqttUrl, user, auth).catch((err: Error) => {
      if (!/not authorized/i.test(err.message)) throw err;
      refusals.set(`mqtt:${user}`, 'forbidden');
      return null;
    });
    peers.set(user, p);
  }
  return p;
}

/** A publish's outcome: its success publication, or the error reply naming its topic. */
async function published(peer: Chat21Peer, topic: string, body: unknown, success: (t: string, b: Record<string, unknown>) => boolean): Promise<Outcome> {
  await peer.publish(topic, body);
  let out: Outcome | null = null;
  await waitFor(
    () => {
      for (const r of peer.received) {
        if (r.topic.endsWith('/errors/clienterror') && r.body.topic === topic) out = r.body.code as Outcome;
        else if (success(r.topic, r.body)) out = 'ok';
      }
      return out !== null;
    },
    5000,
    `outcome of ${topic}`,
  );
  return out!;
}

async function overChat21(row: Row, f: Fixture): Promise<Outcome> {
  const auth = f.auth as string;
  const rest = async (method: string, path: string, body?: unknown): Promise<Outcome> => {
    const r = await call(auth, method, `/api/${APP}${path}`, body);
    return r.status < 300 ? 'ok' : (r.body.code as Outcome);
  };
  switch (row.action) {
    case 'history':
    case 'historyChannel':
      return rest('GET', `/${f.actor}/conversations/${f.cw}/messages`);
    case 'invite':
    case 'inviteChannel':
      return rest('POST', `/groups/${f.room}/members`, { member_id: f.fresh });
    case 'kick':
      return rest('DELETE', `/groups/${f.room}/members/${f.target}`);
    case 'update':
      return rest('PUT', `/groups/${f.room}`, { group_name: 'Renamed' });
    default:
      break;
  }
  const peer = await peerOf(f.actor, auth);
  if (!peer) return refusals.get(`mqtt:${f.actor}`)!;
  const base = `apps/${APP}/users/${f.actor}`;
  if (row.action === 'send') {
    const text = `sent ${++counter}`;
    return published(
      peer,
      `apps/${APP}/outgoing/users/${f.actor}/messages/${f.cw}/outgoing`,
      { text, type: 'text', channel_type: f.cw === f.room ? 'group' : 'direct' },
      (t, b) => t === `${base}/messages/${f.cw}/clientadded` && b.text === text,
    );
  }
  if (row.action === 'read') {
    return published(peer, `${base}/conversations/${f.cw}/update`, { is_new: false }, (t) => t === `${base}/conversations/${f.cw}/clientupdated`);
  }
  throw new Error(`no Chat21 form for ${row.action}`);
}

const RUN: Record<Transport, (row: Row, f: Fixture) => Promise<Outcome>> = { ws: overWs, rest: overRest, chat21: overChat21 };

/** Runs tasks with at most `n` at a time. */
async function pool<T>(tasks: Array<() => Promise<T>>, n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

describe('permission table', () => {
  for (const transport of TRANSPORTS) {
    it(`every action gives every role the table's outcome over ${transport}`, async () => {
      const cells: Array<{ row: Row; role: Role; want: Outcome }> = [];
      for (const row of TABLE) {
        for (const role of ROLES) {
          const want = outcome(row, role, transport);
          if (want !== 'n/a') cells.push({ row, role, want });
        }
      }
      const got = await pool(
        cells.map((c) => async () => RUN[transport](c.row, await setup(c.row, c.role))),
        32,
      );
      const wrong = cells.map((c, i) => ({ cell: `${c.row.action} by ${c.role}`, want: c.want, got: got[i] })).filter((x) => x.got !== x.want);
      expect(wrong).toEqual([]);
      expect(cells.length).toBeGreaterThan(transport === 'chat21' ? 50 : 150);
    });
  }

  it('docs/protocol.md shows this table', () => {
    const path = new URL('../docs/protocol.md', import.meta.url);
    const doc = readFileSync(path, 'utf8');
    const begin = '<!-- permissions:begin (generated from test/permissions/table.ts) -->\n';
    const end = '\n<!-- permissions:end -->';
    const i = doc.indexOf(begin);
    const j = doc.indexOf(end);
    expect(i >= 0 && j > i, 'docs/protocol.md has the permission markers').toBe(true);
    const want = renderPermissions();
    if (process.env.UPDATE_DOCS) writeFileSync(path, doc.slice(0, i + begin.length) + want + doc.slice(j));
    else expect(doc.slice(i + begin.length, j), 'run UPDATE_DOCS=1 npx vitest run test/permissions.test.ts').toBe(want);
  });
});
