/**
 * The member client of `fedns join` (CoreV1Api of @kubernetes/client-node) against the fake
 * kube-apiserver: what each kind of failure becomes (a KubeError with the HTTP status, or 0 when
 * there was no answer, and a message naming the input to fix), and what a PUT carries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeError, MemberClient } from '../../src/join/kube.js';
import { FakeApiServer } from '../support/fake-apiserver.js';

let server: FakeApiServer;
let dir: string;
let kubeconfig: string;

beforeAll(async () => {
  server = await FakeApiServer.start({ forbiddenTokens: ['read-only-token'] });
  dir = mkdtempSync(join(tmpdir(), 'fedns-join-kube-'));
  kubeconfig = server.writeKubeconfig(join(dir, 'member.yaml'), { context: 'member' });
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.restore();
  server.clearFaults();
  server.allowAll();
  server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: 'kube-system' }, data: { Corefile: '.:53 {\n}\n' } });
  server.resetRequestLog();
});

async function failure(p: Promise<unknown>): Promise<KubeError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(KubeError);
  return e as KubeError;
}

describe('MemberClient', () => {
  it('reads a ConfigMap; an absent one is undefined (404 is not an error here)', async () => {
    const c = await MemberClient.open(kubeconfig);
    expect(c.context).toBe('member');
    expect(c.server).toBe(server.url);
    const cm = await c.getConfigMap('kube-system', 'coredns');
    expect(cm?.data).toEqual({ Corefile: '.:53 {\n}\n' });
    expect(cm?.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await c.getConfigMap('kube-system', 'kube-dns')).toBeUndefined();
    expect(server.requestLog.map((q) => `${q.method} ${q.path} ${q.status}`)).toEqual([
      'GET /api/v1/namespaces/kube-system/configmaps/coredns 200',
      'GET /api/v1/namespaces/kube-system/configmaps/kube-dns 404',
    ]);
  });

  it('replaces with the resourceVersion read: a stale one is a 409 KubeError (conflict), a blind one is refused', async () => {
    const c = await MemberClient.open(kubeconfig);
    const cm = (await c.getConfigMap('kube-system', 'coredns'))!;
    const updated = await c.replaceConfigMap({ ...cm, data: { Corefile: 'x\n' } });
    expect(updated.data).toEqual({ Corefile: 'x\n' });
    expect(updated.metadata.resourceVersion).not.toBe(cm.metadata.resourceVersion);
    expect(server.get('ConfigMap', 'kube-system', 'coredns')!.data).toEqual({ Corefile: 'x\n' });
    const stale = await failure(c.replaceConfigMap({ ...cm, data: { Corefile: 'y\n' } }));
    expect(stale.status).toBe(409);
    expect(stale.conflict).toBe(true);
    expect(stale.message).toMatch(/^PUT \/api\/v1\/namespaces\/kube-system\/configmaps\/coredns on https:\/\/127\.0\.0\.1:\d+ \(context "member" of kubeconfig .*member\.yaml\): HTTP 409: /);
    expect(server.get('ConfigMap', 'kube-system', 'coredns')!.data).toEqual({ Corefile: 'x\n' });
    await expect(c.replaceConfigMap({ ...cm, metadata: { ...cm.metadata, resourceVersion: undefined } })).rejects.toThrow(/resourceVersion is required/);
  });

  it('401 and 403: credentials rejected, with the RBAC the command needs', async () => {
    const bad = await MemberClient.open(server.writeKubeconfig(join(dir, 'bad.yaml'), { context: 'bad', token: 'wrong' }));
    const e401 = await failure(bad.getConfigMap('kube-system', 'coredns'));
    expect(e401.status).toBe(401);
    expect(e401.message).toMatch(/^credentials rejected by https:\/\/127\.0\.0\.1:\d+ \(context "bad" of kubeconfig .*bad\.yaml\) \(HTTP 401\): check the kubeconfig user \/ RBAC/);
    const ro = await MemberClient.open(server.writeKubeconfig(join(dir, 'ro.yaml'), { context: 'ro', token: 'read-only-token' }));
    const e403 = await failure(ro.getConfigMap('kube-system', 'coredns'));
    expect(e403.status).toBe(403);
    expect(e403.message).toMatch(/\(HTTP 403: .*forbidden.*\): check the kubeconfig user \/ RBAC \(needs get\/update on configmaps in kube-system\)$/i);
  });

  it('500 on a read or a write: the status and the server\'s message, not a conflict', async () => {
    const c = await MemberClient.open(kubeconfig);
    server.failRequests(500, { verb: 'get', times: 1 });
    const g = await failure(c.getConfigMap('kube-system', 'coredns'));
    expect(g.status).toBe(500);
    expect(g.conflict).toBe(false);
    expect(g.message).toMatch(/^GET \/api\/v1\/namespaces\/kube-system\/configmaps\/coredns on .*: HTTP 500: Internal error occurred: injected fault$/);
    const cm = (await c.getConfigMap('kube-system', 'coredns'))!;
    server.failRequests(503, { verb: 'update', times: 1 });
    const p = await failure(c.replaceConfigMap(cm));
    expect(p.status).toBe(503);
    expect(p.message).toMatch(/^PUT \/api\/v1\/namespaces\/kube-system\/configmaps\/coredns on .*: HTTP 503/);
  });

  it('TLS: a kubeconfig trusting another CA fails verification, and says where to look', async () => {
    const f = join(dir, 'wrong-ca.yaml');
    writeFileSync(f, server.wrongCaKubeconfig({ context: 'wrong-ca' }));
    const c = await MemberClient.open(f);
    const e = await failure(c.getConfigMap('kube-system', 'coredns'));
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/^TLS verification of https:\/\/127\.0\.0\.1:\d+ \(context "wrong-ca" of kubeconfig .*wrong-ca\.yaml\) failed \([A-Z_]+\): check certificate-authority\(-data\) \/ the server name in the kubeconfig$/);
    expect(server.requestLog).toEqual([]);
  });

  it('client certificates and exec plugins authenticate through the library', async () => {
    for (const auth of ['clientCert', 'exec'] as const) {
      const c = await MemberClient.open(server.writeKubeconfig(join(dir, `${auth}.yaml`), { context: auth, auth }));
      expect((await c.getConfigMap('kube-system', 'coredns'))?.metadata.name, auth).toBe('coredns');
    }
    expect(server.execPluginRuns).toBeGreaterThan(0);
  });

  it('an exec plugin that fails: cannot get credentials, nothing sent', async () => {
    const kc = parse(server.kubeconfig({ context: 'exec', auth: 'exec' })) as { users: Array<{ user: { exec: { command: string } } }> };
    kc.users[0].user.exec.command = join(dir, 'no-such-plugin');
    const f = join(dir, 'broken-exec.yaml');
    writeFileSync(f, stringify(kc));
    const c = await MemberClient.open(f);
    const e = await failure(c.getConfigMap('kube-system', 'coredns'));
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/^kubeconfig .*broken-exec\.yaml: cannot get credentials for context "exec" \(/);
    expect(server.requestLog).toEqual([]);
  });

  it('no answer: a refused connection and a server that never answers (bounded by the timeout)', async () => {
    server.breakAll('reset');
    const c = await MemberClient.open(kubeconfig, undefined, 2000);
    const reset = await failure(c.getConfigMap('kube-system', 'coredns'));
    expect(reset.status).toBe(0);
    expect(reset.message).toMatch(/^cannot reach https:\/\/127\.0\.0\.1:\d+ \(context "member" .*\): .*; check the kubeconfig's server address and that the cluster is up$/);
    server.breakAll('hang');
    const started = Date.now();
    const hang = await failure(c.getConfigMap('kube-system', 'coredns'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(hang.message).toMatch(/^cannot reach .*: ETIMEDOUT no answer within 2 s;/);
  });

  it('a server address that is not an http(s) URL, or plain HTTP with TLS verification on, is reported before any request', async () => {
    const kc = parse(server.kubeconfig({ context: 'odd' })) as { clusters: Array<{ cluster: { server: string } }> };
    kc.clusters[0].cluster.server = 'ftp://127.0.0.1:1';
    const f = join(dir, 'odd.yaml');
    writeFileSync(f, stringify(kc));
    await expect(MemberClient.open(f)).rejects.toThrow(`kubeconfig ${f}: server "ftp://127.0.0.1:1" is not an http(s) URL`);
    kc.clusters[0].cluster.server = 'http://127.0.0.1:1';
    writeFileSync(f, stringify(kc));
    await expect(MemberClient.open(f)).rejects.toThrow(`kubeconfig ${f}: server "http://127.0.0.1:1" is plain HTTP, which needs insecure-skip-tls-verify: true on cluster "odd"`);
  });
});
