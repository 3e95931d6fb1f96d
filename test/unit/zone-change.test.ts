// A published change lists its records when first read, from the nodes it replaced: read late,
// after later changes to the same names, it still lists what it changed then.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { rrText } from '../../src/wire/records.js';
import type { NameSpec } from '../../src/zone/node.js';
import { ZoneBuilder, type ZoneChange } from '../../src/zone/snapshot.js';
import { testFederationSettings } from '../support/federation.js';

const NAME = 's.ns.fed.example.com.';
/** A name held as addresses (an AddressNode). */
const addresses = (v4: string[], ttl = 30): NameSpec => ({
  name: NAME,
  rrsets: new Map([[RRType.A, v4.map((data) => ({ name: NAME, type: RRType.A, ttl, data }))]]),
  addresses: { v4, v6: [], ttl },
});

function readyBuilder(): ZoneBuilder {
  const b = new ZoneBuilder(testFederationSettings().apex);
  b.setReady(true);
  b.publish();
  return b;
}

function publish(b: ZoneBuilder, specs: NameSpec[], stale = false): { serial: number; change: ZoneChange } {
  b.setOwner('ns/s', specs, stale);
  const r = b.publish()!;
  return { serial: r.snapshot.serial, change: r.change };
}

const texts = (rrs: { name: string; type: number; ttl: number; data: unknown }[]) => rrs.map((r) => rrText(r as never)).sort();

describe('a published change', () => {
  it('lists the records it changed when read after later changes to the same name', () => {
    const b = readyBuilder();
    const first = publish(b, [addresses(['10.0.0.1', '10.0.0.2'])]);
    const second = publish(b, [addresses(['10.0.0.1', '10.0.0.3'])]);
    const third = publish(b, [addresses(['10.0.0.1', '10.0.0.3'], 60)]);
    publish(b, []);
    expect(texts(second.change.removed)).toEqual([`${NAME}\t30\tIN\tA\t10.0.0.2`]);
    expect(texts(second.change.added)).toEqual([`${NAME}\t30\tIN\tA\t10.0.0.3`]);
    expect(second.change.size).toBe(2);
    // A new TTL changes every record: both lists hold them all.
    expect(texts(third.change.removed)).toEqual([`${NAME}\t30\tIN\tA\t10.0.0.1`, `${NAME}\t30\tIN\tA\t10.0.0.3`]);
    expect(texts(third.change.added)).toEqual([`${NAME}\t60\tIN\tA\t10.0.0.1`, `${NAME}\t60\tIN\tA\t10.0.0.3`]);
    expect(texts(first.change.added)).toEqual([`${NAME}\t30\tIN\tA\t10.0.0.1`, `${NAME}\t30\tIN\tA\t10.0.0.2`]);
    expect(first.change.removed).toEqual([]);
  });

  it('is no new serial when only what no record shows changed (staleness, the order of addresses)', () => {
    const b = readyBuilder();
    const base = publish(b, [addresses(['10.0.0.1', '10.0.0.2'])]);
    const stale = publish(b, [addresses(['10.0.0.1', '10.0.0.2'])], true);
    expect(stale.serial).toBe(base.serial);
    expect(stale.change.size).toBe(0);
    const reordered = publish(b, [addresses(['10.0.0.2', '10.0.0.1'])], true);
    expect(reordered.serial).toBe(base.serial);
    expect(reordered.change.removed.length + reordered.change.added.length).toBe(0);
    const changed = publish(b, [addresses(['10.0.0.2', '10.0.0.9'])], true);
    expect(changed.serial).not.toBe(base.serial);
    expect(changed.change.size).toBe(2);
  });

  it('counts exactly the records a name held as addresses lost and gained, among many', () => {
    const b = readyBuilder();
    const many = Array.from({ length: 30 }, (_, i) => `10.0.1.${i + 1}`);
    publish(b, [addresses(many)]);
    const one = publish(b, [addresses([...many.slice(0, 29), '10.0.2.1'])]);
    expect(one.change.size).toBe(2);
    expect(texts(one.change.removed)).toEqual([`${NAME}\t30\tIN\tA\t10.0.1.30`]);
    expect(texts(one.change.added)).toEqual([`${NAME}\t30\tIN\tA\t10.0.2.1`]);
  });

  it('lists names with other records (SRV, CNAME) and a name that stops being held as addresses', () => {
    const b = readyBuilder();
    const srvName = `_http._tcp.${NAME}`;
    const srv = (port: number): NameSpec => ({ name: srvName, rrsets: new Map([[RRType.SRV, [{ name: srvName, type: RRType.SRV, ttl: 30, data: { priority: 0, weight: 100, port, target: NAME } }]]]) });
    const cnameName = `x.${NAME}`;
    const cname = (target: string): NameSpec => ({ name: cnameName, rrsets: new Map([[RRType.CNAME, [{ name: cnameName, type: RRType.CNAME, ttl: 30, data: target }]]]) });
    const base = publish(b, [addresses(['10.0.0.1']), srv(80), cname(NAME)]);
    const moved = publish(b, [addresses(['10.0.0.1']), srv(81), cname(`y.${NAME}`)]);
    expect(moved.serial).not.toBe(base.serial);
    expect(moved.change.size).toBe(4);
    expect(texts(moved.change.added)).toEqual([`${cnameName}\t30\tIN\tCNAME\ty.${NAME}`, `${srvName}\t30\tIN\tSRV\t0 100 81 ${NAME}`].sort());
    // A traffic policy makes the name a plain records node with the same records: no record changed.
    const locality = { policy: 'nearest', order: [], weights: new Map(), maxAddresses: undefined, groups: [] } as unknown as NameSpec['locality'];
    const withPolicy = publish(b, [{ ...addresses(['10.0.0.1']), locality }, srv(81), cname(`y.${NAME}`)]);
    expect(withPolicy.serial).toBe(moved.serial);
    expect(withPolicy.change.size).toBe(0);
    // A new TTL on a name with no address lists nothing either.
    const empty = publish(b, [addresses([], 30), srv(81), cname(`y.${NAME}`)]);
    const emptyTtl = publish(b, [addresses([], 60), srv(81), cname(`y.${NAME}`)]);
    expect(emptyTtl.serial).toBe(empty.serial);
    expect(emptyTtl.change.size).toBe(0);
  });
});
