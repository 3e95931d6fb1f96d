// Connections held open, bounded in all and per client address: at a bound, a new connection
// takes the place of one that can go (idle, for instance) rather than be refused, so connections
// held open by one client, or a few, cannot lock the others out. The DNS TCP listener and the ops
// HTTP listener keep theirs here.

/** What the bounds can close. */
export interface Closable {
  destroy(): void;
}

export class ConnectionBounds<C extends Closable> {
  /** Every connection, least recently active first (the order `canGo` is asked in). */
  readonly all = new Set<C>();
  /** The same, per client address. */
  private readonly perClient = new Map<string, Set<C>>();
  private readonly clientOf = new Map<C, string>();

  /**
   * `pick`: of a client's connections or all of them, least recently active first, the one to
   * close to make room, or undefined when none may go.
   */
  constructor(private readonly pick: (set: Set<C>) => C | undefined) {}

  get size(): number {
    return this.all.size;
  }

  /**
   * Makes room for one more connection from `client` within `max` in all and `maxPerClient` from
   * one address (the client's own first, then anyone's), closing what `pick` gives; false when
   * there is none to close, and nothing should be taken.
   */
  makeRoom(client: string, max: number, maxPerClient: number): boolean {
    return this.shrink(this.perClient.get(client), maxPerClient) && this.shrink(this.all, max);
  }

  /** Holds `c`, from `client`; the client's set of connections, for touch(). */
  add(c: C, client: string): Set<C> {
    let mine = this.perClient.get(client);
    if (!mine) this.perClient.set(client, (mine = new Set()));
    this.all.add(c);
    mine.add(c);
    this.clientOf.set(c, client);
    return mine;
  }

  /** Moves `c` (of the client set `mine`) to the most recently active end of the orders `pick` reads. */
  touch(c: C, mine: Set<C>): void {
    this.all.delete(c);
    this.all.add(c);
    mine.delete(c);
    mine.add(c);
  }

  /** Lets `c` go (it closed). */
  forget(c: C): void {
    if (!this.all.delete(c)) return;
    const client = this.clientOf.get(c)!;
    this.clientOf.delete(c);
    const mine = this.perClient.get(client);
    mine?.delete(c);
    if (mine?.size === 0) this.perClient.delete(client);
  }

  /** Closes what `pick` gives until at most `max` are held in all and `maxPerClient` per client (new, lower bounds). */
  limit(max: number, maxPerClient: number): void {
    this.shrink(this.all, max + 1);
    for (const mine of [...this.perClient.values()]) this.shrink(mine, maxPerClient + 1);
  }

  /** Closes connections of `set` until it holds fewer than `cap`; false when too few may go. */
  private shrink(set: Set<C> | undefined, cap: number): boolean {
    while (set && set.size >= cap) {
      const victim = this.pick(set);
      if (!victim) return false;
      this.forget(victim);
      victim.destroy();
    }
    return true;
  }
}
