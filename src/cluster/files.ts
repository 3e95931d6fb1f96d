// A member cluster read from a directory of Kubernetes manifests (what
// `kubectl get services,endpointslices,serviceexports,serviceimports,clusterproperties -A -o yaml` prints: a List, or
// multi-document YAML). The directory is watched; a broken file keeps the last good state.
// Node manifests feed the cluster's learned client networks when it is configured
// clientNetworks: auto (as a node watch does for a kube source).
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SlimNode } from './objects.js';
import { emptyInventory, ManifestError, parseManifestText, type ManifestInventory } from './manifest.js';
import { NodeNetworks } from './nodes.js';
import { pageReader, type PageReader } from './page-reader.js';
import { ApiError } from './supervisor.js';
import { checkRegularFile, readRegularFile, UnreadableFile } from '../regular-file.js';
import { pushAll } from '../lists.js';
import type { ClusterState } from './state.js';
import type { ClusterSource } from './source.js';

const MANIFEST = /\.(ya?ml|json)$/i;

/**
 * Largest manifest file read: kubectl's YAML for some 10,000 Services with their EndpointSlices.
 * A larger cluster is split into several files (subdirectories are read too).
 */
export const MAX_MANIFEST = 64 * 1024 * 1024;

/**
 * A manifest file that is not read (a FIFO, a device, a dangling symlink, too large) as a
 * ManifestError naming it and what to do. Only regular files are read: reading a FIFO waits for
 * a writer and /dev/zero never ends, and either would stop the whole server.
 */
function unreadableManifest(e: unknown, file: string): unknown {
  if (!(e instanceof UnreadableFile)) return e;
  if (e.code) return new ManifestError(file, e.detail);
  if (e.kind) return new ManifestError(file, `${e.detail}; fedns reads only regular files: remove it, or give it a name not ending in .yaml, .yml or .json`);
  return new ManifestError(file, `${e.detail}; split it into several files`);
}



export { ManifestError, type ManifestInventory } from './manifest.js';

/**
 * After the worker failed on a read (it died, or stopped answering), not the files: the read is
 * tried again after this long, doubling up to RETRY_MAX_MS while it keeps failing.
 */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

/** One manifest file, read and parsed. */
function parseManifestFile(file: string): ManifestInventory {
  return parseManifestText(file, readManifest(file));
}

/** One manifest file's text. Throws ManifestError when it is not read (unreadableManifest). */
function readManifest(file: string): string {
  try {
    return readRegularFile(file, MAX_MANIFEST, 'manifest');
  } catch (e) {
    throw unreadableManifest(e, file);
  }
}

/**
 * Reads a directory's manifests into slim objects, re-parsing only the files that changed since
 * the last read (a change usually touches one file; parsing them all again cost a 400-object
 * file 120-300 ms). Throws ManifestError on the first file that cannot be parsed, and then remembers nothing new.
 */
export class ManifestReader {
  private parsed = new Map<string, { stamp: string; inv: ManifestInventory }>();
  /** The files the last read listed, and their stamps. */
  private scanned = new Map<string, string>();
  /** Of the last read (also a failed one): the directory's fingerprint and newest file time. */
  print = '';
  newestMtimeMs = 0;

  /** The directory's manifests, each changed file parsed here. */
  read(dir: string): ManifestInventory {
    const files = this.scan(dir);
    return this.assemble(files, parseManifestFile);
  }

  /** Whether a file of `dir` of at least `bytes` changed since the last read (one that cannot be scanned: no). */
  bigChange(dir: string, bytes: number): boolean {
    let files: ScannedFile[];
    try {
      files = scan(dir);
    } catch {
      return false;
    }
    return files.some((f) => f.size >= bytes && this.changed(f));
  }

  /** The directory's manifests, each changed file's text parsed by `parse` (a worker thread's), in turn. */
  async readAsync(dir: string, parse: (file: string, text: string) => Promise<ManifestInventory>): Promise<ManifestInventory> {
    const files = this.scan(dir);
    const fresh = new Map<string, ManifestInventory>();
    for (const f of files) if (this.changed(f)) fresh.set(f.file, await parse(f.file, readManifest(f.file)));
    return this.assemble(files, (file) => fresh.get(file)!);
  }

  /** Whether `f` is new or changed since the last read that succeeded. */
  private changed(f: ScannedFile): boolean {
    return this.parsed.get(f.file)?.stamp !== f.stamp;
  }

  /** Whether `file` is gone, or no longer as the last read listed it. */
  changedSinceScan(file: string): boolean {
    try {
      return stampOf(file) !== this.scanned.get(file);
    } catch {
      return true;
    }
  }

  private scan(dir: string): ScannedFile[] {
    let files: ScannedFile[];
    try {
      files = scan(dir);
    } catch (e) {
      this.print = `error:${(e as Error).message}`;
      this.scanned.clear();
      throw e;
    }
    this.scanned = new Map(files.map((f) => [f.file, f.stamp]));
    this.print = fingerprintOf(files);
    this.newestMtimeMs = files.reduce((t, f) => Math.max(t, f.mtimeMs), 0);
    return files;
  }

  /** The inventory of `files`: those unchanged since the last read as they were, the others from `parse`. */
  private assemble(files: ScannedFile[], parse: (file: string) => ManifestInventory): ManifestInventory {
    const inv = emptyInventory();
    const next = new Map<string, { stamp: string; inv: ManifestInventory }>();
    for (const { file, stamp } of files) {
      let p = this.parsed.get(file);
      if (p?.stamp !== stamp) p = { stamp, inv: parse(file) };
      next.set(file, p);
      pushAll(inv.services, p.inv.services);
      pushAll(inv.slices, p.inv.slices);
      pushAll(inv.exports, p.inv.exports);
      pushAll(inv.nodes, p.inv.nodes);
      pushAll(inv.imports!, p.inv.imports!);
      pushAll(inv.properties!, p.inv.properties!);
      pushAll(inv.unreadable, p.inv.unreadable);
    }
    this.parsed = next;
    return inv;
  }
}

/** Reads every manifest file of `dir` into slim objects. Throws ManifestError on the first file that cannot be parsed. */
export function readManifestDir(dir: string): ManifestInventory {
  return new ManifestReader().read(dir);
}

function listManifests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name);
    // Hidden entries are skipped, directories too: a ConfigMap mount keeps its files in
    // "..2026_01_01..." behind the names it shows, which would read each manifest twice.
    if (entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) pushAll(out, listManifests(p));
    else if (MANIFEST.test(entry.name)) out.push(p);
  }
  return out;
}

/**
 * Every manifest file with a stamp that a rewrite in place or a rename over it changes. Throws
 * ManifestError for one that is not a regular file of at most MAX_MANIFEST bytes (symlinks are
 * followed: a mounted ConfigMap's files are symlinks).
 */
interface ScannedFile {
  file: string;
  stamp: string;
  mtimeMs: number;
  size: number;
}

function scan(dir: string): ScannedFile[] {
  return listManifests(dir).map((file) => {
    let st;
    try {
      st = checkRegularFile(file, MAX_MANIFEST, 'manifest');
    } catch (e) {
      throw unreadableManifest(e, file);
    }
    return { file, stamp: stamp(st), mtimeMs: st.mtimeMs, size: st.size };
  });
}

function stamp(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** A manifest file's stamp now (as scan() takes it). Throws when it is gone or not one to read. */
function stampOf(file: string): string {
  return stamp(checkRegularFile(file, MAX_MANIFEST, 'manifest'));
}

function fingerprintOf(files: { file: string; stamp: string }[]): string {
  return files.map((f) => `${f.file}:${f.stamp}`).join('|');
}

/** Cheap fingerprint of the directory (names and stamps), for the fallback poll. */
function fingerprint(dir: string): string {
  try {
    return fingerprintOf(scan(dir));
  } catch (e) {
    return `error:${(e as Error).message}`;
  }
}

/** `dir` and every directory below it. */
function listDirs(dir: string): string[] {
  const out = [dir];
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory() && !entry.name.startsWith('.')) pushAll(out, listDirs(join(dir, entry.name)));
  return out;
}

export class FileClusterSource implements ClusterSource {
  /** One non-recursive watcher per directory: Node 20's recursive fs.watch on Linux misses or
   * delays (by ~150 ms) files replaced by rename, which is how editors and tools save them. */
  private readonly watchers = new Map<string, FSWatcher>();
  /** Started (not a one-shot read): keep the watchers in step with the tree. */
  private watching = false;
  private poll?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private lastPrint = '';
  private lastError = '';
  /** The unreadable objects of the last read: each is counted and logged when it first appears, not on every read. */
  private lastUnreadable = new Set<string>();
  private readonly reader = new ManifestReader();
  private readonly pollMs: number;
  private learnNetworks: boolean;
  private readonly nodeNetworks: NodeNetworks;
  /** The Nodes of the last good read. */
  private nodes: SlimNode[] = [];
  /** A read on the worker is under way (refresh); another was asked for meanwhile. */
  private reading = false;
  private readAgain = false;
  private readonly pages: PageReader;
  /** A read tried again after the worker failed on it, and the wait before the next one. */
  private retry?: NodeJS.Timeout;
  private retryMs = RETRY_MIN_MS;

  constructor(
    private readonly state: ClusterState,
    private readonly dir: string,
    private readonly log: Logger,
    options: {
      /** Fallback poll interval (ms); fs.watch is the fast path. Default 500. */
      pollMs?: number;
      /** clientNetworks: auto: the Nodes' pod CIDRs and InternalIPs become the cluster's learnedNetworks. */
      learnNetworks?: boolean;
      /** Parses big files off the main thread (tests); default the process's. */
      pageReader?: PageReader;
    } = {},
  ) {
    this.pages = options.pageReader ?? pageReader;
    this.pollMs = options.pollMs ?? 500;
    this.learnNetworks = options.learnNetworks ?? false;
    this.nodeNetworks = new NodeNetworks(state);
  }

  /** clientNetworks changed to or from auto (a reload): learns from the Nodes last read, or forgets. */
  setLearnNetworks(on: boolean): void {
    if (on === this.learnNetworks) return;
    this.learnNetworks = on;
    if (!on) return this.nodeNetworks.clear();
    this.nodeNetworks.replace(this.nodes);
    this.nodeNetworks.flush();
  }

  start(): void {
    this.watching = true;
    // Networks a source before this one learned (its settings changed) are not this one's.
    if (!this.learnNetworks) this.nodeNetworks.clear();
    this.state.nodeWatchProblem = undefined;
    this.refresh();
    this.poll = setInterval(() => {
      if (fingerprint(this.dir) !== this.lastPrint) this.soon();
    }, this.pollMs);
    this.poll.unref();
  }

  private soon(): void {
    if (this.debounce) clearTimeout(this.debounce);
    // Editors write files in several steps; read once they are done.
    this.debounce = setTimeout(() => this.refresh(), 50);
  }

  /** Watches every directory of the tree (new ones included), and no longer-existing ones. */
  private syncWatchers(): void {
    let dirs: string[];
    try {
      dirs = listDirs(this.dir);
    } catch {
      return; // the directory is gone: the poll notices when it comes back
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, () => this.soon());
        w.on('error', (e) => {
          this.log.warn({ err: e, dir: d }, 'manifest directory watch failed; polling');
          w.close();
          this.watchers.delete(d);
        });
        this.watchers.set(d, w);
      } catch (e) {
        this.log.warn({ err: e, dir: d }, 'cannot watch manifest directory; polling');
      }
    }
    for (const [d, w] of this.watchers) {
      if (dirs.includes(d)) continue;
      w.close();
      this.watchers.delete(d);
    }
  }

  /**
   * Re-reads the directory (started, a file changed): a big file that changed is parsed on the
   * page reader's worker thread while queries are answered, and applied a slice at a time; small
   * ones are read at once, here. One read at a time: one asked for meanwhile follows it.
   */
  private refresh(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    if (!this.reader.bigChange(this.dir, this.pages.minWorkerBytes)) return this.reload();
    this.reading = true;
    void this.readOnWorker().finally(() => {
      this.reading = false;
      if (this.readAgain && this.watching) {
        this.readAgain = false;
        // The poll asked for one when the read began: it has seen that change since.
        if (fingerprint(this.dir) !== this.lastPrint) this.refresh();
      }
    });
  }

  private async readOnWorker(): Promise<void> {
    if (this.watching) this.syncWatchers();
    let inv: ManifestInventory;
    try {
      inv = await this.reader.readAsync(this.dir, (file, text) => this.pages.readManifest(file, text));
    } catch (e) {
      if (!this.watching) return;
      // The file changed since the read began (deleted or renamed while an earlier one parsed):
      // not an error of the files. The read is done again.
      if (e instanceof ManifestError && this.reader.changedSinceScan(e.file)) {
        this.readAgain = true;
        return;
      }
      this.failed(e);
      // The worker failed, not the files: nothing changes in the directory to read it again.
      if (e instanceof ApiError) this.retryLater();
      return;
    }
    // Stopped meanwhile: a source that replaced this one reads the directory anew, and its
    // objects must not be mixed with this read's (src/app.ts starts it once this one stopped).
    if (!this.watching) return;
    const before = this.adopting(inv);
    await this.state.replaceAllSliced(inv, () => !this.watching);
    if (this.watching) this.adopted(inv, before);
  }

  /** Re-reads the directory and applies the difference, at once. */
  reload(): void {
    // Watchers before reading: a file written meanwhile is either read now or seen by a watcher.
    if (this.watching) this.syncWatchers();
    let inv: ManifestInventory;
    try {
      inv = this.reader.read(this.dir);
    } catch (e) {
      return this.failed(e);
    }
    const before = this.adopting(inv);
    this.state.replaceAll(inv);
    this.adopted(inv, before);
  }

  private retryLater(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.refresh();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** A read that failed: the cluster keeps its last data, stale. */
  private failed(e: unknown): void {
    this.lastPrint = this.reader.print;
    const msg = (e as Error).message;
    if (msg !== this.lastError) {
      this.log.error({ error: msg }, 'cannot read cluster manifests; keeping the last good state');
      this.lastError = msg;
    }
    // What the cluster holds now is unknown: its last data is served as stale, then expires.
    this.state.markBroken(msg);
    this.state.flush();
  }

  /** What comes before a read's objects replace the cluster's; returns the cluster's health before. */
  private adopting(inv: ManifestInventory): ClusterState['health'] {
    this.lastPrint = this.reader.print;
    this.lastError = '';
    const unreadable = new Set<string>();
    for (const { kind, what } of inv.unreadable) {
      if (!this.lastUnreadable.has(what)) this.state.skipUnreadable(kind, what);
      unreadable.add(what);
    }
    this.lastUnreadable = unreadable;
    const before = this.state.health;
    // A file's modification is when its change began.
    if (before !== 'syncing') this.state.noteChange(this.reader.newestMtimeMs || Date.now());
    return before;
  }

  /** What comes after a read's objects replaced the cluster's. */
  private adopted(inv: ManifestInventory, before: ClusterState['health']): void {
    // Read: a retry still waiting has nothing left to do.
    clearTimeout(this.retry);
    this.retry = undefined;
    this.retryMs = RETRY_MIN_MS;
    this.nodes = inv.nodes;
    if (this.learnNetworks) {
      this.nodeNetworks.replace(inv.nodes);
      this.nodeNetworks.flush();
    }
    this.state.markLive();
    this.state.flush();
    this.log.info(
      { services: inv.services.length, endpointSlices: inv.slices.length, serviceExports: inv.exports.length },
      before === 'syncing' ? 'cluster synced from manifests' : 'cluster manifests changed',
    );
  }

  stop(): void {
    this.watching = false;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    clearTimeout(this.retry);
  }
}
