// The services waiting to be rebuilt. Three kinds, taken in this order: those a watch event
// touched (urgent), others named one by one, and whole collections (every service present, every
// service of a cluster) that a reload, a topology change or a cluster's health marks at once.
//
// A collection is held as an array of its keys, copied when it is marked: adding 100,000 keys to
// a Set one by one took 25-40 ms of the event loop (each key read from memory the CPU's caches no
// longer hold), copying them 1.3 ms. Its keys are checked against the others' as they are taken,
// a slice at a time, so a service marked twice is rebuilt once.

export class DirtyServices {
  private readonly urgent = new Set<string>();
  private readonly named = new Set<string>();
  /** Collections marked and not yet taken; `next` is the position in the first. */
  private readonly bulk: string[][] = [];
  private next = 0;
  /**
   * Keys taken since the last collection was marked, while collections wait: a collection asks
   * for a rebuild after it was marked, which these keys have had.
   */
  private readonly taken = new Set<string>();

  /** Marks one service; `urgent`: rebuilt before any other not urgent. */
  add(key: string, urgent = false): void {
    (urgent ? this.urgent : this.named).add(key);
  }

  /** Marks every service of `keys`, as it is now (copied). */
  addAll(keys: Iterable<string>): void {
    const list = [...keys];
    if (list.length === 0) return;
    this.bulk.push(list);
    this.taken.clear();
  }

  /** Nothing left to take (a collection whose keys were all taken otherwise may still count as something). */
  get empty(): boolean {
    return this.urgent.size === 0 && this.named.size === 0 && this.bulk.length === 0;
  }

  /**
   * Takes the marked services one by one, urgent ones first, each once while it stays unmarked;
   * `null` for a key of a collection passed over (taken already), so that a caller working in
   * slices can look at the clock between any two steps.
   */
  *take(): Generator<string | null> {
    for (;;) {
      const key = this.takeOne();
      if (key === undefined) return;
      yield key;
    }
  }

  private takeOne(): string | null | undefined {
    for (const set of [this.urgent, this.named]) {
      for (const key of set) {
        this.urgent.delete(key);
        this.named.delete(key);
        if (this.bulk.length) this.taken.add(key);
        return key;
      }
    }
    while (this.bulk.length) {
      const list = this.bulk[0];
      if (this.next < list.length) {
        const key = list[this.next++];
        if (this.taken.has(key)) return null;
        this.taken.add(key);
        return key;
      }
      this.bulk.shift();
      this.next = 0;
    }
    this.taken.clear();
    return undefined;
  }
}
