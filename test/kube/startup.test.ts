// The Kubernetes client library (kubeconfig reading) is loaded before fedns answers: its modules
// take a tenth of a second or more to load, most of it in one turn of the event loop, which held
// up every query at the start of the initial sync when the first cluster loaded it. This file
// runs in a process of its own (vitest's default pool) and imports nothing that loads the library.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/demo.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { kubeHarness, QUICK_TIMING, useKubeTiming, type Running } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);
const h = kubeHarness('fedns-kube-startup-');

/**
 * Whether Node has loaded @kubernetes/client-node in this process. The library is an ES module;
 * what shows is a CommonJS dependency of its kubeconfig reader in the require cache (hpagent, which
 * nothing else here uses).
 */
function kubeClientLoaded(): boolean {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).some((k) => k.includes('/node_modules/hpagent/'));
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
  });
});
