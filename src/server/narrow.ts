// An answer narrowed to one window of a traffic policy's addresses (fedns.io/max-addresses).
//
// A service of 40,000 endpoints capped at one address has 40,000 windows, taken in turn, so
// nearly every query narrows the answer anew. Filtering the whole answer each time made an A
// query cost 2 ms and an SRV query 7 ms (its additional section made again for each): a few
// hundred queries a second filled a core. Each answer is indexed once, by address and by SRV
// target, and a window is narrowed in what it holds.
import { RRType } from '../wire/constants.js';
import type { RR } from '../wire/records.js';
import type { Answer } from '../zone/node.js';

/** A record of an answer's set `set`, at position `at` in it. */
interface Placed {
  set: number;
  at: number;
  rr: RR;
}

interface AnswerIndex {
  answer: RR[][];
  additional: RR[][];
  /** Address records of the answer section, by address. */
  answerAddresses: Map<string, Placed[]>;
  /** SRV records of the answer section, by target. */
  srvTargets: Map<string, Placed[]>;
  /** Address records of the additional section, by address. */
  additionalAddresses: Map<string, Placed[]>;
  /** Additional sets kept whole (not addresses), by position. */
  fixedAdditional: number[];
}

/** Answers are the zone's, immutable while their node lives: each is indexed once. */
const indexes = new WeakMap<Answer, AnswerIndex>();

const isAddress = (set: RR[]) => set.length > 0 && (set[0].type === RRType.A || set[0].type === RRType.AAAA);

function add(m: Map<string, Placed[]>, key: string, p: Placed): void {
  const list = m.get(key);
  if (list) list.push(p);
  else m.set(key, [p]);
}

function indexOf(ans: Answer): AnswerIndex {
  let ix = indexes.get(ans);
  if (ix) return ix;
  // Read once: an additional section of address targets is made when asked for (node.ts).
  const additional = ans.additional;
  ix = { answer: ans.answer, additional, answerAddresses: new Map(), srvTargets: new Map(), additionalAddresses: new Map(), fixedAdditional: [] };
  ans.answer.forEach((set, s) => {
    if (isAddress(set)) set.forEach((rr, at) => add(ix!.answerAddresses, rr.data as string, { set: s, at, rr }));
    else if (set.length && set[0].type === RRType.SRV) set.forEach((rr, at) => add(ix!.srvTargets, (rr.data as { target: string }).target, { set: s, at, rr }));
  });
  additional.forEach((set, s) => {
    if (isAddress(set)) set.forEach((rr, at) => add(ix!.additionalAddresses, rr.data as string, { set: s, at, rr }));
    else if (set.length) ix!.fixedAdditional.push(s);
  });
  indexes.set(ans, ix);
  return ix;
}

/** The records found, grouped by set in set order, each set in its own order. */
function grouped(found: Placed[]): Map<number, RR[]> {
  found.sort((a, b) => a.set - b.set || a.at - b.at);
  const out = new Map<number, RR[]>();
  for (const p of found) {
    const list = out.get(p.set);
    if (list) list.push(p.rr);
    else out.set(p.set, [p.rr]);
  }
  return out;
}

/**
 * The answer narrowed to the addresses of `windows`: address records outside them go, and so do
 * SRV records whose targets keep none (headless services: per-endpoint targets). Sets and records
 * keep their order; sets left empty go.
 */
export function narrowed(ans: Answer, windows: readonly ReadonlySet<string>[]): Answer {
  const ix = indexOf(ans);
  const inAdditional: Placed[] = [];
  const inAnswer: Placed[] = [];
  // One window per family: an address in two would be found twice.
  const addresses = windows.length === 1 ? windows[0] : new Set(windows.flatMap((w) => [...w]));
  for (const addr of addresses) {
    for (const p of ix.additionalAddresses.get(addr) ?? []) inAdditional.push(p);
    for (const p of ix.answerAddresses.get(addr) ?? []) inAnswer.push(p);
  }
  const keptAdditional = grouped(inAdditional);
  for (const s of ix.fixedAdditional) keptAdditional.set(s, ix.additional[s]);
  const order = [...keptAdditional.keys()].sort((a, b) => a - b);
  const additional = order.map((s) => keptAdditional.get(s)!);
  // SRV records stay whose target has a record left in the additional section.
  const targets = new Set<string>();
  for (const set of additional) for (const rr of set) targets.add(rr.name);
  for (const t of targets) for (const p of ix.srvTargets.get(t) ?? []) inAnswer.push(p);
  const keptAnswer = grouped(inAnswer);
  const answer: RR[][] = [];
  ix.answer.forEach((set, s) => {
    if (isAddress(set) || (set.length && set[0].type === RRType.SRV)) {
      const kept = keptAnswer.get(s);
      if (kept) answer.push(kept);
    } else if (set.length) answer.push(set);
  });
  return { ...ans, answer, additional };
}
