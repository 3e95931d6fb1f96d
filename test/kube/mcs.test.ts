// The clusterset zone (mcs.enabled) from kube members whose API servers lack the optional
// Multi-Cluster Services CRDs: ServiceImport and/or ClusterProperty answer 404 there. Such a
// cluster stays live, and its exported services get clusterset names from their own addresses
// and endpoints (no ClusterSetIP, the configured name as cluster ID); a CRD installed later is used.
import { describe, expect, it, onTestFinished } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { aRecords, eventuallyWith, kubeHarness, publish, QUICK_TIMING, same, serviceExport, slice, svc, useKubeTiming } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);

const { startFedns } = kubeHarness('fedns-kube-mcs-');
const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });

const cs = (name: string) => `${name}.svc.clusterset.local.`;

describe('kube source, mcs.enabled: clusters without the ServiceImport or ClusterProperty CRD', () => {
  it('stay live, and their exported services get clusterset names from their endpoints', async () => {
    // east: ServiceExport only. west: ServiceExport and ServiceImport, no ClusterProperty.
    const east = await FakeApiServer.start({ bookmarkIntervalMs: 200, disabledKinds: ['ServiceImport', 'ClusterProperty'] });
    const west = await FakeApiServer.start({ bookmarkIntervalMs: 200, disabledKinds: ['ClusterProperty'] });
    onTestFinished(() => Promise.all([east.stop(), west.stop()]).then(() => undefined));
    // web: exported by both; west's ServiceImport gives it a ClusterSetIP.
    for (const [server, lb] of [[east, '192.0.2.1'], [west, '198.51.100.1']] as const) {
      publish(server, 'shop', 'web', lb);
      server.apply(serviceExport('shop', 'web'));
    }
    west.apply({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceImport',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { type: 'ClusterSetIP', ips: ['10.42.0.20'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    // api: exported by east only; private: not exported; hl: headless, exported by east.
    publish(east, 'shop', 'api', '192.0.2.5');
    east.apply(serviceExport('shop', 'api'));
    publish(east, 'shop', 'private', '192.0.2.6');
    east.apply(svc('shop', 'hl', [], { spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, status: {} }));
    east.apply(slice('shop', 'hl', [{ ip: '10.1.0.7' }]));
    east.apply(serviceExport('shop', 'hl'));

    const f = await startFedns(
      [
        { name: 'east', server: east, region: 'r1' },
        { name: 'west', server: west, region: 'r2' },
      ],
      { mcs: { enabled: true } },
    );
    onTestFinished(() => f.stop());
    await eventually(() => f.answer(cs('api.shop')), same(['192.0.2.5']), 'the service exported by east only, from its load-balancer address');
    expect(f.health('east')).toBe('live');
    expect(f.health('west')).toBe('live');
    // The missing kinds were asked for (404), not skipped.
    for (const plural of ['serviceimports', 'clusterproperties']) expect(east.requestLog.some((r) => r.path.endsWith(`/${plural}`)), plural).toBe(true);
    expect(west.requestLog.some((r) => r.kind === 'ServiceImport' && r.verb === 'watch')).toBe(true);

    // west's ClusterSetIP answers for web; east's missing ServiceImport does not knock it out.
    expect(await f.answer(cs('web.shop'))).toEqual(['10.42.0.20']);
    expect(await f.answer(cs('private.shop'))).toBe('NXDOMAIN');
    expect(await f.answer('private.shop.fed.example.com.')).toEqual(['192.0.2.6']);
    // Headless: the endpoint named with the configured cluster name (no ClusterProperty).
    await eventually(() => f.answer(cs('10-1-0-7.east.hl.shop')), same(['10.1.0.7']), 'the headless endpoint name');
    expect(await f.answer(cs('hl.shop'))).toEqual(['10.1.0.7']);

    // Endpoint and address changes in the cluster without the CRDs reach the clusterset names.
    east.apply(slice('shop', 'hl', [{ ip: '10.1.0.8' }]));
    await eventually(() => f.answer(cs('10-1-0-8.east.hl.shop')), same(['10.1.0.8']), 'the new endpoint');
    expect(await f.answer(cs('10-1-0-7.east.hl.shop'))).toBe('NXDOMAIN');
    east.apply(svc('shop', 'api', ['192.0.2.50']));
    await eventually(() => f.answer(cs('api.shop')), same(['192.0.2.50']), 'the new load-balancer address');
    const srv = await f.ask(cs('_http._tcp.hl.shop'), RRType.SRV);
    expect(srv.answers.map((r) => (r.data as { target: string }).target)).toEqual([cs('10-1-0-8.east.hl.shop')]);

    // Never stale or syncing again after the first sync, for want of a CRD.
    for (const name of ['east', 'west']) {
      const after = f.history.filter((h) => h.cluster === name);
      expect(after.at(-1)?.health, name).toBe('live');
      expect(after.filter((h) => h.health !== 'live' && h.health !== 'syncing'), name).toEqual([]);
    }

    // The ClusterProperty CRD installed later in east: its cluster ID names the endpoint from then on.
    east.setKindEnabled('ClusterProperty', true);
    east.apply({ apiVersion: 'about.k8s.io/v1alpha1', kind: 'ClusterProperty', metadata: { name: 'id.k8s.io' }, spec: { value: 'east-id' } });
    await eventually(() => f.answer(cs('10-1-0-8.east-id.hl.shop')), same(['10.1.0.8']), 'the endpoint under the cluster ID');
    const gone = await f.ask(cs('10-1-0-8.east.hl.shop'));
    expect(aRecords(gone)).toEqual([]);
    expect(f.health('east')).toBe('live');
  });
});
