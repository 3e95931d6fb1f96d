// Tenant data from a real API-server protocol. Updates that change nothing answers depend on (a
// new resourceVersion, status conditions, other annotations, node names) change nothing: the
// service is not rebuilt, no snapshot or serial is published, no programming latency is
// observed; a real change behind them is served as usual. A node region label that is no DNS
// label is not used, and counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, publish, QUICK_TIMING, same, slice, svc, useKubeTiming, type Running } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);

const { startFedns } = kubeHarness('fedns-kube-tenant-');
const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });

describe('kube source: status-only updates', () => {
  let east: FakeApiServer;
  let f: Running;

  beforeAll(async () => {
    east = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    publish(east, 'shop', 'web', '192.0.2.1');
    f = await startFedns([{ name: 'east', server: east, region: 'r1' }]);
    await eventually(() => f.answer('web.shop.fed.example.com.'), same(['192.0.2.1']), 'web answering');
  });

  afterAll(async () => {
    await f?.stop();
    await east?.stop();
  });

  it('are no changes: web is not rebuilt and nothing is published; the probe behind them is', async () => {
    const fed = f.fedns.federation;
    const rebuilt: string[] = [];
    // Every rebuild of a service goes through federatedBoth (both zones' views of it, one pass).
    const inner = fed as unknown as { federatedBoth(key: string, clusterSet: boolean): unknown };
    const federatedBoth = inner.federatedBoth.bind(fed);
    inner.federatedBoth = (key, clusterSet) => {
      rebuilt.push(key);
      return federatedBoth(key, clusterSet);
    };
    const published: number[] = [];
    fed.on('published', (snap) => published.push(snap.serial));
    const programmed: number[] = [];
    fed.on('programmed', (_c, s) => programmed.push(...s));
    const serial = fed.snapshot.serial;

    for (let i = 0; i < 3; i++) {
      east.apply(
        svc('shop', 'web', ['192.0.2.1'], {
          metadata: { name: 'web', namespace: 'shop', annotations: { 'example.com/revision': String(i) } },
          status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] }, conditions: [{ type: 'Probed', status: 'True', reason: `r${i}` }] },
        }),
      );
      const s = slice('shop', 'web', [{ ip: '10.1.0.1' }]);
      (s.endpoints as Record<string, unknown>[])[0].nodeName = `node-${i}`;
      (s.metadata as Record<string, unknown>).annotations = { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() };
      east.apply(s);
    }
    // A real change after them, in both watch streams: once it answers, they have been applied.
    publish(east, 'shop', 'probe', '192.0.2.9');
    await eventually(() => f.answer('probe.shop.fed.example.com.'), same(['192.0.2.9']), 'probe answering');
    expect(rebuilt).toContain('shop/probe');
    expect(rebuilt).not.toContain('shop/web');
    expect(published.length).toBeGreaterThan(0);
    expect(published.every((s) => s > serial)).toBe(true);
    // One change timed: the probe's Service (its slice carries no trigger time); none of web's.
    expect(programmed.length).toBe(1);
    expect(await f.answer('web.shop.fed.example.com.')).toEqual(['192.0.2.1']);
  });
});

describe('kube source: an object fedns cannot read', () => {
  it('is skipped and counted as an ignored value, in a list page and in a watch event; the rest answers', async () => {
    const east = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    let f: Running | undefined;
    try {
      publish(east, 'shop', 'web', '192.0.2.1');
      east.apply(svc('shop', 'Bad_Name', ['192.0.2.2']));
      f = await startFedns([{ name: 'east', server: east, region: 'r1' }]);
      await eventually(() => f!.answer('web.shop.fed.example.com.'), same(['192.0.2.1']), 'web answering');
      const fed = f.fedns.federation;
      await eventually(() => fed.ignored.count('unreadable object'), (n) => n === 1, 'the listed object counted');
      east.apply(svc('shop', 'Worse_Name', ['192.0.2.3']));
      publish(east, 'shop', 'probe', '192.0.2.9');
      await eventually(() => f!.answer('probe.shop.fed.example.com.'), same(['192.0.2.9']), 'probe answering');
      expect(fed.ignored.count('unreadable object')).toBe(2);
      expect(fed.clusters.get('east')?.health).toBe('live');
    } finally {
      await f?.stop();
      await east.stop();
    }
  });
});

describe('kube source: a node region that is no DNS label', () => {
  let south: FakeApiServer;
  let f: Running;

  afterAll(async () => {
    await f?.stop();
    await south?.stop();
  });

  it('is not used as the region, and is counted; the cluster serves without one', async () => {
    south = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    publish(south, 'shop', 'web', '192.0.2.7');
    south.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/region': 'Bad..Region' } } });
    f = await startFedns([{ name: 'south', server: south }]);
    await eventually(() => f.answer('web.shop.fed.example.com.'), same(['192.0.2.7']), 'web answering');
    await eventually(() => f.fedns.federation.ignored.count('region'), (n) => n === 1, 'the region counted as ignored');
    expect(f.fedns.federation.clusters.get('south')!.region).toBeUndefined();
    expect(await f.fedns.metrics.text()).toMatch(/^fedns_ignored_objects_total\{reason="region"\} 1$/m);
  });
});
