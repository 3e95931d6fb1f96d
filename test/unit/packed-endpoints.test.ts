// A slice's endpoints are held as parallel lists (objects.ts, packSlice): read back, they are
// the endpoints the slice was made of, whatever mix of address counts, readiness, zones and
// hostnames it had.
import { describe, expect, it } from 'vitest';
import { eachEndpoint, endpointsOf, packSlice, slimEndpointSlice, slimService, type SlimEndpoint } from '../../src/cluster/objects.js';
import { collector, settledHeap } from '../support/heap.js';
import { prng } from '../support/corpus.js';

const parts = (endpoints: SlimEndpoint[]) => ({ namespace: 'ns', name: 's-1', service: 's', addressType: 'IPv4' as const, ports: [], endpoints });

describe('packed endpoints', () => {
  it('read back as the endpoints they were made of, in order', () => {
    const rand = prng(7);
    for (let round = 0; round < 300; round++) {
      const eps: SlimEndpoint[] = Array.from({ length: Math.floor(rand() * 6) }, (_, i) => {
        const e: SlimEndpoint = { addresses: Array.from({ length: Math.floor(rand() * 3.5) }, (_, k) => `10.0.${i}.${k}`), ready: rand() < 0.7 };
        if (rand() < 0.3) e.hostname = `h${i}`;
        if (rand() < 0.6) e.zone = `z${Math.floor(rand() * 3)}`;
        return e;
      });
      const s = packSlice(parts(eps));
      expect(endpointsOf(s)).toEqual(eps);
      const seen: [number, number, boolean][] = [];
      eachEndpoint(s, (from, to, ready) => seen.push([from, to, ready]));
      expect(seen.map(([from, to]) => s.addresses.slice(from, to))).toEqual(eps.map((e) => e.addresses));
      expect(seen.map(([, , ready]) => ready)).toEqual(eps.map((e) => e.ready));
    }
  });

  it('hold no per-endpoint list that says nothing: one address each, all ready, no hostname, no zone', () => {
    const s = packSlice(parts([{ addresses: ['10.0.0.1'], ready: true }, { addresses: ['10.0.0.2'], ready: true }]));
    expect([s.addresses, s.addressCounts, s.zones, s.hostnames, s.notReady]).toEqual([['10.0.0.1', '10.0.0.2'], undefined, [], undefined, undefined]);
  });

  it('share one zone list between slices whose endpoints are in the same zones', () => {
    const a = packSlice(parts([{ addresses: ['10.0.0.1'], ready: true, zone: 'z1' }, { addresses: ['10.0.0.2'], ready: true, zone: 'z2' }]));
    const b = packSlice(parts([{ addresses: ['10.0.1.1'], ready: false, zone: 'z1' }, { addresses: ['10.0.1.2'], ready: true, zone: 'z2' }]));
    expect(a.zones).toEqual(['z1', 'z2']);
    expect(b.zones).toBe(a.zones);
  });

  it('are what a slice read from the API holds: conditions, hostnames, zones and repeated addresses as written', () => {
    const s = slimEndpointSlice({
      metadata: { namespace: 'ns', name: 'db-1', labels: { 'kubernetes.io/service-name': 'db' } },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['10.0.0.1', '10.0.0.1', '10.0.0.2'], hostname: 'db-0', zone: 'z1' },
        { addresses: [], conditions: { ready: true } },
        { addresses: ['10.0.0.3'], conditions: { ready: true, terminating: true } },
        { addresses: ['10.0.0.4'], conditions: { ready: false }, zone: 'z2' },
      ],
    });
    expect(endpointsOf(s)).toEqual([
      { addresses: ['10.0.0.1', '10.0.0.2'], ready: true, hostname: 'db-0', zone: 'z1' },
      { addresses: [], ready: true },
      { addresses: ['10.0.0.3'], ready: false },
      { addresses: ['10.0.0.4'], ready: false, zone: 'z2' },
    ]);
  });
});

describe('zone lists', () => {

  it('of a big slice go with it: a slice read again and again (each rollout, each hostile write) leaves nothing behind', async () => {
    const gc = collector();
    // Zones of 63 characters, a thousand endpoints: each list as its own key would hold ~70 KB.
    const zone = (k: number) => `z${String(k).padStart(62, '0')}`;
    const refs: WeakRef<readonly string[]>[] = [];
    for (let k = 0; k < 4; k++) {
      const eps: SlimEndpoint[] = Array.from({ length: 1000 }, (_, i) => ({ addresses: [`10.0.${i >> 8}.${i & 255}`], ready: true, zone: zone((i + k) % 3) }));
      refs.push(new WeakRef(packSlice(parts(eps)).zones));
    }
    // WeakRefs hold their target until the job that made them ends.
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });

  it('of small slices are still one list for every slice with the same zones', () => {
    const eps = (n: number, base: string): SlimEndpoint[] => Array.from({ length: n }, (_, i) => ({ addresses: [`${base}.${i}`], ready: true, zone: `z${i % 3}` }));
    expect(packSlice(parts(eps(5, '10.0.0'))).zones).toBe(packSlice(parts(eps(5, '10.0.1'))).zones);
    const big = packSlice(parts(eps(1000, '10.0.2')));
    expect(Object.isFrozen(big.zones)).toBe(true);
    expect(endpointsOf(big).map((e) => e.zone)).toEqual(eps(1000, '10.0.2').map((e) => e.zone));
  });
});

describe('service names, one copy for every cluster', () => {
  it('are shared between clusters even past the size of one table (the table before keeps the names seen last)', async () => {
    // More distinct services than one table holds, listed by two clusters in the same order; long
    // names, so a name held twice shows in the heap (about 80 bytes each).
    const N = 60_000;
    const read = (i: number) => slimService(JSON.parse(`{"metadata":{"namespace":"ns","name":"${`svc-${i}-`.padEnd(60, 'x')}"}}`));
    const h0 = await settledHeap();
    const first = Array.from({ length: N }, (_, i) => read(i));
    const h1 = await settledHeap();
    const second = Array.from({ length: N }, (_, i) => read(i));
    const h2 = await settledHeap();
    expect(second.every((s, i) => s.name === first[i].name)).toBe(true);
    // The second cluster's services take less each: most of their names are the first's (a
    // name is 80 bytes; the tables' entries take some of that back). A table that starts over
    // when full shares none of them: the second cluster's services then take as much (measured:
    // 4 bytes more each; 26 to 32 bytes less with the table before kept).
    expect((h1 - h0 - (h2 - h1)) / N).toBeGreaterThan(15);
  });

  it('keep nothing of a service-name label too long to be a name once its slice goes (manifests in files are not checked by an API server)', async () => {
    const before = await settledHeap();
    for (let k = 0; k < 40; k++) {
      const label = `${k}-`.padEnd(1 << 20, 'x');
      slimEndpointSlice({ metadata: { namespace: 'ns', name: `s-${k}`, labels: { 'kubernetes.io/service-name': label } }, endpoints: [] });
    }
    expect((await settledHeap()) - before).toBeLessThan(8 << 20);
  });

  it('keep nothing of a port list that reads to less than was written (a huge port name beside a bad port number)', async () => {
    const before = await settledHeap();
    for (let k = 0; k < 40; k++) {
      const ports = [{ name: `${k}-`.padEnd(1 << 20, 'x'), port: 0 }, { name: 'a', port: 1 + k }];
      expect(slimService({ metadata: { namespace: 'ns', name: `p-${k}` }, spec: { ports } }).ports).toEqual([{ name: 'a', port: 1 + k, protocol: 'tcp' }]);
      slimEndpointSlice({ metadata: { namespace: 'ns', name: `p-${k}` }, ports, endpoints: [] });
    }
    expect((await settledHeap()) - before).toBeLessThan(8 << 20);
  });
});
