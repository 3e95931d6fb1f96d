// One owner name of the zone, immutable once published, with the answers it gives.
import { RRType } from '../wire/constants.js';
import { sameRecord, type RR } from '../wire/records.js';
import type { ServiceLocality } from './locality.js';
import { SmallMap } from './small-map.js';
import { keyToName } from '../wire/name.js';
import { hashKey } from './name-hash.js';
import { pushAll, sameList } from '../lists.js';

/** What a query for one type at one name answers (positive answers only). */
export interface Answer {
  /** RRsets of the answer section, in order (a CNAME chain first). */
  answer: RR[][];
  /** RRsets of the additional section, added while they fit (RFC 2181 9). */
  additional: RR[][];
  /** The chain ended in NODATA: the SOA goes into the authority section (RFC 2308 2.2). */
  nodataAfterChain?: boolean;
}

/** The additional section of most answers: one shared, read-only empty list. */
const NO_ADDITIONAL: RR[][] = Object.freeze([]) as unknown as RR[][];

/**
 * One name of the zone. Two kinds: a RecordsNode holds its record sets and answers; an
 * AddressNode holds only the addresses its A and AAAA records carry. Each is also its own entry
 * in the zone's persistent map (pmap.ts: key and hash), so a name costs one object, not two.
 */
export abstract class ZoneNode {
  /** hashKey(key): where the zone's map files this name. */
  readonly hash: number;

  constructor(
    /** Lookup key: lowercase wire bytes as latin1. */
    readonly key: string,
    /**
     * Absolute lowercase presentation name; undefined: the key's (keyToName), made when asked.
     * The names held as addresses and the empty non-terminals, nine in ten of a big zone's, keep
     * no string of their own beside the key: 4 MiB of 100,000 services' (benchmarks/scale-memory.ts).
     */
    protected readonly given: string | undefined,
    /** Federated service ("ns/name") that owns this name; "@" for apex data; "" for an empty non-terminal. */
    readonly owner: string,
    /** Built from stale cluster data (adds EDE 3 to answers). */
    readonly stale: boolean,
  ) {
    this.hash = hashKey(key);
  }

  /** Absolute lowercase presentation name. */
  get name(): string {
    return this.given ?? keyToName(this.key);
  }

  /** RRsets by type, in type order. An empty map is an empty non-terminal. */
  abstract get rrsets(): ReadonlyMap<number, RR[]>;

  /** Per-client answers for A, AAAA and SRV (see locality.ts); undefined: everyone gets the records. */
  get locality(): ServiceLocality | undefined {
    return undefined;
  }

  get isEmptyNonTerminal(): boolean {
    return this.rrsets.size === 0;
  }

  /** The answer for a query type; undefined is NODATA. */
  abstract answerFor(qtype: number): Answer | undefined;

  /** Whether `spec` (as a builder produced it) holds exactly this node's records. */
  sameAs(spec: NameSpec): boolean {
    const rrsets = spec.rrsets;
    let types = 0;
    for (const [type, set] of rrsets) {
      if (set.length === 0) continue;
      types++;
      const mine = this.rrsets.get(type);
      if (!mine || mine.length !== set.length) return false;
      for (let i = 0; i < set.length; i++) if (!sameRecord(mine[i], set[i])) return false;
    }
    return types === this.rrsets.size;
  }

  /** How many records this name holds. */
  get recordCount(): number {
    let n = 0;
    for (const set of this.rrsets.values()) n += set.length;
    return n;
  }

  /** Every record at this name, in type order. */
  records(): RR[] {
    const out: RR[] = [];
    for (const set of this.rrsets.values()) pushAll(out, set);
    return out;
  }
}

/** A name with its record sets and the answers made from them (or none: an empty non-terminal). */
export class RecordsNode extends ZoneNode {
  constructor(
    key: string,
    name: string | undefined,
    /** RRsets by type, in type order. An empty map is an empty non-terminal. */
    private readonly sets: ReadonlyMap<number, RR[]>,
    /** Answers by query type, including the CNAME chase (type 0: any other type at a CNAME). */
    private readonly byType: ReadonlyMap<number, Answer>,
    owner: string,
    stale: boolean,
    private readonly local?: ServiceLocality,
  ) {
    super(key, name, owner, stale);
  }

  /** An empty non-terminal: a name with names below it and no records of its own. */
  static empty(key: string): RecordsNode {
    return new RecordsNode(key, undefined, SmallMap.empty(), SmallMap.empty(), '', false);
  }

  override get rrsets(): ReadonlyMap<number, RR[]> {
    return this.sets;
  }

  override get locality(): ServiceLocality | undefined {
    return this.local;
  }

  /**
   * This name with the same records, owner, staleness and locality, answering with `byType`: a
   * name whose records stay while answers it takes from its owner's other names change (an SRV
   * name's additional section, when an endpoint of its target changes) shares what it holds.
   */
  withAnswers(byType: ReadonlyMap<number, Answer>): RecordsNode {
    return new RecordsNode(this.key, this.given, this.sets, byType, this.owner, this.stale, this.local);
  }

  override answerFor(qtype: number): Answer | undefined {
    return this.byType.get(qtype) ?? (this.sets.has(RRType.CNAME) && qtype !== RRType.CNAME ? this.byType.get(0) : undefined);
  }
}

/** Addresses of a name that has no other records (AddressNode): IPv4 and IPv6, in answer order. */
export interface AddressRecipe {
  v4: readonly string[];
  v6: readonly string[];
  ttl: number;
}

const NO_ADDRESSES: readonly string[] = Object.freeze([]);

/** The A (or AAAA) records of a recipe's addresses at `name`; undefined when it has none of that type. */
function addressRecords(name: string, recipe: AddressRecipe, type: number): RR[] | undefined {
  const list = type === RRType.A ? recipe.v4 : type === RRType.AAAA ? recipe.v6 : NO_ADDRESSES;
  if (list.length === 0) return undefined;
  const { ttl } = recipe;
  return list.map((data) => ({ name, type, ttl, data }));
}

/** A recipe's records at `name` by type: A then AAAA, each only when it has addresses. */
export function addressRRsets(name: string, recipe: AddressRecipe): Map<number, RR[]> {
  const m = new Map<number, RR[]>();
  for (const type of [RRType.A, RRType.AAAA]) {
    const set = addressRecords(name, recipe, type);
    if (set) m.set(type, set);
  }
  return m;
}

/**
 * A name whose only records are addresses and whose answers carry nothing else (the regional
 * and zonal names of a service, and its short and global names without a traffic policy: almost
 * every record of a big zone): it holds the address strings,
 * shared with the cluster data, and makes its records and answers when they are asked for. The
 * responder caches the encoded answers of the names queried; transfers and /zone make the
 * records as they go.
 */
export class AddressNode extends ZoneNode {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly ttl: number;

  /** `key` is the name's: its labels are DNS labels in lowercase (the builders check them), so keyToName gives the name back. */
  constructor(key: string, recipe: AddressRecipe, owner: string, stale: boolean) {
    super(key, undefined, owner, stale);
    this.v4 = recipe.v4.length ? recipe.v4 : NO_ADDRESSES;
    this.v6 = recipe.v6.length ? recipe.v6 : NO_ADDRESSES;
    this.ttl = recipe.ttl;
  }

  private set(type: number): RR[] | undefined {
    return addressRecords(this.name, this, type);
  }

  override get rrsets(): ReadonlyMap<number, RR[]> {
    return SmallMap.of(addressRRsets(this.name, this));
  }

  override get recordCount(): number {
    return this.v4.length + this.v6.length;
  }

  override get isEmptyNonTerminal(): boolean {
    return this.v4.length === 0 && this.v6.length === 0;
  }

  override answerFor(qtype: number): Answer | undefined {
    const set = this.set(qtype);
    return set ? { answer: [set], additional: NO_ADDITIONAL } : undefined;
  }

  override sameAs(spec: NameSpec): boolean {
    const r = spec.addresses;
    if (r === undefined) return super.sameAs(spec);
    return r.ttl === this.ttl && sameList(r.v4, this.v4) && sameList(r.v6, this.v6);
  }
}

/** Plain description of a name before it becomes a node. */
export interface NameSpec {
  name: string;
  rrsets: Map<number, RR[]>;
  /** The service's traffic policy and address groups, on the names it applies to. */
  locality?: ServiceLocality;
  /** The name holds only these addresses, and becomes an AddressNode unless it has a locality. */
  addresses?: AddressRecipe;
}

/** Whether a spec's name becomes an AddressNode: addresses only, and no traffic policy (locality answers per client). */
export function heldAsAddresses(spec: NameSpec): spec is NameSpec & { addresses: AddressRecipe } {
  return spec.addresses !== undefined && spec.locality === undefined;
}

/** An additional-section target held as addresses: its records are made when asked for. */
interface AddressTarget {
  name: string;
  recipe: AddressRecipe;
}

/**
 * An answer whose additional section takes address targets' records, made when the answer is
 * encoded. A class, not an object literal with a getter: V8 keeps such a literal's properties in
 * a dictionary of their own, with a closure and its context beside it (about 300 bytes more for
 * each of a service's two SRV names).
 */
class TargetsAnswer implements Answer {
  constructor(
    readonly answer: RR[][],
    private readonly parts: (RR[][] | AddressTarget)[],
  ) {}

  get additional(): RR[][] {
    return this.parts.flatMap((p) => (Array.isArray(p) ? p : [...addressRRsets(p.name, p.recipe).values()]));
  }
}

/** An answer whose additional section holds these RRsets and address targets' records, in order. */
function withAdditional(answer: RR[][], parts: (RR[][] | AddressTarget)[]): Answer {
  if (parts.every((p) => Array.isArray(p))) return { answer, additional: (parts as RR[][][]).flat() };
  return new TargetsAnswer(answer, parts);
}

/**
 * Computes each name's answers from a closed group of names (one federated service, or the apex
 * data): CNAME chains are chased and SRV/NS additional records found inside the group, which is
 * where every target of a fedns name lives. Names of the group that another owner holds (`lent`:
 * crafted labels can make two services give one name) are not the group's records: no chain or
 * additional section takes records from them.
 */
export function prepareAnswers(specs: NameSpec[], lent?: ReadonlySet<string>): Map<string, Map<number, Answer>> {
  const byName = new Map(specs.filter((s) => !lent?.has(s.name)).map((s) => [s.name, s]));
  // A target held as addresses stays a recipe: its records are made when the answer is encoded,
  // not kept beside the node (a service's short and global names hold most of a zone's records).
  const targetAddresses = (target: string): RR[][] | AddressTarget => {
    const t = byName.get(target);
    if (!t) return [];
    if (heldAsAddresses(t)) return { name: t.name, recipe: t.addresses };
    return [t.rrsets.get(RRType.A), t.rrsets.get(RRType.AAAA)].filter((x): x is RR[] => !!x && x.length > 0);
  };
  const out = new Map<string, Map<number, Answer>>();
  for (const spec of specs) {
    if (heldAsAddresses(spec)) continue; // an AddressNode makes its answers when asked
    const answers = new Map<number, Answer>();
    const cname = spec.rrsets.get(RRType.CNAME);
    if (cname) {
      // Chase the chain inside the group, stopping on loops.
      const chain: RR[][] = [cname];
      const seen = new Set([spec.name]);
      let target = byName.get(cname[0].data as string);
      while (target && !seen.has(target.name) && target.rrsets.has(RRType.CNAME)) {
        seen.add(target.name);
        const next = target.rrsets.get(RRType.CNAME)!;
        chain.push(next);
        target = byName.get(next[0].data as string);
      }
      const end = target && !seen.has(target.name) ? target : undefined;
      answers.set(RRType.CNAME, { answer: [cname], additional: [] });
      const others = new Set<number>([0, RRType.A, RRType.AAAA, RRType.SRV]);
      for (const t of end?.rrsets.keys() ?? []) others.add(t);
      for (const qt of others) {
        if (qt === RRType.CNAME) continue;
        const finalSet = qt === 0 ? undefined : end?.rrsets.get(qt);
        answers.set(qt, {
          answer: finalSet ? [...chain, finalSet] : chain,
          additional: [],
          nodataAfterChain: !finalSet && !!end,
        });
      }
    } else {
      for (const [type, set] of spec.rrsets) {
        let targets: string[] = [];
        if (type === RRType.SRV) targets = [...new Set(set.map((r) => (r.data as { target: string }).target))];
        else if (type === RRType.NS) targets = set.map((r) => r.data as string);
        answers.set(type, targets.length ? withAdditional([set], targets.map(targetAddresses)) : { answer: [set], additional: NO_ADDITIONAL });
      }
    }
    out.set(spec.name, answers);
  }
  return out;
}
