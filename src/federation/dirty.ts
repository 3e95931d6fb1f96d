// The services waiting to be rebuilt. Three kinds, taken in this order: those a watch event
// touched (urgent), others named one by one, and whole collections (every service present, every
// service of a cluster) that a reload, a topology change or a cluster's health marks at once.
//
// Marking a collection costs nothing at the time: adding 100,000 keys to a Set one by one took
// 25-40 ms of the event loop (each key read from memory the CPU's caches no longer hold). Its keys
// are copied when its turn comes (1.3 ms for 100,000) and checked against those taken since it
// was marked as they are taken, a slice at a time, so a service marked twice is rebuilt once. A
// collection marked again before its turn has come is the same work: it is queued once, so marks
// as many as a tenant can cause (a zone label flapping, each a new topology) never pile up.

export class DirtyServices {
  private readonly urgent = new Set<string>();
  private readonly named = new Set<string>();
  /** Collections marked and not yet all taken; `next` is the position in the first. */
  private readonly bulk: Collection[] = [];
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

  /**
   * Marks every service of a collection: those `keys()` gives when the collection's turn comes.
   * `source` names the collection (the set of services present, a cluster).
   */
  addAll(source: object, keys: () => Iterable<string>): void {
    this.taken.clear();
    // One of the same source still waiting for its turn covers this mark.
    if (this.bulk.some((c) => c.source === source && c.list === undefined)) return;
    this.bulk.push({ source, keys });
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
    const marked = first(this.urgent) ?? first(this.named);
    if (marked !== undefined) {
      this.urgent.delete(marked);
      this.named.delete(marked);
      if (this.bulk.length) this.taken.add(marked);
      return marked;
    }
    while (this.bulk.length) {
      const c = this.bulk[0];
      const list = (c.list ??= [...c.keys()]);
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

function first(set: Set<string>): string | undefined {
  for (const key of set) return key;
  return undefined;
}

interface Collection {
  source: object;
  keys: () => Iterable<string>;
  /** The keys, copied when its turn came. */
  list?: string[];
}
