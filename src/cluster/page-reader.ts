// Reads the pages of Services and EndpointSlices that LISTs bring, off the main thread when they
// are big. Parsing and converting a page of 500 EndpointSlices takes the main thread 4-5 ms, and
// the collections of the garbage it leaves; a federation of twenty big clusters lists 400 such
// pages at start and at every re-list, while the main thread also builds the zone and answers
// queries. A worker thread (page-worker.ts) parses and converts the pages instead; the main
// thread only reads the converted objects back (1 ms a page) and adopts them (objects.ts).
//
// One worker serves every cluster, a page at a time (it holds at most MAX_POSTED), started when
// a big page arrives and stopped once no page came for idleMs (its memory goes with it, and the C
// allocator is trimmed: src/native.ts). Small
// pages are read here: a worker's round trip is not worth it for them.
//
// Failures: a worker that cannot start (its file missing, a platform without threads) leaves
// every page to the main thread from then on; the lists it failed say so in their reasons. A
// worker that dies while reading (out of memory on a giant page, a defect) fails the pages it
// held and those waiting for it, as a failed request would: their lists start again, paced as
// after any failure, and the next page starts a new worker. So does one that holds pages without
// answering for stuckMs (longer while it parses a big manifest file: MANIFEST_MS_PER_MIB): every
// cluster's pages wait for it.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { nextSlice, sliceSpent } from '../slices.js';
import { convertPage, type ConvertedPage, type ListPosition, type PageKind } from './list-page.js';
import { adoptService, adoptSlice, type SlimEndpointSlice, type SlimService } from './objects.js';
import { ApiError } from './supervisor.js';
import { ManifestError, parseManifestText, type ManifestInventory } from './manifest.js';
import { trimAllocator } from '../native.js';
import { pushAll } from '../lists.js';

/** A page of a list, as JSON bytes; or a manifest file's text (files.ts), by the file's name. */
export type PageRequest = { id: number; kind: PageKind; body: Uint8Array } | { id: number; kind: 'manifest'; file: string; text: string };

/** What the main thread asks the worker: a page (or manifest) read, or the next batch of page `id`'s objects. */
export type WorkerRequest = PageRequest | { id: number; kind: 'next' };

export type PageReply =
  /** `more`: the page's objects come in batches (PAGE_BATCH), and more follow once asked for (WorkerRequest 'next'). */
  | { id: number; page: ConvertedPage; more?: true }
  | { id: number; inventory: ManifestInventory }
  | { id: number; problem: 'not JSON' | 'not a list' }
  | { id: number; manifestError: string }
  | { id: number; defect: string }
  | { ready: true };

export interface ReadPage extends ListPosition {
  /** The page's objects, as fedns holds them. */
  items: Array<SlimService | SlimEndpointSlice>;
  /** Why objects were left out, one per object. */
  skipped: string[];
}

export interface PageReaderOptions {
  /** Pages of fewer bytes are read on the calling thread. Default 64 KiB. */
  minWorkerBytes?: number;
  /** A worker without a page for this long stops. Default 1 s. */
  idleMs?: number;
  /**
   * A worker that holds pages and answers none for this long is stopped. Default 60 s; more while
   * it holds a manifest file (MANIFEST_MS_PER_MIB).
   */
  stuckMs?: number;
  /** The worker's script (tests). Default page-worker.js of this build. */
  workerFile?: string;
  /**
   * Called once a worker stopped for want of pages: a burst of lists has ended. Default
   * trimAllocator (src/native.ts): the C allocator gives back what the pages and the worker's
   * arena took.
   */
  afterBurst?: () => void;
}

/** page-worker.js beside this module; run from the TypeScript sources (the tests), the built one. */
function defaultWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return fileURLToPath(new URL('./page-worker.js', import.meta.url));
  return fileURLToPath(new URL('../../dist/src/cluster/page-worker.js', import.meta.url));
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * `items` made, in place, objects this thread holds (`adopt`: objects.ts), after a structured
 * clone from the worker; in slices, since many pages arrive at once.
 */
async function adopted<T>(items: T[], adopt: (item: T) => T): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    items[i] = adopt(items[i]);
    if ((i & 127) === 127 && sliceSpent()) await nextSlice();
  }
}

/** A page that is not a list, read here or on the worker: the same error either way. */
function pageProblem(what: string, problem: 'not JSON' | 'not a list'): ApiError {
  return new ApiError(`${what}: the answer is ${problem}`, 'protocol');
}

interface Pending {
  what: string;
  /** The batches of a big page come so far (PAGE_BATCH). */
  batches?: ConvertedPage;
  /** Time the worker may take over stuckMs while it holds this request (a big manifest's). */
  allowMs: number;
  /** Handed to the worker (post). */
  posted?: true;
  resolve: (result: ConvertedPage | ManifestInventory) => void;
  reject: (e: Error) => void;
}

/**
 * Pages the worker holds at most: one it reads and one ready next. The rest wait here: answers
 * the main thread has not taken yet are read back all at once when it does (Node.js delivers a
 * port's queued messages in one go). On the scale benchmark (benchmarks/scale.ts, 4 runs each),
 * with every page handed over at once the main thread stalled up to 135 ms during the sync and
 * 206 ms during a re-list; with 4 held, up to 112 and 111 ms; with 2, up to 59 and 74 ms.
 */
const MAX_POSTED = 2;

/**
 * Time a manifest's text adds to stuckMs while the worker holds it, per MiB: YAML takes about a
 * second per MiB here, several on a loaded machine, and the largest file read (64 MiB) longer
 * than stuckMs. A worker stopped for it would fail the file every time it is read, and every
 * cluster's list pages it held.
 */
const MANIFEST_MS_PER_MIB = 10_000;

export class PageReader {
  /** Pages (and manifest texts) of fewer bytes are read on the calling thread. */
  readonly minWorkerBytes: number;
  private readonly idleMs: number;
  private readonly workerFile: string;
  private worker?: Worker;
  /** No worker can start here: every page is read on the calling thread. */
  private unavailable = false;
  private readonly pending = new Map<number, Pending>();
  /** Pages not handed to the worker yet, in order, and how many it holds. */
  private readonly waiting: Array<{ request: PageRequest; transfer: ArrayBuffer[] }> = [];
  private posted = 0;
  private nextId = 1;
  private idleTimer?: NodeJS.Timeout;
  private readonly stuckMs: number;
  private readonly afterBurst: () => void;
  /** Runs while the worker holds pages; restarted at each answer. */
  private stuckTimer?: NodeJS.Timeout;
  /** Workers started, and pages read by workers (tests, logs). */
  workersStarted = 0;
  pagesOnWorker = 0;

  constructor(options: PageReaderOptions = {}) {
    this.minWorkerBytes = options.minWorkerBytes ?? 64 * 1024;
    this.idleMs = options.idleMs ?? 1000;
    this.stuckMs = options.stuckMs ?? 60_000;
    this.workerFile = options.workerFile ?? defaultWorkerFile();
    this.afterBurst = options.afterBurst ?? trimAllocator;
  }

  /**
   * A page's body (JSON bytes) read as `kind`; `what` names the request in errors ("list
   * endpointslices"). Throws an ApiError when the body is not a list or a worker failed on it,
   * and an Error for a defect the worker met.
   */
  async read(kind: PageKind, body: Buffer, what: string): Promise<ReadPage> {
    const worker = body.length < this.minWorkerBytes ? undefined : this.workerToUse();
    if (!worker) {
      if (sliceSpent()) await nextSlice();
      return this.checked(convertPage(kind, body.toString('utf8')), what);
    }
    const view = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    // A buffer of its own moves to the worker without a copy; a slice of a shared one is copied.
    const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
    const page = (await this.onWorker(worker, { kind, body: view }, own ? [body.buffer as ArrayBuffer] : [], what)) as ConvertedPage;
    const seen = new Map<object, unknown>();
    await adopted(page.items, (item) => (kind === 'Service' ? adoptService(item as SlimService, seen) : adoptSlice(item as SlimEndpointSlice, seen)));
    return page;
  }

  /**
   * A manifest file's objects (files.ts), parsed and converted on the worker when it has one:
   * YAML takes about a second per MiB. Throws ManifestError when the file does not parse, an
   * ApiError when the worker failed on it.
   */
  async readManifest(file: string, text: string): Promise<ManifestInventory> {
    const worker = text.length < this.minWorkerBytes ? undefined : this.workerToUse();
    if (!worker) return parseManifestText(file, text);
    const allowMs = Math.ceil((text.length / 2 ** 20) * MANIFEST_MS_PER_MIB);
    const inv = (await this.onWorker(worker, { kind: 'manifest', file, text }, [], file, allowMs)) as ManifestInventory;
    const seen = new Map<object, unknown>();
    await adopted(inv.services, (s) => adoptService(s, seen));
    await adopted(inv.slices, (s) => adoptSlice(s, seen));
    return inv;
  }

  private checked(page: ConvertedPage | 'not JSON' | 'not a list', what: string): ReadPage {
    if (typeof page === 'string') throw pageProblem(what, page);
    return page;
  }

  /** The running worker, or a new one; undefined where none can start (pages are then read here). */
  private workerToUse(): Worker | undefined {
    if (this.unavailable) return undefined;
    if (this.worker) return this.worker;
    try {
      return this.start();
    } catch {
      // Refused at once (no threads here): the same as a worker that cannot load its code.
      this.unavailable = true;
      return undefined;
    }
  }

  private onWorker(worker: Worker, request: DistributiveOmit<PageRequest, 'id'>, transfer: ArrayBuffer[], what: string, allowMs = 0): Promise<ConvertedPage | ManifestInventory> {
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { what, allowMs, resolve, reject });
      this.waiting.push({ request: { ...request, id }, transfer });
      this.post(worker);
      // The first request held: the wait for its answer begins (with its allowance, posted now).
      if (this.pending.size === 1) this.watch(worker);
    });
  }

  /** Hands the worker pages waiting, up to MAX_POSTED. */
  private post(worker: Worker): void {
    while (this.posted < MAX_POSTED && this.waiting.length > 0) {
      const { request, transfer } = this.waiting.shift()!;
      worker.postMessage(request satisfies WorkerRequest, transfer);
      this.pending.get(request.id)!.posted = true;
      this.posted++;
    }
  }

  private start(): Worker {
    const worker = new Worker(this.workerFile);
    this.worker = worker;
    this.workersStarted++;
    // A worker does not keep fedns running; its idle timer stops it.
    worker.unref();
    let failure: Error | undefined;
    /** This worker has loaded its code. */
    let ready = false;
    worker.on('message', (m: PageReply) => {
      if ('ready' in m) {
        ready = true;
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      if ('page' in m && (m.more || p.batches)) {
        // A batch of a big page: its objects kept, the next asked for (read in a turn of its own).
        if (p.batches) {
          pushAll(p.batches.items, m.page.items);
          pushAll(p.batches.skipped, m.page.skipped);
        } else p.batches = m.page;
        if (m.more) {
          worker.postMessage({ id: m.id, kind: 'next' } satisfies WorkerRequest);
          this.watch(worker);
          return;
        }
        m.page = p.batches;
      }
      this.pending.delete(m.id);
      this.posted--;
      this.post(worker);
      if ('page' in m || 'inventory' in m) {
        this.pagesOnWorker++;
        p.resolve('page' in m ? m.page : m.inventory);
      } else if ('problem' in m) p.reject(pageProblem(p.what, m.problem));
      else if ('manifestError' in m) p.reject(new ManifestError(p.what, m.manifestError));
      else p.reject(new Error(`${p.what}: reading the page failed: ${m.defect}`));
      if (this.pending.size > 0) this.watch(worker);
      else {
        clearTimeout(this.stuckTimer);
        this.idleTimer = setTimeout(() => this.stopWorker(worker), this.idleMs).unref();
      }
    });
    worker.on('error', (e) => {
      failure = e;
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return; // stopped on purpose
      this.worker = undefined;
      clearTimeout(this.idleTimer);
      clearTimeout(this.stuckTimer);
      const reason = failure ? failure.message : `exit code ${code}`;
      // One that never loaded its code would not load it next time either: the reasons of the
      // lists it failed say so, in the clusters' health and log.
      if (!ready) this.unavailable = true;
      const why = ready ? `the list page worker stopped (${reason})` : `the list page worker cannot start (${reason}); pages are read on the main thread from now on`;
      for (const p of this.pending.values()) p.reject(new ApiError(`${p.what}: ${why}`, 'protocol'));
      this.forget();
    });
    return worker;
  }

  /**
   * (Re)starts the wait for the worker's next answer: one that does not come fails its pages.
   * The manifests it holds (posted, not waiting) lengthen the wait.
   */
  private watch(worker: Worker): void {
    clearTimeout(this.stuckTimer);
    let ms = this.stuckMs;
    // Requests are posted in the order they came: those posted come first.
    for (const p of this.pending.values()) {
      if (!p.posted) break;
      ms += p.allowMs;
    }
    this.stuckTimer = setTimeout(() => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      void worker.terminate();
      const why = `the list page worker stopped (no answer for ${ms / 1000} s)`;
      for (const p of this.pending.values()) p.reject(new ApiError(`${p.what}: ${why}`, 'protocol'));
      this.forget();
    }, ms).unref();
  }

  private stopWorker(worker: Worker): void {
    if (this.worker !== worker || this.pending.size > 0) return;
    this.worker = undefined;
    // Once the thread is gone: its arena is free then. Not if a new burst began meanwhile (its
    // own end trims). Trimming is only a saving: a failure is no reason to stop.
    void worker
      .terminate()
      .then(() => {
        if (this.worker === undefined && this.pending.size === 0) this.afterBurst();
      })
      .catch(() => {});
  }

  /** Whether a worker is running (tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Stops the worker; pages it held fail. */
  close(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.stuckTimer);
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    void worker.terminate();
    for (const p of this.pending.values()) p.reject(new ApiError(`${p.what}: stopped`, 'aborted'));
    this.forget();
  }

  /** The worker went: nothing is held or waiting any more (the pages' promises are settled). */
  private forget(): void {
    this.pending.clear();
    this.waiting.length = 0;
    this.posted = 0;
  }
}

/** The page reader every kube cluster of this process shares. */
export const pageReader = new PageReader();
