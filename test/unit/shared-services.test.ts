// A federated service is written alike in its member clusters: clusters whose Services say the
// same hold one object between them (Federation.twinService). Held objects are never changed, so
// a cluster that changes its Service holds a new one and the others keep what they had.
import { describe, expect, it } from 'vitest';
import { SAME_SERVICE_FIELDS, sameService, slimService, type SlimService } from '../../src/cluster/objects.js';
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

/** A federation of one cluster per address, each given Service ns/web with that address, in order; what each holds. */
function clustersWith(...addresses: string[]) {
  const { fed } = federation();
  const clusters = addresses.map((a, i) => {
    const c = fed.addCluster(settings(`c${i + 1}`));
    seed(c, [svc('web', [a])]);
    return c;
  });
  return { clusters, held: (i: number) => clusters[i].services.get('ns/web')! };
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
  it('has a case for every field it compares', () => {
    const covered = new Set(differ.flatMap(([, over]) => Object.keys(over)));
    expect([...covered].sort()).toEqual(Object.keys(SAME_SERVICE_FIELDS).sort());
  });

  it('holds a missing optional field and one set to undefined the same', () => {
    const bare = svc('web', ['192.0.2.1']);
    expect('ttl' in bare).toBe(false);
    expect(sameService(bare, { ...bare, ttl: undefined, traffic: undefined })).toBe(true);
  });

  it.each(differ)('tells Services apart by %s', (_, over) => {
    const other = { ...structuredClone(base), ...over };
    expect(sameService(base, other)).toBe(false);
    expect(sameService(other, base)).toBe(false);
  });
});

describe('Services alike in several clusters', () => {
  it('are held once, by every cluster that has them', () => {
    const { held } = clustersWith('192.0.2.1', '192.0.2.1', '192.0.2.3');
    expect(held(0)).toBeDefined();
    expect(held(1)).toBe(held(0));
    // Another load balancer address: a Service of its own.
    expect(held(2)).not.toBe(held(0));
    expect(held(2).lbAddresses).toEqual(['192.0.2.3']);
  });

  it('finds the cluster whose Service is equal, not only the first that has one', () => {
    const { held } = clustersWith('192.0.2.1', '192.0.2.2', '192.0.2.2');
    expect(held(2)).toBe(held(1));
    expect(held(2).lbAddresses).toEqual(['192.0.2.2']);
    expect(held(0).lbAddresses).toEqual(['192.0.2.1']);
  });

  it('compare an update with the Services of at most three other clusters (a comparison may be a long one)', () => {
    // Four different Services, then one equal to the fourth: three comparisons come first.
    const { clusters, held } = clustersWith('192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.4');
    expect(held(4)).not.toBe(held(3));
    expect(held(4).lbAddresses).toEqual(['192.0.2.4']);
    // Equal to the third: found.
    seed(clusters[4], [svc('web', ['192.0.2.3'])]);
    expect(held(4)).toBe(held(2));
  });

  it('take an update equal to the held Service as no change, whatever shape the held one was written in', () => {
    const { fed } = federation();
    const [one, two] = ['one', 'two'].map((n) => fed.addCluster(settings(n)));
    seed(one, [{ ...svc('web', ['192.0.2.1']), ttl: undefined }]);
    seed(two, [svc('web', ['192.0.2.1'])]);
    expect(two.services.get('ns/web')).toBe(one.services.get('ns/web'));
    const handed: string[] = [];
    const servicesChanged = fed.servicesChanged.bind(fed);
    fed.servicesChanged = (c, keys) => {
      handed.push(...[...keys].map((k) => `${c?.name} ${k}`));
      servicesChanged(c, keys);
    };
    seed(two, [svc('web', ['192.0.2.1']), svc('web', ['192.0.2.1'])]);
    expect(handed).toEqual([]);
    seed(two, [svc('web', ['192.0.2.2'])]);
    expect(handed).toEqual(['two ns/web']);
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

  it('stay right through lists, re-lists and clusters leaving, from Services as the API server writes them', async () => {
    const { fed, addresses } = federation();
    const written = (ip: string) =>
      slimService({
        metadata: { name: 'web', namespace: 'ns' },
        spec: { ports: [{ name: 'http', port: 80 }] },
        status: { loadBalancer: { ingress: [{ ip }] } },
      });
    const [one, two] = ['one', 'two'].map((n) => fed.addCluster(settings(n)));
    for (const [c, endpoint] of [[one, '10.0.0.1'], [two, '10.0.1.1']] as const) {
      await c.addSliced('Service', [written('192.0.2.1')]);
      c.replaceKind('EndpointSlice', [slice('web', [{ addr: endpoint }])]);
      c.markLive();
      c.flush();
    }
    const shared = one.services.get('ns/web')!;
    expect(two.services.get('ns/web')).toBe(shared);
    // A re-list that changed nothing keeps the shared object.
    await two.replaceKindSliced('Service', [two.unchanged('Service', written('192.0.2.1'))]);
    expect(two.services.get('ns/web')).toBe(shared);
    // One that changed it gives that cluster a new one.
    await one.replaceKindSliced('Service', [one.unchanged('Service', written('192.0.2.9'))]);
    one.flush();
    fed.rebuild();
    expect(two.services.get('ns/web')).toBe(shared);
    expect(shared.lbAddresses).toEqual(['192.0.2.1']);
    expect(addresses('web.ns.fed.example.com.')).toEqual(['192.0.2.1', '192.0.2.9']);
    // Changed back, it shares again.
    await one.replaceKindSliced('Service', [one.unchanged('Service', written('192.0.2.1'))]);
    expect(one.services.get('ns/web')).toBe(shared);
    fed.removeCluster('one');
    fed.rebuild();
    expect(addresses('web.ns.fed.example.com.')).toEqual(['192.0.2.1']);
    fed.removeCluster('two');
    fed.rebuild();
    expect(addresses('web.ns.fed.example.com.')).toEqual([]);
  });
});
