// A federated service's names and records.
import { RRType } from '../wire/constants.js';
import { MAX_NAME_LENGTH, wireLength } from '../wire/name.js';
import type { RR, SrvData } from '../wire/records.js';
import { portKey, type SlimPort } from '../cluster/objects.js';
import { MAX_SRV_RECORDS, type AddressSet, type FederatedService } from './model.js';
import { endpointName, globalName, regionalName, shortName, srvName, zonalName, type ZoneNaming } from '../zone/names.js';
import { addressRRsets, type AddressRecipe, type NameSpec } from '../zone/node.js';
import type { ServiceLocality } from '../zone/locality.js';

/** The locality of a service's short and global names, or undefined when everyone gets every address. */
export function serviceLocality(fs: FederatedService): ServiceLocality | undefined {
  const t = fs.traffic;
  if (t.policy === 'all' && t.maxAddresses === undefined) return undefined;
  return { policy: t.policy, order: t.order, weights: t.weights, maxAddresses: t.maxAddresses, groups: fs.groups };
}

export interface Topology {
  /** Every region known in the federation -> its zones (sorted). */
  regions: ReadonlyMap<string, readonly string[]>;
}

export interface RecordSettings extends ZoneNaming {
  /** TTL of fallback CNAMEs; the service's TTL when absent. */
  cnameTtl?: number;
}

/**
 * A name holding only the addresses of `set`: without a locality it becomes an AddressNode, which
 * makes its records when asked; `rrsets` makes them for whoever builds the zone (CNAME chains
 * into the name, a name with a locality). A class, not an object literal with a getter: V8 keeps
 * such a literal's properties in a dictionary of their own, with a closure and its context beside
 * it, and a service makes a few of these on every change.
 */
export class AddressSpec implements NameSpec {
  readonly addresses: AddressRecipe;
  private made?: Map<number, RR[]>;

  constructor(
    readonly name: string,
    set: AddressSet,
    ttl: number,
    readonly locality?: ServiceLocality,
  ) {
    this.addresses = { v4: set.v4, v6: set.v6, ttl };
  }

  get rrsets(): Map<number, RR[]> {
    return (this.made ??= addressRRsets(this.name, this.addresses));
  }
}

function cnameSet(name: string, target: string, ttl: number): Map<number, RR[]> {
  return new Map([[RRType.CNAME, [{ name, type: RRType.CNAME, ttl, data: target }]]]);
}

/** What a service's names left out, filled in by serviceNames and clusterSetNames. */
export interface LeftOut {
  /** SRV records the service would have had past MAX_SRV_RECORDS (0: none left out). */
  srv: number;
}

export function serviceNames(fs: FederatedService, topo: Topology, z: RecordSettings, leftOut?: LeftOut): NameSpec[] {
  const ttl = fs.ttl;
  const cnameTtl = Math.min(z.cnameTtl ?? ttl, ttl);
  const specs: NameSpec[] = [];
  const short = shortName(z, fs);
  const global = globalName(z, fs);
  const locality = serviceLocality(fs);
  specs.push(new AddressSpec(short, fs.global, ttl, locality));
  specs.push(new AddressSpec(global, fs.global, ttl, locality));
  for (const [region, zones] of topo.regions) {
    const rname = regionalName(z, fs, region);
    const rset = fs.regions.get(region);
    specs.push(rset ? new AddressSpec(rname, rset, ttl) : { name: rname, rrsets: cnameSet(rname, global, cnameTtl) });
    for (const zone of zones) {
      const zname = zonalName(z, fs, region, zone);
      const zset = fs.zones.get(`${region}/${zone}`);
      specs.push(zset ? new AddressSpec(zname, zset, ttl) : { name: zname, rrsets: cnameSet(zname, rname, cnameTtl) });
    }
  }
  const targets = fs.endpoints.map((e) => ({ name: endpointName(z, fs, e.cluster, e.host), ports: e.ports }));
  // Held as addresses: a change to one endpoint of a big headless service leaves the others' nodes as they are.
  fs.endpoints.forEach((e, i) => specs.push(new AddressSpec(targets[i].name, e, ttl)));
  // Past the bound before pairing (srvPairs), the pairing is not done: what it costs is the bound's to keep.
  const headless = fs.headless && fs.srvPairs <= MAX_SRV_RECORDS ? new HeadlessSrv(fs.ports, targets) : undefined;
  const records = fs.headless ? 2 * (headless?.count ?? fs.srvPairs) : 0;
  if (records > MAX_SRV_RECORDS) {
    if (leftOut) leftOut.srv = Math.max(leftOut.srv, records);
  } else {
    for (const owner of [short, global]) {
      const byName = headless ? headless.sets(owner, ttl) : serviceSrvSets(owner, fs.ports, ttl);
      for (const [name, set] of byName) specs.push({ name, rrsets: new Map([[RRType.SRV, set]]), locality });
    }
  }
  return specs;
}

/** SRV owner name -> records of a service with a cluster IP: each named port, to the service's own name. */
export function serviceSrvSets(owner: string, ports: readonly SlimPort[], ttl: number): Map<string, RR[]> {
  const out = new Map<string, RR[]>();
  for (const p of ports) {
    const name = srvName(p, owner);
    const set = out.get(name) ?? [];
    set.push({ name, type: RRType.SRV, ttl, data: { priority: 0, weight: 100, port: p.port, target: owner } });
    out.set(name, set);
  }
  return out;
}

/**
 * A headless service's SRV records in one zone: each endpoint (its name) on each named port of the
 * slices it is in, never on a port of another slice or cluster. Endpoints are paired with ports
 * once, grouped by their port list (slices share one), so that each list is read once per port,
 * not once per endpoint; `count` tells before any record is made how many each owner gets.
 */
export class HeadlessSrv {
  /** Each port some target has, with the groups of targets that have it. */
  private readonly pairs: { port: SlimPort; groups: string[][] }[] = [];
  /** Records per owner. */
  readonly count: number;
  private readonly weight: number;

  constructor(ports: readonly SlimPort[], targets: readonly { name: string; ports: readonly SlimPort[] }[]) {
    this.weight = Math.max(1, Math.floor(100 / Math.max(1, targets.length)));
    const byList = new Map<readonly SlimPort[], string[]>();
    for (const t of targets) {
      const g = byList.get(t.ports);
      if (g) g.push(t.name);
      else byList.set(t.ports, [t.name]);
    }
    // Port -> the groups whose list has it (each list once, however often it names the port):
    // every list is read once, so pairing costs what the lists hold, not lists times ports.
    const byPort = new Map<string, { groups: string[][]; last?: readonly SlimPort[]; targets: number }>();
    for (const [list, names] of byList)
      for (const p of list) {
        const k = portKey(p);
        let e = byPort.get(k);
        if (!e) byPort.set(k, (e = { groups: [], targets: 0 }));
        if (e.last === list) continue;
        e.last = list;
        e.groups.push(names);
        e.targets += names.length;
      }
    let count = 0;
    for (const port of ports) {
      const e = byPort.get(portKey(port));
      if (!e) continue;
      this.pairs.push({ port, groups: e.groups });
      count += e.targets;
    }
    this.count = count;
  }

  /** SRV owner name -> records, under `owner`. A port no target has gives no name. */
  sets(owner: string, ttl: number): Map<string, RR[]> {
    const out = new Map<string, RR[]>();
    for (const { port, groups } of this.pairs) {
      const name = srvName(port, owner);
      let set = out.get(name);
      if (!set) out.set(name, (set = []));
      for (const names of groups)
        for (const target of names) set.push({ name, type: RRType.SRV, ttl, data: { priority: 0, weight: this.weight, port: port.port, target } });
    }
    return out;
  }
}

/**
 * Leaves out the names longer than 255 bytes in wire form (RFC 1035 2.3.4), which long service,
 * namespace, region and zone labels together can make, and the SRV records that target them.
 * CNAMEs always point at a shorter name of the same service, so none points at a name left out.
 */
export function withoutLongNames(specs: NameSpec[]): { specs: NameSpec[]; omitted: string[] } {
  const omitted = specs.filter((s) => wireLength(s.name) > MAX_NAME_LENGTH).map((s) => s.name);
  if (omitted.length === 0) return { specs, omitted };
  const gone = new Set(omitted);
  const out: NameSpec[] = [];
  for (const spec of specs) {
    if (gone.has(spec.name)) continue;
    const srv = spec.rrsets.get(RRType.SRV);
    if (srv?.some((r) => gone.has((r.data as SrvData).target))) {
      const kept = srv.filter((r) => !gone.has((r.data as SrvData).target));
      if (kept.length === 0 && spec.rrsets.size === 1) continue;
      out.push({ ...spec, rrsets: new Map(spec.rrsets).set(RRType.SRV, kept) });
    } else {
      out.push(spec);
    }
  }
  return { specs: out, omitted };
}
