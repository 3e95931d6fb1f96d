// Per-cluster state -> one federated service: which addresses answer at which level.
// Pure: the same clusters give the same FederatedService, so a rebuild is safe at any time.
import type { ClusterState } from '../cluster/state.js';
import { eachEndpoint, portKey, type SlimPort, type SlimService } from '../cluster/objects.js';
import { answerableEndpoint, isAddress } from '../address.js';
import { pushAll } from '../lists.js';
import type { LabelSelector } from './selector.js';
import type { AddressGroup } from '../zone/locality.js';
import { FAILOVER_ANNOTATION, MAX_ADDRESSES_ANNOTATION, POLICY_ANNOTATION, WEIGHTS_ANNOTATION, type TrafficAnnotations, type TrafficPolicy } from '../traffic-policy.js';

/** localeCompare's order, without finding the locale again on every comparison. */
const collate = new Intl.Collator().compare;

/** Sorted addresses of one level. Read-only: the zone's AddressNodes hold these very lists. */
export interface AddressSet {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

export interface HeadlessEndpoint {
  /** Endpoint hostname, else a name derived from its address. */
  host: string;
  cluster: string;
  v4: string[];
  v6: string[];
  /**
   * The ports of the slices it is in, which its SRV records use: a named targetPort may be a
   * different number for each group of pods, and EndpointSlices are split by it.
   */
  ports: readonly SlimPort[];
}

/**
 * SRV records a headless service may have in one zone (both owners' together): ready endpoints
 * times the named ports of their slices, which tenants choose, and which one rebuild makes at
 * once, holding the event loop for as long as it takes (a million records: about a second).
 * Past it the service's SRV names are left out and its address names still answer.
 */
export const MAX_SRV_RECORDS = 100_000;

/** Both port lists, each port once: an endpoint in two slices (while they are rebalanced) serves both. */
export function unionPorts(a: readonly SlimPort[], b: readonly SlimPort[]): readonly SlimPort[] {
  if (a === b) return a;
  const have = new Set(a.map(portKey));
  const extra = b.filter((p) => !have.has(portKey(p)) && have.add(portKey(p)));
  return extra.length ? [...a, ...extra] : a;
}

/** Named ports of a slice's port list, counted once per list (lists are shared: objects.ts). */
const namedCounts = new WeakMap<readonly SlimPort[], number>();
function namedPorts(list: readonly SlimPort[]): number {
  let n = namedCounts.get(list);
  if (n === undefined) namedCounts.set(list, (n = list.reduce((k, p) => (p.name ? k + 1 : k), 0)));
  return n;
}

/**
 * An endpoint name of a headless service met in more than one slice (a hostname many endpoints
 * share, an endpoint in two slices while they are rebalanced): its addresses and the port lists
 * merged so far, so that each merge costs what it adds, not what the name already holds.
 */
class HostMerge {
  private readonly lists: Set<readonly SlimPort[]>;
  private keys?: Set<string>;
  private readonly addresses: Set<string>;

  constructor(private readonly h: HeadlessEndpoint) {
    this.lists = new Set([h.ports]);
    this.addresses = new Set([...h.v4, ...h.v6]);
  }

  addAddress(a: string, fam: 4 | 6): void {
    if (this.addresses.has(a)) return;
    this.addresses.add(a);
    (fam === 4 ? this.h.v4 : this.h.v6).push(a);
  }

  /**
   * Adds a slice's ports to the name's; returns the named ports it pairs with (0: a list met
   * before). Past `merging` no more ports are merged: the SRV names are left out anyway.
   */
  addPorts(list: readonly SlimPort[], merging: boolean): number {
    if (this.lists.has(list)) return 0;
    this.lists.add(list);
    if (merging) {
      if (!this.keys) {
        this.keys = new Set(this.h.ports.map(portKey));
        this.h.ports = [...this.h.ports];
      }
      const mine = this.h.ports as SlimPort[];
      for (const p of list) {
        const k = portKey(p);
        if (!this.keys.has(k)) {
          this.keys.add(k);
          mine.push(p);
        }
      }
    }
    return namedPorts(list);
  }
}

export interface ClusterVerdict {
  cluster: string;
  health: string;
  /** Seconds since the cluster's data last changed or was confirmed. */
  dataAge: number | null;
  region?: string;
  mode: string;
  used: boolean;
  reason: string;
  addresses: string[];
  skipped: { address: string; reason: string }[];
}

export interface FederatedService {
  key: string;
  namespace: string;
  name: string;
  headless: boolean;
  ttl: number;
  /** Answers include data of stale clusters, or panic mode kept expired data. */
  stale: boolean;
  panic: boolean;
  global: AddressSet;
  /** region -> healthy addresses in that region (non-empty sets only). */
  regions: Map<string, AddressSet>;
  /** "region/zone" -> healthy addresses in that zone (non-empty sets only). */
  zones: Map<string, AddressSet>;
  /** Named ports, for SRV. */
  ports: SlimPort[];
  endpoints: HeadlessEndpoint[];
  /**
   * Endpoint names times the named ports of each slice they are in, over every cluster used: the
   * SRV records per owner, or more where one name is in slices with different ports. Past
   * MAX_SRV_RECORDS their ports are not all merged, and the SRV names are left out.
   */
  srvPairs: number;
  /**
   * What each cluster gave and why, in cluster order: made only when asked for (explain, check).
   * A rebuild of every service would otherwise make one per cluster for each service.
   */
  verdicts?: ClusterVerdict[];
  /** The healthy addresses by cluster and zones, in cluster order: what traffic policies choose from. */
  groups: AddressGroup[];
  traffic: ServiceTraffic;
}

/** A service's traffic policy, as its copies' annotations and the configuration decide it. */
export interface ServiceTraffic {
  policy: TrafficPolicy;
  /** failover: clusters in order. */
  order: string[];
  /** weighted: cluster -> weight (not listed: 0). */
  weights: Map<string, number>;
  maxAddresses?: number;
  /** Where each setting came from: "annotation" or "configuration". */
  source: { policy: string; order: string; weights: string; maxAddresses: string };
  /** Annotations the service's copies do not agree on, with each cluster's value ("-": none). */
  disagreements: { annotation: string; values: Record<string, string>; chosen: string }[];
}

export interface FederationPolicy {
  /** Traffic policy and address cap of services without annotations. */
  traffic?: { policy: TrafficPolicy; maxAddresses?: number };
  selection: 'all' | 'exported' | 'labels';
  selector?: LabelSelector;
  defaultTtl: number;
  staleTtl: number;
  panicMode: boolean;
}

/** An address a contribution holds (checked there): IPv6 has a colon, IPv4 never does. */
const isV6 = (addr: string) => addr.includes(':');

/** Shared empty address list (most services have no IPv6): lists are read-only. */
const NO_ADDRESSES: readonly string[] = Object.freeze([]);

/** Sorts `list` and drops repeats, in place; an exact-length copy (lists grown by push keep spare room, and zones hold these). */
function sortedUnique(list: string[]): readonly string[] {
  if (list.length === 0) return NO_ADDRESSES;
  list.sort();
  let kept = 1;
  for (let i = 1; i < list.length; i++) if (list[i] !== list[kept - 1]) list[kept++] = list[i];
  return list.slice(0, kept);
}

/** The addresses of one level, in arrays rather than sets (a rebuild of every service makes tens of these per service). */
class Collector {
  readonly v4: string[] = [];
  readonly v6: string[] = [];
  /** Adds an address a contribution holds (repeats are dropped by toSet). */
  add(addr: string): void {
    if (isV6(addr)) this.v6.push(addr);
    else this.v4.push(addr);
  }
  get size(): number {
    return this.v4.length + this.v6.length;
  }
  toSet(): AddressSet {
    return { v4: sortedUnique(this.v4), v6: sortedUnique(this.v6) };
  }
}

function bucket(map: Map<string, Collector>, key: string): Collector {
  let c = map.get(key);
  if (!c) map.set(key, (c = new Collector()));
  return c;
}

/** A stable DNS label for an endpoint without a hostname: its address with "-" separators. */
export function addressLabel(addr: string): string {
  return addr.toLowerCase().replace(/[.:]/g, '-');
}

/** Contributions without endpoint names (every service that is not headless) share this. */
const NO_ENDPOINTS: HeadlessEndpoint[] = Object.freeze([]) as unknown as HeadlessEndpoint[];

/** The zones of an address without its own: the cluster's count. */
const NO_ZONES: readonly string[] = Object.freeze([]);

interface Contribution {
  cluster: ClusterState;
  service: SlimService;
  /** address (a valid one) -> zones it counts in (empty: the cluster's zones). */
  addresses: Map<string, readonly string[]>;
  endpoints: HeadlessEndpoint[];
  ports: SlimPort[];
  /** Endpoint names times the named ports of each slice they are in: at least their SRV records per owner. */
  srvPairs: number;
  /** What explain says of this cluster for this service (when asked for). */
  verdict?: ClusterVerdict;
}

function selected(policy: FederationPolicy, c: ClusterState, svc: SlimService, key: string): string | undefined {
  if (policy.selection === 'exported' && !c.exports.has(key)) return 'no ServiceExport in this cluster';
  if (policy.selection === 'labels' && policy.selector && !policy.selector.matches(svc.labels))
    return 'labels do not match the selector';
  return undefined;
}

/** Current addresses of a load balancer's hostname; undefined before any lookup answered. */
export type HostnameLookup = (hostname: string) => string[] | undefined;

function contribution(c: ClusterState, svc: SlimService, key: string, verdict: ClusterVerdict | undefined, lookup?: HostnameLookup): Contribution {
  const mode = svc.headless ? 'endpoints' : c.settings.addressMode;
  if (verdict) verdict.mode = svc.headless ? 'endpoints (headless)' : mode;
  // Ports and endpoints: the service's own list (named ports: slimService keeps no other), made
  // here only for a headless service.
  const ports = svc.headless ? [] : svc.ports.every((p) => p.name) ? svc.ports : svc.ports.filter((p) => p.name);
  const out: Contribution = { cluster: c, service: svc, addresses: new Map(), endpoints: NO_ENDPOINTS, ports, srvPairs: 0, verdict };
  // Made only where needed: this runs for every service of every cluster on each rebuild.
  const readyZones = mode === 'loadBalancer' ? new Set<string>() : undefined;
  let ready = 0;
  const hosts = svc.headless ? new Map<string, HeadlessEndpoint>() : undefined;
  // Names met in more than one slice, or with more than one address.
  let merges: Map<HeadlessEndpoint, HostMerge> | undefined;
  const portSeen = svc.headless ? new Set<string>() : undefined;
  // Endpoints of one zone share one list of it.
  let lastZone = '';
  let lastZones = NO_ZONES;
  c.eachSlice(key, (slice) => {
    if (slice.addressType === 'FQDN') return;
    if (portSeen) {
      for (const p of slice.ports) {
        const id = portKey(p);
        if (p.name && !portSeen.has(id)) {
          portSeen.add(id);
          out.ports.push(p);
        }
      }
    }
    const addrs = slice.addresses;
    eachEndpoint(slice, (from, to, isReady, zone, hostname) => {
      if (!isReady) {
        if (verdict) for (let i = from; i < to; i++) verdict.skipped.push({ address: addrs[i], reason: 'endpoint not ready' });
        return;
      }
      if (to === from) return;
      ready++;
      if (zone && readyZones) readyZones.add(zone);
      if (mode !== 'endpoints') return;
      if (zone && zone !== lastZone) {
        lastZone = zone;
        lastZones = [zone];
      }
      for (let i = from; i < to; i++) {
        const a = addrs[i];
        const fam = isAddress(a);
        if (fam === 0) continue;
        out.addresses.set(a, zone ? lastZones : NO_ZONES);
        if (hosts) {
          const host = hostname || addressLabel(a);
          let h = hosts.get(host);
          if (!h) {
            hosts.set(host, (h = { host, cluster: c.name, v4: fam === 4 ? [a] : [], v6: fam === 6 ? [a] : [], ports: slice.ports }));
            out.srvPairs += namedPorts(slice.ports);
            continue;
          }
          // The same endpoint may be in two slices at once (while slices are rebalanced), and
          // endpoints may share a hostname: one name, each address and port once.
          let m = merges?.get(h);
          if (!m) (merges ??= new Map()).set(h, (m = new HostMerge(h)));
          m.addAddress(a, fam);
          if (slice.ports !== h.ports) out.srvPairs += m.addPorts(slice.ports, out.srvPairs <= MAX_SRV_RECORDS);
        }
      }
    });
  });
  if (hosts) out.endpoints = [...hosts.values()];
  if (mode === 'loadBalancer' && readyZones) {
    if (ready === 0) {
      if (verdict) {
        verdict.reason = 'no ready endpoint in this cluster';
        for (const a of svc.lbAddresses) verdict.skipped.push({ address: a, reason: 'cluster has no ready endpoint' });
      }
      return out;
    }
    // A load balancer serves the zones where its ready endpoints are; without topology, all of the cluster's.
    const zones = [...readyZones].filter((z) => c.zones.includes(z));
    // Load-balancer IPs come filtered (slimService); a hostname's addresses are checked here.
    const take = (a: string) => {
      if (answerableEndpoint(a, undefined)) out.addresses.set(a, zones);
      else verdict?.skipped.push({ address: a, reason: isAddress(a) ? 'no client can reach this address' : 'not an IP address' });
    };
    for (const a of svc.lbAddresses) take(a);
    for (const h of svc.lbHostnames) {
      const addrs = lookup?.(h);
      if (!addrs) verdict?.skipped.push({ address: h, reason: 'load-balancer hostname not resolved (yet)' });
      else if (addrs.length === 0) verdict?.skipped.push({ address: h, reason: 'load-balancer hostname has no addresses' });
      for (const a of addrs ?? []) take(a);
    }
    if (out.addresses.size === 0 && verdict) verdict.reason = 'no load-balancer address';
  } else if (out.addresses.size === 0 && verdict) {
    verdict.reason = 'no ready endpoint address';
  }
  return out;
}

/**
 * Builds the federated service `key` ("namespace/name") from every member cluster; with `explain`,
 * with each cluster's verdict (what it gave and why).
 */
export function federate(key: string, clusters: Iterable<ClusterState>, policy: FederationPolicy, lookup?: HostnameLookup, explain = false): FederatedService | undefined {
  const now = Date.now();
  const live: Contribution[] = [];
  const expired: Contribution[] = [];
  const verdicts: ClusterVerdict[] | undefined = explain ? [] : undefined;
  const order: string[] = [];
  let existsSomewhere = false;
  for (const c of clusters) {
    order.push(c.name);
    const verdict: ClusterVerdict | undefined = verdicts && {
      cluster: c.name,
      health: c.health,
      dataAge: c.lastUpdate ? Math.round((now - c.lastUpdate) / 1000) : null,
      region: c.region,
      mode: c.settings.addressMode,
      used: false,
      reason: '',
      addresses: [],
      skipped: [],
    };
    if (verdict) verdicts!.push(verdict);
    const svc = c.services.get(key);
    if (c.health === 'syncing') {
      if (verdict) verdict.reason = notSyncedReason(c);
      continue;
    }
    if (!svc) {
      if (verdict) verdict.reason = 'service not in this cluster';
      continue;
    }
    const why = selected(policy, c, svc, key);
    if (why) {
      if (verdict) verdict.reason = why;
      continue;
    }
    const contrib = contribution(c, svc, key, verdict, lookup);
    if (c.health === 'expired') {
      if (verdict) verdict.reason = verdict.reason || 'cluster expired (grace period over)';
      expired.push(contrib);
      continue;
    }
    existsSomewhere = true;
    live.push(contrib);
  }
  let used = live;
  let panic = false;
  if (policy.panicMode && live.length === 0 && expired.some((x) => x.addresses.size > 0 || x.endpoints.length > 0)) {
    // Panic mode: every cluster that holds the service expired; keep their last addresses. A
    // live or stale cluster's word that it has no ready endpoint (scaled to zero) is news, not a fault.
    used = expired;
    panic = true;
    existsSomewhere = true;
  }
  if (!existsSomewhere) return undefined;

  const [namespace, name] = key.split('/');
  const global = new Collector();
  const regions = new Map<string, Collector>();
  const zones = new Map<string, Collector>();
  const ports = new Map<string, SlimPort>();
  const endpoints: HeadlessEndpoint[] = [];
  const groups: AddressGroup[] = [];
  const traffic = decideTraffic(policy, used, order);
  // Address groups are what traffic policies choose from: a service everyone gets whole needs none.
  const grouped = traffic.policy !== 'all' || traffic.maxAddresses !== undefined;
  // The annotation sets the TTL (the lowest where clusters disagree); the default applies without one.
  let annotated: number | undefined;
  let stale = panic;
  let headless = false;
  let lastPorts: SlimPort[] | undefined;
  let srvPairs = 0;
  for (const x of used) {
    const c = x.cluster;
    const verdict = x.verdict;
    if (x.service.ttl !== undefined) annotated = Math.min(annotated ?? x.service.ttl, x.service.ttl);
    headless ||= x.service.headless;
    // Copies of a service in many clusters mostly share one port list (src/cluster/objects.ts).
    if (x.ports !== lastPorts) for (const p of x.ports) ports.set(portKey(p), p);
    lastPorts = x.ports;
    pushAll(endpoints, x.endpoints);
    srvPairs += x.srvPairs;
    // A stale cluster's copy counts even without addresses: that it has none may be out of date,
    // and its region's fallback, or the set of addresses, rests on it.
    if (c.health === 'stale' || c.health === 'expired') stale = true;
    if (x.addresses.size === 0) continue;
    if (verdict) {
      verdict.used = true;
      verdict.reason = c.health === 'live' ? 'healthy' : c.health === 'stale' ? 'stale data within grace period' : 'expired, kept by panic mode';
      pushAll(verdict.addresses, x.addresses.keys());
    }
    if (grouped) {
      const byZones = new Map<string, { cluster: string; region?: string; zones: string[]; v4: string[]; v6: string[] }>();
      for (const [addr, addrZones] of x.addresses) {
        const gz = addrZones.length ? addrZones : c.zones;
        const gk = gz.join(',');
        let g = byZones.get(gk);
        if (!g) byZones.set(gk, (g = { cluster: c.name, region: c.region, zones: [...gz].sort(), v4: [], v6: [] }));
        if (isV6(addr)) g.v6.push(addr);
        else g.v4.push(addr);
      }
      for (const g of byZones.values()) {
        g.v4.sort();
        g.v6.sort();
        groups.push(g);
      }
    }
    if (!c.region) {
      for (const addr of x.addresses.keys()) global.add(addr);
      continue;
    }
    const region = bucket(regions, c.region);
    // Addresses of one zone share one list (contribution): its collectors are found once per
    // list, not once per address.
    let lastList: readonly string[] | undefined;
    let lastCollectors: Collector[] = [];
    for (const [addr, addrZones] of x.addresses) {
      global.add(addr);
      region.add(addr);
      const list = addrZones.length ? addrZones : c.zones;
      if (list !== lastList) {
        lastList = list;
        lastCollectors = list.map((z) => bucket(zones, `${c.region}/${z}`));
      }
      for (const z of lastCollectors) z.add(addr);
    }
  }
  let ttl = annotated ?? policy.defaultTtl;
  if (stale) ttl = Math.min(ttl, policy.staleTtl);
  const nonEmpty = (m: Map<string, Collector>) => {
    const out = new Map<string, AddressSet>();
    for (const [k, v] of m) if (v.size > 0) out.set(k, v.toSet());
    return out;
  };
  return {
    key,
    namespace,
    name,
    headless,
    ttl,
    stale,
    panic,
    global: global.toSet(),
    regions: nonEmpty(regions),
    zones: nonEmpty(zones),
    ports: [...ports.values()].sort((a, b) => collate(a.name + a.protocol, b.name + b.protocol) || a.port - b.port),
    endpoints: mergeEndpoints(endpoints),
    srvPairs,
    ...(verdicts ? { verdicts } : {}),
    groups,
    traffic,
  };
}

/** The configuration's traffic settings, made once per policy and cluster list: most services have no annotation. */
const configured = new WeakMap<FederationPolicy, { order: string; traffic: ServiceTraffic }>();
function configuredTraffic(policy: FederationPolicy, clusterOrder: string[]): ServiceTraffic {
  const order = clusterOrder.join(',');
  const hit = configured.get(policy);
  if (hit && hit.order === order) return hit.traffic;
  const traffic = decideTraffic(policy, [], clusterOrder, true);
  configured.set(policy, { order, traffic });
  return traffic;
}

/**
 * The traffic policy of a service from its copies' annotations. Each annotation is decided on its
 * own: the value most copies hold wins, ties going to the first cluster in configuration order;
 * copies without it do not vote, but count as disagreeing. Without any, the configuration decides.
 */
function decideTraffic(policy: FederationPolicy, copies: Contribution[], clusterOrder: string[], uncached = false): ServiceTraffic {
  if (!uncached && copies.every((x) => x.service.traffic === undefined)) return configuredTraffic(policy, clusterOrder);
  const disagreements: ServiceTraffic['disagreements'] = [];
  const decide = <K extends keyof TrafficAnnotations>(field: K, annotation: string, show: (v: NonNullable<TrafficAnnotations[K]>) => string) => {
    const votes = new Map<string, { count: number; value: NonNullable<TrafficAnnotations[K]> }>();
    const values: Record<string, string> = {};
    for (const x of copies) {
      const v = x.service.traffic?.[field];
      if (v === undefined) {
        values[x.cluster.name] = '-';
        continue;
      }
      const text = show(v as NonNullable<TrafficAnnotations[K]>);
      values[x.cluster.name] = text;
      const cur = votes.get(text);
      if (cur) cur.count++;
      else votes.set(text, { count: 1, value: v as NonNullable<TrafficAnnotations[K]> });
    }
    if (votes.size === 0) return undefined;
    // Map order is first-seen order, which is cluster order: a strict > keeps the first on ties.
    let best: { text: string; count: number; value: NonNullable<TrafficAnnotations[K]> } | undefined;
    for (const [text, v] of votes) if (!best || v.count > best.count) best = { text, ...v };
    if (new Set(Object.values(values)).size > 1) disagreements.push({ annotation, values, chosen: best!.text });
    return best!.value;
  };
  const p = decide('policy', POLICY_ANNOTATION, (v) => v);
  const order = decide('failover', FAILOVER_ANNOTATION, (v) => v.join(','));
  const weights = decide('weights', WEIGHTS_ANNOTATION, (v) => v.map(([c, w]) => `${c}=${w}`).join(','));
  const max = decide('maxAddresses', MAX_ADDRESSES_ANNOTATION, (v) => String(v));
  const fallback = policy.traffic;
  const maxAddresses = max ?? fallback?.maxAddresses;
  return {
    policy: p ?? fallback?.policy ?? 'all',
    order: order ?? clusterOrder,
    weights: new Map(weights ?? clusterOrder.map((c) => [c, 1] as [string, number])),
    ...(maxAddresses !== undefined ? { maxAddresses } : {}),
    source: {
      policy: p ? 'annotation' : 'configuration',
      order: order ? 'annotation' : 'configuration (cluster order)',
      weights: weights ? 'annotation' : 'configuration (every cluster 1)',
      maxAddresses: max !== undefined ? 'annotation' : 'configuration',
    },
    disagreements,
  };
}

function mergeEndpoints(eps: HeadlessEndpoint[]): HeadlessEndpoint[] {
  // A service with a cluster IP has none: no map to merge them in.
  if (eps.length === 0) return [];
  const byName = new Map<string, HeadlessEndpoint>();
  // Endpoints taken as their contribution made them; one is copied only when another merges into it.
  const copies = new Set<HeadlessEndpoint>();
  for (const e of eps) {
    const id = `${e.host}.${e.cluster}`;
    let cur = byName.get(id);
    if (!cur) {
      byName.set(id, e);
      continue;
    }
    if (!copies.has(cur)) {
      byName.set(id, (cur = { ...cur }));
      copies.add(cur);
    }
    cur.v4 = [...new Set([...cur.v4, ...e.v4])];
    cur.v6 = [...new Set([...cur.v6, ...e.v6])];
    cur.ports = unionPorts(cur.ports, e.ports);
  }
  // Each endpoint's sort key made once: a big headless service has tens of thousands.
  return [...byName.values()]
    .map((e) => ({ e, k: e.cluster + e.host }))
    .sort((a, b) => collate(a.k, b.k))
    .map((x) => x.e);
}

/** Why a syncing cluster has no say yet, with what its source reported (a kubeconfig it cannot use, an API server that refuses). */
export function notSyncedReason(c: ClusterState): string {
  return c.reason && c.reason !== 'not listed yet' ? `cluster has not synced yet: ${c.reason}` : 'cluster has not synced yet';
}
