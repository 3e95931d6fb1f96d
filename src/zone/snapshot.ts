// The immutable zone snapshot and the builder that publishes new ones.
// Names live in a persistent map (structural sharing): a change rewrites only the names it
// touches plus O(log n) map nodes, and publishing swaps one reference. Readers keep whatever
// snapshot they started with.
import { PersistentMap, type MapDraft } from './pmap.js';
import { RRType } from '../wire/constants.js';
import { canonicalName, keyToName, nameKey, parentKey } from '../wire/name.js';
import { sameRecord, type RR, type SoaData } from '../wire/records.js';
import { addressRRsets, AddressNode, heldAsAddresses, prepareAnswers, RecordsNode, ZoneNode, type AddressRecipe, type Answer, type NameSpec } from './node.js';
import { pushAll } from '../lists.js';
import { sameLocality } from './locality.js';
import { SmallMap } from './small-map.js';
import { ShardedMap } from '../sharded-map.js';

export interface ZoneSnapshot {
  readonly serial: number;
  readonly domain: string;
  readonly apexKey: string;
  readonly names: PersistentMap<ZoneNode>;
  readonly soa: RR;
  /** Number of records (not counting empty non-terminals). */
  readonly recordCount: number;
  /** False while no member cluster has synced: cluster names get SERVFAIL, not NXDOMAIN. */
  readonly ready: boolean;
}

export interface ZoneChange {
  /**
   * Records removed and added since the previous serial (TTL changes appear as both), listed when
   * first read: most changes are never read (a bulk rebuild publishes every slice, and the IXFR
   * journal keeps only the last few), and listing every record of a reload made 2.4 million
   * objects of garbage for 100,000 services.
   */
  readonly removed: RR[];
  readonly added: RR[];
  /** removed.length + added.length, known without listing them. */
  readonly size: number;
  /**
   * Records changed that are not listed in removed/added: changes made while the zone was not
   * ready (no transfer serves such a serial), which would only be garbage. No IXFR delta can
   * cross this change.
   */
  readonly unlisted: number;
}

type NodeChange = { before: ZoneNode | undefined; after: ZoneNode | undefined };

/** Adds the records of `c.before` that `c.after` does not hold to `removed`, and the reverse to `added`. */
function listChange({ before, after }: NodeChange, removed: RR[], added: RR[]): void {
  const was = before?.rrsets;
  const now = after?.rrsets;
  if (was) for (const [type, set] of was) missing(set, now?.get(type), removed);
  if (now) for (const [type, set] of now) missing(set, was?.get(type), added);
}

/**
 * How many records listing `c` gives, told without making records for names held as addresses
 * (a name gained or lost, a new TTL, or the addresses one has and the other lacks); other names
 * are listed. A reordering alone lists nothing.
 */
function changedRecords(c: NodeChange): number {
  const { before, after } = c;
  const was = before?.recordCount ?? 0;
  const now = after?.recordCount ?? 0;
  if (was === 0 || now === 0) return was + now;
  if (before instanceof AddressNode && after instanceof AddressNode) {
    if (before.ttl !== after.ttl) return was + now;
    const count = (a: readonly string[], b: readonly string[]) => absent(a, b, same, itself).length;
    return count(before.v4, after.v4) + count(after.v4, before.v4) + count(before.v6, after.v6) + count(after.v6, before.v6);
  }
  const removed: RR[] = [];
  const added: RR[] = [];
  listChange(c, removed, added);
  return removed.length + added.length;
}

/** One name's change as listed records. */
type ListedChange = { removed: RR[]; added: RR[] };

/**
 * Records a name may hold, before and after, beyond what its change lists, for its nodes to be
 * kept to list it later: a journal keeps a change for each of its last serials, and nodes of a
 * service of 40,000 endpoints kept for the one address each change moved held 64 MiB for a
 * hundred deltas of four records.
 */
const LAZY_SLACK = 64;

/** Lists a name's change now, from two names held as addresses without making their other records. */
function listedNow(c: NodeChange): ListedChange {
  const removed: RR[] = [];
  const added: RR[] = [];
  const { before, after } = c;
  if (before instanceof AddressNode && after instanceof AddressNode && before.ttl === after.ttl) {
    const name = after.name;
    const { ttl } = after;
    const push = (out: RR[], type: number, from: readonly string[], other: readonly string[]) => {
      for (const data of absent(from, other, same, itself)) out.push({ name, type, ttl, data });
    };
    push(removed, RRType.A, before.v4, after.v4);
    push(removed, RRType.AAAA, before.v6, after.v6);
    push(added, RRType.A, after.v4, before.v4);
    push(added, RRType.AAAA, after.v6, before.v6);
  } else {
    listChange(c, removed, added);
  }
  return { removed, added };
}

/**
 * A change listed from the nodes it replaced when it is first read; the nodes are published, so
 * never change. Names whose nodes hold far more than their change lists (LAZY_SLACK) are listed
 * at once instead, so that a kept change holds what it lists, not the names it touched.
 */
class NodeChanges implements ZoneChange {
  private listed?: ListedChange;

  constructor(
    private nodes: (NodeChange | ListedChange)[],
    readonly size: number,
    readonly unlisted: number,
  ) {}

  private list(): ListedChange {
    if (this.listed) return this.listed;
    const removed: RR[] = [];
    const added: RR[] = [];
    for (const c of this.nodes) {
      if ('removed' in c) {
        pushAll(removed, c.removed);
        pushAll(added, c.added);
      } else listChange(c, removed, added);
    }
    this.nodes = [];
    return (this.listed = { removed, added });
  }

  get removed(): RR[] {
    return this.list().removed;
  }

  get added(): RR[] {
    return this.list().added;
  }
}

export interface ApexSettings {
  domain: string;
  soa: Omit<SoaData, 'serial'> & { ttl: number };
  nameservers: { name: string; addresses: string[] }[];
  nsTtl: number;
  /** TXT records of the zone itself (TTL nsTtl), answered like the apex (the clusterset zone's dns-version). */
  txt?: { name: string; text: string }[];
}

/** Apex settings as text to compare: name servers, their addresses and TXT records are sets, not lists (their order is no change). */
function apexText(apex: ApexSettings): string {
  const sorted = <T>(list: readonly T[], key: (x: T) => string) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const nameservers = sorted(apex.nameservers, (n) => n.name).map((n) => ({ name: n.name, addresses: [...n.addresses].sort() }));
  return JSON.stringify({ ...apex, nameservers, txt: apex.txt && sorted(apex.txt, (t) => `${t.name} ${t.text}`) });
}

/** Next SOA serial: time-based so replicas and restarts stay comparable, and always increasing. */
export function nextSerial(prev: number, nowSeconds = Math.floor(Date.now() / 1000)): number {
  const next = Math.max(prev + 1, nowSeconds) >>> 0;
  return next === 0 ? 1 : next;
}

/**
 * The values of `a` that `b` lacks, in `a`'s order; `same` tells two values apart, and `key`
 * files a value where an equal one would be found. Each list holds no value twice (RFC 2181 5:
 * no record twice in a set). Lists are made in one order each time, so where both agree at their
 * ends (an endpoint came or went in the middle of a big one) they are passed over, and what lies
 * between is scanned when small, or looked up by key: a changed set costs its size, not its
 * size squared.
 */
function absent<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean, key: (x: T) => unknown): T[] {
  if (a === b) return [];
  let start = 0;
  while (start < a.length && start < b.length && same(a[start], b[start])) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && same(a[endA - 1], b[endB - 1])) {
    endA--;
    endB--;
  }
  const out: T[] = [];
  if (start === endA) return out;
  // What is passed over holds none of what lies between (no value twice).
  if (endB - start <= 8) {
    for (let i = start; i < endA; i++) {
      let found = false;
      for (let j = start; j < endB && !found; j++) found = same(a[i], b[j]);
      if (!found) out.push(a[i]);
    }
    return out;
  }
  const have = new Map<unknown, T[]>();
  for (let j = start; j < endB; j++) {
    const k = key(b[j]);
    const list = have.get(k);
    if (list) list.push(b[j]);
    else have.set(k, [b[j]]);
  }
  for (let i = start; i < endA; i++) if (!have.get(key(a[i]))?.some((x) => same(x, a[i]))) out.push(a[i]);
  return out;
}

const same = <T>(x: T, y: T): boolean => x === y;
const itself = <T>(x: T): T => x;

/** Where a record is filed for absent(): by its data (SRV data, an object, by its fields). */
function recordKey(r: RR): unknown {
  const d = r.data;
  if (typeof d === 'string') return d;
  if (r.type === RRType.SRV) {
    const v = d as { priority: number; weight: number; port: number; target: string };
    return `${v.priority} ${v.weight} ${v.port} ${v.target}`;
  }
  return JSON.stringify(d);
}

/** Pushes the records of `set` that `other` lacks (same data and TTL) onto `out`. */
function missing(set: RR[], other: RR[] | undefined, out: RR[]): void {
  pushAll(out, other ? absent(set, other, sameRecord, recordKey) : set);
}

export class ZoneBuilder {
  private names: PersistentMap<ZoneNode>;
  private draft?: MapDraft<ZoneNode>;
  /**
   * Owner ("ns/name", "@") -> its names' keys (their ancestors are computed again when the names
   * change, rather than kept for every owner). Bookkeeping; never read by queries.
   */
  private readonly owned = new Map<string, string[]>();
  /**
   * Ancestor key -> how many owners have names below it (it is an empty non-terminal unless it has
   * records). 400,000 keys in a zone of 100,000 services: sharded, so that growing it never holds
   * up queries for long.
   */
  private readonly entRefs = new ShardedMap<number>();
  /** Owner -> the node it placed at each of its names (as `owned` lists them; undefined: another owner's). */
  private readonly placed = new Map<string, (ZoneNode | undefined)[]>();
  /**
   * Key -> owner -> the node it would place there, for owners whose name another owner holds
   * (crafted labels can make two services give one name): placed when the holder lets it go.
   */
  private readonly waiting = new Map<string, Map<string, ZoneNode>>();
  /**
   * Owners that gained or lost a name to another owner since their answers were made: answers
   * chase and add records only from names the owner holds, so theirs must be made again
   * (disturbedOwners), and setOwner makes them even when nothing else changed.
   */
  private readonly disturbed = new Set<string>();
  /** The specs wouldDisturb was last asked about, with their names' keys: setOwner takes them as they are. */
  private checked?: { owner: string; specs: readonly NameSpec[]; keys: string[] };
  private recordCount = 0;
  private serial: number;
  private current: ZoneSnapshot;
  /**
   * Names whose node changed since the last publish -> their node then and now. The change is
   * listed from these two (when first read), so a name a batch touches twice (two reloads, one
   * owner giving one name twice) lists what changed, never a record added and then removed again.
   */
  private readonly changed = new Map<string, NodeChange>();
  private pendingUnlisted = 0;
  private ready = false;
  /**
   * Apex settings (SOA fields, name servers and their glue, TXT) changed since the last publish:
   * the apex answers even before the zone is ready, so its change takes a new serial (RFC 1034 4.3.5).
   */
  private apexChanged = false;
  /** The apex settings of the last publish, as JSON. */
  private publishedApex: string;
  readonly apexKey: string;

  constructor(
    private apex: ApexSettings,
    initialSerial = nextSerial(0),
  ) {
    this.apexKey = nameKey(apex.domain);
    this.publishedApex = apexText(apex);
    this.names = PersistentMap.empty<ZoneNode>();
    this.serial = initialSerial;
    this.current = this.snapshot();
    this.setApex(apex);
    this.publish();
    // The apex as made here is the first serial's content, not a change after it.
    this.pendingUnlisted = 0;
  }

  get snapshotNow(): ZoneSnapshot {
    return this.current;
  }

  private get map(): MapDraft<ZoneNode> {
    if (!this.draft) this.draft = this.names.edit();
    return this.draft;
  }

  /**
   * The node at `key` as the zone stands now, without opening a draft: only a write opens one, so
   * an owner set again as it is (every service on a reload that changes nothing) leaves nothing
   * to publish.
   */
  private nameAt(key: string): ZoneNode | undefined {
    return (this.draft ?? this.names).get(key);
  }

  /** Apex data: SOA (serial set at publish), NS and in-zone glue. */
  setApex(apex: ApexSettings): void {
    if (nameKey(apex.domain) !== this.apexKey) throw new Error(`the apex is ${keyToName(this.apexKey)}; a new domain needs a new zone`);
    // Against the published apex: one reload undone by the next before a publish changes nothing.
    this.apexChanged = apexText(apex) !== this.publishedApex;
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
    for (const t of apex.txt ?? []) {
      const name = canonicalName(t.name);
      // One spec per name: a name server may be named like a TXT name, and one name holds both.
      let spec = specs.find((s) => s.name === name);
      if (!spec) specs.push((spec = { name, rrsets: new Map() }));
      const set = spec.rrsets.get(RRType.TXT) ?? [];
      // A set holds no record twice (RFC 2181 5; missing() counts on it).
      if (!set.some((r) => (r.data as string[])[0] === t.text)) set.push({ name, type: RRType.TXT, ttl: apex.nsTtl, data: [t.text] });
      spec.rrsets.set(RRType.TXT, set);
    }
    this.setOwner('@', specs);
  }

  /** Marks the zone as backed by at least one synced cluster. */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  /**
   * Replaces every name of one owner (a federated service "ns/name") with `specs` (none: removed).
   * `stale` marks answers built from stale cluster data (EDE 3). An owner whose records did not
   * change keeps its nodes, so their encoded answers stay cached.
   */
  setOwner(owner: string, specs: NameSpec[], stale = false): void {
    const prev = this.owned.get(owner);
    const checked = this.checked;
    this.checked = undefined;
    const made = checked?.owner === owner && checked.specs === specs ? checked.keys : specs.map((s) => nameKey(s.name));
    const sameNames = prev !== undefined && prev.length === made.length && prev.every((k, i) => k === made[i]);
    // The same names: the keys held already, for the nodes made now too, so that the ones just
    // made are garbage while young instead of outliving them in every new node.
    const keys = sameNames ? prev : made;
    // The nodes this owner placed at the same names are still the map's (only their owner
    // replaces them): a zone of a million names spends a few cache misses on each lookup.
    const placed = sameNames ? this.placed.get(owner) : undefined;
    const olds = keys.map((k, i) => placed?.[i] ?? this.nameAt(k));
    const disturbed = this.disturbed.delete(owner);
    // Answers chase CNAMEs and SRV targets across the owner's names: if any name changed, all are
    // rebuilt but those held as the same addresses (whose answers take nothing from the others).
    const unchanged =
      prev !== undefined &&
      !disturbed &&
      specs.every((spec, i) => {
        const old = olds[i];
        return (
          old !== undefined && old.owner === owner && old.stale === stale && old.sameAs(spec) && sameLocality(old.locality, spec.locality)
        );
      });
    let nodes = olds;
    let unique = true;
    if (!unchanged) {
      // The nodes made now replace those left waiting for names another owner held.
      if (this.waiting.size && prev) for (const key of prev) this.unwait(key, owner);
      // Two specs of one name (crafted labels can make that): the second replaces the first's node.
      unique = new Set(keys).size === keys.length;
      // Names another owner holds and keeps: this owner's answers take no records from them.
      let lent: Set<string> | undefined;
      specs.forEach((spec, i) => {
        const old = unique ? olds[i] : this.nameAt(keys[i]);
        if (old && old.owner !== owner && old.owner !== '' && !precedes(owner, old.owner)) (lent ??= new Set()).add(spec.name);
      });
      const answers = prepareAnswers(specs, lent);
      nodes = new Array<ZoneNode | undefined>(keys.length);
      specs.forEach((spec, i) => {
        const key = keys[i];
        const old = unique ? olds[i] : this.nameAt(key);
        // A name held as the same addresses keeps its node: its answers take nothing from the
        // owner's other names, and its encoded answers stay cached (an endpoint's change moves
        // the few names that hold it, not the service's every name).
        if (unique && prev !== undefined && old instanceof AddressNode && old.owner === owner && old.stale === stale && heldAsAddresses(spec) && old.sameAs(spec)) {
          nodes[i] = old;
          return;
        }
        let node: ZoneNode;
        if (heldAsAddresses(spec)) node = new AddressNode(key, spec.addresses, owner, stale);
        else {
          const byType = SmallMap.of(answers.get(spec.name) ?? new Map<number, Answer>());
          // The same records (an SRV name whose target's addresses changed): only its answers are new.
          const sameRecords = old instanceof RecordsNode && old.owner === owner && old.stale === stale && sameLocality(old.locality, spec.locality) && old.sameAs(spec);
          node = sameRecords ? old.withAnswers(byType) : new RecordsNode(key, spec.name, sortByType(spec.rrsets), byType, owner, stale, spec.locality);
        }
        if (old && old.owner !== owner && old.owner !== '') {
          // Another owner's name: the one that comes first in owner order holds it, whatever
          // order they came in (replicas and restarts see them in any), the other waits.
          if (!precedes(owner, old.owner)) return this.wait(key, node);
          this.wait(key, old);
          this.disturb(old.owner);
        }
        this.diffRecords(key, old, node);
        this.map.set(node);
        nodes[i] = node;
      });
    }
    if (keys.length && unique) this.placed.set(owner, nodes);
    else this.placed.delete(owner);
    if (sameNames) return;
    if (prev) {
      const keep = new Set(keys);
      for (const key of prev) if (!keep.has(key)) this.removeName(key, owner);
    }
    // Empty non-terminals: every ancestor of an owner's names, counted per owner.
    const before = this.ancestorsOf(prev ?? []);
    const after = this.ancestorsOf(keys);
    for (const a of after) if (!before.has(a)) this.needEnt(a);
    for (const a of before) if (!after.has(a)) this.releaseEnt(a);
    if (keys.length) this.owned.set(owner, keys);
    else this.owned.delete(owner);
  }

  /**
   * The other owners that setOwner(owner, specs) would make gain or lose a name (as
   * disturbedOwners would then list them), told without changing anything: a change that would
   * have a paced service's answers made again can wait for that service's time (federation.ts).
   * The same names as now: none (a name it waits for stays the holder's, one it holds its own).
   */
  wouldDisturb(owner: string, specs: readonly NameSpec[]): string[] {
    const prev = this.owned.get(owner);
    const keys = specs.map((s) => nameKey(s.name));
    this.checked = { owner, specs, keys };
    if (prev !== undefined && prev.length === keys.length && prev.every((k, i) => k === keys[i])) return [];
    const m = this.draft ?? this.names;
    const out = new Set<string>();
    const made = new Set(keys);
    // A name another owner holds, taken from it by an owner before it in owner order.
    for (const key of made) {
      const node = m.get(key);
      if (node && node.owner !== owner && node.owner !== '' && precedes(owner, node.owner)) out.add(node.owner);
    }
    // A name it holds and lets go, given to the first owner waiting for it.
    if (prev && this.waiting.size)
      for (const key of prev) {
        if (made.has(key) || m.get(key)?.owner !== owner) continue;
        const next = this.firstWaiting(key, owner);
        if (next) out.add(next.owner);
      }
    out.delete('@');
    return [...out];
  }

  /**
   * Sets `owner` again from the names it has now, those it holds and those it waits for, as they
   * are: its answers are made again (a name gained or lost: disturbedOwners) and nothing else
   * changes, none of its names or records, and so no other owner's. For an owner whose new data
   * must wait (federation.ts).
   */
  setAgain(owner: string): void {
    const keys = this.owned.get(owner);
    if (!keys) {
      this.disturbed.delete(owner);
      return;
    }
    const m = this.map;
    const specs: NameSpec[] = [];
    let stale = false;
    for (const key of keys) {
      const node = m.get(key);
      const own = node?.owner === owner ? node : this.waiting.get(key)?.get(owner);
      // Every name an owner has is held or waited for; one not found would be let go (a defect).
      if (!own) throw new Error(`${owner} has ${keyToName(key)} and neither holds it nor waits for it`);
      stale ||= own.stale;
      specs.push(specOf(own));
    }
    this.setOwner(owner, specs, stale);
  }

  /**
   * Marks the names `owner` holds as built from stale data (EDE 3): for an owner whose new data
   * could not be made into names, so that what it served before is not served as current.
   */
  markStale(owner: string, maxTtl: number): void {
    const keys = this.owned.get(owner);
    if (!keys) return;
    // Its names as they are, set again as stale, their TTLs at most a stale answer's (as
    // federate() makes stale data): a resolver keeps them no longer than any stale answer.
    const clamp = (rr: RR): RR => (rr.ttl > maxTtl ? { ...rr, ttl: maxTtl } : rr);
    const specs: NameSpec[] = [];
    for (const key of keys) {
      const node = this.map.get(key);
      if (!node || node.owner !== owner) continue;
      const rrsets = new Map([...node.rrsets].map(([type, set]) => [type, set.map(clamp)] as [number, RR[]]));
      if (node instanceof AddressNode) specs.push({ name: node.name, rrsets, addresses: { v4: node.v4, v6: node.v6, ttl: Math.min(node.ttl, maxTtl) } });
      else specs.push({ name: node.name, rrsets, locality: node.locality });
    }
    this.setOwner(owner, specs, true);
  }

  private ancestorsOf(keys: string[]): Set<string> {
    const out = new Set<string>();
    for (const key of keys) {
      let k = key;
      while (k.length > this.apexKey.length) {
        k = parentKey(k);
        if (k === this.apexKey || out.has(k)) break;
        out.add(k);
      }
    }
    return out;
  }

  private needEnt(key: string): void {
    const refs = this.entRefs.holder(key);
    const n = refs.get(key) ?? 0;
    refs.set(key, n + 1);
    if (n === 0 && !this.map.has(key)) this.map.set(RecordsNode.empty(key));
  }

  private releaseEnt(key: string): void {
    const refs = this.entRefs.holder(key);
    const n = (refs.get(key) ?? 1) - 1;
    if (n > 0) {
      refs.set(key, n);
      return;
    }
    refs.delete(key);
    // Only a name no owner placed: an owner's name without records (NODATA) stays while it is there.
    const node = this.map.get(key);
    if (node?.owner === '' && node.isEmptyNonTerminal) this.map.delete(key);
  }

  /** Notes that the node at `key` changed from `old` to `node`, for the record count, IXFR and the serial. */
  private diffRecords(key: string, old: ZoneNode | undefined, node: ZoneNode | undefined): void {
    const removed = old?.recordCount ?? 0;
    const added = node?.recordCount ?? 0;
    this.recordCount += added - removed;
    if (!this.ready && !this.current.ready) {
      // Not ready, now or at the last publish: no transfer serves this serial or the last one.
      this.pendingUnlisted += added + removed;
      return;
    }
    const c = this.changed.get(key);
    if (c) c.after = node;
    else this.changed.set(key, { before: old, after: node });
  }

  /** The change since the last publish, each name from its node then to its node now (listed when read). */
  /** `held`: no new serial comes of this publish, so its unlisted records wait for the next one. */
  private takeChanges(held: boolean): NodeChanges {
    const nodes: (NodeChange | ListedChange)[] = [];
    let size = 0;
    for (const c of this.changed.values()) {
      // The same node, or a node sharing its records with the one before (withAnswers).
      if (c.before === c.after || (c.before instanceof RecordsNode && c.before.rrsets === c.after?.rrsets)) continue;
      const holds = (c.before?.recordCount ?? 0) + (c.after?.recordCount ?? 0);
      // A big name is listed to be counted; kept as listed when that holds far less than its nodes.
      const listed = holds > LAZY_SLACK ? listedNow(c) : undefined;
      const n = listed ? listed.removed.length + listed.added.length : changedRecords(c);
      if (n === 0) continue;
      nodes.push(listed && holds > n + LAZY_SLACK ? listed : c);
      size += n;
    }
    this.changed.clear();
    const change = new NodeChanges(nodes, size, this.pendingUnlisted);
    if (!held) this.pendingUnlisted = 0;
    return change;
  }

  /**
   * Removes one of the owner's names: the owner waiting for it first in owner order takes it,
   * else it stays as an empty non-terminal while names lie below it.
   */
  private removeName(key: string, owner: string): void {
    if (this.waiting.size) this.unwait(key, owner);
    const m = this.map;
    const node = m.get(key);
    if (!node || node.owner !== owner) return;
    const next = this.firstWaiting(key);
    if (next) {
      this.unwait(key, next.owner);
      // Its list of placed nodes does not have this one: looked up again on its next change.
      this.placed.delete(next.owner);
      this.disturb(next.owner);
      this.diffRecords(key, node, next);
      m.set(next);
      return;
    }
    this.diffRecords(key, node, undefined);
    if (this.entRefs.has(key)) m.set(RecordsNode.empty(key));
    else m.delete(key);
  }

  private disturb(owner: string): void {
    // The apex comes first: it never gains or loses a name to a service.
    if (owner !== '@') this.disturbed.add(owner);
  }

  /**
   * Owners that gained or lost a name to another owner since their answers were made: set each
   * again (setOwner) before the next publish, so that no answer carries records another owner's
   * name no longer holds.
   */
  disturbedOwners(): string[] {
    return [...this.disturbed];
  }

  /** Whether `owner` is one of disturbedOwners: it gained or lost a name to another owner since its answers were made. */
  isDisturbed(owner: string): boolean {
    return this.disturbed.has(owner);
  }

  /** Keeps `node` to place once the owner holding its name lets it go. */
  private wait(key: string, node: ZoneNode): void {
    let w = this.waiting.get(key);
    if (!w) this.waiting.set(key, (w = new Map()));
    w.set(node.owner, node);
    // A node taken from its owner is no longer the one it placed.
    if (this.map.get(key) === node) this.placed.delete(node.owner);
  }

  private unwait(key: string, owner: string): void {
    const w = this.waiting.get(key);
    if (w?.delete(owner) && w.size === 0) this.waiting.delete(key);
  }

  /** The node of the first owner in owner order waiting for `key`, `except` one. */
  private firstWaiting(key: string, except?: string): ZoneNode | undefined {
    const w = this.waiting.get(key);
    if (!w) return undefined;
    let first: ZoneNode | undefined;
    for (const node of w.values()) if (node.owner !== except && (!first || precedes(node.owner, first.owner))) first = node;
    return first;
  }

  /** Publishes the changes made since the last publish as a new snapshot; returns its change set. */
  publish(): { snapshot: ZoneSnapshot; change: ZoneChange } | undefined {
    // Not ready before or now: only the apex answers and no transfer is served, so the records of
    // a sync in progress take no serial; the first ready publish takes one, its change counting
    // every record since the last serial as unlisted. An apex change shows at once: a serial.
    const held = !this.ready && !this.current.ready && !this.apexChanged;
    const change = this.takeChanges(held);
    const records = change.size + change.unlisted > 0;
    const touched = this.draft !== undefined;
    if (this.draft) {
      this.names = this.draft.done();
      this.draft = undefined;
    }
    const apex = this.apexChanged;
    if (!records && !touched && !apex && this.ready === this.current.ready) return undefined;
    if (apex) this.publishedApex = apexText(this.apex);
    this.apexChanged = false;
    if ((records && !held) || apex) this.serial = nextSerial(this.serial);
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

/** A node's name and records as a spec that makes the same node again. */
function specOf(node: ZoneNode): NameSpec {
  if (node instanceof AddressNode) return new HeldAddresses(node);
  return { name: node.name, rrsets: new Map(node.rrsets), locality: node.locality };
}

/** The spec of a name held as addresses: its records made only when asked for (an owner's answers made again rarely need them). */
class HeldAddresses implements NameSpec {
  readonly name: string;
  readonly addresses: AddressRecipe;
  private made?: Map<number, RR[]>;

  constructor(node: AddressNode) {
    this.name = node.name;
    this.addresses = { v4: node.v4, v6: node.v6, ttl: node.ttl };
  }

  get rrsets(): Map<number, RR[]> {
    return (this.made ??= addressRRsets(this.name, this.addresses));
  }
}

/** Which of two owners holds a name both give: the apex data, then services in key order. */
function precedes(a: string, b: string): boolean {
  return a === '@' || (b !== '@' && a < b);
}

function sortByType(m: Map<number, RR[]>): SmallMap<number, RR[]> {
  return SmallMap.of(new Map([...m].filter(([, v]) => v.length > 0).sort((a, b) => a[0] - b[0])));
}
