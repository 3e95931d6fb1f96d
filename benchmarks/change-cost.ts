// Cost of one endpoint change as the zone grows: the same change (one EndpointSlice of one
// service flipping an endpoint's readiness) applied to a federation of 1,000 and of 100,000
// services, from ClusterState.upsert to the new snapshot being published. The ratio should stay
// near 1: a change's cost must not grow with the zone.
// usage: node dist/benchmarks/change-cost.js [changes=2000]
import type { SlimEndpointSlice, SlimService } from '../src/cluster/objects.js';
import { Federation } from '../src/federation/federation.js';
import { seed, testFederationSettings } from '../test/support/federation.js';

const CHANGES = Number(process.argv[2] ?? 2000);

function build(services: number): { fed: Federation; flip: (i: number) => void } {
  const fed = new Federation(testFederationSettings());
  const c = fed.addCluster({ name: 'c1', region: 'r1', zones: ['z1', 'z2'], addressMode: 'endpoints', gracePeriod: 300 });
  const slice = (i: number, readyFirst: boolean): SlimEndpointSlice => ({
    namespace: `ns${i % 50}`,
    name: `svc${i}-abc`,
    service: `svc${i}`,
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    endpoints: [0, 1, 2].map((k) => ({
      addresses: [`10.${(i >> 8) & 255}.${i & 255}.${k + 1}`],
      ready: k === 0 ? readyFirst : true,
      zone: k === 2 ? 'z2' : 'z1',
    })),
  });
  const svc = (i: number): SlimService => ({
    namespace: `ns${i % 50}`,
    name: `svc${i}`,
    headless: false,
    ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
    lbAddresses: [],
    lbHostnames: [],
    labels: {},
  });
  seed(c, Array.from({ length: services }, (_, i) => [svc(i), slice(i, true)]).flat());
  fed.rebuild();
  // Each service's own readiness flag, so every flip really changes that service.
  const ready = new Uint8Array(services).fill(1);
  return {
    fed,
    flip: (i: number) => {
      ready[i] ^= 1;
      c.upsert('EndpointSlice', slice(i, ready[i] === 1));
      c.flush();
      fed.rebuild();
    },
  };
}

function measure(services: number): { median: number; p99: number; records: number; buildMs: number } {
  const t0 = performance.now();
  const { fed, flip } = build(services);
  const buildMs = performance.now() - t0;
  for (let i = 0; i < 200; i++) flip(i % services); // warm-up
  const times: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const i = (k * 7919) % services;
    const s = performance.now();
    flip(i);
    times.push((performance.now() - s) * 1000);
  }
  times.sort((a, b) => a - b);
  const out = { median: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)], records: fed.snapshot.recordCount, buildMs };
  fed.close();
  return out;
}

const small = measure(1_000);
const large = measure(100_000);
const fmt = (n: number) => n.toFixed(1);
console.log(`one endpoint change, ${CHANGES} changes each (upsert -> published snapshot):`);
console.log(`   1,000 services (${small.records} records, built in ${fmt(small.buildMs)} ms): median ${fmt(small.median)} us, p99 ${fmt(small.p99)} us`);
console.log(` 100,000 services (${large.records} records, built in ${fmt(large.buildMs)} ms): median ${fmt(large.median)} us, p99 ${fmt(large.p99)} us`);
console.log(`ratio 100k/1k: median ${(large.median / small.median).toFixed(2)}, p99 ${(large.p99 / small.p99).toFixed(2)} (near 1 = cost independent of zone size)`);
