// The order of names in `fedns zone` and AXFR: RFC 4034 6.1 canonical order, worked out from the
// zone's name tree. Checked against a plain comparator over the names' wire labels.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { nameKey, nameToWire } from '../../src/wire/name.js';
import type { RR } from '../../src/wire/records.js';
import { canonicalOrder, masterFile, masterFileChunks, zoneRecords } from '../../src/zone/masterfile.js';
import { Federation } from '../../src/federation/federation.js';
import { rrText } from '../../src/wire/records.js';
import { RecordsNode, type NameSpec, type ZoneNode } from '../../src/zone/node.js';
import { PersistentMap } from '../../src/zone/pmap.js';
import { SmallMap } from '../../src/zone/small-map.js';
import { ZoneBuilder, type ZoneSnapshot } from '../../src/zone/snapshot.js';
import { prng } from '../support/corpus.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';

/** A name's labels, right to left, as octets lowercased (RFC 4034 6.2). */
function reversedWireLabels(name: string): Buffer[] {
  const wire = nameToWire(name);
  const labels: Buffer[] = [];
  for (let i = 0; wire[i] !== 0; i += wire[i] + 1) {
    labels.push(Buffer.from(wire.subarray(i + 1, i + 1 + wire[i]).map((b) => (b >= 0x41 && b <= 0x5a ? b + 32 : b))));
  }
  return labels.reverse();
}

/** RFC 4034 6.1, written out: labels from the right, each compared as octets, a missing label first. */
function rfcCompare(a: string, b: string): number {
  const x = reversedWireLabels(a);
  const y = reversedWireLabels(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(x[i], y[i]);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

const txt = (name: string): NameSpec => ({ name, rrsets: new Map([[RRType.TXT, [{ name, type: RRType.TXT, ttl: 30, data: ['x'] } as RR]]]) });

/** The owner names of the records, each once, in the order they come. */
function ownersInOrder(records: RR[]): string[] {
  const out: string[] = [];
  for (const r of records) if (out.at(-1) !== r.name) out.push(r.name);
  return out;
}

function zoneOf(names: string[]): ZoneSnapshot {
  const b = new ZoneBuilder(testFederationSettings().apex);
  b.setOwner('ns/x', names.map(txt));
  return b.publish()!.snapshot;
}

// Labels that are prefixes of one another, that differ only past a hyphen or a digit, and that
// hold octets which need escapes in presentation form (0, 255, "." and "\" inside a label).
const LABELS = ['a', 'ab', 'a-b', 'a0', 'b', 'z', '_tcp', '_http', 'x\\.y', 'x', 'x\\\\y', '\\000', '\\000a', '\\255', 'a\\032b', '0', '9', '-'];

describe('canonical order of the names of a zone', () => {
  it('is RFC 4034 6.1 order over octets, for names at several depths, below names and below empty non-terminals', async () => {
    const rand = prng(7);
    const names = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const depth = 1 + Math.floor(rand() * 4);
      const labels = Array.from({ length: depth }, () => LABELS[Math.floor(rand() * LABELS.length)]);
      names.add(`${labels.join('.')}.example.com.`);
    }
    const z = zoneOf([...names]);
    const records = zoneRecords(z);
    expect(records[0].type).toBe(RRType.SOA);
    const owners = ownersInOrder(records.slice(1));
    const expected = [...owners].sort(rfcCompare);
    expect(owners).toEqual(expected);
    // Every name with records comes once (the apex holds the NS records and the name server's address).
    for (const n of names) expect(owners).toContain(n);
    expect((await canonicalOrder(z)).map((n) => n.name)).toEqual(owners);
  });

  it('orders a big group of siblings (sorted in runs, then merged) as a small one', async () => {
    const rand = prng(11);
    const names = new Set<string>();
    while (names.size < 10_000) names.add(`s${Math.floor(rand() * 1e9).toString(36)}.ns.fed.example.com.`);
    const z = zoneOf([...names]);
    const order = (await canonicalOrder(z)).map((n) => n.name);
    expect(order.length).toBe(names.size + 2); // and the apex and its name server, ns1
    expect(order).toEqual([...order].sort(rfcCompare));
    expect(ownersInOrder(zoneRecords(z).slice(1))).toEqual(order);
  });

  it('still orders names whose parents the zone does not hold', async () => {
    // A map without empty non-terminals (the builder always adds them): parents are filed in their place.
    const names = ['b.a.example.com.', 'c.example.com.', 'x.y.z.example.com.', 'a.b.a.example.com.', 'example.com.', 'a.example.com.', 'x.example.com.'];
    const draft = PersistentMap.empty<ZoneNode>().edit();
    for (const n of names) {
      const key = nameKey(n);
      const set: RR[] = [{ name: n, type: RRType.TXT, ttl: 30, data: ['x'] }];
      draft.set(new RecordsNode(key, n, SmallMap.of(new Map([[RRType.TXT, set]])), SmallMap.empty(), 'ns/x', false));
    }
    const order = (await canonicalOrder({ names: draft.done() } as ZoneSnapshot)).map((n) => n.name);
    expect(order).toEqual([...names].sort(rfcCompare));
  });
});

describe('the master file', () => {
  it('writes names held as addresses as their records would be written, in pieces or whole', async () => {
    const fed = new Federation(testFederationSettings());
    for (const [name, region] of [['one', 'r1'], ['two', 'r2']]) {
      // Zone z9 has no endpoint: its names are CNAMEs to the region's.
      const c = fed.addCluster({ name, region, zones: ['z1', 'z9'], addressMode: 'endpoints', gracePeriod: 300 });
      seed(c, [
        svc('a', []),
        slice('a', [{ addr: `10.0.${name.length}.1`, zone: 'z1' }]),
        slice('a', [{ addr: '2001:db8::1', zone: 'z2' }], 'a-v6'),
        svc('h', [], { headless: true }),
        slice('h', [{ addr: '10.9.9.9', hostname: 'web-0' }]),
      ]);
    }
    const z = fed.rebuild();
    const text = masterFile(z);
    let pieces = '';
    for await (const p of masterFileChunks(z)) pieces += p;
    expect(pieces).toBe(text);
    const lines = text.split('\n').filter((l) => l && !l.startsWith(';') && !l.startsWith('$'));
    expect(lines).toEqual(zoneRecords(z).map(rrText));
    // Both kinds of names are in it: those held as addresses (A and AAAA) and those with other records.
    expect(lines.some((l) => l.includes('\tAAAA\t2001:db8::1'))).toBe(true);
    expect(lines.some((l) => l.includes('\tSRV\t'))).toBe(true);
    expect(lines.some((l) => l.includes('\tCNAME\t'))).toBe(true);
  });
});
