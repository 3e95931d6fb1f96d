// ClusterState.unchanged(): a list collects the object the cluster holds in place of a listed one
// that did not change, so a re-list holds one copy of each object, not two, until it is applied.
// "Did not change" is what applying it says: the same object, or a slice whose trigger time alone
// moved (upsert keeps the held one then).
import { describe, expect, it, vi } from 'vitest';
import { packSlice, SAME_SLICE_FIELDS, sameSlice, type SlimClusterProperty, type SlimEndpointSlice, type SlimServiceExport, type SlimServiceImport } from '../../src/cluster/objects.js';
import { Federation } from '../../src/federation/federation.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';

function cluster() {
  const fed = new Federation(testFederationSettings());
  return fed.addCluster({ name: 'one', region: 'r1', zones: ['z1'], addressMode: 'endpoints', gracePeriod: 300 });
}

describe('ClusterState.unchanged', () => {
  it('gives the held object for an equal one of every kind, under the key that kind is held by', () => {
    const c = cluster();
    const s = svc('web', ['192.0.2.1']);
    const sl = slice('web', [{ addr: '10.0.0.1' }]);
    const ex: SlimServiceExport = { namespace: 'ns', name: 'web' };
    const im: SlimServiceImport = { namespace: 'ns', name: 'web', headless: false, ips: ['10.9.0.1'] };
    const prop: SlimClusterProperty = { namespace: '', name: 'id.k8s.io', value: 'one' };
    seed(c, [s, sl, ex]);
    c.upsert('ServiceImport', im);
    c.upsert('ClusterProperty', prop);
    expect(c.unchanged('Service', structuredClone(s))).toBe(s);
    expect(c.unchanged('EndpointSlice', structuredClone(sl))).toBe(sl);
    expect(c.unchanged('ServiceExport', structuredClone(ex))).toBe(ex);
    expect(c.unchanged('ServiceImport', structuredClone(im))).toBe(im);
    expect(c.unchanged('ClusterProperty', structuredClone(prop))).toBe(prop);
  });

  it('gives the listed object when it changed, or when nothing is held under its name', () => {
    const c = cluster();
    const s = svc('web', ['192.0.2.1']);
    const sl = slice('web', [{ addr: '10.0.0.1' }]);
    seed(c, [s, sl]);
    const moved = svc('web', ['192.0.2.2']);
    expect(c.unchanged('Service', moved)).toBe(moved);
    const other = svc('api', ['192.0.2.1']);
    expect(c.unchanged('Service', other)).toBe(other);
    const grown = slice('web', [{ addr: '10.0.0.1' }, { addr: '10.0.0.2' }]);
    expect(c.unchanged('EndpointSlice', grown)).toBe(grown);
  });

  it('gives the held slice when only its trigger time moved, as applying it would keep the held one', () => {
    const c = cluster();
    const sl = { ...slice('web', [{ addr: '10.0.0.1' }]), triggerTime: 1_000 };
    seed(c, [sl]);
    c.takeChangeTimes();
    const listed = { ...structuredClone(sl), triggerTime: 2_000 };
    const collected = c.unchanged('EndpointSlice', listed);
    expect(collected).toBe(sl);
    // Applying what the list collected or what it listed leaves the cluster alike.
    c.replaceKind('EndpointSlice', [listed]);
    expect(c.slices.get('ns/web-s')).toBe(sl);
    expect(c.takeChangeTimes()).toEqual([]);
  });
});

describe('sameSlice', () => {
  // Every optional list present: a field left out of the comparison is told apart here.
  const base = packSlice({
    namespace: 'ns',
    name: 'web-s',
    service: 'web',
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    endpoints: [
      { addresses: ['10.0.0.1', '10.0.0.2'], ready: false, zone: 'z1', hostname: 'a' },
      { addresses: ['10.0.0.3'], ready: true, zone: 'z2', hostname: 'b' },
    ],
    triggerTime: 1_000,
    ignored: [{ reason: 'zone', value: 'no such zone' }],
  });
  const differ: [string, Partial<SlimEndpointSlice>][] = [
    ['namespace', { namespace: 'other' }],
    ['name', { name: 'web-t' }],
    ['service', { service: 'api' }],
    ['addressType', { addressType: 'IPv6' }],
    ['ports', { ports: [{ name: 'http', port: 8081, protocol: 'tcp' }] }],
    ['addresses', { addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.4'] }],
    ['addressCounts', { addressCounts: [1, 2] }],
    ['addressCounts absent', { addressCounts: undefined }],
    ['zones', { zones: ['z2', 'z1'] }],
    ['hostnames', { hostnames: ['a', 'c'] }],
    ['hostnames absent', { hostnames: undefined }],
    ['notReady', { notReady: [1] }],
    ['notReady absent', { notReady: undefined }],
    ['ignored', { ignored: [{ reason: 'zone', value: 'another' }] }],
    ['ignored absent', { ignored: undefined }],
  ];

  it('has a case for every field it compares, and the trigger time is the one it does not', () => {
    const covered = new Set(differ.flatMap(([, over]) => Object.keys(over)));
    const compared = Object.entries(SAME_SLICE_FIELDS).filter(([, c]) => c).map(([f]) => f);
    expect([...covered].sort()).toEqual(compared.sort());
    expect(Object.keys(SAME_SLICE_FIELDS).filter((f) => !compared.includes(f))).toEqual(['triggerTime']);
  });

  it('holds a copy the same, and one whose trigger time alone moved', () => {
    expect(sameSlice(base, structuredClone(base))).toBe(true);
    expect(sameSlice(base, { ...structuredClone(base), triggerTime: 2_000 })).toBe(true);
    expect(sameSlice(base, { ...structuredClone(base), triggerTime: undefined })).toBe(true);
  });

  it.each(differ)('tells slices apart by %s', (_, over) => {
    const other = { ...structuredClone(base), ...over };
    expect(sameSlice(base, other)).toBe(false);
    expect(sameSlice(other, base)).toBe(false);
  });
});

describe('ClusterState.eachSlice', () => {
  const names = (c: ReturnType<typeof cluster>, key: string) => {
    const out: string[] = [];
    c.eachSlice(key, (s) => void out.push(s.name));
    return out;
  };

  it('gives a service its slices as they come, go and move to another service', () => {
    const c = cluster();
    seed(c, [svc('web', []), svc('api', [])]);
    expect(names(c, 'ns/web')).toEqual([]);
    c.upsert('EndpointSlice', slice('web', [{ addr: '10.0.0.1' }], 'web-a'));
    c.upsert('EndpointSlice', slice('web', [{ addr: '10.0.0.2' }], 'web-a')); // the same slice again
    expect(names(c, 'ns/web')).toEqual(['web-a']);
    c.upsert('EndpointSlice', slice('web', [{ addr: '10.0.0.3' }], 'web-b'));
    c.upsert('EndpointSlice', slice('web', [{ addr: '10.0.0.4' }], 'web-c'));
    expect(names(c, 'ns/web')).toEqual(['web-a', 'web-b', 'web-c']);
    c.remove('EndpointSlice', 'ns', 'web-b');
    expect(names(c, 'ns/web')).toEqual(['web-a', 'web-c']);
    // A slice relabelled to another service leaves the first one's.
    c.upsert('EndpointSlice', slice('api', [{ addr: '10.0.0.4' }], 'web-c'));
    expect(names(c, 'ns/web')).toEqual(['web-a']);
    expect(names(c, 'ns/api')).toEqual(['web-c']);
    c.upsert('EndpointSlice', slice('api', [{ addr: '10.0.0.1' }], 'web-a'));
    expect(names(c, 'ns/web')).toEqual([]);
    expect(names(c, 'ns/api')).toEqual(['web-c', 'web-a']);
    c.remove('EndpointSlice', 'ns', 'web-c');
    c.remove('EndpointSlice', 'ns', 'web-a');
    expect(names(c, 'ns/api')).toEqual([]);
    c.upsert('EndpointSlice', slice('api', [{ addr: '10.0.0.5' }], 'api-x'));
    expect(names(c, 'ns/api')).toEqual(['api-x']);
  });

  it('stops at the first slice its function returns true for, and says so', () => {
    const c = cluster();
    seed(c, [svc('web', []), slice('web', [{ addr: '10.0.0.1' }], 'web-a'), slice('web', [{ addr: '10.0.0.2' }], 'web-b')]);
    const seen: string[] = [];
    expect(c.eachSlice('ns/web', (s) => (seen.push(s.name), s.name === 'web-a'))).toBe(true);
    expect(seen).toEqual(['web-a']);
    expect(c.eachSlice('ns/web', () => false)).toBe(false);
    expect(c.eachSlice('ns/none', () => true)).toBe(false);
  });
});

describe('ClusterState.replaceKindSliced', () => {
  it('lets the event loop turn all through a re-list, the names it keeps included', async () => {
    const c = cluster();
    const N = 20_000;
    const services = Array.from({ length: N }, (_, i) => svc(`s${i}`, []));
    seed(c, services);
    // A clock that moves 1 ms each time it is read: slices end by how often the work looks at
    // the clock, not by how fast this machine is, so the count of turns is the same everywhere.
    let now = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now++);
    let turns = 0;
    let replaced = false;
    const tick = () => {
      turns++;
      if (!replaced) setImmediate(tick);
    };
    try {
      setImmediate(tick);
      // The same list again, and one service gone: every name is collected, applied and checked.
      await c.replaceKindSliced('Service', services.slice(1));
      replaced = true;
    } finally {
      clock.mockRestore();
    }
    expect(c.count('Service')).toBe(N - 1);
    // Collecting the list's names, applying them, and checking what the cluster holds against
    // them are a step per name each: at least 3 N / (64 steps between looks x 5 looks per slice)
    // turns (380 here). When only applying them went a step per name, 100,000 names held the
    // event loop for 100 ms twice in a re-list, and this made 130 turns.
    expect(turns).toBeGreaterThan((2.5 * N) / 320);
  });
});
