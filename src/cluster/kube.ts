// A member cluster read from its Kubernetes API server: Services, EndpointSlices and (with the
// "exported" selection policy or the clusterset zone) ServiceExports, and with the clusterset
// zone ServiceImports and ClusterProperties, each kept current by a supervised list+watch
// loop (see supervisor.ts) over kube-http.ts. Credentials come from a kubeconfig (token, client
// certificate, exec plugin, ... whatever @kubernetes/client-node supports) or from the pod's
// service account. With clientNetworks: auto, Nodes too (nodes.ts): not for answers, for the
// networks the member's DNS queries come from.
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import {
  nodeRegion,
  ObjectError,
  sameService,
  serviceKey,
  slimEndpointSlice,
  slimNode,
  slimService,
  slimServiceExport,
  slimServiceImport,
  slimClusterProperty,
  type Kind,
  type SlimServiceImport,
  type SlimClusterProperty,
  type SlimEndpointSlice,
  type SlimService,
  type SlimNode,
  type SlimServiceExport,
} from './objects.js';
import { describeNetworkError, KubeTransport, LabelledTransport } from './kube-http.js';
import { pageReader, type PageReader } from './page-reader.js';
import { nextSlice, sliceSpent } from '../slices.js';
import { MAX_LEARNED_NETWORKS, mostCommonRegion, NodeNetworks } from './nodes.js';
import type { ClusterSource } from './source.js';
import type { ClusterState } from './state.js';
import { checkRegularFile, readRegularFile, UnreadableFile } from '../regular-file.js';
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
  /**
   * The clusterset zone is served: ServiceExports, ServiceImports and ClusterProperties are
   * watched whatever the policy (each an optional CRD: a cluster without it has none).
   */
  mcs?: boolean;
  /** Bound on a LIST request, and on the wait for a watch's response head. Default 30 s. */
  requestTimeoutMs?: number;
  /** List nodes once to learn the region when the configuration gives none. Default true. */
  discoverRegion?: boolean;
  /**
   * clientNetworks: auto: list+watch the Nodes and keep the cluster's learnedNetworks to their
   * pod CIDRs and InternalIPs (the node watch then also serves region learning). Default false.
   */
  learnNetworks?: boolean;
  /** Called on every restart of a list or watch (not on the routine end of a watch). */
  onRestart?: (kind: Kind | 'Node', reason: string) => void;
  /** Use this client configuration instead of loading one (embedding, tests). */
  kubeConfig?: KubeConfig;
  /** Reads the pages of Services and EndpointSlices; default the one every cluster shares. */
  pageReader?: PageReader;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

type Obj = Record<string, unknown>;
type Slim = SlimService | SlimEndpointSlice | SlimServiceExport | SlimServiceImport | SlimClusterProperty;

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
  ServiceImport: {
    kind: 'ServiceImport',
    path: '/apis/multicluster.x-k8s.io/v1alpha1/serviceimports',
    plural: 'serviceimports',
    optional: true,
    slim: slimServiceImport,
  },
  ClusterProperty: {
    kind: 'ClusterProperty',
    path: '/apis/about.k8s.io/v1alpha1/clusterproperties',
    plural: 'clusterproperties',
    optional: true,
    slim: slimClusterProperty,
  },
};

const NODES: ResourceSpec = { kind: 'Node', path: '/api/v1/nodes', plural: 'nodes' };
/** Node changes reach learnedNetworks at most this often (the first at once). */
const NODE_PUBLISH_MS = 200;

// ---- the source -------------------------------------------------------------------------

/** What fedns uses of the Kubernetes client library: its kubeconfig reader. */
export interface KubeClient {
  KubeConfig: new () => KubeConfig;
}

/**
 * The client library's KubeConfig and what it needs, bundled at build time by
 * scripts/bundle-kube-config.mjs (package.json maps the name to dist/vendor/kube-config.js). The
 * library's own entry point evaluates its whole generated API first, which costs a serving fedns
 * 0.4 s at start and about 50 MiB for code it never calls. A variable, so that the type checker does not
 * look for the generated file: its type is KubeClient.
 */
const KUBE_CONFIG_MODULE = '#kube-config';

let kubeClient: Promise<KubeClient> | undefined;
let kubeClientReady = false;

/** Whether loadKubeClient() has loaded the kubeconfig reader in this process (`fedns join` loads the whole library instead). */
export function kubeClientLoaded(): boolean {
  return kubeClientReady;
}

/**
 * Loads the kubeconfig reader. fedns loads it before it starts answering, not once queries arrive
 * (a reload that adds the first kube cluster still pays it, about 0.2 s). Without
 * the bundle (the code compiled but not built with `npm run build`) this fails naming the fix.
 */
export function loadKubeClient(): Promise<KubeClient> {
  kubeClient ??= (import(KUBE_CONFIG_MODULE) as Promise<KubeClient>).then(
    (client) => {
      kubeClientReady = true;
      return client;
    },
    (err: unknown) => {
      kubeClient = undefined;
      throw new Error(`cannot load the kubeconfig reader (${KUBE_CONFIG_MODULE}, dist/vendor/kube-config.js): run npm run build (${err instanceof Error ? err.message : String(err)})`);
    },
  );
  return kubeClient;
}

/**
 * Whether a kubeconfig's text can name a token file: it spells "token-file", or it has a
 * backslash (a quoted YAML or JSON key may spell it with escapes). Most kubeconfigs do neither,
 * and then neither reader below parses them (at start, each cluster's kubeconfig is read three
 * times: for its stamp, for its token files, and by the client library).
 */
function mayNameTokenFile(text: string): boolean {
  return text.includes('token-file') || text.includes('\\');
}

/** A kubeconfig's text as an object, or undefined when it does not parse as one. */
function kubeconfigDoc(text: string): Record<string, unknown> | undefined {
  try {
    const doc: unknown = parse(text);
    return doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `token-file` of the user the kubeconfig's context (`context`, else its current-context)
 * names; a relative one resolved against `dir` (the kubeconfig's directory) when given. Undefined
 * when it names none or the text does not parse.
 */
export function tokenFileOf(kubeconfig: string, context?: string, dir?: string): string | undefined {
  const kc = mayNameTokenFile(kubeconfig) ? kubeconfigDoc(kubeconfig) : undefined;
  if (!kc) return undefined;
  const named = (list: unknown, name: unknown): Record<string, unknown> | undefined =>
    Array.isArray(list) ? (list.find((e) => (e as { name?: unknown } | null)?.name === name) as Record<string, unknown> | undefined) : undefined;
  const ctx = named(kc.contexts, context ?? kc['current-context'])?.context as { user?: unknown } | undefined;
  if (typeof ctx?.user !== 'string') return undefined;
  const file = (named(kc.users, ctx.user)?.user as Record<string, unknown> | undefined)?.['token-file'];
  if (typeof file !== 'string' || !file) return undefined;
  return dir === undefined ? file : resolve(dir, file);
}

/**
 * The kubeconfig's text with every relative `token-file` made absolute against `dir`, as kubectl
 * reads them (the library reads them from the working directory, while it takes its other files
 * from the kubeconfig's directory); the text as it is when there is none to change.
 */
function withAbsoluteTokenFiles(text: string, dir: string): string {
  const kc = mayNameTokenFile(text) ? kubeconfigDoc(text) : undefined;
  if (!kc || !Array.isArray(kc.users)) return text;
  let changed = false;
  for (const entry of kc.users as unknown[]) {
    const user = (entry as { user?: unknown } | null)?.user as Record<string, unknown> | undefined;
    const file = user && typeof user === 'object' ? user['token-file'] : undefined;
    if (typeof file !== 'string' || !file) continue;
    const path = isAbsolute(file) ? file : resolve(dir, file);
    // The library reads it at once, synchronously: a FIFO or /dev/zero would hang or exhaust fedns.
    checkReadable(path, MAX_CREDENTIAL_FILE, 'token-file');
    if (path === file) continue;
    user!['token-file'] = path;
    changed = true;
  }
  return changed ? JSON.stringify(kc) : text;
}

/** Largest kubeconfig read, and largest token file (kubeconfigs and tokens are a few KiB). */
const MAX_KUBECONFIG = 16 * 1024 * 1024;
const MAX_CREDENTIAL_FILE = 1024 * 1024;

/** Throws unless `path` is a regular file of at most `max` bytes, naming it as a `what`. */
function checkReadable(path: string, max: number, what: string): void {
  try {
    checkRegularFile(path, max, what);
  } catch (e) {
    throw readableError(e, what);
  }
}

/** An UnreadableFile in the words of the kubeconfig's errors ("kubeconfig PATH is not a regular file"). */
function readableError(e: unknown, what: string): unknown {
  if (!(e instanceof UnreadableFile)) return e;
  return new Error(e.code ? `${what} ${e.path}: ${e.problem}` : `${what} ${e.path} is ${e.detail}`);
}

/** Loads a client configuration as the cluster's `source:` describes it. */
export async function loadKubeConfig(src: KubeSourceConfig): Promise<KubeConfig> {
  const k8s = await loadKubeClient();
  const kc = new k8s.KubeConfig();
  if (src.inCluster) {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT)
      throw new Error('inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod?)');
    kc.loadFromCluster();
  } else {
    if (!src.kubeconfig) throw new Error('no kubeconfig file given');
    // As the library's loadFromFile, but with token files where kubectl finds them.
    const dir = dirname(resolve(src.kubeconfig));
    let text: string;
    try {
      text = readRegularFile(src.kubeconfig, MAX_KUBECONFIG, 'kubeconfig');
    } catch (e) {
      throw readableError(e, 'kubeconfig');
    }
    kc.loadFromString(withAbsoluteTokenFiles(text, dir));
    kc.makePathsAbsolute(dir);
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
  /** The node watch (clientNetworks: auto), and the nodes it has seen. */
  private nodes?: Reflector;
  private learnNetworks: boolean;
  private readonly nodeNetworks: NodeNetworks;

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
    if (options.policy === 'exported' || options.mcs) this.kinds.push('ServiceExport');
    if (options.mcs) this.kinds.push('ServiceImport', 'ClusterProperty');
    this.regionPending = (options.discoverRegion ?? true) && !state.settings.region;
    this.quiet = new QuietLog(log);
    this.learnNetworks = options.learnNetworks ?? false;
    this.nodeNetworks = new NodeNetworks(state, MAX_LEARNED_NETWORKS, NODE_PUBLISH_MS);
  }

  async start(): Promise<void> {
    // Networks a source before this one learned (its settings changed) are not this one's.
    if (!this.learnNetworks) {
      this.nodeNetworks.clear();
      this.state.nodeWatchProblem = undefined;
    }
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
    if (this.learnNetworks) void this.startNodes();
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
        state.skipUnreadable(kind, e.message);
        return undefined;
      }
    };
    const pages = this.options.pageReader ?? pageReader;
    return {
      // Listed objects equal to those held are collected as the held ones (re-lists of big clusters).
      convert: (o) => {
        const s = convert(o);
        return s && state.unchanged(kind, s);
      },
      // The kinds big clusters have many of: their pages are read off the main thread (page-reader.ts).
      readPage:
        kind === 'Service' || kind === 'EndpointSlice'
          ? async (body, what) => {
              const page = await pages.read(kind, body, what);
              for (const error of page.skipped) state.skipUnreadable(kind, error);
              const items = page.items;
              for (let i = 0; i < items.length; i++) {
                items[i] = state.unchanged(kind, items[i]);
                if ((i & 127) === 127 && sliceSpent()) await nextSlice();
              }
              return page;
            }
          : undefined,
      replace: (items) => state.replaceKindSliced(kind, items as Slim[]),
      appendsPages: () => state.count(kind) === 0,
      addPage: (items) => state.addSliced(kind, items as Slim[]),
      event: (type: WatchEventType, object) => {
        const s = convert(object);
        if (!s) return;
        if (kind === 'Service') {
          const key = serviceKey(s.namespace, s.name);
          const changed = type === 'DELETED' ? state.services.has(key) : !isSame(state.services.get(key), s as SlimService);
          if (changed) state.noteChange(Date.now(), key);
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

  // ---- nodes (clientNetworks: auto) ---------------------------------------------------------

  /**
   * Starts the node list+watch: paced and supervised like the others, but outside the cluster's
   * health. Nodes change no answer's data, so a failing node watch does not make the cluster
   * stale: the networks last learned stay, and the problem shows in the log, in
   * ClusterState.nodeWatchProblem and in the metrics. Resolves once the nodes are listed, or the
   * list or watch failed.
   */
  private startNodes(): Promise<void> {
    if (this.nodes || !this.transport || this.stopped) return Promise.resolve();
    let settle!: () => void;
    const first = new Promise<void>((r) => (settle = r));
    const nodes = this.nodeNetworks;
    const state = this.state;
    state.nodeWatchProblem = 'not listed yet';
    const read = (o: Obj) => {
      try {
        return slimNode(o);
      } catch (e) {
        if (!(e instanceof ObjectError)) throw e;
        this.state.skipUnreadable('Node', e.message);
        return undefined;
      }
    };
    // Events of a node watch stopped since (a reload away from auto) are no longer applied.
    const current = () => this.nodes === r;
    const r: Reflector = new Reflector(
      NODES,
      new LabelledTransport(this.transport, NODES.plural),
      {
        replace: (items) => {
          if (!current()) return;
          const slims: SlimNode[] = [];
          for (const it of items) {
            const n = read(it as Obj);
            if (n) slims.push(n);
          }
          nodes.replace(slims);
        },
        event: (type, object) => {
          if (!current()) return;
          const n = read(object);
          if (!n) return;
          if (type === 'DELETED') nodes.remove(n.name);
          else nodes.upsert(n);
        },
        flush: () => {
          if (current()) nodes.flush();
        },
        synced: () => {
          settle();
          if (!current()) return;
          if (state.nodeWatchProblem) this.log.info({ nodes: nodes.size, networks: state.learnedNetworks.length }, 'nodes listed; client networks learned');
          state.nodeWatchProblem = '';
          this.regionFromNodes();
        },
        failed: (reason, error) => {
          settle();
          if (!current()) return;
          if (!state.nodeWatchProblem) this.log.warn({ reason }, 'node watch failing; keeping the client networks last learned from the nodes');
          state.nodeWatchProblem = reason;
          if (error && (error.category === 'tls' || error.category === 'config' || error.status === 401 || error.status === 403)) this.reloadIfChanged();
        },
        restarted: (reason) => {
          state.watchRestarts++;
          this.options.onRestart?.('Node', reason);
        },
      },
      this.timing,
      this.log,
    );
    this.nodes = r;
    r.start();
    return first;
  }

  /** Stops the node watch; the cluster learns no networks any more. */
  private async stopNodes(): Promise<void> {
    const r = this.nodes;
    this.nodes = undefined;
    const stopping = r?.stop();
    this.nodeNetworks.clear();
    this.state.nodeWatchProblem = undefined;
    await stopping;
  }

  /** clientNetworks changed to or from auto (a reload): starts or stops the node watch, nothing else. */
  async setLearnNetworks(on: boolean): Promise<void> {
    if (on === this.learnNetworks) return;
    this.learnNetworks = on;
    if (on) await this.startNodes(); // before load(), load() starts it
    else await this.stopNodes();
  }

  /** The region, from the nodes the node watch has listed, when it is still to be learned. */
  private regionFromNodes(): void {
    if (!this.regionPending) return;
    this.regionPending = false;
    this.applyRegion(this.nodeNetworks.region());
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

  /**
   * Fingerprint of the kubeconfig file's content and of the token file its user names ('' when
   * there is no file to follow). The library reads a `token-file` once, when it loads the kubeconfig: a
   * token rotated in its file (projected service-account tokens) is picked up by loading again.
   */
  private fileStamp(): string {
    if (!this.src.kubeconfig || this.options.kubeConfig) return '';
    // Read as the kubeconfig is loaded: only a regular file, up to its size (a FIFO swapped in
    // would block this read, and with it every query, until someone wrote to it).
    let text: string;
    try {
      text = readRegularFile(this.src.kubeconfig, MAX_KUBECONFIG, 'kubeconfig');
    } catch {
      return 'unreadable';
    }
    const hash = createHash('sha256').update(text);
    const tokenFile = tokenFileOf(text, this.src.context, dirname(resolve(this.src.kubeconfig)));
    if (tokenFile !== undefined) {
      hash.update(`\0${tokenFile}\0`);
      try {
        hash.update(readRegularFile(tokenFile, MAX_KUBECONFIG, 'token file'));
      } catch {
        hash.update('unreadable');
      }
    }
    return hash.digest('hex');
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
        this.nodes?.forgetPosition();
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

  /** The region most nodes are labelled with becomes the cluster's (when it is a DNS label). */
  private applyRegion(best: { region: string; nodes: number } | undefined): void {
    if (!best) {
      this.log.info('no node carries a region label; the cluster has no region (set one in the configuration)');
      return;
    }
    const region = best.region.toLowerCase();
    if (!DNS_LABEL.test(region)) {
      this.log.warn({ region: best.region }, 'the nodes\' region label is not a DNS label; set the region in the configuration');
      this.state.setDiscoveredRegion(best.region); // refused there too, and counted
      return;
    }
    this.log.info({ region, nodes: best.nodes }, 'region learned from node labels');
    this.state.setDiscoveredRegion(region);
    this.state.flush();
  }

  /** Learns the region from node labels, once, when the configuration has none (the node watch does it when it runs). */
  private async discoverRegion(): Promise<void> {
    if (!this.regionPending || this.regionRunning || !this.transport || this.stopped || this.nodes) return;
    this.regionRunning = true;
    try {
      const body = (await this.transport.getJson('/api/v1/nodes', { limit: '500' }, this.regionAbort.signal, 'list nodes')) as { items?: Obj[] };
      this.regionPending = false;
      this.applyRegion(mostCommonRegion((Array.isArray(body?.items) ? body.items : []).map((n) => ({ region: nodeRegion((n?.metadata as Obj | undefined)?.labels) }))));
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
    const want = policy === 'exported' || this.options.mcs === true;
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
    const all: [string, Reflector][] = [...this.reflectors];
    if (this.nodes) all.push(['Node', this.nodes]);
    return Object.fromEntries(all.map(([k, r]) => [k, r.restarts]));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.loadTimer) clearTimeout(this.loadTimer);
    this.regionAbort.abort();
    this.nodeNetworks.stop();
    await Promise.all([...this.reflectors.values(), ...(this.nodes ? [this.nodes] : [])].map((r) => r.stop()));
    this.transport?.close();
  }
}

function isSame(a: SlimService | undefined, b: SlimService): boolean {
  return a !== undefined && sameService(a, b);
}
