// Slim copies of the Kubernetes objects fedns reads: only what answers need, converted once
// when a source hands the object over. Nothing else of the original is kept (no
// resourceVersion: an update that changes nothing answers depend on is no change). Tenants
// write these objects: a value that cannot become part of a DNS name or record is dropped here
// and listed in `ignored`, so the cluster state can count and report it.
import { isDeepStrictEqual } from 'node:util';
import { answerableEndpoint, canonicalAddress, canonicalNetwork, isAddress } from '../address.js';
import { sameList, sameOptionalList } from '../lists.js';
import { asDnsLabel, MAX_LABEL_LENGTH, nameProblem } from '../wire/name.js';
import { MAX_TTL } from '../wire/writer.js';
import {
  FAILOVER_ANNOTATION,
  MAX_ADDRESSES_ANNOTATION,
  parseFailover,
  parseMaxAddresses,
  parsePolicy,
  parseWeights,
  POLICY_ANNOTATION,
  WEIGHTS_ANNOTATION,
  type TrafficAnnotations,
} from '../traffic-policy.js';

/** Why a tenant-written value was not used (a bounded set: metric label values). */
export const IGNORE_REASONS = [
  'zone',
  'zone limit',
  'region',
  'hostname',
  'port name',
  'ttl annotation',
  'lb hostname',
  'lb address',
  'name too long',
  'srv records',
  'policy annotation',
  'node network',
  'network limit',
  'cluster id',
  'clusterset ip',
  'endpoint address',
  'unreadable object',
] as const;
export type IgnoreReason = (typeof IGNORE_REASONS)[number];

export interface IgnoredValue {
  reason: IgnoreReason;
  /** The value as written (cut to 80 characters). */
  value: string;
}

export interface SlimPort {
  /** Port name, a DNS label (an unnamed port gives no SRV record and is not kept). */
  name: string;
  port: number;
  /** "tcp" | "udp" | "sctp" (lowercase, as in SRV owner names). */
  protocol: string;
}

/** The same port: name, number and protocol. */
export function samePort(a: SlimPort, b: SlimPort): boolean {
  return a.port === b.port && a.name === b.name && a.protocol === b.protocol;
}

/** One string per port (samePort): name, protocol and number. */
export function portKey(p: SlimPort): string {
  return `${p.name}/${p.protocol}/${p.port}`;
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
  /** Traffic-policy annotations that read (README, "Traffic policy"); absent when there are none. */
  traffic?: TrafficAnnotations;
  /** Values of the object that were not used, and why. */
  ignored?: IgnoredValue[];
}

export interface SlimEndpoint {
  addresses: string[];
  /** Ready as fedns counts it: condition ready true or absent, and not terminating. */
  ready: boolean;
  hostname?: string;
  zone?: string;
}

/**
 * A slice's endpoints as parallel lists, not an object and an array per endpoint: those were most
 * of a big federation's cluster memory. `eachEndpoint` reads them one by one.
 */
export interface PackedEndpoints {
  /** Every endpoint's addresses, endpoint after endpoint. */
  addresses: readonly string[];
  /** How many addresses each endpoint has; undefined when every endpoint has exactly one. */
  addressCounts: readonly number[] | undefined;
  /** Each endpoint's zone ('' for none), a list slices share; empty when no endpoint has a zone. */
  zones: readonly string[];
  /** Each endpoint's hostname ('' for none); undefined when no endpoint has one. */
  hostnames: readonly string[] | undefined;
  /** Indexes of the endpoints that are not ready, ascending; undefined when every one is. */
  notReady: readonly number[] | undefined;
}

export interface SlimEndpointSlice extends PackedEndpoints {
  namespace: string;
  /** The slice's own name. */
  name: string;
  /** kubernetes.io/service-name label. */
  service: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports: SlimPort[];
  /** endpoints.kubernetes.io/last-change-trigger-time, ms since epoch: when the change began. */
  triggerTime?: number;
  ignored?: IgnoredValue[];
}

/** A slice with its endpoints one object each, as it is read (`packSlice` makes the slice held). */
export type EndpointSliceParts = Omit<SlimEndpointSlice, keyof PackedEndpoints> & { endpoints: SlimEndpoint[] };

export interface SlimServiceExport {
  namespace: string;
  name: string;
}

/** A ServiceImport (multicluster.x-k8s.io/v1alpha1): what the member's MCS implementation allocated. */
export interface SlimServiceImport {
  namespace: string;
  name: string;
  /** spec.type: "ClusterSetIP" or "Headless" (absent: ClusterSetIP). */
  headless: boolean;
  /** spec.ips: the ClusterSetIPs (valid IPv4/IPv6 only, canonical, sorted). */
  ips: string[];
  ignored?: IgnoredValue[];
}

/**
 * A ClusterProperty (about.k8s.io/v1alpha1, KEP-2149). Cluster-scoped: namespace is "". Only the
 * value of `id.k8s.io` is used (the cluster ID in MCS names).
 */
export interface SlimClusterProperty {
  namespace: string;
  name: string;
  value: string;
}

/** The ClusterProperty that holds the cluster ID (KEP-2149). */
export const CLUSTER_ID_PROPERTY = 'id.k8s.io';

export const TTL_ANNOTATION = 'fedns.io/ttl';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export type Kind = 'Service' | 'EndpointSlice' | 'ServiceExport' | 'ServiceImport' | 'ClusterProperty';

/**
 * "namespace/name" as one flat string. A template literal makes a rope (V8's ConsString) of
 * its parts, and a rope used as a Map key is flattened into a copy the rope then keeps: two
 * strings held per key instead of one (2 MiB of the scale benchmark's cluster objects).
 * Array.join writes the string whole.
 */
export function objectKey(namespace: string, name: string): string {
  return [namespace, name].join('/');
}

/** "namespace/name": a federated service's identity (namespace sameness), one copy for every cluster. */
export function serviceKey(namespace: string, name: string): string {
  const key = objectKey(namespace, name);
  return key.length <= 2 * MAX_LABEL_LENGTH + 1 ? serviceKeys.get(key, () => key) : key;
}

type Obj = Record<string, any>;

/**
 * One copy of each value that many objects repeat: namespaces, zones, port names and whole port
 * lists (every object parsed from the API is a fresh copy of its strings). Values are shared
 * read-only. Bounded: a full table becomes the table before, and the one before that goes, so
 * values seen once cannot pile up (at most twice `max` are held), while values seen again (the
 * same services listed by the next cluster) carry over from the table before.
 */
class Interner<T> {
  private table = new Map<string, T>();
  private before = new Map<string, T>();
  constructor(private readonly max: number) {}
  get(key: string, make: () => T): T {
    return this.find(key) ?? this.put(key, make());
  }
  /** The value held for `key`, if any. */
  find(key: string): T | undefined {
    let v = this.table.get(key);
    if (v === undefined) {
      v = this.before.get(key);
      if (v !== undefined) this.put(key, v);
    }
    return v;
  }
  private put(key: string, v: T): T {
    if (this.table.size >= this.max) {
      this.before = this.table;
      this.table = new Map();
    }
    this.table.set(key, v);
    return v;
  }
}

const strings = new Interner<string>(25_000);
// A federated service has the same name and key in every cluster (namespace sameness): one copy
// each, not one per cluster and object. Only what can be a name: a longer service-name label
// (a file's manifest, unchecked by an API server) is not held past its slice.
const serviceNames = new Interner<string>(50_000);
const serviceKeys = new Interner<string>(50_000);
const serviceName = (s: string): string => (s.length <= MAX_LABEL_LENGTH ? serviceNames.get(s, () => s) : s);
const portLists = new Interner<SlimPort[]>(5_000);
/** Port lists by how they were written (writtenPorts), where reading them ignored nothing. */
const portsAsWritten = new Interner<SlimPort[]>(5_000);
const zoneLists = new Interner<readonly string[]>(5_000);
/** Endpoints of the biggest slice whose zone list is shared (zones are labels: keys of at most 2 KiB). */
const SHARED_ZONE_LIST_MAX = 32;
const intern = (s: string): string => strings.get(s, () => s);
/** Shared empty values: most Services have no load balancer, most objects no labels. */
const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];
const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_PORTS: SlimPort[] = Object.freeze([]) as unknown as SlimPort[];

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * A value where a string or number belongs, as text for the ignored list: a list or object by
 * its kind only. Converting one calls toString on every element: a list nested 200,000 deep (a
 * hostile API server's answer) overflows the stack, which would fail the whole page and not only
 * its object.
 */
function scalarText(v: unknown): string {
  if (v && typeof v === 'object') return Array.isArray(v) ? '(a list)' : '(an object)';
  return String(v);
}

function addresses(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) return NO_STRINGS;
  // The common case, one address, without the intermediate arrays.
  if (v.length === 1) return typeof v[0] === 'string' ? [canonicalAddress(v[0])] : NO_STRINGS;
  const out = [...new Set(v.filter((a: unknown): a is string => typeof a === 'string').map(canonicalAddress))];
  return out.length ? out : NO_STRINGS;
}

/** The addresses of `addrs` that `ok` takes; each other one is handed to `ignore` (which notes it). */
function kept(addrs: string[], ok: (a: string) => boolean, ignore: (a: string) => undefined): string[] {
  if (addrs.every(ok)) return addrs;
  const out = addrs.filter((a) => ok(a) || ignore(a));
  return out.length ? out : NO_STRINGS;
}

/** The addresses of `addrs` an endpoint of a slice of `addressType` answers with; the others are noted as ignored. */
function answerable(addrs: string[], addressType: 'IPv4' | 'IPv6' | undefined, ignored: Ignored): string[] {
  return kept(addrs, (a) => answerableEndpoint(a, addressType), (a) => ignored.add('endpoint address', `${a} (${addressType ?? 'no addressType'} slice)`));
}

/**
 * The addresses of `addrs` a client can be sent to, of either family (a load-balancer address,
 * a ClusterSetIP); the others (not an address, loopback, multicast: answerableEndpoint) are noted
 * as ignored for `reason`.
 */
function reachable(addrs: string[], reason: 'lb address' | 'clusterset ip', ignored: Ignored): string[] {
  return kept(addrs, (a) => answerableEndpoint(a, undefined), (a) => ignored.add(reason, a));
}

function arr(v: unknown): Obj[] {
  return Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as Obj[]) : [];
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/** Collects the values an object had that fedns does not use. */
class Ignored {
  list: IgnoredValue[] = [];
  /** Values ignored, including those past the 20 listed. */
  count = 0;
  add(reason: IgnoreReason, value: string): undefined {
    this.count++;
    if (this.list.length < 20) this.list.push({ reason, value: value.length > 80 ? `${value.slice(0, 77)}...` : value });
    return undefined;
  }
  /** A DNS label, or undefined (noted as ignored unless absent or empty). */
  label(reason: IgnoreReason, v: unknown): string | undefined {
    if (typeof v !== 'string' || v === '') return undefined;
    return asDnsLabel(v) ?? this.add(reason, v);
  }
  attach<T extends { ignored?: IgnoredValue[] }>(o: T): T {
    if (this.list.length) o.ignored = this.list;
    return o;
  }
}

/** The most ports of a list kept by how it was written. */
const MAX_WRITTEN_PORTS = 32;

/**
 * A port list as written, as one string (each text length-prefixed, so two lists give the same
 * string only if they are the same); undefined where a value is not a plain string or number, or
 * could not be part of a port kept (a name or protocol too long): the key holds nothing a tenant
 * could make big.
 */
function writtenPorts(v: unknown[]): string | undefined {
  if (v.length > MAX_WRITTEN_PORTS) return undefined;
  let key = '';
  for (const p of v) {
    if (!p || typeof p !== 'object') return undefined;
    const { name, port, protocol } = p as Obj;
    if (typeof name !== 'string' || typeof port !== 'number' || name.length >= MAX_LABEL_LENGTH) return undefined;
    if (protocol !== undefined && (typeof protocol !== 'string' || protocol.length > 4)) return undefined;
    key += `${name.length}:${name}${port}/${protocol === undefined ? '-' : `${protocol.length}:${protocol}`}`;
  }
  return key;
}

/**
 * Named ports only (the others give no SRV record): the name and protocol become labels. Every
 * copy of a service and its slices writes the same few lists: one seen before, that read without
 * ignoring anything, is the list made then.
 */
function ports(v: unknown, ignored: Ignored): SlimPort[] {
  if (!Array.isArray(v) || v.length === 0) return NO_PORTS;
  const written = writtenPorts(v);
  const seen = written === undefined ? undefined : portsAsWritten.find(written);
  if (seen) return seen;
  const ignoredBefore = ignored.count;
  const made = readPorts(v, ignored);
  // Kept only as read whole: a port dropped without a note (a bad number) keeps the list out too.
  if (written !== undefined && ignored.count === ignoredBefore && made.length === v.length) portsAsWritten.get(written, () => made);
  return made;
}

function readPorts(v: unknown[], ignored: Ignored): SlimPort[] {
  const out: SlimPort[] = [];
  for (const p of arr(v)) {
    // A number, or one written as a string (a manifest's "8080"); nothing else is read as one (scalarText).
    const port = typeof p.port === 'number' || typeof p.port === 'string' ? Number(p.port) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535 || !str(p.name)) continue;
    // "_<name>" is one label: at most 62 characters of name.
    const name = ignored.label('port name', p.name);
    const protocol = (str(p.protocol) ?? 'TCP').toLowerCase();
    if (!name || name.length >= MAX_LABEL_LENGTH || !PROTOCOLS.has(protocol)) {
      if (name) ignored.add('port name', `${p.name}/${protocol}`);
      continue;
    }
    out.push({ name: intern(name), port, protocol: intern(protocol) });
  }
  return sharedPorts(out);
}

/** The one frozen copy of a port list (its names and protocols interned). */
function sharedPorts(list: readonly SlimPort[]): SlimPort[] {
  if (list.length === 0) return NO_PORTS;
  const key = list.map((p) => `${p.name}/${p.port}/${p.protocol}`).join(',');
  return portLists.get(key, () => Object.freeze(list.map((p) => Object.freeze({ name: intern(p.name), port: p.port, protocol: intern(p.protocol) }))) as SlimPort[]);
}

export class ObjectError extends Error {}

function meta(o: Obj, kind: string): { namespace: string; name: string } {
  const m = o.metadata;
  if (!m || typeof m !== 'object') throw new ObjectError(`${kind} without metadata`);
  const name = str(m.name);
  if (!name) throw new ObjectError(`${kind} without metadata.name`);
  const namespace = str(m.namespace) ?? 'default';
  // Both are labels of every name of the service (the API server checks them; a file may not).
  if (kind !== 'EndpointSlice' && !asDnsLabel(name)) throw new ObjectError(`${kind} ${namespace}/${name}: the name is not a DNS label`);
  if (!asDnsLabel(namespace)) throw new ObjectError(`${kind} ${namespace}/${name}: the namespace is not a DNS label`);
  return { namespace: intern(namespace.toLowerCase()), name: kind === 'EndpointSlice' ? name : serviceName(name.toLowerCase()) };
}

/** The `fedns.io/ttl` annotation: whole seconds, 0..2^31-1 (RFC 2181 8). */
function ttlAnnotation(v: unknown, ignored: Ignored): number | undefined {
  if (v === undefined) return undefined;
  const text = typeof v === 'string' ? v.trim() : scalarText(v);
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  return n <= MAX_TTL ? n : ignored.add('ttl annotation', text);
}

/** The traffic-policy annotations; a value that does not read is ignored (and noted), as if absent. */
function trafficAnnotations(annotations: Obj, ignored: Ignored): TrafficAnnotations | undefined {
  const out: TrafficAnnotations = {};
  const read = <T>(key: string, parse: (text: string) => T | undefined): T | undefined => {
    const v = annotations[key];
    if (v === undefined) return undefined;
    const parsed = typeof v === 'string' && v.length <= 4096 ? parse(v) : undefined;
    return parsed ?? ignored.add('policy annotation', `${key}: ${scalarText(v)}`);
  };
  const policy = read(POLICY_ANNOTATION, parsePolicy);
  const failover = read(FAILOVER_ANNOTATION, parseFailover);
  const weights = read(WEIGHTS_ANNOTATION, parseWeights);
  const maxAddresses = read(MAX_ADDRESSES_ANNOTATION, parseMaxAddresses);
  if (policy !== undefined) out.policy = policy;
  if (failover !== undefined) out.failover = failover;
  if (weights !== undefined) out.weights = weights;
  if (maxAddresses !== undefined) out.maxAddresses = maxAddresses;
  return Object.keys(out).length ? out : undefined;
}

export function slimService(o: Obj): SlimService {
  const { namespace, name } = meta(o, 'Service');
  const ignored = new Ignored();
  const spec: Obj = o.spec ?? {};
  const ingress = arr(o.status?.loadBalancer?.ingress);
  const lbAddresses = reachable(addresses([...ingress.map((i) => i.ip), ...(Array.isArray(spec.externalIPs) ? spec.externalIPs : [])]), 'lb address', ignored);
  const lbHostnames: string[] = [];
  for (const i of ingress) {
    const h = str(i.hostname);
    if (!h) continue;
    if (nameProblem(h)) ignored.add('lb hostname', h);
    else lbHostnames.push(h.toLowerCase());
  }
  const annotations: Obj = o.metadata.annotations ?? {};
  let labels: Record<string, string> = NO_LABELS;
  // A map of strings: anything else (a string would read as one label per character) has none.
  const written: unknown = o.metadata.labels;
  const labelMap = written && typeof written === 'object' && !Array.isArray(written) ? (written as Obj) : NO_LABELS;
  for (const [k, v] of Object.entries(labelMap)) {
    if (typeof v !== 'string') continue;
    if (labels === NO_LABELS) labels = {};
    labels[k] = v;
  }
  const svcPorts = ports(spec.ports, ignored);
  const ttl = ttlAnnotation(annotations[TTL_ANNOTATION], ignored);
  const traffic = trafficAnnotations(annotations, ignored);
  return heldService(namespace, name, spec.clusterIP === 'None', svcPorts, lbAddresses, lbHostnames.length ? lbHostnames : NO_STRINGS, labels, ttl, traffic, ignored.list);
}

/** A Service as held: one object literal, every field inside the object, one shape for all. */
function heldService(
  namespace: string,
  name: string,
  headless: boolean,
  ports: SlimPort[],
  lbAddresses: string[],
  lbHostnames: string[],
  labels: Record<string, string>,
  ttl: number | undefined,
  traffic: TrafficAnnotations | undefined,
  ignored: IgnoredValue[] | undefined,
): SlimService {
  const s: SlimService = { namespace, name, headless, ports, lbAddresses, lbHostnames, labels, ttl, traffic };
  if (ignored?.length) s.ignored = ignored;
  return s;
}

/**
 * Whether two held Services say the same: a federated service is written alike in every member
 * cluster, and clusters whose Services are the same hold one object between them (see
 * Federation.twinService). Fields held shared (interned names, port lists, the empty values) are
 * compared by identity first, so a match costs a few comparisons; the rare ones (labels, traffic
 * annotations, ignored values) in full.
 */
export function sameService(a: SlimService, b: SlimService): boolean {
  return (
    a === b ||
    (a.namespace === b.namespace &&
      a.name === b.name &&
      a.headless === b.headless &&
      a.ttl === b.ttl &&
      (a.ports === b.ports || isDeepStrictEqual(a.ports, b.ports)) &&
      sameList(a.lbAddresses, b.lbAddresses) &&
      sameList(a.lbHostnames, b.lbHostnames) &&
      (a.labels === b.labels || isDeepStrictEqual(a.labels, b.labels)) &&
      (a.traffic === b.traffic || isDeepStrictEqual(a.traffic, b.traffic)) &&
      (a.ignored === b.ignored || isDeepStrictEqual(a.ignored, b.ignored)))
  );
}

/**
 * The fields sameService compares: every field of a Service, which `satisfies` checks (a field
 * added to SlimService does not compile until it is listed here, and compared). Its test tells
 * Services apart by each.
 */
export const SAME_SERVICE_FIELDS = {
  namespace: true,
  name: true,
  headless: true,
  ttl: true,
  ports: true,
  lbAddresses: true,
  lbHostnames: true,
  labels: true,
  traffic: true,
  ignored: true,
} as const satisfies Record<keyof SlimService, true>;

/**
 * Whether applying slice `b` over the held slice `a` changes nothing: the same, field by field,
 * trigger times aside (a trigger time moves with changes, and is counted with them; the held
 * slice stays). Every watch event and every listed slice is compared so; a generic deep
 * comparison took 2.6 us of each (0.1 us now), of a change's 30 to 60.
 */
export function sameSlice(a: SlimEndpointSlice, b: SlimEndpointSlice): boolean {
  return (
    a === b ||
    (a.namespace === b.namespace &&
      a.name === b.name &&
      a.service === b.service &&
      a.addressType === b.addressType &&
      (a.ports === b.ports || isDeepStrictEqual(a.ports, b.ports)) &&
      sameList(a.addresses, b.addresses) &&
      sameOptionalList(a.addressCounts, b.addressCounts) &&
      sameList(a.zones, b.zones) &&
      sameOptionalList(a.hostnames, b.hostnames) &&
      sameOptionalList(a.notReady, b.notReady) &&
      (a.ignored === b.ignored || isDeepStrictEqual(a.ignored, b.ignored)))
  );
}

/**
 * The fields of a slice and whether sameSlice compares them: all but the trigger time, which
 * `satisfies` checks (a field added to SlimEndpointSlice does not compile until it is listed
 * here). Its test tells slices apart by each compared field.
 */
export const SAME_SLICE_FIELDS = {
  namespace: true,
  name: true,
  service: true,
  addressType: true,
  ports: true,
  addresses: true,
  addressCounts: true,
  zones: true,
  hostnames: true,
  notReady: true,
  ignored: true,
  triggerTime: false,
} as const satisfies Record<keyof SlimEndpointSlice, boolean>;

/**
 * The slice as held: its endpoints packed into parallel lists, each of its exact length (an
 * array grown by push keeps spare room), in one object literal (one shape for every slice).
 */
export function packSlice(p: EndpointSliceParts): SlimEndpointSlice {
  const eps = p.endpoints;
  let total = 0;
  let counted = false;
  let zoned = false;
  let named = false;
  let unready = 0;
  for (const e of eps) {
    total += e.addresses.length;
    counted ||= e.addresses.length !== 1;
    zoned ||= !!e.zone;
    named ||= !!e.hostname;
    if (!e.ready) unready++;
  }
  const addresses = total ? new Array<string>(total) : NO_STRINGS;
  const addressCounts = counted ? new Array<number>(eps.length) : undefined;
  const zones = zoned ? new Array<string>(eps.length) : NO_STRINGS;
  const hostnames = named ? new Array<string>(eps.length) : undefined;
  const notReady = unready ? new Array<number>(unready) : undefined;
  let at = 0;
  let skipped = 0;
  for (let i = 0; i < eps.length; i++) {
    const e = eps[i];
    for (const a of e.addresses) addresses[at++] = a;
    if (addressCounts) addressCounts[i] = e.addresses.length;
    if (zoned) zones[i] = e.zone ?? '';
    if (hostnames) hostnames[i] = e.hostname ?? '';
    if (!e.ready) notReady![skipped++] = i;
  }
  return heldSlice(p.namespace, p.name, p.service, p.addressType, p.ports, addresses, addressCounts, zoned ? zoneList(zones) : NO_STRINGS, hostnames, notReady, p.triggerTime, p.ignored);
}

/** A slice as held: one object literal, every field inside the object, one shape for all. */
function heldSlice(
  namespace: string,
  name: string,
  service: string,
  addressType: SlimEndpointSlice['addressType'],
  ports: SlimPort[],
  addresses: readonly string[],
  addressCounts: readonly number[] | undefined,
  zones: readonly string[],
  hostnames: readonly string[] | undefined,
  notReady: readonly number[] | undefined,
  triggerTime: number | undefined,
  ignored: IgnoredValue[] | undefined,
): SlimEndpointSlice {
  return { namespace, name, service, addressType, ports, addresses, addressCounts, zones, hostnames, notReady, triggerTime, ignored };
}

/**
 * A slice's zone list, frozen: one shared copy for a small slice (many services' slices have the
 * same few endpoints in the same zones). A big slice keeps its own: its list is rarely another's,
 * and the table would keep up to its size of lists, each as long as the slice, after their slices
 * went (every rollout of a big service writes new ones).
 */
function zoneList(zones: string[]): readonly string[] {
  if (zones.length > SHARED_ZONE_LIST_MAX) return Object.freeze(zones);
  return zoneLists.get(zones.join(','), () => Object.freeze(zones));
}

// A Service or EndpointSlice read on another thread (src/cluster/page-reader.ts) arrives as a
// structured clone: every string a fresh copy, a list the other thread shared once per message,
// nothing frozen, and its objects and arrays bigger than this thread's (a slice of three
// endpoints and its Service take 100 bytes more, measured). Adopting it makes what this thread
// would have made: the values many objects repeat interned here, empty values the shared ones,
// one literal, arrays copied. `seen` holds the lists already adopted from the same message.

/** A Service read on another thread, as held here. */
export function adoptService(s: SlimService, seen: Map<object, unknown>): SlimService {
  let labelled = false;
  for (const _ in s.labels) labelled = true;
  const lbHostnames = s.lbHostnames.length ? s.lbHostnames.slice() : NO_STRINGS;
  const lbAddresses = s.lbAddresses.length ? s.lbAddresses.slice() : NO_STRINGS;
  const labels = labelled ? s.labels : NO_LABELS;
  return heldService(intern(s.namespace), serviceName(s.name), s.headless, adoptPorts(s.ports, seen), lbAddresses, lbHostnames, labels, s.ttl, s.traffic, s.ignored);
}

/** An EndpointSlice read on another thread, as held here. */
export function adoptSlice(s: SlimEndpointSlice, seen: Map<object, unknown>): SlimEndpointSlice {
  const addressType = s.addressType === 'IPv6' ? 'IPv6' : s.addressType === 'FQDN' ? 'FQDN' : 'IPv4';
  let zones = NO_STRINGS as readonly string[];
  if (s.zones.length) {
    zones = (seen.get(s.zones) as readonly string[] | undefined) ?? zoneList(s.zones.map(intern));
    seen.set(s.zones, zones);
  }
  const addresses = s.addresses.length ? s.addresses.slice() : NO_STRINGS;
  const service = s.service && serviceName(s.service);
  const ports = adoptPorts(s.ports, seen);
  return heldSlice(intern(s.namespace), s.name, service, addressType, ports, addresses, s.addressCounts?.slice(), zones, s.hostnames?.slice(), s.notReady?.slice(), s.triggerTime, s.ignored);
}

function adoptPorts(list: SlimPort[], seen: Map<object, unknown>): SlimPort[] {
  if (list.length === 0) return NO_PORTS;
  const held = (seen.get(list) as SlimPort[] | undefined) ?? sharedPorts(list);
  seen.set(list, held);
  return held;
}

/**
 * Calls `fn` for each endpoint of a slice, in order: its addresses are `addresses[from..to)`,
 * its zone and hostname '' when it has none.
 */
export function eachEndpoint(s: PackedEndpoints, fn: (from: number, to: number, ready: boolean, zone: string, hostname: string) => void): void {
  const { addresses, addressCounts: counts, zones, hostnames, notReady } = s;
  const n = counts ? counts.length : addresses.length;
  let at = 0;
  let skip = 0;
  for (let i = 0; i < n; i++) {
    const to = at + (counts ? counts[i] : 1);
    const ready = notReady === undefined || notReady[skip] !== i;
    if (!ready) skip++;
    fn(at, to, ready, zones.length ? zones[i] : '', hostnames ? hostnames[i] : '');
    at = to;
  }
}

/** A slice's endpoints one object each: packSlice's inverse, as tests read slices back (answers read them packed). */
export function endpointsOf(s: PackedEndpoints): SlimEndpoint[] {
  const out: SlimEndpoint[] = [];
  eachEndpoint(s, (from, to, ready, zone, hostname) => {
    const e: SlimEndpoint = { addresses: s.addresses.slice(from, to), ready };
    if (hostname) e.hostname = hostname;
    if (zone) e.zone = zone;
    out.push(e);
  });
  return out;
}

export function slimEndpointSlice(o: Obj): SlimEndpointSlice {
  const { namespace, name } = meta(o, 'EndpointSlice');
  const ignored = new Ignored();
  const label = str(o.metadata.labels?.[SERVICE_NAME_LABEL]);
  const service = label ? serviceName(label.toLowerCase()) : '';
  const at = str(o.addressType);
  const addressType = at === 'IPv6' ? 'IPv6' : at === 'FQDN' ? 'FQDN' : 'IPv4';
  const endpoints: SlimEndpoint[] = arr(o.endpoints).map((e) => {
    const c: Obj = e.conditions ?? {};
    // A slice that names no address type (a manifest file; the API server requires one) keeps addresses of either family.
    const addrs = addressType === 'FQDN' ? addresses(e.addresses) : answerable(addresses(e.addresses), at === undefined ? undefined : addressType, ignored);
    const ready = c.ready !== false && c.terminating !== true;
    const hostname = ignored.label('hostname', e.hostname);
    const z = ignored.label('zone', e.zone);
    const zone = z && intern(z);
    // Optional fields stay absent rather than undefined, so equal slices compare equal; each
    // shape is one literal, so its fields live inside the object.
    if (hostname && zone) return { addresses: addrs, ready, hostname, zone };
    if (zone) return { addresses: addrs, ready, zone };
    if (hostname) return { addresses: addrs, ready, hostname };
    return { addresses: addrs, ready };
  });
  const trigger = Date.parse(str(o.metadata.annotations?.[TRIGGER_TIME_ANNOTATION]) ?? '');
  return ignored.attach(
    packSlice({
      namespace,
      name,
      service,
      addressType,
      ports: ports(o.ports, ignored),
      endpoints,
      triggerTime: Number.isFinite(trigger) ? trigger : undefined,
    }),
  );
}

export function slimServiceExport(o: Obj): SlimServiceExport {
  return meta(o, 'ServiceExport');
}

/** Node labels that name the node's region, most current first. */
export const REGION_LABELS = ['topology.kubernetes.io/region', 'failure-domain.beta.kubernetes.io/region'];

/** The region label of a node's labels, as written (undefined when it has none). */
export function nodeRegion(labels: unknown): string | undefined {
  if (!labels || typeof labels !== 'object') return undefined;
  const l = labels as Record<string, unknown>;
  return REGION_LABELS.map((k) => l[k]).find((v): v is string => typeof v === 'string' && v !== '');
}

/** Networks kept of one node: a node has one or two pod CIDRs and a few InternalIPs. */
export const MAX_NODE_NETWORKS = 16;
/** Prefixes shorter than these are no node's networks (0.0.0.0/0 would claim every client). */
export const MIN_NODE_PREFIX = { 4: 8, 6: 32 } as const;

export interface SlimNode {
  name: string;
  /**
   * Where the cluster DNS queries of pods on this node come from: spec.podCIDRs (and
   * spec.podCIDR) and the InternalIP addresses as /32 or /128, canonical, sorted, no repeats.
   */
  networks: string[];
  /** The region label as written (checked where it is used). */
  region?: string;
  ignored?: IgnoredValue[];
}

/** A pod CIDR ("10.244.1.0/24") or an InternalIP ("10.0.0.5") as a canonical network, or noted as ignored. */
function nodeNetwork(v: unknown, isCidr: boolean, ignored: Ignored): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const text = v.trim();
  // A pod CIDR must carry its prefix, an address must not.
  const net = text.includes('/') === isCidr ? canonicalNetwork(text, !isCidr) : undefined;
  const bits = net ? Number(net.slice(net.indexOf('/') + 1)) : -1;
  if (!net || bits < MIN_NODE_PREFIX[isAddress(net.slice(0, net.indexOf('/'))) as 4 | 6]) return ignored.add('node network', v);
  return net;
}

/** The parts of a Node that clientNetworks: auto and region learning use. */
export function slimNode(o: Obj): SlimNode {
  const m = o.metadata;
  const name = m && typeof m === 'object' ? str(m.name) : undefined;
  if (!name) throw new ObjectError('Node without metadata.name');
  const ignored = new Ignored();
  const spec: Obj = o.spec && typeof o.spec === 'object' ? o.spec : {};
  const found = new Set<string>();
  const seen = new Set<unknown>();
  let over = 0;
  const add = (v: unknown, isCidr: boolean) => {
    // spec.podCIDR is spec.podCIDRs[0]: a value is read (or ignored) once.
    if (seen.has(v)) return;
    seen.add(v);
    if (found.size >= MAX_NODE_NETWORKS) return void over++;
    const n = nodeNetwork(v, isCidr, ignored);
    if (n) found.add(n);
  };
  add(spec.podCIDR, true);
  if (Array.isArray(spec.podCIDRs)) for (const c of spec.podCIDRs) add(c, true);
  for (const a of arr(o.status?.addresses)) if (a.type === 'InternalIP') add(a.address, false);
  if (over) ignored.add('network limit', `${over} values past the ${MAX_NODE_NETWORKS} networks a node may have`);
  const node: SlimNode = { name, networks: [...found].sort() };
  const region = nodeRegion(m.labels);
  if (region) node.region = region.length > 253 ? region.slice(0, 253) : region;
  return ignored.attach(node);
}

export function sliceKey(s: { namespace: string; name: string }): string {
  return objectKey(s.namespace, s.name);
}

export function slimServiceImport(o: Obj): SlimServiceImport {
  const { namespace, name } = meta(o, 'ServiceImport');
  const ignored = new Ignored();
  const spec: Obj = o.spec && typeof o.spec === 'object' ? o.spec : {};
  const ips = reachable(addresses(spec.ips), 'clusterset ip', ignored);
  return ignored.attach<SlimServiceImport>({ namespace, name, headless: spec.type === 'Headless', ips: ips === NO_STRINGS ? ips : [...ips].sort() });
}

/** A ClusterProperty; its name is a DNS subdomain (id.k8s.io), not a label, so meta() does not apply. */
export function slimClusterProperty(o: Obj): SlimClusterProperty {
  const name = str(o.metadata?.name);
  if (!name) throw new ObjectError('ClusterProperty without metadata.name');
  const value = o.spec && typeof o.spec === 'object' ? str((o.spec as Obj).value) : undefined;
  // Only the length matters here: a value that cannot be a label is refused where it is used.
  return { namespace: '', name: name.toLowerCase().slice(0, 253), value: (value ?? '').slice(0, 256) };
}
