// The Kubernetes client library (kubeconfig reading) is loaded before fedns answers: its modules
// take a tenth of a second or more to load, most of it in one turn of the event loop, which held
// up every query at the start of the initial sync when the first cluster loaded it. This file
// runs in a process of its own (vitest's default pool) and imports nothing that loads the library.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeClientLoaded } from '../../src/cluster/kube.js';
import { ROOT } from '../support/demo.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { kubeHarness, QUICK_TIMING, useKubeTiming, type Running } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);
const h = kubeHarness('fedns-kube-startup-');

/**
 * In a node process of its own: imports the kubeconfig reader, reads a kubeconfig (`cluster`
 * fields added to its cluster) and applies it to request options; returns the packages of
 * node_modules that node loaded as CommonJS by then and the agent's class, if any.
 */
function readerLoads(cluster: Record<string, string>): { packages: string[]; agent?: string } {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  const script = `
    import { createRequire } from 'node:module';
    const { KubeConfig } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/vendor/kube-config.js')).href)});
    const kc = new KubeConfig();
    kc.loadFromString(${JSON.stringify(JSON.stringify(kubeconfig))});
    const opts = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    const packages = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      if (!file.includes('/node_modules/')) continue;
      const parts = file.split('/node_modules/').pop().split('/');
      packages.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
    }
    console.log(JSON.stringify({ packages: [...packages].sort(), agent: opts.agent?.constructor.name }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { packages: string[]; agent?: string };
}

describe('start-up with a kube cluster', () => {
  let api: FakeApiServer | undefined;
  let f: Running | undefined;
  afterAll(async () => {
    await f?.stop();
    await api?.stop();
  });

  it('has loaded the Kubernetes client by the time it listens', async () => {
    expect(kubeClientLoaded()).toBe(false);
    api = await FakeApiServer.start();
    f = await h.startFedns([{ name: 'a', server: api }]);
    expect(kubeClientLoaded()).toBe(true);
  });

  it('loads the kubeconfig reader without the library\'s generated API (npm run build bundles it)', () => {
    const bundle = readFileSync(join(ROOT, 'dist/vendor/kube-config.js'), 'utf8');
    expect(bundle).toMatch(/\bKubeConfig = class\b/);
    expect(bundle).toMatch(/\bExecAuth = class\b/);
    // Generated models and API classes: the library's entry point evaluates about 960 modules of them.
    expect(bundle).not.toMatch(/\b(V1Pod|V1Service|ObjectSerializer|CoreV1Api|ObservableCoreV1Api) = class\b/);
    // OIDC is an ES module, loaded by import() when a token is refreshed: no static import of it.
    expect(bundle).not.toMatch(/^import\b.*["']openid-client["']/m);
  });

  it('loads the proxy agents and the HTTP client the reader never calls only when a kubeconfig uses them', () => {
    const lazy = ['node-fetch', 'hpagent', 'socks-proxy-agent'];
    const plain = readerLoads({});
    expect(plain.packages.filter((p) => lazy.includes(p))).toEqual([]);
    expect(plain.agent).toBe('Agent');
    const http = readerLoads({ 'proxy-url': 'http://127.0.0.1:3128' });
    expect(http.agent).toBe('HttpsProxyAgent');
    expect(http.packages).toContain('hpagent');
    expect(http.packages).not.toContain('socks-proxy-agent');
    const socks = readerLoads({ 'proxy-url': 'socks5://127.0.0.1:1080' });
    expect(socks.agent).toBe('SocksProxyAgent');
    expect(socks.packages).toContain('socks-proxy-agent');
  });
});
