// Slim copies of the Kubernetes objects fedns reads: only what answers need, converted once
// when a source hands the object over. Nothing else of the original is kept.

export interface SlimPort {
  /** Port name; "" for an unnamed port (no SRV record). */
  name: string;
  port: number;
  /** "tcp" | "udp" | "sctp" (lowercase, as in SRV owner names). */
  protocol: string;
}

export interface SlimService {
  namespace: string;
  name: string;
  headless: boolean;
  ports: SlimPort[];
  /** status.loadBalancer.ingress[].ip plus spec.externalIPs. */
  lbAddresses: string[];
  /** status.loadBalancer.ingress[].hostname (resolved by fedns, never frozen). */
  lbHostnames: string[];
  labels: Record<string, string>;
  /** TTL from the `fedns.io/ttl` annotation. */
  ttl?: number;
  resourceVersion?: string;
}

export interface SlimEndpoint {
  addresses: string[];
  /** Ready as fedns counts it: condition ready true or absent, and not terminating. */
  ready: boolean;
  hostname?: string;
  zone?: string;
}

export interface SlimEndpointSlice {
  namespace: string;
  /** The slice's own name. */
  name: string;
  /** kubernetes.io/service-name label. */
  service: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports: SlimPort[];
  endpoints: SlimEndpoint[];
  /** endpoints.kubernetes.io/last-change-trigger-time, ms since epoch: when the change began. */
  triggerTime?: number;
  resourceVersion?: string;
}

export interface SlimServiceExport {
  namespace: string;
  name: string;
  resourceVersion?: string;
}

export const TTL_ANNOTATION = 'fedns.io/ttl';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export type Kind = 'Service' | 'EndpointSlice' | 'ServiceExport';

/** "namespace/name": a federated service's identity (namespace sameness). */
export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

type Obj = Record<string, any>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function arr(v: unknown): Obj[] {
  return Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as Obj[]) : [];
}

function ports(v: unknown, field: 'port'): SlimPort[] {
  const out: SlimPort[] = [];
  for (const p of arr(v)) {
    const port = Number(p[field]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) continue;
    out.push({ name: str(p.name) ?? '', port, protocol: (str(p.protocol) ?? 'TCP').toLowerCase() });
  }
  return out;
}

export class ObjectError extends Error {}

function meta(o: Obj, kind: string): { namespace: string; name: string; resourceVersion?: string } {
  const m = o.metadata;
  if (!m || typeof m !== 'object') throw new ObjectError(`${kind} without metadata`);
  const name = str(m.name);
  if (!name) throw new ObjectError(`${kind} without metadata.name`);
  return { namespace: str(m.namespace) ?? 'default', name, resourceVersion: str(m.resourceVersion) };
}

export function slimService(o: Obj): SlimService {
  const { namespace, name, resourceVersion } = meta(o, 'Service');
  const spec: Obj = o.spec ?? {};
  const ingress = arr(o.status?.loadBalancer?.ingress);
  const lbAddresses = [...ingress.map((i) => str(i.ip)), ...(Array.isArray(spec.externalIPs) ? spec.externalIPs.map(str) : [])].filter(
    (x): x is string => !!x,
  );
  const annotations: Obj = o.metadata.annotations ?? {};
  const ttlText = str(annotations[TTL_ANNOTATION]);
  const ttl = ttlText !== undefined && /^\d{1,6}$/.test(ttlText) ? Number(ttlText) : undefined;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries((o.metadata.labels ?? {}) as Obj)) if (typeof v === 'string') labels[k] = v;
  return {
    namespace,
    name,
    headless: spec.clusterIP === 'None',
    ports: ports(spec.ports, 'port'),
    lbAddresses: [...new Set(lbAddresses)],
    lbHostnames: ingress.map((i) => str(i.hostname)).filter((x): x is string => !!x),
    labels,
    ttl,
    resourceVersion,
  };
}

export function slimEndpointSlice(o: Obj): SlimEndpointSlice {
  const { namespace, name, resourceVersion } = meta(o, 'EndpointSlice');
  const service = str(o.metadata.labels?.[SERVICE_NAME_LABEL]) ?? '';
  const at = str(o.addressType);
  const addressType = at === 'IPv6' ? 'IPv6' : at === 'FQDN' ? 'FQDN' : 'IPv4';
  const endpoints: SlimEndpoint[] = arr(o.endpoints).map((e) => {
    const c: Obj = e.conditions ?? {};
    return {
      addresses: (Array.isArray(e.addresses) ? e.addresses : []).filter((a: unknown): a is string => typeof a === 'string'),
      ready: c.ready !== false && c.terminating !== true,
      hostname: str(e.hostname),
      zone: str(e.zone),
    };
  });
  const trigger = Date.parse(str(o.metadata.annotations?.[TRIGGER_TIME_ANNOTATION]) ?? '');
  return {
    namespace,
    name,
    service,
    addressType,
    ports: ports(o.ports, 'port'),
    endpoints,
    triggerTime: Number.isFinite(trigger) ? trigger : undefined,
    resourceVersion,
  };
}

export function slimServiceExport(o: Obj): SlimServiceExport {
  return meta(o, 'ServiceExport');
}

export function sliceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}
