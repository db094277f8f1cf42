// The Bus port's behaviour suite: every backend runs it (see bus.*.test.ts).
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';
import { waitFor } from '../wait.js';

export function busConformance(name: string, open: () => Promise<Bus>): void {
  describe(`Bus conformance: ${name}`, () => {
    let bus: Bus;
    let got: Array<[string, BusMessage]>;
    beforeEach(async () => {
      bus = await open();
      got = [];
      bus.onMessage((t, m) => got.push([t, m]));
    });
    afterEach(async () => {
      await bus.close();
    });

    it('delivers published messages of subscribed topics in publish order', async () => {
      await bus.subscribe('r:a');
      await bus.subscribe('r:a');
      for (let i = 1; i <= 50; i++) bus.publish('r:a', { frame: `f${i}`, seq: i });
      await waitFor(() => got.length === 50);
      expect(got.map(([t, m]) => [t, m.seq])).toEqual(Array.from({ length: 50 }, (_, i) => ['r:a', i + 1]));
    });

    it('does not deliver topics that are not (or no longer) subscribed', async () => {
      await bus.subscribe('r:b');
      bus.publish('r:other', { frame: 'x' });
      bus.publish('r:b', { frame: 'y' });
      await waitFor(() => got.length === 1);
      await bus.unsubscribe('r:b');
      bus.publish('r:b', { frame: 'z' });
      await bus.subscribe('r:sync');
      bus.publish('r:sync', { frame: 'sync' });
      await waitFor(() => got.length === 2);
      expect(got.map(([, m]) => m.frame)).toEqual(['y', 'sync']);
    });

    it('carries control instructions intact', async () => {
      await bus.subscribe('u:x');
      bus.publish('u:x', { frame: '{}', control: { op: 'follow', room: 'r', after: 4 } });
      await waitFor(() => got.length === 1);
      expect(got[0]![1].control).toEqual({ op: 'follow', room: 'r', after: 4 });
    });

    it('carries the alternative frame and the users an event skips intact', async () => {
      await bus.subscribe('r:m');
      bus.publish('r:m', { frame: '{"a":1}', seq: 3, hiddenFor: 'bob', alt: '{"b":2}' });
      bus.publish('r:m', { frame: '{"typing":1}', except: ['carol', 'dave'] });
      await waitFor(() => got.length === 2);
      expect(got.map(([, m]) => m)).toEqual([
        { frame: '{"a":1}', seq: 3, hiddenFor: 'bob', alt: '{"b":2}' },
        { frame: '{"typing":1}', except: ['carol', 'dave'] },
      ]);
    });

    it('presence: online while any connection remains, reporting transitions once', async () => {
      const p = bus.presence;
      expect(await p.connect('alice', 'c1')).toBe(true);
      expect(await p.connect('alice', 'c2')).toBe(false);
      expect(await p.online(['alice', 'bob'])).toEqual(['alice']);
      expect(await p.disconnect('alice', 'c1')).toBe(false);
      expect(await p.disconnect('alice', 'c1')).toBe(false);
      expect(await p.online(['alice'])).toEqual(['alice']);
      expect(await p.disconnect('alice', 'c2')).toBe(true);
      expect(await p.online(['alice', 'bob'])).toEqual([]);
    });
  });
}
