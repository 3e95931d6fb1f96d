// One member cluster as fedns knows it: slim objects, health, and which federated services a
// change touches. Sources (files, kube) write here; the federation model reads.
import { isDeepStrictEqual } from 'node:util';
import { sliced } from '../slices.js';
import { sameList } from '../lists.js';
import { asDnsLabel } from '../wire/name.js';
import {
  objectKey,
  sameService,
  sameSlice,
  serviceKey,
  sliceKey,
  type IgnoredValue,
  type Kind,
  type SlimEndpointSlice,
  type SlimService,
  type SlimServiceExport,
  type SlimServiceImport,
  type SlimClusterProperty,
  CLUSTER_ID_PROPERTY,
} from './objects.js';

/** See docs: syncing (never listed), live, stale (broken < grace), expired. */
export type ClusterHealth = 'syncing' | 'live' | 'stale' | 'expired';
export const HEALTH_STATES: readonly ClusterHealth[] = ['syncing', 'live', 'stale', 'expired'];

export interface ClusterInventory {
  services: SlimService[];
  slices: SlimEndpointSlice[];
  exports: SlimServiceExport[];
  /** ServiceImports and ClusterProperties (MCS); absent: none. */
  imports?: SlimServiceImport[];
  properties?: SlimClusterProperty[];
}

type Slim = SlimService | SlimEndpointSlice | SlimServiceExport | SlimServiceImport | SlimClusterProperty;

export interface ClusterListener {
  /** Federated services (namespace/name) whose inputs changed in this cluster. */
  servicesChanged(cluster: ClusterState, keys: Set<string>): void;
  /** Health, region or zones changed: every service of the cluster may answer differently. */
  clusterChanged(cluster: ClusterState): void;
  /** The networks learned from the cluster's Node objects changed (clientNetworks: auto). */
  clientNetworksChanged(cluster: ClusterState): void;
  /** An object (changed or new) had values fedns does not use: to count and report. */
  valuesIgnored(cluster: ClusterState, kind: Kind | 'Node', key: string, values: IgnoredValue[]): void;
  /** Another cluster's Service under `key` that says what `s` says, to hold instead of `s`; undefined when none does. */
  twinService(cluster: ClusterState, key: string, s: SlimService): SlimService | undefined;
}

/**
 * Most zones learned from EndpointSlices per cluster: every zone gives every service a name, so
 * tenant-written zones must not multiply the zone without bound. Real clusters have a handful.
 */
export const MAX_DISCOVERED_ZONES = 32;

/** When a change began in the member cluster (ms since epoch), and the service it changes, if one. */
export interface ChangeTime {
  at: number;
  service: string | undefined;
  /** The service a slice left for `service`: the change is answered once both are rebuilt. */
  left?: string;
  /** When (performance.now()) the federation took it over: a rebuild of its service after this answers it. */
  seen?: number;
}

/** Change times a cluster keeps until they are handed over; more in one batch are not timed. */
export const MAX_CHANGE_TIMES = 10_000;

export interface ClusterSettings {
  name: string;
  region?: string;
  zones: string[];
  addressMode: 'loadBalancer' | 'endpoints';
  /** Seconds a broken cluster stays stale before it expires. */
  gracePeriod: number;
}

/** An inventory's objects, kind by kind, in the order they are replaced. */
function inventoryKinds(inv: ClusterInventory): Array<[Kind, Slim[]]> {
  return [
    ['Service', inv.services],
    ['EndpointSlice', inv.slices],
    ['ServiceExport', inv.exports],
    ['ServiceImport', inv.imports ?? []],
    ['ClusterProperty', inv.properties ?? []],
  ];
}

/** `steps` until `stopped()` says so: checked before each step, since others run between slices. */
function* until<T>(steps: Generator<T>, stopped: () => boolean): Generator<T> {
  while (!stopped()) {
    const r = steps.next();
    if (r.done) return;
    yield r.value;
  }
}

export class ClusterState {
  readonly services = new Map<string, SlimService>();
  readonly slices = new Map<string, SlimEndpointSlice>();
  /**
   * Service key -> the key of its slice, or the keys of its slices when it has more than one (most
   * services have one: a list for each would take 56 bytes per service). Read with eachSlice().
   */
  private readonly sliceIndex = new Map<string, string | string[]>();
  readonly exports = new Map<string, SlimServiceExport>();
  /** ServiceImports by service key: the ClusterSetIPs of the member's MCS implementation. */
  readonly imports = new Map<string, SlimServiceImport>();
  /** ClusterProperties by "/name" (cluster-scoped). */
  readonly properties = new Map<string, SlimClusterProperty>();

  health: ClusterHealth = 'syncing';
  /** Why the cluster is not live (last error), for logs, health and explain. */
  reason = 'not listed yet';
  /** ms since epoch of the last successful list or event; 0 before the first. */
  lastUpdate = 0;
  brokenSince = 0;
  /** Region and zones learned from the cluster (nodes, EndpointSlices) when config has none. */
  discoveredRegion?: string;
  /** Zone -> how many EndpointSlices name it now: a zone no slice names is gone. */
  readonly discoveredZones = new Map<string, number>();
  /** The discovered zones in use (sorted), computed when the zone list changed. */
  private zoneList?: string[];
  /**
   * Networks the cluster's DNS queries come from, learned from its Node objects (podCIDRs and
   * InternalIP addresses) when the configuration says clientNetworks: auto. Sorted, no repeats.
   */
  learnedNetworks: readonly string[] = [];
  /**
   * While the networks are learned from a node watch (kube source, clientNetworks: auto): why
   * they may be out of date, '' while the node list/watch works. Undefined when no node watch
   * runs. A failing node watch keeps the last networks and does not make the cluster stale: it
   * changes no answer's data, only which clients count as this cluster's.
   */
  nodeWatchProblem?: string;
  watchRestarts = 0;
  private expiry?: NodeJS.Timeout;
  /** Region or zones changed since the last flush: every service of the cluster is affected. */
  private topologyChanged = false;
  /** When the changes waiting to be published began, for programming latency. */
  private changeTimes: ChangeTime[] = [];
  /** Batched dirty keys, flushed by flush() (sources call it at the end of a batch). */
  private pending = new Set<string>();

  constructor(
    public settings: ClusterSettings,
    private readonly listener: ClusterListener,
  ) {}

  get name(): string {
    return this.settings.name;
  }
  get region(): string | undefined {
    return this.settings.region ?? this.discoveredRegion;
  }
  /** Zones from configuration, else those seen in topology. */
  get zones(): string[] {
    if (this.settings.zones.length) return this.settings.zones;
    this.zoneList ??= this.topZones();
    return this.zoneList;
  }

  /** Past the limit, the zones most slices name (then by name): a few stray slices cannot push real zones out. */
  private topZones(): string[] {
    const all = [...this.discoveredZones];
    if (all.length <= MAX_DISCOVERED_ZONES) return all.map(([z]) => z).sort();
    const kept = all.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, MAX_DISCOVERED_ZONES);
    const left = all.slice(MAX_DISCOVERED_ZONES).map(([z]) => z);
    this.listener.valuesIgnored(this, 'EndpointSlice', `${left.length} zones over the limit of ${MAX_DISCOVERED_ZONES}`, [
      { reason: 'zone limit', value: left.slice(0, 5).join(',') },
    ]);
    return kept.map(([z]) => z).sort();
  }

  // ---- object changes -------------------------------------------------------------------

  /** The cluster's `id.k8s.io` ClusterProperty value (KEP-2149), as written; undefined without one. */
  get clusterIdProperty(): string | undefined {
    return this.properties.get(`/${CLUSTER_ID_PROPERTY}`)?.value || undefined;
  }

  upsert(kind: Kind, obj: Slim): void {
    this.lastUpdate = Date.now();
    if (kind === 'Service') {
      const s = obj as SlimService;
      const key = serviceKey(s.namespace, s.name);
      const cur = this.services.get(key);
      if (cur !== undefined && sameService(cur, s)) return;
      // One object for the clusters that have the same Service (held objects are never changed).
      this.services.set(key, this.listener.twinService(this, key, s) ?? s);
      this.pending.add(key);
      if (s.ignored) this.listener.valuesIgnored(this, kind, key, s.ignored);
    } else if (kind === 'EndpointSlice') {
      const s = obj as SlimEndpointSlice;
      const key = sliceKey(s);
      const old = this.slices.get(key);
      if (old !== undefined && sameSlice(old, s)) return;
      const moved = old !== undefined && old.service !== s.service;
      if (moved) this.unlinkSlice(old, key);
      this.slices.set(key, s);
      if (s.triggerTime) {
        const left = moved && old.service ? serviceKey(old.namespace, old.service) : undefined;
        this.noteChange(s.triggerTime, s.service ? serviceKey(s.namespace, s.service) : undefined, left);
      }
      if (s.ignored) this.listener.valuesIgnored(this, kind, key, s.ignored);
      if (s.service) {
        const svc = serviceKey(s.namespace, s.service);
        const keys = this.sliceIndex.get(svc);
        if (keys === undefined) this.sliceIndex.set(svc, key);
        else if (typeof keys === 'string') {
          if (keys !== key) this.sliceIndex.set(svc, [keys, key]);
        } else if (!keys.includes(key)) keys.push(key);
        this.pending.add(svc);
      }
      this.countZones(old, -1);
      this.countZones(s, +1);
    } else if (kind === 'ServiceImport') {
      const s = obj as SlimServiceImport;
      const key = serviceKey(s.namespace, s.name);
      if (isDeepStrictEqual(this.imports.get(key), s)) return;
      this.imports.set(key, s);
      this.pending.add(key);
      if (s.ignored) this.listener.valuesIgnored(this, kind, key, s.ignored);
    } else if (kind === 'ClusterProperty') {
      const p = obj as SlimClusterProperty;
      const key = `/${p.name}`;
      if (isDeepStrictEqual(this.properties.get(key), p)) return;
      const id = this.clusterIdProperty;
      this.properties.set(key, p);
      // The cluster ID names every headless endpoint of the cluster: all its services change.
      if (this.clusterIdProperty !== id) this.topologyChanged = true;
    } else {
      const e = obj as SlimServiceExport;
      const key = serviceKey(e.namespace, e.name);
      if (this.exports.has(key)) return;
      this.exports.set(key, e);
      this.pending.add(key);
    }
  }

  /** An object of the cluster a source could not read (ObjectError): skipped, counted and logged as an ignored value. */
  skipUnreadable(kind: Kind | 'Node', what: string): void {
    this.listener.valuesIgnored(this, kind, '', [{ reason: 'unreadable object', value: what.length > 300 ? `${what.slice(0, 297)}...` : what }]);
  }

  remove(kind: Kind, namespace: string, name: string): void {
    this.lastUpdate = Date.now();
    const key = objectKey(namespace, name);
    if (kind === 'Service') {
      if (this.services.delete(key)) this.pending.add(key);
    } else if (kind === 'EndpointSlice') {
      const old = this.slices.get(key);
      if (old) {
        this.slices.delete(key);
        this.unlinkSlice(old, key);
        this.countZones(old, -1);
      }
    } else if (kind === 'ServiceImport') {
      if (this.imports.delete(key)) this.pending.add(key);
    } else if (kind === 'ClusterProperty') {
      const id = this.clusterIdProperty;
      this.properties.delete(key);
      if (this.clusterIdProperty !== id) this.topologyChanged = true;
    } else if (this.exports.delete(key)) {
      this.pending.add(key);
    }
  }

  private unlinkSlice(s: SlimEndpointSlice, key: string): void {
    if (!s.service) return;
    const svc = serviceKey(s.namespace, s.service);
    const keys = this.sliceIndex.get(svc);
    if (keys === key) this.sliceIndex.delete(svc);
    else if (Array.isArray(keys)) {
      const at = keys.indexOf(key);
      if (at >= 0) keys.splice(at, 1);
      if (keys.length === 1) this.sliceIndex.set(svc, keys[0]);
    }
    this.pending.add(svc);
  }

  /**
   * Calls `fn` with each slice the cluster holds for the service `key` ("namespace/name"), in the
   * order they came, until `fn` returns true; returns whether one did.
   */
  eachSlice(key: string, fn: (slice: SlimEndpointSlice) => boolean | void): boolean {
    const keys = this.sliceIndex.get(key);
    if (keys === undefined) return false;
    if (typeof keys === 'string') {
      const slice = this.slices.get(keys);
      return slice !== undefined && fn(slice) === true;
    }
    for (const k of keys) {
      const slice = this.slices.get(k);
      if (slice !== undefined && fn(slice) === true) return true;
    }
    return false;
  }

  /** Adds (+1) or takes away (-1) a slice's zones; a zone appearing or going changes the topology. */
  private countZones(s: SlimEndpointSlice | undefined, by: 1 | -1): void {
    if (!s) return;
    const zones = new Set<string>();
    for (const z of s.zones) if (z) zones.add(z);
    for (const z of zones) {
      const n = (this.discoveredZones.get(z) ?? 0) + by;
      if (n > 0) this.discoveredZones.set(z, n);
      else this.discoveredZones.delete(z);
      if (n === 0 || (n === 1 && by > 0)) {
        this.topologyChanged = true;
        this.zoneList = undefined;
      }
    }
  }

  /** Replaces every object of one kind with a complete new list, applying only the difference. */
  replaceKind(kind: Kind, items: Slim[]): void {
    for (const _ of this.replacing(kind, items));
  }

  /**
   * replaceKind() a slice at a time (src/slices.ts), the event loop running between slices:
   * comparing a list of tens of thousands of objects with what the cluster holds does not hold up
   * queries. Until it settles, the cluster holds some objects of the new list and some of the old.
   */
  async replaceKindSliced(kind: Kind, items: Slim[]): Promise<void> {
    await sliced(this.replacing(kind, items));
  }

  /** How many objects of one kind the cluster holds. */
  count(kind: Kind): number {
    return this.held(kind).size;
  }

  /** Adds (or updates) objects of one kind, removing none: a page of a first list (ReflectorSink.appendsPages). */
  async addSliced(kind: Kind, items: Slim[]): Promise<void> {
    // Not a confirmation of the cluster's data: the list may still fail (the age counts from
    // the last complete list, event or bookmark).
    const confirmed = this.lastUpdate;
    await sliced(this.adding(kind, items));
    this.lastUpdate = confirmed;
  }

  private *adding(kind: Kind, items: Slim[]): Generator<void> {
    for (const it of items) {
      this.upsert(kind, it);
      yield;
    }
  }

  /** The objects of one kind, by `namespace/name` ("/name" when cluster-scoped). */
  private held(kind: Kind): Map<string, Slim> {
    return kind === 'Service'
      ? this.services
      : kind === 'EndpointSlice'
        ? this.slices
        : kind === 'ServiceImport'
          ? this.imports
          : kind === 'ClusterProperty'
            ? this.properties
            : this.exports;
  }

  /**
   * The object the cluster holds under obj's name when applying obj would change nothing (equal,
   * or a slice whose trigger time alone moved), else obj. A list into a kind that holds objects
   * collects its objects before it replaces what the cluster holds; with this, a re-list of
   * objects that did not change holds one copy of each rather than two until its end (and
   * replacing them compares an object with itself).
   */
  unchanged<T extends Slim>(kind: Kind, obj: T): T {
    const cur = this.held(kind).get(`${obj.namespace}/${obj.name}`);
    if (cur === undefined) return obj;
    const same =
      kind === 'EndpointSlice'
        ? sameSlice(cur as SlimEndpointSlice, obj as SlimEndpointSlice)
        : kind === 'Service'
          ? sameService(cur as SlimService, obj as SlimService)
          : isDeepStrictEqual(cur, obj);
    return same ? (cur as T) : obj;
  }

  /** replaceKind's steps, one per object upserted or removed. */
  private *replacing(kind: Kind, items: Slim[]): Generator<void> {
    const current = this.held(kind);
    // Into an empty kind (a first list), nothing is left to remove: no set of the list's names.
    if (current.size === 0) return yield* this.adding(kind, items);
    // A step per name, kept or not: a list of 100,000 names took 100 ms to collect and as long to
    // check against what the cluster holds, each in one go.
    const keep = new Set<string>();
    for (const it of items) {
      keep.add(`${it.namespace}/${it.name}`);
      yield;
    }
    yield* this.adding(kind, items);
    for (const key of [...current.keys()]) {
      if (!keep.has(key)) {
        const slash = key.indexOf('/');
        this.remove(kind, key.slice(0, slash), key.slice(slash + 1));
      }
      yield;
    }
  }

  /** A complete, consistent view of the cluster (a full re-list or a re-read of files). */
  replaceAll(inv: ClusterInventory): void {
    for (const [kind, items] of inventoryKinds(inv)) this.replaceKind(kind, items);
  }

  /**
   * replaceAll() a slice at a time (replaceKindSliced). Once `stopped()` says so (its source was
   * stopped: a source that replaced it reads the cluster anew), no further object is applied.
   */
  async replaceAllSliced(inv: ClusterInventory, stopped: () => boolean = () => false): Promise<void> {
    for (const [kind, items] of inventoryKinds(inv)) await sliced(until(this.replacing(kind, items), stopped));
  }

  /**
   * Records when a change began in the member cluster (for the programming-latency metric), and
   * the service it changes (undefined: any, such as a manifest file's), and the one a slice left.
   */
  noteChange(atMs: number, service?: string, left?: string): void {
    if (this.changeTimes.length >= MAX_CHANGE_TIMES) return;
    this.changeTimes.push(left === undefined ? { at: atMs, service } : { at: atMs, service, left });
  }

  /** Change start times handed over since the last call. */
  takeChangeTimes(): ChangeTime[] {
    const t = this.changeTimes;
    this.changeTimes = [];
    return t;
  }

  setDiscoveredRegion(value: string | undefined): void {
    const region = value === undefined ? undefined : asDnsLabel(value);
    if (value !== undefined && !region) {
      this.listener.valuesIgnored(this, 'Node', 'topology.kubernetes.io/region', [{ reason: 'region', value: value.slice(0, 80) }]);
      return;
    }
    if (region === this.discoveredRegion) return;
    this.discoveredRegion = region;
    this.topologyChanged = true;
  }

  /** Replaces the learned client networks (see learnedNetworks); tells the listener when they changed. */
  setLearnedNetworks(networks: Iterable<string>): void {
    const next = [...new Set(networks)].sort();
    if (sameList(next, this.learnedNetworks)) return;
    this.learnedNetworks = next;
    this.listener.clientNetworksChanged(this);
  }

  /** A Node had values fedns does not use (networks that are no CIDR block, past a limit): to count and report. */
  nodeValuesIgnored(key: string, values: IgnoredValue[]): void {
    this.listener.valuesIgnored(this, 'Node', key, values);
  }

  /** Hands the batched changes to the federation. */
  flush(): void {
    // The keys go first, always: a service deleted in this batch is no longer among the
    // cluster's services that a topology or health change rebuilds.
    this.handOver();
    if (this.topologyChanged) {
      this.topologyChanged = false;
      this.listener.clusterChanged(this);
    }
  }

  private handOver(): void {
    if (this.pending.size === 0) return;
    const keys = this.pending;
    this.pending = new Set();
    this.listener.servicesChanged(this, keys);
  }

  // ---- health ---------------------------------------------------------------------------

  /** A complete list (or a healthy watch) has been applied. */
  markLive(): void {
    this.lastUpdate = Date.now();
    this.clearExpiry();
    this.brokenSince = 0;
    this.reason = '';
    this.setHealth('live');
  }

  /** The connection to the cluster broke; its data turns stale, then expires after the grace period. */
  markBroken(reason: string): void {
    this.reason = reason;
    if (this.health === 'syncing' || this.health === 'expired' || this.health === 'stale') return;
    this.brokenSince = Date.now();
    this.setHealth('stale');
    this.clearExpiry();
    this.expiry = setTimeout(() => this.setHealth('expired'), this.settings.gracePeriod * 1000);
    this.expiry.unref();
  }

  private setHealth(h: ClusterHealth): void {
    if (this.health === h) return;
    this.health = h;
    this.handOver();
    this.topologyChanged = false;
    this.listener.clusterChanged(this);
  }

  private clearExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
  }

  /**
   * New settings from a reload, applied in place: the data and the health stay (a reload never
   * sends a cluster back to syncing); every service of the cluster is rebuilt with them.
   */
  reconfigure(settings: ClusterSettings): void {
    const old = this.settings;
    this.settings = settings;
    // Discovered zones are counted all along: without configured zones, they are the zones again.
    if (old.zones.length && !settings.zones.length) this.zoneList = undefined;
    if (settings.gracePeriod !== old.gracePeriod && this.brokenSince && (this.health === 'stale' || this.health === 'expired')) {
      // The grace period counts from when the cluster broke, not from the reload.
      this.clearExpiry();
      const left = this.brokenSince + settings.gracePeriod * 1000 - Date.now();
      if (left > 0) {
        this.expiry = setTimeout(() => this.setHealth('expired'), left);
        this.expiry.unref();
      }
      this.setHealth(left > 0 ? 'stale' : 'expired');
    }
    if (!isDeepStrictEqual(old, settings)) this.listener.clusterChanged(this);
  }

  /** Releases timers; the state is no longer used. */
  dispose(): void {
    this.clearExpiry();
  }

  /**
   * Services this cluster has a say in (by key): those it runs, exports or imports (an exporting
   * cluster's ServiceImport gives the ClusterSetIP of a service it need not run), and those
   * changed since the last flush (deleted ones too). A key may come more than once.
   */
  serviceKeys(): string[] {
    // Copied without a generator or a Set between: 100,000 keys take a millisecond this way, ten through either.
    const keys = [...this.services.keys()];
    for (const k of this.exports.keys()) keys.push(k);
    for (const k of this.imports.keys()) keys.push(k);
    for (const k of this.pending) keys.push(k);
    return keys;
  }
}
