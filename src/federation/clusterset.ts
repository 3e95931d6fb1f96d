// The clusterset zone: a federated service's names under the Multi-Cluster Services DNS
// specification (KEP-1645 specification.md, schema 1.0.0). Built from the same FederatedService
// as the federation zone (selected by ServiceExport), so health, staleness, panic mode and the
// address mode apply the same way.
import { eachEndpoint } from '../cluster/objects.js';
import type { ClusterState } from '../cluster/state.js';
import { RRType } from '../wire/constants.js';
import { asDnsLabel } from '../wire/name.js';
import type { RR } from '../wire/records.js';
import { clusterSetEndpointName, clusterSetServiceName, type ClusterSetNaming } from '../zone/names.js';
import type { NameSpec } from '../zone/node.js';
import { MAX_SRV_RECORDS, unionPorts, type AddressSet, type FederatedService, type FederationPolicy, type HeadlessEndpoint } from './model.js';
import { AddressSpec, HeadlessSrv, serviceLocality, serviceSrvSets, type LeftOut } from './service-records.js';

/** The selection of the clusterset zone: exported services only (specification 2.3.1, 2.4.1). */
export function clusterSetPolicy(p: FederationPolicy): FederationPolicy {
  return p.selection === 'exported' ? p : { ...p, selection: 'exported', selector: undefined };
}

/** What the members' ServiceImports say of a service's ClusterSetIP. */
export interface ClusterSetIp {
  /** The ClusterSetIPs answered; undefined: none (the exporting clusters' addresses answer). */
  set?: AddressSet;
  /** Taken from a stale cluster's ServiceImport. */
  stale: boolean;
  /** For explain: where the answer comes from, or why no ClusterSetIP is used. */
  reason: string;
}

/**
 * The ClusterSetIP of `key`: spec.ips of the ServiceImports in live or stale clusters that export
 * the service, when those that carry addresses agree. IPs allocated per cluster differ between
 * clusters and route only inside their own cluster: fedns, answering every cluster alike, then
 * uses none.
 */
export function clusterSetIp(key: string, clusters: Iterable<ClusterState>): ClusterSetIp {
  let ips: string[] | undefined;
  let from: string[] = [];
  let stale = false;
  for (const c of clusters) {
    if (c.health !== 'live' && c.health !== 'stale') continue;
    // Only a cluster that exports the service speaks for it: another's ServiceImport would point
    // every client elsewhere, or knock out the exporters' ClusterSetIP by disagreeing.
    if (!c.exports.has(key)) continue;
    const imp = c.imports.get(key);
    if (!imp || imp.headless || imp.ips.length === 0) continue;
    if (ips && (ips.length !== imp.ips.length || ips.some((a, i) => a !== imp.ips[i])))
      return { stale: false, reason: `ServiceImports disagree (${from.join(', ')}: ${ips.join(' ')}; ${c.name}: ${imp.ips.join(' ')}): no ClusterSetIP, the exporting clusters' addresses answer` };
    ips = imp.ips;
    from.push(c.name);
    stale ||= c.health === 'stale';
  }
  if (!ips) return { stale: false, reason: 'no ServiceImport with a ClusterSetIP: the exporting clusters\' addresses answer' };
  from = from.sort();
  return {
    set: { v4: ips.filter((a) => !a.includes(':')), v6: ips.filter((a) => a.includes(':')) },
    stale,
    reason: `ClusterSetIP ${ips.join(' ')} from the ServiceImport of ${from.join(', ')}`,
  };
}

/**
 * Whether a cluster the service is exported from, and that contributes to it (live, stale, or
 * kept by panic mode), has a ready endpoint: a ClusterSetIP answers only while it leads somewhere.
 */
export function hasReadyBackend(key: string, fs: FederatedService, clusters: Iterable<ClusterState>): boolean {
  for (const c of clusters) {
    // As federate() counts a cluster: it exports the service and has the Service itself.
    if (!c.exports.has(key) || !c.services.has(key)) continue;
    if (c.health !== 'live' && c.health !== 'stale' && !(fs.panic && c.health === 'expired')) continue;
    const found = c.eachSlice(key, (slice) => {
      // An FQDN slice's endpoints are names, which no service proxy sends traffic to.
      if (slice.addressType === 'FQDN') return false;
      let ready = false;
      eachEndpoint(slice, (from, to, r) => (ready ||= r && to > from));
      return ready;
    });
    if (found) return true;
  }
  return false;
}

/**
 * Cluster name -> cluster ID in clusterset names: the `id.k8s.io` ClusterProperty (KEP-2149) when
 * it is a DNS label that no other cluster holds, else the configured name (unique). `invalid`
 * lists IDs refused: not labels (a DNS subdomain would add labels to the endpoint names), or
 * held by another cluster too (KEP-2149: unique in the clusterset; one shared ID would merge two
 * clusters' endpoints under one name, so a cluster could take another's).
 */
export function clusterIds(clusters: Iterable<ClusterState>): { ids: Map<string, string>; invalid: { cluster: string; value: string }[] } {
  const ids = new Map<string, string>();
  const fromProperty = new Set<string>();
  const invalid: { cluster: string; value: string }[] = [];
  for (const c of clusters) {
    const value = c.clusterIdProperty;
    const id = value === undefined ? undefined : asDnsLabel(value);
    if (value !== undefined && id === undefined) invalid.push({ cluster: c.name, value: value.slice(0, 80) });
    ids.set(c.name, id ?? c.name);
    if (id !== undefined && id !== c.name) fromProperty.add(c.name);
  }
  // Configured names are unique: each pass gives back at least one property ID, until none is shared.
  for (;;) {
    const holders = new Map<string, number>();
    for (const id of ids.values()) holders.set(id, (holders.get(id) ?? 0) + 1);
    const shared = [...fromProperty].filter((name) => holders.get(ids.get(name)!)! > 1);
    if (shared.length === 0) break;
    for (const name of shared) {
      invalid.push({ cluster: name, value: `${ids.get(name)!.slice(0, 63)} (held by another cluster too)` });
      ids.set(name, name);
      fromProperty.delete(name);
    }
  }
  return { ids, invalid };
}

function addressRecords(name: string, set: AddressSet, ttl: number): Map<number, RR[]> {
  const m = new Map<number, RR[]>();
  if (set.v4.length) m.set(RRType.A, set.v4.map((a) => ({ name, type: RRType.A, ttl, data: a })));
  if (set.v6.length) m.set(RRType.AAAA, set.v6.map((a) => ({ name, type: RRType.AAAA, ttl, data: a })));
  return m;
}

/**
 * The names of a federated service in the clusterset zone (specification 2.3 and 2.4).
 * `ip` is the ClusterSetIP when one answers (non-headless services with a ready backend).
 */
export function clusterSetNames(fs: FederatedService, ip: AddressSet | undefined, ids: ReadonlyMap<string, string>, z: ClusterSetNaming, leftOut?: LeftOut): NameSpec[] {
  const ttl = fs.ttl;
  const service = clusterSetServiceName(z, fs);
  const specs: NameSpec[] = [];
  // Traffic policies narrow the exporting clusters' addresses as in the federation zone; a
  // ClusterSetIP is one virtual address, the same for everyone.
  const locality = ip ? undefined : serviceLocality(fs);
  if (!fs.headless) {
    // 2.3: the ClusterSetIP (else the healthy addresses), SRV to the service name; no per-cluster names (2.3.4).
    specs.push({ name: service, rrsets: addressRecords(service, ip ?? fs.global, ttl), locality });
    for (const [name, set] of serviceSrvSets(service, fs.ports, ttl)) specs.push({ name, rrsets: new Map([[RRType.SRV, set]]), locality });
    return specs;
  }
  // 2.4: no ready endpoint anywhere is NXDOMAIN ("the answer should be NXDOMAIN"): no names at all.
  const endpoints = fs.endpoints.filter((e) => e.v4.length + e.v6.length > 0);
  if (endpoints.length === 0) return specs;
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  const named = endpoints.map((e) => {
    for (const a of e.v4) v4.add(a);
    for (const a of e.v6) v6.add(a);
    return { e, name: clusterSetEndpointName(z, fs, ids.get(e.cluster) ?? e.cluster, e.host) };
  });
  // The same subset of endpoints in A and AAAA as in the per-endpoint names (2.4.1).
  const all: AddressSet = { v4: [...v4].sort(), v6: [...v6].sort() };
  specs.push({ name: service, rrsets: addressRecords(service, all, ttl), locality });
  // An endpoint in two slices (IDs are unique, clusterIds): one name, its addresses merged.
  const byName = new Map<string, { v4: string[]; v6: string[]; ports: HeadlessEndpoint['ports'] }>();
  for (const { e, name } of named) {
    const cur = byName.get(name);
    if (!cur) byName.set(name, { v4: [...e.v4].sort(), v6: [...e.v6].sort(), ports: e.ports });
    else {
      cur.v4 = [...new Set([...cur.v4, ...e.v4])].sort();
      cur.v6 = [...new Set([...cur.v6, ...e.v6])].sort();
      cur.ports = unionPorts(cur.ports, e.ports);
    }
  }
  // Held as addresses: one endpoint's change leaves the others' nodes as they are.
  for (const [name, set] of byName) specs.push(new AddressSpec(name, set, ttl));
  // 2.4.2: one SRV per ready endpoint and named port, each to the endpoint's own name, on the
  // ports of the endpoint's own slices.
  // Past the bound before pairing (srvPairs), the pairing is not done: what it costs is the bound's to keep.
  const srv = fs.srvPairs <= MAX_SRV_RECORDS ? new HeadlessSrv(fs.ports, [...byName].map(([name, e]) => ({ name, ports: e.ports }))) : undefined;
  if (!srv || srv.count > MAX_SRV_RECORDS) {
    if (leftOut) leftOut.srv = Math.max(leftOut.srv, srv?.count ?? fs.srvPairs);
    return specs;
  }
  for (const [name, set] of srv.sets(service, ttl)) specs.push({ name, rrsets: new Map([[RRType.SRV, set]]), locality });
  return specs;
}
