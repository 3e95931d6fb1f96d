// The federation zone's name grammar, in one place.
//
//   <svc>.<ns>.<F>.<D>                              global set, short form
//   <svc>.<ns>.<F>.svc.<D>                          global set, Federation v1 form
//   <svc>.<ns>.<F>.svc.<region>.<D>                 region's healthy addresses, else CNAME -> global v1 name
//   <svc>.<ns>.<F>.svc.<zone>.<region>.<D>          zone's healthy addresses, else CNAME -> regional name
//   _<port>._<proto>.<svc>.<ns>.<F>[.svc].<D>       SRV per named port
//   <host>.<cluster>.<svc>.<ns>.<F>.svc.<D>         one endpoint of a headless service
//   <D>                                             SOA, NS (+ glue for name servers inside D)
//
// D is the configured domain, F the federation name. Every ancestor without records of its own
// is an empty non-terminal (RFC 8020).

export interface ZoneNaming {
  /** Canonical domain, e.g. "example.com.". */
  domain: string;
  federation: string;
}

export interface ServiceRef {
  namespace: string;
  name: string;
}

export function shortName(z: ZoneNaming, s: ServiceRef): string {
  return `${s.name}.${s.namespace}.${z.federation}.${z.domain}`;
}

export function globalName(z: ZoneNaming, s: ServiceRef): string {
  return `${s.name}.${s.namespace}.${z.federation}.svc.${z.domain}`;
}

export function regionalName(z: ZoneNaming, s: ServiceRef, region: string): string {
  return `${s.name}.${s.namespace}.${z.federation}.svc.${region}.${z.domain}`;
}

export function zonalName(z: ZoneNaming, s: ServiceRef, region: string, zone: string): string {
  return `${s.name}.${s.namespace}.${z.federation}.svc.${zone}.${region}.${z.domain}`;
}

export function srvName(port: { name: string; protocol: string }, serviceName: string): string {
  return `_${port.name}._${port.protocol}.${serviceName}`;
}

export function endpointName(z: ZoneNaming, s: ServiceRef, cluster: string, host: string): string {
  return `${host}.${cluster}.${globalName(z, s)}`;
}

/** What a query name asks for, per the grammar above. */
export type ParsedName =
  | { kind: 'apex' }
  | { kind: 'outside' }
  | { kind: 'short' | 'global'; namespace: string; service: string }
  | { kind: 'regional'; namespace: string; service: string; region: string }
  | { kind: 'zonal'; namespace: string; service: string; region: string; zone: string }
  | { kind: 'srv'; form: 'short' | 'global'; port: string; protocol: string; namespace: string; service: string }
  | { kind: 'endpoint'; namespace: string; service: string; cluster: string; host: string }
  /** A name in the zone that no rule gives records: an empty non-terminal or nothing. */
  | { kind: 'other'; labels: string[] };

/** Parses an absolute name (any case) against the zone's naming. */
export function parseName(z: ZoneNaming, qname: string): ParsedName {
  const name = qname.toLowerCase().endsWith('.') ? qname.toLowerCase() : `${qname.toLowerCase()}.`;
  if (name === z.domain) return { kind: 'apex' };
  if (!name.endsWith(`.${z.domain}`)) return { kind: 'outside' };
  const labels = name.slice(0, -(z.domain.length + 1)).split('.');
  const F = z.federation;
  const n = labels.length;
  // Short form: <svc>.<ns>.F  (and SRV _p._proto.<svc>.<ns>.F)
  if (n === 3 && labels[2] === F) return { kind: 'short', service: labels[0], namespace: labels[1] };
  if (n === 5 && labels[4] === F && isSrvLabels(labels[0], labels[1]))
    return { kind: 'srv', form: 'short', port: labels[0].slice(1), protocol: labels[1].slice(1), service: labels[2], namespace: labels[3] };
  // Federation v1 forms: <svc>.<ns>.F.svc[.<zone>][.<region>], by position: zones come from
  // tenants, so "svc" or F may appear again after the first "F.svc".
  if (n === 6 && labels[4] === F && labels[5] === 'svc') {
    if (isSrvLabels(labels[0], labels[1]))
      return { kind: 'srv', form: 'global', port: labels[0].slice(1), protocol: labels[1].slice(1), service: labels[2], namespace: labels[3] };
    return { kind: 'endpoint', host: labels[0], cluster: labels[1], service: labels[2], namespace: labels[3] };
  }
  if (n >= 4 && labels[2] === F && labels[3] === 'svc') {
    const after = labels.slice(4);
    if (after.length === 0) return { kind: 'global', service: labels[0], namespace: labels[1] };
    if (after.length === 1) return { kind: 'regional', service: labels[0], namespace: labels[1], region: after[0] };
    if (after.length === 2) return { kind: 'zonal', service: labels[0], namespace: labels[1], zone: after[0], region: after[1] };
  }
  return { kind: 'other', labels };
}

function isSrvLabels(port: string, proto: string): boolean {
  return port.startsWith('_') && port.length > 1 && proto.startsWith('_') && proto.length > 1;
}

// The clusterset zone (Multi-Cluster Services DNS specification, KEP-1645, schema 1.0.0):
//
//   <svc>.<ns>.svc.<Z>                              ClusterSetIP, else the exporting clusters' addresses;
//                                                   headless: every ready endpoint
//   <host>.<clusterid>.<svc>.<ns>.svc.<Z>           one endpoint of a headless service
//   _<port>._<proto>.<svc>.<ns>.svc.<Z>             SRV per named port
//   dns-version.<Z>                                 TXT "1.0.0"
//   <Z>                                             SOA, NS
//
// Z is mcs.domain (clusterset.local.). <clusterid>.<svc>.<ns>.svc.<Z> never has records (2.3.4, 2.4.4).

export interface ClusterSetNaming {
  /** Canonical clusterset domain, e.g. "clusterset.local.". */
  domain: string;
}

/** Version of the specification the clusterset zone implements (its section 1). */
export const MCS_DNS_SCHEMA_VERSION = '1.0.0';

export function clusterSetServiceName(z: ClusterSetNaming, s: ServiceRef): string {
  return `${s.name}.${s.namespace}.svc.${z.domain}`;
}

export function clusterSetEndpointName(z: ClusterSetNaming, s: ServiceRef, clusterId: string, host: string): string {
  return `${host}.${clusterId}.${clusterSetServiceName(z, s)}`;
}

export function dnsVersionName(z: ClusterSetNaming): string {
  return `dns-version.${z.domain}`;
}

/** What a query name in the clusterset zone asks for. */
export type ParsedClusterSetName =
  | { kind: 'clusterset-apex' }
  | { kind: 'dns-version' }
  | { kind: 'clusterset-service'; namespace: string; service: string }
  | { kind: 'clusterset-srv'; port: string; protocol: string; namespace: string; service: string }
  | { kind: 'clusterset-endpoint'; namespace: string; service: string; cluster: string; host: string }
  /** <clusterid>.<svc>.<ns>.svc.<Z>: reserved by the specification, never records (2.3.4, 2.4.4). */
  | { kind: 'clusterset-reserved'; namespace: string; service: string; cluster: string }
  | { kind: 'other'; labels: string[] };

/** Parses an absolute name (any case) inside the clusterset zone; undefined when outside it. */
export function parseClusterSetName(z: ClusterSetNaming, qname: string): ParsedClusterSetName | undefined {
  const name = qname.toLowerCase().endsWith('.') ? qname.toLowerCase() : `${qname.toLowerCase()}.`;
  if (name === z.domain) return { kind: 'clusterset-apex' };
  if (!name.endsWith(`.${z.domain}`)) return undefined;
  const labels = name.slice(0, -(z.domain.length + 1)).split('.');
  const n = labels.length;
  if (n === 1 && labels[0] === 'dns-version') return { kind: 'dns-version' };
  if (n >= 3 && labels[n - 1] === 'svc') {
    const [service, namespace] = [labels[n - 3], labels[n - 2]];
    if (n === 3) return { kind: 'clusterset-service', service, namespace };
    if (n === 5 && isSrvLabels(labels[0], labels[1])) return { kind: 'clusterset-srv', port: labels[0].slice(1), protocol: labels[1].slice(1), service, namespace };
    if (n === 4) return { kind: 'clusterset-reserved', cluster: labels[0], service, namespace };
    if (n === 5) return { kind: 'clusterset-endpoint', host: labels[0], cluster: labels[1], service, namespace };
  }
  return { kind: 'other', labels };
}
