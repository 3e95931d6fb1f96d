// A member cluster read from a directory of Kubernetes manifests (what
// `kubectl get services,endpointslices,serviceexports,serviceimports,clusterproperties -A -o yaml` prints: a List, or
// multi-document YAML). The directory is watched; a broken file keeps the last good state.
// Node manifests feed the cluster's learned client networks when it is configured
// clientNetworks: auto (as a node watch does for a kube source).
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Logger } from 'pino';
import {
  ObjectError,
  slimEndpointSlice,
  slimNode,
  slimService,
  slimServiceExport,
  type Kind,
  type SlimNode,
  slimServiceImport,
  slimClusterProperty,
} from './objects.js';
import { NodeNetworks } from './nodes.js';
import { checkRegularFile, readRegularFile, UnreadableFile } from '../regular-file.js';
import { pushAll } from '../lists.js';
import type { ClusterInventory, ClusterState } from './state.js';
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

/** What a manifest directory holds: the cluster's objects, and its Nodes. */
export interface ManifestInventory extends ClusterInventory {
  nodes: SlimNode[];
  /**
   * Objects skipped because fedns cannot read them (a name that is not a DNS label, a Service
   * without metadata): their kind, and "file: what is wrong". The kube source skips such objects
   * too; the rest of the file, and the cluster, are read as usual.
   */
  unreadable: { kind: Kind | 'Node'; what: string }[];
}

const emptyInventory = (): ManifestInventory => ({ services: [], slices: [], exports: [], imports: [], properties: [], nodes: [], unreadable: [] });

export class ManifestError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/**
 * Reads a directory's manifests into slim objects, re-parsing only the files that changed since
 * the last read (a change usually touches one file; parsing them all again cost a 400-object
 * file 120-300 ms). Throws ManifestError on the first file that cannot be parsed, and then remembers nothing new.
 */
export class ManifestReader {
  private parsed = new Map<string, { stamp: string; inv: ManifestInventory }>();
  /** Of the last read (also a failed one): the directory's fingerprint and newest file time. */
  print = '';
  newestMtimeMs = 0;

  read(dir: string): ManifestInventory {
    const inv = emptyInventory();
    const next = new Map<string, { stamp: string; inv: ManifestInventory }>();
    let files: ReturnType<typeof scan>;
    try {
      files = scan(dir);
    } catch (e) {
      this.print = `error:${(e as Error).message}`;
      throw e;
    }
    this.print = fingerprintOf(files);
    this.newestMtimeMs = files.reduce((t, f) => Math.max(t, f.mtimeMs), 0);
    for (const { file, stamp } of files) {
      let p = this.parsed.get(file);
      if (p?.stamp !== stamp) p = { stamp, inv: parseManifestFile(file) };
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

/** One manifest file: JSON (parsed as JSON, much faster) or YAML, one or more documents. */
function parseManifestFile(file: string): ManifestInventory {
  const inv = emptyInventory();
  let text: string;
  try {
    text = readRegularFile(file, MAX_MANIFEST, 'manifest');
  } catch (e) {
    throw unreadableManifest(e, file);
  }
  if (/\.json$/i.test(file)) {
    if (text.trim() === '') return inv;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new ManifestError(file, `JSON: ${(e as Error).message}`);
    }
    if (obj != null) collect(obj, file, inv);
    return inv;
  }
  const docs = parseAllDocuments(text);
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new ManifestError(file, `YAML: ${doc.errors[0].message.split('\n')[0].replace(/:$/, '')}`);
    let obj: unknown;
    try {
      obj = doc.toJS();
    } catch (e) {
      // The reader refuses aliases that expand without bound ("billion laughs").
      throw new ManifestError(file, `YAML: ${(e as Error).message}`);
    }
    if (obj == null) continue;
    collect(obj, file, inv);
  }
  return inv;
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

function collect(obj: unknown, file: string, inv: ManifestInventory): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ManifestError(file, 'expected a Kubernetes object or List');
  const o = obj as Record<string, any>;
  const kind = o.kind;
  try {
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(o.items)) {
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
      for (const item of o.items) collect(itemKind && item && !item.kind ? { ...item, kind: itemKind } : item, file, inv);
    } else if (kind === 'Service') inv.services.push(slimService(o));
    else if (kind === 'EndpointSlice') inv.slices.push(slimEndpointSlice(o));
    else if (kind === 'ServiceExport') inv.exports.push(slimServiceExport(o));
    else if (kind === 'Node') inv.nodes.push(slimNode(o));
    else if (kind === 'ServiceImport') inv.imports!.push(slimServiceImport(o));
    else if (kind === 'ClusterProperty') inv.properties!.push(slimClusterProperty(o));
    else if (typeof kind !== 'string') throw new ManifestError(file, 'object without a kind');
    // Other kinds (Deployments, ...) are ignored.
  } catch (e) {
    if (!(e instanceof ObjectError)) throw e;
    inv.unreadable.push({ kind: kind as Kind | 'Node', what: `${file}: ${e.message}` });
  }
}

/**
 * Every manifest file with a stamp that a rewrite in place or a rename over it changes. Throws
 * ManifestError for one that is not a regular file of at most MAX_MANIFEST bytes (symlinks are
 * followed: a mounted ConfigMap's files are symlinks).
 */
function scan(dir: string): { file: string; stamp: string; mtimeMs: number }[] {
  return listManifests(dir).map((file) => {
    let st;
    try {
      st = checkRegularFile(file, MAX_MANIFEST, 'manifest');
    } catch (e) {
      throw unreadableManifest(e, file);
    }
    return { file, stamp: `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`, mtimeMs: st.mtimeMs };
  });
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

  constructor(
    private readonly state: ClusterState,
    private readonly dir: string,
    private readonly log: Logger,
    options: {
      /** Fallback poll interval (ms); fs.watch is the fast path. Default 500. */
      pollMs?: number;
      /** clientNetworks: auto: the Nodes' pod CIDRs and InternalIPs become the cluster's learnedNetworks. */
      learnNetworks?: boolean;
    } = {},
  ) {
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
    this.reload();
    this.poll = setInterval(() => {
      if (fingerprint(this.dir) !== this.lastPrint) this.soon();
    }, this.pollMs);
    this.poll.unref();
  }

  private soon(): void {
    if (this.debounce) clearTimeout(this.debounce);
    // Editors write files in several steps; read once they are done.
    this.debounce = setTimeout(() => this.reload(), 50);
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

  /** Re-reads the directory and applies the difference. */
  reload(): void {
    // Watchers before reading: a file written meanwhile is either read now or seen by a watcher.
    if (this.watching) this.syncWatchers();
    let inv: ManifestInventory;
    try {
      inv = this.reader.read(this.dir);
    } catch (e) {
      this.lastPrint = this.reader.print;
      const msg = (e as Error).message;
      if (msg !== this.lastError) {
        this.log.error({ error: msg }, 'cannot read cluster manifests; keeping the last good state');
        this.lastError = msg;
      }
      // What the cluster holds now is unknown: its last data is served as stale, then expires.
      this.state.markBroken(msg);
      this.state.flush();
      return;
    }
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
    this.state.replaceAll(inv);
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
  }
}
