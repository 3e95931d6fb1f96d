// A read-only map for the few entries a zone name has (its RRsets by type, its answers by query
// type): two short arrays instead of a hash table, a fraction of a Map's memory on each of the
// hundreds of thousands of names of a big zone, and as fast for a handful of keys.

export class SmallMap<K, V> implements ReadonlyMap<K, V> {
  private static readonly EMPTY = new SmallMap<never, never>([], []);

  private constructor(
    private readonly ks: readonly K[],
    private readonly vs: readonly V[],
  ) {}

  /** The entries of `m`, in its order; one shared instance for every empty map. */
  static of<K, V>(m: ReadonlyMap<K, V>): SmallMap<K, V> {
    if (m.size === 0) return SmallMap.EMPTY as SmallMap<K, V>;
    return new SmallMap([...m.keys()], [...m.values()]);
  }

  static empty<K, V>(): SmallMap<K, V> {
    return SmallMap.EMPTY as SmallMap<K, V>;
  }

  get size(): number {
    return this.ks.length;
  }

  get(key: K): V | undefined {
    const i = this.ks.indexOf(key);
    return i < 0 ? undefined : this.vs[i];
  }

  has(key: K): boolean {
    return this.ks.includes(key);
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (let i = 0; i < this.ks.length; i++) fn.call(thisArg, this.vs[i], this.ks[i], this);
  }

  *entries(): MapIterator<[K, V]> {
    for (let i = 0; i < this.ks.length; i++) yield [this.ks[i], this.vs[i]];
  }

  keys(): MapIterator<K> {
    return this.ks.values();
  }

  values(): MapIterator<V> {
    return this.vs.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}
