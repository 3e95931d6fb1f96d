// `fedns check`: a valid configuration prints a summary of what would be served; an invalid one
// exits 2 with every problem as "file: field: what is wrong".
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoCopy, runCli } from '../support/demo.js';

const copies: { cleanup(): void }[] = [];
afterAll(() => {
  for (const c of copies) c.cleanup();
});

async function check(edit: (y: string) => string, files?: (dir: string) => void): Promise<{ code: number; out: string; err: string; config: string }> {
  const copy = demoCopy(edit);
  copies.push(copy);
  files?.(copy.dir);
  return { ...(await runCli(['check', '--config', copy.config])), config: copy.config };
}

describe('fedns check', () => {
  it('summarises a valid configuration: zone, listeners, access, identity, every cluster', async () => {
    const r = await check((y) => y.replace('ops:\n  listen: 127.0.0.1:9153', 'ops:\n  listen: null\nqueries: { allow: [10.0.0.0/8] }'));
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK`);
    expect(lines[1]).toMatch(/^ {2}zone example\.com\. federation fed, serial \d+, \d+ records$/);
    // mcs.enabled (the demo): the clusterset zone too, with its own serial and records.
    const cs = /^ {2}zone clusterset\.local\. \(Multi-Cluster Services, exported services\), serial (\d+), (\d+) records$/.exec(lines[2]);
    expect(cs, lines[2]).not.toBeNull();
    // SOA, NS, dns-version TXT and the demo's exported services: more than the apex alone.
    expect(Number(cs![2])).toBeGreaterThan(3);
    expect(lines).toContain('  listen 127.0.0.1:1053; ops off');
    expect(lines).toContain('  queries from 10.0.0.0/8; transfers to nobody');
    expect(lines).toContain('  rate limit off');
    expect(lines.some((l) => /^ {2}identity fedns-demo, version fedns \d+\.\d+\.\d+\S*, NSID on$/.test(l))).toBe(true);
    expect(lines).toContain('  clusters (3):');
    expect(lines.filter((l) => /^ {4}(alpha|bravo|charlie): region [a-z-]+, zones [a-z0-9-]+, loadBalancer, live, \d services$/.test(l))).toHaveLength(3);
  });

  it('warns that a configuration without clusters serves an empty zone', async () => {
    const r = await check((y) => y.replace(/\nclusters:\n[\s\S]*$/, '\nclusters: []\n'));
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 1 warning`);
    expect(lines).toContain('  clusters (0):');
    expect(lines).toContain('    no clusters: the zone holds only its apex (add clusters, each with a source)');
  });

  it('counts the objects of a manifest it cannot read as a warning, and reads the rest', async () => {
    const r = await check(
      (y) => y,
      (dir) => writeFileSync(join(dir, 'demo', 'alpha', 'zz-bad.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: Bad_Name, namespace: shop }\n'),
    );
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 1 warning`);
    expect(lines).toContain('    1 object fedns cannot read skipped (the log names each)');
    expect(lines.some((l) => /^ {4}alpha: .*, live, \d services$/.test(l))).toBe(true);
  });

  // Serve would not have the cluster's services either (none at start, its last good data later).
  it('warns of a files cluster whose manifests cannot be read, naming the file and what is wrong', async () => {
    let bad = '';
    const r = await check(
      (y) => y,
      (dir) => writeFileSync((bad = join(dir, 'demo', 'alpha', 'bad.yaml')), 'kind: [unclosed\n'),
    );
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 1 warning`);
    const warning = lines.filter((l) => l.startsWith(`    cluster alpha: cannot read its manifests: ${bad}: YAML: `));
    expect(warning, r.out).toHaveLength(1);
    expect(warning[0]).toMatch(/; the zones above lack its services, and serve would not read it until this is fixed$/);
  });

  // A kube cluster is not contacted, but its kubeconfig is read as serve would read it: one that
  // cannot be used would leave the cluster syncing for ever behind an "OK".
  it('reads a kube cluster\'s kubeconfig and warns when serve could not use it; says the cluster is not contacted', async () => {
    const kube = (y: string) => y.replace('source: { type: files, path: demo/bravo }', 'source: { type: kube, kubeconfig: kc.yaml, context: bravo }');
    const cases: [string, string, RegExp | undefined][] = [
      ['no such context', 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n', /^ {4}cluster bravo: kubeconfig .*kc\.yaml: kubeconfig has no context "bravo" \(it has: none\); it will not sync until this is fixed$/],
      ['not YAML', 'garbage: [\n', /^ {4}cluster bravo: kubeconfig .*kc\.yaml: .+; it will not sync until this is fixed$/],
      [
        'usable',
        'apiVersion: v1\nkind: Config\nclusters: [{ name: b, cluster: { server: "https://127.0.0.1:6443" } }]\ncontexts: [{ name: bravo, context: { cluster: b, user: u } }]\nusers: [{ name: u, user: { token: t } }]\n',
        undefined,
      ],
    ];
    // A token file the client library would read at once, synchronously: a FIFO hung check (and
    // serve), /dev/zero exhausted its memory.
    const withToken = (file: string) =>
      `apiVersion: v1\nkind: Config\nclusters: [{ name: b, cluster: { server: "https://127.0.0.1:6443" } }]\ncontexts: [{ name: bravo, context: { cluster: b, user: u } }]\nusers: [{ name: u, user: { token-file: ${file} } }]\n`;
    cases.push(
      ['a token file that is a FIFO', withToken('fifo'), /^ {4}cluster bravo: kubeconfig .*kc\.yaml: token-file .*\/fifo is not a regular file \(a FIFO\); it will not sync until this is fixed$/],
      ['a token file that never ends', withToken('/dev/zero'), /^ {4}cluster bravo: kubeconfig .*kc\.yaml: token-file \/dev\/zero is not a regular file \(a character device\); it will not sync until this is fixed$/],
    );
    for (const [what, text, warning] of cases) {
      const r = await check(kube, (dir) => {
        writeFileSync(join(dir, 'kc.yaml'), text);
        execFileSync('mkfifo', [join(dir, 'fifo')]);
      });
      expect(r.code, what).toBe(0);
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0], what).toBe(warning ? `${r.config}: OK, with 1 warning` : `${r.config}: OK`);
      if (warning) expect(lines.filter((l) => warning.test(l)), `${what}:\n${r.out}`).toHaveLength(1);
      expect(lines, what).toContain('    bravo: region us-east, zones us-east-b, loadBalancer, read from a Kubernetes API server, not contacted by check (the zones above lack its services)');
      // Human output only: no JSON log lines.
      expect(`${r.out}${r.err}`, what).not.toMatch(/"level":/);
    }
  });

  it('warns of a client network written with host bits set, naming the network it is', async () => {
    const r = await check((y) => y.replace('clientNetworks: [127.0.0.2/32]', 'clientNetworks: [10.8.0.1/14, "2001:db8::1/48", "2001:0:0:1::5/64"]'));
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 3 warnings`);
    // In RFC 5952's form: the longest run of zero groups compressed, not the first.
    expect(lines).toContain('    client network 2001:0:0:1::5/64 has host bits set: it is the network 2001:0:0:1::/64 (write that)');
    expect(lines).toContain('    client network 10.8.0.1/14 has host bits set: it is the network 10.8.0.0/14 (write that)');
    expect(lines).toContain('    client network 2001:db8::1/48 has host bits set: it is the network 2001:db8::/48 (write that)');
  });

  it('has no clusterset zone line without mcs.enabled', async () => {
    const r = await check((y) => y.replace('enabled: true              #', 'enabled: false             #'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^ {2}zone example\.com\. /m);
    expect(r.out).not.toContain('clusterset.local.');
  });

  it('summarises response rate limiting when it is on', async () => {
    const r = await check((y) => `${y}rateLimit: { responsesPerSecond: 20, nxdomainsPerSecond: 5, errorsPerSecond: 0, window: 1m, exempt: [10.0.0.0/8, 192.0.2.53] }\n`);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toContain(
      '  rate limit answers 20/s, NODATA 20/s, NXDOMAIN 5/s, errors unlimited per /24 and /56, slip 2, window 60s, exempt 10.0.0.0/8, 192.0.2.53, table 100000',
    );
  });

  it('reports names over 255 bytes left out and ignored tenant values as warnings; the rest is served', async () => {
    const [s63, n63, r63, z63] = ['s', 'n', 'r', 'z'].map((c) => c.repeat(63));
    const r = await check((y) => `${y}  - { name: delta, region: ${r63}, zones: [${z63}], source: { type: files, path: demo/delta } }\n`, (dir) => {
      mkdirSync(join(dir, 'demo', 'delta'));
      const manifest = [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: s63, namespace: n63 }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.200' }] } } },
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: `${s63.slice(0, 50)}-x`, namespace: n63, labels: { 'kubernetes.io/service-name': s63 } },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['10.9.0.1'], conditions: { ready: true }, zone: 'Bad..Zone' }],
        },
      ];
      writeFileSync(join(dir, 'demo', 'delta', 'long.yaml'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifest }));
    });
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 2 warnings`);
    expect(lines).toContain('  warnings (2):');
    expect(lines).toContain(`    service ${n63}/${s63}: 1 name longer than 255 bytes left out, e.g. ${s63}.${n63}.fed.svc.${z63}.${r63}.example.com.`);
    expect(lines).toContain('    1 zone value in cluster objects ignored (the log names each object)');
    expect(lines.some((l) => /^ {4}delta: region r{63}, zones z{63}, loadBalancer, live, 1 services$/.test(l))).toBe(true);
  });

  it('reports clusterset names over 255 bytes like the federation zone\'s (check warning, explain)', async () => {
    // A headless exported service whose endpoint, named with a 63-byte cluster ID (ClusterProperty
    // id.k8s.io), is too long in the clusterset zone only: in the federation zone the endpoint is
    // named with the cluster name "delta", which fits.
    const [h63, id63, s63, n63] = ['h', 'i', 's', 'n'].map((c) => c.repeat(63));
    const long = `${h63}.${id63}.${s63}.${n63}.svc.clusterset.local.`;
    const r = await check((y) => `${y}  - { name: delta, region: us-west, zones: [us-west-a], source: { type: files, path: demo/delta } }\n`, (dir) => {
      mkdirSync(join(dir, 'demo', 'delta'));
      const manifest = [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: s63, namespace: n63 }, spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: `${s63.slice(0, 50)}-x`, namespace: n63, labels: { 'kubernetes.io/service-name': s63 } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
          endpoints: [{ addresses: ['10.9.0.1'], hostname: h63, conditions: { ready: true }, zone: 'us-west-a' }],
        },
        { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name: s63, namespace: n63 } },
        { apiVersion: 'about.k8s.io/v1alpha1', kind: 'ClusterProperty', metadata: { name: 'id.k8s.io' }, spec: { value: id63 } },
      ];
      writeFileSync(join(dir, 'demo', 'delta', 'long.yaml'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifest }));
    });
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${r.config}: OK, with 1 warning`);
    expect(lines).toContain(`    service ${n63}/${s63}: 1 name longer than 255 bytes left out, e.g. ${long}`);

    // explain names it too, asked for the service's clusterset name (which answers).
    const ex = await runCli(['explain', '--offline', '--json', '--config', r.config, `${s63}.${n63}.svc.clusterset.local.`, 'A']);
    expect(ex.code, ex.err).toBe(0);
    const j = JSON.parse(ex.out) as { rcode: string; service: { omittedNames?: string[] }; notes: string[] };
    expect(j.rcode).toBe('NOERROR');
    expect(j.service.omittedNames).toEqual([long]);
    expect(j.notes).toContain(`1 name of ${n63}/${s63} would be longer than 255 bytes and is left out; its other names answer`);
  });

  it('says which replica serves transfers with transfer.primary, and whether it is this one', async () => {
    const other = await check((y) => `${y}\ntransfer: { allow: [192.0.2.0/24], primary: fedns-transfer-0 }\n`);
    expect(other.code, other.err).toBe(0);
    expect(other.out).toContain('  queries from everyone; transfers to 192.0.2.0/24, served by fedns-transfer-0 only (not this replica, fedns-demo)\n');
    const self = await check((y) => `${y}\ntransfer: { allow: [192.0.2.0/24], primary: fedns-demo }\n`);
    expect(self.out).toContain('  queries from everyone; transfers to 192.0.2.0/24, served by fedns-demo only (this replica)\n');
  });

  it('an invalid configuration: exit 2, each problem with the file and the field', async () => {
    const r = await check((y) => y.replace('default: 30', 'default: -1').replace('127.0.0.1:1053', 'localhost:1053'));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('fedns: invalid configuration');
    expect(r.err).toContain(`${r.config}: ttl.default: `);
    expect(r.err).toContain(`${r.config}: listen[0]: "localhost" is not an IP address`);
  });

  it('a file of aliases that expand without bound ("billion laughs"): exit 2, the file named, no stack trace', async () => {
    const lol = ['lol0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lol.push(`lol${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    const r = await check(() => lol.join('\n') + '\n');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`^fedns: invalid configuration\\n${r.config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: YAML: .*alias.*\\n$`));
  });

  it('an invalid rateLimit names each field', async () => {
    const r = await check((y) => `${y}rateLimit: { responsesPerSecond: -1, slip: 11, window: 2h, ipv4PrefixLength: 33, exempt: [nobody] }\n`);
    expect(r.code).toBe(2);
    for (const field of ['responsesPerSecond', 'slip', 'window', 'ipv4PrefixLength', 'exempt[0]']) expect(r.err).toContain(`${r.config}: rateLimit.${field}: `);
  });
});

describe('fedns --version', () => {
  it("prints package.json's version, the one identity.version and fedns_build_info report", async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { ROOT } = await import('../support/demo.js');
    const { VERSION } = await import('../../src/version.js');
    const want = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(want);
    expect(VERSION).toBe(want);
  });
});
