// A real Fedns whose member clusters are fake API servers driven through the real
// @kubernetes/client-node configuration: changes in a cluster show up in DNS answers.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Rcode } from '../../src/wire/constants.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import {
  aRecords,
  eventuallyWith,
  kubeHarness,
  publish,
  QUICK_TIMING,
  rcodeText,
  same,
  serviceExport,
  sleep,
  slice,
  svc,
  useKubeTiming,
  type Running,
} from '../support/kube-harness.js';

// ---- helpers ----------------------------------------------------------------------------

useKubeTiming(QUICK_TIMING);

const { startFedns, startRaw, writeKubeconfig } = kubeHarness('fedns-kube-conv-');
const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });

const name = (svcName: string, ns = 'shop') => `${svcName}.${ns}.fed.example.com.`;

// ---- tests ------------------------------------------------------------------------------

describe('kube source: changes in member clusters converge into answers', () => {
  let east: FakeApiServer;
  let west: FakeApiServer;
  let f: Running;

  beforeAll(async () => {
    [east, west] = await Promise.all([FakeApiServer.start({ bookmarkIntervalMs: 200 }), FakeApiServer.start({ bookmarkIntervalMs: 200 })]);
    publish(east, 'shop', 'web', '192.0.2.1');
    publish(west, 'shop', 'web', '198.51.100.1');
    east.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/region': 'eu-west' } } });
    f = await startFedns([
      { name: 'east', server: east }, // no region in the configuration: learned from the nodes
      { name: 'west', server: west, region: 'us-east' },
    ]);
    await eventually(() => f.answer(name('web')), same(['192.0.2.1', '198.51.100.1']), 'both clusters answering');
  });

  afterAll(async () => {
    await f?.stop();
    await Promise.all([east?.stop(), west?.stop()]);
  });

  it('syncs both clusters, lists with a limit and watches with bookmarks and a timeout', async () => {
    expect(f.health('east')).toBe('live');
    expect(f.health('west')).toBe('live');
    const lists = east.requestLog.filter((r) => r.verb === 'list' && r.kind === 'Service');
    expect(lists[0].query.limit).toBe('500');
    const watch = east.requestLog.find((r) => r.verb === 'watch' && r.kind === 'Service')!;
    expect(watch.query).toMatchObject({ watch: 'true', allowWatchBookmarks: 'true' });
    expect(Number(watch.query.timeoutSeconds)).toBeGreaterThanOrEqual(27);
    expect(Number(watch.query.resourceVersion)).toBeGreaterThan(0);
    // No ServiceExport watch with the "all" policy.
    expect(east.requestLog.some((r) => r.kind === 'ServiceExport')).toBe(false);
    expect(f.logs.some((l) => l.msg === 'cluster synced from the API server' && l.cluster === 'east')).toBe(true);
  });

  it('learns the region from node labels when the configuration has none', async () => {
    await eventually(() => f.answer('web.shop.fed.svc.eu-west.example.com.'), same(['192.0.2.1']), 'regional name of the learned region');
    expect(await f.answer('web.shop.fed.svc.us-east.example.com.')).toEqual(['198.51.100.1']);
  });

  it('follows an endpoint turning not ready and ready again', async () => {
    east.apply(slice('shop', 'web', [{ ip: '10.1.0.1', ready: false }]));
    await eventually(() => f.answer(name('web')), same(['198.51.100.1']), 'east leaving the answer');
    east.apply(slice('shop', 'web', [{ ip: '10.1.0.1', ready: true }]));
    await eventually(() => f.answer(name('web')), same(['192.0.2.1', '198.51.100.1']), 'east back in the answer');
  });

  it('follows a service appearing and being deleted', async () => {
    expect(await f.answer(name('late'))).toBe('NXDOMAIN');
    publish(west, 'shop', 'late', '198.51.100.7');
    await eventually(() => f.answer(name('late')), same(['198.51.100.7']), 'the new service answering');
    west.remove('Service', 'shop', 'late');
    await eventually(() => f.answer(name('late')), same('NXDOMAIN'), 'the deleted service gone');
    west.remove('EndpointSlice', 'shop', 'late-abcde');
  });

  it("follows a cluster's load-balancer address changing", async () => {
    east.apply(svc('shop', 'web', ['192.0.2.99']));
    await eventually(() => f.answer(name('web')), same(['192.0.2.99', '198.51.100.1']), 'the new LB address');
    east.apply(svc('shop', 'web', ['192.0.2.1']));
    await eventually(() => f.answer(name('web')), same(['192.0.2.1', '198.51.100.1']), 'the LB address back');
  });

  it('re-watches from the last resourceVersion seen (bookmarks included) after a clean end, without a re-list', async () => {
    // (The initial sync above already read list items without kind/apiVersion, as a real server sends them.)
    const lists = east.requestCount({ kind: 'Service', verb: 'list' });
    const watches = east.requestCount({ kind: 'Service', verb: 'watch' });
    // A change of another kind moves the global resourceVersion on; the Service watch learns of
    // it only from a bookmark (every 200 ms).
    east.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated', namespace: 'shop' }, data: { at: String(Date.now()) } });
    const rvBefore = Number(east.resourceVersion);
    await sleep(500);
    east.endOpenWatches('Service');
    await east.waitForRequests({ kind: 'Service', verb: 'watch' }, watches + 1);
    const rewatch = east.requestLog.filter((r) => r.verb === 'watch' && r.kind === 'Service').at(-1)!;
    expect(Number(rewatch.query.resourceVersion)).toBe(rvBefore);
    expect(east.requestCount({ kind: 'Service', verb: 'list' })).toBe(lists);
    publish(east, 'shop', 'after-end', '192.0.2.50');
    await eventually(() => f.answer(name('after-end')), same(['192.0.2.50']), 'a service added after a clean watch end');
    expect(f.health('east')).toBe('live');
  });
});

describe('kube source: sync states', () => {
  it('answers SERVFAIL while no cluster has synced (503 on list), then answers once it syncs', async () => {
    const server = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    onTestFinished(() => server.stop());
    publish(server, 'shop', 'web', '203.0.113.5');
    const fault = server.failList(503);
    const f = await startFedns([{ name: 'solo', server, region: 'r1' }]);
    onTestFinished(() => f.stop());
    await server.waitForRequests({ verb: 'list' }, 4);
    expect(await f.answer(name('web'))).toBe('SERVFAIL');
    expect(f.health('solo')).toBe('syncing');
    const reason = f.fedns.federation.clusters.get('solo')!.reason;
    expect(reason).toMatch(/API server error \(503\)/);
    fault.clear();
    await eventually(() => f.answer(name('web')), same(['203.0.113.5']), 'answers after the first sync');
    expect(f.health('solo')).toBe('live');
  });

  it('follows list pagination: 7 services with pages of 2 all answer', async () => {
    const server = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    onTestFinished(() => server.stop());
    for (let i = 0; i < 7; i++) publish(server, 'paged', `s${i}`, `203.0.113.${10 + i}`, `10.2.0.${i + 1}`);
    server.forcePageSize(2);
    const f = await startFedns([{ name: 'paged', server, region: 'r1' }]);
    onTestFinished(() => f.stop());
    for (let i = 0; i < 7; i++) {
      await eventually(() => f.answer(name(`s${i}`, 'paged')), same([`203.0.113.${10 + i}`]), `s${i} answering`);
    }
    const continued = server.requestLog.filter((r) => r.verb === 'list' && r.query.continue);
    expect(continued.filter((r) => r.kind === 'Service')).toHaveLength(3); // pages 2..4
    expect(continued.filter((r) => r.kind === 'EndpointSlice')).toHaveLength(3);
  });
});

describe('kube source: credentials', () => {
  it('uses the context named in the configuration, and reports a missing one without crashing', async () => {
    const a = await FakeApiServer.start({ tokens: ['token-a'], bookmarkIntervalMs: 200 });
    const b = await FakeApiServer.start({ tokens: ['token-b'], bookmarkIntervalMs: 200 });
    onTestFinished(() => Promise.all([a.stop(), b.stop()]).then(() => undefined));
    publish(a, 'ctx', 'web', '192.0.2.31');
    publish(b, 'ctx', 'web', '198.51.100.31');
    const combined = FakeApiServer.combinedKubeconfig([
      { server: a, context: 'alpha', token: 'token-a' },
      { server: b, context: 'bravo', token: 'token-b' },
    ]);
    const file = writeKubeconfig('combined', combined);
    const { fedns, dns, logs, stop } = await startRaw({
      listen: ['127.0.0.1:0'],
      ops: { listen: null },
      clusters: [
        { name: 'bravo', region: 'r1', source: { type: 'kube', kubeconfig: file, context: 'bravo' } },
        { name: 'nowhere', region: 'r2', source: { type: 'kube', kubeconfig: file, context: 'charlie' } },
      ],
    });
    onTestFinished(stop);
    const answer = async () => {
      const m = await dns.query(name('web', 'ctx'));
      return m ? (m.rcode === Rcode.NOERROR ? aRecords(m) : rcodeText(m.rcode)) : 'timeout';
    };
    await eventually(answer, same(['198.51.100.31']), 'the service of the "bravo" context only');
    expect(a.requestLog.length).toBe(0);
    expect(b.requestLog.every((r) => r.token === 'token-b')).toBe(true);
    const nowhere = fedns.federation.clusters.get('nowhere')!;
    expect(nowhere.health).toBe('syncing');
    expect(nowhere.reason).toMatch(/kubeconfig has no context "charlie" \(it has: alpha, bravo\)/);
    expect(logs.some((l) => l.cluster === 'nowhere' && l.level === 40 && l.msg === 'cannot load the cluster credentials; retrying')).toBe(true);
  });
});

describe('kube source: ServiceExport selection policy', () => {
  it('serves only exported services, and a cluster without the CRD logs a warning and exports nothing', async () => {
    const withCrd = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    const noCrd = await FakeApiServer.start({ bookmarkIntervalMs: 200, serviceExports: false });
    onTestFinished(() => Promise.all([withCrd.stop(), noCrd.stop()]).then(() => undefined));
    publish(withCrd, 'shop', 'exported', '192.0.2.10');
    publish(withCrd, 'shop', 'private', '192.0.2.11');
    withCrd.apply(serviceExport('shop', 'exported'));
    publish(noCrd, 'shop', 'exported', '198.51.100.10');
    publish(noCrd, 'shop', 'private', '198.51.100.11');

    const f = await startFedns(
      [
        { name: 'mcs', server: withCrd, region: 'r1' },
        { name: 'plain', server: noCrd, region: 'r2' },
      ],
      { selection: { policy: 'exported' } },
    );
    onTestFinished(() => f.stop());
    await eventually(() => f.health('plain'), (h) => h === 'live', 'the cluster without the CRD live');
    await eventually(() => f.answer(name('exported')), same(['192.0.2.10']), 'the exported service (only from the cluster with the export)');
    expect(await f.answer(name('private'))).toBe('NXDOMAIN');
    const warning = f.logs.find((l) => l.cluster === 'plain' && l.level === 40 && /ServiceExport is not served/.test(l.msg));
    expect(warning).toBeDefined();
    expect(f.health('mcs')).toBe('live');
    expect(withCrd.requestLog.some((r) => r.kind === 'ServiceExport' && r.verb === 'watch')).toBe(true);

    // Exporting later (watched) and unexporting.
    withCrd.apply(serviceExport('shop', 'private'));
    await eventually(() => f.answer(name('private')), same(['192.0.2.11']), 'a newly exported service');
    withCrd.remove('ServiceExport', 'shop', 'private');
    await eventually(() => f.answer(name('private')), same('NXDOMAIN'), 'an unexported service gone');

    // The CRD gets installed in the other cluster: noticed on the next check.
    noCrd.setKindEnabled('ServiceExport', true);
    noCrd.apply(serviceExport('shop', 'exported'));
    await eventually(() => f.answer(name('exported')), same(['192.0.2.10', '198.51.100.10']), 'exports of the cluster that got the CRD');
    expect(f.logs.some((l) => l.cluster === 'plain' && /ServiceExport is served now/.test(l.msg))).toBe(true);
    expect(f.health('plain')).toBe('live');
  });
});
