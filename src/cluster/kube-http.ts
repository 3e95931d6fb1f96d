// HTTP to one Kubernetes API server: GET requests made with node:http(s) and the TLS material
// and headers KubeConfig.applyToHTTPSOptions produces, so that status codes, TLS errors,
// timeouts and the raw watch stream are all under our control (client-node's Watch drops error
// bodies and malformed lines, and cannot time out a silent stream). Failures become ApiErrors
// that say precisely what went wrong, for the cluster's health reason.
import * as http from 'node:http';
import * as https from 'node:https';
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { nextSlice, sliceSpent } from '../slices.js';
import { aheadOfServer, ApiError, type OpenStream, type Transport } from './supervisor.js';

const MAX_BODY = 256 * 1024 * 1024;

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
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH|EPROTO/.test(code)) return new ApiError(`TLS: ${message}`, 'tls');
  // Before the message test: a connection reset during the handshake ("... before secure TLS
  // connection was established") is a server gone or hung, not a certificate problem.
  if (!NETWORK_CODES.has(code) && /certificate|SSL routines|tls/i.test(message)) return new ApiError(`TLS: ${message}`, 'tls');
  if (NETWORK_CODES.has(code)) {
    const host = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? ` (${err.hostname ?? err.host ?? 'host'})` : '';
    return new ApiError(`API server unreachable: ${code}${host}`, 'network');
  }
  if (message === 'socket hang up') return new ApiError('API server unreachable: connection closed (socket hang up)', 'network');
  return new ApiError(`request failed: ${code ? `${code}: ` : ''}${message}`, 'network');
}

function statusMessage(body: string): { message?: string; reason?: string; ahead?: boolean } {
  try {
    const s = JSON.parse(body) as Record<string, unknown>;
    return {
      message: typeof s.message === 'string' ? s.message : undefined,
      reason: typeof s.reason === 'string' ? s.reason : undefined,
      ahead: aheadOfServer(s),
    };
  } catch {
    const text = body.trim().slice(0, 200);
    return { message: text || undefined };
  }
}

/** An HTTP error status as a health reason. */
export function describeStatus(status: number, body: string): ApiError {
  const { message, ahead } = statusMessage(body);
  const tail = message ? `: ${message}` : '';
  let text: string;
  if (status === 401) text = 'credentials rejected (401)';
  else if (status === 403) text = `access forbidden (403)${tail}`;
  else if (status === 404) text = `not found (404)${tail}`;
  else if (status === 410) text = `resourceVersion expired (410)${tail}`;
  else if (status === 429) text = `throttled by the API server (429)${tail}`;
  else if (status >= 500) text = `API server error (${status})${tail}`;
  else text = `HTTP ${status}${tail}`;
  return new ApiError(text, 'http', status, undefined, ahead);
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
  return new ApiError(`${what}: ${err.message}`, 'http', err.status, retryAfterMs(Array.isArray(after) ? after[0] : after), err.aheadOfServer);
}

function readBody(res: http.IncomingMessage, limit: number): Promise<Buffer> {
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
    res.on('end', () => resolve(Buffer.concat(chunks)));
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

/**
 * GETs against the current cluster of a KubeConfig, one keep-alive agent per TLS identity. An
 * identity that rotates (exec-plugin certificates) gets a new agent; the old one is destroyed
 * as soon as no request uses it (a watch opened with it keeps it until it ends).
 */
export class KubeTransport implements Transport {
  private agent?: http.Agent;
  private agentKey = '';
  /** Every agent held, with its requests in flight. */
  private readonly agents = new Map<http.Agent, number>();

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
        const old = this.agent;
        this.agent = base.protocol === 'http:' ? new http.Agent({ keepAlive: true }) : new https.Agent({ ...clean, keepAlive: true });
        this.agentKey = key;
        this.agents.set(this.agent, 0);
        if (old) this.release(old, 0);
      }
      agent = this.agent;
    }
    return { base, agent, headers: (opts.headers ?? {}) as http.OutgoingHttpHeaders, auth: typeof opts.auth === 'string' ? opts.auth : undefined };
  }

  /** One request fewer on `agent` (`by` 0: none ended); an agent no longer current and unused is destroyed. */
  private release(agent: http.Agent, by: number): void {
    const n = this.agents.get(agent);
    if (n === undefined) return;
    if (n - by > 0 || agent === this.agent) this.agents.set(agent, n - by);
    else {
      this.agents.delete(agent);
      agent.destroy();
    }
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
      // Proxy agents (not ours) are not counted.
      if (this.agents.has(p.agent)) {
        this.agents.set(p.agent, this.agents.get(p.agent)! + 1);
        req.once('close', () => this.release(p.agent, 1));
      }
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

  async getBody(path: string, query: Record<string, string>, signal: AbortSignal, what = `GET ${path}`): Promise<Buffer> {
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
      let body: Buffer;
      try {
        body = await readBody(res, MAX_BODY);
      } catch (e) {
        if (signal.aborted) throw new ApiError('stopped', 'aborted');
        if (timedOut) throw new ApiError(`${what}: answer not complete within ${Math.round(this.timeoutMs / 100) / 10} s`, 'timeout');
        const err = e instanceof ApiError ? e : describeNetworkError(e);
        throw new ApiError(`${what}: ${err.message}`, err.category);
      }
      if (res.statusCode !== 200) throw statusError(what, res, body.toString('utf8'));
      return body;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  async getJson(path: string, query: Record<string, string>, signal: AbortSignal, what = `GET ${path}`): Promise<unknown> {
    const body = await this.getBody(path, query, signal, what);
    // Pages of many lists arrive together: each is parsed in a slice of its own (src/slices.ts).
    if (sliceSpent()) await nextSlice();
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw new ApiError(`${what}: the answer is not JSON`, 'protocol');
    }
  }

  async openStream(path: string, query: Record<string, string>, signal: AbortSignal, what = `watch ${path}`): Promise<OpenStream> {
    const { req, res } = await this.send(what, path, query, signal);
    if (res.statusCode !== 200) {
      let body = '';
      try {
        body = (await readBody(res, 64 * 1024)).toString('utf8');
      } catch {
        /* the status is what matters */
      }
      throw statusError(what, res, body);
    }
    return { response: res, abort: () => req.destroy() };
  }

  /** HTTPS (or HTTP) agents held now (tests). */
  agentCount(): number {
    return this.agents.size;
  }

  /** Closes every connection. */
  close(): void {
    for (const a of this.agents.keys()) a.destroy();
    this.agents.clear();
    this.agent = undefined;
  }
}

/** Labels requests for reasons: "list services", "watch endpointslices". */
export class LabelledTransport implements Transport {
  constructor(
    private readonly inner: KubeTransport,
    private readonly plural: string,
  ) {}
  getJson(path: string, query: Record<string, string>, signal: AbortSignal): Promise<unknown> {
    return this.inner.getJson(path, query, signal, `list ${this.plural}`);
  }
  getBody(path: string, query: Record<string, string>, signal: AbortSignal): Promise<Buffer> {
    return this.inner.getBody(path, query, signal, `list ${this.plural}`);
  }
  openStream(path: string, query: Record<string, string>, signal: AbortSignal): Promise<OpenStream> {
    return this.inner.openStream(path, query, signal, `watch ${this.plural}`);
  }
}
