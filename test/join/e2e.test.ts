/**
 * End to end: `fedns join` edits a (fake) member cluster's kube-dns ConfigMap; dnsmasq is then
 * started with the arguments kube-dns's dnsmasq-nanny derives from that ConfigMap
 * (`--server=/example.com/127.0.0.1#PORT`), and a federated name asked of dnsmasq is answered
 * by a running fedns (the demo configuration, on a free loopback port). Before join and after
 * unjoin, the derived arguments do not route the federation domain at all.
 *
 * Needs dnsmasq and dig (skips loudly without them; FEDNS_STRICT_PEERS=1 makes that a failure)
 * and the built CLI (dist/), which the documented `npm run build && npx vitest run`
 * provides.
 */
import { mkdirSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeDnsDnsmasqArgs } from '../../src/join/edit.js';
import { join, unjoin } from '../../src/join/join.js';
import { demoCopy } from '../support/demo.js';
import { dig, summarise } from '../support/dig.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { startFedns, type FednsProcess } from '../support/fedns.js';
import { requirePeers, startDnsmasq, type PeerHandle } from '../support/peers.js';

const hasPeers = requirePeers('dnsmasq', 'dig');

/** Only loopback servers: whatever the ConfigMap says, the test sends nothing off this host. */
const loopbackOnly = (args: string[]) => args.filter((a) => /^--server=\/[^/]+\/127\.0\.0\.1(#\d+)?$/.test(a));

describe.skipIf(!hasPeers)('join end to end: kube-dns (dnsmasq) -> fedns', () => {
  let server: FakeApiServer;
  let fedns: FednsProcess;
  let scratch: { dir: string; config: string; cleanup(): void };
  let kubeconfig: string;
  const peers: PeerHandle[] = [];

  beforeAll(async () => {
    server = await FakeApiServer.start();
    server.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      data: { stubDomains: '{"acme.local": ["10.0.0.10"]}' },
    });
    fedns = await startFedns();
    // join edits its own copy of the configuration, not the one the running fedns serves
    scratch = demoCopy();
    mkdirSync(joinPath(scratch.dir, 'kubeconfigs'));
    kubeconfig = server.writeKubeconfig(joinPath(scratch.dir, 'kubeconfigs', 'member.yaml'), { context: 'member' });
  });
  afterAll(async () => {
    for (const p of peers) await p.stop();
    await fedns?.stop();
    await server?.stop();
    scratch?.cleanup();
  });

  const kubeDnsData = () => server.get('ConfigMap', 'kube-system', 'kube-dns')!.data as Record<string, string>;

  async function dnsmasqFromConfigMap(): Promise<PeerHandle> {
    const args = loopbackOnly(kubeDnsDnsmasqArgs(kubeDnsData()));
    // startDnsmasq always adds one --server line of its own: give it a domain nobody asks for.
    const d = await startDnsmasq({ upstreamPort: fedns.port, domain: 'unused.invalid', extraArgs: ['--cache-size=0', ...args] });
    peers.push(d);
    return d;
  }

  it('before join, the nanny args do not route the federation domain (dnsmasq refuses it)', async () => {
    expect(kubeDnsDnsmasqArgs(kubeDnsData())).toEqual(['--server=/acme.local/10.0.0.10']);
    const d = await dnsmasqFromConfigMap();
    const r = await dig(['@127.0.0.1', '-p', String(d.port), 'nginx.default.fed.example.com', 'A']);
    expect(r.status, summarise(r)).toBe('REFUSED');
    await d.stop();
  });

  it('after join, dnsmasq with the derived args resolves a federated name through fedns', async () => {
    await join({ cluster: 'member', kubeconfig, nameserver: `127.0.0.1:${fedns.port}`, config: scratch.config });
    const args = kubeDnsDnsmasqArgs(kubeDnsData());
    expect(args).toEqual(['--server=/acme.local/10.0.0.10', `--server=/example.com/127.0.0.1#${fedns.port}`, `--server=/clusterset.local/127.0.0.1#${fedns.port}`]);
    const d = await dnsmasqFromConfigMap();
    const r = await dig(['@127.0.0.1', '-p', String(d.port), 'nginx.default.fed.example.com', 'A']);
    expect(r.status, summarise(r)).toBe('NOERROR');
    expect(r.flags.has('ra')).toBe(true); // answered by the forwarder...
    expect(r.answer.filter((a) => a.type === 'A').map((a) => a.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
    // ...from fedns: the same answer straight from it, authoritative
    const direct = await dig(['@127.0.0.1', '-p', String(fedns.port), '+norec', 'nginx.default.fed.example.com', 'A']);
    expect(direct.flags.has('aa')).toBe(true);
    expect(direct.answer.map((a) => a.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
    await d.stop();
  });

  it('after unjoin, the derived args are back to what they were', async () => {
    await unjoin({ cluster: 'member', config: scratch.config });
    expect(kubeDnsData()).toEqual({ stubDomains: '{"acme.local": ["10.0.0.10"]}' });
    expect(kubeDnsDnsmasqArgs(kubeDnsData())).toEqual(['--server=/acme.local/10.0.0.10']);
  });
});
