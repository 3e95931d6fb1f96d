/**
 * Conformance of the clusterset zone to the Multi-Cluster Services DNS specification
 * (kubernetes/enhancements keps/sig-multicluster/1645-multi-cluster-services-api/specification.md,
 * schema 1.0.0): one row per record kind and rule of its text, the forbidden names included,
 * each asked of the running server (`fedns serve` on a copy of the demo, plus a few services
 * written for the rules the demo does not show) with dig.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCopy, runCli } from '../support/demo.js';
import { dig, summarise, type DigResult } from '../support/dig.js';
import { startFedns, testListen, type FednsProcess } from '../support/fedns.js';
import { requirePeer } from '../support/peers.js';

const hasDig = requirePeer('dig');
const Z = 'clusterset.local.';

/** Services beside the demo's, in cluster alpha (and bravo), for rules the demo does not show. */
/** shop/split as one member exports it (list items): its load balancer, one ready endpoint, and the ClusterSetIP its ServiceImport holds. */
function splitExport(lb: string, endpoint: string, clusterSetIp: string): string {
  return `  - { apiVersion: v1, kind: Service, metadata: { name: split, namespace: shop }, spec: { type: LoadBalancer, ports: [{ name: http, port: 80 }] },
      status: { loadBalancer: { ingress: [{ ip: ${lb} }] } } }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: { name: split-1, namespace: shop, labels: { kubernetes.io/service-name: split } }
    addressType: IPv4
    endpoints: [{ addresses: [${endpoint}], conditions: { ready: true } }]
  - { apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport, metadata: { name: split, namespace: shop } }
  - { apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, metadata: { name: split, namespace: shop }, spec: { ips: [${clusterSetIp}] } }
`;
}

const EXTRA_ALPHA = `apiVersion: v1
kind: List
items:
  # dual-stack ClusterSetIP, one named and one unnamed port
  - { apiVersion: v1, kind: Service, metadata: { name: dual, namespace: shop },
      spec: { ipFamilies: [IPv4, IPv6], ports: [{ name: https, port: 443, protocol: TCP }, { port: 8080, protocol: TCP }] } }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: { name: dual-1, namespace: shop, labels: { kubernetes.io/service-name: dual } }
    addressType: IPv4
    endpoints: [{ addresses: [10.1.7.1], conditions: { ready: true } }]
  - { apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport, metadata: { name: dual, namespace: shop } }
  - { apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, metadata: { name: dual, namespace: shop },
      spec: { type: ClusterSetIP, ips: [10.42.0.30, "fd00:42::30"] } }
  # headless, exported, without a ready endpoint
  - { apiVersion: v1, kind: Service, metadata: { name: empty, namespace: data }, spec: { clusterIP: None, ports: [{ name: pg, port: 5432 }] } }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: { name: empty-1, namespace: data, labels: { kubernetes.io/service-name: empty } }
    addressType: IPv4
    endpoints: [{ addresses: [10.1.8.1], conditions: { ready: false } }]
  - { apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport, metadata: { name: empty, namespace: data } }
  # ClusterSetIPs allocated per cluster: they differ between alpha and bravo
${splitExport('192.0.2.40', '10.1.6.1', '10.42.0.40')}`;
const EXTRA_BRAVO = `apiVersion: v1
kind: List
items:
  # split exported by bravo too, with a ClusterSetIP of its own
${splitExport('198.51.100.40', '10.2.6.1', '10.42.0.41')}`;

interface Row {
  /** Section of the specification and what it says. */
  rule: string;
  name: string;
  type: string;
  check(r: DigResult): void;
}

const answers = (r: DigResult, type: string) => r.answer.filter((x) => x.type === type).map((x) => x.data).sort();

function noRecords(r: DigResult, status: 'NOERROR' | 'NXDOMAIN'): void {
  expect(r.status).toBe(status);
  expect(r.flags.has('aa')).toBe(true);
  expect(r.answer).toEqual([]);
  expect(r.authority.map((x) => x.type)).toEqual(['SOA']);
  expect(r.authority[0].name).toBe(Z);
}

const ROWS: Row[] = [
  {
    rule: '2.2 dns-version.<zone> TXT gives the schema version, 1.0.0 (section 1)',
    name: `dns-version.${Z}`,
    type: 'TXT',
    check: (r) => expect(answers(r, 'TXT')).toEqual(['"1.0.0"']),
  },
  {
    rule: 'zone apex: fedns is authoritative (SOA of the clusterset zone itself)',
    name: Z,
    type: 'SOA',
    check: (r) => {
      expect(r.flags.has('aa')).toBe(true);
      expect(r.answer.map((x) => `${x.name} ${x.type}`)).toEqual([`${Z} SOA`]);
    },
  },
  {
    rule: '2.3.1 <svc>.<ns>.svc.<zone> A is the ClusterSetIP (ServiceImport spec.ips), not the clusters\' addresses',
    name: `web.shop.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['10.42.0.20']),
  },
  {
    rule: '2.3.1 dual-stack: an A record for the IPv4 ClusterSetIP',
    name: `dual.shop.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['10.42.0.30']),
  },
  {
    rule: '2.3.1 dual-stack: an AAAA record for the IPv6 ClusterSetIP',
    name: `dual.shop.svc.${Z}`,
    type: 'AAAA',
    check: (r) => expect(answers(r, 'AAAA')).toEqual(['fd00:42::30']),
  },
  {
    rule: 'documented choice: without a ServiceImport ClusterSetIP, the exporting clusters\' healthy addresses by the address mode',
    name: `nginx.default.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['192.0.2.10', '198.51.100.10']),
  },
  {
    rule: 'documented choice: ClusterSetIPs that differ between clusters (per-cluster allocation) are not served',
    name: `split.shop.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['192.0.2.40', '198.51.100.40']),
  },
  {
    rule: '2.3.2 SRV _<port>._<proto>.<svc>.<ns>.svc.<zone> per named port, target the service name; Additional may carry its A',
    name: `_https._tcp.web.shop.svc.${Z}`,
    type: 'SRV',
    check: (r) => {
      expect(answers(r, 'SRV')).toEqual([`0 100 443 web.shop.svc.${Z}`]);
      expect(r.additional.filter((x) => x.type === 'A').map((x) => `${x.name} ${x.data}`)).toEqual([`web.shop.svc.${Z} 10.42.0.20`]);
    },
  },
  {
    rule: '2.3.4 MUST NOT: <clusterid>.<svc>.<ns>.svc.<zone> for a ClusterSetIP service',
    name: `alpha.web.shop.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NXDOMAIN'),
  },
  {
    rule: '2.3.4 MUST NOT: no per-cluster name for a ClusterSetIP service served from the clusters\' addresses either',
    name: `bravo.nginx.default.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NXDOMAIN'),
  },
  {
    rule: '2.4.1 headless <svc>.<ns>.svc.<zone> A: every ready endpoint of every exporting cluster',
    name: `db.data.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['192.0.2.101', '192.0.2.102', '203.0.113.101', '203.0.113.102']),
  },
  {
    rule: '2.4.1 <hostname>.<clusterid>.<svc>.<ns>.svc.<zone>: the endpoint hostname, cluster ID = configured name without ClusterProperty',
    name: `db-0.alpha.db.data.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['192.0.2.101']),
  },
  {
    rule: '2.1 cluster ID: the id.k8s.io ClusterProperty (KEP-2149) when the cluster has one',
    name: `db-0.charlie-eu.db.data.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['203.0.113.101']),
  },
  {
    rule: '2.1 cluster ID: the configured name is not used when the ClusterProperty gives the ID',
    name: `db-0.charlie.db.data.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NXDOMAIN'),
  },
  {
    rule: '2.1 hostname: without an endpoint hostname, a unique system-assigned identifier (the address, "-" separated)',
    name: `203-0-113-102.charlie-eu.db.data.svc.${Z}`,
    type: 'A',
    check: (r) => expect(answers(r, 'A')).toEqual(['203.0.113.102']),
  },
  {
    rule: '2.4.1 headless without a ready endpoint: NXDOMAIN',
    name: `empty.data.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NXDOMAIN'),
  },
  {
    rule: '2.4.2 SRV: N ready endpoints x M named ports, each to <hostname>.<clusterid>.<svc>..., the union of every cluster',
    name: `_postgres._tcp.db.data.svc.${Z}`,
    type: 'SRV',
    check: (r) =>
      expect(answers(r, 'SRV').map((d) => d.split(' ').slice(2).join(' '))).toEqual(
        [
          `5432 203-0-113-102.charlie-eu.db.data.svc.${Z}`,
          `5432 db-0.alpha.db.data.svc.${Z}`,
          `5432 db-0.charlie-eu.db.data.svc.${Z}`,
          `5432 db-1.alpha.db.data.svc.${Z}`,
        ].sort(),
      ),
  },
  {
    rule: '2.4.4 MUST NOT: <clusterid>.<svc>.<ns>.svc.<zone> has no record for a headless service (an empty non-terminal: NODATA)',
    name: `alpha.db.data.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NOERROR'),
  },
  {
    rule: '2.4.4 MUST NOT: no record of any type there',
    name: `charlie-eu.db.data.svc.${Z}`,
    type: 'ANY',
    check: (r) => noRecords(r, 'NOERROR'),
  },
  {
    rule: '2.3.3, 2.4.3 PTR not required: fedns is not authoritative for reverse names',
    name: '101.2.0.192.in-addr.arpa.',
    type: 'PTR',
    check: (r) => expect(r.status).toBe('REFUSED'),
  },
  {
    rule: '2.3.1 exported services only: a Service without a ServiceExport has no clusterset name',
    name: `billing.finance.svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NXDOMAIN'),
  },
  {
    rule: 'names above services are empty non-terminals (NODATA, RFC 8020)',
    name: `svc.${Z}`,
    type: 'A',
    check: (r) => noRecords(r, 'NOERROR'),
  },
];

describe.skipIf(!hasDig)('clusterset zone: the Multi-Cluster Services DNS specification, rule by rule', () => {
  let fedns: FednsProcess;
  let copy: ReturnType<typeof demoCopy>;

  beforeAll(async () => {
    copy = demoCopy(testListen);
    writeFileSync(join(copy.dir, 'demo', 'alpha', 'zz-conformance.yaml'), EXTRA_ALPHA);
    writeFileSync(join(copy.dir, 'demo', 'bravo', 'zz-conformance.yaml'), EXTRA_BRAVO);
    fedns = await startFedns({ config: copy.config });
  });

  afterAll(async () => {
    await fedns?.stop();
    copy?.cleanup();
  });

  const ask = (name: string, type: string, ...opts: string[]) => dig(['@127.0.0.1', '-p', String(fedns.port), '+norec', ...opts, name, type]);

  it.each(ROWS.map((r) => [r.rule, r] as const))('%s', async (_rule, row) => {
    for (const transport of ['+notcp', '+tcp']) {
      const r = await ask(row.name, row.type, transport);
      try {
        row.check(r);
      } catch (e) {
        throw new Error(`${row.name} ${row.type} ${transport}: ${summarise(r)}\n${(e as Error).message}`);
      }
    }
  });

  it('2.3.2 unnamed ports have no SRV record; 2.3.4 no name below a ClusterSetIP service at all (the zone as transferred)', async () => {
    const { code, out, err } = await runCli(['zone', '--zone', Z, '--config', copy.config]);
    expect(code, err).toBe(0);
    const owners = out.split('\n').filter((l) => l && !l.startsWith(';') && !l.startsWith('$')).map((l) => l.split('\t'));
    const dualSrv = owners.filter(([name, , , type]) => type === 'SRV' && name.endsWith(`dual.shop.svc.${Z}`)).map(([name]) => name);
    expect(dualSrv).toEqual([`_https._tcp.dual.shop.svc.${Z}`]);
    for (const svc of ['web.shop', 'dual.shop', 'nginx.default', 'split.shop']) {
      const below = owners.filter(([name]) => name.endsWith(`.${svc}.svc.${Z}`) && !name.startsWith('_'));
      expect(below, svc).toEqual([]);
    }
  });

  it('same TTL rules as the federation zone: the service TTL, and stale data at ttl.stale with Extended DNS Error 3', async () => {
    const before = await ask(`db.data.svc.${Z}`, 'A');
    expect(before.answer.every((x) => x.ttl === 30)).toBe(true);
    expect(before.ede).toBeUndefined();
    // A manifest charlie cannot read: its last data is served as stale.
    writeFileSync(join(copy.dir, 'demo', 'charlie', 'zz-broken.yaml'), 'kind: [unclosed\n');
    let r = before;
    for (let i = 0; i < 100 && r.ede === undefined; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await ask(`db-0.charlie-eu.db.data.svc.${Z}`, 'A');
    }
    expect(answers(r, 'A')).toEqual(['203.0.113.101']);
    expect(r.answer.every((x) => x.ttl === 5)).toBe(true);
    expect(r.edeCode).toBe(3);
    // A service only live clusters export is not stale.
    const web = await ask(`web.shop.svc.${Z}`, 'A');
    expect(web.ede).toBeUndefined();
    expect(web.answer.every((x) => x.ttl === 30)).toBe(true);
  });
});
