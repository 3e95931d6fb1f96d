// A published change lists its records when first read, from the nodes it replaced: read late,
// after later changes to the same names, it still lists what it changed then.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { rrText } from '../../src/wire/records.js';
import { nameKey } from '../../src/wire/name.js';
import type { NameSpec } from '../../src/zone/node.js';
import { ZoneBuilder, type ZoneChange, type ZoneSnapshot } from '../../src/zone/snapshot.js';
import { testFederationSettings } from '../support/federation.js';
import { collector } from '../support/heap.js';

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

function publish(b: ZoneBuilder, specs: NameSpec[], stale = false): { serial: number; change: ZoneChange; snapshot: ZoneSnapshot } {
  b.setOwner('ns/s', specs, stale);
  const r = b.publish()!;
  return { serial: r.snapshot.serial, change: r.change, snapshot: r.snapshot };
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

  it('is nothing to publish when an owner and the apex are set again as they are (a reload that changes nothing)', () => {
    const b = readyBuilder();
    const base = publish(b, [addresses(['10.0.0.1', '10.0.0.2'])]);
    b.setApex(testFederationSettings().apex);
    b.setOwner('ns/s', [addresses(['10.0.0.1', '10.0.0.2'])]);
    expect(b.publish()).toBeUndefined();
    expect(b.snapshotNow).toBe(base.snapshot);
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

  it('of a few records at a big name keeps those records, not the name: a journal of them holds what it lists', async () => {
    const b = readyBuilder();
    const many = Array.from({ length: 10_000 }, (_, i) => `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    const srvName = `_http._tcp.${NAME}`;
    const srv = (targets: number): NameSpec => ({
      name: srvName,
      rrsets: new Map([[RRType.SRV, Array.from({ length: targets }, (_, i) => ({ name: srvName, type: RRType.SRV, ttl: 30, data: { priority: 0, weight: 1, port: 80 + i, target: NAME } }))]]),
    });
    b.setOwner('ns/s', [addresses(many), srv(10_000)]);
    b.publish();
    const bigNodes = [NAME, srvName].map((n) => new WeakRef(b.snapshotNow.names.get(nameKey(n))!));
    expect(bigNodes.map((ref) => ref.deref()?.recordCount)).toEqual([10_000, 10_000]);
    // The journal of a hundred serials keeps their changes: one address and one SRV record each.
    const kept: ZoneChange[] = [];
    for (let k = 1; k <= 4; k++) kept.push(publish(b, [addresses(many.slice(k)), srv(10_000 - k)]).change);
    for (const change of kept) expect(change.size).toBe(2);
    const gc = collector();
    await new Promise((r) => setTimeout(r, 0));
    gc();
    for (const ref of bigNodes) expect(ref.deref()).toBeUndefined();
    expect(texts(kept[0].removed)).toEqual([`${srvName}\t30\tIN\tSRV\t0 1 10079 ${NAME}`, `${NAME}\t30\tIN\tA\t10.1.0.0`]);
    expect(kept[0].added).toEqual([]);
    expect(texts(kept[3].removed)).toEqual([`${srvName}\t30\tIN\tSRV\t0 1 10076 ${NAME}`, `${NAME}\t30\tIN\tA\t10.1.0.3`]);
  });

  it('of a big name held as addresses lists exactly what left and came, however the lists moved', () => {
    let seed = 7;
    const r = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const b = readyBuilder();
    let now = Array.from({ length: 200 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    publish(b, [addresses(now)]);
    for (let round = 0; round < 50; round++) {
      const next = now.filter(() => r() > 0.05);
      for (let k = Math.floor(r() * 4); k > 0; k--) next.splice(Math.floor(r() * next.length), 0, `10.1.${round}.${k}`);
      if (r() < 0.3) next.reverse();
      const { change } = publish(b, [addresses(next)]);
      const gone = now.filter((a) => !next.includes(a));
      const came = next.filter((a) => !now.includes(a));
      expect(change.size, `round ${round}`).toBe(gone.length + came.length);
      expect(change.removed.map((x) => x.data).sort(), `round ${round}`).toEqual(gone.sort());
      expect(change.added.map((x) => x.data).sort(), `round ${round}`).toEqual(came.sort());
      now = next;
    }
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
