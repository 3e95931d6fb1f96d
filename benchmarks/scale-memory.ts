// Where the memory of the scale benchmark's federation goes (a diagnostic beside
// benchmarks/scale.ts, which measures the whole process against Knot): the same clusters'
// objects, converted as the kube source converts them, held in process; the live heap (after a
// full collection) they take, then what the zone built from them adds.
// usage: node --expose-gc dist/benchmarks/scale-memory.js [clusters=20] [services=5000]
// SNAPSHOT=file.heapsnapshot also writes a heap snapshot at the end (open it in Chrome DevTools).
import { slimEndpointSlice, slimService } from '../src/cluster/objects.js';
import { Federation } from '../src/federation/federation.js';
import { testFederationSettings } from '../test/support/federation.js';

const CLUSTERS = Number(process.argv[2] ?? 20);
const SERVICES = Number(process.argv[3] ?? 5000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 1048576;
}
const h0 = heap();
const fed = new Federation(testFederationSettings());
for (let c = 0; c < CLUSTERS; c++) {
  const cl = fed.addCluster({ name: `c${c}`, region: `r${c % 4}`, zones: [], addressMode: 'endpoints', gracePeriod: 300 });
  for (let i = 0; i < SERVICES; i++) {
    cl.upsert('Service', slimService({ metadata: { name: `svc${i}`, namespace: `ns${i % 20}` }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } }));
    cl.upsert(
      'EndpointSlice',
      slimEndpointSlice({
        metadata: { name: `svc${i}-x`, namespace: `ns${i % 20}`, labels: { 'kubernetes.io/service-name': `svc${i}` } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.${c}.${i >> 6}.${((i & 63) << 2) + k}`], conditions: { ready: true }, zone: `z${k}` })),
      }),
    );
  }
  cl.markLive();
  cl.flush();
}
const h1 = heap();
const t = performance.now();
fed.rebuild();
const buildMs = performance.now() - t;
const h2 = heap();
console.log(`${CLUSTERS} x ${SERVICES}: clusters' objects ${(h1 - h0).toFixed(0)} MiB; zone (${fed.snapshot.recordCount} records, built in ${buildMs.toFixed(0)} ms) ${(h2 - h1).toFixed(0)} MiB; heap ${h2.toFixed(0)} MiB; rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);

if (process.env.SNAPSHOT) {
  const v8 = await import('node:v8');
  console.log(v8.writeHeapSnapshot(process.env.SNAPSHOT));
}
fed.close();
