// Cost of one endpoint change as the zone grows: the same change (one EndpointSlice of one
// service flipping an endpoint's readiness) applied to a federation of 1,000 and of 100,000
// services, from ClusterState.upsert to the new snapshot being published, the two federations
// taking turns. The ratio should stay near 1: a change's cost must not grow with the zone.
// usage: node dist/benchmarks/change-cost.js [changes=2000]
import { packSlice, type SlimEndpointSlice, type SlimService } from '../src/cluster/objects.js';
import { Federation } from '../src/federation/federation.js';
import { seed, testFederationSettings } from '../test/support/federation.js';

const CHANGES = Number(process.argv[2] ?? 2000);

function build(services: number): { fed: Federation; flip: (i: number) => void } {
  const fed = new Federation(testFederationSettings());
  const c = fed.addCluster({ name: 'c1', region: 'r1', zones: ['z1', 'z2'], addressMode: 'endpoints', gracePeriod: 300 });
  const slice = (i: number, readyFirst: boolean): SlimEndpointSlice =>
    packSlice({
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

interface Built {
  fed: Federation;
  flip: (i: number) => void;
  services: number;
  buildMs: number;
  times: number[];
}

function prepare(services: number): Built {
  const t0 = performance.now();
  const { fed, flip } = build(services);
  const buildMs = performance.now() - t0;
  for (let i = 0; i < 200; i++) flip(i % services); // warm-up
  return { fed, flip, services, buildMs, times: [] };
}

const small = prepare(1_000);
const large = prepare(100_000);
// The two federations take turns, change by change, so that both see the same machine: on a
// busy one, conditions drift over a run and separate runs of each would measure the drift.
for (let k = 0; k < CHANGES; k++) {
  for (const b of [small, large]) {
    const i = (k * 7919) % b.services;
    const s = performance.now();
    b.flip(i);
    b.times.push((performance.now() - s) * 1000);
  }
}
const figures = (b: Built) => {
  const t = [...b.times].sort((x, y) => x - y);
  return { median: t[Math.floor(t.length / 2)], p99: t[Math.floor(t.length * 0.99)], records: b.fed.snapshot.recordCount, buildMs: b.buildMs };
};
const [fs, fl] = [figures(small), figures(large)];
small.fed.close();
large.fed.close();
const fmt = (n: number) => n.toFixed(1);
console.log(`one endpoint change, ${CHANGES} changes each, the two federations taking turns (upsert -> published snapshot):`);
console.log(`   1,000 services (${fs.records} records, built in ${fmt(fs.buildMs)} ms): median ${fmt(fs.median)} us, p99 ${fmt(fs.p99)} us`);
console.log(` 100,000 services (${fl.records} records, built in ${fmt(fl.buildMs)} ms): median ${fmt(fl.median)} us, p99 ${fmt(fl.p99)} us`);
console.log(`ratio 100k/1k: median ${(fl.median / fs.median).toFixed(2)}, p99 ${(fl.p99 / fs.p99).toFixed(2)} (near 1 = cost independent of zone size)`);
