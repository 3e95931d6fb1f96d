// A read-only map for the few entries a zone name has (its RRsets by type, its answers by query
// type): keys and values side by side in one short array instead of a hash table, a fraction of
// a Map's memory on each of the hundreds of thousands of names of a big zone, and as fast for a
// handful of keys.

export class SmallMap<K, V> implements ReadonlyMap<K, V> {
  private static readonly EMPTY = new SmallMap<never, never>([]);

  /** key0, value0, key1, value1, ... */
  private constructor(private readonly kv: readonly unknown[]) {}

  /** The entries of `m`, in its order; one shared instance for every empty map. */
  static of<K, V>(m: ReadonlyMap<K, V>): SmallMap<K, V> {
    if (m.size === 0) return SmallMap.EMPTY as SmallMap<K, V>;
    const kv: unknown[] = new Array(m.size * 2);
    let i = 0;
    for (const [k, v] of m) {
      kv[i++] = k;
      kv[i++] = v;
    }
    return new SmallMap(kv);
  }

  static empty<K, V>(): SmallMap<K, V> {
    return SmallMap.EMPTY as SmallMap<K, V>;
  }

  get size(): number {
    return this.kv.length >> 1;
  }

  get(key: K): V | undefined {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === key) return kv[i + 1] as V;
    return undefined;
  }

  has(key: K): boolean {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === key) return true;
    return false;
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) fn.call(thisArg, kv[i + 1] as V, kv[i] as K, this);
  }

  *entries(): MapIterator<[K, V]> {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) yield [kv[i] as K, kv[i + 1] as V];
  }

  *keys(): MapIterator<K> {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) yield kv[i] as K;
  }

  *values(): MapIterator<V> {
    const kv = this.kv;
    for (let i = 1; i < kv.length; i += 2) yield kv[i] as V;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}
