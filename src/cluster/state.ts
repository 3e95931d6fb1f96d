// One member cluster as fedns knows it: slim objects, health, and which federated services a
// change touches. Sources (files, kube) write here; the federation model reads.
import { isDeepStrictEqual } from 'node:util';
import {
  serviceKey,
  sliceKey,
  type Kind,
  type SlimEndpointSlice,
  type SlimService,
  type SlimServiceExport,
} from './objects.js';

/** See docs: syncing (never listed), live, stale (broken < grace), expired. */
export type ClusterHealth = 'syncing' | 'live' | 'stale' | 'expired';
export const HEALTH_STATES: readonly ClusterHealth[] = ['syncing', 'live', 'stale', 'expired'];

export interface ClusterInventory {
  services: SlimService[];
  slices: SlimEndpointSlice[];
  exports: SlimServiceExport[];
}

export interface ClusterListener {
  /** Federated services (namespace/name) whose inputs changed in this cluster. */
  servicesChanged(cluster: ClusterState, keys: Set<string>): void;
  /** Health, region or zones changed: every service of the cluster may answer differently. */
  clusterChanged(cluster: ClusterState): void;
}

export interface ClusterSettings {
  name: string;
  region?: string;
  zones: string[];
  addressMode: 'loadBalancer' | 'endpoints';
  /** Seconds a broken cluster stays stale before it expires. */
  gracePeriod: number;
}

export class ClusterState {
  readonly services = new Map<string, SlimService>();
  readonly slices = new Map<string, SlimEndpointSlice>();
  /** Service key -> keys of its slices. */
  readonly slicesByService = new Map<string, Set<string>>();
  readonly exports = new Map<string, SlimServiceExport>();

  health: ClusterHealth = 'syncing';
  /** Why the cluster is not live (last error), for logs, health and explain. */
  reason = 'not listed yet';
  /** ms since epoch of the last successful list or event; 0 before the first. */
  lastUpdate = 0;
  brokenSince = 0;
  /** Region and zones learned from the cluster (nodes, EndpointSlices) when config has none. */
  discoveredRegion?: string;
  readonly discoveredZones = new Set<string>();
  watchRestarts = 0;
  private expiry?: NodeJS.Timeout;
  /** Region or zones changed since the last flush: every service of the cluster is affected. */
  private topologyChanged = false;
  /** When the changes waiting to be published began (ms since epoch), for programming latency. */
  private changeTimes: number[] = [];
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
    return this.settings.zones.length ? this.settings.zones : [...this.discoveredZones].sort();
  }

  // ---- object changes -------------------------------------------------------------------

  upsert(kind: Kind, obj: SlimService | SlimEndpointSlice | SlimServiceExport): void {
    this.lastUpdate = Date.now();
    if (kind === 'Service') {
      const s = obj as SlimService;
      const key = serviceKey(s.namespace, s.name);
      if (isDeepStrictEqual(this.services.get(key), s)) return;
      this.services.set(key, s);
      this.pending.add(key);
    } else if (kind === 'EndpointSlice') {
      const s = obj as SlimEndpointSlice;
      const key = sliceKey(s);
      const old = this.slices.get(key);
      if (isDeepStrictEqual(old, s)) return;
      if (old && old.service !== s.service) this.unlinkSlice(old, key);
      this.slices.set(key, s);
      if (s.triggerTime) this.noteChange(s.triggerTime);
      if (s.service) {
        const svc = serviceKey(s.namespace, s.service);
        let set = this.slicesByService.get(svc);
        if (!set) this.slicesByService.set(svc, (set = new Set()));
        set.add(key);
        this.pending.add(svc);
      }
      this.learnZones(s);
    } else {
      const e = obj as SlimServiceExport;
      const key = serviceKey(e.namespace, e.name);
      if (this.exports.has(key)) return;
      this.exports.set(key, e);
      this.pending.add(key);
    }
  }

  remove(kind: Kind, namespace: string, name: string): void {
    this.lastUpdate = Date.now();
    const key = `${namespace}/${name}`;
    if (kind === 'Service') {
      if (this.services.delete(key)) this.pending.add(key);
    } else if (kind === 'EndpointSlice') {
      const old = this.slices.get(key);
      if (old) {
        this.slices.delete(key);
        this.unlinkSlice(old, key);
      }
    } else if (this.exports.delete(key)) {
      this.pending.add(key);
    }
  }

  private unlinkSlice(s: SlimEndpointSlice, key: string): void {
    if (!s.service) return;
    const svc = serviceKey(s.namespace, s.service);
    const set = this.slicesByService.get(svc);
    set?.delete(key);
    if (set && set.size === 0) this.slicesByService.delete(svc);
    this.pending.add(svc);
  }

  private learnZones(s: SlimEndpointSlice): void {
    if (this.settings.zones.length) return;
    let grew = false;
    for (const e of s.endpoints) {
      if (e.zone && !this.discoveredZones.has(e.zone)) {
        this.discoveredZones.add(e.zone);
        grew = true;
      }
    }
    if (grew) this.topologyChanged = true;
  }

  /** Replaces every object of one kind with a complete new list, applying only the difference. */
  replaceKind(kind: Kind, items: Array<SlimService | SlimEndpointSlice | SlimServiceExport>): void {
    const current =
      kind === 'Service' ? this.services : kind === 'EndpointSlice' ? this.slices : this.exports;
    const keep = new Set<string>();
    for (const it of items) {
      keep.add(`${it.namespace}/${it.name}`);
      this.upsert(kind, it);
    }
    for (const key of [...current.keys()]) {
      if (keep.has(key)) continue;
      const slash = key.indexOf('/');
      this.remove(kind, key.slice(0, slash), key.slice(slash + 1));
    }
  }

  /** A complete, consistent view of the cluster (a full re-list or a re-read of files). */
  replaceAll(inv: ClusterInventory): void {
    this.replaceKind('Service', inv.services);
    this.replaceKind('EndpointSlice', inv.slices);
    this.replaceKind('ServiceExport', inv.exports);
  }

  /** Records when a change began in the member cluster (for the programming-latency metric). */
  noteChange(atMs: number): void {
    if (this.changeTimes.length < 10_000) this.changeTimes.push(atMs);
  }

  /** Change start times handed over since the last call. */
  takeChangeTimes(): number[] {
    const t = this.changeTimes;
    this.changeTimes = [];
    return t;
  }

  setDiscoveredRegion(region: string | undefined): void {
    if (region === this.discoveredRegion) return;
    this.discoveredRegion = region;
    this.topologyChanged = true;
  }

  /** Hands the batched changes to the federation. */
  flush(): void {
    if (this.topologyChanged) {
      this.topologyChanged = false;
      this.pending.clear();
      this.listener.clusterChanged(this);
      return;
    }
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
    this.pending.clear();
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
    if (old.zones.length && !settings.zones.length) {
      // Learned again from the slices there are now.
      this.discoveredZones.clear();
      for (const s of this.slices.values()) this.learnZones(s);
    }
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

  /** Services of this cluster (by key) that could be federated. */
  serviceKeys(): Iterable<string> {
    return this.services.keys();
  }
}
