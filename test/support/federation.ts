/**
 * The in-memory federation the unit tests and the benchmarks build: apex example.com. with
 * ns1.example.com. (glue 192.0.2.53), names under "fed", selection "all" and panic mode on.
 *
 *   const fed = new Federation(testFederationSettings({ panicMode: false }));
 *   const c = fed.addCluster({ name: 'one', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
 *   seed(c, [service, endpointSlice]);
 *   fed.rebuild();
 */
import { packSlice, type EndpointSliceParts, type SlimEndpointSlice, type SlimPort, type SlimService, type SlimServiceExport } from '../../src/cluster/objects.js';
import type { ClusterState } from '../../src/cluster/state.js';
import type { Federation, FederationSettings } from '../../src/federation/federation.js';
import type { FederationPolicy } from '../../src/federation/model.js';

/** Federation settings for tests and benchmarks; `policy` overrides the default policy's fields. */
export function testFederationSettings(policy: Partial<FederationPolicy> = {}): FederationSettings {
  return {
    apex: {
      domain: 'example.com.',
      soa: { mname: 'ns1.example.com.', rname: 'hostmaster.example.com.', refresh: 3600, retry: 600, expire: 86400, minimum: 30, ttl: 3600 },
      nameservers: [{ name: 'ns1.example.com.', addresses: ['192.0.2.53'] }],
      nsTtl: 3600,
    },
    naming: { domain: 'example.com.', federation: 'fed' },
    policy: { selection: 'all', defaultTtl: 30, staleTtl: 5, panicMode: true, ...policy },
  };
}

export type SeedObject = SlimService | SlimEndpointSlice | EndpointSliceParts | SlimServiceExport;

/**
 * Applies these objects to a cluster in order (an object with `addresses` or `endpoints` is an EndpointSlice,
 * one with `lbAddresses` a Service, anything else a ServiceExport), then marks the cluster live
 * and flushes its changes to the federation, as a completed initial list would. The caller
 * rebuilds the federation (`fed.rebuild()`) when it wants the new snapshot.
 */
export function seed(cluster: ClusterState, objects: Iterable<SeedObject> = []): void {
  for (const o of objects) {
    if ('endpoints' in o) cluster.upsert('EndpointSlice', packSlice(o));
    else if ('addresses' in o) cluster.upsert('EndpointSlice', o);
    else if ('lbAddresses' in o) cluster.upsert('Service', o);
    else cluster.upsert('ServiceExport', o);
  }
  cluster.markLive();
  cluster.flush();
}

/** A Service of namespace "ns" with one named port and these load-balancer addresses. */
export const svc = (name: string, lb: string[], over: Partial<SlimService> = {}): SlimService => ({
  namespace: 'ns',
  name,
  headless: false,
  ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
  lbAddresses: lb,
  lbHostnames: [],
  labels: {},
  ...over,
});

/** An EndpointSlice of namespace "ns" for `service`, one port "http", one endpoint per entry (ready unless said). */
export const slice = (service: string, eps: { addr: string; ready?: boolean; zone?: string; hostname?: string }[], name = `${service}-s`): SlimEndpointSlice =>
  packSlice({
    namespace: 'ns',
    name,
    service,
    addressType: eps[0]?.addr.includes(':') ? 'IPv6' : 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    endpoints: eps.map((e) => ({ addresses: [e.addr], ready: e.ready ?? true, zone: e.zone, hostname: e.hostname })),
  });

/**
 * EndpointSlice `${service}-${k}` of namespace "ns": 1,000 IPv4 endpoints 10.(k+1).x.y (1,000 a
 * slice, as the API server allows), ready and without hostname unless `over` says; no ports unless given.
 */
export const thousandSlice = (
  service: string,
  k: number,
  over: { ports?: SlimPort[]; ready?: (i: number) => boolean; hostname?: (i: number) => string } = {},
): SlimEndpointSlice =>
  packSlice({
    namespace: 'ns',
    name: `${service}-${k}`,
    service,
    addressType: 'IPv4',
    ports: over.ports ?? [],
    endpoints: Array.from({ length: 1000 }, (_, i) => ({
      addresses: [`10.${k + 1}.${Math.floor(i / 250)}.${(i % 250) + 1}`],
      ready: over.ready?.(i) ?? true,
      hostname: over.hostname?.(i),
    })),
  });

/** A slice of the headless service 'ns/wide' whose first endpoint is `ready` or not (paceWide). */
export const wideSlice = (ready: boolean): SlimEndpointSlice => thousandSlice('wide', 0, { ready: (i) => i > 0 || ready });

/** Seeds `cluster` with 'ns/wide' (20,000 endpoints: a headless service too big to rebuild within a slice) and `others`. */
export function seedWide(cluster: ClusterState, others: SeedObject[] = []): void {
  seed(cluster, [svc('wide', [], { headless: true, ports: [] }), wideSlice(true), ...Array.from({ length: 19 }, (_, k) => thousandSlice('wide', k + 1)), ...others]);
}

/**
 * seedWide, a rebuild, and a flip of wide's first endpoint: its second slow rebuild makes it
 * paced (pacer.ts). Its first endpoint is then not ready.
 */
export function paceWide(fed: Pick<Federation, 'rebuild'>, cluster: ClusterState, others: SeedObject[] = []): void {
  seedWide(cluster, others);
  fed.rebuild();
  cluster.upsert('EndpointSlice', wideSlice(false));
  cluster.flush();
  fed.rebuild();
}
