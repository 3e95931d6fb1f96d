/**
 * Random federations with crafted labels, changed at random and published again and again. After
 * every publish of either zone:
 *   (a) the snapshot's record count is the number of records it holds;
 *   (b) the listed change turns the previous zone into this one (IXFR), and nothing a secondary
 *       may hold (a ready serial) is followed by an unlisted change; a zone that changed has a new serial;
 * and once every service is built again, (c) every name holds and answers what a new builder fed
 * the same services gives, with every name held as plain records (no AddressNode), and an answer
 * carries only records the zone holds at their names.
 * Labels are picked so that names of different services meet: the same name, or one below another.
 * The walks are seeded: a failure names its seed and step, and PROPERTY_SEEDS/PROPERTY_STEPS run others.
 */
import { describe, expect, it } from 'vitest';
import { SERVICE_NAME_LABEL, slimEndpointSlice, type SlimEndpointSlice, type SlimService } from '../../src/cluster/objects.js';
import type { ClusterState } from '../../src/cluster/state.js';
import { clusterSetNames } from '../../src/federation/clusterset.js';
import { Federation, type FederationSettings } from '../../src/federation/federation.js';
import { PACE_MAX_MS, type Pacer } from '../../src/federation/pacer.js';
import { serviceNames, withoutLongNames } from '../../src/federation/service-records.js';
import { Journal } from '../../src/server/journal.js';
import { Responder } from '../../src/server/responder.js';
import { serialLess } from '../../src/server/xfr.js';
import { EdnsOption, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { keyToName, nameKey } from '../../src/wire/name.js';
import { rrText, type RR, type SoaData } from '../../src/wire/records.js';
import { zoneRecords } from '../../src/zone/masterfile.js';
import { dnsVersionName, MCS_DNS_SCHEMA_VERSION } from '../../src/zone/names.js';
import type { NameSpec } from '../../src/zone/node.js';
import { ZoneBuilder, type ApexSettings, type ZoneChange, type ZoneSnapshot } from '../../src/zone/snapshot.js';
import { prng } from '../support/corpus.js';
import { testFederationSettings } from '../support/federation.js';

const long = (c: string) => c.repeat(63);
// "fed" is the federation label and "svc" the v1 form's: as service, namespace, region or zone
// labels they make one service's names equal to, or ancestors of, another's. For instance the
// zonal name of prod/a in zone fed of region svc is a.prod.fed.svc.fed.svc.example.com., which is
// also the name of endpoint "a" in cluster "prod" of the headless service svc/fed. Labels of 63
// characters make names longer than 255 bytes, left out.
const SERVICES = ['a', 'fed', 'svc', long('s')];
const NAMESPACES = ['prod', 'svc', long('n')];
const REGIONS = ['svc', 'fed', long('r')];
const ZONES = ['fed', 'prod', 'svc', long('z')];
const CLUSTERS = ['prod', 'svc', long('c')];
const HOSTS = ['a', 'fed', long('h')];
/** Labels of the walks. */
interface Labels {
  services: string[];
  namespaces: string[];
  regions: string[];
  zones: string[];
  clusters: string[];
  hosts: string[];
  /** How many services are headless. */
  headless: number;
}
const LABELS: Labels = { services: SERVICES, namespaces: NAMESPACES, regions: REGIONS, zones: ZONES, clusters: CLUSTERS, hosts: HOSTS, headless: 0.25 };
/** Only the labels that make names meet, for walks that need many such names (the paced ones). */
const MEETING: Labels = { services: ['a', 'fed'], namespaces: ['prod', 'svc'], regions: ['svc'], zones: ['fed'], clusters: ['prod', 'svc'], hosts: ['a', 'fed'], headless: 0.5 };
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.0.2.1', '2001:db8::1', '2001:db8::2', 'not-an-address'];
const QTYPES = [RRType.A, RRType.AAAA, RRType.SRV, RRType.CNAME, RRType.TXT, RRType.NS, RRType.ANY];

/** Name servers of the apex: plain, one at a service's short name, one below a service's short name. */
const NAMESERVERS: ApexSettings['nameservers'][] = [
  [{ name: 'ns1.example.com.', addresses: ['192.0.2.53'] }],
  [
    { name: 'ns1.example.com.', addresses: ['192.0.2.53'] },
    { name: 'a.svc.fed.example.com.', addresses: ['192.0.2.54'] },
  ],
  [
    { name: 'ns1.example.com.', addresses: ['192.0.2.53'] },
    { name: 'x.a.prod.fed.example.com.', addresses: ['192.0.2.55'] },
  ],
];

function settingsWith(ttl: number, staleTtl: number, nameservers: ApexSettings['nameservers']): FederationSettings {
  const s = testFederationSettings({ defaultTtl: ttl, staleTtl });
  const apex = { ...s.apex, nameservers };
  const csApex = { ...s.apex, domain: 'clusterset.local.', nameservers: [{ name: 'ns1.clusterset.local.', addresses: ['192.0.2.53'] }] };
  return { ...s, apex, clusterSet: { apex: csApex, naming: { domain: 'clusterset.local.' } } };
}

/** Record texts as a multiset. */
function multiset(records: Iterable<RR>): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(rrText(r), (m.get(rrText(r)) ?? 0) + 1);
  return m;
}

const withoutSoa = (z: ZoneSnapshot) => zoneRecords(z).slice(1);

function sameMultiset(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, n] of a) if (b.get(k) !== n) return false;
  return true;
}

/** What a response says, with the SOA serial left out (the reference zone numbers its own). */
function normalized(m: Message): unknown {
  const text = (r: RR) => (r.type === RRType.SOA ? rrText({ ...r, data: { ...(r.data as SoaData), serial: 0 } }) : rrText(r));
  return {
    rcode: m.rcode,
    aa: m.aa,
    answers: m.answers.map(text).sort(),
    authorities: m.authorities.map(text).sort(),
    additionals: m.additionals.map(text).sort(),
    stale: m.edns?.options.some((o) => o.code === EdnsOption.EDE) ?? false,
  };
}

/** The specs as plain records: what a name answers must not depend on how it is held. */
const plain = (specs: NameSpec[]): NameSpec[] => specs.map((s) => ({ name: s.name, rrsets: s.rrsets, locality: s.locality }));

class World {
  readonly fed: Federation;
  readonly clusters = new Map<string, ClusterState>();
  readonly responder: Responder;
  settings: FederationSettings;
  /** Events of both zones since the last check, in order. */
  readonly events: { zone: 'federation' | 'clusterset'; snap: ZoneSnapshot; change: ZoneChange }[] = [];

  constructor(
    readonly rand: () => number,
    readonly labels: Labels = LABELS,
  ) {
    this.settings = settingsWith(30, 5, NAMESERVERS[0]);
    this.fed = new Federation(this.settings);
    this.fed.on('published', (snap, change) => this.events.push({ zone: 'federation', snap, change }));
    this.fed.on('clusterSetPublished', (snap, change) => this.events.push({ zone: 'clusterset', snap, change }));
    this.responder = new Responder(() => this.fed.snapshot);
    this.responder.otherZone = () => this.fed.clusterSetSnapshot;
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rand() * list.length)];
  }

  chance(p: number): boolean {
    return this.rand() < p;
  }

  addCluster(name: string): ClusterState {
    const c = this.fed.addCluster({ name, zones: [], addressMode: this.chance(0.5) ? 'endpoints' : 'loadBalancer', gracePeriod: 300 });
    this.clusters.set(name, c);
    if (this.chance(0.8)) c.setDiscoveredRegion(this.pick(this.labels.regions));
    return c;
  }

  randomService(): SlimService {
    const ports = this.chance(0.2) ? [] : this.chance(0.5) ? [{ name: 'http', port: 80, protocol: 'tcp' }] : [{ name: 'http', port: 80, protocol: 'tcp' }, { name: 'dns', port: 53, protocol: 'udp' }];
    const s: SlimService = {
      namespace: this.pick(this.labels.namespaces),
      name: this.pick(this.labels.services),
      headless: this.chance(this.labels.headless),
      ports,
      lbAddresses: ADDRESSES.filter(() => this.chance(0.3)),
      lbHostnames: [],
      labels: {},
    };
    if (this.chance(0.2)) s.ttl = this.pick([5, 30, 60]);
    // Traffic policies apply to short and global names only: never to the names held as addresses.
    if (this.chance(0.15)) s.traffic = this.chance(0.5) ? { policy: 'failover' } : { maxAddresses: 1 };
    return s;
  }

  randomSlice(s: { namespace: string; name: string }): SlimEndpointSlice {
    // Read as from the API: endpoints with no, one or several addresses (repeated, IPv6 in
    // either spelling), ready, not ready or terminating, with and without hostnames and zones.
    const n = Math.floor(this.rand() * 4);
    const v6 = this.chance(0.2);
    const endpoints = Array.from({ length: n }, () => {
      const count = this.chance(0.7) ? 1 : this.pick([0, 2, 3]);
      const addresses = Array.from({ length: count }, () => this.pick(v6 ? ['2001:db8::1', '2001:DB8:0::2', '2001:db8::3'] : ADDRESSES.slice(0, 4)));
      const e: Record<string, unknown> = { addresses, conditions: this.chance(0.8) ? { ready: true } : this.chance(0.5) ? { ready: false } : { ready: true, terminating: true } };
      if (this.chance(0.7)) e.zone = this.pick(this.labels.zones);
      if (this.chance(0.4)) e.hostname = this.pick(this.labels.hosts);
      return e;
    });
    return slimEndpointSlice({
      metadata: { namespace: s.namespace, name: `${s.name}-${this.pick(['x', 'y'])}`, labels: { [SERVICE_NAME_LABEL]: s.name } },
      addressType: v6 ? 'IPv6' : 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints,
    });
  }

  /** One random change to the clusters or the settings. */
  step(): void {
    const live = [...this.clusters.values()];
    const c = live.length ? this.pick(live) : undefined;
    const r = this.rand();
    if (!c || r < 0.03) {
      const name = this.pick(this.labels.clusters);
      const existing = this.clusters.get(name);
      // The last cluster going makes the zone not ready; the next one to sync makes it ready again.
      if (existing) {
        this.fed.removeCluster(name);
        this.clusters.delete(name);
      } else if (!existing) {
        const added = this.addCluster(name);
        if (this.chance(0.7)) added.markLive();
      }
      return;
    }
    if (r < 0.33) {
      const s = this.randomService();
      c.upsert('Service', s);
      if (this.chance(0.6)) c.upsert('EndpointSlice', this.randomSlice(s));
    } else if (r < 0.43) {
      this.removeOne(c, 'Service', c.services.keys());
    } else if (r < 0.68) {
      const keys = [...c.services.values()];
      if (keys.length) c.upsert('EndpointSlice', this.randomSlice(this.pick(keys)));
    } else if (r < 0.73) {
      this.removeOne(c, 'EndpointSlice', c.slices.keys());
    } else if (r < 0.8) {
      const s = this.pick([...c.services.values(), { namespace: 'prod', name: 'a' }]);
      if (this.chance(0.7)) c.upsert('ServiceExport', { namespace: s.namespace, name: s.name });
      else c.remove('ServiceExport', s.namespace, s.name);
    } else if (r < 0.83) {
      const s = this.pick([...c.services.values(), { namespace: 'prod', name: 'a' }]);
      c.upsert('ServiceImport', { namespace: s.namespace, name: s.name, headless: false, ips: this.chance(0.5) ? ['10.96.0.1'] : [] });
    } else if (r < 0.87) {
      c.setDiscoveredRegion(this.chance(0.2) ? undefined : this.pick(this.labels.regions));
    } else if (r < 0.93) {
      // Health: live, stale (a broken watch), expired (grace period over).
      const h = this.rand();
      if (h < 0.4) {
        if (c.settings.gracePeriod === 0) c.reconfigure({ ...c.settings, gracePeriod: 300 });
        c.markLive();
      } else if (h < 0.8) c.markBroken('watch failed');
      else if (c.health === 'stale') c.reconfigure({ ...c.settings, gracePeriod: 0 });
    } else if (r < 0.96) {
      this.settings = settingsWith(this.pick([30, 31, 60]), this.pick([5, 7]), this.pick(NAMESERVERS));
      this.fed.reconfigure(this.settings);
    }
    c.flush();
  }

  /** Removes one of the cluster's objects of a kind ("namespace/name" keys), if it has any. */
  removeOne(c: ClusterState, kind: 'Service' | 'EndpointSlice', keys: Iterable<string>): void {
    const list = [...keys];
    if (!list.length) return;
    const [ns, name] = this.pick(list).split('/');
    c.remove(kind, ns, name);
  }

  /** Rebuilds part of what is dirty, as one slice of a big change would; `paced`: paced services wait for their time (pacer.ts). */
  rebuildSome(services: number, paced = false): void {
    let n = 0;
    (this.fed as unknown as { rebuildFor(spent: () => boolean, paced: boolean): ZoneSnapshot }).rebuildFor(() => ++n >= services, paced);
  }

  /** Paced services so far (paceOne). */
  paced = 0;
  /** Changes held for a paced service's time (counted after each paced rebuild), and those of them held for another's (a name given or taken). */
  held = 0;
  heldBehind = 0;

  /**
   * Makes one service paced, as two slow rebuilds in a row would (none here is slow): its changes,
   * and those that would give it a name or take one, wait for its time, which comes after the
   * walk (fed.rebuild() takes them all). A service held now is left as it is: its change waits.
   */
  paceOne(): void {
    const keys = new Set<string>();
    for (const c of this.clusters.values()) for (const k of c.services.keys()) keys.add(k);
    const held = new Set(this.fed.heldServices);
    // Half the time one that gives a name another service gives too, if there is one: those are
    // the services whose names other services' changes give and take.
    const contested = new Set<string>();
    for (const b of this.builders()) {
      const waiting = (b as unknown as { waiting: Map<string, Map<string, unknown>> }).waiting;
      for (const [name, owners] of waiting) {
        for (const o of owners.keys()) contested.add(o);
        const holder = (b.snapshotNow.names.get(name) ?? (b as unknown as { map: { get(k: string): { owner: string } | undefined } }).map.get(name))?.owner;
        if (holder) contested.add(holder);
      }
    }
    const some = [...(contested.size && this.chance(0.5) ? contested : keys)].filter((k) => keys.has(k) && !held.has(k));
    if (!some.length) return;
    const pacer = (this.fed as unknown as { pacer: Pacer }).pacer;
    const key = this.pick(some);
    const end = performance.now();
    // Its wait (PACE times this) outlasts the walk.
    pacer.rebuilt(key, PACE_MAX_MS, end - 1);
    pacer.rebuilt(key, PACE_MAX_MS, end);
    this.paced++;
  }

  /** Both zones' builders. */
  builders(): ZoneBuilder[] {
    const f = this.fed as unknown as { builder: ZoneBuilder; clusterSetZone?: { builder: ZoneBuilder } };
    return f.clusterSetZone ? [f.builder, f.clusterSetZone.builder] : [f.builder];
  }

  /** Counts the changes held now (paced walks). */
  countHeld(): void {
    for (const key of this.fed.heldServices) {
      this.held++;
      if (this.fed.waitsFor(key)) this.heldBehind++;
    }
  }

  /** The federation and clusterset zones a new builder makes of the same services, every name as plain records. */
  /** Names two owners (services, the apex) gave in the last reference, and names below another owner's. */
  contested = 0;
  nested = 0;

  reference(): { zone: ZoneSnapshot; clusterSet: ZoneSnapshot } {
    const claims = new Map<string, Set<string>>();
    const claim = (owner: string, specs: NameSpec[]) => {
      for (const s of specs) claims.set(s.name, (claims.get(s.name) ?? new Set()).add(owner));
      return specs;
    };
    for (const n of this.settings.apex.nameservers) claim('@', [{ name: n.name, rrsets: new Map() }]);
    const fed = this.fed;
    const keys = new Set<string>();
    for (const c of this.clusters.values()) for (const k of c.services.keys()) keys.add(k);
    const sorted = [...keys].sort();
    const zone = new ZoneBuilder(this.settings.apex);
    zone.setReady(fed.snapshot.ready);
    for (const key of sorted) {
      const fs = fed.federated(key);
      if (fs) zone.setOwner(key, claim(key, plain(withoutLongNames(serviceNames(fs, fed.topologyNow, fed.naming)).specs)), fs.stale);
    }
    for (const owners of claims.values()) if (owners.size > 1) this.contested++;
    for (const [name, owners] of claims) {
      for (let p = name.indexOf('.') + 1; p < name.length; p = name.indexOf('.', p) + 1) {
        const above = claims.get(name.slice(p));
        if (above && [...above].some((o) => !owners.has(o))) this.nested++;
        if (p === 0) break;
      }
    }
    const cs = this.settings.clusterSet!;
    const csZone = new ZoneBuilder({ ...cs.apex, txt: [{ name: dnsVersionName(cs.naming), text: MCS_DNS_SCHEMA_VERSION }] });
    csZone.setReady(fed.snapshot.ready);
    for (const key of sorted) {
      const fs = fed.clusterSetService(key);
      if (!fs) continue;
      const ip = fed.clusterSetIpOf(key, fs);
      csZone.setOwner(key, plain(withoutLongNames(clusterSetNames(fs, ip.set, fed.clusterIds, cs.naming)).specs), fs.stale || ip.stale);
    }
    return { zone: zone.publish()?.snapshot ?? zone.snapshotNow, clusterSet: csZone.publish()?.snapshot ?? csZone.snapshotNow };
  }
}

/** Follows one zone's publishes as a secondary's IXFR would. */
class Follower {
  prev?: ZoneSnapshot;
  private prevRecords = new Map<string, number>();
  readonly journal = new Journal(1000, 1_000_000);
  /** Ready snapshots by serial (a secondary may hold them), with their records. */
  readonly held = new Map<number, Map<string, number>>();
  readyPublishes = 0;
  listedChanges = 0;
  /** Publishes seen: every other change is left unread here, and first listed by the journal check (late). */
  private publishes = 0;
  /** Times the zone went ready again after it was not. */
  returns = 0;
  private wasReady = false;

  constructor(private readonly what: string) {}

  start(snap: ZoneSnapshot): void {
    this.prev = snap;
    this.prevRecords = multiset(withoutSoa(snap));
  }

  published(snap: ZoneSnapshot, change: ZoneChange, context: string): void {
    const at = `${this.what} serial ${snap.serial} (${context})`;
    const all = zoneRecords(snap);
    expect(snap.recordCount, `record count of ${at}`).toBe(all.length);
    const records = multiset(all.slice(1));
    const prev = this.prev!;
    if (prev.ready) expect(change.unlisted, `unlisted records after ready serial ${prev.serial}, ${at}`).toBe(0);
    if ((prev.ready || snap.ready) && !sameMultiset(records, this.prevRecords)) expect(snap.serial, `serial of a changed zone, ${at}`).not.toBe(prev.serial);
    if (snap.serial !== prev.serial) expect(serialLess(prev.serial, snap.serial), `serials increase, ${at}`).toBe(true);
    if (change.unlisted === 0 && this.publishes++ % 2 === 0) {
      const applied = new Map(this.prevRecords);
      for (const r of change.removed) {
        const t = rrText(r);
        const n = applied.get(t) ?? 0;
        expect(n, `removed record not in serial ${prev.serial}: ${t}, ${at}`).toBeGreaterThan(0);
        if (n === 1) applied.delete(t);
        else applied.set(t, n - 1);
      }
      for (const r of change.added) applied.set(rrText(r), (applied.get(rrText(r)) ?? 0) + 1);
      if (!sameMultiset(applied, records)) {
        const extra = [...applied].filter(([k, n]) => records.get(k) !== n).map(([k]) => `+${k}`);
        const missing = [...records].filter(([k, n]) => applied.get(k) !== n).map(([k]) => `-${k}`);
        expect([...extra, ...missing], `listed change from ${prev.serial} does not make ${at}`).toEqual([]);
      }
      if (change.removed.length + change.added.length) this.listedChanges++;
      expect(change.size, `size of the change listed at ${at}`).toBe(change.removed.length + change.added.length);
    }
    // As ZoneServing journals it.
    if (snap.serial !== prev.serial) {
      if (change.unlisted > 0) this.journal.clear();
      else this.journal.add(prev.serial, snap.serial, change, prev.soa);
    }
    if (snap.ready && !prev.ready && this.wasReady) this.returns++;
    this.wasReady ||= snap.ready;
    if (snap.ready) {
      this.readyPublishes++;
      this.held.set(snap.serial, records);
      // Every serial a secondary may hold that the journal still leads from turns into this zone.
      for (const [serial, had] of this.held) {
        const deltas = this.journal.since(serial);
        if (!deltas) continue;
        expect(deltas.at(-1)!.to, `journal from ${serial} ends at ${at}`).toBe(snap.serial);
        const m = new Map(had);
        for (const d of deltas) {
          expect(d.change.size, `size of the change to ${d.to}, ${at}`).toBe(d.change.removed.length + d.change.added.length);
          for (const r of d.change.removed) m.set(rrText(r), (m.get(rrText(r)) ?? 0) - 1);
          for (const r of d.change.added) m.set(rrText(r), (m.get(rrText(r)) ?? 0) + 1);
        }
        for (const [k, n] of m) if (n === 0) m.delete(k);
        expect(sameMultiset(m, records), `IXFR from ${serial} makes ${at}`).toBe(true);
      }
      if (this.held.size > 8) this.held.delete(this.held.keys().next().value!);
    }
    this.prev = snap;
    this.prevRecords = records;
  }
}

function ask(responder: Responder, name: string, type: number): Message {
  return decodeMessage(responder.answer(encodeQuery(name, type, { id: 7, edns: { udpSize: 4096 } }), 'tcp')!);
}

/**
 * A sample of the zone's names asked every type: each answer carries only records the zone holds
 * at their names (CNAME chains, additional data), whatever is held for a paced service's time.
 */
function answersHeld(what: string, got: ZoneSnapshot, mine: Responder, rand: () => number): void {
  for (const key of got.names.keys()) {
    if (rand() >= 0.2) continue;
    const name = keyToName(key);
    for (const type of QTYPES) {
      const m = ask(mine, name, type);
      for (const r of [...m.answers, ...m.additionals])
        expect(got.names.get(nameKey(r.name))?.records().map(rrText) ?? [], `${what}: ${rrText(r)} in the answer for ${name}/${type}`).toContain(rrText(r));
    }
  }
}

/** Every name of both snapshots holds the same records; a sample of names answers alike. */
function compareZones(what: string, got: ZoneSnapshot, want: ZoneSnapshot, mine: Responder, theirs: Responder, rand: () => number): void {
  const keys = new Set([...got.names.keys(), ...want.names.keys()]);
  for (const key of keys) {
    const a = got.names.get(key);
    const b = want.names.get(key);
    const name = keyToName(key);
    expect(a === undefined, `${what}: ${name} present in one zone only (built ${a !== undefined}, reference ${b !== undefined})`).toBe(b === undefined);
    if (!a || !b) continue;
    expect(a.records().map(rrText).sort(), `${what}: records of ${name}`).toEqual(b.records().map(rrText).sort());
    expect([a.owner, a.stale, a.isEmptyNonTerminal, a.recordCount], `${what}: owner, stale, empty, count of ${name}`).toEqual([b.owner, b.stale, b.isEmptyNonTerminal, b.recordCount]);
  }
  expect(got.recordCount, `${what}: record count`).toBe(want.recordCount);
  expect(got.ready).toBe(want.ready);
  const all = [...keys];
  const sample = all.filter(() => rand() < 0.2).map((key) => ({ name: keyToName(key), node: want.names.get(key) }));
  sample.push({ name: `zz.${keyToName(all[Math.floor(rand() * all.length)])}`, node: undefined });
  for (const { name, node } of sample) {
    for (const type of QTYPES) {
      // Traffic policies choose per query (weighted draws, capped windows take turns).
      if (node?.locality && (type === RRType.A || type === RRType.AAAA || type === RRType.SRV || type === RRType.ANY)) continue;
      const m = ask(mine, name, type);
      for (const soa of m.authorities.filter((r) => r.type === RRType.SOA))
        expect((soa.data as SoaData).serial, `${what}: SOA serial in the answer for ${name}/${type}`).toBe(got.serial);
      // An answer carries only records the zone holds at their names (chains, additional data).
      for (const r of [...m.answers, ...m.additionals])
        expect(got.names.get(nameKey(r.name))?.records().map(rrText) ?? [], `${what}: ${rrText(r)} in the answer for ${name}/${type}`).toContain(rrText(r));
      expect(normalized(m), `${what}: answer for ${name} type ${type}`).toEqual(normalized(ask(theirs, name, type)));
    }
  }
}

/**
 * `paced`: services are made paced as the walk goes (World.paceOne) and the partial rebuilds are
 * paced ones: a change of a paced service, and one that would give it a name or take one from it,
 * waits; every answer meanwhile carries only records the zone holds, and once every change is
 * taken (fed.rebuild()) the zone is the reference's.
 */
function run(seedValue: number, steps: number, paced = false): { ready: number; listed: number; contested: number; nested: number; returns: number } & Partial<Record<'paced' | 'held' | 'heldBehind', number>> {
  const rand = prng(seedValue);
  const w = new World(rand, paced ? MEETING : LABELS);
  const zone = new Follower('federation zone');
  const cs = new Follower('clusterset zone');
  zone.start(w.fed.snapshot);
  cs.start(w.fed.clusterSetSnapshot!);
  w.addCluster('prod').markLive();
  try {
    for (let i = 0; i < steps; i++) {
      if (paced && rand() < 0.3) w.paceOne();
      w.step();
      const complete = rand() < (paced ? 0.25 : 0.7);
      if (complete) w.fed.rebuild();
      else w.rebuildSome(1 + Math.floor(rand() * 3), paced);
      for (const e of w.events.splice(0)) (e.zone === 'federation' ? zone : cs).published(e.snap, e.change, `seed ${seedValue} step ${i}`);
      if (!complete) {
        if (paced) {
          w.countHeld();
          answersHeld(`seed ${seedValue} step ${i} (paced), federation zone`, w.fed.snapshot, w.responder, rand);
          answersHeld(`seed ${seedValue} step ${i} (paced), clusterset zone`, w.fed.clusterSetSnapshot!, w.responder, rand);
        }
        continue;
      }
      const ref = w.reference();
      const theirs = new Responder(() => ref.zone);
      theirs.otherZone = () => ref.clusterSet;
      compareZones(`seed ${seedValue} step ${i}, federation zone`, w.fed.snapshot, ref.zone, w.responder, theirs, rand);
      compareZones(`seed ${seedValue} step ${i}, clusterset zone`, w.fed.clusterSetSnapshot!, ref.clusterSet, w.responder, theirs, rand);
    }
  } finally {
    w.fed.close();
  }
  const base = { ready: zone.readyPublishes, listed: zone.listedChanges + cs.listedChanges, contested: w.contested, nested: w.nested, returns: zone.returns };
  return paced ? { ...base, paced: w.paced, held: w.held, heldBehind: w.heldBehind } : base;
}

describe('zone building, property-checked', () => {
  // More, or other, walks: PROPERTY_SEEDS=1,2,3 PROPERTY_STEPS=300 npx vitest run test/unit/zone-property.test.ts
  const seeds = process.env.PROPERTY_SEEDS ? process.env.PROPERTY_SEEDS.split(',').map(Number) : [29, 42, 58, 60];
  const steps = Number(process.env.PROPERTY_STEPS ?? 100);
  it.each(seeds)('random federations with colliding labels stay exact and transferable (seed %i)', (seedValue) => {
    const r = run(seedValue, steps);
    // The walk went where the checks matter: ready zones, listed changes, names two owners gave,
    // names below another owner's, and the zone ready again after it was not.
    if (!process.env.PROPERTY_SEEDS) for (const v of Object.values(r)) expect(v).toBeGreaterThan(0);
    if (process.env.PROPERTY_SEEDS) console.log(seedValue, r);
  });
  it.each(process.env.PROPERTY_SEEDS ? seeds : seeds.slice(0, 2))('with paced services holding changes, answers stay consistent and the zone ends exact (seed %i)', (seedValue) => {
    const r = run(seedValue, steps, true);
    // The walk held changes for a paced service's time while names two services gave were about.
    // (test/unit/disturbed-pacing.test.ts walks where those changes give and take such names.)
    if (!process.env.PROPERTY_SEEDS) for (const v of [r.ready, r.listed, r.contested, r.paced, r.held]) expect(v).toBeGreaterThan(0);
    if (process.env.PROPERTY_SEEDS) console.log(seedValue, 'paced', r);
  });
});
