// The federation: member clusters in, zone snapshots out. A change in one cluster rebuilds
// only the federated services it touches; publishing is batched per event-loop turn.
import { EventEmitter } from 'node:events';
import { ClusterState, MAX_CHANGE_TIMES, type ChangeTime, type ClusterListener, type ClusterSettings } from '../cluster/state.js';
import { sameService, type IgnoredValue, type Kind, type SlimService } from '../cluster/objects.js';
import { serviceNames, withoutLongNames, type LeftOut, type RecordSettings, type Topology } from './service-records.js';
import { nameKey } from '../wire/name.js';
import { pushAll } from '../lists.js';
import { nextSlice, SLICE_MS, sliceSpent } from '../slices.js';
import { Pacer, type Pace } from './pacer.js';
import { DirtyServices } from './dirty.js';
import { nextSerial, ZoneBuilder, type ApexSettings, type ZoneChange, type ZoneSnapshot } from '../zone/snapshot.js';
import type { NameSpec } from '../zone/node.js';
import type { Logger } from 'pino';
import { HostnameAddresses, type ResolveHostname } from './hostnames.js';
import { IgnoredInputs } from './ignored.js';
import { ThrottledLog } from '../throttled-log.js';
import { federate, MAX_SRV_RECORDS, type FederatedService, type FederationPolicy } from './model.js';
import { clusterIds, clusterSetIp, clusterSetNames, clusterSetPolicy, hasReadyBackend, type ClusterSetIp } from './clusterset.js';
import { dnsVersionName, MCS_DNS_SCHEMA_VERSION, type ClusterSetNaming } from '../zone/names.js';

export interface FederationEvents {
  /** A new snapshot is current. `services` is how many federated services were rebuilt. */
  published: [snapshot: ZoneSnapshot, change: ZoneChange, services: number];
  clusterHealth: [cluster: ClusterState, previous: string];
  /** A cluster's learned client networks changed (ClusterState.learnedNetworks). */
  clientNetworks: [cluster: ClusterState];
  /** A new snapshot of the clusterset zone (mcs) is current. */
  clusterSetPublished: [snapshot: ZoneSnapshot, change: ZoneChange];
  /** Changes of a cluster now answered: seconds from when each began. */
  programmed: [cluster: string, seconds: number[]];
}

export interface FederationSettings {
  apex: ApexSettings;
  naming: RecordSettings;
  policy: FederationPolicy;
  initialSerial?: number;
  /** The clusterset zone (mcs.enabled): its apex (SOA, NS) and naming; absent: not served. */
  clusterSet?: { apex: ApexSettings; naming: ClusterSetNaming; initialSerial?: number };
}

/** The clusterset zone's builder and what it needs between rebuilds. */
interface ClusterSetZone {
  builder: ZoneBuilder;
  current: ZoneSnapshot;
  /** Services with names in the zone. */
  present: Set<string>;
  /** A new builder (a new domain) not yet given every service: not ready until it has been. */
  building: boolean;
}

/** The clusterset zone's apex data: SOA, NS and the dns-version TXT (specification 2.2). */
function clusterSetApex(cs: NonNullable<FederationSettings['clusterSet']>): ApexSettings {
  return { ...cs.apex, txt: [{ name: dnsVersionName(cs.naming), text: MCS_DNS_SCHEMA_VERSION }] };
}

/** The change of a first snapshot published as it was made. */
const NO_CHANGE: ZoneChange = { removed: [], added: [], size: 0, unlisted: 0 };

export class Federation extends EventEmitter<FederationEvents> implements ClusterListener {
  readonly clusters = new Map<string, ClusterState>();
  private builder: ZoneBuilder;
  /** Federated services that currently have names in the zone. */
  private readonly present = new Set<string>();
  /** Services to rebuild. */
  private readonly dirty = new DirtyServices();
  /** Dirty services are to be rebuilt in the next slice (src/slices.ts). */
  private scheduled = false;
  /**
   * A slice asked for has not come yet. rebuild() does the work at once and leaves it waiting;
   * changes after that wait for it, rather than each asking for another (a caller rebuilding
   * change by change without the event loop turning queued one per change).
   */
  private sliceAsked = false;
  /** Services too big to rebuild within a slice, rebuilt at most at their pace (pacer.ts). */
  private readonly pacer = new Pacer((keys) => {
    for (const key of keys) this.dirty.add(key, true);
    this.schedule();
  });
  private topology: Topology = { regions: new Map() };
  private topologyText = '';
  private readonly seenHealth = new Map<string, string>();
  /** Cluster -> its changes not answered yet (a paced service's stay until it is rebuilt). */
  private readonly changeTimes = new Map<string, ChangeTime[]>();
  private current: ZoneSnapshot;
  private hostnames?: HostnameAddresses;
  /** Tenant-written values not used, counted per reason and logged rate-limited. */
  readonly ignored: IgnoredInputs;
  /** Services whose rebuild threw (a defect): their names kept, marked stale. */
  rebuildErrors = 0;
  private readonly failures?: ThrottledLog;
  /** Service -> its names left out for being longer than 255 bytes (explain, check). */
  private readonly omitted = new Map<string, string[]>();
  /** Service -> the SRV records it would have had, for services past MAX_SRV_RECORDS in either zone. */
  private readonly srvLeftOut = new Map<string, number>();
  /** Service -> the traffic-policy annotations its copies disagree on (metrics, check). */
  private readonly disagreeing = new Map<string, string[]>();
  /** The zone has been complete once since a cluster first synced (see rebuildFor). */
  private wasReady = false;
  /** The federation zone's builder is new (a new domain) and not yet given every service: not ready until it has been. */
  private building = false;
  private clusterSetZone?: ClusterSetZone;
  /** Cluster name -> cluster ID in clusterset names (id.k8s.io ClusterProperty, else the name). */
  private ids = new Map<string, string>();
  private idsText = '';

  constructor(
    private settings: FederationSettings,
    log?: Logger,
  ) {
    super();
    this.ignored = new IgnoredInputs(log);
    this.failures = log && new ThrottledLog(log);
    this.builder = new ZoneBuilder(settings.apex, settings.initialSerial);
    this.current = this.builder.snapshotNow;
    this.configureClusterSet(undefined);
  }

  /** Starts, moves or stops the clusterset zone as the settings say. */
  private configureClusterSet(previous: FederationSettings['clusterSet']): void {
    const cs = this.settings.clusterSet;
    const z = this.clusterSetZone;
    if (!cs) {
      this.clusterSetZone = undefined;
      return;
    }
    if (z && previous && nameKey(previous.naming.domain) === nameKey(cs.naming.domain)) {
      z.builder.setApex(clusterSetApex(cs));
      return;
    }
    // A new zone: serials go on from the old one's, if there was one.
    const builder = new ZoneBuilder(clusterSetApex(cs), z ? nextSerial(z.current.serial) : cs.initialSerial);
    this.clusterSetZone = { builder, current: builder.snapshotNow, present: new Set(), building: true };
  }

  /** The clusterset zone's snapshot; undefined when it is not served (mcs.enabled false). */
  get clusterSetSnapshot(): ZoneSnapshot | undefined {
    return this.clusterSetZone?.current;
  }

  get clusterSetNaming(): ClusterSetNaming | undefined {
    return this.settings.clusterSet?.naming;
  }

  /** Cluster name -> the cluster ID its endpoints are named with in the clusterset zone. */
  get clusterIds(): ReadonlyMap<string, string> {
    return this.ids;
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
    // Its changes are no longer this cluster's to answer.
    this.changeTimes.delete(name);
    // Its keys now, so that the queue does not hold the whole cluster until its turn.
    const keys = c.serviceKeys();
    this.dirty.addAll(c, () => keys);
    this.topologyMayChange();
    this.schedule();
  }

  /**
   * Applies new settings (TTLs, policy, apex) and rebuilds everything. A new domain is a new zone:
   * every name is built again under the new apex, with a serial that goes on from the old one.
   */
  reconfigure(settings: FederationSettings): void {
    const previous = this.settings.clusterSet;
    this.settings = settings;
    this.configureClusterSet(previous);
    if (nameKey(settings.apex.domain) !== this.builder.apexKey) {
      this.builder = new ZoneBuilder(settings.apex, nextSerial(this.current.serial));
      this.building = true;
      this.present.clear();
    } else {
      this.builder.setApex(settings.apex);
    }
    // A new zone of either domain is built whole before it is ready, paced services among them
    // (rebuildFor): those waiting for their pace are rebuilt with it, not once more after.
    if (this.building || this.clusterSetZone?.building) this.unhold();
    // Every service, not only those with names now: a new selection may bring some back.
    this.markPresent();
    for (const c of this.clusters.values()) this.dirty.addAll(c, () => c.serviceKeys());
    this.topologyMayChange(true);
    this.schedule();
  }

  private collectChangeTimes(c: ClusterState): void {
    const times = c.takeChangeTimes();
    if (!times.length) return;
    const seen = performance.now();
    for (const t of times) t.seen = seen;
    const list = this.changeTimes.get(c.name);
    if (!list) this.changeTimes.set(c.name, times);
    // Held back for a paced service, they add up over batches: bounded like a batch's.
    else if (list.length < MAX_CHANGE_TIMES) pushAll(list, times.slice(0, MAX_CHANGE_TIMES - list.length));
  }

  servicesChanged(c: ClusterState | undefined, keys: Set<string>): void {
    if (c) this.collectChangeTimes(c);
    // A cluster still syncing contributes nothing, so its changes change no service; once live,
    // every service of it is rebuilt (clusterChanged). An initial sync rebuilt each service once
    // more for nothing as every cluster's first lists arrived.
    if (c?.health === 'syncing') return;
    // A few services changed by a watch event go ahead of a bulk rebuild (a re-list, a reload)
    // still under way, so that a change is answered as fast while the zone is big.
    const urgent = keys.size <= URGENT_BATCH;
    for (const k of keys) this.dirty.add(k, urgent);
    this.schedule();
  }

  valuesIgnored(c: ClusterState, kind: Kind | 'Node', key: string, values: IgnoredValue[]): void {
    for (const v of values) this.ignored.note(v.reason, { cluster: c.name, kind, object: key, value: v.value }, IGNORED_WHY[v.reason]);
  }

  /**
   * A Service of another cluster equal to `s` (sameService). A federated service is written alike
   * in its clusters; holding it once rather than once per cluster took the scale benchmark's
   * cluster objects from 57 to 48 MiB. Compares with the Services of at most TWIN_CANDIDATES
   * other clusters: a comparison costs a few identity checks, but a tenant's Service whose labels
   * differ in one of thousands costs a full comparison of them, and an update must not cost one
   * per member cluster. Past them, the Service is held on its own: more memory, never a wrong answer.
   */
  twinService(c: ClusterState, key: string, s: SlimService): SlimService | undefined {
    let left = TWIN_CANDIDATES;
    for (const other of this.clusters.values()) {
      if (other === c) continue;
      const t = other.services.get(key);
      if (t === undefined) continue;
      if (sameService(t, s)) return t;
      if (--left === 0) break;
    }
    return undefined;
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
    this.dirty.addAll(c, () => c.serviceKeys());
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
    this.clusterIdsMayChange();
    const text = JSON.stringify([...sorted]);
    if (text === this.topologyText && !force) return;
    this.topologyText = text;
    this.topology = { regions: sorted };
    // Every service has a name per region and zone: a new region or zone touches all of them.
    this.markPresent();
  }

  /** Marks every service that has names in the zone (as it is when the rebuild reaches them). */
  private markPresent(): void {
    this.dirty.addAll(this.present, () => this.present);
  }

  /** Cluster IDs (ClusterProperty id.k8s.io) name every headless endpoint in the clusterset zone. */
  private clusterIdsMayChange(): void {
    const { ids, invalid } = clusterIds(this.clusters.values());
    const text = JSON.stringify([...ids]);
    if (text === this.idsText) return;
    this.idsText = text;
    this.ids = ids;
    for (const v of invalid) this.ignored.note('cluster id', { cluster: v.cluster, kind: 'ClusterProperty', object: 'id.k8s.io', value: v.value }, IGNORED_WHY['cluster id']);
    const cs = this.clusterSetZone;
    if (cs) this.dirty.addAll(cs.present, () => cs.present);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.sliceAsked) return;
    this.sliceAsked = true;
    void nextSlice().then(() => {
      this.sliceAsked = false;
      // rebuild() or close() since, and no change after: nothing left to do here.
      if (this.scheduled) this.rebuildFor(sliceSpent, true);
    });
  }

  /** Rebuilds every dirty service and publishes, in one go; callable directly (tests, CLI). */
  rebuild(): ZoneSnapshot {
    // Services waiting for their pace too: this is everything, now.
    this.unhold();
    return this.rebuildFor(() => false, false);
  }

  /** Every service waiting for its pace, marked to be rebuilt with the rest, its time or not. */
  private unhold(): void {
    for (const key of this.pacer.takeHeld()) this.dirty.add(key, true);
  }

  /**
   * Rebuilds dirty services for one slice now and publishes them; the others follow a slice per
   * turn of the event loop. A small change is published before this returns, a big one (a
   * reload that touches every service) does not hold up queries.
   */
  rebuildSoon(): ZoneSnapshot {
    const end = performance.now() + SLICE_MS;
    return this.rebuildFor(() => performance.now() >= end, true);
  }

  /**
   * Rebuilds dirty services (those of a watch event first, then as DirtyServices.take gives them)
   * until `spent()`, and publishes what it rebuilt; the rest goes on in later slices. Every service is published whole, so a snapshot between two slices is as
   * consistent as any other; a re-list or a reload that touches every service never holds up
   * queries for longer than a slice. `paced`: a service too big to rebuild within a slice waits
   * for its pace (pacer.ts).
   */
  private rebuildFor(spent: () => boolean, paced: boolean): ZoneSnapshot {
    this.scheduled = false;
    let services = 0;
    const cs = this.clusterSetZone;
    // A zone not ready yet (a new domain, no cluster synced before) is ready once every service
    // is built in it: none waits for its pace then, or the zone would be ready (NXDOMAIN) without it.
    const pace = paced && this.wasReady && !this.building && !cs?.building;
    for (const key of this.dirty.take()) {
      if (key !== null && !(pace && this.pacer.hold(key)) && this.rebuildGuarded(key, cs, pace)) services++;
      if (spent()) break;
    }
    // A service that gained or lost a name to another (crafted labels) has answers made from
    // names it no longer holds, or without one it now holds: set again before anything is
    // published. Set again from the same cluster data, a service gives the same names, so this
    // settles in a round or two; past a few, the rest waits for the next slice. A paced service
    // is set again here only in its time: a change that would give it a name or take one from it
    // waits for that (rebuildGuarded), or a cheap service changed without pause would have it
    // rebuilt on every change.
    for (let round = 0; ; round++) {
      const again = this.disturbed(cs);
      if (again.size === 0) break;
      if (round === MAX_DISTURBED_ROUNDS) {
        for (const key of again) this.dirty.add(key);
        break;
      }
      // Counted only when rebuilt: one only set again from the names it has (its change waits) is not.
      for (const key of again) if (this.rebuildGuarded(key, cs, pace, true)) services++;
    }
    // Ready (NXDOMAIN for what is not there) once a cluster has synced and everything its sync
    // dirtied is built: between the slices of an initial sync a name not built yet is SERVFAIL.
    // So is a zone moved to a new domain (a new builder) until every service is built in it.
    const synced = [...this.clusters.values()].some((c) => c.health !== 'syncing');
    const complete = this.dirty.empty;
    if (!synced) this.wasReady = false;
    else if (complete) this.wasReady = true;
    if (complete) {
      this.building = false;
      if (cs) cs.building = false;
    }
    const ready = this.wasReady;
    this.builder.setReady(ready && !this.building);
    // A zone moved to a new domain (reconfigure) is current from its first publish, made when
    // its builder was: with nothing set in it since (no cluster synced yet), publish has nothing new.
    const fresh = this.builder.snapshotNow;
    const result = this.builder.publish() ?? (fresh !== this.current ? { snapshot: fresh, change: NO_CHANGE } : undefined);
    if (result) {
      this.current = result.snapshot;
      this.emit('published', result.snapshot, result.change, services);
    }
    if (cs) {
      cs.builder.setReady(ready && !cs.building);
      const r = cs.builder.publish();
      if (r) {
        cs.current = r.snapshot;
        this.emit('clusterSetPublished', r.snapshot, r.change);
      }
    }
    if (!this.dirty.empty) {
      this.schedule();
      return this.current;
    }
    // Changes count as programmed once every service they dirtied answers: a change to a service
    // waiting for its pace, once that is rebuilt.
    if (this.changeTimes.size) {
      const now = Date.now();
      // A held service answers the changes taken over before its last rebuild, not those after.
      // A change of no service in particular (a manifest file's) may be any held service's: it
      // waits for each one not rebuilt since it was taken over.
      const rebuiltSince = (key: string, t: ChangeTime) => (this.pacer.lastRebuilt(key) ?? -Infinity) > (t.seen ?? Infinity);
      let oldestHeld = Infinity;
      if (this.pacer.holding) for (const key of this.pacer.heldNow) oldestHeld = Math.min(oldestHeld, this.pacer.lastRebuilt(key) ?? -Infinity);
      const holds = (key: string | undefined, t: ChangeTime) => key !== undefined && this.pacer.isHeld(key) && !rebuiltSince(key, t);
      const waits = (t: ChangeTime) => (t.service === undefined ? oldestHeld <= (t.seen ?? Infinity) : holds(t.service, t) || holds(t.left, t));
      for (const [cluster, times] of this.changeTimes) {
        const waiting = this.pacer.holding ? times.filter(waits) : [];
        const answered = waiting.length ? times.filter((t) => !waits(t)) : times;
        if (answered.length) this.emit('programmed', cluster, answered.map((t) => Math.max(0, (now - t.at) / 1000)));
        if (waiting.length) this.changeTimes.set(cluster, waiting);
        else this.changeTimes.delete(cluster);
      }
    }
    return this.current;
  }

  /**
   * Rebuilds one service: should that throw (a defect fedns has, met by some tenant's data), the
   * service keeps the names it had, marked stale (EDE 3) until a change rebuilds it, it is
   * counted and logged, and every other service is built and published as usual.
   *
   * `pace`: a change that would give a name to a paced service waiting for its time, or take one
   * from it, waits for that time too (pacer.holdBehind), merged with the service's later changes:
   * the paced service's answers would have to be made again with it (rebuildFor). Returns false
   * then. A service `disturbed` (its answers to be made again now) whose change so waits, or
   * that is itself paced and waits for its time (a name server's glue took one of its names), is
   * set again from the names it has (ZoneBuilder.setAgain), its change left for then.
   */
  private rebuildGuarded(key: string, cs: ClusterSetZone | undefined, pace: boolean, disturbed = false): boolean {
    const start = performance.now();
    try {
      const waits = disturbed && pace && this.pacer.waits(key);
      if (waits || !this.rebuildService(key, cs, pace)) {
        // Its names were made, and wait with its change (pacer.spent): the work counts towards
        // its own pace all the same.
        if (!waits) {
          const end = performance.now();
          this.notePaced(key, end - start, this.pacer.spent(key, end - start, end));
        }
        // Set again only in the zone where it gained or lost a name: in the other, its answers
        // stand as they were made, and setting it again there is work for nothing (its nodes made
        // again if it waits for a name there, their encoded answers lost).
        if (disturbed) {
          if (this.builder.isDisturbed(key)) this.builder.setAgain(key);
          if (cs?.builder.isDisturbed(key)) cs.builder.setAgain(key);
        }
        return false;
      }
      const end = performance.now();
      this.notePaced(key, end - start, this.pacer.rebuilt(key, end - start, end));
    } catch (e) {
      this.rebuildErrors++;
      this.failures?.error('rebuild', { err: e, service: key }, 'cannot build the names of a service; they answer as before, marked stale, until its next change');
      try {
        this.builder.markStale(key, this.settings.policy.staleTtl);
        cs?.builder.markStale(key, this.settings.policy.staleTtl);
      } catch (again) {
        this.failures?.error('rebuild', { err: again, service: key }, 'cannot mark the names of a service stale either; they answer as before');
      }
    }
    return true;
  }

  /** Logs a service that a rebuild of `ms` (or its names made, to wait) made paced, with its `wait` (0: not made paced now). */
  private notePaced(key: string, ms: number, wait: number): void {
    if (wait)
      this.failures?.warn('paced', { service: key, rebuildMs: Math.round(ms), waitMs: Math.round(wait) }, 'a service takes longer than a slice to rebuild (thousands of endpoints); its changes are applied at most once per wait, merged');
  }

  /**
   * Builds one service's names in both zones (none: it has none any more); with `pace`, unless
   * they would give a name to a paced service waiting for its time or take one from it: false
   * then, nothing set, the service held until that time.
   */
  private rebuildService(key: string, cs: ClusterSetZone | undefined, pace: boolean): boolean {
    const made = this.makeService(key, cs);
    if (pace && this.waitsForPaced(key, made, cs)) return false;
    this.setService(key, cs, made);
    return true;
  }

  /**
   * Whether `made` would give a name to a paced service waiting for its time, or take one from
   * it, in either zone; `key` is then held until that time (pacer.holdBehind). Nothing paced
   * waiting (almost always): nothing looked at.
   */
  private waitsForPaced(key: string, made: MadeService, cs: ClusterSetZone | undefined): boolean {
    if (!this.pacer.pacing()) return false;
    const owners = this.builder.wouldDisturb(key, made.federation?.specs ?? []);
    if (cs) pushAll(owners, cs.builder.wouldDisturb(key, made.clusterSet?.specs ?? []));
    return owners.length > 0 && this.pacer.holdBehind(key, owners);
  }

  /** One service's names in both zones, made from the cluster data as it is now; nothing set yet. */
  private makeService(key: string, cs: ClusterSetZone | undefined): MadeService {
    const both = this.federatedBoth(key, cs !== undefined);
    // Names left out for their length, and SRV records past their bound, in either zone, are
    // noted together per service.
    const leftOut: LeftOut = { srv: 0 };
    let clusterSet: MadeService['clusterSet'];
    const csFs = both.clusterSet;
    if (cs && csFs) {
      const ip = this.clusterSetIpOf(key, csFs);
      clusterSet = { ...withoutLongNames(clusterSetNames(csFs, ip.set, this.ids, this.settings.clusterSet!.naming, leftOut)), stale: csFs.stale || ip.stale };
    }
    const fs = both.federation;
    const federation = fs && { fs, ...withoutLongNames(serviceNames(fs, this.topology, this.settings.naming, leftOut)) };
    return { federation, clusterSet, srvLeftOut: leftOut.srv };
  }

  /** Sets one service's names (makeService) in both zones (none: it has none any more). */
  private setService(key: string, cs: ClusterSetZone | undefined, made: MadeService): void {
    if (cs) {
      if (made.clusterSet) {
        cs.present.add(key);
        cs.builder.setOwner(key, made.clusterSet.specs, made.clusterSet.stale);
      } else {
        cs.present.delete(key);
        cs.builder.setOwner(key, []);
      }
    }
    const csOmitted = made.clusterSet?.omitted ?? [];
    const f = made.federation;
    if (f) {
      this.present.add(key);
      this.noteOmitted(key, [...f.omitted, ...csOmitted]);
      this.noteSrvLeftOut(key, made.srvLeftOut);
      if (f.fs.traffic.disagreements.length) this.disagreeing.set(key, f.fs.traffic.disagreements.map((d) => d.annotation));
      else this.disagreeing.delete(key);
      this.builder.setOwner(key, f.specs, f.fs.stale);
    } else {
      this.present.delete(key);
      this.noteOmitted(key, csOmitted);
      this.noteSrvLeftOut(key, made.srvLeftOut);
      this.disagreeing.delete(key);
      this.builder.setOwner(key, []);
    }
  }

  /** Services either zone's builder wants set again (ZoneBuilder.disturbedOwners). */
  private disturbed(cs: ClusterSetZone | undefined): Set<string> {
    return new Set([...this.builder.disturbedOwners(), ...(cs?.builder.disturbedOwners() ?? [])]);
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

  /** Notes (once per count) a service whose SRV records were left out for their number (MAX_SRV_RECORDS). */
  private noteSrvLeftOut(key: string, records: number): void {
    if (records === 0) {
      this.srvLeftOut.delete(key);
      return;
    }
    if (this.srvLeftOut.get(key) === records) return;
    this.srvLeftOut.set(key, records);
    this.ignored.note('srv records', { service: key, records, bound: MAX_SRV_RECORDS }, IGNORED_WHY['srv records']);
  }

  /** Services whose SRV names are left out for their number of records, with that number. */
  get servicesWithSrvLeftOut(): ReadonlyMap<string, number> {
    return this.srvLeftOut;
  }

  /** Names of the service "namespace/name" (in either zone) left out because they would be longer than 255 bytes. */
  omittedNames(key: string): string[] {
    return this.omitted.get(key) ?? [];
  }

  /** Services whose copies disagree on traffic-policy annotations, with those annotations. */
  get policyDisagreements(): ReadonlyMap<string, string[]> {
    return this.disagreeing;
  }

  /** Every service with names left out for their length. */
  get servicesWithOmittedNames(): ReadonlyMap<string, string[]> {
    return this.omitted;
  }

  /** The ClusterSetIP that answers for an exported service, and why (explain). */
  clusterSetIpOf(key: string, fs: FederatedService): ClusterSetIp {
    if (fs.headless) return { stale: false, reason: 'headless: every ready endpoint answers' };
    const ip = clusterSetIp(key, this.clusters.values());
    if (ip.set && !hasReadyBackend(key, fs, this.clusters.values()))
      return { stale: false, reason: `${ip.reason}, not answered: no exporting cluster has a ready endpoint` };
    return ip;
  }

  /** The federated service "namespace/name" as the current cluster data makes it, with each cluster's verdict. */
  federated(key: string): FederatedService | undefined {
    return this.federatedBoth(key, false, true).federation;
  }

  /** The service as the clusterset zone selects it (exported only), with verdicts; undefined without that zone. */
  clusterSetService(key: string): FederatedService | undefined {
    return this.clusterSetZone ? this.federatedBoth(key, true, true).clusterSet : undefined;
  }

  /**
   * The federated service for the federation zone and, with `clusterSet`, for the clusterset
   * zone (exported only): the same model, and the same one when the policy already is "exported".
   */
  private federatedBoth(key: string, clusterSet: boolean, explain = false): { federation?: FederatedService; clusterSet?: FederatedService } {
    const hostnames = this.hostnames;
    const used = new Set<string>();
    const lookup = hostnames
      ? (h: string) => {
          used.add(h);
          return hostnames.addresses(h);
        }
      : undefined;
    const policy = this.settings.policy;
    const federation = federate(key, this.clusters.values(), policy, lookup, explain);
    let exported: FederatedService | undefined;
    if (clusterSet) {
      const csPolicy = clusterSetPolicy(policy);
      exported = csPolicy === policy ? federation : federate(key, this.clusters.values(), csPolicy, lookup, explain);
    }
    hostnames?.use(key, used);
    return { federation, clusterSet: exported };
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

  /** Services paced now (their last two rebuilds took longer than a slice: pacer.ts). */
  get pacedCount(): number {
    return this.pacer.pacedCount;
  }

  /** Rebuilds put off for a service's pace so far. */
  get pacedHolds(): number {
    return this.pacer.holds;
  }

  /** The service's pace, when it is paced (its rebuilds take longer than a slice). */
  paceOf(key: string): Pace | undefined {
    return this.pacer.paceOf(key);
  }

  /** The paced services whose time a change to `key` waits for (it would give them a name or take one); undefined: none. */
  waitsFor(key: string): readonly string[] | undefined {
    return this.pacer.heldBehind(key);
  }

  /** Services with a change waiting for a paced service's time, its own or one it would give a name or take one from (sorted). */
  get heldServices(): string[] {
    return this.pacer.heldNow;
  }

  /** Stops timers of every cluster. */
  close(): void {
    this.scheduled = false;
    this.pacer.close();
    this.hostnames?.stop();
    for (const c of this.clusters.values()) c.dispose();
  }
}

/** A service's names in both zones as the cluster data makes them (Federation.makeService), not set yet. */
interface MadeService {
  /** Its names in the federation zone, those left out for their length; none: it has none there. */
  federation?: { fs: FederatedService; specs: NameSpec[]; omitted: string[] };
  /** Its names in the clusterset zone (when served); none: it has none there. */
  clusterSet?: { specs: NameSpec[]; omitted: string[]; stale: boolean };
  /** SRV records it would have had past MAX_SRV_RECORDS in either zone (0: none left out). */
  srvLeftOut: number;
}

/** Rounds of services set again for names gained or lost (rebuildFor) before the rest waits for the next slice. */
const MAX_DISTURBED_ROUNDS = 8;

/** Services changed at once that count as one change (a watch event), not a bulk rebuild. */
const URGENT_BATCH = 64;

/** Other clusters' Services under a key that an updated Service is compared with (twinService). */
const TWIN_CANDIDATES = 3;

const IGNORED_WHY: Record<IgnoredValue['reason'], string> = {
  zone: 'endpoint zone is not a DNS label (RFC 1123, at most 63 characters); the endpoint counts as having no zone',
  'zone limit': 'more zones in EndpointSlices than a cluster may have; the zones fewest slices name are ignored (configure the zones to not depend on them)',
  region: 'region is not a DNS label (RFC 1123, at most 63 characters); ignored',
  hostname: 'endpoint hostname is not a DNS label; the endpoint is named by its address',
  'port name': 'port name or protocol cannot make an SRV label; no SRV record for this port',
  'ttl annotation': 'fedns.io/ttl is not whole seconds from 0 to 2147483647; the default TTL applies',
  'lb hostname': 'load-balancer hostname is not a domain name; ignored',
  'lb address':
    'a load-balancer ingress IP or externalIP is not an IP address, or one no client can reach (unspecified, loopback, link-local, multicast, broadcast); ignored',
  'name too long': 'names of this service would be longer than 255 bytes; they are left out, its other names answer',
  'srv records':
    'a headless service would have more SRV records in one zone than fedns holds for a service (ready endpoints times the named ports of their slices); its SRV names are left out, its address names answer',
  'policy annotation':
    'a traffic-policy annotation does not read (fedns.io/policy: all|nearest|failover|weighted; fedns.io/failover: a,b; fedns.io/weights: a=3,b=1; fedns.io/max-addresses: 1-1000); it is ignored',
  'node network': 'node pod CIDR or InternalIP is not an IP network (or is wider than /8, /32 for IPv6); not learned as a client network',
  'network limit': 'more networks than a node or cluster may contribute (clientNetworks: auto); the rest are not learned',
  'cluster id': 'the id.k8s.io ClusterProperty is not a DNS label, or another cluster holds it too; the configured cluster name is the cluster ID in clusterset names',
  'clusterset ip': 'a ServiceImport spec.ips entry is not an IP address, or one no client can reach (unspecified, loopback, link-local, multicast, broadcast); ignored',
  'unreadable object': 'an object fedns cannot read (a Service or namespace name that is not a DNS label, no metadata.name); it is skipped, the cluster\'s other objects are read',
  'endpoint address':
    'an EndpointSlice address is not an IP address of the slice\'s addressType, or one no client can reach (unspecified, loopback, link-local, multicast, broadcast); ignored',
};
