// PersistentMap against a native Map, with hashes squeezed into a few values so that every path
// of the trie is taken: keys that agree in the entry's hash and part on deepHash (the deep levels),
// keys equal in both (collision nodes), slot 31 of a level (a bitmap with its sign bit set).
// Versions are kept and checked after later edits; several drafts edit from one version at once,
// drafts go on editing after done(), and maps are emptied (the shared empty root) and filled again.
import { describe, expect, it, vi } from 'vitest';
import { prng } from '../support/corpus.js';

vi.mock('../../src/zone/name-hash.js', async (original) => {
  const real = await original<typeof import('../../src/zone/name-hash.js')>();
  // Four entry hashes (one with every bit set, one with only the sign bit) and eight deep
  // hashes: 32 classes of keys that agree in both, most keys sharing the entry hash of many.
  const HASHES = [0, -1, 0x80000000 | 0, 0x7fffffff];
  const DEEP = [0, -1, 1, 0x40000000, 0x80000000 | 0, 0x12345678, 31, 0x7c00];
  return {
    ...real,
    hashKey: (key: string) => HASHES[(real.hashKey(key) >>> 0) % HASHES.length],
    deepHash: (key: string) => DEEP[(real.deepHash(key) >>> 0) % DEEP.length],
  };
});

const { deepHash, hashKey } = await import('../../src/zone/name-hash.js');
const { PersistentMap } = await import('../../src/zone/pmap.js');
type Map_ = import('../../src/zone/pmap.js').PersistentMap<Entry>;
type Draft = import('../../src/zone/pmap.js').MapDraft<Entry>;

interface Entry {
  readonly key: string;
  readonly hash: number;
  readonly value: number;
}
const entry = (key: string, value: number): Entry => ({ key, hash: hashKey(key), value });

/** The map holds exactly the model: every key of the universe looked up, size, and a walk giving each entry once. */
function same(what: string, m: Map_ | Draft, model: ReadonlyMap<string, number>, universe: readonly string[]): void {
  expect(m.size, `${what}: size`).toBe(model.size);
  for (const k of universe) expect(m.get(k)?.value, `${what}: ${k}`).toBe(model.get(k));
  if (m instanceof PersistentMap) {
    const walked = [...m.entries()];
    expect(walked.length, `${what}: entries walked`).toBe(model.size);
    for (const [k, e] of walked) {
      expect(e.key, what).toBe(k);
      expect(model.get(k), `${what}: walked ${k}`).toBe(e.value);
    }
    expect(new Set(m.keys()).size, `${what}: distinct keys`).toBe(model.size);
  }
}

describe('PersistentMap, differential against a Map', () => {
  it.each([1, 2, 3, 4, 5, 6])('keeps every version as it was sealed through branching drafts, deletes down to empty and collisions (seed %i)', (seed) => {
    const rand = prng(seed);
    const universe = Array.from({ length: 400 }, (_, i) => `k${i}.example.com.`);
    const pick = <T>(l: readonly T[]) => l[Math.floor(rand() * l.length)];
    const versions: { map: Map_; model: Map<string, number> }[] = [{ map: PersistentMap.empty<Entry>(), model: new Map() }];
    const drafts: { draft: Draft; model: Map<string, number> }[] = [];
    let value = 0;
    for (let step = 0; step < 4000; step++) {
      const r = rand();
      if (drafts.length === 0 || r < 0.03) {
        // A new draft from any version kept, the newest most often.
        const v = rand() < 0.5 ? versions[versions.length - 1] : pick(versions);
        drafts.push({ draft: v.map.edit(), model: new Map(v.model) });
        if (drafts.length > 4) drafts.shift();
        continue;
      }
      const d = pick(drafts);
      if (r < 0.08) {
        // Sealed: the draft goes on editing.
        versions.push({ map: d.draft.done(), model: new Map(d.model) });
      } else if (r < 0.1) {
        // Everything deleted (the map goes back to the shared empty root), in random order.
        for (const k of [...d.model.keys()].sort(() => rand() - 0.5)) d.draft.delete(k);
        d.model.clear();
      } else if (r < 0.45) {
        const k = pick(universe);
        d.draft.delete(k);
        d.model.delete(k);
      } else {
        const k = pick(universe);
        const v = ++value;
        d.draft.set(entry(k, v));
        d.model.set(k, v);
      }
      if (step % 50 === 0) same(`seed ${seed} step ${step}, draft`, d.draft, d.model, universe);
      if (step % 200 === 0) {
        const i = Math.floor(rand() * versions.length);
        same(`seed ${seed} step ${step}, version ${i}`, versions[i].map, versions[i].model, universe);
      }
    }
    versions.forEach((v, i) => same(`seed ${seed}, version ${i} at the end`, v.map, v.model, universe));
    for (const d of drafts) same(`seed ${seed}, draft at the end`, d.draft.done(), d.model, universe);
    // The shared empty root was never written.
    const empty = PersistentMap.empty<Entry>();
    expect(empty.size).toBe(0);
    expect([...empty.keys()]).toEqual([]);
    for (const k of universe) expect(empty.get(k)).toBeUndefined();
  });

  it('walks a set of keys in one order whatever the history, but for keys equal in both hashes', () => {
    const rand = prng(9);
    const keys = Array.from({ length: 300 }, (_, i) => `w${i}.example.com.`);
    const order = (m: Map_) => [...m.keys()];
    const build = (ks: string[]) => {
      const d = PersistentMap.empty<Entry>().edit();
      for (const k of ks) d.set(entry(k, 0));
      return d.done();
    };
    const a = build(keys);
    // Another history: every key in another order, with others added and deleted on the way.
    const d = PersistentMap.empty<Entry>().edit();
    for (const k of [...keys].sort(() => rand() - 0.5)) {
      d.set(entry(k, 1));
      if (rand() < 0.5) d.set(entry(`x${k}`, 1));
    }
    for (let i = 0; i < 300; i++) d.delete(`xw${i}.example.com.`);
    const b = d.done();
    expect(b.size).toBe(a.size);
    // Keys in one collision node may come in any order; everything else in one.
    const cls = (k: string) => `${hashKey(k)} ${deepHash(k)}`;
    const classes = (ks: string[]) => ks.map(cls);
    expect(classes(order(b))).toEqual(classes(order(a)));
    expect(new Set(order(b))).toEqual(new Set(keys));
  });
});
