// The zone in RFC 1035 master-file format: every name, absolute, so another server can load it.
// Zone transfers send the same records in the same order.
import { RRType } from '../wire/constants.js';
import { rrText, type RR } from '../wire/records.js';
import type { ZoneNode } from './node.js';
import type { ZoneSnapshot } from './snapshot.js';

/** Canonical sort key of a node's name; nodes are shared between snapshots, so is the key. */
const sortKeys = new WeakMap<ZoneNode, string>();

/**
 * Labels right to left, joined by NUL (which sorts below any label byte): comparing these keys
 * orders names canonically (RFC 4034 6.1). Computed once per node.
 */
export function canonicalKey(node: ZoneNode): string {
  let key = sortKeys.get(node);
  if (key === undefined) sortKeys.set(node, (key = node.name.split('.').reverse().join('\0')));
  return key;
}

/** Sorts nodes (those with records) into canonical order. */
export function sortCanonically(nodes: ZoneNode[]): ZoneNode[] {
  const keyed = nodes.map((node) => ({ key: canonicalKey(node), node }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.node);
}

/** The records of `nodes` after the SOA, in order (the SOA lives in the snapshot, not a node). */
export function* recordsOf(nodes: Iterable<ZoneNode>): Generator<RR> {
  for (const node of nodes) for (const rr of node.records()) if (rr.type !== RRType.SOA) yield rr;
}

/** Every record of the snapshot: SOA first, then names in canonical order. */
export function zoneRecords(z: ZoneSnapshot): RR[] {
  const nodes = sortCanonically([...z.names.values()].filter((n) => !n.isEmptyNonTerminal));
  return [z.soa, ...recordsOf(nodes)];
}

export function masterFile(z: ZoneSnapshot): string {
  const lines = [`; zone ${z.domain} serial ${z.serial}, ${z.recordCount} records`, `$ORIGIN ${z.domain}`];
  for (const rr of zoneRecords(z)) lines.push(rrText(rr));
  return lines.join('\n') + '\n';
}
