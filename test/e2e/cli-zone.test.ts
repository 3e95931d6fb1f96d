// `fedns zone` prints what the server would serve: load balancers that publish a hostname are
// resolved (through `hostnames.resolvers`, here a demo fedns on loopback) before printing.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoCopy, runCli, startDemo } from '../support/demo.js';

describe('fedns zone with load-balancer hostnames', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  let dir: string;
  beforeAll(async () => {
    demo = await startDemo();
    dir = mkdtempSync(join(tmpdir(), 'fedns-cli-zone-'));
    mkdirSync(join(dir, 'edge'));
    writeFileSync(
      join(dir, 'edge', 'lb.yaml'),
      `apiVersion: v1
kind: Service
metadata: { name: shop, namespace: edge }
spec: { type: LoadBalancer, ports: [{ name: https, port: 443, protocol: TCP }] }
status: { loadBalancer: { ingress: [{ hostname: web.shop.fed.example.com }] } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: shop-1, namespace: edge, labels: { kubernetes.io/service-name: shop } }
addressType: IPv4
ports: [{ name: https, port: 8443, protocol: TCP }]
endpoints: [{ addresses: [10.9.0.1], conditions: { ready: true } }]
`,
    );
    writeFileSync(
      join(dir, 'fedns.yaml'),
      `domain: example.net.
listen: [127.0.0.1:0]
ops: { listen: null }
nameservers: [{ name: ns1.example.net., addresses: [192.0.2.53] }]
hostnames: { resolvers: ["127.0.0.1:${demo.port}"] }
clusters:
  - { name: edge, region: r1, source: { type: files, path: edge } }
`,
    );
  });
  afterAll(async () => {
    await demo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('resolves the hostname and prints its addresses as the service records', async () => {
    const r = await runCli(['zone', '--config', join(dir, 'fedns.yaml')], 20_000);
    expect(r.code, r.err).toBe(0);
    const stdout = r.out;
    const records = (owner: string, type: string) =>
      stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[0] === owner && f[3] === type)
        .map((f) => f[4])
        .sort();
    expect(records('shop.edge.fed.example.net.', 'A')).toEqual(['192.0.2.20', '198.51.100.20']);
    expect(records('shop.edge.fed.example.net.', 'AAAA')).toEqual(['2001:db8:a::20', '2001:db8:b::20']);
  });
});

describe('fedns zone with a cluster read from a Kubernetes API server', () => {
  // Printed without that cluster's services, the zone would load into a secondary as if whole.
  it('refuses, naming the cluster and the running server\'s /zone; explain --offline says what it did not ask', async () => {
    const copy = demoCopy((y) => y.replace('source: { type: files, path: demo/bravo }', 'source: { type: kube, kubeconfig: kc.yaml, context: bravo }'));
    try {
      writeFileSync(join(copy.dir, 'kc.yaml'), 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
      const r = await runCli(['zone', '--config', copy.config], 20_000);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(`${copy.config}: cluster bravo is read from a Kubernetes API server, which \`fedns zone\` does not contact`);
      expect(r.err).toContain('curl http://127.0.0.1:9153/zone');
      // With a TSIG required, /zone answers 403: a signed AXFR is the way.
      writeFileSync(copy.config, `${readFileSync(copy.config, 'utf8')}\ntransfer: { allow: [127.0.0.1], tsig: [{ name: xfr-key., secret: ZmVkbnMtdGVzdC10c2lnLXNlY3JldC0wMTIzNDU2Nzg5 }] }\n`);
      const signed = await runCli(['zone', '--config', copy.config], 20_000);
      expect(signed.code).toBe(1);
      expect(signed.err).toContain('transfer it from the running server with the TSIG key, e.g. kdig -y hmac-sha256:xfr-key.:SECRET @127.0.0.1 -p 1053 example.com. AXFR');
      expect(signed.err).not.toContain('ZmVkbnMt');
      // explain --offline answers from what it has, and says what it did not ask.
      const ex = await runCli(['explain', 'nginx.default.fed.example.com.', '--offline', '--config', copy.config], 20_000);
      expect(ex.code).toBe(0);
      expect(ex.out).toMatch(/^nginx\.default\.fed\.example\.com\. A: NOERROR/);
      expect(ex.err).toBe('fedns: --offline does not contact Kubernetes API servers: bravo shows as not synced (ask the running server: drop --offline)\n');
    } finally {
      copy.cleanup();
    }
  });
});

describe('fedns zone with a files cluster that cannot be read', () => {
  // As with a kube cluster: printed without that cluster's services, the zone would load into a
  // secondary as if whole.
  it('refuses, naming the cluster, the file and what is wrong in it', async () => {
    const copy = demoCopy();
    try {
      const bad = join(copy.dir, 'demo', 'alpha', 'bad.yaml');
      writeFileSync(bad, 'kind: [unclosed\n');
      const r = await runCli(['zone', '--config', copy.config], 20_000);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(`fedns: ${copy.config}: cluster alpha cannot be read: ${bad}: YAML: `);
      expect(r.err).toContain('fix it and run fedns zone again');
      // The clusterset zone is refused the same way.
      const cs = await runCli(['zone', '--zone', 'clusterset.local.', '--config', copy.config], 20_000);
      expect(cs.code).toBe(1);
      expect(cs.out).toBe('');
      // explain --offline answers from what it has, and says what it could not read.
      const ex = await runCli(['explain', 'nginx.default.fed.example.com.', '--offline', '--config', copy.config], 20_000);
      expect(ex.code).toBe(0);
      expect(ex.err).toContain(`fedns: cluster alpha cannot be read (${bad}: YAML: `);
    } finally {
      copy.cleanup();
    }
  });
});
