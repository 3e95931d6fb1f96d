// The list+watch loop of one resource of one member cluster, and the supervision around it.
//
// @kubernetes/client-node's informer is not usable as is (1.4.0: it stops for good after any
// error but a 410, re-watches without backoff, never notices a silent watch, does not ask for
// bookmarks, does not follow list pagination). A Reflector does it itself:
//
//   LIST (limit/continue until complete) -> apply as a diff -> WATCH from the list's
//   resourceVersion (allowWatchBookmarks, timeoutSeconds with jitter) -> ...
//
// (A list into a kind that holds nothing adds its pages as they come: nothing can be left over
// to remove. See ReflectorSink.appendsPages.)
//
// and decides, for each way a watch can end, what comes next:
//
//   clean end of the stream          re-watch from the last resourceVersion seen (bookmarks too)
//   410 Gone (HTTP or ERROR event)   re-LIST, applied as a diff once complete (never cleared first)
//   malformed line                   re-LIST (an event may have been lost)
//   no event/bookmark for idleLimit  watchdog: abort, re-LIST (also proves the server answers)
//   anything else                    failure: reported (cluster turns stale), then after the
//                                    pace (at least the server's Retry-After): a failed WATCH
//                                    resumes from the last resourceVersion (the server replays
//                                    what was missed, or answers 410), healthy again once it
//                                    works; a failed LIST is listed again
//   many restarts in a short window  reconnect storm: logged once
//
// Every restart is paced: at most one per restartIntervalMs (with jitter) per resource, however
// the last attempt ended, and never more than that: a flapping API server is followed within a
// second or two instead of being backed off from for half a minute. A resource without a working
// list or watch for staleAfterMs makes its cluster stale, so what fedns cannot know shows in
// every answer (stale TTL, Extended DNS Error 3), even when nothing failed outright (watches
// that end at once, a server that accepts and never answers).
//
// Nothing here knows HTTP or Kubernetes credentials: a Transport opens requests.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { nextSlice, sliceSpent } from '../slices.js';
import { isListAnswer, isListItem, listPosition, type ListPosition } from './list-page.js';

/** Why a request failed, precisely enough for an operator (cluster health reason). */
export class ApiError extends Error {
  constructor(
    message: string,
    /** 'http': the server answered with an error status; the others: no usable answer. */
    readonly category: 'http' | 'tls' | 'network' | 'timeout' | 'protocol' | 'config' | 'aborted',
    /** HTTP status (or the code of an in-stream ERROR Status). */
    readonly status?: number,
    /** The server's Retry-After (429, 503), in milliseconds. */
    readonly retryAfterMs?: number,
    /**
     * The Status's cause is ResourceVersionTooLarge: the server has not reached the
     * resourceVersion asked for (a cluster restored from a backup), and never will from there.
     */
    readonly aheadOfServer = false,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface OpenStream {
  response: IncomingMessage;
  /** Aborts the request and its response stream. */
  abort(): void;
}

/** Opens GET requests against one API server. Non-2xx answers throw ApiError with the status. */
export interface Transport {
  /** GETs a JSON document (bounded size and time). */
  getJson(path: string, query: Record<string, string>, signal: AbortSignal): Promise<unknown>;
  /** GETs a document as its bytes, unparsed (bounded size and time), for a sink that reads pages itself. */
  getBody?(path: string, query: Record<string, string>, signal: AbortSignal): Promise<Buffer>;
  /** Opens a streaming GET; resolves once a 200 response head has arrived. */
  openStream(path: string, query: Record<string, string>, signal: AbortSignal): Promise<OpenStream>;
}

export interface SupervisorTiming {
  /** LIST page size (limit). */
  pageSize: number;
  /** timeoutSeconds asked of each watch. */
  watchTimeoutSeconds: number;
  /** Jitter of the watch timeout, as a fraction (0.1: ±10 %). */
  watchTimeoutJitter: number;
  /** A watch that delivers no event or bookmark for this long is considered dead. */
  idleLimitMs: number;
  /** Two starts of a list or watch are at least this far apart (plus up to 25 % jitter); 0: no pacing. */
  restartIntervalMs: number;
  /** A resource without a working list or watch for this long makes its cluster stale. */
  staleAfterMs: number;
  /** More restarts than this within stormWindowMs is a reconnect storm (logged). */
  stormRestarts: number;
  stormWindowMs: number;
  /** How often a missing optional kind (a CRD that is not installed) is looked for again. */
  missingKindRecheckMs: number;
}

export const DEFAULT_TIMING: SupervisorTiming = {
  pageSize: 500,
  watchTimeoutSeconds: 300,
  watchTimeoutJitter: 0.1,
  idleLimitMs: 90_000,
  restartIntervalMs: 1000,
  staleAfterMs: 3000,
  stormRestarts: 10,
  stormWindowMs: 30_000,
  missingKindRecheckMs: 300_000,
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
type Obj = Record<string, unknown>;

/** Where a Reflector delivers objects and reports its condition. */
export interface ReflectorSink {
  /**
   * Turns a listed object into what replace() receives, as its page arrives (undefined: left
   * out), so that a long list does not hold every page's full objects until its end.
   */
  convert?(item: Obj): unknown;
  /**
   * Reads a whole page of a LIST answer from its bytes, converted as convert() would (used
   * instead of convert where the transport has getBody); `what` names the request in errors.
   * Throws an ApiError when the page is not a list.
   */
  readPage?(body: Buffer, what: string): Promise<{ items: unknown[] } & ListPosition>;
  /**
   * A complete list (every page, converted): replace this kind's objects by these, as a diff;
   * may take several turns of the event loop (the list is applied once the promise settles).
   */
  replace(items: unknown[]): void | Promise<void>;
  /**
   * Whether a list starting now hands its pages to addPage() as they arrive, rather than its
   * whole list to replace() at its end: only while this kind holds nothing (a first list), when
   * no object can be left over to remove. Applied as they come, the objects of a big cluster's
   * first list are not all held until its last page, and are no longer all applied after it.
   * A list that fails halfway leaves the objects it added (objects that were there at its
   * resourceVersion); the next list, a replace() since the kind is no longer empty, removes
   * those it does not have.
   */
  appendsPages?(): boolean;
  /** Adds one page's objects (converted) to this kind; may take several turns of the event loop. */
  addPage?(items: unknown[]): Promise<void>;
  /** One watch event. */
  event(type: WatchEventType, object: Obj): void;
  /** End of a batch of events: publish. */
  flush(): void;
  /** A complete list has been applied: this resource is healthy. */
  synced(): void;
  /** The connection broke; `reason` says how (`error` is the request's error, when there is one). */
  failed(reason: string, error?: ApiError): void;
  /** A list or watch is being restarted, for the given reason. */
  restarted(reason: string): void;
}

export interface ResourceSpec {
  /** For logs, e.g. "Service". */
  kind: string;
  /** Collection path, e.g. "/api/v1/services". */
  path: string;
  /** Short name for reasons, e.g. "services". */
  plural: string;
  /** A CRD that may not be installed: 404 means "no objects", not a failure. */
  optional?: boolean;
}

type WatchEnd =
  | { how: 'clean'; routine: boolean }
  | { how: 'expired' }
  /** An ERROR event saying the resourceVersion watched from is ahead of the server's (aheadOfServer). */
  | { how: 'ahead' }
  | { how: 'malformed' }
  | { how: 'idle' }
  | { how: 'missing' };

const MAX_LINE = 64 * 1024 * 1024;
/** A Retry-After longer than this is taken as this (a misconfigured server must not park us for hours). */
const MAX_RETRY_AFTER_MS = 60_000;
/** A watch open this long (or that delivered a line) works; capped by staleAfterMs / 3. */
const WATCH_PROOF_MS = 1000;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why a watch from a resourceVersion ahead of the server's lists again (aheadOfServer). */
const AHEAD_RELIST = 'resourceVersion ahead of the API server (a restored cluster?); re-listing';

/** The position a watch resumes from is of no use: gone (410), or ahead of the server. */
function isExpired(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 410 || e.aheadOfServer);
}

/**
 * Whether a Kubernetes Status says the resourceVersion asked for is ahead of the server's
 * (details.causes[].reason ResourceVersionTooLarge, with code 504): a cluster restored from a
 * backup, whose resourceVersions went back. A watch from there gets the same answer each time.
 */
export function aheadOfServer(status: unknown): boolean {
  const causes = (status as { details?: { causes?: unknown } } | null)?.details?.causes;
  return Array.isArray(causes) && causes.some((c) => (c as { reason?: unknown } | null)?.reason === 'ResourceVersionTooLarge');
}

/** Repeated identical messages are logged once, then summarised. */
export class QuietLog {
  private last = '';
  private lastAt = 0;
  private repeats = 0;

  constructor(
    private readonly log: Logger,
    private readonly everyMs = 60_000,
  ) {}

  /** `fields` identify the message (with `msg`); `extra` is logged but does not count. */
  warn(fields: Obj, msg: string, extra: Obj = {}): void {
    const key = `${msg}|${JSON.stringify(fields)}`;
    const now = Date.now();
    if (key === this.last && now - this.lastAt < this.everyMs) {
      this.repeats++;
      this.log.debug({ ...fields, ...extra }, msg);
      return;
    }
    if (key === this.last && this.repeats) this.log.warn({ ...fields, ...extra, repeated: this.repeats }, msg);
    else this.log.warn({ ...fields, ...extra }, msg);
    this.last = key;
    this.lastAt = now;
    this.repeats = 0;
  }

  reset(): void {
    this.last = '';
    this.repeats = 0;
  }
}

export class Reflector {
  /** resourceVersion to watch from (from the last list, event or bookmark). */
  resourceVersion = '';
  /** The data is current: a complete list, then no failure and no blind spell (or a watch works again since). */
  healthy = false;
  /** A complete list was applied at least once. */
  synced = false;
  /** Restarts (of any kind) so far. */
  restarts = 0;

  private readonly abort = new AbortController();
  private stopped = false;
  /** When the last list or watch was started (ms since epoch), for pacing. */
  private lastStart = 0;
  /** Armed while no list or watch works; fires after staleAfterMs. */
  private blindTimer?: NodeJS.Timeout;
  /** Why the last list or watch ended, for the reason of a blind spell. */
  private lastTrouble = 'not listed yet';
  private restartTimes: number[] = [];
  private storm = false;
  private missingLogged = false;
  private running?: Promise<void>;
  private sleeper?: { timer: NodeJS.Timeout; resolve: () => void };
  /** The next start must LIST: the position (resourceVersion) means nothing any more. */
  private positionLost = false;
  private readonly quiet: QuietLog;

  constructor(
    private readonly spec: ResourceSpec,
    private readonly transport: Transport,
    private readonly sink: ReflectorSink,
    private readonly timing: SupervisorTiming,
    private readonly log: Logger,
  ) {
    this.quiet = new QuietLog(log);
  }

  start(): void {
    this.running ??= this.supervise();
  }

  /** Runs the loop; should it ever throw (a bug), reports the resource broken and starts it over. */
  private async supervise(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.loop();
        return;
      } catch (e) {
        this.log.error({ err: e, kind: this.spec.kind }, 'list/watch loop crashed; restarting it');
        this.healthy = false;
        this.notWorking(`internal error: ${errorText(e)}`);
        try {
          this.sink.failed(`internal error: ${errorText(e)}`);
        } catch {
          /* already logged above */
        }
      }
    }
  }

  /**
   * The credentials or the server changed: a resourceVersion from before may not be a position
   * on the new server's history, so the next restart lists instead of resuming.
   */
  forgetPosition(): void {
    this.positionLost = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake();
    this.clearBlind();
    await this.running;
  }

  // ---- the loop -------------------------------------------------------------------------

  private async loop(): Promise<void> {
    let needList = true;
    /** The server asked to wait at least this long (Retry-After). */
    let retryAfter = 0;
    while (!this.stopped) {
      this.notWorking(this.lastTrouble);
      await this.pace(retryAfter);
      retryAfter = 0;
      if (this.stopped) return;
      this.lastStart = Date.now();
      let watching = false;
      try {
        if (needList || this.positionLost) {
          this.positionLost = false;
          const found = await this.list();
          this.lastTrouble = 'listed; the watch has not answered';
          if (this.stopped) return;
          if (!found) {
            await this.sleep(this.timing.missingKindRecheckMs);
            continue;
          }
          needList = false;
        }
        const started = Date.now();
        watching = true;
        // A list proves the data current when it ends; the watch must work within staleAfterMs of that.
        this.notWorking(this.lastTrouble);
        const end = await this.watch();
        if (this.stopped) return;
        switch (end.how) {
          case 'clean':
            // A watch that ended by its own timeout is routine; one that ends at once is not.
            if (!end.routine) this.restarted('watch ended early');
            else {
              this.lastTrouble = 'watch ended';
              this.log.debug({ kind: this.spec.kind, resourceVersion: this.resourceVersion }, 'watch ended; re-watching');
            }
            break;
          case 'expired':
            needList = true;
            this.restarted('resourceVersion expired (410); re-listing');
            break;
          case 'ahead':
            needList = true;
            this.restarted(AHEAD_RELIST);
            break;
          case 'malformed':
            needList = true;
            this.restarted('malformed watch event; re-listing');
            break;
          case 'idle':
            needList = true;
            this.restarted(`watch silent for ${this.timing.idleLimitMs} ms; re-listing`);
            break;
          case 'missing':
            needList = true;
            break;
        }
        if (this.storm && Date.now() - started >= this.timing.stormWindowMs) this.endStorm();
      } catch (e) {
        if (this.stopped) return;
        if (isExpired(e)) {
          // 410 on the watch request itself, or a list continue token that expired; or a watch
          // from a resourceVersion the server has not reached.
          needList = true;
          this.restarted(e instanceof ApiError && e.aheadOfServer ? AHEAD_RELIST : 'resourceVersion expired (410); re-listing');
          continue;
        }
        // A watch that failed resumes from where it was: the server either replays every
        // change since that resourceVersion or answers 410 (then we list). No re-list storm
        // against an API server that is already struggling.
        needList = !(watching && this.resourceVersion !== '' && !this.positionLost);
        const reason = this.describe(e);
        const err = e instanceof ApiError ? e : undefined;
        retryAfter = Math.min(err?.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS);
        this.fail(reason, err, needList ? 'list' : `watch from resourceVersion ${this.resourceVersion}`, retryAfter);
      }
    }
  }

  private describe(e: unknown): string {
    if (e instanceof ApiError) return e.message;
    return `unexpected error: ${errorText(e)}`;
  }

  private fail(reason: string, error: ApiError | undefined, next: string, retryAfterMs: number): void {
    this.healthy = false;
    this.lastTrouble = reason;
    this.restarts++;
    this.quiet.warn({ kind: this.spec.kind, reason }, 'list/watch failed; retrying', {
      next,
      delayMs: Math.max(retryAfterMs, this.paceDelay(this.timing.restartIntervalMs)),
    });
    this.sink.failed(reason, error);
    this.sink.restarted(reason);
  }

  private restarted(reason: string): void {
    const now = Date.now();
    this.restarts++;
    this.lastTrouble = reason;
    // A whole storm window without a restart ends a storm.
    const last = this.restartTimes.at(-1);
    if (this.storm && (last === undefined || now - last >= this.timing.stormWindowMs)) this.endStorm();
    this.restartTimes.push(now);
    const since = now - this.timing.stormWindowMs;
    this.restartTimes = this.restartTimes.filter((t) => t > since);
    if (!this.storm && this.restartTimes.length > this.timing.stormRestarts) {
      this.storm = true;
      this.log.warn(
        { kind: this.spec.kind, restarts: this.restartTimes.length, windowMs: this.timing.stormWindowMs, restartIntervalMs: this.timing.restartIntervalMs },
        'reconnect storm: watches keep ending; restarts stay paced',
      );
    }
    this.log.debug({ kind: this.spec.kind, reason }, 'restarting list/watch');
    this.sink.restarted(reason);
  }

  private endStorm(): void {
    if (!this.storm) return;
    this.storm = false;
    this.log.info({ kind: this.spec.kind }, 'reconnect storm over');
  }

  /** Milliseconds until the next start may happen, for an interval of `interval`. */
  private paceDelay(interval: number): number {
    return Math.max(0, this.lastStart + interval - Date.now());
  }

  /** Waits until the pace allows the next start (one per restartIntervalMs, jittered), and at least `minMs`. */
  private pace(minMs: number): Promise<void> {
    const interval = this.timing.restartIntervalMs * (1 + Math.random() * 0.25);
    return this.sleep(Math.max(minMs, this.paceDelay(interval)));
  }

  // ---- blind spells -----------------------------------------------------------------------

  /** No list or watch works now: unless one does within staleAfterMs, the resource is broken. */
  private notWorking(why: string): void {
    this.lastTrouble = why;
    if (this.blindTimer || this.stopped) return;
    this.blindTimer = setTimeout(() => {
      this.blindTimer = undefined;
      // A failure already reported says more than "no working watch".
      if (!this.healthy || this.stopped) return;
      this.healthy = false;
      const reason = `${this.spec.plural}: no working list or watch for ${Math.round(this.timing.staleAfterMs / 100) / 10} s (last: ${this.lastTrouble})`;
      this.quiet.warn({ kind: this.spec.kind }, 'no working list or watch; the cluster is stale', { reason });
      this.sink.failed(reason);
    }, this.timing.staleAfterMs);
    this.blindTimer.unref();
  }

  /** A list or a watch works: the blind spell (if any) is over, and the resource healthy again. */
  private working(): void {
    this.clearBlind();
    if (!this.healthy) this.markSynced();
  }

  private clearBlind(): void {
    if (this.blindTimer) clearTimeout(this.blindTimer);
    this.blindTimer = undefined;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeper = undefined;
        resolve();
      }, ms);
      this.sleeper = { timer, resolve };
    });
  }

  private wake(): void {
    const s = this.sleeper;
    this.sleeper = undefined;
    if (s) {
      clearTimeout(s.timer);
      s.resolve();
    }
  }

  // ---- LIST -----------------------------------------------------------------------------

  /** Lists every page; applies the complete list. False when an optional kind is not served. */
  private async list(): Promise<boolean> {
    const items: unknown[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    let pages = 0;
    const appending = this.sink.addPage !== undefined && this.sink.appendsPages?.() === true;
    let count = 0;
    /**
     * Continue tokens given so far (their digests: a token is the server's to make as long as it
     * likes). One given again loops: the list could never complete, and while it runs no watch
     * does, so the data would be frozen while every page kept the resource counted as working.
     */
    const tokens = new Set<string>();
    do {
      const query: Record<string, string> = { limit: String(this.timing.pageSize) };
      if (cont) query.continue = cont;
      let page: ListPosition;
      try {
        page = await this.listPage(query, items);
      } catch (e) {
        if (this.spec.optional && e instanceof ApiError && e.status === 404) {
          await this.kindMissing();
          return false;
        }
        throw e;
      }
      rv ??= page.resourceVersion;
      cont = page.continue;
      if (cont !== undefined) {
        const digest = createHash('sha256').update(cont).digest('base64');
        if (tokens.has(digest)) throw new ApiError(`list ${this.spec.plural}: the API server gave a continue token it gave before (page ${pages + 1}); the list would never end`, 'protocol');
        tokens.add(digest);
      }
      if (++pages > 100_000) throw new ApiError(`list ${this.spec.plural}: more than 100000 pages`, 'protocol');
      if (this.stopped) return true;
      if (!rv) throw new ApiError(`list ${this.spec.plural}: no resourceVersion in the answer`, 'protocol');
      // Added once the page has passed every check a whole list must pass.
      if (appending && items.length) {
        count += items.length;
        await this.sink.addPage!(items.splice(0));
        if (this.stopped) return true;
      }
      // A long list that keeps delivering pages is working.
      this.blindTimer?.refresh();
    } while (cont);
    if (this.missingLogged) {
      this.missingLogged = false;
      this.log.info({ kind: this.spec.kind }, `${this.spec.kind} is served now`);
    }
    if (!appending) await this.sink.replace(items);
    if (this.stopped) return true;
    this.sink.flush();
    this.resourceVersion = rv;
    this.markSynced();
    this.log.debug({ kind: this.spec.kind, items: count + items.length, pages, resourceVersion: rv, appended: appending || undefined }, 'listed');
    return true;
  }

  /** GETs one page of the list and adds its objects, converted, to `items`; where the list stands after it. */
  private async listPage(query: Record<string, string>, items: unknown[]): Promise<ListPosition> {
    const what = `list ${this.spec.plural}`;
    const signal = this.abort.signal;
    if (this.sink.readPage && this.transport.getBody) {
      const page = await this.sink.readPage(await this.transport.getBody(this.spec.path, query, signal), what);
      for (const it of page.items) items.push(it);
      return page;
    }
    const body = await this.transport.getJson(this.spec.path, query, signal);
    if (!isListAnswer(body)) throw new ApiError(`${what}: the answer is not a list`, 'protocol');
    // Converted in slices (src/slices.ts): many clusters' pages arrive at once.
    const convert = this.sink.convert?.bind(this.sink);
    let n = 0;
    for (const it of body.items) {
      if (!isListItem(it)) continue;
      const item = convert ? convert(it) : it;
      if (item !== undefined) items.push(item);
      if ((++n & 127) === 0 && sliceSpent()) await nextSlice();
    }
    return listPosition(body);
  }

  private async kindMissing(): Promise<void> {
    if (!this.missingLogged) {
      this.missingLogged = true;
      this.log.warn(
        { kind: this.spec.kind, path: this.spec.path },
        `${this.spec.kind} is not served by this cluster (404: CRD not installed?); treating the cluster as having none`,
      );
    }
    await this.sink.replace([]);
    this.sink.flush();
    this.resourceVersion = '';
    this.markSynced();
  }

  private markSynced(): void {
    this.clearBlind();
    this.healthy = true;
    this.synced = true;
    this.quiet.reset();
    this.sink.synced();
  }

  // ---- WATCH ----------------------------------------------------------------------------

  private watchTimeout(): number {
    const t = this.timing.watchTimeoutSeconds;
    const j = this.timing.watchTimeoutJitter;
    return Math.max(1, Math.round(t * (1 - j + Math.random() * 2 * j)));
  }

  private async watch(): Promise<WatchEnd> {
    const timeoutSeconds = this.watchTimeout();
    const query: Record<string, string> = {
      watch: 'true',
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    };
    let stream: OpenStream;
    try {
      stream = await this.transport.openStream(this.spec.path, query, this.abort.signal);
    } catch (e) {
      if (this.spec.optional && e instanceof ApiError && e.status === 404) return { how: 'missing' };
      throw e;
    }
    const opened = Date.now();
    const { response, abort } = stream;
    return new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      let streamError: unknown;
      // The watch works once it delivers a line or stays open a moment: one that ends at once
      // (a reconnect storm) does not. A watch resumed after a failure replays what was missed first.
      const proof = setTimeout(() => this.working(), Math.min(WATCH_PROOF_MS, this.timing.staleAfterMs / 3));
      const finish = (end: WatchEnd | ApiError, abortIt: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        clearTimeout(proof);
        this.abort.signal.removeEventListener('abort', onStop);
        if (abortIt) abort();
        if (end instanceof ApiError) reject(end);
        else resolve(end);
      };
      const onStop = () => finish(new ApiError('stopped', 'aborted'), true);
      this.abort.signal.addEventListener('abort', onStop, { once: true });
      const watchdog = setTimeout(() => finish({ how: 'idle' }, true), this.timing.idleLimitMs);

      /** Handles complete lines; returns an end when the watch must stop here. */
      const handle = (line: string): WatchEnd | ApiError | undefined => {
        if (line.trim() === '') return undefined;
        let ev: { type?: unknown; object?: unknown };
        try {
          ev = JSON.parse(line) as typeof ev;
          if (!ev || typeof ev !== 'object' || typeof ev.type !== 'string' || !ev.object || typeof ev.object !== 'object') throw new Error('not a watch event');
        } catch (e) {
          this.quiet.warn({ kind: this.spec.kind }, 'malformed watch line; re-listing', { line: line.slice(0, 120), error: errorText(e) });
          return { how: 'malformed' };
        }
        const obj = ev.object as Obj;
        const rv = (obj.metadata as Obj | undefined)?.resourceVersion;
        switch (ev.type) {
          case 'ADDED':
          case 'MODIFIED':
          case 'DELETED':
            this.sink.event(ev.type, obj);
            if (typeof rv === 'string' && rv) this.resourceVersion = rv;
            return undefined;
          case 'BOOKMARK':
            if (typeof rv === 'string' && rv) this.resourceVersion = rv;
            return undefined;
          case 'ERROR': {
            const code = Number(obj.code);
            if (code === 410) return { how: 'expired' };
            if (aheadOfServer(obj)) return { how: 'ahead' };
            const message = typeof obj.message === 'string' ? obj.message : 'no message';
            return new ApiError(`watch ${this.spec.plural}: error event ${Number.isFinite(code) ? code : '?'}: ${message}`, 'http', Number.isFinite(code) ? code : undefined);
          }
          default:
            this.log.debug({ kind: this.spec.kind, type: ev.type }, 'ignoring watch event of unknown type');
            return undefined;
        }
      };

      /**
       * The line under way: its parts as they came and their length. Joined once, when its end
       * comes (appending each chunk to one string and searching it whole would copy and scan a
       * long line again at every chunk: quadratic in its length).
       */
      let parts: string[] = [];
      let partsLength = 0;
      const takeLine = (tail: string): string => {
        if (parts.length === 0) return tail;
        parts.push(tail);
        const line = parts.join('');
        parts = [];
        partsLength = 0;
        return line;
      };

      /** Reads a chunk's complete lines (the rest waits for its end); `final`: the stream ended. */
      const drain = (chunk: string, final: boolean): WatchEnd | ApiError | undefined => {
        let end: WatchEnd | ApiError | undefined;
        let from = 0;
        let nl: number;
        while (!end && (nl = chunk.indexOf('\n', from)) >= 0) {
          end = handle(takeLine(chunk.slice(from, nl)));
          from = nl + 1;
        }
        if (!end && from < chunk.length) {
          parts.push(from ? chunk.slice(from) : chunk);
          partsLength += chunk.length - from;
        }
        if (!end && final && parts.length) end = handle(takeLine(''));
        // A line that never ends is malformed, whatever it starts with, rather than buffered without bound.
        if (!end && partsLength > MAX_LINE) {
          const head = takeLine('').slice(0, 120);
          this.quiet.warn({ kind: this.spec.kind }, 'malformed watch line; re-listing', { line: head, error: `a line longer than ${MAX_LINE} characters` });
          end = { how: 'malformed' };
        }
        this.sink.flush();
        return end;
      };

      /** drain(), but a throw (a defect under the sink) ends this watch as a failure instead of escaping from a stream handler, which would end the process. */
      const drained = (chunk: string, final: boolean): WatchEnd | ApiError | undefined => {
        try {
          return drain(chunk, final);
        } catch (e) {
          this.log.error({ err: e, kind: this.spec.kind }, 'applying watch events failed');
          return new ApiError(`watch ${this.spec.plural}: internal error: ${errorText(e)}`, 'protocol');
        }
      };

      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (settled) return;
        watchdog.refresh();
        const end = drained(chunk, false);
        if (end) finish(end, true);
        else this.working();
      });
      response.on('end', () => {
        if (settled) return;
        const end = drained('', true);
        if (end) return finish(end, false);
        // The server ended the stream: routine when it ran for about the asked timeout.
        const routine = Date.now() - opened >= timeoutSeconds * 1000 * 0.5;
        finish({ how: 'clean', routine }, false);
      });
      response.on('error', (e) => {
        streamError = e;
      });
      response.on('close', () => {
        if (settled) return;
        const code = (streamError as NodeJS.ErrnoException | undefined)?.code;
        finish(new ApiError(`watch ${this.spec.plural}: connection lost${code ? `: ${code}` : streamError ? `: ${errorText(streamError)}` : ''}`, 'network'), false);
      });
    });
  }
}
