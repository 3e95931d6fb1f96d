// The pace of services too big to rebuild within a slice (src/federation/pacer.ts).
import { describe, expect, it } from 'vitest';
import { FORGET_MS, PACE, PACE_FROM_MS, PACE_MAX_MS, Pacer } from '../../src/federation/pacer.js';
import { eventually } from '../support/kube-harness.js';

const pacer = () => {
  const released: string[][] = [];
  const p = new Pacer((keys) => released.push(keys));
  return { p, released };
};

describe('Pacer', () => {
  it('paces a service after two slow rebuilds in a row, not after one (a collection landing in it)', () => {
    const { p } = pacer();
    const now = 1000;
    expect(p.rebuilt('ns/big', 40, now)).toBe(0);
    expect(p.hold('ns/big', now + 1)).toBe(false);
    // A fast rebuild in between starts the count again.
    expect(p.rebuilt('ns/big', PACE_FROM_MS - 1, now)).toBe(0);
    expect(p.rebuilt('ns/big', 40, now)).toBe(0);
    expect(p.pacedCount).toBe(0);
    // Twice in a row: it waits PACE times the shorter of the two.
    expect(p.rebuilt('ns/big', 30, now)).toBe(PACE * 30);
    expect(p.pacedCount).toBe(1);
    expect(p.hold('ns/big', now + PACE * 30 - 1)).toBe(true);
    expect(p.hold('ns/big', now + PACE * 30)).toBe(false);
    // Other services are never held.
    expect(p.hold('ns/small', now + 1)).toBe(false);
    // Fast again: no longer paced.
    p.rebuilt('ns/big', 1, now);
    expect(p.pacedCount).toBe(0);
    expect(p.hold('ns/big', now + 1)).toBe(false);
    p.close();
  });

  it('forgets services no longer rebuilt (deleted ones among them): its maps do not grow with every service ever slow', () => {
    const { p } = pacer();
    // A tenant creating and deleting big services under ever new names: each deletion is slow too.
    for (let i = 0; i < 1000; i++) {
      p.rebuilt(`ns/big-${i}`, 40, i);
      p.rebuilt(`ns/big-${i}`, 40, i + 1);
    }
    expect(p.pacedCount).toBe(1000);
    // One changed without pause at the longest wait stays paced from one rebuild to the next.
    p.rebuilt('ns/huge', 2000, 0);
    let end = 2000;
    expect(p.rebuilt('ns/huge', 2000, end)).toBe(PACE_MAX_MS);
    for (; end < FORGET_MS * 3; ) {
      end += PACE_MAX_MS + 2000;
      p.rebuilt('ns/huge', 2000, end);
      expect(p.hold('ns/huge', end + 1)).toBe(true);
    }
    // Long after their last rebuild, the deleted ones are no longer counted, nor held in memory.
    expect(p.pacedCount).toBe(1);
    expect((p as unknown as { slow: Map<string, unknown> }).slow.size).toBe(1);
    p.close();
  });

  it('paces every paced service by the last one rebuilt: however many, together a bounded share', () => {
    const { p } = pacer();
    for (const key of ['ns/a', 'ns/b', 'ns/c']) {
      p.rebuilt(key, 20, 0);
      p.rebuilt(key, 20, 0);
    }
    // a rebuilt at 200 (its time), taking 30 ms: every paced service waits as a does after it,
    // PACE times the shorter of its last two (200 ms).
    expect(p.hold('ns/a', 200)).toBe(false);
    p.rebuilt('ns/a', 30, 230);
    expect(p.hold('ns/b', 231)).toBe(true);
    expect(p.hold('ns/c', 231)).toBe(true);
    expect(p.hold('ns/b', 429)).toBe(true);
    expect(p.hold('ns/b', 430)).toBe(false);
    // Other services are never held.
    expect(p.hold('ns/small', 300)).toBe(false);
    p.close();
  });

  it('waits at most PACE_MAX_MS', () => {
    const { p } = pacer();
    p.rebuilt('ns/huge', 5000, 0);
    expect(p.rebuilt('ns/huge', 4000, 0)).toBe(PACE_MAX_MS);
    expect(p.hold('ns/huge', PACE_MAX_MS - 1)).toBe(true);
    expect(p.hold('ns/huge', PACE_MAX_MS)).toBe(false);
    p.close();
  });

  it('releases a held service once its time has come, once however often it was held, and all at once on demand', async () => {
    const { p, released } = pacer();
    const end = performance.now();
    p.rebuilt('ns/a', 6, end);
    p.rebuilt('ns/a', 6, end);
    p.rebuilt('ns/b', 8, end);
    p.rebuilt('ns/b', 8, end);
    expect(p.hold('ns/a', performance.now())).toBe(true);
    expect(p.hold('ns/a', performance.now())).toBe(true);
    expect(p.hold('ns/b', performance.now())).toBe(true);
    expect(p.holds).toBe(2);
    expect(p.heldNow).toEqual(['ns/a', 'ns/b']);
    // a's own time comes after 60 ms, b's after 80 ms, and every paced service waits for the last
    // one's (b's): released together, in the order they were held.
    await eventually(() => released.flat(), (r) => r.length === 2, 'both released', 5000, 5);
    expect(released).toEqual([['ns/a', 'ns/b']]);
    expect(p.heldNow).toEqual([]);
    // Held again, then taken at once (a rebuild of everything): nothing is released later.
    p.rebuilt('ns/a', 6, performance.now());
    expect(p.hold('ns/a', performance.now())).toBe(true);
    expect(p.takeHeld()).toEqual(['ns/a']);
    await new Promise((r) => setTimeout(r, 100));
    expect(released.length).toBe(1);
    p.close();
  });

  it('holds a change that would give a paced service a name, or take one, until that service\'s time; its later changes with it', async () => {
    const { p, released } = pacer();
    const end = performance.now();
    // Nothing paced: nothing waits, nothing is held.
    expect(p.pacing(end)).toBe(false);
    expect(p.holdBehind('prod/a', ['svc/fed'], end)).toBe(false);
    p.rebuilt('svc/fed', 6, end);
    p.rebuilt('svc/fed', 6, end);
    expect(p.pacing(end + 1)).toBe(true);
    expect(p.waits('svc/fed', end + 1)).toBe(true);
    expect(p.waits('prod/a', end + 1)).toBe(false);
    // Only the paced services among those it would touch count.
    expect(p.holdBehind('prod/a', ['ns/small'], end + 1)).toBe(false);
    expect(p.holdBehind('prod/a', ['ns/small', 'svc/fed'], end + 1)).toBe(true);
    expect(p.heldBehind('prod/a')).toEqual(['svc/fed']);
    expect(p.heldNow).toEqual(['prod/a']);
    expect(p.holds).toBe(1);
    // A later change of prod/a waits with it, whatever it would touch.
    expect(p.hold('prod/a', end + 30)).toBe(true);
    expect(p.hold('prod/a', end + PACE * 6)).toBe(false);
    // Released when svc/fed's time comes (60 ms).
    await eventually(() => released.flat(), (r) => r.length === 1, 'prod/a released', 5000, 5);
    expect(released).toEqual([['prod/a']]);
    expect(p.heldBehind('prod/a')).toBeUndefined();
    expect(p.pacing()).toBe(false);
    // Held again, then rebuilt otherwise (from the cluster data as it is then): no longer held.
    const again = performance.now();
    p.rebuilt('svc/fed', 6, again);
    expect(p.holdBehind('prod/a', ['svc/fed'], again + 1)).toBe(true);
    p.rebuilt('prod/a', 1, again + 2);
    expect(p.heldNow).toEqual([]);
    expect(p.heldBehind('prod/a')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(released.length).toBe(1);
    p.close();
  });
  it('counts names made for a change held behind a paced service towards its own pace, without answering the change', () => {
    const { p } = pacer();
    const end = performance.now();
    p.rebuilt('svc/fed', 60, end);
    p.rebuilt('svc/fed', 60, end);
    // ns/big's names take 40 ms to make, and its change would give svc/fed a name: held behind it.
    expect(p.holdBehind('ns/big', ['svc/fed'], end + 1)).toBe(true);
    expect(p.spent('ns/big', 40, end + 41)).toBe(0);
    expect(p.heldNow).toEqual(['ns/big']);
    // Made again when released, and held again: now paced, it waits before its names are made.
    expect(p.spent('ns/big', 40, end + 100)).toBe(PACE * 40);
    expect(p.heldNow).toEqual(['ns/big']);
    expect(p.heldBehind('ns/big')).toEqual(['svc/fed']);
    expect(p.paceOf('ns/big')).toEqual({ rebuildMs: 40, waitMs: PACE * 40, waiting: true });
    expect(p.hold('ns/big', end + 101)).toBe(true);
    // No change of it is answered by names made and not set.
    expect(p.lastRebuilt('ns/big')).toBeUndefined();
    p.rebuilt('ns/big', 40, end + 2000);
    expect(p.lastRebuilt('ns/big')).toBe(end + 2000);
    expect(p.spent('ns/big', 40, end + 3000)).toBe(0);
    expect(p.lastRebuilt('ns/big')).toBe(end + 2000);
    expect(p.heldNow).toEqual([]);
    p.close();
  });
});
