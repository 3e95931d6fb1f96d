// Drives the fake kube-apiserver with the real @kubernetes/client-node, so the fake is known to
// speak the protocol the client expects (and the client's quirks are pinned down).

import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { FakeApiServer, type KubeObject, type KubeconfigOptions } from './support/fake-apiserver.js';

let server: FakeApiServer;

beforeAll(async () => {
  server = await FakeApiServer.start({ tokens: ['good-token'], forbiddenTokens: ['forbidden-token'], bookmarkIntervalMs: 50 });
});

afterAll(async () => {
  await server?.stop();
});

afterEach(() => {
  server.clearFaults();
  server.allowAll();
  server.restore();
  server.closeAllWatches();
});

function kubeConfig(opts: KubeconfigOptions = {}, yaml?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(yaml ?? server.kubeconfig(opts));
  return kc;
}

function core(opts: KubeconfigOptions = {}): k8s.CoreV1Api {
  return kubeConfig(opts).makeApiClient(k8s.CoreV1Api);
}

function svc(name: string, namespace: string, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'ClusterIP', clusterIP: '10.0.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    ...extra,
  };
}

async function until(pred: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Seen {
  type: string;
  object: KubeObject & { code?: number; reason?: string };
}

/** Starts a raw client-node Watch and records its events and how it ended. */
async function watchPath(kc: k8s.KubeConfig, apiPath: string, params: Record<string, string | number | boolean | undefined>) {
  const events: Seen[] = [];
  let ended = false;
  let endErr: unknown = undefined;
  const done = new Promise<unknown>((resolve) => {
    void new k8s.Watch(kc)
      .watch(
        apiPath,
        params,
        (type, object) => events.push({ type, object: object as Seen['object'] }),
        (err) => {
          ended = true;
          endErr = err;
          resolve(err);
        },
      )
      .then((controller) => {
        handle.controller = controller;
      });
  });
  const handle = {
    events,
    done,
    controller: undefined as AbortController | undefined,
    get ended() {
      return ended;
    },
    get error() {
      return endErr;
    },
    stop() {
      handle.controller?.abort();
    },
    /** The done() argument, or a rejection if the watch has not ended within ms. */
    end(ms = 3000): Promise<unknown> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`watch on ${apiPath} did not end within ${ms}ms`)), ms);
      });
      return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
    },
  };
  return handle;
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: number | string; body?: unknown; statusCode?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: number; body?: unknown };
  }
  throw new Error('expected the promise to reject');
}

describe('fake kube-apiserver with @kubernetes/client-node', { timeout: 10_000 }, () => {
  it('lists services with a valid token; built-in list items carry no kind/apiVersion', async () => {
    server.apply(svc('web', 'list-a'));
    server.apply(svc('api', 'list-a', { metadata: { name: 'api', namespace: 'list-a', labels: { tier: 'backend' } } }));
    server.apply(svc('other', 'list-b'));
    const api = core({ token: 'good-token' });

    const ns = await api.listNamespacedService({ namespace: 'list-a' });
    expect(ns.items.map((s) => s.metadata?.name)).toEqual(['api', 'web']);
    expect(ns.kind).toBe('ServiceList');
    expect(ns.metadata?.resourceVersion).toBe(server.resourceVersion);
    expect(ns.items[0].kind).toBeUndefined();
    expect(ns.items[0].metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(ns.items[0].spec?.ports?.[0].port).toBe(80);

    const all = await api.listServiceForAllNamespaces();
    expect(all.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(
      expect.arrayContaining(['list-a/api', 'list-a/web', 'list-b/other']),
    );
    const selected = await api.listServiceForAllNamespaces({ labelSelector: 'tier=backend' });
    expect(selected.items.map((s) => s.metadata?.name)).toEqual(['api']);

    const last = server.requestLog.at(-1)!;
    expect(last).toMatchObject({ method: 'GET', path: '/api/v1/services', verb: 'list', kind: 'Service', token: 'good-token', status: 200 });
    expect(last.query).toEqual({ labelSelector: 'tier=backend' });
  });

  it('rejects a bad or missing token with 401 and a forbidden token with 403', async () => {
    const bad = await rejection(core({ token: 'wrong' }).listServiceForAllNamespaces());
    expect(bad).toBeInstanceOf(k8s.ApiException);
    expect(bad.code).toBe(401);
    expect(bad.body).toBeUndefined(); // client-node drops the body of a 401 (it is in the OpenAPI spec)
    const none = await rejection(core({ token: '' }).listNamespacedService({ namespace: 'default' }));
    expect(none.code).toBe(401);

    const forbidden = await rejection(core({ token: 'forbidden-token' }).listServiceForAllNamespaces());
    expect(forbidden.code).toBe(403);
    // Non-401 errors carry the raw Status JSON text as body.
    expect(JSON.parse(forbidden.body as string)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403 });

    const h = server.denyAll(403);
    expect((await rejection(core().listServiceForAllNamespaces())).code).toBe(403);
    h.clear();
    await expect(core().listServiceForAllNamespaces()).resolves.toBeDefined();
  });

  it('fails TLS verification when the kubeconfig trusts the wrong CA', async () => {
    const before = server.requestLog.length;
    const tlsErrorsBefore = server.tlsErrors;
    const api = kubeConfig({}, server.wrongCaKubeconfig()).makeApiClient(k8s.CoreV1Api);
    const err = await rejection(api.listServiceForAllNamespaces());
    expect(String(err.message)).toMatch(/certificate|verify/i);
    await server.waitFor(() => server.tlsErrors > tlsErrorsBefore, 2000, 'a TLS handshake failure');
    expect(server.requestLog.length).toBe(before);
    // insecure-skip-tls-verify gets through
    await expect(core({ insecure: true }).listServiceForAllNamespaces()).resolves.toBeDefined();
  });

  it('streams ADDED, MODIFIED and DELETED to a watch after apply/remove', async () => {
    const kc = kubeConfig();
    const w = await watchPath(kc, '/api/v1/namespaces/watch-a/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatches('Service', 1);
    expect(server.requestLog.at(-1)?.query).toEqual({ watch: 'true', resourceVersion: server.resourceVersion });

    server.apply(svc('w1', 'watch-a'));
    server.apply(svc('elsewhere', 'watch-b')); // other namespace: not delivered
    server.apply({ ...svc('w1', 'watch-a'), spec: { type: 'ClusterIP', clusterIP: '10.0.0.11', ports: [] } });
    server.apply({ ...svc('w1', 'watch-a'), spec: { type: 'ClusterIP', clusterIP: '10.0.0.11', ports: [] } }); // no-op
    expect(server.remove('Service', 'watch-a', 'w1')).toBe(true);

    await until(() => w.events.length >= 3, '3 watch events');
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(w.events.map((e) => e.object.kind)).toEqual(['Service', 'Service', 'Service']);
    const rvs = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs[0]).toBeLessThan(rvs[1]);
    expect(rvs[1]).toBeLessThan(rvs[2]);
    expect(String(rvs[2])).toBe(server.resourceVersion);
    expect((w.events[1].object.spec as { clusterIP: string }).clusterIP).toBe('10.0.0.11');

    w.stop();
    await w.end();
    await server.waitFor(() => server.openWatches('Service') === 0, 2000, 'watch closed');
  });

  it('replays history from a resourceVersion and sends bookmarks when asked', async () => {
    const from = server.resourceVersion;
    server.apply(svc('r1', 'replay'));
    server.apply(svc('r2', 'replay'));
    const w = await watchPath(kubeConfig(), '/api/v1/namespaces/replay/services', { resourceVersion: from, allowWatchBookmarks: true });
    await until(() => w.events.some((e) => e.type === 'BOOKMARK'), 'a bookmark');
    expect(w.events.slice(0, 2).map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED r1', 'ADDED r2']);
    const bm = w.events.find((e) => e.type === 'BOOKMARK')!;
    expect(bm.object).toEqual({ kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: server.resourceVersion } });
    w.stop();
    await w.end();
  });

  it('returns every item across pages with limit/continue, from a consistent snapshot', async () => {
    for (let i = 0; i < 25; i++) server.apply(svc(`p${String(i).padStart(2, '0')}`, 'paged'));
    const api = core();
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    let firstRv: string | undefined;
    do {
      const page = await api.listNamespacedService({ namespace: 'paged', limit: 10, _continue: cont });
      pages++;
      names.push(...page.items.map((s) => s.metadata!.name!));
      firstRv ??= page.metadata?.resourceVersion;
      expect(page.metadata?.resourceVersion).toBe(firstRv);
      if (pages === 1) {
        expect(page.metadata?.remainingItemCount).toBe(15);
        server.apply(svc('p99-late', 'paged')); // not part of this list's snapshot
      }
      cont = page.metadata?._continue;
    } while (cont && pages < 10);
    expect(pages).toBe(3);
    expect(names).toHaveLength(25);
    expect(new Set(names).size).toBe(25);
    expect(names).not.toContain('p99-late');

    // forced small pages even without a limit from the client
    server.forcePageSize(7, 'Service');
    const first = await api.listNamespacedService({ namespace: 'paged' });
    expect(first.items).toHaveLength(7);
    expect(first.metadata?._continue).toBeTruthy();

    // continue token outlives compaction? no: 410 Expired, like a real server
    server.compact();
    const expired = await rejection(api.listNamespacedService({ namespace: 'paged', _continue: first.metadata!._continue }));
    expect(expired.code).toBe(410);
    expect(JSON.parse(expired.body as string)).toMatchObject({ reason: 'Expired', code: 410 });
  });

  it('renderListPages: serves the pages rendered ahead, the same list every time, until a change', async () => {
    const rendered = await FakeApiServer.start({ tokens: ['r-token'], renderListPages: true, maxSnapshots: 10 });
    onTestFinished(() => rendered.stop());
    for (let i = 0; i < 5; i++) rendered.apply(svc(`r${i}`, 'cached'));
    rendered.renderLists(['Service'], 2);
    const kc = new k8s.KubeConfig();
    kc.loadFromString(rendered.kubeconfig({ token: 'r-token' }));
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const listAll = async (afterFirstPage = () => {}) => {
      const names: string[] = [];
      let cont: string | undefined;
      let pages = 0;
      do {
        const page = await api.listServiceForAllNamespaces({ limit: 2, _continue: cont });
        names.push(...page.items.map((s) => s.metadata!.name!));
        if (pages === 0) afterFirstPage();
        cont = page.metadata?._continue;
      } while (cont && ++pages < 10);
      return names;
    };
    expect(await listAll()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    // A change while a client pages through: the rest comes from the list's snapshot, as on a
    // real server (the snapshot outlives the last page the renderer asked for).
    const changed = await listAll(() => {
      rendered.remove('Service', 'cached', 'r1');
      rendered.apply(svc('r5', 'cached'));
    });
    expect(changed).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(await listAll()).toEqual(['r0', 'r2', 'r3', 'r4', 'r5']);
    expect(await listAll()).toEqual(['r0', 'r2', 'r3', 'r4', 'r5']);
    rendered.compact();
    // A first page alone (rendered now), then more newer snapshots (other lists' first pages)
    // than are kept: the one the rendered page names went, and the page is rendered again.
    expect((await api.listServiceForAllNamespaces({ limit: 2 })).items).toHaveLength(2);
    for (let i = 0; i < 11; i++) await api.listServiceForAllNamespaces({ limit: 2, labelSelector: `k!=v${i}` });
    expect(await listAll()).toEqual(['r0', 'r2', 'r3', 'r4', 'r5']);
    expect(() => server.renderLists(['Service'], 2)).toThrow(/renderListPages/);
  });

  it('delivers an in-stream 410 ERROR to the watch callback and then ends it (done with no error)', async () => {
    const old = server.resourceVersion;
    server.apply(svc('c1', 'compacted'));
    server.compact();
    const w = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: old });
    const err = await w.end();
    expect(err).toBeNull();
    expect(w.events).toHaveLength(1);
    expect(w.events[0].type).toBe('ERROR');
    expect(w.events[0].object).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });

    // on an already-open watch
    const w2 = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatches('Service', 1);
    expect(server.expireOpenWatches('Service')).toBe(1);
    expect(await w2.end()).toBeNull();
    expect(w2.events.map((e) => `${e.type} ${e.object.code}`)).toEqual(['ERROR 410']);

    // as an HTTP status on the watch request: done gets an Error with statusCode 410
    server.failWatch(410, { times: 1 });
    const w3 = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion });
    const httpErr = (await w3.end()) as { statusCode?: number; message: string };
    expect(httpErr.statusCode).toBe(410);
    expect(httpErr.message).toBe('Gone');
  });

  it('keeps an informer in sync, and it relists after a 410', async () => {
    const kc = kubeConfig();
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/inf/services', () => api.listNamespacedService({ namespace: 'inf' }));
    const log: string[] = [];
    const errors: unknown[] = [];
    informer.on('add', (o) => log.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => log.push(`update ${o.metadata?.name}`));
    informer.on('delete', (o) => log.push(`delete ${o.metadata?.name}`));
    informer.on('error', (e) => errors.push(e));
    server.apply(svc('i1', 'inf'));
    const listsBefore = server.requestCount({ kind: 'Service', verb: 'list' });
    try {
      await informer.start();
      await server.waitForWatches('Service', 1);
      expect(log).toEqual(['add i1']);
      const watchReq = server.requestLog.filter((r) => r.verb === 'watch').at(-1)!;
      expect(watchReq.path).toBe('/api/v1/namespaces/inf/services');
      expect(watchReq.query).toEqual({ watch: 'true', resourceVersion: server.resourceVersion });

      server.apply(svc('i2', 'inf'));
      server.apply({ ...svc('i1', 'inf'), metadata: { name: 'i1', namespace: 'inf', labels: { v: '2' } } });
      server.remove('Service', 'inf', 'i2');
      await until(() => log.length >= 4, 'informer events');
      expect(log).toEqual(['add i1', 'add i2', 'update i1', 'delete i2']);

      // 410 on the open watch: the informer forgets its resourceVersion, relists and rewatches
      server.expireOpenWatches('Service');
      await server.waitForRequests({ kind: 'Service', verb: 'list' }, listsBefore + 2);
      await server.waitForWatches('Service', 1);
      server.apply(svc('i3', 'inf'));
      await until(() => log.includes('add i3'), 'add after relist');
      expect(informer.list().map((o) => o.metadata?.name).sort()).toEqual(['i1', 'i3']);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
    await server.waitFor(() => server.openWatches('Service') === 0, 2000, 'informer watch closed');
  });

  it('informer: a clean end rewatches, a 410 relists, any other error stops it until start()', async () => {
    const kc = kubeConfig();
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/inf2/services', () => api.listNamespacedService({ namespace: 'inf2' }));
    const added: string[] = [];
    const errors: Array<{ code?: string }> = [];
    informer.on('add', (o) => added.push(o.metadata!.name!));
    informer.on('error', (e) => errors.push(e as { code?: string }));
    server.apply(svc('j1', 'inf2'));
    const count = (verb: 'list' | 'watch') => server.requestCount({ kind: 'Service', verb });
    try {
      await informer.start();
      await server.waitForWatches('Service', 1);
      const lists = count('list');
      const watches = count('watch');

      // clean end of stream (e.g. timeoutSeconds): rewatch from the last resourceVersion, no relist
      server.endOpenWatches('Service');
      await server.waitForRequests({ kind: 'Service', verb: 'watch' }, watches + 1);
      await server.waitForWatches('Service', 1);
      expect(count('list')).toBe(lists);

      // HTTP 410 on the watch request: relist
      server.failWatch(410, { kind: 'Service', times: 1 });
      server.endOpenWatches('Service');
      await server.waitForRequests({ kind: 'Service', verb: 'list' }, lists + 1);
      await server.waitForWatches('Service', 1);

      // connection dropped: 'error' callback and the informer stays down
      const watchesBeforeDrop = count('watch');
      server.closeAllWatches('Service');
      await until(() => errors.length === 1, 'informer error');
      expect(errors[0].code).toBe('ERR_STREAM_PREMATURE_CLOSE');
      server.apply(svc('j2', 'inf2'));
      await new Promise((r) => setTimeout(r, 100));
      expect(count('watch')).toBe(watchesBeforeDrop);
      expect(server.openWatches('Service')).toBe(0);
      expect(added).toEqual(['j1']);

      // start() again resumes from the remembered resourceVersion (replayed, no relist)
      const listsBeforeRestart = count('list');
      await informer.start();
      await until(() => added.includes('j2'), 'replayed add');
      expect(count('list')).toBe(listsBeforeRestart);
    } finally {
      await informer.stop();
    }
    await server.waitFor(() => server.openWatches('Service') === 0, 2000, 'informer watch closed');
  });

  it('answers a ConfigMap PUT with a stale resourceVersion with 409 Conflict', async () => {
    server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leader', namespace: 'fedns' }, data: { holder: 'a' } });
    const api = core();
    const cm = await api.readNamespacedConfigMap({ name: 'leader', namespace: 'fedns' });
    expect(cm.data).toEqual({ holder: 'a' });
    const staleRv = cm.metadata!.resourceVersion!;

    server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leader', namespace: 'fedns' }, data: { holder: 'b' } });
    const conflict = await rejection(
      api.replaceNamespacedConfigMap({ name: 'leader', namespace: 'fedns', body: { ...cm, data: { holder: 'c' } } }),
    );
    expect(conflict.code).toBe(409);
    expect(JSON.parse(conflict.body as string)).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect(server.get('ConfigMap', 'fedns', 'leader')?.data).toEqual({ holder: 'b' });

    const fresh = await api.readNamespacedConfigMap({ name: 'leader', namespace: 'fedns' });
    expect(fresh.metadata?.resourceVersion).not.toBe(staleRv);
    server.forceConflicts(1);
    const forced = await rejection(api.replaceNamespacedConfigMap({ name: 'leader', namespace: 'fedns', body: { ...fresh, data: { holder: 'c' } } }));
    expect(forced.code).toBe(409);
    const ok = await api.replaceNamespacedConfigMap({ name: 'leader', namespace: 'fedns', body: { ...fresh, data: { holder: 'c' } } });
    expect(ok.data).toEqual({ holder: 'c' });
    expect(Number(ok.metadata?.resourceVersion)).toBeGreaterThan(Number(fresh.metadata?.resourceVersion));
    expect(ok.metadata?.uid).toBe(fresh.metadata?.uid);

    const missing = await rejection(api.readNamespacedConfigMap({ name: 'nope', namespace: 'fedns' }));
    expect(missing.code).toBe(404);
  });

  it('serves ServiceExports as a CRD that can be missing (404 Status)', async () => {
    server.apply({ apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name: 'web', namespace: 'shop' } });
    const custom = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const req = { group: 'multicluster.x-k8s.io', version: 'v1alpha1', plural: 'serviceexports' };
    const list = (await custom.listClusterCustomObject(req)) as { kind: string; items: KubeObject[] };
    expect(list.kind).toBe('ServiceExportList');
    expect(list.items.map((i) => `${i.kind} ${i.metadata?.namespace}/${i.metadata?.name}`)).toEqual(['ServiceExport shop/web']);

    server.setKindEnabled('ServiceExport', false);
    try {
      const err = await rejection(custom.listClusterCustomObject(req));
      expect(err.code).toBe(404);
      expect(JSON.parse(err.body as string)).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    } finally {
      server.setKindEnabled('ServiceExport', true);
    }
  });

  it('injects list/watch faults: 5xx, close-after-headers, silence, malformed line, abrupt close, timeoutSeconds', async () => {
    const api = core();
    server.failList(503, { times: 1 });
    expect((await rejection(api.listServiceForAllNamespaces())).code).toBe(503);
    await expect(api.listServiceForAllNamespaces()).resolves.toBeDefined();

    server.failWatch(500, { times: 1 });
    const w500 = await watchPath(kubeConfig(), '/api/v1/services', {});
    expect(((await w500.end()) as { statusCode: number }).statusCode).toBe(500);

    server.closeWatchesImmediately({ kind: 'Service', times: 1 });
    const closed = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion });
    expect(await closed.end()).toBeNull();
    expect(closed.events).toEqual([]);

    // malformed line: client-node silently skips it, later events still arrive
    server.malformNewWatches({ times: 1 });
    const bad = await watchPath(kubeConfig(), '/api/v1/namespaces/faults/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatches('Service', 1);
    server.apply(svc('f1', 'faults'));
    await until(() => bad.events.length === 1, 'event after malformed line');
    expect(bad.events[0].type).toBe('ADDED');

    // silence: connection stays open but nothing more arrives
    expect(server.silenceOpenWatches('Service')).toBe(1);
    server.apply(svc('f2', 'faults'));
    await new Promise((r) => setTimeout(r, 100));
    expect(bad.events).toHaveLength(1);
    expect(bad.ended).toBe(false);
    expect(server.openWatches('Service')).toBe(1);

    // abrupt close: done gets an error (premature close), not null
    expect(server.closeAllWatches()).toBe(1);
    const abruptErr = (await bad.end()) as Error & { code?: string };
    expect(abruptErr).toBeInstanceOf(Error);
    expect(abruptErr.code).toBe('ERR_STREAM_PREMATURE_CLOSE');

    // timeoutSeconds ends the stream cleanly
    const t0 = Date.now();
    const timed = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion, timeoutSeconds: 1 });
    expect(await timed.end()).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('simulates an unreachable server and comes back on the same port', async () => {
    const api = core();
    const w = await watchPath(kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatches('Service', 1);
    server.breakAll();
    expect(await w.end()).toBeInstanceOf(Error);
    const err = await rejection(api.listServiceForAllNamespaces());
    expect(String(err.message)).toMatch(/ECONNRESET|socket hang up|disconnected/i);
    server.restore();
    await expect(api.listServiceForAllNamespaces()).resolves.toBeDefined();
  });

  it('follows a manifest directory (add/modify/remove)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fake-apiserver-manifests-'));
    try {
      await writeFile(
        path.join(dir, 'a.yaml'),
        ['apiVersion: v1', 'kind: Service', 'metadata: {name: m1, namespace: mf}', 'spec: {clusterIP: 10.1.0.1}', '---',
          'apiVersion: v1', 'kind: Node', 'metadata: {name: node-1}', ''].join('\n'),
      );
      await writeFile(
        path.join(dir, 'b.json'),
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svc('m2', 'mf'), { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'm2-abc', namespace: 'mf', labels: { 'kubernetes.io/service-name': 'm2' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.2.0.1'] }] }] }),
      );
      const loaded = await server.syncManifests(dir);
      expect(loaded.added.sort()).toEqual(['EndpointSlice/mf/m2-abc', 'Node//node-1', 'Service/mf/m1', 'Service/mf/m2']);
      expect(server.get('Node', undefined, 'node-1')?.metadata?.namespace).toBeUndefined();
      const nodes = await core().listNode();
      expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node-1']);
      const slices = await kubeConfig().makeApiClient(k8s.DiscoveryV1Api).listEndpointSliceForAllNamespaces({ labelSelector: 'kubernetes.io/service-name=m2' });
      expect(slices.items.map((e) => e.endpoints[0].addresses)).toEqual([['10.2.0.1']]);

      await writeFile(path.join(dir, 'a.yaml'), ['apiVersion: v1', 'kind: Service', 'metadata: {name: m1, namespace: mf}', 'spec: {clusterIP: 10.1.0.9}', ''].join('\n'));
      await unlink(path.join(dir, 'b.json'));
      const again = await server.syncManifests(dir);
      expect(again.added).toEqual([]);
      expect(again.modified).toEqual(['Service/mf/m1']);
      expect(again.removed.sort()).toEqual(['EndpointSlice/mf/m2-abc', 'Node//node-1', 'Service/mf/m2']);
      expect(server.list('Service', 'mf').map((s) => s.metadata?.name)).toEqual(['m1']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves several clusters from one kubeconfig, and stop() does not hang with open watches', async () => {
    const other = await FakeApiServer.start({ tokens: ['other-token'], serviceExports: false });
    onTestFinished(() => other.stop());
    other.apply({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'x-1', namespace: 'x' }, addressType: 'IPv4', endpoints: [] });
    const kc = new k8s.KubeConfig();
    kc.loadFromString(
      FakeApiServer.combinedKubeconfig([
        { server, context: 'east', token: 'good-token' },
        { server: other, context: 'west', token: 'other-token' },
      ]),
    );
    expect(kc.getContexts().map((c) => c.name)).toEqual(['east', 'west']);
    kc.setCurrentContext('west');
    const westSlices = await kc.makeApiClient(k8s.DiscoveryV1Api).listEndpointSliceForAllNamespaces();
    expect(westSlices.items.map((e) => e.metadata?.name)).toEqual(['x-1']);
    const noCrd = await rejection(
      kc.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({ group: 'multicluster.x-k8s.io', version: 'v1alpha1', plural: 'serviceexports' }),
    );
    expect(noCrd.code).toBe(404);

    const w = await watchPath(kc, '/apis/discovery.k8s.io/v1/endpointslices', { allowWatchBookmarks: true });
    await other.waitForWatches('EndpointSlice', 1);
    const t0 = Date.now();
    await other.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await w.end()).toBeInstanceOf(Error);
  });
});
