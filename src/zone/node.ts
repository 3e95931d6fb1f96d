// One owner name of the zone, immutable once published, with the answers it gives.
import { RRType } from '../wire/constants.js';
import { sameRecord, type RR } from '../wire/records.js';
import type { ServiceLocality } from './locality.js';

/** What a query for one type at one name answers (positive answers only). */
export interface Answer {
  /** RRsets of the answer section, in order (a CNAME chain first). */
  answer: RR[][];
  /** RRsets of the additional section, added while they fit (RFC 2181 9). */
  additional: RR[][];
  /** The chain ended in NODATA: the SOA goes into the authority section (RFC 2308 2.2). */
  nodataAfterChain?: boolean;
}

export class ZoneNode {
  constructor(
    /** Lookup key: lowercase wire bytes as latin1. */
    readonly key: string,
    /** Absolute lowercase presentation name. */
    readonly name: string,
    /** RRsets by type, in type order. An empty map is an empty non-terminal. */
    readonly rrsets: ReadonlyMap<number, RR[]>,
    /** Answers by query type, including the CNAME chase (type 0: any other type at a CNAME). */
    readonly answers: ReadonlyMap<number, Answer>,
    /** Federated service ("ns/name") that owns this name; "@" for apex data; "" for an empty non-terminal. */
    readonly owner: string,
    /** Built from stale cluster data (adds EDE 3 to answers). */
    readonly stale: boolean,
    /** Per-client answers for A, AAAA and SRV (see locality.ts); absent: everyone gets the records. */
    readonly locality?: ServiceLocality,
  ) {}

  get isEmptyNonTerminal(): boolean {
    return this.rrsets.size === 0;
  }

  /** The answer for a query type; undefined is NODATA. */
  answerFor(qtype: number): Answer | undefined {
    return this.answers.get(qtype) ?? (this.rrsets.has(RRType.CNAME) && qtype !== RRType.CNAME ? this.answers.get(0) : undefined);
  }

  /** Whether `rrsets` (as a builder produced them) hold exactly this node's records. */
  sameRecords(rrsets: ReadonlyMap<number, RR[]>): boolean {
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

  /** Every record at this name, in type order. */
  records(): RR[] {
    const out: RR[] = [];
    for (const set of this.rrsets.values()) out.push(...set);
    return out;
  }
}

/** The additional section of most answers: one shared, read-only empty list. */
const NO_ADDITIONAL: RR[][] = Object.freeze([]) as unknown as RR[][];

/** Plain description of a name before it becomes a node. */
export interface NameSpec {
  name: string;
  rrsets: Map<number, RR[]>;
  /** The service's traffic policy and address groups, on the names it applies to. */
  locality?: ServiceLocality;
}

/**
 * Computes each name's answers from a closed group of names (one federated service, or the apex
 * data): CNAME chains are chased and SRV/NS additional records found inside the group, which is
 * where every target of a fedns name lives.
 */
export function prepareAnswers(specs: NameSpec[]): Map<string, Map<number, Answer>> {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const addressSets = (target: string): RR[][] => {
    const t = byName.get(target);
    if (!t) return [];
    return [t.rrsets.get(RRType.A), t.rrsets.get(RRType.AAAA)].filter((x): x is RR[] => !!x && x.length > 0);
  };
  const out = new Map<string, Map<number, Answer>>();
  for (const spec of specs) {
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
        let additional = NO_ADDITIONAL;
        if (type === RRType.SRV) {
          const targets = [...new Set(set.map((r) => (r.data as { target: string }).target))];
          additional = targets.flatMap(addressSets);
        } else if (type === RRType.NS) {
          additional = set.flatMap((r) => addressSets(r.data as string));
        }
        answers.set(type, { answer: [set], additional });
      }
    }
    out.set(spec.name, answers);
  }
  return out;
}
