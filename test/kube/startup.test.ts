// The Kubernetes client library (kubeconfig reading) is loaded before fedns answers: its modules
// take a tenth of a second or more to load, most of it in one turn of the event loop, which held
// up every query at the start of the initial sync when the first cluster loaded it. This file
// runs in a process of its own (vitest's default pool) and imports nothing that loads the library.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeClientLoaded } from '../../src/cluster/kube.js';
import { ROOT } from '../support/demo.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { kubeHarness, QUICK_TIMING, useKubeTiming, type Running } from '../support/kube-harness.js';
import { applyInOwnProcess, type ReaderRun } from '../support/reader-process.js';

useKubeTiming(QUICK_TIMING);
const h = kubeHarness('fedns-kube-startup-');

/** The packages and agent the bundled reader loads for a kubeconfig whose cluster has `cluster`'s fields added. */
function readerLoads(cluster: Record<string, string>): Promise<ReaderRun> {
  return applyInOwnProcess({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  });
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

  it('loads the proxy agents and the HTTP client the reader never calls only when a kubeconfig uses them', async () => {
    const lazy = ['node-fetch', 'hpagent', 'socks-proxy-agent'];
    const plain = await readerLoads({});
    expect(plain.packages.filter((p) => lazy.includes(p))).toEqual([]);
    expect(plain.agent).toBe('Agent');
    const http = await readerLoads({ 'proxy-url': 'http://127.0.0.1:3128' });
    expect(http.agent).toBe('HttpsProxyAgent');
    expect(http.packages).toContain('hpagent');
    expect(http.packages).not.toContain('socks-proxy-agent');
    const socks = await readerLoads({ 'proxy-url': 'socks5://127.0.0.1:1080' });
    expect(socks.agent).toBe('SocksProxyAgent');
    expect(socks.packages).toContain('socks-proxy-agent');
  });
});
