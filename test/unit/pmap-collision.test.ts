// Keys that agree in both of the map's hashes. The hashes start from secrets of the process, so
// here both hashes give the keys "c0", "c1" and "c2" one value each.
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../src/zone/name-hash.js', async (original) => {
  const real = await original<typeof import('../../src/zone/name-hash.js')>();
  const colliding = (key: string) => /^c[0-2]$/.test(key);
  return {
    hashKey: (key: string) => (colliding(key) ? 0x1234 : real.hashKey(key)),
    deepHash: (key: string) => (colliding(key) ? 7 : real.deepHash(key)),
  };
});

const { hashKey } = await import('../../src/zone/name-hash.js');
const { PersistentMap } = await import('../../src/zone/pmap.js');

interface Entry {
  key: string;
  hash: number;
  value: string;
}
const entry = (key: string, value: string): Entry => ({ key, hash: hashKey(key), value });

describe('PersistentMap, keys equal in both hashes', () => {
  it('keeps them side by side, replaces and deletes each alone, and leaves sealed versions as they were', () => {
    const [a, b, c] = ['c0', 'c1', 'c2'];
    const d = PersistentMap.empty<Entry>().edit();
    for (let i = 0; i < 2000; i++) d.set(entry(`n${i}`, `v${i}`));
    d.set(entry(a, 'A')).set(entry(b, 'B'));
    const v1 = d.done();
    const d2 = v1.edit();
    d2.set(entry(c, 'C')).set(entry(a, 'A2')).delete(b);
    const v2 = d2.done();
    const d3 = v2.edit();
    d3.delete(a).delete(c);
    const v3 = d3.done();
    const values = (m: typeof v1) => [a, b, c].map((k) => m.get(k)?.value);
    expect(values(v1)).toEqual(['A', 'B', undefined]);
    expect(values(v2)).toEqual(['A2', undefined, 'C']);
    expect(values(v3)).toEqual([undefined, undefined, undefined]);
    expect([v1.size, v2.size, v3.size]).toEqual([2002, 2002, 2000]);
    expect(v2.get('n1999')?.value).toBe('v1999');
    expect([...v2.keys()].filter((k) => [a, b, c].includes(k)).sort()).toEqual([a, c].sort());
  });
});
