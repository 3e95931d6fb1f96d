// The zone in RFC 1035 master-file format: every name, absolute, so another server can load it.
import { RRType } from '../dns/constants.js';
import { rrText, type RR } from '../dns/records.js';
import type { ZoneSnapshot } from './snapshot.js';

/** Every record of the snapshot: SOA first, then names in canonical order (RFC 4034 6.1). */
export function zoneRecords(z: ZoneSnapshot): RR[] {
  const out: RR[] = [z.soa];
  const nodes = [...z.names.values()].filter((n) => !n.isEmptyNonTerminal);
  nodes.sort((a, b) => canonicalCompare(a.name, b.name));
  for (const n of nodes) for (const rr of n.records()) if (rr.type !== RRType.SOA) out.push(rr);
  return out;
}

/** Orders names by their labels compared right to left. */
export function canonicalCompare(a: string, b: string): number {
  const la = a.split('.').reverse();
  const lb = b.split('.').reverse();
  const n = Math.min(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    if (la[i] !== lb[i]) return la[i] < lb[i] ? -1 : 1;
  }
  return la.length - lb.length;
}

export function masterFile(z: ZoneSnapshot): string {
  const lines = [`; zone ${z.domain} serial ${z.serial}, ${z.recordCount} records`, `$ORIGIN ${z.domain}`];
  for (const rr of zoneRecords(z)) lines.push(rrText(rr));
  return lines.join('\n') + '\n';
}
