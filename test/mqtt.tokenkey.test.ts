// Tokens of an existing Chat21 deployment: HS256 with its shared key (`chat21.tokenKey`,
// Chat21's default "tokenKey") and Chat21's own claims are accepted by the MQTT endpoint and
// the Chat21 REST API — and by nothing else.
import { SignJWT } from 'jose';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client/index.js';
import { removeDir } from './helpers.js';
import { APP, Chat21Peer, rest, startMqttServer } from './mqtt-helpers.js';

let s: Awaited<ReturnType<typeof startMqttServer>>;
beforeAll(async () => {
  s = await startMqttServer({ chat21: { tokenKey: 'tokenKey' } });
});
afterAll(async () => {
  await s.close();
  removeDir(s.dataDir);
});

/** A token shaped like chat21-server's test tokens. */
function chat21Token(user: string, key = 'tokenKey', exp: string | number = '1h', extra: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    scope: [
      `rabbitmq.read:*/*/apps.${APP}.users.${user}.*`,
      `rabbitmq.write:*/*/apps.${APP}.users.${user}.*`,
      `rabbitmq.write:*/*/apps.${APP}.outgoing.users.${user}.*`,
    ],
    client_id: user,
    cid: user,
    azp: user,
    user_id: user,
    app_id: APP,
    aud: ['rabbitmq', user],
    ...extra,
  })
    .setProtectedHeader({ alg: 'HS256', kid: 'tiledesk-key' })
    .setSubject(user)
    .setJti(`j-${user}`)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(key));
}

describe('chat21.tokenKey', () => {
  it("MQTT and the Chat21 REST API accept tokens signed with the Chat21 key, alongside Parley's own", async () => {
    const u1 = await Chat21Peer.connect(s.mqttUrl, 'USER1', await chat21Token('USER1'));
    const u2 = await Chat21Peer.connect(s.mqttUrl, 'USER2', await s.token('USER2'));
    await u1.send('USER2', 'signed with tokenKey');
    await u2.waitAdded((x) => x.text === 'signed with tokenKey' && x.status === 150);
    const r = await rest(s.url, await chat21Token('USER1'), 'GET', '/USER1/conversations');
    expect(r.status).toBe(200);
    expect(r.body.success).toBe(true);
    await u1.close();
    await u2.close();
  });

  it('a token signed with the Chat21 key but without exp is refused, as every token without exp is', async () => {
    const forever = await new SignJWT({ app_id: APP })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('USER4')
      .setIssuedAt()
      .sign(new TextEncoder().encode('tokenKey'));
    const r = await rest(s.url, forever, 'GET', '/USER4/conversations');
    expect(r.status).toBe(401);
    await expect(Chat21Peer.connect(s.mqttUrl, 'USER4', forever)).rejects.toThrow();
  });

  it('a wrong key, an expired token or the "none" algorithm is still refused; the key never makes an administrator', async () => {
    const wrong = await chat21Token('USER3', 'another-key');
    const expired = await chat21Token('USER3', 'tokenKey', Math.floor(Date.now() / 1000) - 60);
    for (const password of [wrong, expired]) {
      await expect(mqtt.connectAsync(s.mqttUrl, { username: 'JWT', password, reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(
        /Bad username or password|Not authorized|Connection refused/i,
      );
    }
    expect((await rest(s.url, wrong, 'GET', '/USER3/conversations')).status).toBe(401);
    // A parley_admin claim under the Chat21 key counts for nothing: not in Parley's API, not
    // over another owner's group.
    const admin = await chat21Token('USER3', 'tokenKey', '1h', { parley_admin: true });
    const res = await fetch(`${s.url}/api/v1/bans`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(401);
    const owner = await chat21Token('USER1');
    const made = await rest(s.url, owner, 'POST', '/groups', { group_id: 'group-tk', group_name: 'Mine', group_members: { USER2: 1 } });
    expect(made.status).toBeLessThan(300);
    const rename = await rest(s.url, admin, 'PUT', '/groups/group-tk', { group_name: 'Taken over' });
    expect(rename.status).toBe(403);
  });

  it("Parley's own WebSocket protocol does not take the Chat21 key", async () => {
    const c = new ParleyClient({ url: s.url, token: await chat21Token('USER4'), WebSocket: WebSocket as never });
    await expect(c.connect()).rejects.toMatchObject({ code: 'unauthorized' });
    c.close();
  });
});
