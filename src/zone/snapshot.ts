// The immutable zone snapshot and the builder that publishes new ones.
// Names live in a persistent map (structural sharing): a change rewrites only the names it
// touches plus O(log n) map nodes, and publishing swaps one reference. Readers keep whatever
// snapshot they started with.
import { Map as PMap } from 'immutable';
import { RRType } from '../dns/constants.js';
import { canonicalName, keyToName, nameKey, parentKey } from '../dns/name.js';
import { rrIdentity, type RR, type SoaData } from '../dns/records.js';
import { prepareAnswers, ZoneNode, type NameSpec } from './node.js';

export interface ZoneSnapshot {
  readonly serial: number;
  readonly domain: string;
  readonly apexKey: string;
  readonly names: PMap<string, ZoneNode>;
  readonly soa: RR;
  /** Number of records (not counting empty non-terminals). */
  readonly recordCount: number;
  /** False while no member cluster has synced: cluster names get SERVFAIL, not NXDOMAIN. */
  readonly ready: boolean;
}

export interface ZoneChange {
  /** Records removed and added since the previous serial (TTL changes appear as both). */
  removed: RR[];
  added: RR[];
}

export interface ApexSettings {
  domain: string;
  soa: Omit<SoaData, 'serial'> & { ttl: number };
  nameservers: { name: string; addresses: string[] }[];
  nsTtl: number;
}

/** Next SOA serial: time-based so replicas and restarts stay comparable, and always increasing. */
export function nextSerial(prev: number, nowSeconds = Math.floor(Date.now() / 1000)): number {
  const next = Math.max(prev + 1, nowSeconds) >>> 0;
  return next === 0 ? 1 : next;
}

function recordKey(rr: RR): string {
  return `${rrIdentity(rr)} ${rr.ttl}`;
}

export class ZoneBuilder {
  private names: PMap<string, ZoneNode>;
  private draft?: PMap<string, ZoneNode>;
  /** Owner ("ns/name", "@") -> its names' keys. Bookkeeping for rebuilds; never read by queries. */
  private readonly owned = new Map<string, string[]>();
  private recordCount = 0;
  private serial: number;
  private current: ZoneSnapshot;
  private pendingRemoved: RR[] = [];
  private pendingAdded: RR[] = [];
  private ready = false;
  readonly apexKey: string;

  constructor(
    private apex: ApexSettings,
    initialSerial = nextSerial(0),
  ) {
    this.apexKey = nameKey(apex.domain);
    this.names = PMap<string, ZoneNode>();
    this.serial = initialSerial;
    this.current = this.snapshot();
    this.setApex(apex);
    this.publish();
  }

  get snapshotNow(): ZoneSnapshot {
    return this.current;
  }

  private get map(): PMap<string, ZoneNode> {
    if (!this.draft) this.draft = this.names.asMutable();
    return this.draft;
  }

  /** Apex data: SOA (serial set at publish), NS and in-zone glue. */
  setApex(apex: ApexSettings): void {
    this.apex = apex;
    const d = canonicalName(apex.domain);
    const ns: RR[] = apex.nameservers.map((n) => ({ name: d, type: RRType.NS, ttl: apex.nsTtl, data: canonicalName(n.name) }));
    const specs: NameSpec[] = [{ name: d, rrsets: new Map([[RRType.NS, ns]]) }];
    for (const n of apex.nameservers) {
      const name = canonicalName(n.name);
      if (!(name === d || name.endsWith(`.${d}`))) continue;
      let spec = specs.find((s) => s.name === name);
      if (!spec) specs.push((spec = { name, rrsets: new Map() }));
      for (const a of n.addresses) {
        const type = a.includes(':') ? RRType.AAAA : RRType.A;
        const set = spec.rrsets.get(type) ?? [];
        if (!set.some((r) => r.data === a)) set.push({ name, type, ttl: apex.nsTtl, data: a });
        spec.rrsets.set(type, set);
      }
    }
    this.setOwner('@', specs);
  }

  /** Marks the zone as backed by at least one synced cluster. */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  /**
   * Replaces every name of one owner (a federated service "ns/name") with `specs` (none: removed).
   * `stale` marks answers built from stale cluster data (EDE 3).
   */
  setOwner(owner: string, specs: NameSpec[], stale = false): void {
    const answers = prepareAnswers(specs);
    const oldKeys = this.owned.get(owner) ?? [];
    const newKeys: string[] = [];
    const m = this.map;
    const keep = new Set<string>();
    for (const spec of specs) {
      const key = nameKey(spec.name);
      keep.add(key);
      newKeys.push(key);
      const old = m.get(key);
      if (old && old.owner !== owner && old.owner !== '') continue; // another owner's name: first one wins
      const node = new ZoneNode(key, spec.name, sortByType(spec.rrsets), answers.get(spec.name)!, owner, old?.children ?? 0, stale);
      this.diffRecords(old, node);
      m.set(key, node);
      if (!old) this.linkParent(key);
    }
    // Remove names that this owner no longer has, deepest first so parents see their children go.
    const gone = oldKeys.filter((k) => !keep.has(k)).sort((a, b) => b.length - a.length);
    for (const key of gone) this.removeName(key, owner);
    if (newKeys.length) this.owned.set(owner, newKeys);
    else this.owned.delete(owner);
  }

  private diffRecords(old: ZoneNode | undefined, node: ZoneNode | undefined): void {
    const before = old ? old.records() : [];
    const after = node ? node.records() : [];
    if (before.length === 0 && after.length === 0) return;
    const a = new Set(after.map(recordKey));
    const b = new Set(before.map(recordKey));
    for (const r of before) if (!a.has(recordKey(r))) this.pendingRemoved.push(r);
    for (const r of after) if (!b.has(recordKey(r))) this.pendingAdded.push(r);
    this.recordCount += after.length - before.length;
  }

  private linkParent(key: string): void {
    const m = this.map;
    let child = key;
    while (child !== this.apexKey && child.length > this.apexKey.length) {
      const pk = parentKey(child);
      const parent = m.get(pk);
      if (parent) {
        m.set(pk, parent.withChildren(parent.children + 1));
        return;
      }
      m.set(pk, new ZoneNode(pk, keyToName(pk), new Map(), new Map(), '', 1, false));
      child = pk;
    }
  }

  private removeName(key: string, owner: string): void {
    const m = this.map;
    const node = m.get(key);
    if (!node || node.owner !== owner) return;
    this.diffRecords(node, undefined);
    if (node.children > 0) {
      m.set(key, new ZoneNode(key, node.name, new Map(), new Map(), '', node.children, false));
      return;
    }
    m.delete(key);
    let child = key;
    while (child !== this.apexKey) {
      const pk = parentKey(child);
      const parent = m.get(pk);
      if (!parent) return;
      if (parent.children > 1 || !parent.isEmptyNonTerminal || pk === this.apexKey) {
        m.set(pk, parent.withChildren(parent.children - 1));
        return;
      }
      m.delete(pk);
      child = pk;
    }
  }

  /** Publishes the changes made since the last publish as a new snapshot; returns its change set. */
  publish(): { snapshot: ZoneSnapshot; change: ZoneChange } | undefined {
    const records = this.pendingAdded.length + this.pendingRemoved.length > 0;
    const touched = this.draft !== undefined;
    if (this.draft) {
      this.names = this.draft.asImmutable();
      this.draft = undefined;
    }
    if (!records && !touched && this.ready === this.current.ready) return undefined;
    const change: ZoneChange = { removed: this.pendingRemoved, added: this.pendingAdded };
    this.pendingAdded = [];
    this.pendingRemoved = [];
    if (records) this.serial = nextSerial(this.serial);
    this.current = this.snapshot();
    return { snapshot: this.current, change };
  }

  private snapshot(): ZoneSnapshot {
    const d = canonicalName(this.apex.domain);
    const { ttl, ...soaFields } = this.apex.soa;
    const soa: RR = { name: d, type: RRType.SOA, ttl, data: { ...soaFields, serial: this.serial } };
    return {
      serial: this.serial,
      domain: d,
      apexKey: this.apexKey,
      names: this.names,
      soa,
      recordCount: this.recordCount + 1,
      ready: this.ready,
    };
  }
}

function sortByType(m: Map<number, RR[]>): Map<number, RR[]> {
  return new Map([...m].filter(([, v]) => v.length > 0).sort((a, b) => a[0] - b[0]));
}
