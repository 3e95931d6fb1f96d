// The zone in RFC 1035 master-file format: every name, absolute, so another server can load it.
// Zone transfers send the same records in the same order.
import { RRType } from '../wire/constants.js';
import { nextSlice, sliceSpent } from '../slices.js';
import { rrText, type RR } from '../wire/records.js';
import { keyLabels } from '../wire/name.js';
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
  if (key === undefined) sortKeys.set(node, (key = reversedLabels(node.key)));
  return key;
}

/**
 * The name of a lookup key as `name.split('.').reverse().join('\0')` gives it, made from the key
 * itself: most names do not keep their presentation text (ZoneNode.name makes it when asked).
 * An escaped "." inside a label splits it there too, as splitting the text would.
 */
export function reversedLabels(key: string): string {
  const labels = keyLabels(key);
  if (labels.length === 0) return '\0';
  let out = '';
  for (let i = labels.length - 1; i >= 0; i--) {
    const text = labels[i];
    out += '\0' + (text.includes('.') ? text.split('.').reverse().join('\0') : text);
  }
  return out;
}

interface Keyed {
  key: string;
  node: ZoneNode;
}

const byKey = (a: Keyed, b: Keyed): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** Sorts nodes (those with records) into canonical order. */
export function sortCanonically(nodes: ZoneNode[]): ZoneNode[] {
  const keyed = nodes.map((node) => ({ key: canonicalKey(node), node }));
  keyed.sort(byKey);
  return keyed.map((k) => k.node);
}

/** Names sorted at once before the sorted runs are merged. */
const RUN = 4096;

/**
 * The snapshot's names that have records, in canonical order, as zoneRecords() orders them, but
 * worked out a slice at a time (src/slices.ts: sorted runs, then merged) so that a big zone never
 * holds up queries for long. The snapshot is persistent: walking it across turns is safe.
 */
export async function canonicalOrder(z: ZoneSnapshot): Promise<ZoneNode[]> {
  const pause = async (): Promise<void> => {
    if (sliceSpent()) await nextSlice();
  };
  let runs: Keyed[][] = [];
  let run: Keyed[] = [];
  let n = 0;
  for (const node of z.names.values()) {
    if ((++n & 1023) === 0) await pause();
    if (node.isEmptyNonTerminal) continue;
    run.push({ key: canonicalKey(node), node });
    if (run.length === RUN) {
      runs.push(run.sort(byKey));
      run = [];
    }
  }
  if (run.length) runs.push(run.sort(byKey));
  while (runs.length > 1) {
    const next: Keyed[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const a = runs[i];
      const b = runs[i + 1];
      if (!b) {
        next.push(a);
        break;
      }
      const out: Keyed[] = new Array(a.length + b.length);
      let x = 0;
      let y = 0;
      let o = 0;
      while (x < a.length && y < b.length) {
        out[o++] = byKey(a[x], b[y]) <= 0 ? a[x++] : b[y++];
        if ((o & 4095) === 0) await pause();
      }
      while (x < a.length) out[o++] = a[x++];
      while (y < b.length) out[o++] = b[y++];
      next.push(out);
      await pause();
    }
    runs = next;
  }
  return (runs[0] ?? []).map((k) => k.node);
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

function header(z: ZoneSnapshot): string {
  return `; zone ${z.domain} serial ${z.serial}, ${z.recordCount} records\n$ORIGIN ${z.domain}\n`;
}

export function masterFile(z: ZoneSnapshot): string {
  const lines = [header(z)];
  for (const rr of zoneRecords(z)) lines.push(rrText(rr), '\n');
  return lines.join('');
}

/** masterFile() text in pieces, worked out a slice at a time (see canonicalOrder). */
export async function* masterFileChunks(z: ZoneSnapshot): AsyncGenerator<string> {
  const nodes = await canonicalOrder(z);
  let lines: string[] = [header(z), rrText(z.soa), '\n'];
  for (const rr of recordsOf(nodes)) {
    lines.push(rrText(rr), '\n');
    if (lines.length >= 4096) {
      yield lines.join('');
      lines = [];
      if (sliceSpent()) await nextSlice();
    }
  }
  yield lines.join('');
}
