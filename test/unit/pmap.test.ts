import { describe, expect, it } from 'vitest';
import { deepHash, hashKey } from '../../src/zone/name-hash.js';
import { PersistentMap, type MapEntry } from '../../src/zone/pmap.js';
import { nameKey } from '../../src/wire/name.js';
import { prng } from '../support/corpus.js';

/** A value filed under its key, as the zone's names are. */
interface Entry<T> extends MapEntry {
  value: T;
}
const entry = <T>(key: string, value: T): Entry<T> => ({ key, hash: hashKey(key), value });
/** The value filed under `key` in a map or draft. */
const at = <T>(m: { get(key: string): Entry<T> | undefined }, key: string): T | undefined => m.get(key)?.value;

/** Two different keys with the same hash, found by the birthday bound. */
function collidingPair(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const k = `k${i}`;
    const h = hashKey(k);
    const other = seen.get(h);
    if (other !== undefined) return [other, k];
    seen.set(h, k);
  }
}

describe('PersistentMap', () => {
  it('matches a native Map through random sets and deletes, and keeps every sealed version intact', () => {
    const rand = prng(7);
    const model = new Map<string, number>();
    let map = PersistentMap.empty<Entry<number>>();
    const versions: [PersistentMap<Entry<number>>, Map<string, number>][] = [];
    for (let round = 0; round < 40; round++) {
      const d = map.edit();
      for (let i = 0; i < 500; i++) {
        const k = `name${Math.floor(rand() * 3000)}.example.com.`;
        if (rand() < 0.3) {
          d.delete(k);
          model.delete(k);
        } else {
          const v = Math.floor(rand() * 1e6);
          d.set(entry(k, v));
          model.set(k, v);
        }
      }
      map = d.done();
      versions.push([map, new Map(model)]);
      expect(map.size).toBe(model.size);
    }
    for (const [v, m] of versions) {
      expect(v.size).toBe(m.size);
      for (const [k, val] of m) expect(at(v, k)).toBe(val);
      expect(new Map([...v.entries()].map(([k, e]) => [k, e.value]))).toEqual(m);
      for (const [k, e] of v.entries()) expect(e.key).toBe(k);
    }
    expect(map.get('absent')).toBeUndefined();
  });

  it('keeps keys whose hashes collide apart', () => {
    const [a, b] = collidingPair();
    expect(hashKey(a)).toBe(hashKey(b));
    expect(deepHash(a)).not.toBe(deepHash(b));
    const d = PersistentMap.empty<Entry<string>>().edit();
    d.set(entry(a, 'A')).set(entry(b, 'B')).set(entry('other', 'O'));
    const v1 = d.done();
    expect([at(v1, a), at(v1, b), v1.size]).toEqual(['A', 'B', 3]);
    const d2 = v1.edit();
    d2.set(entry(b, 'B2')).delete(a);
    const v2 = d2.done();
    expect([at(v2, a), at(v2, b), v2.size]).toEqual([undefined, 'B2', 2]);
    expect([at(v1, a), at(v1, b)]).toEqual(['A', 'B']);
  });

  it('does not change a sealed version through a draft that goes on editing', () => {
    const d = PersistentMap.empty<Entry<number>>().edit();
    for (let i = 0; i < 100; i++) d.set(entry(`k${i}`, i));
    const sealed = d.done();
    for (let i = 0; i < 100; i++) d.set(entry(`k${i}`, -i));
    d.delete('k5');
    const later = d.done();
    expect(at(sealed, 'k7')).toBe(7);
    expect(at(sealed, 'k5')).toBe(5);
    expect(at(later, 'k7')).toBe(-7);
    expect(later.has('k5')).toBe(false);
    expect([sealed.size, later.size]).toEqual([100, 99]);
  });

  it("finds every name when thousands share a service's hash bits and part only on deepHash", () => {
    // 30,000 names under one service's labels: their 32-bit hashes share 15 bits, so many agree
    // on all 32 and the map parts them on deepHash. A native Map is the model.
    const rand = prng(3);
    const model = new Map<string, number>();
    let map = PersistentMap.empty<Entry<number>>();
    let deep = 0;
    const seen = new Map<number, string>();
    for (let round = 0; round < 6; round++) {
      const d = map.edit();
      for (let i = 0; i < 10000; i++) {
        const k = nameKey(`web.shop.fed.svc.h${Math.floor(rand() * 30000)}.example.com.`);
        const other = seen.get(hashKey(k));
        if (other !== undefined && other !== k) deep++;
        seen.set(hashKey(k), k);
        if (rand() < 0.25) {
          d.delete(k);
          model.delete(k);
        } else {
          d.set(entry(k, i));
          model.set(k, i);
        }
      }
      map = d.done();
    }
    expect(deep).toBeGreaterThan(100);
    expect(map.size).toBe(model.size);
    for (const [k, v] of model) expect(at(map, k)).toBe(v);
    expect(new Set(map.keys())).toEqual(new Set(model.keys()));
    expect(map.get(nameKey('web.shop.fed.svc.h30001.example.com.'))).toBeUndefined();
  });
});
