// clientNetworks: auto against a fake API server: the member's Node objects are listed and
// watched, their pod CIDRs and InternalIPs become the cluster's learnedNetworks and follow every
// change; hostile values are ignored and counted, the cluster's contribution is bounded, a
// failing node watch is retried at the pace of the others without making the cluster stale, and
// without auto no node watch runs at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeSourceOptions } from '../../src/cluster/kube.js';
import { MAX_LEARNED_NETWORKS } from '../../src/cluster/nodes.js';
import { MAX_NODE_NETWORKS } from '../../src/cluster/objects.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, node, publish, same, sleep, useKubeTiming, type Running } from '../support/kube-harness.js';

const TIMING: KubeSourceOptions = {
  idleLimitMs: 3000,
  restartIntervalMs: 250,
  staleAfterMs: 1500,
  requestTimeoutMs: 2000,
  watchTimeoutSeconds: 30,
  stormRestarts: 50,
  stormWindowMs: 2000,
  missingKindRecheckMs: 500,
};
useKubeTiming(TIMING);

const { startFedns } = kubeHarness('fedns-kube-nodes-');
const eventually = eventuallyWith({ timeoutMs: 5000, pollMs: 10 });
/** A node change is learned within this (the watch delivers it at once; the rest is slack for a loaded machine). */
const LEARNED_WITHIN_MS = 3000;
const WEB = 'web.shop.fed.example.com.';

const learned = (f: Running, cluster = 'east') => [...(f.fedns.federation.clusters.get(cluster)?.learnedNetworks ?? [])];
const metric = async (f: Running, re: RegExp) => re.exec(await f.fedns.metrics.text())?.[1];

describe('kube source: clientNetworks: auto', () => {
  let east: FakeApiServer;
  let f: Running;

  beforeAll(async () => {
    east = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    publish(east, 'shop', 'web', '192.0.2.1');
    east.apply(node('n1', ['10.244.1.0/24', 'fd00:10:244:1::/64'], ['10.0.0.1'], { 'topology.kubernetes.io/region': 'eu-west' }));
    f = await startFedns([{ name: 'east', server: east, clientNetworks: 'auto' }]);
    await eventually(() => f.answer(WEB), same(['192.0.2.1']), 'web answering');
  });

  afterAll(async () => {
    await f?.stop();
    await east?.stop();
  });

  it('lists and watches the nodes; their pod CIDRs and InternalIPs are learned; the same watch gives the region', async () => {
    await eventually(() => learned(f), (l) => l.length === 3, 'n1 learned');
    expect(learned(f)).toEqual(['10.0.0.1/32', '10.244.1.0/24', 'fd00:10:244:1::/64']);
    await east.waitForWatches('Node', 1);
    const watch = east.requestLog.find((r) => r.verb === 'watch' && r.kind === 'Node')!;
    expect(watch.query).toMatchObject({ watch: 'true', allowWatchBookmarks: 'true' });
    // The region comes from the listed nodes: no second, one-off node list.
    await eventually(() => f.answer('web.shop.fed.svc.eu-west.example.com.'), same(['192.0.2.1']), 'region learned');
    expect(east.requestCount({ kind: 'Node', verb: 'list' })).toBe(1);
    expect(await metric(f, /^fedns_cluster_learned_networks\{cluster="east"\} (\d+)$/m)).toBe('3');
    expect(await metric(f, /^fedns_cluster_node_watch_up\{cluster="east"\} (\d+)$/m)).toBe('1');
  });

  it('a node added, changed and deleted is followed within a bounded time', async () => {
    const events: string[][] = [];
    const onNets = (c: { name: string; learnedNetworks: readonly string[] }) => void (c.name === 'east' && events.push([...c.learnedNetworks]));
    f.fedns.federation.on('clientNetworks', onNets);
    try {
      const step = async (what: string, change: () => void, want: string[]) => {
        const t0 = Date.now();
        change();
        await eventually(() => learned(f), (l) => JSON.stringify(l) === JSON.stringify(want), what, LEARNED_WITHIN_MS);
        return Date.now() - t0;
      };
      await step('n2 added', () => east.apply(node('n2', ['10.244.2.0/24'], ['10.0.0.2'])), ['10.0.0.1/32', '10.0.0.2/32', '10.244.1.0/24', '10.244.2.0/24', 'fd00:10:244:1::/64']);
      await step('n2 changed', () => east.apply(node('n2', ['10.244.2.0/24'], ['10.0.0.22'])), ['10.0.0.1/32', '10.0.0.22/32', '10.244.1.0/24', '10.244.2.0/24', 'fd00:10:244:1::/64']);
      await step('n2 deleted', () => east.remove('Node', undefined, 'n2'), ['10.0.0.1/32', '10.244.1.0/24', 'fd00:10:244:1::/64']);
      // A node update that changes none of its networks (its conditions, say) is no change.
      const before = events.length;
      east.apply({ ...node('n1', ['10.244.1.0/24', 'fd00:10:244:1::/64'], ['10.0.0.1'], { 'topology.kubernetes.io/region': 'eu-west' }), status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: [{ type: 'Ready', status: 'False' }] } });
      await sleep(300);
      expect(events.length).toBe(before);
      expect(events.length).toBe(3);
    } finally {
      f.fedns.federation.off('clientNetworks', onNets);
    }
  });

  it('an invalid pod CIDR or address is ignored and counted; the node\'s valid values are learned', async () => {
    const ignored = () => f.fedns.federation.ignored.count('node network');
    const was = ignored();
    east.apply(node('bad', ['10.244.3.0/40'], ['10.0.0.3', 'garbage']));
    await eventually(() => learned(f), (l) => l.includes('10.0.0.3/32'), 'the valid address of bad learned');
    expect(learned(f).some((n) => n.startsWith('10.244.3.'))).toBe(false);
    expect(ignored() - was).toBe(2);
    expect(await metric(f, /^fedns_ignored_objects_total\{reason="node network"\} (\d+)$/m)).toBe(String(ignored()));
    east.remove('Node', undefined, 'bad');
    await eventually(() => learned(f), (l) => !l.includes('10.0.0.3/32'), 'bad gone');
  });

  it(`the cluster contributes at most ${MAX_LEARNED_NETWORKS} networks; past it, the rest are ignored and counted`, async () => {
    const nodes = Math.ceil((MAX_LEARNED_NETWORKS + 200) / MAX_NODE_NETWORKS);
    const names: string[] = [];
    for (let i = 0; i < nodes; i++) {
      const ips = Array.from({ length: MAX_NODE_NETWORKS }, (_, j) => `10.${100 + (i >> 8)}.${i & 255}.${j + 1}`);
      names.push(`big-${i}`);
      east.apply(node(`big-${i}`, [], ips));
    }
    await eventually(() => learned(f).length, (n) => n === MAX_LEARNED_NETWORKS, 'capped at the limit', 10_000);
    expect(f.fedns.federation.ignored.count('network limit')).toBeGreaterThanOrEqual(1);
    for (const n of names) east.remove('Node', undefined, n);
    await eventually(() => learned(f), (l) => l.length === 3, 'back to n1 alone', 10_000);
  }, 30_000);

  it('a failing node watch is retried at the pace of the others; the cluster stays live and the networks stay; visible in the metrics', async () => {
    const fault = east.failWatch(500, { kind: 'Node' });
    east.closeAllWatches('Node');
    await eventually(() => metric(f, /^fedns_cluster_node_watch_up\{cluster="east"\} (\d+)$/m), (v) => v === '0', 'node watch reported down');
    const from = east.requestCount({ kind: 'Node' });
    await sleep(2000);
    const n = east.requestCount({ kind: 'Node' }) - from;
    // 2 s at one restart per 250 ms (plus up to 25 % jitter): about 7-8; without pacing, hundreds.
    expect(n, 'node requests in 2 s of failures').toBeLessThanOrEqual(10);
    expect(n, 'retried throughout').toBeGreaterThanOrEqual(4);
    expect(f.health('east')).toBe('live');
    expect(f.history.filter((h) => h.cluster === 'east' && h.health !== 'live')).toEqual([]);
    expect(learned(f)).toEqual(['10.0.0.1/32', '10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(f.fedns.federation.clusters.get('east')!.nodeWatchProblem).toMatch(/500/);
    expect(f.logs.some((l) => l.msg.startsWith('node watch failing'))).toBe(true);
    expect(await f.answer(WEB)).toEqual(['192.0.2.1']);
    fault.clear();
    // Resumed from its resourceVersion: what changed meanwhile is replayed.
    east.apply(node('n4', ['10.244.4.0/24']));
    await eventually(() => learned(f), (l) => l.includes('10.244.4.0/24'), 'n4 learned after the watch works again');
    await eventually(() => metric(f, /^fedns_cluster_node_watch_up\{cluster="east"\} (\d+)$/m), (v) => v === '1', 'node watch up again');
    east.remove('Node', undefined, 'n4');
    await eventually(() => learned(f), (l) => !l.includes('10.244.4.0/24'), 'n4 gone');
  }, 20_000);

  it('a reload away from auto stops the node watch and clears the networks; back to auto starts it again', async () => {
    await f.setClusters([{ name: 'east', server: east }]);
    expect(learned(f)).toEqual([]);
    await eventually(() => east.openWatches('Node'), (n) => n === 0, 'node watch closed');
    expect(await metric(f, /^fedns_cluster_node_watch_up\{cluster="east"\} (\d+)$/m)).toBeUndefined();
    const nodeRequests = east.requestCount({ kind: 'Node' });
    east.apply(node('n5', ['10.244.5.0/24']));
    await sleep(300);
    expect(learned(f)).toEqual([]);
    expect(east.requestCount({ kind: 'Node' })).toBe(nodeRequests);
    const serviceLists = east.requestCount({ kind: 'Service', verb: 'list' });
    await f.setClusters([{ name: 'east', server: east, clientNetworks: 'auto' }]);
    await eventually(() => learned(f), (l) => l.includes('10.244.5.0/24') && l.includes('10.244.1.0/24'), 'learned again');
    // In place: the services were not listed again.
    expect(east.requestCount({ kind: 'Service', verb: 'list' })).toBe(serviceLists);
    expect(f.health('east')).toBe('live');
  });
});

describe('kube source: without clientNetworks: auto', () => {
  it('makes no node request when the region is configured (no RBAC for nodes needed), and only the one-off list without', async () => {
    const [a, b] = await Promise.all([FakeApiServer.start(), FakeApiServer.start()]);
    let f: Running | undefined;
    try {
      for (const s of [a, b]) {
        publish(s, 'shop', 'web', s === a ? '192.0.2.1' : '198.51.100.1');
        s.apply(node('n1', ['10.244.1.0/24'], ['10.0.0.1'], { 'topology.kubernetes.io/region': 'eu-west' }));
      }
      f = await startFedns([
        { name: 'a', server: a, region: 'us-east' },
        { name: 'b', server: b, clientNetworks: ['10.8.0.0/14'] },
      ]);
      await eventually(() => f!.answer(WEB), same(['192.0.2.1', '198.51.100.1']), 'both answering');
      await eventually(() => f!.answer('web.shop.fed.svc.eu-west.example.com.'), same(['198.51.100.1']), 'b region learned');
      await sleep(300);
      expect(a.requestCount({ kind: 'Node' })).toBe(0);
      expect(b.requestCount({ kind: 'Node' })).toBe(1);
      expect(b.requestCount({ kind: 'Node', verb: 'watch' })).toBe(0);
      expect(learned(f, 'a')).toEqual([]);
      expect(learned(f, 'b')).toEqual([]);
    } finally {
      await f?.stop();
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
