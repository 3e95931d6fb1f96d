// Turns the shared benchmark data (BENCH_DIR/data.json: 1,000 services x 3 addresses, SRV for even
// ones) into a fedns configuration and one member cluster's manifests, so fedns serves the same
// answers Knot serves from zones/fed.example.com.zone.
// usage: node benchmarks/bench-data.mjs BENCH_DIR PORT
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, port] = process.argv.slice(2);
const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
const out = join(dir, 'fedns');
mkdirSync(join(out, 'cluster'), { recursive: true });
const items = [];
for (const s of data.services) {
  // svcN.ns1.fed.svc.fed.example.com.
  const [name, namespace] = s.name.split('.');
  const ports = s.srv ? [{ name: 'http', port: s.srv.port, protocol: 'TCP' }] : [{ port: 8080, protocol: 'TCP' }];
  items.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'LoadBalancer', ports },
    status: { loadBalancer: { ingress: s.a.map((ip) => ({ ip })) } },
  });
  items.push({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-x`, namespace, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
  });
}
writeFileSync(join(out, 'cluster', 'services.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
const soa = data.soa;
writeFileSync(
  join(out, 'fedns.yaml'),
  `domain: ${data.zone}
federation: fed
listen: [127.0.0.1:${port}]
ttl: { default: 30 }
soa: { mname: ${soa.mname}, rname: ${soa.rname}, ttl: ${soa.ttl}, refresh: ${soa.refresh}, retry: ${soa.retry}, expire: ${soa.expire}, minimum: ${soa.minimum} }
nameservers: [{ name: ${data.ns[0]}, addresses: [${data.glue[data.ns[0]][0]}] }]
ops: { listen: null }
log: { level: warn }
clusters:
  - name: bench
    region: r1
    zones: [z1]
    source: { type: files, path: cluster }
    clientNetworks: [127.0.0.2/32]   # throughput.sh's policy mode sends from here (dnsperf -a)
`,
);
console.log(join(out, 'fedns.yaml'));
