// ShardedMap answers as one Map would: the same random operations on both give the same results.
import { describe, expect, it } from 'vitest';
import { ShardedMap } from '../../src/sharded-map.js';

describe('ShardedMap', () => {
  it('gets, sets, deletes and counts as a Map does, over keys like the zone keys it holds, its holder() too', () => {
    const sharded = new ShardedMap<number>();
    const plain = new Map<string, number>();
    // A deterministic sequence (xorshift), so a failure can be replayed.
    let x = 0x9e3779b9;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const key = (i: number) => `\x04svc${i}\x03ns${i % 7}\x03fed\x07example\x03com\x00`;
    for (let step = 0; step < 50_000; step++) {
      const k = key(rand(5000));
      switch (rand(5)) {
        case 0:
        case 1:
          expect(sharded.set(k, step)).toBe(sharded);
          plain.set(k, step);
          break;
        case 2:
          expect(sharded.delete(k)).toBe(plain.delete(k));
          break;
        case 3:
          // Through the Map that holds the key: what get() reads.
          sharded.holder(k).set(k, -step);
          plain.set(k, -step);
          break;
        default:
          expect(sharded.has(k)).toBe(plain.has(k));
      }
      expect(sharded.get(k)).toBe(plain.get(k));
    }
    expect(sharded.size).toBe(plain.size);
    expect(plain.size).toBeGreaterThan(1000);
    for (const [k, v] of plain) expect(sharded.get(k)).toBe(v);
    expect(sharded.get('')).toBeUndefined();
    sharded.set('', 1);
    expect(sharded.get('')).toBe(1);
  });
});
