// A federated service is written alike in its member clusters: clusters whose Services say the
// same hold one object between them (Federation.twinService). Held objects are never changed, so
// a cluster that changes its Service holds a new one and the others keep what they had.
import { describe, expect, it } from 'vitest';
import { sameService, type SlimService } from '../../src/cluster/objects.js';
import type { ClusterSettings } from '../../src/cluster/state.js';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';

const settings = (name: string): ClusterSettings => ({ name, region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });

function federation() {
  const fed = new Federation(testFederationSettings());
  const responder = new Responder(() => fed.snapshot);
  const addresses = (name: string) =>
    decodeMessage(responder.answer(encodeQuery(name, RRType.A), 'udp')!)
      .answers.map((r) => r.data as string)
      .sort();
  return { fed, addresses };
}

describe('sameService', () => {
  const base = svc('web', ['192.0.2.1'], { labels: { app: 'web' }, ttl: 20, traffic: { policy: 'nearest' }, ignored: [{ reason: 'ttl annotation', value: 'x' }] });

  it('holds a copy equal, field by field, and the same object', () => {
    expect(sameService(base, structuredClone(base))).toBe(true);
    expect(sameService(base, base)).toBe(true);
  });

  const differ: [string, Partial<SlimService>][] = [
    ['namespace', { namespace: 'other' }],
    ['name', { name: 'api' }],
    ['headless', { headless: true }],
    ['ttl', { ttl: 21 }],
    ['no ttl', { ttl: undefined }],
    ['a port', { ports: [{ name: 'http', port: 81, protocol: 'tcp' }] }],
    ['one port more', { ports: [...base.ports, { name: 'dns', port: 53, protocol: 'udp' }] }],
    ['an address', { lbAddresses: ['192.0.2.2'] }],
    ['an address more', { lbAddresses: ['192.0.2.1', '192.0.2.2'] }],
    ['a hostname', { lbHostnames: ['lb.example.net'] }],
    ['a label value', { labels: { app: 'api' } }],
    ['a label more', { labels: { app: 'web', tier: 'front' } }],
    ['the traffic policy', { traffic: { policy: 'weighted' } }],
    ['no traffic annotations', { traffic: undefined }],
    ['an ignored value', { ignored: [{ reason: 'ttl annotation', value: 'y' }] }],
    ['nothing ignored', { ignored: undefined }],
  ];
  it.each(differ)('tells Services apart by %s', (_, over) => {
    const other = { ...structuredClone(base), ...over };
    expect(sameService(base, other)).toBe(false);
    expect(sameService(other, base)).toBe(false);
  });
});

describe('Services alike in several clusters', () => {
  it('are held once, by every cluster that has them', () => {
    const { fed } = federation();
    const [one, two, three] = ['one', 'two', 'three'].map((n) => fed.addCluster(settings(n)));
    seed(one, [svc('web', ['192.0.2.1'])]);
    seed(two, [svc('web', ['192.0.2.1'])]);
    seed(three, [svc('web', ['192.0.2.3'])]);
    const held = one.services.get('ns/web');
    expect(held).toBeDefined();
    expect(two.services.get('ns/web')).toBe(held);
    // Another load balancer address: a Service of its own.
    expect(three.services.get('ns/web')).not.toBe(held);
    expect(three.services.get('ns/web')!.lbAddresses).toEqual(['192.0.2.3']);
  });

  it('finds the cluster whose Service is equal, not only the first that has one', () => {
    const { fed } = federation();
    const [one, two, three] = ['one', 'two', 'three'].map((n) => fed.addCluster(settings(n)));
    seed(one, [svc('web', ['192.0.2.1'])]);
    seed(two, [svc('web', ['192.0.2.2'])]);
    seed(three, [svc('web', ['192.0.2.2'])]);
    expect(three.services.get('ns/web')).toBe(two.services.get('ns/web'));
    expect(three.services.get('ns/web')!.lbAddresses).toEqual(['192.0.2.2']);
    expect(one.services.get('ns/web')!.lbAddresses).toEqual(['192.0.2.1']);
  });

  it('part when one cluster changes its Service: the others keep theirs, and answers show both', () => {
    const { fed, addresses } = federation();
    const [one, two] = ['one', 'two'].map((n) => fed.addCluster(settings(n)));
    seed(one, [svc('web', ['192.0.2.1']), slice('web', [{ addr: '10.0.0.1' }])]);
    seed(two, [svc('web', ['192.0.2.1']), slice('web', [{ addr: '10.0.1.1' }])]);
    fed.rebuild();
    expect(addresses('web.ns.fed.example.com.')).toEqual(['192.0.2.1']);
    const shared = two.services.get('ns/web')!;
    expect(one.services.get('ns/web')).toBe(shared);

    seed(one, [svc('web', ['192.0.2.9'])]);
    fed.rebuild();
    expect(shared.lbAddresses).toEqual(['192.0.2.1']);
    expect(two.services.get('ns/web')).toBe(shared);
    expect(one.services.get('ns/web')!.lbAddresses).toEqual(['192.0.2.9']);
    expect(addresses('web.ns.fed.example.com.')).toEqual(['192.0.2.1', '192.0.2.9']);

    // And when the cluster that held it first deletes it, the other still answers.
    one.remove('Service', 'ns', 'web');
    one.flush();
    fed.rebuild();
    expect(addresses('web.ns.fed.example.com.')).toEqual(['192.0.2.1']);
  });
});
