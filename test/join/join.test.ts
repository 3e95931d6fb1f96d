/**
 * `fedns join` / `fedns unjoin` against the fake kube-apiserver (real HTTPS + bearer token +
 * optimistic concurrency), with a member cluster whose kube-dns ConfigMap already has another
 * stub domain and whose CoreDNS ConfigMap has a typical Corefile. Both the exported functions
 * and the built CLI (`node dist/src/cli.js`, as `npx tsc` leaves it) are exercised.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { CREATED_KEYS_ANNOTATION, JoinError, join, unjoin } from '../../src/join/join.js';
import { KubeError } from '../../src/join/kube.js';
import { CLI, demoCopy } from '../support/demo.js';
import { FakeApiServer, type KubeObject } from '../support/fake-apiserver.js';
import { FED_COREFILE_BLOCK, MCS_COREFILE_BLOCK } from './fixtures.js';

const STUB = '{"acme.local": ["10.0.0.10"]}';
const COREFILE = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`;
/** The demo configuration serves the clusterset zone (mcs.enabled): join forwards it too. */
const BLOCK = `${FED_COREFILE_BLOCK}\n${MCS_COREFILE_BLOCK}\n`;

const KUBE_DNS: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'addonmanager.kubernetes.io/mode': 'EnsureExists' } },
  data: { stubDomains: STUB },
};
const COREDNS: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'coredns', namespace: 'kube-system' },
  data: { Corefile: COREFILE },
};

let server: FakeApiServer;
let scratch: { dir: string; config: string; cleanup(): void };
let kubeconfig: string;
let original: string;

beforeAll(async () => {
  server = await FakeApiServer.start({ forbiddenTokens: ['read-only-token'] });
});
afterAll(async () => {
  await server?.stop();
});
beforeEach(() => {
  server.clearFaults();
  server.allowAll();
  server.apply(KUBE_DNS);
  server.apply(COREDNS);
  server.resetRequestLog();
  scratch = demoCopy();
  original = readFileSync(scratch.config, 'utf8');
  mkdirSync(joinPath(scratch.dir, 'kubeconfigs'));
  kubeconfig = server.writeKubeconfig(joinPath(scratch.dir, 'kubeconfigs', 'delta.yaml'), { context: 'delta-ctx' });
});
afterEach(() => {
  server.removeAllListeners('request');
  scratch.cleanup();
});

const cm = (name: string) => server.get('ConfigMap', 'kube-system', name)!;
const data = (name: string) => cm(name).data as Record<string, string>;
const rv = (name: string) => cm(name).metadata!.resourceVersion;

function joinOpts(extra: Partial<Parameters<typeof join>[0]> = {}): Parameters<typeof join>[0] {
  return { cluster: 'delta', kubeconfig, nameserver: '192.0.2.53:1053', config: scratch.config, region: 'eu-west', zones: 'eu-west-b', ...extra };
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function expectJoined(): void {
  expect(data('kube-dns').stubDomains).toBe('{"acme.local": ["10.0.0.10"], "example.com": ["192.0.2.53:1053"], "clusterset.local": ["192.0.2.53:1053"]}');
  expect(data('kube-dns').federations).toBe('fed=example.com');
  expect(data('coredns').Corefile).toBe(COREFILE + BLOCK);
  const cfg = loadConfig(scratch.config);
  const delta = cfg.clusters.find((c) => c.name === 'delta')!;
  expect(delta).toMatchObject({ name: 'delta', region: 'eu-west', zones: ['eu-west-b'] });
  expect(delta.source).toMatchObject({ type: 'kube', kubeconfig, context: 'delta-ctx' });
  // only the new item was added to the file
  expect(readFileSync(scratch.config, 'utf8')).toBe(
    original + '  - name: delta\n    region: eu-west\n    zones: [ eu-west-b ]\n    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }\n',
  );
}

function expectOriginal(): void {
  expect(data('kube-dns')).toEqual({ stubDomains: STUB });
  expect(cm('kube-dns').metadata!.annotations).toBeUndefined();
  expect(cm('kube-dns').metadata!.labels).toEqual({ 'addonmanager.kubernetes.io/mode': 'EnsureExists' });
  expect(data('coredns')).toEqual({ Corefile: COREFILE });
  expect(readFileSync(scratch.config, 'utf8')).toBe(original);
}

describe('join', () => {
  it('points kube-dns and CoreDNS at fedns, keeps the other stub domain, adds the cluster to a config that still validates', async () => {
    const r = await join(joinOpts());
    expect(r.changed).toBe(true);
    expectJoined();
    expect(JSON.parse(cm('kube-dns').metadata!.annotations![CREATED_KEYS_ANNOTATION])).toEqual({ fed: ['federations'] });
    // GET + PUT of each ConfigMap, nothing else written
    expect(server.requestCount({ kind: 'ConfigMap', verb: 'update' })).toBe(2);
    expect(server.requestLog.filter((q) => q.verb === 'update').map((q) => q.name).sort()).toEqual(['coredns', 'kube-dns']);
    expect(r.output).toContain('kube-system/kube-dns: updated data.stubDomains, data.federations');
    expect(r.output).toContain('kube-system/coredns: updated data.Corefile');
    expect(r.output).toMatch(/fedns\.yaml: added cluster "delta"\ndone\n$/);
  });

  it('twice: the second run changes nothing (no PUT, same file)', async () => {
    await join(joinOpts());
    const rvs = [rv('kube-dns'), rv('coredns')];
    const text = readFileSync(scratch.config, 'utf8');
    server.resetRequestLog();
    const r = await join(joinOpts());
    expect(r.changed).toBe(false);
    expect(r.output).toMatch(/already up to date[\s\S]*nothing to change\n$/);
    expect(server.requestCount({ verb: 'update' })).toBe(0);
    expect([rv('kube-dns'), rv('coredns')]).toEqual(rvs);
    expect(readFileSync(scratch.config, 'utf8')).toBe(text);
    expectJoined();
  });

  it('retries 409 Conflicts (forceConflicts(2)) and still succeeds', async () => {
    server.forceConflicts(2);
    const r = await join(joinOpts());
    expect(r.conflicts).toBe(2);
    expect(server.requestCount({ verb: 'update' })).toBe(4);
    expectJoined();
    expect(r.output).toContain('after 2 conflicts, re-read and retried');
  });

  it('never overwrites a concurrent change: a stale resourceVersion gets 409, join re-reads and merges', async () => {
    let raced = false;
    server.on('request', (q: { verb: string; name?: string }) => {
      if (!raced && q.verb === 'get' && q.name === 'kube-dns') {
        raced = true; // someone else edits kube-dns between our GET and our PUT
        server.apply({ ...KUBE_DNS, data: { stubDomains: '{"acme.local": ["10.0.0.10"], "corp.internal": ["10.1.0.1"]}', upstreamNameservers: '["10.9.9.9"]' } });
      }
    });
    const r = await join(joinOpts());
    expect(raced).toBe(true);
    expect(r.conflicts).toBe(1);
    expect(data('kube-dns')).toEqual({
      stubDomains: '{"acme.local": ["10.0.0.10"], "corp.internal": ["10.1.0.1"], "example.com": ["192.0.2.53:1053"], "clusterset.local": ["192.0.2.53:1053"]}',
      upstreamNameservers: '["10.9.9.9"]',
      federations: 'fed=example.com',
    });
  });

  it('gives up after a bounded number of conflicts, leaving the config file alone', async () => {
    server.forceConflicts(50);
    await expect(join(joinOpts())).rejects.toThrow(/kube-system\/kube-dns: still conflicting after 5 attempts/);
    expect(server.requestCount({ verb: 'update' })).toBe(5);
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
  });

  it('a server error on the update is not retried like a conflict: reported, config file untouched', async () => {
    server.failRequests(500, { verb: 'update', times: 1 });
    const err = await join(joinOpts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).status).toBe(500);
    expect((err as Error).message).toMatch(/^PUT \/api\/v1\/namespaces\/kube-system\/configmaps\/kube-dns on https:\/\/127\.0\.0\.1:\d+ \(context "delta-ctx" .*\): HTTP 500: /);
    expect(server.requestCount({ verb: 'update' })).toBe(1);
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
    // a rerun finishes the job
    await join(joinOpts());
    expectJoined();
  });

  it('--dry-run (CLI) prints the exact changes and applies nothing', async () => {
    const rvs = [rv('kube-dns'), rv('coredns')];
    const r = await cli(['join', 'delta', '--kubeconfig', kubeconfig, '--nameserver', '192.0.2.53:1053', '--config', scratch.config, '--region', 'eu-west', '--zones', 'eu-west-b', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('--- kube-system/kube-dns data.stubDomains (before)\n+++ kube-system/kube-dns data.stubDomains (after)\n@@ -1,1 +1,1 @@\n-{"acme.local": ["10.0.0.10"]}\n\\ No newline at end of file\n+{"acme.local": ["10.0.0.10"], "example.com": ["192.0.2.53:1053"], "clusterset.local": ["192.0.2.53:1053"]}\n\\ No newline at end of file\n');
    expect(out).toContain('--- (absent)\n+++ kube-system/kube-dns data.federations (after)\n@@ -0,0 +1,1 @@\n+fed=example.com\n\\ No newline at end of file\n');
    expect(out).toContain(' loadbalance\n }\n+# fedns:begin fed\n+example.com:53 {\n+    errors\n+    cache 30\n+    forward . 192.0.2.53:1053\n+}\n+# fedns:end fed\n');
    expect(out).toContain('+  - name: delta\n+    region: eu-west\n+    zones: [ eu-west-b ]\n');
    expect(out).toMatch(/dry run: nothing was changed\n$/);
    expect(server.requestCount({ verb: 'update' })).toBe(0);
    expect([rv('kube-dns'), rv('coredns')]).toEqual(rvs);
    expectOriginal();
  });

  it('port 53 is written as the bare address; a new name server replaces ours in place', async () => {
    await join(joinOpts());
    await join(joinOpts({ nameserver: '198.51.100.53:53' }));
    expect(data('kube-dns').stubDomains).toBe('{"acme.local": ["10.0.0.10"], "example.com": ["198.51.100.53"], "clusterset.local": ["198.51.100.53"]}');
    expect(data('coredns').Corefile).toBe(COREFILE + BLOCK.replaceAll('192.0.2.53:1053', '198.51.100.53'));
  });

  it('notes when CoreDNS will not reload the Corefile by itself', async () => {
    server.apply({ ...COREDNS, data: { Corefile: COREFILE.replace('    reload\n', '') } });
    const r = await join(joinOpts());
    expect(r.output).toContain('note: the Corefile has no "reload" plugin');
    expect((await join(joinOpts())).output).not.toContain('note:'); // nothing changed, nothing to note
  });

  // (root writes regardless of permissions, so this one can only run as another user)
  it.skipIf(process.getuid?.() === 0)('a configuration that cannot be written: clear error, and a rerun finishes the job', async () => {
    chmodSync(scratch.dir, 0o555);
    try {
      await expect(join(joinOpts())).rejects.toThrow(/cannot write .*fedns\.yaml \(EACCES\); the member cluster's DNS is already done/);
    } finally {
      chmodSync(scratch.dir, 0o755);
    }
    await join(joinOpts());
    expectJoined();
  });

  it('a configuration edited by someone else during join is not overwritten; a rerun finishes the job', async () => {
    server.on('request', (q: { verb: string; name?: string }) => {
      if (q.verb === 'update' && q.name === 'coredns') writeFileSync(scratch.config, `${original}# edited meanwhile\n`);
    });
    await expect(join(joinOpts())).rejects.toThrow(/fedns\.yaml changed while fedns was editing it \(the member cluster's DNS is already done\); run the command again/);
    expect(readFileSync(scratch.config, 'utf8')).toBe(`${original}# edited meanwhile\n`);
    server.removeAllListeners('request');
    writeFileSync(scratch.config, original);
    const again = await join(joinOpts());
    expect(again.output).toMatch(/kube-dns: already up to date[\s\S]*coredns: already up to date[\s\S]*added cluster "delta"/);
    expectJoined();
  });

  it('works with only one of the two ConfigMaps; fails clearly with neither', async () => {
    server.remove('ConfigMap', 'kube-system', 'coredns');
    const r = await join(joinOpts());
    expect(r.output).toContain('kube-system/coredns: not present (skipped)');
    expect(data('kube-dns').federations).toBe('fed=example.com');
    server.remove('ConfigMap', 'kube-system', 'kube-dns');
    await expect(join(joinOpts({ cluster: 'echo' }))).rejects.toThrow(
      /neither ConfigMap kube-system\/kube-dns \(kube-dns\) nor kube-system\/coredns \(CoreDNS\) exists on https:\/\/127\.0\.0\.1:\d+ \(context "delta-ctx"/,
    );
  });

  it('a malformed stubDomains fails before anything is written (CoreDNS untouched too)', async () => {
    server.apply({ ...KUBE_DNS, data: { stubDomains: '{acme.local: 10.0.0.10}' } });
    const err = await join(joinOpts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JoinError);
    expect((err as Error).message).toMatch(/^kube-system\/kube-dns data\.stubDomains is not valid JSON .*kubectl -n kube-system edit configmap kube-dns/);
    expect(server.requestCount({ verb: 'update' })).toBe(0);
    expect(data('coredns').Corefile).toBe(COREFILE);
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
  });

  it('an invalid result (zones without a region) is refused before the member is touched', async () => {
    const err = await join(joinOpts({ region: undefined })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('clusters[3].region: a cluster with zones needs a region');
    expect(server.requestCount({ verb: 'update' })).toBe(0);
  });

  it('errors name the input and the fix: unknown context, wrong token, bad --nameserver', async () => {
    await expect(join(joinOpts({ context: 'nope' }))).rejects.toThrow(`kubeconfig ${kubeconfig}: context "nope" not found (contexts: delta-ctx)`);
    const ro = server.writeKubeconfig(joinPath(scratch.dir, 'ro.yaml'), { context: 'ro', token: 'read-only-token' });
    const e403 = await join(joinOpts({ kubeconfig: ro })).catch((e: unknown) => e);
    expect(e403).toBeInstanceOf(KubeError);
    expect((e403 as Error).message).toMatch(
      /^credentials rejected by https:\/\/127\.0\.0\.1:\d+ \(context "ro" of kubeconfig .*ro\.yaml\) \(HTTP 403: .*\): check the kubeconfig user \/ RBAC \(needs get\/update on configmaps in kube-system\)$/,
    );
    const bad = server.writeKubeconfig(joinPath(scratch.dir, 'bad.yaml'), { context: 'bad', token: 'wrong' });
    await expect(join(joinOpts({ kubeconfig: bad }))).rejects.toThrow(/credentials rejected by .*HTTP 401/);
    await expect(join(joinOpts({ nameserver: 'fedns.example.com' }))).rejects.toThrow(/--nameserver "fedns\.example\.com": expected the IP address/);
    await expect(join(joinOpts({ kubeconfig: joinPath(scratch.dir, 'missing.yaml') }))).rejects.toThrow(/kubeconfig .*missing\.yaml: cannot read it \(ENOENT\)/);
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
  });

  it('CLI errors: message on stderr, exit code 1 (2 for an invalid configuration)', async () => {
    const r = await cli(['join', 'delta', '--kubeconfig', kubeconfig, '--context', 'nope', '--nameserver', '192.0.2.53', '--config', scratch.config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`fedns: kubeconfig ${kubeconfig}: context "nope" not found (contexts: delta-ctx)\n`);
    const z = await cli(['join', 'delta', '--kubeconfig', kubeconfig, '--nameserver', '192.0.2.53', '--config', scratch.config, '--zones', 'a']);
    expect(z.code).toBe(2);
    expect(z.stderr).toContain('a cluster with zones needs a region');
  });
});

describe('join without the clusterset zone (mcs.enabled: false)', () => {
  it('forwards the federation domain only; unjoin still removes a clusterset block join left before', async () => {
    writeFileSync(scratch.config, original.replace('enabled: true', 'enabled: false'));
    await join(joinOpts());
    expect(data('kube-dns').stubDomains).toBe('{"acme.local": ["10.0.0.10"], "example.com": ["192.0.2.53:1053"]}');
    expect(data('coredns').Corefile).toBe(`${COREFILE}${FED_COREFILE_BLOCK}\n`);
    // A Corefile with both blocks (joined while mcs was on): unjoin removes both.
    const both = `${COREFILE}${BLOCK}`;
    server.apply({ ...COREDNS, data: { Corefile: both } });
    await unjoin({ cluster: 'delta', config: scratch.config, kubeconfig });
    expect(data('coredns').Corefile).toBe(COREFILE);
  });
});

describe('unjoin', () => {
  it('removes exactly what join added; other entries and the rest of the file intact', async () => {
    await join(joinOpts());
    // meanwhile an admin adds another stub domain: it must survive unjoin
    const s = data('kube-dns').stubDomains.replace('}', ', "corp.internal": ["10.1.0.1"]}');
    server.apply({ ...cm('kube-dns'), data: { ...data('kube-dns'), stubDomains: s } });
    const r = await unjoin({ cluster: 'delta', config: scratch.config });
    expect(r.changed).toBe(true);
    expect(data('kube-dns')).toEqual({ stubDomains: '{"acme.local": ["10.0.0.10"], "corp.internal": ["10.1.0.1"]}' });
    expect(cm('kube-dns').metadata!.annotations).toBeUndefined();
    expect(data('coredns').Corefile).toBe(COREFILE);
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
    loadConfig(scratch.config);
  });

  it('join then unjoin (CLI) restores everything exactly; unjoin twice is harmless', async () => {
    const j = await cli(['join', 'delta', '--kubeconfig', kubeconfig, '--nameserver', '192.0.2.53:1053', '--config', scratch.config, '--region', 'eu-west', '--zones', 'eu-west-b']);
    expect(j.stderr).toBe('');
    expect(j.code).toBe(0);
    expectJoined();
    const dry = await cli(['unjoin', 'delta', '--config', scratch.config, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('-# fedns:begin fed\n');
    expect(dry.stdout).toContain('-  - name: delta\n');
    expectJoined();
    const u = await cli(['unjoin', 'delta', '--config', scratch.config]);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(u.stdout).toMatch(/kube-system\/kube-dns: updated data\.stubDomains, data\.federations, metadata\.annotations/);
    expectOriginal();
    const again = await cli(['unjoin', 'delta', '--config', scratch.config]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/no cluster "delta"[\s\S]*nothing to change\n$/);
    expectOriginal();
  });

  it('join into a cluster without the kube-dns keys, then unjoin: keys join created are deleted again', async () => {
    server.apply({ ...KUBE_DNS, data: undefined });
    await join(joinOpts());
    expect(data('kube-dns')).toEqual({ stubDomains: '{"example.com": ["192.0.2.53:1053"], "clusterset.local": ["192.0.2.53:1053"]}', federations: 'fed=example.com' });
    expect(JSON.parse(cm('kube-dns').metadata!.annotations![CREATED_KEYS_ANNOTATION])).toEqual({ fed: ['federations', 'stubDomains'] });
    await unjoin({ cluster: 'delta', config: scratch.config });
    expect(cm('kube-dns').data ?? {}).toEqual({});
    expect(cm('kube-dns').metadata!.annotations).toBeUndefined();
  });

  it('a member that cannot be reached keeps the entry; --skip-cluster removes only the entry', async () => {
    await join(joinOpts());
    server.denyAll(403);
    await expect(unjoin({ cluster: 'delta', config: scratch.config })).rejects.toThrow(/credentials rejected[\s\S]*--skip-cluster/);
    expect(readFileSync(scratch.config, 'utf8')).not.toBe(original);
    const r = await unjoin({ cluster: 'delta', config: scratch.config, skipCluster: true });
    expect(r.output).toContain('not touched (--skip-cluster)');
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
    server.allowAll();
    expect(data('kube-dns').federations).toBe('fed=example.com'); // as said: the member was not touched
    // the entry is gone, but the member can still be cleaned with an explicit kubeconfig
    await unjoin({ cluster: 'delta', config: scratch.config, kubeconfig });
    expectOriginal();
  });

  it('retries conflicts on unjoin too', async () => {
    await join(joinOpts());
    server.forceConflicts(3);
    const r = await unjoin({ cluster: 'delta', config: scratch.config });
    expect(r.conflicts).toBe(3);
    expectOriginal();
  });

  it('a files-backed demo cluster: only its entry is removed', async () => {
    const r = await unjoin({ cluster: 'charlie', config: scratch.config });
    expect(r.output).toContain('not touched (cluster "charlie" is read from files source');
    expect(loadConfig(scratch.config).clusters.map((c) => c.name)).toEqual(['alpha', 'bravo']);
    expect(server.requestCount({})).toBe(0);
  });

  it('keeps a stubDomains key it did not create, as {}', async () => {
    server.apply({ ...KUBE_DNS, data: { stubDomains: '{}' } });
    await join(joinOpts());
    await unjoin({ cluster: 'delta', config: scratch.config });
    expect(data('kube-dns')).toEqual({ stubDomains: '{}' });
    expect(readFileSync(scratch.config, 'utf8')).toBe(original);
  });
});
