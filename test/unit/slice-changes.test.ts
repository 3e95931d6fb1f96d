// A slice read again from the API (a re-list, a watch event) is a change exactly when an endpoint
// changed: its addresses, its readiness, its zone or its hostname, whichever endpoint it is. The
// packed form (objects.ts, packSlice) must keep every such difference and no other.
import { describe, expect, it } from 'vitest';
import { endpointsOf, SERVICE_NAME_LABEL, slimEndpointSlice } from '../../src/cluster/objects.js';
import { Federation } from '../../src/federation/federation.js';
import { seed, svc, testFederationSettings } from '../support/federation.js';

type RawEndpoint = { addresses: string[]; conditions?: { ready?: boolean; terminating?: boolean }; zone?: string; hostname?: string };

/** An EndpointSlice as the API server sends it: a fresh copy of every string and list. */
const raw = (endpoints: RawEndpoint[], service = 'web', name = 'web-1') =>
  slimEndpointSlice(
    structuredClone({
      metadata: { namespace: 'ns', name, labels: { [SERVICE_NAME_LABEL]: service } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints,
    }),
  );

function cluster() {
  const fed = new Federation(testFederationSettings());
  const c = fed.addCluster({ name: 'one', region: 'r1', zones: [], addressMode: 'endpoints', gracePeriod: 300 });
  return { fed, c };
}

const base: RawEndpoint[] = [
  { addresses: ['10.0.0.1', '10.0.0.2'], zone: 'z1', hostname: 'a' },
  { addresses: ['10.0.0.3'], conditions: { ready: false }, zone: 'z2' },
  { addresses: [] },
  { addresses: ['10.0.0.4'], conditions: { ready: true, terminating: true }, hostname: 'd' },
];

describe('slices read again', () => {
  it('are unchanged when they are the same slice, and held once', () => {
    const { c } = cluster();
    const held = raw(base);
    c.upsert('EndpointSlice', held);
    expect(c.unchanged('EndpointSlice', raw(base))).toBe(held);
  });

  // Each of these keeps the slice's addresses, zones and hostnames as sets: only which endpoint has them moves.
  const changes: [string, RawEndpoint[]][] = [
    ['another endpoint is the one not ready', base.map((e, i) => (i === 1 ? { ...e, conditions: { ready: true } } : i === 0 ? { ...e, conditions: { ready: false } } : e))],
    ['an endpoint is in the other zone', base.map((e, i) => (i === 0 ? { ...e, zone: 'z2' } : i === 1 ? { ...e, zone: 'z1' } : e))],
    ['an endpoint lost its zone', base.map((e, i) => (i === 1 ? { ...e, zone: undefined } : e))],
    ['another endpoint has the hostname', base.map((e, i) => (i === 0 ? { ...e, hostname: 'd' } : i === 3 ? { ...e, hostname: 'a' } : e))],
    ['an address moved to the next endpoint', [{ ...base[0], addresses: ['10.0.0.1'] }, { ...base[1], addresses: ['10.0.0.2', '10.0.0.3'] }, base[2], base[3]]],
    ['the empty endpoint moved', [base[0], base[2], base[1], base[3]]],
    ['the empty endpoint went', [base[0], base[1], base[3]]],
  ];
  it.each(changes)('change when %s', (_, endpoints) => {
    const { c } = cluster();
    const held = raw(base);
    c.upsert('EndpointSlice', held);
    const next = raw(endpoints);
    expect(endpointsOf(next)).not.toEqual(endpointsOf(held));
    expect(c.unchanged('EndpointSlice', next)).toBe(next);
  });

  it('count the zones they have now, wherever the endpoints moved', () => {
    const { c } = cluster();
    c.upsert('EndpointSlice', raw(base));
    expect(c.zones).toEqual(['z1', 'z2']);
    c.upsert('EndpointSlice', raw(base.map((e, i) => (i === 1 ? { ...e, zone: 'z3' } : e))));
    expect(c.zones).toEqual(['z1', 'z3']);
    c.upsert('EndpointSlice', raw(base.map((e) => ({ ...e, zone: undefined }))));
    expect(c.zones).toEqual([]);
  });

  it('share zone lists that nothing can change', () => {
    const a = raw(base);
    const b = raw(base.map((e) => ({ ...e, addresses: e.addresses.map((x) => x.replace('10.0.', '10.1.')) })), 'api', 'api-1');
    expect(b.zones).toBe(a.zones);
    expect(() => (a.zones as string[]).push('z9')).toThrow(TypeError);
    expect(() => ((a.zones as string[])[0] = 'z9')).toThrow(TypeError);
    expect(endpointsOf(b).map((e) => e.zone)).toEqual(['z1', 'z2', undefined, undefined]);
  });

  it('hold every endpoint of a slice of more than a thousand', () => {
    const eps: RawEndpoint[] = Array.from({ length: 1500 }, (_, i) => ({
      addresses: i % 7 === 0 ? [] : [`10.${i >> 8}.${i & 255}.1`, ...(i % 5 === 0 ? [`10.${i >> 8}.${i & 255}.2`] : [])],
      conditions: { ready: i % 3 !== 0 },
      ...(i % 2 ? { zone: `z${i % 4}` } : {}),
      ...(i % 11 ? {} : { hostname: `h${i}` }),
    }));
    const s = raw(eps);
    const back = endpointsOf(s);
    expect(back).toHaveLength(1500);
    back.forEach((e, i) => {
      expect(e.addresses).toEqual(eps[i].addresses);
      expect(e.ready).toBe(eps[i].conditions!.ready);
      expect(e.zone).toBe(eps[i].zone);
      expect(e.hostname).toBe(eps[i].hostname);
    });
  });

  it('that moved to another service leave the first and count in the other', () => {
    const { fed, c } = cluster();
    seed(c, [svc('web', [], { headless: true }), svc('api', [], { headless: true }), raw(base)]);
    fed.rebuild();
    const ready = (key: string) => [...(fed.federated(key)?.global.v4 ?? [])];
    expect(ready('ns/web')).toEqual(['10.0.0.1', '10.0.0.2']);
    c.upsert('EndpointSlice', raw(base, 'api'));
    c.flush();
    fed.rebuild();
    expect([ready('ns/web'), ready('ns/api')]).toEqual([[], ['10.0.0.1', '10.0.0.2']]);
    expect(fed.federated('ns/api')!.endpoints.map((e) => e.host).sort()).toEqual(['a']);
  });
});
