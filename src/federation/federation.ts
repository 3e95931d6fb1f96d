// The federation: member clusters in, zone snapshots out. A change in one cluster rebuilds
// only the federated services it touches; publishing is batched per event-loop turn.
import { EventEmitter } from 'node:events';
import { ClusterState, type ClusterListener, type ClusterSettings } from '../cluster/state.js';
import type { IgnoredValue, Kind } from '../cluster/objects.js';
import { serviceNames, withoutLongNames, type RecordSettings, type Topology } from './service-records.js';
import { nameKey } from '../wire/name.js';
import { nextSlice, SLICE_MS, sliceSpent } from '../slices.js';
import { nextSerial, ZoneBuilder, type ApexSettings, type ZoneChange, type ZoneSnapshot } from '../zone/snapshot.js';
import type { Logger } from 'pino';
import { HostnameAddresses, type ResolveHostname } from './hostnames.js';
import { IgnoredInputs } from './ignored.js';
import { federate, type FederatedService, type FederationPolicy } from './model.js';

export interface FederationEvents {
  /** A new snapshot is current. `services` is how many federated services were rebuilt. */
  published: [snapshot: ZoneSnapshot, change: ZoneChange, services: number];
  clusterHealth: [cluster: ClusterState, previous: string];
  /** A cluster's learned client networks changed (ClusterState.learnedNetworks). */
  clientNetworks: [cluster: ClusterState];
  /** Changes of a cluster now answered: seconds from when each began. */
  programmed: [cluster: string, seconds: number[]];
}

export interface FederationSettings {
  apex: ApexSettings;
  naming: RecordSettings;
  policy: FederationPolicy;
  initialSerial?: number;
}

export class Federation extends EventEmitter<FederationEvents> implements ClusterListener {
  readonly clusters = new Map<string, ClusterState>();
  private builder: ZoneBuilder;
  /** Federated services that currently have names in the zone. */
  private readonly present = new Set<string>();
  private readonly dirty = new Set<string>();
  /** Dirty services rebuilt before those in `dirty`: the few a watch event touched. */
  private readonly urgent = new Set<string>();
  /** A slice of rebuilding is waiting for its turn (src/slices.ts). */
  private scheduled = false;
  private topology: Topology = { regions: new Map() };
  private topologyText = '';
  private readonly seenHealth = new Map<string, string>();
  private readonly changeTimes = new Map<string, number[]>();
  private current: ZoneSnapshot;
  private hostnames?: HostnameAddresses;
  /** Tenant-written values not used, counted per reason and logged rate-limited. */
  readonly ignored: IgnoredInputs;
  /** Service -> its names left out for being longer than 255 bytes (explain, check). */
  private readonly omitted = new Map<string, string[]>();

  constructor(
    private settings: FederationSettings,
    log?: Logger,
  ) {
    super();
    this.ignored = new IgnoredInputs(log);
    this.builder = new ZoneBuilder(settings.apex, settings.initialSerial);
    this.current = this.builder.snapshotNow;
  }

  /** The snapshot queries read. Swapped whole on every publish. */
  get snapshot(): ZoneSnapshot {
    return this.current;
  }

  get policy(): FederationPolicy {
    return this.settings.policy;
  }

  get naming(): RecordSettings {
    return this.settings.naming;
  }

  addCluster(settings: ClusterSettings): ClusterState {
    if (this.clusters.has(settings.name)) throw new Error(`cluster ${settings.name} already exists`);
    const c = new ClusterState(settings, this);
    this.clusters.set(settings.name, c);
    this.seenHealth.set(c.name, c.health);
    return c;
  }

  removeCluster(name: string): void {
    const c = this.clusters.get(name);
    if (!c) return;
    c.dispose();
    this.clusters.delete(name);
    this.seenHealth.delete(name);
    for (const k of c.serviceKeys()) this.dirty.add(k);
    this.topologyMayChange();
    this.schedule();
  }

  /**
   * Applies new settings (TTLs, policy, apex) and rebuilds everything. A new domain is a new zone:
   * every name is built again under the new apex, with a serial that goes on from the old one.
   */
  reconfigure(settings: FederationSettings): void {
    this.settings = settings;
    if (nameKey(settings.apex.domain) !== this.builder.apexKey) {
      this.builder = new ZoneBuilder(settings.apex, nextSerial(this.current.serial));
      this.present.clear();
    } else {
      this.builder.setApex(settings.apex);
    }
    // Every service, not only those with names now: a new selection may bring some back.
    for (const k of this.present) this.dirty.add(k);
    for (const c of this.clusters.values()) for (const k of c.serviceKeys()) this.dirty.add(k);
    this.topologyMayChange(true);
    this.schedule();
  }

  private collectChangeTimes(c: ClusterState): void {
    const times = c.takeChangeTimes();
    if (!times.length) return;
    const list = this.changeTimes.get(c.name);
    if (list) list.push(...times);
    else this.changeTimes.set(c.name, times);
  }

  servicesChanged(c: ClusterState | undefined, keys: Set<string>): void {
    if (c) this.collectChangeTimes(c);
    // A few services changed by a watch event go ahead of a bulk rebuild (a re-list, a reload)
    // still under way, so that a change is answered as fast while the zone is big.
    const to = keys.size <= URGENT_BATCH ? this.urgent : this.dirty;
    for (const k of keys) to.add(k);
    this.schedule();
  }

  valuesIgnored(c: ClusterState, kind: Kind | 'Node', key: string, values: IgnoredValue[]): void {
    for (const v of values) this.ignored.note(v.reason, { cluster: c.name, kind, object: key, value: v.value }, IGNORED_WHY[v.reason]);
  }

  clientNetworksChanged(c: ClusterState): void {
    this.emit('clientNetworks', c);
  }

  clusterChanged(c: ClusterState): void {
    this.collectChangeTimes(c);
    const previous = this.seenHealth.get(c.name) ?? 'syncing';
    if (previous !== c.health) {
      this.seenHealth.set(c.name, c.health);
      this.emit('clusterHealth', c, previous);
    }
    // Health changes what this cluster contributes, and it contributes only to its own services.
    for (const k of c.serviceKeys()) this.dirty.add(k);
    this.topologyMayChange();
    this.schedule();
  }

  private topologyMayChange(force = false): void {
    const regions = new Map<string, Set<string>>();
    for (const c of this.clusters.values()) {
      const r = c.region;
      if (!r) continue;
      let zs = regions.get(r);
      if (!zs) regions.set(r, (zs = new Set()));
      for (const z of c.zones) zs.add(z);
    }
    const sorted = new Map([...regions].sort(([a], [b]) => a.localeCompare(b)).map(([r, zs]) => [r, [...zs].sort()] as const));
    const text = JSON.stringify([...sorted]);
    if (text === this.topologyText && !force) return;
    this.topologyText = text;
    this.topology = { regions: sorted };
    // Every service has a name per region and zone: a new region or zone touches all of them.
    for (const k of this.present) this.dirty.add(k);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    void nextSlice().then(() => {
      // rebuild() or close() since: nothing left to do here.
      if (this.scheduled) this.rebuildFor(sliceSpent);
    });
  }

  /** Takes the dirty services one by one, the urgent ones first (each once, even if in both sets). */
  private *nextDirty(): Generator<string> {
    for (const set of [this.urgent, this.dirty]) {
      for (const key of set) {
        this.urgent.delete(key);
        this.dirty.delete(key);
        yield key;
      }
    }
  }

  /** Rebuilds every dirty service and publishes, in one go; callable directly (tests, CLI). */
  rebuild(): ZoneSnapshot {
    return this.rebuildFor(() => false);
  }

  /**
   * Rebuilds dirty services for one slice now and publishes them; the others follow a slice per
   * turn of the event loop. A small change is published before this returns, a big one (a
   * reload that touches every service) does not hold up queries.
   */
  rebuildSoon(): ZoneSnapshot {
    const end = performance.now() + SLICE_MS;
    return this.rebuildFor(() => performance.now() >= end);
  }

  /**
   * Rebuilds dirty services (those of a watch event first, then in the order they became dirty)
   * until `spent()`, and publishes what it rebuilt; the rest goes on in later slices. Every service is published whole, so a snapshot between two slices is as
   * consistent as any other; a re-list or a reload that touches every service never holds up
   * queries for longer than a slice.
   */
  private rebuildFor(spent: () => boolean): ZoneSnapshot {
    this.scheduled = false;
    let services = 0;
    for (const key of this.nextDirty()) {
      services++;
      const fs = this.federated(key);
      if (fs) {
        this.present.add(key);
        const { specs, omitted } = withoutLongNames(serviceNames(fs, this.topology, this.settings.naming));
        this.noteOmitted(key, omitted);
        this.builder.setOwner(key, specs, fs.stale);
      } else {
        this.present.delete(key);
        this.omitted.delete(key);
        this.builder.setOwner(key, []);
      }
      if (spent()) break;
    }
    this.builder.setReady([...this.clusters.values()].some((c) => c.health !== 'syncing'));
    const result = this.builder.publish();
    if (result) {
      this.current = result.snapshot;
      this.emit('published', result.snapshot, result.change, services);
    }
    if (this.dirty.size || this.urgent.size) {
      this.schedule();
      return this.current;
    }
    // Changes count as programmed once every service they dirtied answers.
    if (this.changeTimes.size) {
      const now = Date.now();
      for (const [cluster, times] of this.changeTimes) this.emit('programmed', cluster, times.map((t) => Math.max(0, (now - t) / 1000)));
      this.changeTimes.clear();
    }
    return this.current;
  }

  private noteOmitted(key: string, names: string[]): void {
    if (names.length === 0) {
      this.omitted.delete(key);
      return;
    }
    const prev = this.omitted.get(key);
    if (prev && prev.length === names.length && prev.every((n, i) => n === names[i])) return;
    this.omitted.set(key, names);
    this.ignored.note('name too long', { service: key, names: names.length, example: names[0] }, IGNORED_WHY['name too long']);
  }

  /** Names of the service "namespace/name" left out because they would be longer than 255 bytes. */
  omittedNames(key: string): string[] {
    return this.omitted.get(key) ?? [];
  }

  /** Every service with names left out for their length. */
  get servicesWithOmittedNames(): ReadonlyMap<string, string[]> {
    return this.omitted;
  }

  /** The federated service "namespace/name" as the current cluster data makes it. */
  federated(key: string): FederatedService | undefined {
    const hostnames = this.hostnames;
    if (!hostnames) return federate(key, this.clusters.values(), this.settings.policy);
    const used = new Set<string>();
    const fs = federate(key, this.clusters.values(), this.settings.policy, (h) => {
      used.add(h);
      return hostnames.addresses(h);
    });
    hostnames.use(key, used);
    return fs;
  }

  /** Resolves load-balancer hostnames; services whose addresses move are rebuilt. */
  resolveHostnames(resolve: ResolveHostname, refreshSeconds: number, log: Logger): void {
    // Known addresses stay served while the new resolvers look them up again.
    if (this.hostnames) return this.hostnames.reconfigure(resolve, refreshSeconds * 1000);
    this.hostnames = new HostnameAddresses(resolve, refreshSeconds * 1000, (keys) => this.servicesChanged(undefined, keys), log);
    this.hostnames.start();
  }

  /** Waits for hostnames first seen by the last rebuild to resolve, and rebuilds with them. */
  async settleHostnames(): Promise<ZoneSnapshot> {
    await this.hostnames?.settle();
    return this.rebuild();
  }

  get topologyNow(): Topology {
    return this.topology;
  }

  /** Stops timers of every cluster. */
  close(): void {
    this.scheduled = false;
    this.hostnames?.stop();
    for (const c of this.clusters.values()) c.dispose();
  }
}

/** Services changed at once that count as one change (a watch event), not a bulk rebuild. */
const URGENT_BATCH = 64;

const IGNORED_WHY: Record<IgnoredValue['reason'], string> = {
  zone: 'endpoint zone is not a DNS label (RFC 1123, at most 63 characters); the endpoint counts as having no zone',
  'zone limit': 'more zones in EndpointSlices than a cluster may have; the zones fewest slices name are ignored (configure the zones to not depend on them)',
  region: 'region is not a DNS label (RFC 1123, at most 63 characters); ignored',
  hostname: 'endpoint hostname is not a DNS label; the endpoint is named by its address',
  'port name': 'port name or protocol cannot make an SRV label; no SRV record for this port',
  'ttl annotation': 'fedns.io/ttl is not whole seconds from 0 to 2147483647; the default TTL applies',
  'lb hostname': 'load-balancer hostname is not a domain name; ignored',
  'name too long': 'names of this service would be longer than 255 bytes; they are left out, its other names answer',
};
