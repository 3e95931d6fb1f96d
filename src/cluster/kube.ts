// A member cluster read from its Kubernetes API server: Services, EndpointSlices and (with the
// "exported" selection policy) ServiceExports, each kept current by a supervised list+watch
// loop (see supervisor.ts). Credentials come from a kubeconfig (token, client certificate, exec
// plugin, ... whatever @kubernetes/client-node supports) or from the pod's service account.
//
// The requests are made here with node:http(s) and the TLS material and headers that
// KubeConfig.applyToHTTPSOptions produces, so that status codes, TLS errors, timeouts and the
// raw watch stream are all under our control (client-node's Watch drops error bodies and
// malformed lines, and cannot time out a silent stream).
import * as http from 'node:http';
import * as https from 'node:https';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ObjectError,
  serviceKey,
  slimEndpointSlice,
  slimService,
  slimServiceExport,
  type Kind,
  type SlimEndpointSlice,
  type SlimService,
  type SlimServiceExport,
} from './objects.js';
import type { ClusterSource } from './source.js';
import type { ClusterState } from './state.js';
import {
  ApiError,
  DEFAULT_TIMING,
  QuietLog,
  Reflector,
  type OpenStream,
  type ReflectorSink,
  type ResourceSpec,
  type SupervisorTiming,
  type Transport,
  type WatchEventType,
} from './supervisor.js';

export { ApiError, DEFAULT_TIMING, type SupervisorTiming } from './supervisor.js';

/** The `source:` of a kube cluster in the configuration (paths already absolute). */
export interface KubeSourceConfig {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
}

export interface KubeSourceOptions extends Partial<SupervisorTiming> {
  /** Selection policy of the federation: ServiceExports are watched only for "exported". */
  policy?: 'all' | 'exported' | 'labels';
  /** Bound on a LIST request, and on the wait for a watch's response head. Default 30 s. */
  requestTimeoutMs?: number;
  /** List nodes once to learn the region when the configuration gives none. Default true. */
  discoverRegion?: boolean;
  /** Called on every restart of a list or watch (not on the routine end of a watch). */
  onRestart?: (kind: Kind, reason: string) => void;
  /** Use this client configuration instead of loading one (embedding, tests). */
  kubeConfig?: KubeConfig;
}

const REGION_LABELS = ['topology.kubernetes.io/region', 'failure-domain.beta.kubernetes.io/region'];
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_BODY = 256 * 1024 * 1024;

type Obj = Record<string, unknown>;
type Slim = SlimService | SlimEndpointSlice | SlimServiceExport;

const RESOURCES: Record<Kind, ResourceSpec & { slim: (o: Obj) => Slim }> = {
  Service: { kind: 'Service', path: '/api/v1/services', plural: 'services', slim: slimService },
  EndpointSlice: { kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices', plural: 'endpointslices', slim: slimEndpointSlice },
  ServiceExport: {
    kind: 'ServiceExport',
    path: '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports',
    plural: 'serviceexports',
    optional: true,
    slim: slimServiceExport,
  },
};

// ---- errors -----------------------------------------------------------------------------

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ERR_SOCKET_CLOSED',
  'UND_ERR_SOCKET',
]);

/** A connection-level error as a health reason: TLS problems, unreachable, ... */
export function describeNetworkError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as NodeJS.ErrnoException & { reason?: string; host?: string; hostname?: string };
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = err instanceof Error ? err.message : String(e);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH|EPROTO/.test(code) || /certificate|SSL routines|tls/i.test(message))
    return new ApiError(`TLS: ${message}`, 'tls');
  if (NETWORK_CODES.has(code)) {
    const host = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? ` (${err.hostname ?? err.host ?? 'host'})` : '';
    return new ApiError(`API server unreachable: ${code}${host}`, 'network');
  }
  if (message === 'socket hang up') return new ApiError('API server unreachable: connection closed (socket hang up)', 'network');
  return new ApiError(`request failed: ${code ? `${code}: ` : ''}${message}`, 'network');
}

function statusMessage(body: string): { message?: string; reason?: string } {
  try {
    const s = JSON.parse(body) as Obj;
    return {
      message: typeof s.message === 'string' ? s.message : undefined,
      reason: typeof s.reason === 'string' ? s.reason : undefined,
    };
  } catch {
    const text = body.trim().slice(0, 200);
    return { message: text || undefined };
  }
}

/** An HTTP error status as a health reason. */
export function describeStatus(status: number, body: string): ApiError {
  const { message } = statusMessage(body);
  const tail = message ? `: ${message}` : '';
  let text: string;
  if (status === 401) text = 'credentials rejected (401)';
  else if (status === 403) text = `access forbidden (403)${tail}`;
  else if (status === 404) text = `not found (404)${tail}`;
  else if (status === 410) text = `resourceVersion expired (410)${tail}`;
  else if (status === 429) text = `throttled by the API server (429)${tail}`;
  else if (status >= 500) text = `API server error (${status})${tail}`;
  else text = `HTTP ${status}${tail}`;
  return new ApiError(text, 'http', status);
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date (RFC 9110 10.2.3); else undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // HTTP dates end in "GMT" (IMF-fixdate and the obsolete forms); Date.parse alone takes "1.5".
  const at = / GMT$/.test(v) ? Date.parse(v) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A non-200 answer to `what` as an ApiError, with the server's Retry-After when it sent one. */
function statusError(what: string, res: http.IncomingMessage, body: string): ApiError {
  const err = describeStatus(res.statusCode ?? 0, body);
  const after = res.headers['retry-after'];
  return new ApiError(`${what}: ${err.message}`, 'http', err.status, retryAfterMs(Array.isArray(after) ? after[0] : after));
}

function readBody(res: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        res.destroy(new ApiError(`answer larger than ${limit} bytes`, 'protocol'));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(new ApiError('connection lost while reading the answer', 'network'));
    });
  });
}

// ---- transport --------------------------------------------------------------------------

class RetryOnNewConnection extends Error {}

interface Prepared {
  base: URL;
  agent: http.Agent;
  headers: http.OutgoingHttpHeaders;
  auth?: string;
}

/** GETs against the current cluster of a KubeConfig, one keep-alive agent per TLS identity. */
export class KubeTransport implements Transport {
  private agent?: http.Agent;
  private agentKey = '';
  private readonly agents = new Set<http.Agent>();

  constructor(
    private kc: KubeConfig,
    private readonly timeoutMs: number,
  ) {}

  /** Uses new credentials from now on (a re-read kubeconfig); open watches keep theirs. */
  setConfig(kc: KubeConfig): void {
    this.kc = kc;
  }

  /** Fresh credentials (exec plugins and token files refresh here) and the agent to use. */
  private async prepare(): Promise<Prepared> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new ApiError('kubeconfig: no current cluster', 'config');
    let base: URL;
    try {
      base = new URL(cluster.server);
    } catch {
      throw new ApiError(`kubeconfig: server "${cluster.server}" is not a URL`, 'config');
    }
    const opts: https.RequestOptions = {};
    try {
      await this.kc.applyToHTTPSOptions(opts);
    } catch (e) {
      throw new ApiError(`credentials: ${(e as Error).message ?? String(e)}`, 'config');
    }
    const fresh = opts.agent as http.Agent | undefined;
    let agent: http.Agent;
    if (cluster.proxyUrl && fresh) {
      agent = fresh; // a proxy agent: use it as client-node made it
    } else {
      const tls = {
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        pfx: opts.pfx,
        passphrase: opts.passphrase,
        rejectUnauthorized: opts.rejectUnauthorized,
        servername: opts.servername,
      };
      const hash = createHash('sha256').update(base.protocol);
      for (const [k, v] of Object.entries(tls)) {
        hash.update(`|${k}=`);
        if (v === undefined) continue;
        for (const part of Array.isArray(v) ? v : [v]) hash.update(Buffer.isBuffer(part) ? part : String(part));
      }
      const key = hash.digest('hex');
      fresh?.destroy();
      if (!this.agent || key !== this.agentKey) {
        const clean = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
        this.agent = base.protocol === 'http:' ? new http.Agent({ keepAlive: true }) : new https.Agent({ ...clean, keepAlive: true });
        this.agentKey = key;
        this.agents.add(this.agent);
      }
      agent = this.agent;
    }
    return { base, agent, headers: (opts.headers ?? {}) as http.OutgoingHttpHeaders, auth: typeof opts.auth === 'string' ? opts.auth : undefined };
  }

  private url(base: URL, path: string, query: Record<string, string>): URL {
    const u = new URL(base.href.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u;
  }

  /** Sends a GET; resolves with the response head (any status). */
  private async send(what: string, path: string, query: Record<string, string>, signal: AbortSignal): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    const p = await this.prepare();
    try {
      return await this.sendOnce(what, p, path, query, signal);
    } catch (e) {
      // A pooled keep-alive connection the server closed just as it was reused: retry once on
      // a new connection rather than report the cluster broken.
      if (e instanceof RetryOnNewConnection) return this.sendOnce(what, p, path, query, signal, false);
      throw e;
    }
  }

  private sendOnce(
    what: string,
    p: Prepared,
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    mayRetry = true,
  ): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    if (signal.aborted) return Promise.reject(new ApiError('stopped', 'aborted'));
    const url = this.url(p.base, path, query);
    const mod = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method: 'GET',
        agent: p.agent,
        auth: p.auth,
        headers: { ...p.headers, Accept: 'application/json', 'User-Agent': 'fedns' },
      });
      const timer = setTimeout(
        () => req.destroy(new ApiError(`${what}: API server did not answer within ${Math.round(this.timeoutMs / 100) / 10} s`, 'timeout')),
        this.timeoutMs,
      );
      const onAbort = () => req.destroy(new ApiError('stopped', 'aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      req.on('response', (res) => {
        done();
        resolve({ req, res });
      });
      req.on('error', (e) => {
        done();
        const code = (e as NodeJS.ErrnoException).code;
        if (mayRetry && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) return reject(new RetryOnNewConnection());
        const err = describeNetworkError(e);
        reject(err.category === 'aborted' || err.category === 'timeout' ? err : new ApiError(`${what}: ${err.message}`, err.category, err.status));
      });
      req.end();
    });
  }

  async getJson(path: string, query: Record<string, string>, signal: AbortSignal, what = `GET ${path}`): Promise<unknown> {
    const { req, res } = await this.send(what, path, query, signal);
    // The whole answer within the timeout, not only its head.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, this.timeoutMs);
    const onAbort = () => req.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let body: string;
      try {
        body = await readBody(res, MAX_BODY);
      } catch (e) {
        if (signal.aborted) throw new ApiError('stopped', 'aborted');
        if (timedOut) throw new ApiError(`${what}: answer not complete within ${Math.round(this.timeoutMs / 100) / 10} s`, 'timeout');
        const err = e instanceof ApiError ? e : describeNetworkError(e);
        throw new ApiError(`${what}: ${err.message}`, err.category);
      }
      if (res.statusCode !== 200) throw statusError(what, res, body);
      try {
        return JSON.parse(body) as unknown;
      } catch {
        throw new ApiError(`${what}: the answer is not JSON`, 'protocol');
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  async openStream(path: string, query: Record<string, string>, signal: AbortSignal, what = `watch ${path}`): Promise<OpenStream> {
    const { req, res } = await this.send(what, path, query, signal);
    if (res.statusCode !== 200) {
      let body = '';
      try {
        body = await readBody(res, 64 * 1024);
      } catch {
        /* the status is what matters */
      }
      throw statusError(what, res, body);
    }
    return { response: res, abort: () => req.destroy() };
  }

  /** Closes every connection. */
  close(): void {
    for (const a of this.agents) a.destroy();
    this.agents.clear();
    this.agent = undefined;
  }
}

/** Labels requests for reasons: "list services", "watch endpointslices". */
class LabelledTransport implements Transport {
  constructor(
    private readonly inner: KubeTransport,
    private readonly plural: string,
  ) {}
  getJson(path: string, query: Record<string, string>, signal: AbortSignal): Promise<unknown> {
    return this.inner.getJson(path, query, signal, `list ${this.plural}`);
  }
  openStream(path: string, query: Record<string, string>, signal: AbortSignal): Promise<OpenStream> {
    return this.inner.openStream(path, query, signal, `watch ${this.plural}`);
  }
}

// ---- the source -------------------------------------------------------------------------

/** Loads a client configuration as the cluster's `source:` describes it. */
export async function loadKubeConfig(src: KubeSourceConfig): Promise<KubeConfig> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (src.inCluster) {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT)
      throw new Error('inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod?)');
    kc.loadFromCluster();
  } else {
    if (!src.kubeconfig) throw new Error('no kubeconfig file given');
    kc.loadFromFile(src.kubeconfig);
  }
  if (src.context) {
    if (!kc.getContextObject(src.context))
      throw new Error(`kubeconfig has no context "${src.context}" (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    kc.setCurrentContext(src.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig: context "${kc.getCurrentContext()}" names no known cluster`);
  return kc;
}

export class KubeClusterSource implements ClusterSource {
  private readonly timing: SupervisorTiming;
  private readonly requestTimeoutMs: number;
  private readonly kinds: Kind[];
  private readonly reflectors = new Map<Kind, Reflector>();
  private transport?: KubeTransport;
  private stopped = false;
  private loadTimer?: NodeJS.Timeout;
  private loadFailures = 0;
  private regionPending: boolean;
  private regionRunning = false;
  private readonly quiet: QuietLog;
  private readonly regionAbort = new AbortController();
  private loadedStamp = '';
  private reloading = false;

  constructor(
    private readonly state: ClusterState,
    private readonly src: KubeSourceConfig,
    private readonly log: Logger,
    private readonly options: KubeSourceOptions = {},
  ) {
    const timing = { ...DEFAULT_TIMING };
    for (const k of Object.keys(DEFAULT_TIMING) as (keyof SupervisorTiming)[]) {
      const v = options[k];
      if (typeof v === 'number' && Number.isFinite(v)) timing[k] = v;
    }
    this.timing = timing;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.kinds = ['Service', 'EndpointSlice'];
    if (options.policy === 'exported') this.kinds.push('ServiceExport');
    this.regionPending = (options.discoverRegion ?? true) && !state.settings.region;
    this.quiet = new QuietLog(log);
  }

  async start(): Promise<void> {
    await this.load();
  }

  private async load(): Promise<void> {
    if (this.stopped) return;
    let kc: KubeConfig;
    try {
      this.loadedStamp = this.fileStamp();
      kc = this.options.kubeConfig ?? (await loadKubeConfig(this.src));
    } catch (e) {
      const reason = `kubeconfig: ${(e as Error).message ?? String(e)}`;
      this.quiet.warn({ kubeconfig: this.src.kubeconfig, inCluster: this.src.inCluster, reason }, 'cannot load the cluster credentials; retrying');
      this.state.markBroken(reason);
      const d = Math.min(this.timing.backoffCapMs, this.timing.backoffBaseMs * 2 ** Math.min(this.loadFailures++, 30));
      this.loadTimer = setTimeout(() => void this.load(), Math.max(d, 1000));
      return;
    }
    if (this.stopped) return;
    const cluster = kc.getCurrentCluster();
    this.log.info({ server: cluster?.server, context: kc.getCurrentContext(), kinds: this.kinds }, 'watching the API server');
    this.transport = new KubeTransport(kc, this.requestTimeoutMs);
    for (const kind of this.kinds) {
      const spec = RESOURCES[kind];
      const r = new Reflector(spec, new LabelledTransport(this.transport, spec.plural), this.sink(kind), this.timing, this.log);
      this.reflectors.set(kind, r);
    }
    for (const r of this.reflectors.values()) r.start();
    void this.discoverRegion();
  }

  private sink(kind: Kind): ReflectorSink {
    const slim = RESOURCES[kind].slim;
    const state = this.state;
    const convert = (o: Obj): Slim | undefined => {
      try {
        return slim(o);
      } catch (e) {
        if (!(e instanceof ObjectError)) throw e;
        this.quiet.warn({ kind }, 'skipping an object fedns cannot read', { error: e.message });
        return undefined;
      }
    };
    return {
      replace: (items) => {
        const slims: Slim[] = [];
        for (const it of items) {
          const s = convert(it);
          if (s) slims.push(s);
        }
        state.replaceKind(kind, slims);
      },
      event: (type: WatchEventType, object) => {
        const s = convert(object);
        if (!s) return;
        if (kind === 'Service') {
          const key = serviceKey(s.namespace, s.name);
          const changed = type === 'DELETED' ? state.services.has(key) : !isSame(state.services.get(key), s as SlimService);
          if (changed) state.noteChange(Date.now());
        }
        if (type === 'DELETED') state.remove(kind, s.namespace, s.name);
        else state.upsert(kind, s);
      },
      flush: () => state.flush(),
      synced: () => this.resourceSynced(),
      failed: (reason, error) => this.resourceFailed(kind, reason, error),
      restarted: (reason) => {
        state.watchRestarts++;
        this.options.onRestart?.(kind, reason);
      },
    };
  }

  private resourceSynced(): void {
    for (const r of this.reflectors.values()) if (!r.healthy) return;
    const was = this.state.health;
    this.state.markLive();
    this.state.flush();
    if (was !== 'live') {
      this.log.info(
        { previous: was, services: this.state.services.size, endpointSlices: this.state.slices.size, serviceExports: this.state.exports.size },
        was === 'syncing' ? 'cluster synced from the API server' : 'cluster re-synced; live again',
      );
      if (this.regionPending) void this.discoverRegion();
    }
  }

  private resourceFailed(kind: Kind, reason: string, error?: ApiError): void {
    const was = this.state.health;
    this.state.markBroken(reason);
    if (was === 'live') this.log.warn({ kind, reason }, 'lost the API server; serving the last known data as stale');
    // Rotated credentials or CA: pick up a kubeconfig file that changed on disk.
    if (error && (error.category === 'tls' || error.category === 'config' || error.status === 401 || error.status === 403)) this.reloadIfChanged();
  }

  /** Fingerprint of the kubeconfig file's content ('' when there is no file to follow). */
  private fileStamp(): string {
    if (!this.src.kubeconfig || this.options.kubeConfig) return '';
    try {
      return createHash('sha256').update(readFileSync(this.src.kubeconfig)).digest('hex');
    } catch {
      return 'unreadable';
    }
  }

  private reloadIfChanged(): void {
    if (this.reloading || !this.transport || this.stopped) return;
    const stamp = this.fileStamp();
    if (!stamp || stamp === this.loadedStamp) return;
    this.reloading = true;
    loadKubeConfig(this.src)
      .then((kc) => {
        if (this.stopped) return;
        this.loadedStamp = stamp;
        this.transport?.setConfig(kc);
        for (const r of this.reflectors.values()) r.forgetPosition();
        this.log.info({ kubeconfig: this.src.kubeconfig, context: kc.getCurrentContext() }, 'kubeconfig changed on disk; using the new credentials');
      })
      .catch((e: unknown) => {
        this.loadedStamp = stamp;
        this.quiet.warn({ kubeconfig: this.src.kubeconfig }, 'kubeconfig changed on disk but cannot be loaded; keeping the old one', { error: (e as Error).message });
      })
      .finally(() => {
        this.reloading = false;
      });
  }

  /** Learns the region from node labels, once, when the configuration has none. */
  private async discoverRegion(): Promise<void> {
    if (!this.regionPending || this.regionRunning || !this.transport || this.stopped) return;
    this.regionRunning = true;
    try {
      const body = (await this.transport.getJson('/api/v1/nodes', { limit: '500' }, this.regionAbort.signal, 'list nodes')) as { items?: Obj[] };
      this.regionPending = false;
      const counts = new Map<string, number>();
      for (const n of Array.isArray(body?.items) ? body.items : []) {
        const labels = ((n?.metadata as Obj | undefined)?.labels ?? {}) as Record<string, unknown>;
        const r = REGION_LABELS.map((l) => labels[l]).find((v): v is string => typeof v === 'string' && v !== '');
        if (r) counts.set(r, (counts.get(r) ?? 0) + 1);
      }
      const best = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
      if (!best) {
        this.log.info('no node carries a region label; the cluster has no region (set one in the configuration)');
        return;
      }
      const region = best.toLowerCase();
      if (!DNS_LABEL.test(region)) {
        this.log.warn({ region: best }, 'the nodes\' region label is not a DNS label; set the region in the configuration');
        return;
      }
      this.log.info({ region, nodes: counts.get(best) }, 'region learned from node labels');
      this.state.setDiscoveredRegion(region);
      this.state.flush();
    } catch (e) {
      const err = e instanceof ApiError ? e : describeNetworkError(e);
      if (err.category === 'aborted') return;
      if (err.status === 403 || err.status === 404) {
        this.regionPending = false;
        this.log.info({ reason: err.message }, 'cannot list nodes to learn the region; set the region in the configuration');
      } else {
        this.log.debug({ reason: err.message }, 'listing nodes failed; will try again after the next sync');
      }
    } finally {
      this.regionRunning = false;
    }
  }

  /** Restarts so far, per kind (for tests and explain). */
  restarts(): Record<string, number> {
    return Object.fromEntries([...this.reflectors].map(([k, r]) => [k, r.restarts]));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.loadTimer) clearTimeout(this.loadTimer);
    this.regionAbort.abort();
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
    this.transport?.close();
  }
}

function isSame(a: SlimService | undefined, b: SlimService): boolean {
  return a !== undefined && isDeepStrictEqual(a, b);
}
