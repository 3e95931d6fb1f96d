// Member-cluster credentials other than a bearer token, as a kubeconfig says: a client
// certificate (mutual TLS) and an exec credential plugin. The fake API server verifies client
// certificates against its CA, the way kube-apiserver does with --client-ca-file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeTransport } from '../../src/cluster/kube-http.js';
import { loadKubeClient } from '../../src/cluster/kube.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, publish, QUICK_TIMING, same, useKubeTiming, type Running } from '../support/kube-harness.js';
import { applyInOwnProcess } from '../support/reader-process.js';

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

  /** A fedns whose kubeconfig user reads its token ("token-one") from the file `name`, synced. */
  const runWithTokenFile = async (name: string): Promise<{ r: Running; tokenFile: string }> => {
    const tokenFile = join(dir(), name);
    writeFileSync(tokenFile, 'token-one');
    const withTokenFile = (s: FakeApiServer) => {
      const kc = parse(s.kubeconfig()) as { users: { user: Record<string, unknown> }[] };
      for (const u of kc.users) u.user = { 'token-file': tokenFile };
      return stringify(kc);
    };
    const r = await run(withTokenFile, ['token-one']);
    await eventually(() => r.answer(web), same(['192.0.2.1']), 'synced with the token file');
    return { r, tokenFile };
  };

  it('a token file the kubeconfig names (token-file): a token rotated in it is used once the old one is rejected', async () => {
    // The library reads a kubeconfig's token-file once, as it loads the kubeconfig; projected
    // service-account tokens are rewritten in place, and the kubeconfig itself does not change.
    const { r, tokenFile } = await runWithTokenFile('reader.token');
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

  it('a token file replaced by a FIFO while serving: the log says why, and fedns keeps answering', async () => {
    const { r, tokenFile } = await runWithTokenFile('fifo.token');
    // A read of a FIFO waits for a writer: the check for a rotated token must not read it.
    rmSync(tokenFile);
    execFileSync('mkfifo', [tokenFile]);
    server.tokens.clear();
    server.endOpenWatches();
    await eventually(() => r.fedns.federation.clusters.get('east')?.reason ?? '', (why) => /401/.test(why), 'the token rejected');
    // The new kubeconfig is not loaded (the log says why); the old one is kept, and fedns answers.
    await eventually(() => r.logs.some((l) => /not a regular file/.test(JSON.stringify(l))), (b) => b, 'the log names the FIFO');
    expect(await r.answer(web)).toEqual(['192.0.2.1']);
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

describe('the bundled kubeconfig reader (dist/vendor) against the library, for every credential type', () => {
  // A serving fedns reads kubeconfigs with client-node's KubeConfig as scripts/bundle-kube-config.mjs
  // bundles it. A module the bundle left out, or one that works only where the library lies,
  // shows here as a credential type whose request options differ from the library's own.
  let server: FakeApiServer | undefined;
  const envBefore = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    for (const [k, v] of [['KUBERNETES_SERVICE_HOST', envBefore.host], ['KUBERNETES_SERVICE_PORT', envBefore.port]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  /** What a request made with these options carries: credentials, TLS settings and the agent's kind. */
  const carried = (o: Record<string, unknown>) => {
    const text = (v: unknown) => (v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
    const agent = o.agent as { constructor: { name: string }; proxy?: unknown; options?: Record<string, unknown> } | undefined;
    const proxy = agent?.proxy as { href?: string; host?: string; port?: number; type?: number } | undefined;
    return {
      headers: o.headers,
      auth: o.auth,
      ca: text(o.ca),
      cert: text(o.cert),
      key: text(o.key),
      rejectUnauthorized: o.rejectUnauthorized,
      servername: o.servername,
      agent: agent?.constructor.name,
      proxy: proxy === undefined ? undefined : (proxy.href ?? `${proxy.host}:${proxy.port} socks${proxy.type}`),
    };
  };

  it('gives the same request options as the library, and the credentials each type names', async () => {
    server = await FakeApiServer.start();
    const d = dir();
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const certUser = (parse(server.kubeconfig({ auth: 'clientCert' })) as { users: { user: Record<string, string> }[] }).users[0].user;
    const clientCert = Buffer.from(certUser['client-certificate-data'], 'base64').toString();
    const clientKey = Buffer.from(certUser['client-key-data'], 'base64').toString();
    for (const [name, text] of [['ca.pem', server.caPem], ['client.pem', clientCert], ['client.key', clientKey], ['user.token', 'from-token-file']])
      writeFileSync(join(d, name), text);
    const jwt = (exp: number) => ['{"alg":"none"}', JSON.stringify({ exp })].map((p) => Buffer.from(p).toString('base64url')).join('.') + '.sig';
    const idToken = jwt(Math.floor(Date.now() / 1000) + 3600);
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const node = (out: object) => ({ 'cmd-path': process.execPath, 'cmd-args': `-e 'process.stdout.write(${JSON.stringify(JSON.stringify(out))})'` });
    const refreshed = { 'access-token': 'expired', expiry: '2000-01-01T00:00:00Z', 'token-key': '{.t}', 'expiry-key': '{.e}' };
    const execCredential = (status: object) => ({
      apiVersion: 'client.authentication.k8s.io/v1',
      command: process.execPath,
      args: ['-e', `process.stdout.write(${JSON.stringify(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }))})`],
      interactiveMode: 'Never',
    });
    const kubeconfig = (cluster: Record<string, unknown>, user: Record<string, unknown>) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        clusters: [{ name: 'k', cluster: { server: server!.url, 'certificate-authority-data': b64(server!.caPem), ...cluster } }],
        users: [{ name: 'u', user }],
      });
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    const cases: [string, string, Partial<ReturnType<typeof carried>>][] = [
      ['token', kubeconfig({}, { token: 'plain' }), { headers: bearer('plain'), agent: 'Agent' }],
      ['token-file', kubeconfig({}, { 'token-file': join(d, 'user.token') }), { headers: bearer('from-token-file') }],
      ['client certificate files', kubeconfig({ 'certificate-authority-data': undefined, 'certificate-authority': join(d, 'ca.pem') }, { 'client-certificate': join(d, 'client.pem'), 'client-key': join(d, 'client.key') }), { ca: server.caPem, cert: clientCert, key: clientKey }],
      ['client certificate data', kubeconfig({}, { 'client-certificate-data': b64(clientCert), 'client-key-data': b64(clientKey) }), { cert: clientCert, key: clientKey }],
      ['basic auth', kubeconfig({}, { username: 'u', password: 'p' }), { auth: 'u:p' }],
      ['exec plugin token', kubeconfig({}, { exec: execCredential({ token: 'from-exec' }) }), { headers: bearer('from-exec') }],
      ['exec plugin certificate', kubeconfig({}, { exec: execCredential({ clientCertificateData: clientCert, clientKeyData: clientKey }) }), { cert: clientCert, key: clientKey }],
      ['auth-provider oidc', kubeconfig({}, { 'auth-provider': { name: 'oidc', config: { 'id-token': idToken, 'client-id': 'fedns', 'idp-issuer-url': 'https://127.0.0.1:9', 'refresh-token': 'r' } } }), { headers: bearer(idToken) }],
      ['auth-provider azure', kubeconfig({}, { 'auth-provider': { name: 'azure', config: { 'access-token': 'azure-token', expiry: later } } }), { headers: bearer('azure-token') }],
      ['auth-provider azure, refreshed by its command', kubeconfig({}, { 'auth-provider': { name: 'azure', config: { ...refreshed, ...node({ t: 'azure-refreshed', e: later }) } } }), { headers: bearer('azure-refreshed') }],
      ['auth-provider gcp', kubeconfig({}, { 'auth-provider': { name: 'gcp', config: { 'access-token': 'gcp-token', expiry: later } } }), { headers: bearer('gcp-token') }],
      ['auth-provider gcp, refreshed by its command', kubeconfig({}, { 'auth-provider': { name: 'gcp', config: { ...refreshed, ...node({ t: 'gcp-refreshed', e: later }) } } }), { headers: bearer('gcp-refreshed') }],
      ['http proxy', kubeconfig({ 'proxy-url': 'http://127.0.0.1:3128' }, { token: 't' }), { agent: 'HttpsProxyAgent', proxy: 'http://127.0.0.1:3128/' }],
      ['socks5 proxy', kubeconfig({ 'proxy-url': 'socks5://127.0.0.1:1080' }, { token: 't' }), { agent: 'SocksProxyAgent', proxy: '127.0.0.1:1080 socks5' }],
      ['insecure, TLS server name', kubeconfig({ 'certificate-authority-data': undefined, 'insecure-skip-tls-verify': true, 'tls-server-name': 'api.internal' }, { token: 't' }), { rejectUnauthorized: false, servername: 'api.internal' }],
    ];
    const bundle = await loadKubeClient();
    const apply = async (kc: KubeConfig) => {
      const opts: Record<string, unknown> = {};
      await kc.applyToHTTPSOptions(opts);
      (opts.agent as { destroy?: () => void } | undefined)?.destroy?.();
      return carried(opts);
    };
    const loaded = (Reader: new () => KubeConfig, text: string) => {
      const kc = new Reader();
      kc.loadFromString(text);
      kc.makePathsAbsolute(d);
      return kc;
    };
    for (const [what, text, expected] of cases) {
      const got = await apply(loaded(bundle.KubeConfig, text));
      expect(got, what).toEqual(await apply(loaded(KubeConfig, text)));
      expect(got, what).toMatchObject(expected);
    }

    // In a pod: the service account's token and CA, the API server from the environment.
    const sa = join(d, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'service-account-token');
    writeFileSync(join(sa, 'ca.crt'), server.caPem);
    writeFileSync(join(sa, 'namespace'), 'fedns');
    process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    const inPod = async (kc: KubeConfig) => {
      kc.loadFromCluster(d);
      return { server: kc.getCurrentCluster()?.server, namespace: kc.getContextObject(kc.getCurrentContext())?.namespace, ...(await apply(kc)) };
    };
    const got = await inPod(new bundle.KubeConfig());
    expect(got).toEqual(await inPod(new KubeConfig()));
    expect(got).toMatchObject({ server: 'https://[fd00::1]:443', namespace: 'fedns', headers: bearer('service-account-token'), ca: server.caPem });
  });

  // The library hands openid-client's discovery() the issuer as a string, which openid-client 6
  // refuses ('"server" must be an instance of URL'): with the library, an expired id-token is
  // never refreshed. The bundle's stand-in passes a URL (scripts/bundle-kube-config.mjs).
  it('refreshes an expired OIDC id-token at the issuer, which the library alone cannot', async () => {
    server = await FakeApiServer.start();
    const d = dir();
    const jwt = (claims: object) => [{ alg: 'RS256', typ: 'JWT' }, claims].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.') + '.c2ln';
    const now = Math.floor(Date.now() / 1000);
    const asked: string[] = [];
    let issuer = '';
    const fresh = () => jwt({ iss: issuer, sub: 'fedns', aud: 'fedns', iat: now, exp: now + 3600 });
    let issued = '';
    const idp = createServer(server.tlsIdentity, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        asked.push(`${req.method} ${req.url} ${body}`);
        res.setHeader('content-type', 'application/json');
        if (req.url === '/idp/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token` }));
        else if (req.url === '/idp/token' && new URLSearchParams(body).get('refresh_token') === 'refresh-me')
          res.end(JSON.stringify({ access_token: 'a', token_type: 'Bearer', expires_in: 3600, refresh_token: 'next', id_token: (issued = fresh()) }));
        else res.writeHead(400).end('{"error":"invalid_request"}');
      });
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    try {
      issuer = `https://127.0.0.1:${(idp.address() as AddressInfo).port}/idp`;
      const expired = jwt({ iss: issuer, sub: 'fedns', aud: 'fedns', iat: now - 7200, exp: now - 3600 });
      const user = { 'auth-provider': { name: 'oidc', config: { 'id-token': expired, 'refresh-token': 'refresh-me', 'client-id': 'fedns', 'idp-issuer-url': issuer } } };
      writeFileSync(join(d, 'ca.pem'), server.caPem);
      // openid-client fetches with Node.js's own fetch, which trusts a CA given when node starts.
      const run = await applyInOwnProcess(
        {
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': 'c',
          contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
          clusters: [{ name: 'k', cluster: { server: server.url } }],
          users: [{ name: 'u', user }],
        },
        { NODE_EXTRA_CA_CERTS: join(d, 'ca.pem') },
      );
      expect(run.error).toBeUndefined();
      expect(run.headers).toEqual({ Authorization: `Bearer ${issued}` });
      expect(issued).not.toBe('');
      expect(asked.some((a) => a.startsWith('POST /idp/token ') && a.includes('grant_type=refresh_token'))).toBe(true);
    } finally {
      idp.close();
    }
  });
});
