// A fake kube-apiserver for tests: HTTPS on 127.0.0.1 with a throwaway CA, bearer-token
// auth, LIST (with limit/continue pagination and selectors), WATCH (chunked newline-delimited
// JSON events replayed from an in-memory event log, 410 Expired after compaction, bookmarks,
// timeoutSeconds), GET/PUT/POST/DELETE of single objects with optimistic concurrency, and
// scriptable faults. It speaks the wire protocol that @kubernetes/client-node uses, so the real
// client (KubeConfig, CoreV1Api, Watch, makeInformer) can be pointed at it.
//
// Everything here is test-only; nothing listens on anything but 127.0.0.1.

import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify as yamlStringify } from 'yaml';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Types

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** What the server knows about one resource type. */
export interface ResourceDef {
  kind: string;
  listKind: string;
  group: string; // '' for the core group
  version: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** CRD-backed: list items carry apiVersion/kind like a real server's unstructured lists. */
  crd: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

export type Verb =
  | 'list'
  | 'watch'
  | 'get'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'discovery'
  | 'other';

export interface RequestRecord {
  seq: number;
  time: number;
  method: string;
  path: string;
  query: Record<string, string>;
  verb: Verb;
  /** Resource kind ("Service"), when the path named a known resource. */
  kind?: string;
  namespace?: string;
  name?: string;
  /** Bearer token presented, if any. */
  token?: string;
  /** Common name of a client certificate the server verified, if one was presented. */
  clientCert?: string;
  /** HTTP status sent (for watches: the status of the response head). */
  status: number;
}

export interface FakeApiServerOptions {
  /** Port on 127.0.0.1; 0 (default) picks an ephemeral one. */
  port?: number;
  /** Tokens that authenticate and are allowed everything. Default ['test-token']. */
  tokens?: string[];
  /** Tokens that authenticate but get 403 Forbidden on everything. */
  forbiddenTokens?: string[];
  /** Serve the multicluster.x-k8s.io CRDs (ServiceExport, ServiceImport). Default true. */
  serviceExports?: boolean;
  /** Kinds to leave out of the API (requests for them get 404 NotFound). */
  disabledKinds?: string[];
  /** More resource types to serve, besides DEFAULT_RESOURCES. */
  extraResources?: ResourceDef[];
  /** Interval between BOOKMARK events on watches that asked for them. Default 5000 ms. */
  bookmarkIntervalMs?: number;
  /** Watch events retained for replay; older ones are compacted away (410 on watch). Default 10000. */
  maxHistory?: number;
  /** Request log entries kept. Default 10000. */
  maxRequestLog?: number;
  /**
   * Put apiVersion/kind on every item of a LIST response. A real server leaves them off the
   * items of built-in lists (and puts them on CRD lists); default false, i.e. like a real one.
   */
  listItemsTypeMeta?: boolean;
  /**
   * Keep each LIST page's JSON text while nothing changes and serve it again (`renderLists`
   * renders them ahead). For benchmarks: a real API server serves lists from its watch cache on
   * machines of its own, while this one would otherwise share the measured server's CPU to
   * build every page. Default false.
   */
  renderListPages?: boolean;
  /** LIST snapshots (continue tokens) kept; the oldest go first. Default 1000. */
  maxSnapshots?: number;
}

export interface KubeconfigOptions {
  /** Bearer token; default the first configured token. '' writes a user with no credentials. */
  token?: string;
  /** Context name; default 'fake'. */
  context?: string;
  /** Cluster entry name; default the context name. */
  clusterName?: string;
  /** User entry name; default `${context}-user`. */
  userName?: string;
  /** Default namespace for the context. */
  namespace?: string;
  /** insecure-skip-tls-verify: true, and no CA data. */
  insecure?: boolean;
  /** CA to embed instead of the server's own. */
  caPem?: string;
  /**
   * How the user authenticates: 'token' (default), 'clientCert' (a certificate the server's CA
   * signed, embedded as data), 'wrongClientCert' (one from an unrelated CA), or 'exec' (an
   * exec credential plugin, client.authentication.k8s.io/v1, that prints the token).
   */
  auth?: 'token' | 'clientCert' | 'wrongClientCert' | 'exec';
}

export interface FaultOptions {
  /** Kind (or plural) the fault applies to; omitted = every kind. */
  kind?: string;
  /** Fire this many times and then disarm; omitted = stay armed until clear(). */
  times?: number;
}

export interface FaultHandle {
  /** How many times the fault fired so far. */
  readonly hits: number;
  /** Firings left (Infinity when armed until cleared). */
  readonly remaining: number;
  readonly active: boolean;
  clear(): void;
}

export interface ManifestSyncResult {
  added: string[];
  modified: string[];
  removed: string[];
  unchanged: string[];
}

type FaultType = 'status' | 'watch-close' | 'watch-silent' | 'watch-expired' | 'watch-malformed' | 'conflict';

interface Fault {
  type: FaultType;
  kind?: string; // resolved kind name
  verb?: Verb;
  status?: number;
  remaining: number;
  hits: number;
  tag?: string;
}

interface StoredEvent {
  rv: number;
  kind: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject; // as stored after the change (for DELETED: last state with the deletion rv)
  prev?: KubeObject; // state before a MODIFIED
}

interface Watcher {
  id: number;
  def: ResourceDef;
  namespace?: string;
  match: (o: KubeObject) => boolean;
  res: ServerResponse;
  silent: boolean;
  ended: boolean;
  timers: NodeJS.Timeout[];
}

interface Snapshot {
  kind: string;
  rv: number;
  items: KubeObject[];
  selectorKey: string;
}

interface Route {
  verb: Verb;
  def?: ResourceDef;
  namespace?: string;
  name?: string;
  /** For discovery / public endpoints: the JSON (or text) body to return. */
  body?: unknown;
  public?: boolean;
  notFound?: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(status.message));
  }
}

// ---------------------------------------------------------------------------------------------
// Resources

function res(kind: string, group: string, version: string, plural: string, namespaced: boolean, crd = false): ResourceDef {
  return { kind, listKind: `${kind}List`, group, version, plural, singular: kind.toLowerCase(), namespaced, crd };
}

export const DEFAULT_RESOURCES: readonly ResourceDef[] = [
  res('Service', '', 'v1', 'services', true),
  res('Endpoints', '', 'v1', 'endpoints', true),
  res('ConfigMap', '', 'v1', 'configmaps', true),
  res('Node', '', 'v1', 'nodes', false),
  res('EndpointSlice', 'discovery.k8s.io', 'v1', 'endpointslices', true),
  res('ServiceExport', 'multicluster.x-k8s.io', 'v1alpha1', 'serviceexports', true, true),
  res('ServiceImport', 'multicluster.x-k8s.io', 'v1alpha1', 'serviceimports', true, true),
  res('ClusterProperty', 'about.k8s.io', 'v1alpha1', 'clusterproperties', false, true),
];

const MULTICLUSTER_KINDS = ['ServiceExport', 'ServiceImport', 'ClusterProperty'];

function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}


// ---------------------------------------------------------------------------------------------
// Status objects

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A metav1.Status failure object, shaped like a real apiserver's. */
export function statusObject(
  code: number,
  message: string,
  reason: string = REASONS[code] ?? 'Unknown',
  details?: Record<string, unknown>,
): Record<string, unknown> {
  const s: Record<string, unknown> = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
  };
  if (details) s.details = details;
  s.code = code;
  return s;
}

function defaultStatus(code: number, route: Route | undefined): Record<string, unknown> {
  const plural = route?.def?.plural;
  switch (code) {
    case 401:
      return statusObject(401, 'Unauthorized');
    case 403:
      return statusObject(
        403,
        `${plural ?? 'resource'} is forbidden: User "system:serviceaccount:fedns:fedns" cannot ${route?.verb ?? 'get'} resource "${plural ?? ''}" in API group "${route?.def?.group ?? ''}" at the cluster scope`,
        'Forbidden',
        { kind: plural ?? '' },
      );
    case 410:
      return statusObject(410, 'too old resource version', 'Expired');
    case 429:
      return statusObject(429, 'Too many requests, please try again later.', 'TooManyRequests', { retryAfterSeconds: 1 });
    case 500:
      return statusObject(500, 'Internal error occurred: injected fault', 'InternalError');
    case 503:
      return statusObject(503, 'the server is currently unable to handle the request', 'ServiceUnavailable');
    case 504:
      return statusObject(504, 'the server was unable to return a response in the time allotted', 'Timeout');
    default:
      return statusObject(code, `injected fault (HTTP ${code})`);
  }
}

function notFoundStatus(def: ResourceDef, name: string): Record<string, unknown> {
  const details: Record<string, unknown> = { name, kind: def.plural };
  if (def.group) details.group = def.group;
  return statusObject(404, `${def.plural}${def.group ? '.' + def.group : ''} "${name}" not found`, 'NotFound', details);
}

function conflictStatus(def: ResourceDef, name: string): Record<string, unknown> {
  const details: Record<string, unknown> = { name, kind: def.plural };
  if (def.group) details.group = def.group;
  return statusObject(
    409,
    `Operation cannot be fulfilled on ${def.plural}${def.group ? '.' + def.group : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    'Conflict',
    details,
  );
}

const RESOURCE_NOT_FOUND = (): Record<string, unknown> =>
  statusObject(404, 'the server could not find the requested resource', 'NotFound', {});

// ---------------------------------------------------------------------------------------------
// Selectors

type LabelReq = { key: string; op: 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists'; values: string[] };

function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/** Parses a label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`. */
export function parseLabelSelector(s: string): LabelReq[] {
  const key = '([A-Za-z0-9][-A-Za-z0-9_./]*)';
  return splitTerms(s).map((term) => {
    let m = new RegExp(`^${key}\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(term);
    if (m) {
      const values = m[3].split(',').map((v) => v.trim()).filter((v) => v !== '');
      return { key: m[1], op: m[2] as 'in' | 'notin', values };
    }
    m = new RegExp(`^!\\s*${key}$`).exec(term);
    if (m) return { key: m[1], op: 'notexists', values: [] };
    m = new RegExp(`^${key}\\s*(==|=|!=)\\s*([-A-Za-z0-9_.]*)$`).exec(term);
    if (m) return { key: m[1], op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3]] };
    m = new RegExp(`^${key}$`).exec(term);
    if (m) return { key: m[1], op: 'exists', values: [] };
    throw new Error(`unable to parse requirement: ${JSON.stringify(term)}`);
  });
}

function labelsMatch(reqs: LabelReq[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        return has && v === r.values[0];
      case 'neq':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v);
      case 'notin':
        return !has || !r.values.includes(v);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
    }
  });
}

function parseFieldSelector(s: string): (o: KubeObject) => boolean {
  const tests = splitTerms(s).map((term) => {
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new Error(`invalid field selector: ${JSON.stringify(term)}`);
    const [, field, op, value] = m;
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new Error(`field label not supported: ${field}`);
    }
    return (o: KubeObject) => {
      const actual = (field === 'metadata.name' ? o.metadata?.name : o.metadata?.namespace) ?? '';
      return op === '!=' ? actual !== value : actual === value;
    };
  });
  return (o) => tests.every((t) => t(o));
}

// ---------------------------------------------------------------------------------------------
// Helpers

function clone<T>(v: T): T {
  return structuredClone(v);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Content of an object minus the fields the server owns, for no-op detection. */
function contentKey(o: KubeObject): string {
  const c = clone(o);
  if (c.metadata) {
    delete c.metadata.resourceVersion;
    delete c.metadata.uid;
    delete c.metadata.creationTimestamp;
    delete c.metadata.generation;
    delete c.metadata.managedFields;
  }
  return canonical(c);
}

function objKey(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Common name of the client certificate, when one was presented and verified against the CA. */
function verifiedClient(req: IncomingMessage): string | undefined {
  const sock = req.socket as TLSSocket;
  return sock.authorized ? String(sock.getPeerCertificate().subject?.CN ?? '') : undefined;
}

function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1].trim() : undefined;
}

async function readBody(req: IncomingMessage, limit = 3 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(statusObject(413, 'Request entity too large', 'RequestEntityTooLarge'));
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function encodeContinue(id: string, offset: number, rv: number): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, id, offset })).toString('base64');
}

function decodeContinue(tok: string): { id: string; offset: number; rv: number } | undefined {
  try {
    const j = JSON.parse(Buffer.from(tok, 'base64').toString('utf8')) as Record<string, unknown>;
    if (j.v !== 'meta.k8s.io/v1' || typeof j.id !== 'string' || typeof j.offset !== 'number' || typeof j.rv !== 'number') return undefined;
    return { id: j.id, offset: j.offset, rv: j.rv };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates

interface Certs {
  caPem: string;
  certPem: string;
  keyPem: string;
  wrongCaPem: string;
  /** Client certificate (CN fedns-client) signed by the server's CA, and its key. */
  clientCertPem: string;
  clientKeyPem: string;
  /** Client certificate (CN intruder) signed by the unrelated CA, and its key. */
  wrongClientCertPem: string;
  wrongClientKeyPem: string;
}

async function generateCerts(dir: string): Promise<Certs> {
  const openssl = 'openssl';
  const cnf = path.join(dir, 'openssl.cnf');
  await fs.writeFile(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = fake-apiserver',
      '[v3_ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '[v3_server]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '[v3_client]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const p = (f: string) => path.join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const selfSigned = (name: string, cn: string) =>
    execFileP(openssl, ['req', '-x509', '-config', cnf, '-extensions', 'v3_ca', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`), '-days', '3', '-subj', `/CN=${cn}`]);
  await Promise.all([
    selfSigned('ca', `fake-apiserver-ca-${randomBytes(4).toString('hex')}`),
    selfSigned('wrong-ca', `unrelated-ca-${randomBytes(4).toString('hex')}`),
    ...[['server', '127.0.0.1'], ['client', 'fedns-client'], ['wrong-client', 'intruder']].map(([name, cn]) =>
      execFileP(openssl, ['req', '-new', '-config', cnf, ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`]),
    ),
  ]);
  const sign = (name: string, ca: string, ext: string) =>
    execFileP(openssl, [
      'x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.crt`), '-CAkey', p(`${ca}.key`),
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '2',
      '-extfile', cnf, '-extensions', ext, '-out', p(`${name}.crt`),
    ]);
  await Promise.all([sign('server', 'ca', 'v3_server'), sign('client', 'ca', 'v3_client'), sign('wrong-client', 'wrong-ca', 'v3_client')]);
  const files = ['ca.crt', 'server.crt', 'server.key', 'wrong-ca.crt', 'client.crt', 'client.key', 'wrong-client.crt', 'wrong-client.key'];
  const [caPem, certPem, keyPem, wrongCaPem, clientCertPem, clientKeyPem, wrongClientCertPem, wrongClientKeyPem] = await Promise.all(
    files.map((f) => fs.readFile(p(f), 'utf8')),
  );
  return { caPem, certPem, keyPem, wrongCaPem, clientCertPem, clientKeyPem, wrongClientCertPem, wrongClientKeyPem };
}

// ---------------------------------------------------------------------------------------------
// Manifests

/** Reads *.yaml / *.yml / *.json in dir (sorted by name), expanding Lists; returns the objects. */
export async function readManifests(dir: string): Promise<KubeObject[]> {
  const files = (await fs.readdir(dir)).filter((f) => /\.(ya?ml|json)$/i.test(f) && !f.startsWith('.')).sort();
  const out: KubeObject[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    const text = await fs.readFile(file, 'utf8');
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    for (const doc of list) {
      if ('errors' in doc && doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message.split('\n')[0]}`);
      const js = doc.toJS() as unknown;
      if (js === null || js === undefined) continue;
      if (typeof js !== 'object' || Array.isArray(js)) throw new Error(`${file}: document is not an object`);
      const o = js as KubeObject;
      if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) {
        const itemKind = o.kind === 'List' ? undefined : o.kind.slice(0, -'List'.length);
        for (const item of o.items as KubeObject[]) {
          if (!item || typeof item !== 'object') continue;
          out.push(itemKind && !item.kind ? { ...item, kind: itemKind, apiVersion: item.apiVersion ?? o.apiVersion } : item);
        }
      } else {
        out.push(o);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server

export class FakeApiServer extends EventEmitter {
  /** Valid bearer tokens (mutable). */
  readonly tokens: Set<string>;
  /** Tokens that authenticate but are forbidden (mutable). */
  readonly forbiddenTokens: Set<string>;
  /** Every request seen (most recent maxRequestLog). */
  readonly requestLog: RequestRecord[] = [];
  /** TLS handshakes that failed (e.g. client did not trust the CA). */
  tlsErrors = 0;
  /** Connections turned away (reset, or accepted and left hanging) while breakAll() was in force. */
  brokenConnections = 0;

  private readonly opts: Required<Pick<FakeApiServerOptions, 'bookmarkIntervalMs' | 'maxHistory' | 'maxRequestLog' | 'listItemsTypeMeta' | 'renderListPages' | 'maxSnapshots'>>;
  /** Rendered LIST pages by request, valid at renderedRv (renderListPages). */
  private readonly rendered = new Map<string, { body: Buffer; next?: string }>();
  private renderedRv = -1;
  private readonly defs: ResourceDef[];
  private readonly disabled = new Set<string>();
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredEvent[] = [];
  private rv = 0;
  private compactedRv = 0;
  private readonly watchers = new Set<Watcher>();
  private watcherSeq = 0;
  private readonly snapshots = new Map<string, Snapshot>();
  private faults: Fault[] = [];
  private readonly pageSizes = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  private requestSeq = 0;
  private readonly manifestKeys = new Set<string>();

  private certs?: Certs;
  private tmpDir?: string;
  private netServer?: net.Server;
  private httpsServer?: https.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly hungSockets = new Set<net.Socket>();
  private broken: 'reset' | 'hang' | null = null;
  private port: number;
  private started = false;
  private stopped = false;

  constructor(options: FakeApiServerOptions = {}) {
    super();
    this.setMaxListeners(0);
    this.port = options.port ?? 0;
    this.tokens = new Set(options.tokens ?? ['test-token']);
    this.forbiddenTokens = new Set(options.forbiddenTokens ?? []);
    this.opts = {
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000,
      maxHistory: options.maxHistory ?? 10000,
      maxRequestLog: options.maxRequestLog ?? 10000,
      listItemsTypeMeta: options.listItemsTypeMeta ?? false,
      renderListPages: options.renderListPages ?? false,
      maxSnapshots: options.maxSnapshots ?? 1000,
    };
    this.defs = [...DEFAULT_RESOURCES, ...(options.extraResources ?? [])];
    if (options.serviceExports === false) for (const k of MULTICLUSTER_KINDS) this.disabled.add(k);
    for (const k of options.disabledKinds ?? []) this.disabled.add(this.def(k).kind);
  }

  /** Creates and starts a server. */
  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(options);
    await s.start();
    return s;
  }

  // ----- lifecycle -----

  async start(): Promise<this> {
    if (this.started) throw new Error('FakeApiServer already started');
    this.started = true;
    this.tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-apiserver-'));
    try {
      this.certs = await generateCerts(this.tmpDir);
      // Like kube-apiserver with --client-ca-file: a client certificate is asked for and, when it
      // verifies against the CA, authenticates; without one, bearer tokens still work.
      const httpsServer = https.createServer({ key: this.certs.keyPem, cert: this.certs.certPem, ca: this.certs.caPem, requestCert: true, rejectUnauthorized: false }, (req, resp) => {
        this.handle(req, resp).catch((err: unknown) => {
          if (!resp.headersSent) this.sendJson(resp, 500, statusObject(500, `fake-apiserver: ${String(err)}`));
          else resp.destroy();
        });
      });
      httpsServer.on('tlsClientError', () => {
        this.tlsErrors++;
        this.changed();
      });
      this.httpsServer = httpsServer;
      const netServer = net.createServer((socket) => this.onConnection(socket));
      this.netServer = netServer;
      await new Promise<void>((resolve, reject) => {
        netServer.once('error', reject);
        netServer.listen({ host: '127.0.0.1', port: this.port }, () => {
          netServer.off('error', reject);
          resolve();
        });
      });
      this.port = (netServer.address() as net.AddressInfo).port;
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** Closes every connection and the listener, and removes the temp dir. Never hangs on watches. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.watchers) this.finishWatcher(w, false);
    this.watchers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.hungSockets.clear();
    const ns = this.netServer;
    if (ns?.listening) await new Promise<void>((resolve) => ns.close(() => resolve()));
    if (this.tmpDir) await fs.rm(this.tmpDir, { recursive: true, force: true });
    this.changed();
    this.emit('stopped');
    this.removeAllListeners();
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get caPem(): string {
    if (!this.certs) throw new Error('FakeApiServer not started');
    return this.certs.caPem;
  }

  /** The server's certificate (for 127.0.0.1, signed by caPem) and key: for other test servers that clients must trust. */
  get tlsIdentity(): { cert: string; key: string } {
    if (!this.certs) throw new Error('FakeApiServer not started');
    return { cert: this.certs.certPem, key: this.certs.keyPem };
  }

  /** A CA certificate unrelated to the server's: a client trusting only it fails TLS verification. */
  get wrongCaPem(): string {
    if (!this.certs) throw new Error('FakeApiServer not started');
    return this.certs.wrongCaPem;
  }

  // ----- kubeconfig -----

  private kubeconfigParts(o: KubeconfigOptions) {
    const context = o.context ?? 'fake';
    const clusterName = o.clusterName ?? context;
    const userName = o.userName ?? `${context}-user`;
    const token = o.token ?? [...this.tokens][0] ?? '';
    const cluster: Record<string, unknown> = { server: this.url };
    if (o.insecure) cluster['insecure-skip-tls-verify'] = true;
    else cluster['certificate-authority-data'] = Buffer.from(o.caPem ?? this.caPem).toString('base64');
    const ctx: Record<string, unknown> = { cluster: clusterName, user: userName };
    if (o.namespace) ctx.namespace = o.namespace;
    const b64 = (pem: string) => Buffer.from(pem).toString('base64');
    const certs = this.certs!;
    let user: Record<string, unknown> = token ? { token } : {};
    if (o.auth === 'clientCert') user = { 'client-certificate-data': b64(certs.clientCertPem), 'client-key-data': b64(certs.clientKeyPem) };
    else if (o.auth === 'wrongClientCert') user = { 'client-certificate-data': b64(certs.wrongClientCertPem), 'client-key-data': b64(certs.wrongClientKeyPem) };
    else if (o.auth === 'exec') {
      user = {
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [this.execPluginPath(), token], interactiveMode: 'Never' },
      };
    }
    return {
      context,
      cluster: { name: clusterName, cluster },
      user: { name: userName, user },
      ctx: { name: context, context: ctx },
    };
  }

  /**
   * A credential plugin (client.authentication.k8s.io/v1) that prints an ExecCredential with the
   * token given as its argument (or fails, when that token is 'fail'), and counts its runs in
   * `<script>.runs`.
   */
  private execPluginPath(): string {
    const file = path.join(this.tmpDir!, 'exec-credential.cjs');
    writeFileSync(
      file,
      [
        "const fs = require('node:fs');",
        'fs.appendFileSync(__filename + ".runs", "x");',
        "if (process.argv[2] === 'fail') { console.error('plugin: login required'); process.exit(1); }",
        "process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: process.argv[2] } }));",
        '',
      ].join('\n'),
    );
    return file;
  }

  /** How many times the exec credential plugin ran. */
  get execPluginRuns(): number {
    try {
      return readFileSync(path.join(this.tmpDir!, 'exec-credential.cjs.runs'), 'utf8').length;
    } catch {
      return 0;
    }
  }

  /** kubeconfig YAML for this server (CA data + bearer token user). */
  kubeconfig(opts: KubeconfigOptions = {}): string {
    return FakeApiServer.combinedKubeconfig([{ server: this, ...opts }]);
  }

  /** kubeconfig YAML that trusts an unrelated CA, so TLS verification fails. */
  wrongCaKubeconfig(opts: KubeconfigOptions = {}): string {
    return this.kubeconfig({ ...opts, caPem: this.wrongCaPem });
  }

  /** Writes kubeconfig(opts) to file (mode 0600) and returns the path. */
  writeKubeconfig(file: string, opts: KubeconfigOptions = {}): string {
    writeFileSync(file, this.kubeconfig(opts), { mode: 0o600 });
    return file;
  }

  /** One kubeconfig with a context per entry (e.g. several fake clusters); current-context = first. */
  static combinedKubeconfig(entries: Array<KubeconfigOptions & { server: FakeApiServer }>, currentContext?: string): string {
    const parts = entries.map((e) => e.server.kubeconfigParts(e));
    return yamlStringify({
      apiVersion: 'v1',
      kind: 'Config',
      preferences: {},
      clusters: parts.map((p) => p.cluster),
      users: parts.map((p) => p.user),
      contexts: parts.map((p) => p.ctx),
      'current-context': currentContext ?? parts[0]?.context ?? '',
    });
  }

  // ----- store API (in-process) -----

  /** Current global resourceVersion (etcd-like, bumped by every change). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Oldest resourceVersion a watch can still start from. */
  get compactedResourceVersion(): string {
    return String(this.compactedRv);
  }

  /** Resource definition by kind ("Service") or plural ("services"), case-insensitive. */
  def(kindOrPlural: string): ResourceDef {
    const k = kindOrPlural.toLowerCase();
    const d = this.defs.find((x) => x.kind.toLowerCase() === k || x.plural === k);
    if (!d) throw new Error(`fake-apiserver: unknown kind ${kindOrPlural}`);
    return d;
  }

  /** Serve or hide (404, like a missing CRD) a kind. Hiding closes its open watches. */
  setKindEnabled(kind: string, enabled: boolean): void {
    const d = this.def(kind);
    if (enabled) this.disabled.delete(d.kind);
    else {
      this.disabled.add(d.kind);
      for (const w of [...this.watchers]) if (w.def === d) this.finishWatcher(w, true);
    }
  }

  kindEnabled(kind: string): boolean {
    return !this.disabled.has(this.def(kind).kind);
  }

  /** Creates or updates by kind/namespace/name; emits ADDED/MODIFIED to watches. Returns the stored object. */
  apply(obj: KubeObject): KubeObject {
    return clone(this.applyInternal(obj).object);
  }

  /** Deletes; emits DELETED. Returns whether it existed. */
  remove(kind: string, namespace: string | undefined, name: string): boolean {
    const d = this.def(kind);
    return this.removeInternal(d, d.namespaced ? namespace || 'default' : undefined, name) !== undefined;
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const d = this.def(kind);
    const o = this.bucket(d).get(objKey(d.namespaced ? namespace || 'default' : undefined, name));
    return o ? clone(o) : undefined;
  }

  list(kind: string, namespace?: string): KubeObject[] {
    return this.sortedObjects(this.def(kind), namespace).map(clone);
  }

  /** Drops all retained watch history: watches from any older resourceVersion get 410 Expired. */
  compact(): void {
    this.history.length = 0;
    this.compactedRv = this.rv;
    this.snapshots.clear();
    this.rendered.clear();
  }

  /** Applies every object in dir's manifests; returns the stored objects. */
  async loadManifests(dir: string, opts: { ignoreUnknownKinds?: boolean } = {}): Promise<KubeObject[]> {
    const objs = await readManifests(dir);
    const out: KubeObject[] = [];
    for (const o of objs) {
      if (opts.ignoreUnknownKinds && !this.knowsKind(o.kind)) continue;
      const r = this.applyInternal(o);
      this.manifestKeys.add(r.key);
      out.push(clone(r.object));
    }
    return out;
  }

  /**
   * Makes the store follow dir: applies every object (no-op when unchanged) and removes objects
   * that an earlier loadManifests/syncManifests loaded but that are gone from the files.
   * Unknown kinds are skipped. Throws (changing nothing) when a file does not parse.
   */
  async syncManifests(dir: string): Promise<ManifestSyncResult> {
    const objs = (await readManifests(dir)).filter((o) => this.knowsKind(o.kind));
    for (const o of objs) this.validate(o); // all-or-nothing
    const result: ManifestSyncResult = { added: [], modified: [], removed: [], unchanged: [] };
    const seen = new Set<string>();
    for (const o of objs) {
      const r = this.applyInternal(o);
      seen.add(r.key);
      result[r.change === 'added' ? 'added' : r.change === 'modified' ? 'modified' : 'unchanged'].push(r.key);
    }
    for (const key of [...this.manifestKeys]) {
      if (seen.has(key)) continue;
      const [kind, ns, name] = key.split('/');
      const d = this.def(kind);
      if (this.removeInternal(d, ns || undefined, name)) result.removed.push(key);
      this.manifestKeys.delete(key);
    }
    for (const k of seen) this.manifestKeys.add(k);
    return result;
  }

  private knowsKind(kind: unknown): boolean {
    return typeof kind === 'string' && this.defs.some((d) => d.kind === kind);
  }

  private validate(obj: KubeObject): ResourceDef {
    if (!obj || typeof obj !== 'object') throw new Error('fake-apiserver: object expected');
    if (typeof obj.kind !== 'string') throw new Error('fake-apiserver: object has no kind');
    const d = this.defs.find((x) => x.kind === obj.kind);
    if (!d) throw new Error(`fake-apiserver: unknown kind ${obj.kind}`);
    if (!obj.metadata?.name) throw new Error(`fake-apiserver: ${obj.kind} without metadata.name`);
    return d;
  }

  private bucket(d: ResourceDef): Map<string, KubeObject> {
    let b = this.store.get(d.kind);
    if (!b) {
      b = new Map();
      this.store.set(d.kind, b);
    }
    return b;
  }

  private sortedObjects(d: ResourceDef, namespace?: string): KubeObject[] {
    const all = [...this.bucket(d).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  private applyInternal(input: KubeObject): { object: KubeObject; change: 'added' | 'modified' | 'unchanged'; key: string } {
    const d = this.validate(input);
    const obj = clone(input);
    obj.apiVersion = apiVersionOf(d);
    obj.kind = d.kind;
    const meta = (obj.metadata ??= {});
    if (d.namespaced) meta.namespace ||= 'default';
    else delete meta.namespace;
    const name = meta.name as string;
    const key = `${d.kind}/${meta.namespace ?? ''}/${name}`;
    const b = this.bucket(d);
    const k = objKey(meta.namespace, name);
    const existing = b.get(k);
    if (existing) {
      if (contentKey(existing) === contentKey(obj)) return { object: existing, change: 'unchanged', key };
      meta.uid = existing.metadata?.uid;
      meta.creationTimestamp = existing.metadata?.creationTimestamp;
    } else {
      meta.uid ||= randomUUID();
      meta.creationTimestamp ||= nowTimestamp();
    }
    this.store1(d, obj, existing);
    return { object: obj, change: existing ? 'modified' : 'added', key };
  }

  /** Stores obj (already normalised), bumping the resourceVersion, and fans the event out. */
  private store1(d: ResourceDef, obj: KubeObject, existing: KubeObject | undefined): void {
    const meta = obj.metadata!;
    this.rv++;
    meta.resourceVersion = String(this.rv);
    this.bucket(d).set(objKey(meta.namespace, meta.name as string), obj);
    this.record({ rv: this.rv, kind: d.kind, type: existing ? 'MODIFIED' : 'ADDED', object: obj, prev: existing });
  }

  private removeInternal(d: ResourceDef, namespace: string | undefined, name: string): KubeObject | undefined {
    const b = this.bucket(d);
    const k = objKey(namespace, name);
    const existing = b.get(k);
    if (!existing) return undefined;
    b.delete(k);
    this.rv++;
    const last = clone(existing);
    last.metadata!.resourceVersion = String(this.rv);
    this.record({ rv: this.rv, kind: d.kind, type: 'DELETED', object: last });
    return last;
  }

  private record(ev: StoredEvent): void {
    this.history.push(ev);
    while (this.history.length > this.opts.maxHistory) {
      const dropped = this.history.shift()!;
      this.compactedRv = dropped.rv;
    }
    for (const w of this.watchers) {
      if (w.def.kind === ev.kind && !w.silent && !w.ended) this.deliver(w, ev);
    }
    this.changed();
  }

  // ----- faults -----

  private addFault(f: Omit<Fault, 'hits' | 'remaining'>, o: FaultOptions = {}): FaultHandle {
    const fault: Fault = { ...f, kind: o.kind ? this.def(o.kind).kind : undefined, remaining: o.times ?? Infinity, hits: 0 };
    if (fault.remaining <= 0) throw new Error('fake-apiserver: fault times must be > 0');
    this.faults.push(fault);
    const faults = () => this.faults;
    const drop = () => {
      this.faults = this.faults.filter((x) => x !== fault);
    };
    return {
      get hits() {
        return fault.hits;
      },
      get remaining() {
        return faults().includes(fault) ? fault.remaining : 0;
      },
      get active() {
        return faults().includes(fault);
      },
      clear: drop,
    };
  }

  private takeFault(type: FaultType, kind: string | undefined, verb?: Verb): Fault | undefined {
    const f = this.faults.find(
      (x) => x.type === type && x.tag === undefined && (x.kind === undefined || x.kind === kind) && (x.verb === undefined || x.verb === verb),
    );
    if (f) this.consume(f);
    return f;
  }

  private consume(f: Fault): void {
    f.hits++;
    f.remaining--;
    if (f.remaining <= 0) this.faults = this.faults.filter((x) => x !== f);
  }

  /** Requests of the given verb (or all verbs) and kind answer with an HTTP error Status. */
  failRequests(status: number, opts: FaultOptions & { verb?: Verb } = {}): FaultHandle {
    return this.addFault({ type: 'status', status, verb: opts.verb }, opts);
  }

  /** LIST requests answer with an HTTP error (e.g. 500, 503). */
  failList(status = 500, opts: FaultOptions = {}): FaultHandle {
    return this.failRequests(status, { ...opts, verb: 'list' });
  }

  /** WATCH requests answer with an HTTP error instead of 200 (e.g. 410, 500, 503). */
  failWatch(status = 410, opts: FaultOptions = {}): FaultHandle {
    return this.failRequests(status, { ...opts, verb: 'watch' });
  }

  /** Every request gets 401 or 403 (toggle: allowAll() or handle.clear() undoes it). */
  denyAll(code: 401 | 403 = 401, opts: FaultOptions = {}): FaultHandle {
    return this.addFault({ type: 'status', status: code, tag: 'deny' }, opts);
  }

  /** Undoes denyAll(). */
  allowAll(): void {
    this.faults = this.faults.filter((f) => f.tag !== 'deny');
  }

  /** New watches get 200 + headers and are then closed at once (reconnect storm). */
  closeWatchesImmediately(opts: FaultOptions = {}): FaultHandle {
    return this.addFault({ type: 'watch-close' }, opts);
  }

  /** New watches get 200 + headers and then nothing ever: no events, no bookmarks, no end. */
  silenceNewWatches(opts: FaultOptions = {}): FaultHandle {
    return this.addFault({ type: 'watch-silent' }, opts);
  }

  /** New watches get an in-stream ERROR event with a 410 Expired Status, then the stream ends. */
  expireNewWatches(opts: FaultOptions = {}): FaultHandle {
    return this.addFault({ type: 'watch-expired' }, opts);
  }

  /** New watches get one non-JSON line after their initial events (then carry on normally). */
  malformNewWatches(opts: FaultOptions = {}): FaultHandle {
    return this.addFault({ type: 'watch-malformed' }, opts);
  }

  /** PUTs answer 409 Conflict regardless of resourceVersion. */
  forceConflicts(times = 1, opts: Omit<FaultOptions, 'times'> = {}): FaultHandle {
    return this.addFault({ type: 'conflict' }, { ...opts, times });
  }

  /** Caps LIST page size (even when the client sent no limit); null removes the cap. */
  forcePageSize(size: number | null, kind?: string): void {
    const k = kind ? this.def(kind).kind : '*';
    if (size === null) this.pageSizes.delete(k);
    else this.pageSizes.set(k, size);
  }

  /** Disarms every fault and page-size cap (not breakAll; use restore()). */
  clearFaults(): void {
    this.faults = [];
    this.pageSizes.clear();
  }

  /** Makes open watches (of kind, or all) silent: they stay open but get nothing more. Returns count. */
  silenceOpenWatches(kind?: string): number {
    let n = 0;
    for (const w of this.openWatchers(kind)) {
      if (w.silent) continue;
      w.silent = true;
      for (const t of w.timers) clearTimeout(t);
      w.timers = [];
      n++;
    }
    return n;
  }

  /** Sends an in-stream ERROR 410 Expired to open watches and ends them. Returns count. */
  expireOpenWatches(kind?: string): number {
    const ws = this.openWatchers(kind);
    for (const w of ws) {
      this.writeEvent(w, { type: 'ERROR', object: this.expiredStatus(0) }, true);
      this.finishWatcher(w, true);
    }
    return ws.length;
  }

  /** Writes a non-JSON line to open watches. Returns count. */
  sendMalformedLine(kind?: string): number {
    const ws = this.openWatchers(kind);
    for (const w of ws) if (!w.silent) w.res.write('{"type":"MODIFIED","object":{this is not json\n');
    return ws.length;
  }

  /** Ends open watches cleanly (the client sees a normal end of stream). Returns count. */
  endOpenWatches(kind?: string): number {
    const ws = this.openWatchers(kind);
    for (const w of ws) this.finishWatcher(w, true);
    return ws.length;
  }

  /** Drops every open watch connection abruptly (socket destroyed). Returns count. */
  closeAllWatches(kind?: string): number {
    const ws = this.openWatchers(kind);
    for (const w of ws) this.finishWatcher(w, false);
    return ws.length;
  }

  /**
   * Simulates an unreachable server while keeping the port: every open connection is destroyed and
   * new ones are reset at once ('reset') or accepted and never answered ('hang').
   */
  breakAll(mode: 'reset' | 'hang' = 'reset'): void {
    this.broken = mode;
    for (const w of [...this.watchers]) this.finishWatcher(w, false);
    for (const s of this.sockets) s.destroy();
  }

  /** Undoes breakAll(); hung connections are dropped so clients retry. */
  restore(): void {
    this.broken = null;
    for (const s of this.hungSockets) s.destroy();
    this.hungSockets.clear();
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  // ----- observability -----

  private openWatchers(kind?: string): Watcher[] {
    const k = kind ? this.def(kind).kind : undefined;
    return [...this.watchers].filter((w) => !w.ended && (k === undefined || w.def.kind === k));
  }

  /** Number of watch connections currently open (of kind, or all). */
  openWatches(kind?: string): number {
    return this.openWatchers(kind).length;
  }

  /** Requests seen, optionally only those of a kind and/or verb ('list', 'watch', 'get', 'update', ...). */
  requestCount(filter: { kind?: string; verb?: Verb; method?: string } = {}): number {
    const k = filter.kind ? this.def(filter.kind).kind : undefined;
    if (!filter.method) {
      let n = 0;
      for (const [key, c] of this.counts) {
        const [verb, kind] = key.split(' ');
        if ((k === undefined || kind === k) && (filter.verb === undefined || verb === filter.verb)) n += c;
      }
      return n;
    }
    return this.requestLog.filter(
      (r) => (k === undefined || r.kind === k) && (filter.verb === undefined || r.verb === filter.verb) && r.method === filter.method,
    ).length;
  }

  /** Counts keyed "verb Kind" (e.g. "list Service", "watch EndpointSlice", "other -"). */
  requestCounts(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** Clears the request log and counters. */
  resetRequestLog(): void {
    this.requestLog.length = 0;
    this.counts.clear();
  }

  /** Resolves once pred() holds (checked after every request/watch/store change), else rejects. */
  waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`fake-apiserver: stopped; not waiting for ${what}`));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake-apiserver: timed out after ${timeoutMs}ms waiting for ${what}`));
      }, timeoutMs);
      const onStop = () => {
        cleanup();
        reject(new Error(`fake-apiserver: stopped while waiting for ${what}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', check);
        this.off('stopped', onStop);
      };
      this.on('change', check);
      this.once('stopped', onStop);
    });
  }

  /** Resolves when at least n watches of kind (or of any kind if kind is undefined) are open. */
  waitForWatches(kind: string | undefined, n = 1, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.openWatches(kind) >= n, timeoutMs, `${n} open ${kind ?? ''} watch(es)`);
  }

  /** Resolves when requestCount(filter) reaches n. */
  waitForRequests(filter: { kind?: string; verb?: Verb }, n = 1, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.requestCount(filter) >= n, timeoutMs, `${n} ${filter.verb ?? ''} ${filter.kind ?? ''} request(s)`);
  }

  private changed(): void {
    this.emit('change');
  }

  // ----- connections -----

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.broken) {
      this.brokenConnections++;
      this.changed();
    }
    if (this.stopped || this.broken === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.hungSockets.delete(socket);
    });
    if (this.broken === 'hang') {
      this.hungSockets.add(socket);
      return;
    }
    this.httpsServer!.emit('connection', socket);
  }

  // ----- HTTP -----

  private sendJson(resp: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    this.sendJsonText(resp, code, JSON.stringify(body), headers);
  }

  /** JSON already rendered (text, or its UTF-8 bytes). */
  private sendJsonText(resp: ServerResponse, code: number, text: string | Buffer, headers: Record<string, string> = {}): void {
    resp.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
      ...headers,
    });
    resp.end(text);
  }

  private logRequest(req: IncomingMessage, u: URL, route: Route, token: string | undefined, status: number): void {
    const rec: RequestRecord = {
      seq: ++this.requestSeq,
      time: Date.now(),
      method: req.method ?? 'GET',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      verb: route.verb,
      kind: route.def?.kind,
      namespace: route.namespace,
      name: route.name,
      token,
      clientCert: verifiedClient(req),
      status,
    };
    this.requestLog.push(rec);
    if (this.requestLog.length > this.opts.maxRequestLog) this.requestLog.shift();
    const key = `${rec.verb} ${rec.kind ?? '-'}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.emit('request', rec);
    this.changed();
  }

  private route(method: string, u: URL): Route {
    const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const get = method === 'GET';
    if (segs.length === 1 && ['healthz', 'livez', 'readyz'].includes(segs[0])) {
      return { verb: 'other', public: true, body: 'ok' };
    }
    if (segs.length === 1 && segs[0] === 'version') {
      return {
        verb: 'other',
        public: true,
        body: { major: '1', minor: '31', gitVersion: 'v1.31.0-fedns-fake', gitCommit: 'fake', platform: 'linux/amd64' },
      };
    }
    const enabled = this.defs.filter((d) => !this.disabled.has(d.kind));
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api') {
      if (segs.length === 1 && get) {
        return {
          verb: 'discovery',
          body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }] },
        };
      }
      if (segs[1] !== 'v1') return { verb: 'other', notFound: true };
      group = '';
      version = 'v1';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis') {
      if (segs.length === 1 && get) {
        const groups = new Map<string, string>();
        for (const d of enabled) if (d.group) groups.set(d.group, d.version);
        return {
          verb: 'discovery',
          body: {
            kind: 'APIGroupList',
            apiVersion: 'v1',
            groups: [...groups].map(([name, v]) => ({
              name,
              versions: [{ groupVersion: `${name}/${v}`, version: v }],
              preferredVersion: { groupVersion: `${name}/${v}`, version: v },
            })),
          },
        };
      }
      if (segs.length < 3) return { verb: 'other', notFound: true };
      group = segs[1];
      version = segs[2];
      rest = segs.slice(3);
    } else {
      return { verb: 'other', notFound: true };
    }
    const gv = enabled.filter((d) => d.group === group && d.version === version);
    if (gv.length === 0) return { verb: 'other', notFound: true };
    if (rest.length === 0) {
      if (!get) return { verb: 'other', notFound: true };
      return {
        verb: 'discovery',
        body: {
          kind: 'APIResourceList',
          apiVersion: 'v1',
          groupVersion: group ? `${group}/${version}` : version,
          resources: gv.map((d) => ({
            name: d.plural,
            singularName: d.singular,
            namespaced: d.namespaced,
            kind: d.kind,
            verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'],
          })),
        },
      };
    }
    let namespace: string | undefined;
    let plural: string;
    let name: string | undefined;
    let extra: string[];
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      plural = rest[2];
      name = rest[3];
      extra = rest.slice(4);
    } else {
      plural = rest[0];
      name = rest[1];
      extra = rest.slice(2);
    }
    const def = gv.find((d) => d.plural === plural);
    if (!def || extra.length > 0 || (namespace !== undefined && !def.namespaced)) return { verb: 'other', notFound: true };
    const watch = ['true', '1'].includes(u.searchParams.get('watch') ?? '');
    let verb: Verb;
    if (name === undefined) {
      verb = method === 'GET' ? (watch ? 'watch' : 'list') : method === 'POST' ? 'create' : 'other';
    } else {
      verb = method === 'GET' ? 'get' : method === 'PUT' ? 'update' : method === 'PATCH' ? 'patch' : method === 'DELETE' ? 'delete' : 'other';
    }
    return { verb, def, namespace, name };
  }

  private async handle(req: IncomingMessage, resp: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    const route = this.route(req.method ?? 'GET', u);
    const token = bearerToken(req);
    const fail = (code: number, status: Record<string, unknown>, headers: Record<string, string> = {}) => {
      this.logRequest(req, u, route, token, code);
      this.sendJson(resp, code, status, headers);
    };

    // authentication, authorization
    const deny = this.faults.find((f) => f.tag === 'deny' && (f.kind === undefined || f.kind === route.def?.kind));
    if (deny) {
      this.consume(deny);
      return fail(deny.status!, defaultStatus(deny.status!, route));
    }
    const certUser = verifiedClient(req);
    if (!route.public && certUser === undefined) {
      if (token === undefined || (!this.tokens.has(token) && !this.forbiddenTokens.has(token))) {
        return fail(401, defaultStatus(401, route));
      }
      if (this.forbiddenTokens.has(token)) return fail(403, defaultStatus(403, route));
    }
    if (route.notFound) return fail(404, RESOURCE_NOT_FOUND());
    if (route.body !== undefined) {
      this.logRequest(req, u, route, token, 200);
      if (typeof route.body === 'string') {
        resp.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        resp.end(route.body);
      } else this.sendJson(resp, 200, route.body);
      return;
    }
    const def = route.def!;
    if (route.verb === 'other' || route.verb === 'patch') {
      return fail(405, statusObject(405, `the server does not allow this method on the requested resource`, 'MethodNotAllowed', {}));
    }
    const injected = this.takeFault('status', def.kind, route.verb);
    if (injected) {
      const s = injected.status!;
      return fail(s, defaultStatus(s, route), s === 429 ? { 'Retry-After': '1' } : {});
    }

    try {
      switch (route.verb) {
        case 'list':
          return this.handleList(req, resp, u, route, token);
        case 'watch':
          return this.handleWatch(req, resp, u, route, token);
        case 'get': {
          const o = this.bucket(def).get(objKey(route.namespace, route.name!));
          if (!o) return fail(404, notFoundStatus(def, route.name!));
          this.logRequest(req, u, route, token, 200);
          return this.sendJson(resp, 200, o);
        }
        case 'update':
          return await this.handleWrite(req, resp, u, route, token);
        case 'create':
          return await this.handleWrite(req, resp, u, route, token);
        case 'delete': {
          const last = this.removeInternal(def, route.namespace, route.name!);
          if (!last) return fail(404, notFoundStatus(def, route.name!));
          this.logRequest(req, u, route, token, 200);
          return this.sendJson(resp, 200, {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: { name: route.name, ...(def.group ? { group: def.group } : {}), kind: def.plural, uid: last.metadata?.uid },
          });
        }
      }
    } catch (err) {
      if (err instanceof HttpError) return fail(Number(err.status.code), err.status, err.headers);
      throw err;
    }
  }

  private selectorFor(def: ResourceDef, namespace: string | undefined, q: URLSearchParams): (o: KubeObject) => boolean {
    let labels: LabelReq[] = [];
    let fields: (o: KubeObject) => boolean = () => true;
    try {
      const ls = q.get('labelSelector');
      if (ls) labels = parseLabelSelector(ls);
      const fsel = q.get('fieldSelector');
      if (fsel) fields = parseFieldSelector(fsel);
    } catch (err) {
      throw new HttpError(statusObject(400, (err as Error).message, 'BadRequest'));
    }
    return (o) =>
      (namespace === undefined || o.metadata?.namespace === namespace) && labelsMatch(labels, o.metadata?.labels) && fields(o);
  }

  private listItem(def: ResourceDef, o: KubeObject): KubeObject {
    if (def.crd || this.opts.listItemsTypeMeta) return o;
    const { apiVersion: _a, kind: _k, ...rest } = o;
    return rest;
  }

  private handleList(req: IncomingMessage, resp: ServerResponse, u: URL, route: Route, token: string | undefined): void {
    const body = this.listPage(route.def!, route.namespace, u.searchParams).body;
    this.logRequest(req, u, route, token, 200);
    this.sendJsonText(resp, 200, body);
  }

  /**
   * Renders every page of the lists a client asking with `limit` gets (no selector), before it
   * asks: with renderListPages, they are then served as they are until something changes.
   */
  renderLists(kinds: string[], limit: number): void {
    if (!this.opts.renderListPages) throw new Error('fake-apiserver: renderLists needs renderListPages');
    for (const kind of kinds) {
      let next: string | undefined;
      do {
        const q = new URLSearchParams({ limit: String(limit) });
        if (next) q.set('continue', next);
        next = this.listPage(this.def(kind), undefined, q).next;
      } while (next);
    }
  }

  /** One page of a LIST as JSON (UTF-8), and its continue token; HttpError for a request it cannot answer. */
  private listPage(def: ResourceDef, namespace: string | undefined, q: URLSearchParams): { body: Buffer; next?: string } {
    const match = this.selectorFor(def, namespace, q);
    const selectorKey = `${namespace ?? ''}|${q.get('labelSelector') ?? ''}|${q.get('fieldSelector') ?? ''}`;
    const limitParam = q.get('limit');
    let limit = limitParam ? Number(limitParam) : 0;
    if (!Number.isInteger(limit) || limit < 0) throw new HttpError(statusObject(400, `invalid limit ${limitParam}`, 'BadRequest'));
    const forced = this.pageSizes.get(def.kind) ?? this.pageSizes.get('*');
    if (forced) limit = limit ? Math.min(limit, forced) : forced;
    const cont = q.get('continue');
    // Rendered pages hold while nothing has changed (every change moves the resource version).
    const rendering = this.opts.renderListPages;
    if (rendering && this.renderedRv !== this.rv) {
      this.rendered.clear();
      this.renderedRv = this.rv;
    }
    const pageKey = `${def.kind}|${selectorKey}|${limit}|${cont ?? ''}`;
    const cached = rendering ? this.rendered.get(pageKey) : undefined;
    if (cached) return cached;

    let items: KubeObject[];
    let rv: number;
    let offset = 0;
    let snapId: string | undefined;
    if (cont) {
      const tok = decodeContinue(cont);
      if (!tok) throw new HttpError(statusObject(400, 'continue key is not valid: malformed continue token', 'BadRequest'));
      const snap = this.snapshots.get(tok.id);
      if (!snap || snap.rv < this.compactedRv) {
        throw new HttpError(
          statusObject(
            410,
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
            'Expired',
          ),
        );
      }
      if (snap.kind !== def.kind || snap.selectorKey !== selectorKey) {
        throw new HttpError(statusObject(400, 'continue key is not valid: it was issued for a different request', 'BadRequest'));
      }
      items = snap.items;
      rv = snap.rv;
      offset = tok.offset;
      snapId = tok.id;
    } else {
      items = this.sortedObjects(def).filter(match);
      rv = this.rv;
    }
    const page = limit ? items.slice(offset, offset + limit) : items.slice(offset);
    const next = offset + page.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (limit && next < items.length) {
      if (!snapId) {
        snapId = randomUUID();
        this.snapshots.set(snapId, { kind: def.kind, rv, items, selectorKey });
        if (this.snapshots.size > this.opts.maxSnapshots) {
          this.snapshots.delete(this.snapshots.keys().next().value as string);
          // A rendered page may name the snapshot that went: render them again.
          this.rendered.clear();
        }
      }
      metadata.continue = encodeContinue(snapId, next, rv);
      if (!q.get('labelSelector') && !q.get('fieldSelector')) metadata.remainingItemCount = items.length - next;
    } else if (snapId && !rendering) {
      // Rendered first pages name this snapshot: it stays (a client paging through a change
      // still gets its list), until newer ones push it out (maxSnapshots).
      this.snapshots.delete(snapId);
    }
    const out = {
      body: Buffer.from(JSON.stringify({ kind: def.listKind, apiVersion: apiVersionOf(def), metadata, items: page.map((o) => this.listItem(def, o)) })),
      next: metadata.continue as string | undefined,
    };
    if (rendering) this.rendered.set(pageKey, out);
    return out;
  }

  private async handleWrite(req: IncomingMessage, resp: ServerResponse, u: URL, route: Route, token: string | undefined): Promise<void> {
    const def = route.def!;
    const text = await readBody(req);
    let body: KubeObject;
    try {
      body = JSON.parse(text) as KubeObject;
    } catch (err) {
      throw new HttpError(statusObject(400, `the body of the request was in an unknown format: ${(err as Error).message}`, 'BadRequest'));
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(statusObject(400, 'object expected', 'BadRequest'));
    if (body.kind !== undefined && body.kind !== def.kind) {
      throw new HttpError(statusObject(400, `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(def)}) or kind ${String(body.kind)} is not ${def.kind}`, 'BadRequest'));
    }
    const meta = (body.metadata ??= {});
    const name = route.name ?? meta.name;
    if (!name) throw new HttpError(statusObject(422, `${def.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, 'Invalid'));
    if (route.name !== undefined && meta.name !== undefined && meta.name !== route.name) {
      throw new HttpError(statusObject(400, `the name of the object (${String(meta.name)}) does not match the name on the URL (${route.name})`, 'BadRequest'));
    }
    if (def.namespaced) {
      if (meta.namespace !== undefined && route.namespace !== undefined && meta.namespace !== route.namespace) {
        throw new HttpError(statusObject(400, 'the namespace of the provided object does not match the namespace sent on the request', 'BadRequest'));
      }
      meta.namespace = route.namespace ?? meta.namespace ?? 'default';
    } else delete meta.namespace;
    meta.name = name;
    body.apiVersion = apiVersionOf(def);
    body.kind = def.kind;
    const existing = this.bucket(def).get(objKey(meta.namespace, name));

    if (route.verb === 'create') {
      if (existing) {
        throw new HttpError(
          statusObject(409, `${def.plural}${def.group ? '.' + def.group : ''} "${name}" already exists`, 'AlreadyExists', { name, ...(def.group ? { group: def.group } : {}), kind: def.plural }),
        );
      }
      if (meta.resourceVersion) throw new HttpError(statusObject(500, 'resourceVersion should not be set on objects to be created', 'InternalError'));
      meta.uid = randomUUID();
      meta.creationTimestamp = nowTimestamp();
      this.store1(def, body, undefined);
      this.logRequest(req, u, route, token, 201);
      return this.sendJson(resp, 201, body);
    }

    // update
    if (this.takeFault('conflict', def.kind)) throw new HttpError(conflictStatus(def, name));
    if (!existing) throw new HttpError(notFoundStatus(def, name));
    if (meta.resourceVersion && meta.resourceVersion !== existing.metadata?.resourceVersion) {
      throw new HttpError(conflictStatus(def, name));
    }
    meta.uid = existing.metadata?.uid;
    meta.creationTimestamp = existing.metadata?.creationTimestamp;
    if (contentKey(existing) === contentKey(body)) {
      // no-op update: a real server does not bump the resourceVersion
      this.logRequest(req, u, route, token, 200);
      return this.sendJson(resp, 200, existing);
    }
    this.store1(def, body, existing);
    this.logRequest(req, u, route, token, 200);
    this.sendJson(resp, 200, body);
  }

  // ----- watch -----

  private expiredStatus(requested: number): Record<string, unknown> {
    return statusObject(410, `too old resource version: ${requested} (${this.compactedRv + 1})`, 'Expired');
  }

  private handleWatch(req: IncomingMessage, resp: ServerResponse, u: URL, route: Route, token: string | undefined): void {
    const def = route.def!;
    const q = u.searchParams;
    const rvParam = q.get('resourceVersion') ?? '';
    if (rvParam !== '' && !/^\d+$/.test(rvParam)) {
      throw new HttpError(statusObject(400, `invalid resource version: ${rvParam}`, 'BadRequest'));
    }
    const match = this.selectorFor(def, route.namespace, q);
    const timeoutParam = q.get('timeoutSeconds');
    const timeoutSeconds = timeoutParam ? Number(timeoutParam) : undefined;
    if (timeoutSeconds !== undefined && !(timeoutSeconds >= 0)) {
      throw new HttpError(statusObject(400, `invalid timeoutSeconds ${timeoutParam}`, 'BadRequest'));
    }
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const sendInitialEvents = q.get('sendInitialEvents') === 'true';

    this.logRequest(req, u, route, token, 200);
    resp.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
    });
    resp.flushHeaders();

    if (this.takeFault('watch-close', def.kind)) {
      resp.end();
      return;
    }

    const w: Watcher = { id: ++this.watcherSeq, def, namespace: route.namespace, match, res: resp, silent: false, ended: false, timers: [] };
    this.watchers.add(w);
    resp.on('close', () => {
      if (!w.ended) {
        w.ended = true;
        for (const t of w.timers) clearTimeout(t);
      }
      this.watchers.delete(w);
      this.changed();
    });
    this.changed();

    if (this.takeFault('watch-silent', def.kind)) {
      w.silent = true;
      return;
    }
    if (this.takeFault('watch-expired', def.kind)) {
      this.writeEvent(w, { type: 'ERROR', object: this.expiredStatus(Number(rvParam || 0)) }, true);
      this.finishWatcher(w, true);
      return;
    }

    // initial events / replay
    if (rvParam === '' || rvParam === '0' || sendInitialEvents) {
      for (const o of this.sortedObjects(def)) if (match(o)) this.writeEvent(w, { type: 'ADDED', object: o });
      if (sendInitialEvents && bookmarks) {
        this.writeEvent(w, {
          type: 'BOOKMARK',
          object: {
            kind: def.kind,
            apiVersion: apiVersionOf(def),
            metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } },
          },
        });
      }
    } else {
      const from = Number(rvParam);
      if (from < this.compactedRv) {
        this.writeEvent(w, { type: 'ERROR', object: this.expiredStatus(from) }, true);
        this.finishWatcher(w, true);
        return;
      }
      for (const ev of this.history) if (ev.rv > from && ev.kind === def.kind) this.deliver(w, ev);
    }

    if (this.takeFault('watch-malformed', def.kind)) resp.write('{"type":"ADDED","object":{this is not json\n');

    if (timeoutSeconds !== undefined) {
      w.timers.push(setTimeout(() => this.finishWatcher(w, true), timeoutSeconds * 1000));
    }
    if (bookmarks) {
      const tick = () => {
        if (w.ended || w.silent) return;
        this.writeEvent(w, { type: 'BOOKMARK', object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.rv) } } });
        w.timers.push(setTimeout(tick, this.opts.bookmarkIntervalMs));
      };
      w.timers.push(setTimeout(tick, this.opts.bookmarkIntervalMs));
    }
  }

  private deliver(w: Watcher, ev: StoredEvent): void {
    const now = w.match(ev.object);
    if (ev.type === 'ADDED') {
      if (now) this.writeEvent(w, { type: 'ADDED', object: ev.object });
    } else if (ev.type === 'DELETED') {
      if (now) this.writeEvent(w, { type: 'DELETED', object: ev.object });
    } else {
      const before = ev.prev ? w.match(ev.prev) : false;
      if (now && before) this.writeEvent(w, { type: 'MODIFIED', object: ev.object });
      else if (now) this.writeEvent(w, { type: 'ADDED', object: ev.object });
      else if (before) this.writeEvent(w, { type: 'DELETED', object: ev.object });
    }
  }

  private writeEvent(w: Watcher, ev: WatchEvent, evenIfSilent = false): void {
    if (w.ended || (w.silent && !evenIfSilent) || w.res.writableEnded || w.res.destroyed) return;
    w.res.write(JSON.stringify(ev) + '\n');
  }

  /** Ends a watch: cleanly (end of chunked body) or abruptly (socket destroyed). */
  private finishWatcher(w: Watcher, clean: boolean): void {
    const wasOpen = !w.ended;
    w.ended = true;
    for (const t of w.timers) clearTimeout(t);
    w.timers = [];
    if (clean && !w.res.writableEnded && !w.res.destroyed) w.res.end();
    else if (!clean) {
      w.res.socket?.destroy();
      w.res.destroy();
    }
    this.watchers.delete(w);
    if (wasOpen) this.changed();
  }
}
