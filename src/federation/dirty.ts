// The services waiting to be rebuilt. Three kinds, taken in this order: those a watch event
// touched (urgent), others named one by one, and whole collections (every service present, every
// service of a cluster) that a reload, a topology change or a cluster's health marks at once.
//
// Marking a collection costs nothing at the time: adding 100,000 keys to a Set one by one took
// 25-40 ms of the event loop (each key read from memory the CPU's caches no longer hold). Its keys
// are read when its turn comes (a copy: 1.3 ms for 100,000), and each is checked, as it is taken,
// against when it was last taken: one taken since the collection's mark is passed over, so a
// service marked twice is rebuilt once, and a mark of another collection changes nothing for it.
// A collection marked again before its turn has come is the same work: it is queued once, so
// marks as many as a tenant can cause (a zone label flapping, each a new topology) never pile up.

export class DirtyServices {
  private readonly urgent = new Marked();
  private readonly named = new Marked();
  /** Collections marked and not yet all taken; `next` is the position in the first. */
  private readonly bulk: Collection[] = [];
  private next = 0;
  /** Collection marks so far: a key taken while this is m was taken after marks 1 to m. */
  private marks = 0;
  /** Key -> `marks` when it was last taken, while collections wait. */
  private readonly taken = new Map<string, number>();

  /** Marks one service; `urgent`: rebuilt before any other not urgent. */
  add(key: string, urgent = false): void {
    (urgent ? this.urgent : this.named).add(key);
  }

  /**
   * Marks every service of a collection: those `keys()` gives when the collection's turn comes
   * (an array it returns is kept as it is: a fresh one). `source` names the collection (the set of
   * services present, a cluster).
   */
  addAll(source: object, keys: () => Iterable<string>): void {
    const at = ++this.marks;
    // One of the same source still waiting for its turn covers this mark, from now on.
    const waiting = this.bulk.find((c) => c.source === source && c.list === undefined);
    if (waiting) waiting.markedAt = at;
    else this.bulk.push({ source, keys, markedAt: at });
  }

  /** Nothing left to take (a collection whose keys were all taken otherwise may still count as something). */
  get empty(): boolean {
    return this.urgent.size === 0 && this.named.size === 0 && this.bulk.length === 0;
  }

  /**
   * Takes the marked services one by one, urgent ones first, each once while it stays unmarked;
   * `null` for a key of a collection passed over (taken since its mark), so that a caller working
   * in slices can look at the clock between any two steps.
   */
  *take(): Generator<string | null> {
    for (;;) {
      const key = this.takeOne();
      if (key === undefined) return;
      yield key;
    }
  }

  private takeOne(): string | null | undefined {
    const marked = this.urgent.first() ?? this.named.first();
    if (marked !== undefined) {
      this.urgent.delete(marked);
      this.named.delete(marked);
      if (this.bulk.length) this.taken.set(marked, this.marks);
      return marked;
    }
    while (this.bulk.length) {
      const c = this.bulk[0];
      if (c.list === undefined) {
        const keys = c.keys();
        c.list = Array.isArray(keys) ? (keys as string[]) : [...keys];
      }
      if (this.next < c.list.length) {
        const key = c.list[this.next++];
        const at = this.taken.get(key);
        if (at !== undefined && at >= c.markedAt) return null;
        this.taken.set(key, this.marks);
        return key;
      }
      this.bulk.shift();
      this.next = 0;
    }
    this.taken.clear();
    return undefined;
  }
}

/**
 * Keys marked one by one, taken in the order they were marked through one live iterator: a new
 * iterator per key walks past every key deleted before it (a Set keeps a hole for each until its
 * table shrinks), which made taking 100,000 keys take 1.7 s instead of 15 ms.
 */
class Marked {
  private readonly keys = new Set<string>();
  private order?: Iterator<string>;

  add(key: string): void {
    this.keys.add(key);
  }

  delete(key: string): void {
    this.keys.delete(key);
  }

  get size(): number {
    return this.keys.size;
  }

  /** The first key still marked, for the caller to delete; undefined when none is. */
  first(): string | undefined {
    if (this.keys.size === 0) {
      this.order = undefined;
      return undefined;
    }
    // A live iterator skips deleted keys and reaches keys added after it began; once it has
    // ended, it stays ended, and keys added since need a new one.
    this.order ??= this.keys.values();
    let r = this.order.next();
    if (r.done) {
      this.order = this.keys.values();
      r = this.order.next();
    }
    return r.done ? undefined : r.value;
  }
}

interface Collection {
  source: object;
  keys: () => Iterable<string>;
  /** `marks` at its last mark: a key taken since then is passed over. */
  markedAt: number;
  /** Its keys, read when its turn came. */
  list?: string[];
}
