// The little of the Kubernetes API that `fedns join` needs: read and replace a ConfigMap in a
// member cluster through @kubernetes/client-node's CoreV1Api, with the credentials of a
// kubeconfig context (whatever the library supports: tokens, client certificates, exec
// plugins, ...), and errors that say which input is wrong and how to fix it.
import { statSync } from 'node:fs';
import type { ApiException, CoreV1Api, KubeConfig, RequestContext, ResponseContext, V1ConfigMap } from '@kubernetes/client-node';

export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  data?: Record<string, string>;
  [key: string]: unknown;
}

/** A failed request to the member's API server. `status` is the HTTP status (0: no response). */
export class KubeError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
    this.name = 'KubeError';
  }

  get conflict(): boolean {
    return this.status === 409;
  }
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

/** Loads `file` and selects `context` (default: its current-context), or says what is wrong. */
export async function loadMemberKubeConfig(file: string, context?: string): Promise<KubeConfig> {
  try {
    if (!statSync(file).isFile()) throw new KubeError(`kubeconfig ${file}: not a file`);
  } catch (e) {
    if (e instanceof KubeError) throw e;
    throw new KubeError(`kubeconfig ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the --kubeconfig path`);
  }
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw new KubeError(`kubeconfig ${file}: not a valid kubeconfig (${(e as Error).message.split('\n')[0]})`);
  }
  const names = kc.getContexts().map((c) => c.name);
  const list = `(contexts: ${names.join(', ') || 'none'})`;
  if (context) {
    if (!kc.getContextObject(context)) throw new KubeError(`kubeconfig ${file}: context "${context}" not found ${list}`);
    kc.setCurrentContext(context);
  } else if (!kc.getCurrentContext() || !kc.getContextObject(kc.getCurrentContext())) {
    throw new KubeError(`kubeconfig ${file}: no current-context; pass --context ${list}`);
  }
  const ctx = kc.getCurrentContext();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeError(`kubeconfig ${file}: context "${ctx}" names cluster "${kc.getContextObject(ctx)?.cluster}", which is not in the file`);
  if (!cluster.server) throw new KubeError(`kubeconfig ${file}: cluster "${cluster.name}" has no server address`);
  return kc;
}

/** The Status message of an error answer (the library keeps the body as text, or drops it). */
function statusMessage(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {
    /* not a Status */
  }
  return body.trim().slice(0, 200);
}

/** ConfigMap read/replace against the current context of a KubeConfig. */
export class MemberClient {
  readonly server: string;
  readonly context: string;

  private constructor(
    private readonly api: CoreV1Api,
    /** The library's error class for HTTP error answers (imported lazily, like the library). */
    private readonly apiException: typeof ApiException,
    server: string,
    context: string,
    /** Where the kubeconfig came from (for messages). */
    readonly kubeconfigFile: string,
    private readonly timeoutMs: number,
  ) {
    this.server = server;
    this.context = context;
  }

  static async open(file: string, context?: string, timeoutMs = 15_000): Promise<MemberClient> {
    return MemberClient.forConfig(await loadMemberKubeConfig(file, context), file, timeoutMs);
  }

  /** A client for the current context of `kc` (from loadMemberKubeConfig). */
  static async forConfig(kc: KubeConfig, file: string, timeoutMs = 15_000): Promise<MemberClient> {
    const k8s = await import('@kubernetes/client-node');
    const cluster = kc.getCurrentCluster()!;
    const server = cluster.server.replace(/\/+$/, '');
    const ctx = kc.getCurrentContext();
    let protocol = '';
    try {
      protocol = new URL(server).protocol;
    } catch {
      /* reported below */
    }
    if (protocol !== 'https:' && protocol !== 'http:') throw new KubeError(`kubeconfig ${file}: server "${server}" is not an http(s) URL`);
    // The library refuses plain HTTP unless TLS is explicitly off for the cluster.
    if (protocol === 'http:' && !cluster.skipTLSVerify)
      throw new KubeError(`kubeconfig ${file}: server "${server}" is plain HTTP, which needs insecure-skip-tls-verify: true on cluster "${cluster.name}"; better, use the API server's https address`);
    // KubeConfig is the library's authentication method; wrapped so that a failing credential
    // source (an exec plugin, a missing key file) is reported as such, not as a network error.
    const auth = {
      getName: () => kc.getName(),
      applySecurityAuthentication: async (rc: RequestContext) => {
        try {
          await kc.applySecurityAuthentication(rc);
        } catch (e) {
          throw new KubeError(`kubeconfig ${file}: cannot get credentials for context "${ctx}" (${(e as Error).message})`);
        }
      },
    };
    const perRequest = {
      pre: async (rc: RequestContext) => {
        rc.setHeaderParam('User-Agent', 'fedns-join');
        rc.setSignal(AbortSignal.timeout(timeoutMs));
        return rc;
      },
      post: async (r: ResponseContext) => r,
    };
    const config = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(server, {}),
      authMethods: { default: auth },
      promiseMiddleware: [perRequest],
    });
    return new MemberClient(new k8s.CoreV1Api(config), k8s.ApiException, server, ctx, file, timeoutMs);
  }

  private where(): string {
    return `${this.server} (context "${this.context}" of kubeconfig ${this.kubeconfigFile})`;
  }

  /** The ConfigMap, or undefined when it does not exist. */
  async getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined> {
    try {
      return await this.call('GET', namespace, name, () => this.api.readNamespacedConfigMap({ name, namespace }));
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** PUT (replace) carrying the object's metadata.resourceVersion: 409 if it changed meanwhile. */
  async replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    if (!cm.metadata.resourceVersion) throw new Error('replaceConfigMap: metadata.resourceVersion is required (no blind overwrites)');
    const namespace = cm.metadata.namespace ?? 'default';
    const name = cm.metadata.name;
    return this.call('PUT', namespace, name, () => this.api.replaceNamespacedConfigMap({ name, namespace, body: cm as V1ConfigMap }));
  }

  /** One request, its failure turned into a KubeError that names the cause and the fix. */
  private async call(method: 'GET' | 'PUT', namespace: string, name: string, f: () => Promise<V1ConfigMap>): Promise<ConfigMap> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`;
    let cm: V1ConfigMap;
    try {
      cm = await f();
    } catch (e) {
      throw this.explain(e, method, path);
    }
    if (!cm?.metadata?.name) throw new KubeError(`${method} ${path} on ${this.where()}: the answer is not a ConfigMap`, 200);
    return cm as ConfigMap;
  }

  private explain(e: unknown, method: string, path: string): Error {
    if (e instanceof KubeError) return e;
    if (e instanceof this.apiException) {
      const status = e.code;
      const message = statusMessage(e.body);
      const detail = `HTTP ${status}${message ? `: ${message}` : ''}`;
      if (status === 401 || status === 403)
        return new KubeError(`credentials rejected by ${this.where()} (${detail}): check the kubeconfig user / RBAC (needs get/update on configmaps in kube-system)`, status);
      return new KubeError(`${method} ${path} on ${this.where()}: ${detail}`, status);
    }
    const err = e as NodeJS.ErrnoException & { type?: string };
    // node-fetch (the library's HTTP client): AbortError for our timeout, FetchError (with the
    // system or TLS error code) when there was no answer.
    if (err?.name === 'AbortError' || err?.name === 'TimeoutError')
      return new KubeError(`cannot reach ${this.where()}: ETIMEDOUT no answer within ${this.timeoutMs / 1000} s; check the kubeconfig's server address and that the cluster is up`);
    if (err?.name === 'FetchError') {
      const code = err.code ?? '';
      if (TLS_CODES.has(code) || /certificate/i.test(err.message))
        return new KubeError(`TLS verification of ${this.where()} failed (${code || err.message}): check certificate-authority(-data) / the server name in the kubeconfig`);
      const reason = err.message.replace(/^request to \S+ failed, reason: /, '');
      return new KubeError(`cannot reach ${this.where()}: ${code ? `${code} ` : ''}${reason}; check the kubeconfig's server address and that the cluster is up`);
    }
    if (err instanceof SyntaxError) return new KubeError(`${method} ${path} on ${this.where()}: the answer is not JSON`, 200);
    return err instanceof Error ? err : new Error(String(err));
  }
}
