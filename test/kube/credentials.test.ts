// Member-cluster credentials other than a bearer token, as a kubeconfig says: a client
// certificate (mutual TLS) and an exec credential plugin. The fake API server verifies client
// certificates against its CA, the way kube-apiserver does with --client-ca-file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeTransport } from '../../src/cluster/kube-http.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, publish, QUICK_TIMING, same, useKubeTiming, type Running } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);

const { startFedns, dir } = kubeHarness('fedns-kube-creds-');
const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });
const web = 'web.shop.fed.example.com.';

describe('kube source: client certificate and exec plugin credentials', () => {
  // A fresh API server per test: no request of one test's fedns can land in another's log.
  let server: FakeApiServer;
  let f: Running | undefined;

  afterEach(async () => {
    await f?.stop();
    await server?.stop();
    f = undefined;
  });

  const run = async (kubeconfig: (s: FakeApiServer) => string, tokens: string[] = []): Promise<Running> => {
    server = await FakeApiServer.start({ bookmarkIntervalMs: 200, tokens: ['test-token', ...tokens] });
    publish(server, 'shop', 'web', '192.0.2.1');
    f = await startFedns([{ name: 'east', server, region: 'r1', kubeconfig: kubeconfig(server) }]);
    return f;
  };

  it('a client certificate authenticates every request (no token sent); changes flow', async () => {
    const r = await run((s) => s.kubeconfig({ auth: 'clientCert' }));
    await eventually(() => r.answer(web), same(['192.0.2.1']), 'synced with a client certificate');
    publish(server, 'shop', 'web', '192.0.2.2');
    await eventually(() => r.answer(web), same(['192.0.2.2']), 'a change through the watch');
    const requests = server.requestLog.filter((q) => q.verb === 'list' || q.verb === 'watch');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((q) => q.clientCert === 'fedns-client' && q.token === undefined && q.status === 200)).toBe(true);
    expect(r.health('east')).toBe('live');
  });

  it('a client certificate from another CA is rejected: 401 as the health reason, never live', async () => {
    const r = await run((s) => s.kubeconfig({ auth: 'wrongClientCert' }));
    await server.waitForRequests({ verb: 'list' }, 3);
    expect(r.health('east')).toBe('syncing');
    expect(r.fedns.federation.clusters.get('east')!.reason).toMatch(/credentials rejected \(401\)/);
    expect(server.requestLog.every((q) => q.clientCert === undefined && q.status === 401)).toBe(true);
  });

  it('an exec credential plugin supplies the token; its token is what the server sees', async () => {
    const r = await run((s) => s.kubeconfig({ auth: 'exec', token: 'from-exec-plugin' }), ['from-exec-plugin']);
    publish(server, 'shop', 'web', '192.0.2.3');
    await eventually(() => r.answer(web), same(['192.0.2.3']), 'synced with the exec plugin token');
    expect(server.execPluginRuns).toBeGreaterThan(0);
    const requests = server.requestLog.filter((q) => q.verb === 'list' || q.verb === 'watch');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((q) => q.token === 'from-exec-plugin')).toBe(true);
  });

  it('a token file the kubeconfig names (token-file): a token rotated in it is used once the old one is rejected', async () => {
    // The library reads a kubeconfig's token-file once, as it loads the kubeconfig; projected
    // service-account tokens are rewritten in place, and the kubeconfig itself does not change.
    const tokenFile = join(dir(), 'reader.token');
    writeFileSync(tokenFile, 'token-one');
    const withTokenFile = (s: FakeApiServer) => {
      const kc = parse(s.kubeconfig()) as { users: { user: Record<string, unknown> }[] };
      for (const u of kc.users) u.user = { 'token-file': tokenFile };
      return stringify(kc);
    };
    const r = await run(withTokenFile, ['token-one']);
    await eventually(() => r.answer(web), same(['192.0.2.1']), 'synced with the token file');
    expect(server.requestLog.filter((q) => q.verb === 'list').every((q) => q.token === 'token-one')).toBe(true);
    // Rotation: the file holds a new token, and the server takes only that one from now on.
    writeFileSync(tokenFile, 'token-two');
    server.tokens.clear();
    server.tokens.add('token-two');
    server.endOpenWatches();
    await eventually(() => server.requestLog.some((q) => q.status === 401), (b) => b, 'the old token rejected');
    publish(server, 'shop', 'web', '192.0.2.4');
    await eventually(() => r.answer(web), same(['192.0.2.4']), 'synced again with the rotated token');
    expect(server.requestLog.some((q) => q.token === 'token-two' && q.status === 200)).toBe(true);
    await eventually(() => r.health('east'), (h) => h === 'live', 'live again');
  });

  it('an exec plugin that fails: its error is the health reason, and it is run again', async () => {
    const r = await run((s) => s.kubeconfig({ auth: 'exec', token: 'fail' }));
    const runsBefore = server.execPluginRuns;
    await eventually(() => r.fedns.federation.clusters.get('east')!.reason, (reason) => /^credentials: .*plugin: login required/s.test(reason), 'the plugin error as the reason');
    await eventually(() => server.execPluginRuns, (n) => n >= runsBefore + 3, 'the plugin retried');
    expect(r.health('east')).toBe('syncing');
    expect(server.requestLog.filter((q) => q.verb === 'list' || q.verb === 'watch')).toEqual([]);
  });
});

describe('kube transport: TLS identities that rotate (exec-plugin client certificates)', () => {
  let server: FakeApiServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('keeps one HTTPS agent per identity in use: the old ones are destroyed once their requests end', async () => {
    server = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    publish(server, 'shop', 'web', '192.0.2.1');
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    // Every call hands out a new TLS identity, as an exec plugin that rotates its certificate
    // does (here the same CA with a different trailing comment: another identity to the agent).
    let rotation = 0;
    const apply = kc.applyToHTTPSOptions.bind(kc);
    kc.applyToHTTPSOptions = async (opts) => {
      await apply(opts);
      opts.ca = `${String(opts.ca)}\n# rotation ${++rotation}\n`;
    };
    const transport = new KubeTransport(kc, 5000);
    const stop = new AbortController();
    try {
      // A watch opened with the first identity stays open across the rotations.
      const watch = await transport.openStream('/api/v1/services', { watch: 'true', resourceVersion: '0' }, stop.signal);
      for (let i = 0; i < 30; i++) {
        const list = (await transport.getJson('/api/v1/services', {}, stop.signal)) as { items: unknown[] };
        expect(list.items).toHaveLength(1);
        // The watch's identity (in use) and the current one: never more.
        expect(transport.agentCount()).toBeLessThanOrEqual(2);
      }
      expect(rotation).toBeGreaterThanOrEqual(31);
      watch.abort();
      await new Promise((r) => setTimeout(r, 50));
      expect(transport.agentCount()).toBe(1);
    } finally {
      stop.abort();
      transport.close();
    }
    expect(transport.agentCount()).toBe(0);
  });
});
