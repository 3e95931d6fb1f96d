// A member cluster read from its Kubernetes API server: Services, EndpointSlices and (with the
// "exported" selection policy) ServiceExports, each kept current by a supervised list+watch
// loop (see supervisor.ts) over kube-http.ts. Credentials come from a kubeconfig (token, client
// certificate, exec plugin, ... whatever @kubernetes/client-node supports) or from the pod's
// service account.
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
import { describeNetworkError, KubeTransport, LabelledTransport } from './kube-http.js';
import type { ClusterSource } from './source.js';
import type { ClusterState } from './state.js';
import {
  ApiError,
  DEFAULT_TIMING,
  QuietLog,
  Reflector,
  type ReflectorSink,
  type ResourceSpec,
  type SupervisorTiming,
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
      // Paced like the list/watch loops, and never faster than once a second (a file to re-read).
      this.loadTimer = setTimeout(() => void this.load(), Math.max(this.timing.restartIntervalMs, 1000));
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
      convert,
      replace: (items) => state.replaceKindSliced(kind, items as Slim[]),
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
        this.state.setDiscoveredRegion(best); // refused there too, and counted
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

  /** ServiceExports are watched for the "exported" policy only: started or stopped in place, nothing else is listed again. */
  async setPolicy(policy: 'all' | 'exported' | 'labels'): Promise<void> {
    const want = policy === 'exported';
    if (want === this.kinds.includes('ServiceExport')) return;
    if (!want) {
      this.kinds.splice(this.kinds.indexOf('ServiceExport'), 1);
      const r = this.reflectors.get('ServiceExport');
      this.reflectors.delete('ServiceExport');
      await r?.stop();
      this.state.replaceKind('ServiceExport', []);
      this.state.flush();
      if (this.reflectors.size) this.resourceSynced(); // a failing ServiceExport watch no longer counts
      return;
    }
    this.kinds.push('ServiceExport');
    if (!this.transport || this.stopped) return; // load() starts every kind
    const spec = RESOURCES.ServiceExport;
    const sink = this.sink('ServiceExport');
    await new Promise<void>((settled) => {
      const r = new Reflector(spec, new LabelledTransport(this.transport!, spec.plural), { ...sink, synced: () => (sink.synced(), settled()), failed: (why, e) => (sink.failed(why, e), settled()) }, this.timing, this.log);
      this.reflectors.set('ServiceExport', r);
      r.start();
    });
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
