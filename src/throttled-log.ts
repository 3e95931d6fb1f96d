// Logging for problems anyone can cause at will: a few lines per kind a minute, then the count of
// the others, so nobody can flood the logs on demand. Used by every layer, so it imports none.

/** Where the lines go: a pino logger, or anything with its warn/error(object, message). */
export interface LogTarget {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ThrottleOptions {
  /** Lines logged per kind and period (default 5). */
  lines?: number;
  /** Default one minute. */
  periodMs?: number;
  now?: () => number;
}

interface KindState {
  start: number;
  logged: number;
  suppressed: number;
  level: 'warn' | 'error';
  msg: string;
  timer?: NodeJS.Timeout;
}

/**
 * For problems any client can cause at will (refused transfers, bad packets): a few lines per kind
 * a minute, and the count of the others (`suppressed`) when the minute ends, so nobody can flood
 * the logs on demand. Kinds are fixed strings in the code, so the state stays bounded.
 */
export class ThrottledLog {
  private readonly kinds = new Map<string, KindState>();
  private readonly lines: number;
  private readonly periodMs: number;
  private readonly now: () => number;

  constructor(
    private readonly log: LogTarget,
    opts: ThrottleOptions = {},
  ) {
    this.lines = opts.lines ?? 5;
    this.periodMs = opts.periodMs ?? 60_000;
    this.now = opts.now ?? (() => Date.now());
  }

  warn(kind: string, obj: Record<string, unknown>, msg: string): void {
    this.write('warn', kind, obj, msg);
  }

  error(kind: string, obj: Record<string, unknown>, msg: string): void {
    this.write('error', kind, obj, msg);
  }

  private write(level: 'warn' | 'error', kind: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let k = this.kinds.get(kind);
    let carried = 0;
    if (k === undefined || t - k.start >= this.periodMs) {
      if (k !== undefined) {
        if (k.timer) clearTimeout(k.timer);
        carried = k.suppressed;
      }
      k = { start: t, logged: 0, suppressed: 0, level, msg };
      this.kinds.set(kind, k);
    }
    if (k.logged < this.lines) {
      k.logged++;
      this.log[level](carried ? { kind, ...obj, suppressed: carried } : { kind, ...obj }, msg);
      return;
    }
    k.suppressed++;
    k.level = level;
    k.msg = msg;
    if (k.timer === undefined) {
      const state = k;
      state.timer = setTimeout(() => this.report(kind, state), Math.max(0, state.start + this.periodMs - t));
      state.timer.unref();
    }
  }

  private report(kind: string, k: KindState): void {
    if (k.timer) clearTimeout(k.timer);
    k.timer = undefined;
    if (k.suppressed === 0) return;
    this.log[k.level]({ kind, suppressed: k.suppressed }, k.msg);
    k.suppressed = 0;
  }

  /** Logs the counts still pending (at shutdown). */
  flush(): void {
    for (const [kind, k] of this.kinds) this.report(kind, k);
  }
}
