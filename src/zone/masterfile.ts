// The zone in RFC 1035 master-file format: every name, absolute, so another server can load it.
// Zone transfers send the same records in the same order.
import { RRType } from '../wire/constants.js';
import { nextSlice, sliced, sliceSpent, unsliced } from '../slices.js';
import { rrText, type RR } from '../wire/records.js';
import { parentKey } from '../wire/name.js';
import { AddressNode, type ZoneNode } from './node.js';
import type { ZoneSnapshot } from './snapshot.js';
import { ShardedMap } from '../sharded-map.js';

/**
 * Orders two sibling names by their first labels as RFC 4034 6.1 orders labels: octet by octet
 * (keys are lowercase wire bytes, a length octet before each label), a label that is a prefix of
 * the other first.
 */
function byFirstLabel(a: string, b: string): number {
  const la = a.charCodeAt(0);
  const lb = b.charCodeAt(0);
  const n = Math.min(la, lb);
  for (let i = 1; i <= n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return la - lb;
}

/** A name below another in the walk: its node, or the key of a name the zone does not hold. */
type Child = ZoneNode | string;
const keyOf = (c: Child): string => (typeof c === 'string' ? c : c.key);
const bySiblingLabel = (a: Child, b: Child): number => byFirstLabel(keyOf(a), keyOf(b));

/** Items sorted at once; more are sorted in runs of this many, then merged, a step at a time. */
const RUN = 4096;

/** Sorts `items` (in place when they are few), yielding between steps of a big sort (sliced()). */
function* sortInSteps<T>(items: T[], cmp: (a: T, b: T) => number): Generator<boolean | void, T[]> {
  if (items.length <= RUN) {
    items.sort(cmp);
    // A few dozen items take microseconds: an ordinary step.
    if (items.length > 64) yield true;
    return items;
  }
  let runs: T[][] = [];
  for (let i = 0; i < items.length; i += RUN) {
    runs.push(items.slice(i, i + RUN).sort(cmp));
    yield true;
  }
  while (runs.length > 1) {
    const next: T[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i];
      const b = runs[i + 1];
      if (!b) {
        next.push(a);
        break;
      }
      const out: T[] = [];
      let x = 0;
      let y = 0;
      while (x < a.length && y < b.length) {
        out.push(cmp(a[x], b[y]) <= 0 ? a[x++] : b[y++]);
        if ((out.length & 15) === 0) yield;
      }
      while (x < a.length) out.push(a[x++]);
      while (y < b.length) out.push(b[y++]);
      next.push(out);
      yield;
    }
    runs = next;
  }
  return runs[0];
}

/**
 * The snapshot's names that have records, in canonical order (RFC 4034 6.1), a step at a time.
 * The names form a tree (each is filed under its parent; a parent the zone does not hold, which
 * the builder's empty non-terminals should rule out, is filed in its place), walked depth first
 * with each name's children in label order: a name comes before the names below it, and
 * siblings' subtrees follow one another. No key is built or kept per name: a transfer's
 * ordering work is gone with it, and comparing two siblings reads their first labels only.
 */
function* orderSteps(z: ZoneSnapshot): Generator<boolean | void, ZoneNode[]> {
  // Sharded: a zone of 900,000 names has half a million parents, and a Map that size grows in one go of 80 ms.
  const children = new ShardedMap<Child[]>();
  for (const node of z.names.values()) {
    yield;
    let child: Child = node;
    for (;;) {
      const key = keyOf(child);
      const parent = parentKey(key);
      const holder = children.holder(parent);
      const siblings = holder.get(parent);
      if (siblings) {
        siblings.push(child);
        break;
      }
      holder.set(parent, [child]);
      // A parent seen for the first time is filed in turn, unless the walk reaches it as a name.
      if (parent === '' || z.names.has(parent)) break;
      child = parent;
    }
  }
  const out: ZoneNode[] = [];
  const stack: Child[] = [''];
  while (stack.length) {
    yield;
    const c = stack.pop()!;
    if (typeof c !== 'string' && !c.isEmptyNonTerminal) out.push(c);
    const kids = children.get(keyOf(c));
    if (kids === undefined) continue;
    const sorted = yield* sortInSteps(kids, bySiblingLabel);
    for (let i = sorted.length - 1; i >= 0; i--) stack.push(sorted[i]);
  }
  return out;
}

/**
 * The snapshot's names that have records, in canonical order, as zoneRecords() orders them, but
 * worked out a slice at a time (src/slices.ts) so that a big zone never holds up queries for
 * long. The snapshot is persistent: walking it across turns is safe. Worked out once per
 * snapshot, shared by every AXFR and `/zone` reader of it.
 */
export function canonicalOrder(z: ZoneSnapshot): Promise<ZoneNode[]> {
  let order = orders.get(z);
  if (!order) orders.set(z, (order = sliced(orderSteps(z))));
  return order;
}

/**
 * Each snapshot's order, worked out once however many ask for it at once (every /zone reader and
 * AXFR of one version): the snapshot does not change, and an ordering per reader would cost each
 * of them the whole zone's names in memory and the sorting of them.
 */
const orders = new WeakMap<ZoneSnapshot, Promise<ZoneNode[]>>();

/** The records of `nodes` after the SOA, in order (the SOA lives in the snapshot, not a node). */
export function* recordsOf(nodes: Iterable<ZoneNode>): Generator<RR> {
  for (const node of nodes) for (const rr of node.records()) if (rr.type !== RRType.SOA) yield rr;
}

/** Every record of the snapshot: SOA first, then names in canonical order. */
export function zoneRecords(z: ZoneSnapshot): RR[] {
  return [z.soa, ...recordsOf(unsliced(orderSteps(z)))];
}

function header(z: ZoneSnapshot): string {
  return `; zone ${z.domain} serial ${z.serial}, ${z.recordCount} records\n$ORIGIN ${z.domain}\n`;
}

/**
 * Adds the master-file lines of a node's records (the SOA left out: it lives in the snapshot) to
 * `out`, as rrText() writes them. A name held as addresses, almost every record of a big zone,
 * is written from its address strings, with no record object per line.
 */
function nodeLines(node: ZoneNode, out: string[]): void {
  if (node instanceof AddressNode) {
    const head = `${node.name}\t${node.ttl}\tIN\t`;
    for (const a of node.v4) out.push(`${head}A\t${a}\n`);
    for (const a of node.v6) out.push(`${head}AAAA\t${a}\n`);
    return;
  }
  for (const rr of node.records()) if (rr.type !== RRType.SOA) out.push(`${rrText(rr)}\n`);
}

export function masterFile(z: ZoneSnapshot): string {
  const lines = [header(z), `${rrText(z.soa)}\n`];
  for (const node of unsliced(orderSteps(z))) nodeLines(node, lines);
  return lines.join('');
}

/** masterFile() text in pieces, worked out a slice at a time (see canonicalOrder). */
export async function* masterFileChunks(z: ZoneSnapshot): AsyncGenerator<string> {
  const nodes = await canonicalOrder(z);
  let lines: string[] = [header(z), `${rrText(z.soa)}\n`];
  for (const node of nodes) {
    nodeLines(node, lines);
    if (lines.length >= 2048) {
      yield lines.join('');
      lines = [];
      if (sliceSpent()) await nextSlice();
    }
  }
  yield lines.join('');
}
