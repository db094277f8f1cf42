// The web app's own logic, without a browser: its form rules agree with the server's schemas,
// and history folds edits, deletes and reactions into the messages they target.
import { describe, expect, it } from 'vitest';
import { USER_ID_PATTERN } from '../src/protocol/schema.js';
import { USERNAME_PATTERN, RegisterBody } from '../src/accounts/schema.js';
import { Commands } from '../src/protocol/schema.js';
import type { Message } from '../src/protocol/schema.js';
import { fold } from '../web/src/fold.js';
import { checkUserId, checkUsername, LIMITS, USER_ID_RE, USERNAME_RE } from '../web/src/validate.js';
import { initials } from '../web/src/format.js';

describe('the web app\'s input rules', () => {
  it('are the server\'s', () => {
    expect(USER_ID_RE.source).toBe(USER_ID_PATTERN);
    expect(USERNAME_RE.source).toBe(USERNAME_PATTERN);
    expect(LIMITS.roomName).toBe(Commands.create.properties.name.maxLength);
    expect(LIMITS.topic).toBe(Commands.create.properties.topic.maxLength);
    expect(LIMITS.passwordMin).toBe(RegisterBody.properties.password.minLength);
    expect(LIMITS.passwordMax).toBe(RegisterBody.properties.password.maxLength);
    expect(LIMITS.displayName).toBe(RegisterBody.properties.name.maxLength);
    expect(LIMITS.reason).toBe(Commands.kick.properties.reason.maxLength);
  });

  it('name what is wrong', () => {
    expect(checkUsername('Al')).toMatch(/3/);
    expect(checkUsername('Alice')).toMatch(/lowercase/);
    expect(checkUsername('alice')).toBeNull();
    expect(checkUserId('bob smith')).toMatch(/user id/);
    expect(checkUserId('bob@example.com')).toBeNull();
  });

  it('make avatar initials from names', () => {
    expect(initials('Alice Liddell')).toBe('AL');
    expect(initials('bob')).toBe('B');
    expect(initials('  ')).toBe('?');
    expect(initials('élodie_martin')).toBe('ÉM');
  });
});

const base = { room: 'r', name: 'N', ts: 1 } as const;
const msg = (m: Partial<Message> & Pick<Message, 'seq' | 'kind' | 'user'>): Message => ({ ...base, ...m });

describe('folding history', () => {
  it('applies edits, deletes and reactions to their target, in seq order whatever the arrival order', () => {
    const history = [
      msg({ seq: 5, kind: 'reaction', user: 'b', target: 1, data: { emoji: '👍' } }),
      msg({ seq: 1, kind: 'text', user: 'a', text: 'helo' }),
      msg({ seq: 2, kind: 'text', user: 'b', text: 'bye' }),
      msg({ seq: 3, kind: 'edit', user: 'a', target: 1, text: 'hello' }),
      msg({ seq: 4, kind: 'delete', user: 'b', target: 2 }),
      msg({ seq: 6, kind: 'reaction', user: 'a', target: 1, data: { emoji: '👍' } }),
      msg({ seq: 7, kind: 'reaction', user: 'b', target: 1, data: { emoji: '👍', remove: true } }),
      msg({ seq: 8, kind: 'reaction', user: 'b', target: 1, data: { emoji: '🎉' } }),
      msg({ seq: 9, kind: 'edit', user: 'b', target: 2, text: 'too late' }),
    ];
    const shown = fold(history);
    expect(shown.map((s) => s.seq)).toEqual([1, 2]);
    expect(shown[0]).toMatchObject({ text: 'hello', edited: true, deleted: false });
    expect(shown[0]!.reactions).toEqual([{ emoji: '👍', users: ['a'] }, { emoji: '🎉', users: ['b'] }]);
    expect(shown[1]).toMatchObject({ text: '', deleted: true });
  });

  it('tells server posts apart by their mark only, not by their author\'s id or name', () => {
    const shown = fold([
      msg({ seq: 1, kind: 'text', user: 'system', name: 'System', text: 'real', system: true }),
      msg({ seq: 2, kind: 'text', user: 'system', name: 'System', text: 'forged', data: { system: true } }),
    ]);
    expect(shown.map((s) => [s.text, s.server])).toEqual([['real', true], ['forged', false]]);
  });

  it('leaves out changes whose target is not loaded yet', () => {
    const shown = fold([msg({ seq: 10, kind: 'edit', user: 'a', target: 3, text: 'x' }), msg({ seq: 11, kind: 'text', user: 'a', text: 'y' })]);
    expect(shown.map((s) => [s.seq, s.text])).toEqual([[11, 'y']]);
  });
});
