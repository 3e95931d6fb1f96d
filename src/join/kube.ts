// The little of the Kubernetes API that `fedns join` needs: GET and PUT of a ConfigMap in a
// member cluster, with the credentials of a kubeconfig context (whatever
// @kubernetes/client-node supports: tokens, client certificates, exec plugins, ...), and errors
// that say which input is wrong and how to fix it.
import * as http from 'node:http';
import * as https from 'node:https';
import { statSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';

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

/** ConfigMap GET/PUT against the current context of a KubeConfig. */
export class MemberClient {
  readonly server: string;
  readonly context: string;

  constructor(
    private readonly kc: KubeConfig,
    /** Where the kubeconfig came from (for messages). */
    readonly kubeconfigFile: string,
    private readonly timeoutMs = 15_000,
  ) {
    this.server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
    this.context = kc.getCurrentContext();
  }

  static async open(file: string, context?: string, timeoutMs?: number): Promise<MemberClient> {
    return new MemberClient(await loadMemberKubeConfig(file, context), file, timeoutMs);
  }

  private where(): string {
    return `${this.server} (context "${this.context}" of kubeconfig ${this.kubeconfigFile})`;
  }

  /** The ConfigMap, or undefined when it does not exist. */
  async getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined> {
    try {
      return (await this.request('GET', cmPath(namespace, name))) as ConfigMap;
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** PUT (replace) carrying the object's metadata.resourceVersion: 409 if it changed meanwhile. */
  async replaceConfigMap(cm: ConfigMap): Promise<ConfigMap> {
    if (!cm.metadata.resourceVersion) throw new Error('replaceConfigMap: metadata.resourceVersion is required (no blind overwrites)');
    return (await this.request('PUT', cmPath(cm.metadata.namespace ?? 'default', cm.metadata.name), cm)) as ConfigMap;
  }

  private async request(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<unknown> {
    let base: URL;
    try {
      base = new URL(this.server);
    } catch {
      throw new KubeError(`kubeconfig ${this.kubeconfigFile}: server "${this.server}" is not a URL`);
    }
    const opts: https.RequestOptions = {};
    try {
      await this.kc.applyToHTTPSOptions(opts);
    } catch (e) {
      throw new KubeError(`kubeconfig ${this.kubeconfigFile}: cannot get credentials for context "${this.context}" (${(e as Error).message})`);
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {
      ...((opts.headers ?? {}) as http.OutgoingHttpHeaders),
      Accept: 'application/json',
      'User-Agent': 'fedns-join',
    };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const url = new URL(base.pathname.replace(/\/+$/, '') + path, base);
    const mod = url.protocol === 'http:' ? http : https;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = mod.request(url, { ...opts, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(payload);
    }).catch((e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (TLS_CODES.has(code) || /certificate/i.test(e.message))
        throw new KubeError(`TLS verification of ${this.where()} failed (${code || e.message}): check certificate-authority(-data) / the server name in the kubeconfig`);
      throw new KubeError(`cannot reach ${this.where()}: ${code ? `${code} ` : ''}${e.message}; check the kubeconfig's server address and that the cluster is up`);
    });
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300) {
      if (json === undefined) throw new KubeError(`${method} ${url.pathname} on ${this.where()}: the answer is not JSON`, status);
      return json;
    }
    const message = (json as { message?: string } | undefined)?.message ?? text.trim().slice(0, 200);
    if (status === 401 || status === 403)
      throw new KubeError(
        `credentials rejected by ${this.where()} (HTTP ${status}${message ? `: ${message}` : ''}): check the kubeconfig user / RBAC (needs get/update on configmaps in kube-system)`,
        status,
      );
    throw new KubeError(`${method} ${url.pathname} on ${this.where()}: HTTP ${status}${message ? `: ${message}` : ''}`, status);
  }
}

function cmPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`;
}
