/**
 * In-process Fedns against fake Kubernetes API servers, for the kube source tests
 * (test/kube/*.test.ts): a UDP DNS client, a Fedns started from a generated configuration
 * with its JSON logs and cluster health changes captured, polling helpers and builders of
 * the Kubernetes objects the fake API servers serve.
 *
 *   useKubeTiming(TIMING); // once per test file, before anything starts
 *   const { startFedns } = kubeHarness('fedns-kube-x-'); // a temp dir for the file
 *   const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });
 *   const f = await startFedns([{ name: 'east', server: east, region: 'r1' }]);
 *   await eventually(() => f.answer('web.shop.fed.example.com.'), same(['192.0.2.1']), 'web answering');
 */
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { Fedns, kubeSourceOptions, registerSource } from '../../src/app.js';
import { KubeClusterSource, type KubeSourceOptions } from '../../src/cluster/kube.js';
import { buildConfig, type Config } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import type { FakeApiServer, KubeObject } from './fake-apiserver.js';

// ---- kube source timing -----------------------------------------------------------------

/** Supervisor timings for tests that want quick retries but no fault-matrix tuning. */
export const QUICK_TIMING: KubeSourceOptions = {
  idleLimitMs: 1500,
  restartIntervalMs: 50,
  staleAfterMs: 1500,
  requestTimeoutMs: 2000,
  watchTimeoutSeconds: 30,
  stormRestarts: 20,
  stormWindowMs: 2000,
  missingKindRecheckMs: 500,
};

/**
 * Makes the "kube" source type use these supervisor timings (and what the configuration says:
 * selection policy, clientNetworks). The source registry is module-global: call it once at the top of a test file.
 */
export function useKubeTiming(timing: KubeSourceOptions): void {
  registerSource('kube', (state, cluster, log, config) => {
    if (cluster.source.type !== 'kube') throw new Error('not a kube source');
    return new KubeClusterSource(state, cluster.source, log, { ...timing, ...kubeSourceOptions(config, cluster) });
  });
}

// ---- DNS client -------------------------------------------------------------------------

export class DnsClient {
  private readonly sock = dgram.createSocket('udp4');
  private readonly pending = new Map<number, (m: Message) => void>();
  private id = 0;
  constructor(private readonly port: number) {
    this.sock.on('message', (buf) => {
      let m: Message;
      try {
        m = decodeMessage(buf);
      } catch {
        return;
      }
      const cb = this.pending.get(m.id);
      if (cb) {
        this.pending.delete(m.id);
        cb(m);
      }
    });
  }
  bind(): Promise<void> {
    return new Promise((resolve) => this.sock.bind(0, '127.0.0.1', () => resolve()));
  }
  /** One query over UDP to 127.0.0.1 (with EDNS when `edns`); undefined when no answer came within `timeoutMs`. */
  query(name: string, type: number = RRType.A, timeoutMs = 1000, edns = false): Promise<Message | undefined> {
    this.id = (this.id % 0xffff) + 1;
    const id = this.id;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.sock.send(encodeQuery(name, type, { id, ...(edns ? { edns: {} } : {}) }), this.port, '127.0.0.1');
    });
  }
  close(): void {
    this.sock.close();
  }
}

export function rcodeText(r: number): string {
  return r === Rcode.NXDOMAIN ? 'NXDOMAIN' : r === Rcode.SERVFAIL ? 'SERVFAIL' : `rcode ${r}`;
}

/** The A addresses of an answer, sorted. */
export function aRecords(m: Message): string[] {
  return m.answers
    .filter((r) => r.type === RRType.A)
    .map((r) => r.data as string)
    .sort();
}

// ---- a running Fedns --------------------------------------------------------------------

export interface LogRecord {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface ClusterSpec {
  name: string;
  server: FakeApiServer;
  region?: string;
  /** kubeconfig text (default: the server's own). */
  kubeconfig?: string;
  /** clusters[].clientNetworks (default: none). */
  clientNetworks?: 'auto' | string[];
}

export interface HealthChange {
  at: number;
  cluster: string;
  health: string;
  reason: string;
}

export interface Running {
  fedns: Fedns;
  dns: DnsClient;
  logs: LogRecord[];
  /** Every cluster health change, in order. */
  history: HealthChange[];
  /** Path of each cluster's kubeconfig file (startFedns only). */
  files: Map<string, string>;
  /** Asks until an answer comes (3 tries of 1 s). */
  ask(name: string, type?: number): Promise<Message>;
  /** Sorted A addresses, or the rcode name when not NOERROR. */
  answer(name: string): Promise<string[] | string>;
  health(cluster: string): string;
  /** Applies a configuration with these clusters (existing ones keep their files; startFedns only). */
  setClusters(clusters: ClusterSpec[]): Promise<void>;
  stop(): Promise<void>;
}

export interface KubeHarness {
  /** The test file's temporary directory (exists between its beforeAll and afterAll). */
  dir(): string;
  /** Writes a kubeconfig file (mode 0600) named after `name` into the temp dir; returns its path. */
  writeKubeconfig(name: string, text: string): string;
  /**
   * Starts a Fedns listening on 127.0.0.1 (port picked by the kernel, no ops listener, grace
   * period 60 s unless `extra` says otherwise) with one kube source per cluster.
   */
  startFedns(clusters: ClusterSpec[], extra?: Record<string, unknown>): Promise<Running>;
  /** Starts a Fedns from this raw configuration as it is (no `files`, no `setClusters`). */
  startRaw(raw: Record<string, unknown>): Promise<Running>;
}

/**
 * The harness of one test file: registers a beforeAll that makes a temp dir (`tmpPrefix`
 * plus random characters) and an afterAll that removes it. Call it at the top level of the file.
 */
export function kubeHarness(tmpPrefix: string): KubeHarness {
  let dir: string | undefined;
  let fileSeq = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    if (!dir) throw new Error('kube harness: the temp dir exists only while the test file runs');
    return dir;
  };
  const build = (raw: Record<string, unknown>): Config => buildConfig(raw, join(tempDir(), 'fedns.yaml'), tempDir());
  const writeKubeconfig = (name: string, text: string): string => {
    const file = join(tempDir(), `${name}-${++fileSeq}.kubeconfig`);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };

  return {
    dir: tempDir,
    writeKubeconfig,
    startFedns(clusters, extra = {}) {
      const files = new Map<string, string>();
      const configFor = (cs: ClusterSpec[]) =>
        build({
          listen: ['127.0.0.1:0'],
          ops: { listen: null },
          health: { gracePeriod: 60 },
          ...extra,
          clusters: cs.map((c) => {
            let file = files.get(c.name);
            if (!file) {
              file = writeKubeconfig(c.name, c.kubeconfig ?? c.server.kubeconfig());
              files.set(c.name, file);
            }
            return {
              name: c.name,
              ...(c.region ? { region: c.region } : {}),
              ...(c.clientNetworks ? { clientNetworks: c.clientNetworks } : {}),
              source: { type: 'kube', kubeconfig: file },
            };
          }),
        });
      // Same listen setting (127.0.0.1:0) on every reload: the listener is kept as it is.
      return launch(configFor(clusters), files, configFor);
    },
    startRaw(raw) {
      return launch(build(raw), new Map(), () => {
        throw new Error('setClusters needs a Fedns started with startFedns');
      });
    },
  };
}

async function launch(config: Config, files: Map<string, string>, configFor: (cs: ClusterSpec[]) => Config): Promise<Running> {
  const logs: LogRecord[] = [];
  const logger: Logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as LogRecord) });
  const fedns = new Fedns(config, logger);
  const history: HealthChange[] = [];
  fedns.federation.on('clusterHealth', (c) => history.push({ at: Date.now(), cluster: c.name, health: c.health, reason: c.reason }));
  await fedns.start();
  const dns = new DnsClient(fedns.dns.addresses()[0].port);
  await dns.bind();
  const ask = async (name: string, type: number = RRType.A) => {
    for (let i = 0; i < 3; i++) {
      const m = await dns.query(name, type);
      if (m) return m;
    }
    throw new Error(`no answer for ${name}`);
  };
  let stopped = false;
  return {
    fedns,
    dns,
    logs,
    history,
    files,
    ask,
    async answer(name: string) {
      const m = await ask(name);
      return m.rcode === Rcode.NOERROR ? aRecords(m) : rcodeText(m.rcode);
    },
    health: (c) => fedns.federation.clusters.get(c)?.health ?? 'none',
    async setClusters(cs) {
      await fedns.reload(configFor(cs));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      dns.close();
      await fedns.stop(100);
    },
  };
}

// ---- waiting ----------------------------------------------------------------------------

/** Polls `get` every `pollMs` until `ok` holds; throws with the last value after `timeoutMs`. */
export async function eventually<T>(get: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs: number, pollMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await get();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export type Eventually = <T>(get: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs?: number) => Promise<T>;

/** `eventually` with a test file's own default timeout and polling interval. */
export function eventuallyWith(defaults: { timeoutMs: number; pollMs: number }): Eventually {
  return <T>(get: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs = defaults.timeoutMs) => eventually(get, ok, what, timeoutMs, defaults.pollMs);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A predicate for `eventually`: the answer is exactly `want` (addresses or an rcode name). */
export const same = (want: string[] | string) => (got: string[] | string) => JSON.stringify(got) === JSON.stringify(want);

// ---- Kubernetes objects -----------------------------------------------------------------

/** A LoadBalancer Service with these ingress addresses. */
export function svc(ns: string, name: string, lb: string[], extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    status: { loadBalancer: { ingress: lb.map((ip) => ({ ip })) } },
    ...extra,
  };
}

/** An EndpointSlice of `service` (default name `SERVICE-abcde`); endpoints are ready unless said otherwise. */
export function slice(ns: string, service: string, eps: Array<{ ip: string; ready?: boolean; zone?: string }>, name = `${service}-abcde`): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: eps.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true }, ...(e.zone ? { zone: e.zone } : {}) })),
  };
}

/** A Node with these pod CIDRs and InternalIP addresses (and labels). */
export function node(name: string, podCIDRs: string[], internalIPs: string[] = [], labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    spec: { ...(podCIDRs.length ? { podCIDR: podCIDRs[0] } : {}), podCIDRs },
    status: { addresses: [...internalIPs.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }] },
  };
}

export function serviceExport(ns: string, name: string): KubeObject {
  return { apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceExport', metadata: { name, namespace: ns } };
}

/** A ready service: Service with an LB address plus an EndpointSlice with one ready endpoint. */
export function publish(server: FakeApiServer, ns: string, name: string, lb: string, podIp = '10.1.0.1'): void {
  server.apply(svc(ns, name, [lb]));
  server.apply(slice(ns, name, [{ ip: podIp }]));
}

/** Removes what `publish` applied. */
export function unpublish(server: FakeApiServer, ns: string, name: string): void {
  server.remove('Service', ns, name);
  server.remove('EndpointSlice', ns, `${name}-abcde`);
}
