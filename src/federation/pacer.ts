// Pacing of services too big to rebuild within a slice. A service is rebuilt whole on every
// change, and one rebuild cannot be split: a headless service of 20,000 endpoints takes about
// 100 ms. A tenant whose controller rewrites one of its EndpointSlices without pause would have
// fedns rebuild it back to back and keep the event loop (every query, every other change) waiting.
//
// A service whose last two rebuilds each took PACE_FROM_MS or more waits, before its next, PACE
// times the shorter of them (at most PACE_MAX_MS), and every other paced service waits as long
// too: paced services together take at most 1/(PACE+1) of the event loop however fast they
// change and however many a tenant makes (each on its own would take as much, eleven of them
// all of it). Their changes meanwhile are merged into their next rebuild; none is lost, and every
// other service is rebuilt as fast as before. Held services are released in the order they were
// held, so each gets its turn. One slow rebuild (a collection landing in it) paces nothing: it
// takes two in a row.
//
// A change of another service that would give a paced service a name or take one from it (crafted
// labels can make two services give one name: snapshot.ts) makes that service's answers be made
// again before anything is published, whole: such a change waits too, behind the paced services
// it touches (holdBehind), and is released with them, so that a cheap service changed without
// pause cannot have a paced one rebuilt on every change. Its names are made before it is known
// to wait, and made again when it is released: that work counts as a rebuild (spent), so a big
// service so held is paced too, and held before its names are made, rather than made again on
// every turn while only one service a turn is rebuilt.
//
// A service is forgotten FORGET_MS after its last slow rebuild (a service deleted, one that
// stopped changing): the maps hold only services rebuilt slowly in the last FORGET_MS, each such
// rebuild having taken PACE_FROM_MS, so at most a few thousand whatever tenants create and delete.

/** A rebuild this long (ms), twice in a row, paces the service: a slice's worth (src/slices.ts). */
export const PACE_FROM_MS = 5;
/** A paced service waits this many times its rebuild's cost. */
export const PACE = 10;
/** The longest a paced service's change waits after its rebuild, or any paced one's (ms). */
export const PACE_MAX_MS = 10_000;
/**
 * A service's slow rebuilds are forgotten this long (ms) after the last one: longer than its
 * longest wait, so that one changed without pause stays paced from one rebuild to the next.
 */
export const FORGET_MS = 2 * PACE_MAX_MS;

/** A paced service, as explanations show it. */
export interface Pace {
  /** Its last rebuild's cost (ms, rounded). */
  rebuildMs: number;
  /** Its own wait before its next rebuild after one (ms, rounded); longer while other paced services take their turns. */
  waitMs: number;
  /** A change to it is waiting now. */
  waiting: boolean;
}

export class Pacer {
  /** Service -> the cost (ms) of its last rebuild and when it ended, for those whose last took PACE_FROM_MS or more. */
  private readonly slow = new Map<string, { ms: number; end: number; rebuilt: number | undefined }>();
  /** When (performance.now()) services slow long ago are next looked for. */
  private nextSweep = 0;
  /** Service -> when (performance.now()) it may be rebuilt again, for paced services. */
  private readonly notBefore = new Map<string, { at: number; wait: number }>();
  /** When (performance.now()) any paced service may be rebuilt again: after the last one's wait. */
  private shared = 0;
  /** Services with a change waiting for their time, in the order they were held. */
  private readonly held = new Set<string>();
  /** Held service -> the paced services whose time its change waits for too (holdBehind). */
  private readonly behind = new Map<string, string[]>();
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  /** Rebuilds put off so far (a service held again while it waits counts once). */
  holds = 0;

  /** `release` gets the held services whose time has come. */
  constructor(private readonly release: (keys: string[]) => void) {}

  /**
   * Whether `key` must wait for its time, or for that of the paced services its change waits for
   * (holdBehind), as of `now` (performance.now() when not given); it is then held, and released
   * when that comes. Nothing paced: no clock read.
   */
  hold(key: string, now?: number): boolean {
    if (this.notBefore.size === 0) return false;
    const at = this.readyAt(key);
    if (at === undefined || at <= (now ?? performance.now())) return false;
    this.keep(key, at);
    return true;
  }

  /**
   * Whether some paced service waits for its time now (as of `now`): every one does then, or
   * none (each waits for the last one's wait too). Nothing paced: no clock read.
   */
  pacing(now?: number): boolean {
    return this.notBefore.size > 0 && this.shared > (now ?? performance.now());
  }

  /** Whether `key` is paced and waits for its time now (as of `now`). */
  waits(key: string, now?: number): boolean {
    if (this.notBefore.size === 0) return false;
    const at = this.timeOf(key);
    return at !== undefined && at > (now ?? performance.now());
  }

  /**
   * Holds `key`, a service whose change would give a name to `owners` or take one from them,
   * until the time of those of them that are paced, when it is released to be rebuilt with them;
   * false, holding nothing, when none of them waits for its time. Its later changes wait with it
   * (hold), merged.
   */
  holdBehind(key: string, owners: readonly string[], now?: number): boolean {
    if (this.notBefore.size === 0) return false;
    const t = now ?? performance.now();
    const waiting = owners.filter((o) => o !== key && (this.timeOf(o) ?? -Infinity) > t);
    if (waiting.length === 0) return false;
    const had = this.behind.get(key);
    this.behind.set(key, had ? [...new Set([...had, ...waiting])] : [...new Set(waiting)]);
    this.keep(key, this.readyAt(key)!);
    return true;
  }

  /** The paced services `key`'s change waits for (holdBehind); undefined: none. */
  heldBehind(key: string): readonly string[] | undefined {
    return this.behind.get(key);
  }

  private keep(key: string, at: number): void {
    if (!this.held.has(key)) {
      this.held.add(key);
      this.holds++;
    }
    this.arm(at);
  }

  /**
   * Notes that `key`'s rebuild took `ms`, ending at `end` (performance.now()). Returns the wait
   * (ms) before its next when this rebuild made it paced, else 0.
   */
  rebuilt(key: string, ms: number, end: number): number {
    // Rebuilt from the cluster data as it is now: a change held for it is answered.
    if (this.held.size && this.held.delete(key)) this.behind.delete(key);
    return this.took(key, ms, end, true);
  }

  /**
   * Notes that making `key`'s names took `ms`, ending at `end`, whether or not they were set: a
   * change held behind a paced service (holdBehind) has them made, and made again when it is
   * released, and is held once more when another paced service's rebuild came first. Counted as
   * a rebuild is, such work paces a service whose names take longer than a slice to make: it is
   * then held before they are made (hold), not made again on every turn of the service it
   * waits for. A held change stays held, and no change counts as answered by it (lastRebuilt).
   * Returns what rebuilt() does.
   */
  spent(key: string, ms: number, end: number): number {
    return this.took(key, ms, end, false);
  }

  private took(key: string, ms: number, end: number, rebuilt: boolean): number {
    if (this.slow.size && end >= this.nextSweep) this.sweep(end);
    if (ms < PACE_FROM_MS) {
      if (this.slow.size && this.slow.delete(key)) this.notBefore.delete(key);
      return 0;
    }
    const previous = this.slow.get(key);
    this.slow.set(key, { ms, end, rebuilt: rebuilt ? end : previous?.rebuilt });
    if (previous === undefined) return 0;
    const wait = Math.min(PACE_MAX_MS, PACE * Math.min(previous.ms, ms));
    const was = this.notBefore.has(key);
    this.notBefore.set(key, { at: end + wait, wait });
    this.shared = Math.max(this.shared, end + wait);
    return was ? 0 : wait;
  }

  /** When a paced service may be rebuilt: after its own wait and the last paced one's; undefined: not paced. */
  private timeOf(key: string): number | undefined {
    const at = this.notBefore.get(key)?.at;
    return at === undefined ? undefined : Math.max(at, this.shared);
  }

  /** When `key`'s change may be applied: its own time and that of the paced services it waits for; undefined: now. */
  private readyAt(key: string): number | undefined {
    let at = this.timeOf(key);
    const behind = this.behind.get(key);
    if (behind) for (const o of behind) at = Math.max(at ?? -Infinity, this.timeOf(o) ?? -Infinity);
    return at;
  }

  /**
   * Forgets services whose last slow rebuild ended FORGET_MS before `now`: deleted, or no longer
   * changing (their time has come long since; one still held is released by the timer at once).
   */
  private sweep(now: number): void {
    this.nextSweep = now + PACE_MAX_MS;
    for (const [key, { end }] of this.slow) {
      // One held waits for its turn among many paced services: still changing.
      if (end + FORGET_MS >= now || this.held.has(key)) continue;
      this.slow.delete(key);
      this.notBefore.delete(key);
    }
  }

  /** `key`'s pace; undefined when it is not paced. */
  paceOf(key: string): Pace | undefined {
    const pace = this.notBefore.get(key);
    const slow = this.slow.get(key);
    if (pace === undefined || slow === undefined) return undefined;
    return { rebuildMs: Math.round(slow.ms), waitMs: Math.round(pace.wait), waiting: this.held.has(key) };
  }

  /** Services paced now: their last two rebuilds were slow. */
  get pacedCount(): number {
    return this.notBefore.size;
  }

  /** Whether any service is held now. */
  get holding(): boolean {
    return this.held.size > 0;
  }

  /** Whether `key` is held now: its change waits for its time. */
  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  /**
   * When (performance.now()) `key`'s last slow rebuild ended, its names set (not only made for a
   * change that then waited: spent); undefined: not known (not paced).
   */
  lastRebuilt(key: string): number | undefined {
    return this.slow.get(key)?.rebuilt;
  }

  /** Services held now (sorted). */
  get heldNow(): string[] {
    return [...this.held].sort();
  }

  /** Every held service, released now, whatever its time (a rebuild of everything in one go). */
  takeHeld(): string[] {
    const keys = [...this.held];
    this.held.clear();
    this.behind.clear();
    this.disarm();
    return keys;
  }

  close(): void {
    this.disarm();
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(() => this.due(), Math.max(1, Math.ceil(at - performance.now())));
    // A paced service's change is not a reason to keep a process alive.
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private due(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const ready: string[] = [];
    let next = Infinity;
    for (const key of this.held) {
      const at = this.readyAt(key) ?? 0;
      if (at <= now) ready.push(key);
      else next = Math.min(next, at);
    }
    for (const key of ready) {
      this.held.delete(key);
      this.behind.delete(key);
    }
    if (next < Infinity) this.arm(next);
    if (ready.length) this.release(ready);
  }
}
