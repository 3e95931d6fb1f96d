/**
 * The clusterset zone (mcs) built in memory: which clusters contribute (exported only), where the
 * ClusterSetIP comes from (agreeing ServiceImports, a ready backend), cluster IDs from the
 * ClusterProperty, and that the federation zone is unaffected.
 */
import { describe, expect, it } from 'vitest';
import { packSlice, slimEndpointSlice, type SlimEndpoint, type SlimEndpointSlice } from '../../src/cluster/objects.js';
import { Federation, type FederationSettings } from '../../src/federation/federation.js';
import { RRType } from '../../src/wire/constants.js';
import { nameKey } from '../../src/wire/name.js';
import type { ZoneSnapshot } from '../../src/zone/snapshot.js';
import { seed, svc, testFederationSettings } from '../support/federation.js';

function settings(): FederationSettings {
  const s = testFederationSettings();
  return { ...s, clusterSet: { apex: { ...s.apex, domain: 'clusterset.local.' }, naming: { domain: 'clusterset.local.' } } };
}

const slice = (service: string, addrs: string[], over: Partial<SlimEndpoint> = {}): SlimEndpointSlice =>
  packSlice({
    namespace: 'ns',
    name: `${service}-${addrs.join('-')}`,
    service,
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    endpoints: addrs.map((a) => ({ addresses: [a], ready: true, ...over })),
  });
const exported = (name: string) => ({ namespace: 'ns', name });

function data(z: ZoneSnapshot | undefined, name: string, type: number = RRType.A): string[] | undefined {
  const node = z?.names.get(nameKey(name));
  return node?.rrsets.get(type)?.map((r) => String(r.data)).sort();
}

function twoClusters() {
  const fed = new Federation(settings());
  const a = fed.addCluster({ name: 'a', region: 'r', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
  const b = fed.addCluster({ name: 'b', region: 'r', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
  return { fed, a, b };
}

describe('clusterset zone', () => {
  it('has only exported services, and only the exporting clusters\' addresses; the federation zone keeps every service', () => {
    const { fed, a, b } = twoClusters();
    seed(a, [svc('web', ['192.0.2.1']), slice('web', ['10.0.0.1']), exported('web'), svc('hidden', ['192.0.2.9']), slice('hidden', ['10.0.0.9'])]);
    seed(b, [svc('web', ['192.0.2.2']), slice('web', ['10.0.0.2'])]);
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['192.0.2.1']);
    expect(data(fed.clusterSetSnapshot, 'hidden.ns.svc.clusterset.local.')).toBeUndefined();
    expect(data(fed.snapshot, 'web.ns.fed.svc.example.com.')).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(data(fed.clusterSetSnapshot, 'dns-version.clusterset.local.', RRType.TXT)).toEqual(['1.0.0']);
  });

  it('headless SRV records pair each endpoint with the ports of its own slices, in both zones', () => {
    const { fed, a, b } = twoClusters();
    // A named targetPort that is 8080 for some pods and 9090 for others: Kubernetes splits the
    // slices by it; another cluster's copy may differ again.
    const headless = svc('hp', [], { headless: true, ports: [{ name: 'http', port: 80, protocol: 'tcp' }] });
    const sliceOn = (name: string, port: number, addr: string, hostname: string) =>
      packSlice({ namespace: 'ns', name, service: 'hp', addressType: 'IPv4', ports: [{ name: 'http', port, protocol: 'tcp' }], endpoints: [{ addresses: [addr], ready: true, hostname }] });
    seed(a, [headless, sliceOn('hp-1', 8080, '10.7.0.1', 'pa'), sliceOn('hp-2', 9090, '10.7.0.2', 'pb'), exported('hp')]);
    seed(b, [headless, sliceOn('hp-1', 7070, '10.8.0.1', 'pc'), exported('hp')]);
    fed.rebuild();
    const srv = (z: ZoneSnapshot | undefined, name: string) =>
      z?.names
        .get(nameKey(name))
        ?.rrsets.get(RRType.SRV)
        ?.map((r) => {
          const d = r.data as { port: number; target: string };
          return `${d.target.split('.')[0]}:${d.port}`;
        })
        .sort();
    expect(srv(fed.snapshot, '_http._tcp.hp.ns.fed.svc.example.com.')).toEqual(['pa:8080', 'pb:9090', 'pc:7070']);
    expect(srv(fed.clusterSetSnapshot, '_http._tcp.hp.ns.svc.clusterset.local.')).toEqual(['pa:8080', 'pb:9090', 'pc:7070']);
    // An endpoint in both slices at once (they are being rebalanced) serves on both ports.
    a.upsert('EndpointSlice', packSlice({ namespace: 'ns', name: 'hp-2', service: 'hp', addressType: 'IPv4', ports: [{ name: 'http', port: 9090, protocol: 'tcp' }], endpoints: [{ addresses: ['10.7.0.2'], ready: true, hostname: 'pb' }, { addresses: ['10.7.0.1'], ready: true, hostname: 'pa' }] }));
    a.flush();
    fed.rebuild();
    expect(srv(fed.snapshot, '_http._tcp.hp.ns.fed.svc.example.com.')).toEqual(['pa:8080', 'pa:9090', 'pb:9090', 'pc:7070']);
    expect(srv(fed.clusterSetSnapshot, '_http._tcp.hp.ns.svc.clusterset.local.')).toEqual(['pa:8080', 'pa:9090', 'pb:9090', 'pc:7070']);
    // A port only a slice without ready endpoints names gives no SRV name, in either zone.
    b.upsert('EndpointSlice', packSlice({ namespace: 'ns', name: 'hp-m', service: 'hp', addressType: 'IPv4', ports: [{ name: 'metrics', port: 9100, protocol: 'tcp' }], endpoints: [{ addresses: ['10.8.0.9'], ready: false, hostname: 'pm' }] }));
    b.flush();
    fed.rebuild();
    expect(fed.snapshot.names.get(nameKey('_metrics._tcp.hp.ns.fed.svc.example.com.'))).toBeUndefined();
    expect(fed.clusterSetSnapshot!.names.get(nameKey('_metrics._tcp.hp.ns.svc.clusterset.local.'))).toBeUndefined();
    fed.close();
  });

  it('a name server named dns-version.<Z> keeps its glue beside the TXT record, and a reload changes nothing', () => {
    const s = settings();
    const nameservers = [...s.apex.nameservers, { name: 'dns-version.clusterset.local.', addresses: ['192.0.2.53'] }];
    const withNs = { ...s, clusterSet: { ...s.clusterSet!, apex: { ...s.clusterSet!.apex, nameservers } } };
    const fed = new Federation(withNs);
    const serial = fed.clusterSetSnapshot!.serial;
    expect(data(fed.clusterSetSnapshot, 'dns-version.clusterset.local.', RRType.TXT)).toEqual(['1.0.0']);
    expect(data(fed.clusterSetSnapshot, 'dns-version.clusterset.local.', RRType.A)).toEqual(['192.0.2.53']);
    fed.reconfigure(withNs);
    fed.rebuild();
    expect(fed.clusterSetSnapshot!.serial).toBe(serial);
    fed.close();
  });

  it('a ClusterSetIP the ServiceImports agree on; none when they disagree or no backend is ready', () => {
    const { fed, a, b } = twoClusters();
    seed(a, [svc('web', ['192.0.2.1']), slice('web', ['10.0.0.1']), exported('web')]);
    seed(b, [svc('web', ['192.0.2.2']), slice('web', ['10.0.0.2']), exported('web')]);
    a.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.1'] });
    a.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['10.42.0.1']);
    b.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.2'] });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(fed.clusterSetIpOf('ns/web', fed.clusterSetService('ns/web')!).reason).toMatch(/disagree/);
    b.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.1'] });
    // No ready endpoint anywhere: the ClusterSetIP would lead nowhere.
    a.upsert('EndpointSlice', slice('web', ['10.0.0.1'], { ready: false }));
    b.upsert('EndpointSlice', slice('web', ['10.0.0.2'], { ready: false }));
    a.flush();
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toBeUndefined();
  });

  it('no ClusterSetIP on the word of an FQDN slice, or of a cluster that exports the service without having it', () => {
    const { fed, a, b } = twoClusters();
    const fqdn = slimEndpointSlice({
      metadata: { namespace: 'ns', name: 'web-fqdn', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'FQDN',
      endpoints: [{ addresses: ['nowhere.example.'], conditions: { ready: true } }],
    });
    seed(a, [svc('web', ['192.0.2.1']), slice('web', ['10.0.0.1'], { ready: false }), exported('web')]);
    a.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.1'] });
    a.upsert('EndpointSlice', fqdn);
    a.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toBeUndefined();
    expect(fed.clusterSetIpOf('ns/web', fed.clusterSetService('ns/web')!).reason).toMatch(/no exporting cluster has a ready endpoint/);
    // b exports web and has a ready slice for it, but no Service web: it backs nothing.
    seed(b, [exported('web'), slice('web', ['10.0.0.2'])]);
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toBeUndefined();
    // Its Service arrives: the ClusterSetIP leads somewhere now.
    seed(b, [svc('web', ['192.0.2.2'])]);
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['10.42.0.1']);
    fed.close();
  });

  it('a cluster whose lists held only the export and import of a service gives the ClusterSetIP once it is live', () => {
    const { fed, a, b } = twoClusters();
    seed(a, [svc('web', ['192.0.2.1']), slice('web', ['10.0.0.1']), exported('web')]);
    fed.rebuild();
    // b runs no web of its own; its MCS implementation exports and imports it (lists arrive while b syncs).
    b.upsert('ServiceExport', exported('web'));
    b.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.1'] });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['192.0.2.1']);
    b.markLive();
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['10.42.0.1']);
  });

  it('only the exporting clusters\' ServiceImports give the ClusterSetIP: a cluster that does not export the service has no say', () => {
    const { fed, a, b } = twoClusters();
    seed(a, [svc('web', ['192.0.2.1']), slice('web', ['10.0.0.1']), exported('web')]);
    seed(b, [svc('web', ['192.0.2.2']), slice('web', ['10.0.0.2'])]);
    // b does not export web: its ServiceImport alone must not point every client somewhere else.
    b.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['203.0.113.66'] });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['192.0.2.1']);
    // Nor can it knock out the exporting cluster's ClusterSetIP by disagreeing.
    a.upsert('ServiceImport', { namespace: 'ns', name: 'web', headless: false, ips: ['10.42.0.1'] });
    a.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'web.ns.svc.clusterset.local.')).toEqual(['10.42.0.1']);
  });

  it('headless endpoints are named with the ClusterProperty id.k8s.io, else the cluster name; a dotted ID is refused', () => {
    const { fed, a, b } = twoClusters();
    const db = svc('db', [], { headless: true });
    seed(a, [db, { ...slice('db', ['10.0.0.1'], { hostname: 'db-0' }) }, exported('db')]);
    seed(b, [db, { ...slice('db', ['10.0.0.2'], { hostname: 'db-0' }) }, exported('db')]);
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.a.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.1']);
    b.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'cluster-b' });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.cluster-b.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.2']);
    expect(data(fed.clusterSetSnapshot, 'db-0.b.db.ns.svc.clusterset.local.')).toBeUndefined();
    // The federation zone keeps the configured names.
    expect(data(fed.snapshot, 'db-0.b.db.ns.fed.svc.example.com.')).toEqual(['10.0.0.2']);
    b.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'b.example.org' });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.b.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.2']);
    expect(fed.ignored.entries().some(([reason]) => reason === 'cluster id')).toBe(true);
    // The reserved <clusterid>.<svc> name has no records.
    expect(fed.clusterSetSnapshot!.names.get(nameKey('a.db.ns.svc.clusterset.local.'))?.rrsets.size).toBe(0);
  });

  it('a cluster ID that another cluster holds is refused: one cluster cannot take another\'s endpoint names', () => {
    const { fed, a, b } = twoClusters();
    const db = svc('db', [], { headless: true });
    seed(a, [db, { ...slice('db', ['10.0.0.1'], { hostname: 'db-0' }) }, exported('db')]);
    seed(b, [db, { ...slice('db', ['10.0.0.2'], { hostname: 'db-0' }) }, exported('db')]);
    // b claims a's name as its ID: db-0.a would answer b's pod beside a's.
    b.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'a' });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.a.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.1']);
    expect(data(fed.clusterSetSnapshot, 'db-0.b.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.2']);
    expect(fed.ignored.entries().some(([reason]) => reason === 'cluster id')).toBe(true);
    // Both claim one ID: neither gets it, each keeps its own name.
    a.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'shared' });
    b.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'shared' });
    a.flush();
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.shared.db.ns.svc.clusterset.local.')).toBeUndefined();
    expect(data(fed.clusterSetSnapshot, 'db-0.a.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.1']);
    expect(data(fed.clusterSetSnapshot, 'db-0.b.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.2']);
    // Once the IDs differ again, both are used.
    b.upsert('ClusterProperty', { namespace: '', name: 'id.k8s.io', value: 'other' });
    b.flush();
    fed.rebuild();
    expect(data(fed.clusterSetSnapshot, 'db-0.shared.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.1']);
    expect(data(fed.clusterSetSnapshot, 'db-0.other.db.ns.svc.clusterset.local.')).toEqual(['10.0.0.2']);
  });
});
