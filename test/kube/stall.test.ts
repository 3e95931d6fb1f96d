// Whole-zone work does not hold up queries: a client asking without pause while a federation of
// four clusters (a zone of about 200,000 records) syncs, while every cluster lists everything
// again, while a reload rebuilds every service and while the zone is transferred never waits
// long for an answer. fedns works on the whole zone a slice at a time; one slice is 5 ms,
// and the bound here is wide because the machine running the tests is shared and busy.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { RRType } from '../../src/wire/constants.js';
import { FakeApiServer, type KubeObject } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, QUICK_TIMING, useKubeTiming, type Running } from '../support/kube-harness.js';
import { StallProbe, type StallFigures } from '../support/stall-probe.js';
import { tcpTransfer } from '../transfer/harness.js';

useKubeTiming({ ...QUICK_TIMING, staleAfterMs: 10_000, idleLimitMs: 20_000 });

const h = kubeHarness('fedns-kube-stall-');
const eventually = eventuallyWith({ timeoutMs: 60_000, pollMs: 50 });

const CLUSTERS = 4;
const SERVICES = 4000;
/** Longest wait for an answer allowed (fedns's own bound is one slice, 5 ms, plus GC). */
const LIMIT_MS = 1000;

function objects(c: number, i: number): KubeObject[] {
  const ns = `ns${i % 10}`;
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: `svc${i}`, namespace: ns }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `svc${i}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': `svc${i}` } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.${c}.${i >> 6}.${((i & 63) << 2) + k}`], conditions: { ready: true }, zone: `z${k}` })),
    },
  ];
}

describe(`a client asking without pause (${CLUSTERS} clusters x ${SERVICES} services)`, () => {
  const apis: FakeApiServer[] = [];
  let f: Running;
  let probe: StallProbe;
  let raw: Record<string, unknown>;
  const last = `svc${SERVICES - 1}.ns${(SERVICES - 1) % 10}.fed.svc.example.com.`;
  const figures: Record<string, StallFigures> = {};

  beforeAll(async () => {
    for (let c = 0; c < CLUSTERS; c++) {
      const api = await FakeApiServer.start({ bookmarkIntervalMs: 5000 });
      for (let i = 0; i < SERVICES; i++) for (const o of objects(c, i)) api.apply(o);
      apis.push(api);
    }
    raw = {
      listen: ['127.0.0.1:0'],
      ops: { listen: null },
      addressMode: 'endpoints',
      transfer: { allow: ['127.0.0.1'] },
      clusters: apis.map((a, c) => ({ name: `c${c}`, region: `r${c % 2}`, source: { type: 'kube', kubeconfig: h.writeKubeconfig(`c${c}`, a.kubeconfig()) } })),
    };
    // The probe asks from the moment fedns listens, before any cluster has synced.
    const started = h.startRaw(raw);
    f = await started;
    probe = await StallProbe.start(f.fedns.dns.addresses()[0].port, 'example.com.');
    await eventually(async () => (await f.ask(last)).answers.length, (n) => n === CLUSTERS * 3, 'every cluster answering for the last service');
    // Every service's records: short and global names with every endpoint, a regional and a
    // zonal name per region and zone (every endpoint once in each), two SRV names; and the apex.
    await eventually(() => f.fedns.federation.snapshot.recordCount, (n) => n === SERVICES * (12 * CLUSTERS + 2) + 3, 'every service in the zone');
    figures.sync = await probe.take();
  }, 120_000);

  afterAll(async () => {
    await probe?.stop();
    await f?.stop();
    await Promise.all(apis.map((a) => a.stop()));
    console.log(`longest waits: ${Object.entries(figures).map(([k, v]) => `${k} ${v.maxMs.toFixed(0)} ms (${v.answers} answers)`).join(', ')}`);
  });

  const bounded = (what: string, x: StallFigures) => {
    expect(x.timeouts, `${what}: unanswered queries`).toBe(0);
    expect(x.answers, `${what}: the client kept asking`).toBeGreaterThan(0);
    expect(x.maxMs, `${what}: longest wait`).toBeLessThan(LIMIT_MS);
  };

  it('during the initial sync', () => {
    expect(f.fedns.federation.snapshot.recordCount).toBe(200_003);
    bounded('initial sync', figures.sync);
  });

  it('during a re-list of every cluster', async () => {
    await probe.take();
    const firstPages = () => apis.map((a) => a.requestLog.filter((r) => r.verb === 'list' && !r.query.continue).length);
    const before = firstPages();
    for (const a of apis) {
      a.expireNewWatches({ times: 2 });
      a.endOpenWatches();
    }
    await eventually(firstPages, (n) => n.every((x, i) => x >= before[i] + 2), 'every cluster listed again');
    await eventually(() => [...f.fedns.federation.clusters.values()].every((c) => c.health === 'live'), (ok) => ok, 'every cluster live');
    bounded('re-list', (figures.relist = await probe.take()));
  }, 90_000);

  it('during a reload that rebuilds every service', async () => {
    await probe.take();
    const ttl = async () => (await f.ask(last, RRType.A)).answers[0]?.ttl;
    expect(await ttl()).toBe(30);
    const dir = h.dir();
    await f.fedns.reload(buildConfig({ ...raw, ttl: { default: 31 } }, join(dir, 'fedns.yaml'), dir));
    await eventually(ttl, (t) => t === 31, 'the new TTL served for the last service');
    bounded('reload', (figures.reload = await probe.take()));
  }, 90_000);

  it('during a zone transfer of the whole zone', async () => {
    await probe.take();
    const r = await tcpTransfer(f.fedns.dns.addresses()[0].port, 'AXFR');
    expect(r.records.length).toBe(f.fedns.federation.snapshot.recordCount + 1);
    bounded('AXFR', (figures.axfr = await probe.take()));
  }, 90_000);
});
