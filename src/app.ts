// The running server: configuration -> federation, cluster sources, DNS listeners.
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { ClusterConfig as ClusterConfigResolved } from './config/schema.js';
import { keyToName } from './dns/name.js';
import { FileClusterSource } from './cluster/files.js';
import { KubeClusterSource } from './cluster/kube.js';
import type { ClusterSource } from './cluster/source.js';
import type { ClusterSettings, ClusterState } from './cluster/state.js';
import { DnsServer } from './dns/server.js';
import { Responder, type QueryObserver } from './dns/responder.js';
import { Federation, type FederationSettings } from './federation/federation.js';
import { parseLabelSelector } from './federation/selector.js';
import { dnsResolver } from './federation/hostnames.js';
import { typeName, rcodeName } from './dns/constants.js';
import { Metrics } from './ops/metrics.js';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';
import { AddressAcl } from './acl.js';
import { Journal } from './transfer/journal.js';
import { Notifier, type NotifyOptions } from './transfer/notify.js';
import type { TsigKey } from './transfer/tsig.js';
import { ZoneTransfers, type TransferPolicy } from './transfer/xfr.js';
import { nextSerial } from './zone/snapshot.js';
import { OpsServer } from './ops/http.js';

export function federationSettings(c: Config): FederationSettings {
  return {
    apex: {
      domain: c.domain,
      soa: c.soa,
      nameservers: c.nameservers,
      nsTtl: c.soa.ttl,
    },
    naming: { domain: c.domain, federation: c.federation, cnameTtl: c.ttl.cname },
    policy: {
      selection: c.selection.policy,
      selector: c.selection.labelSelector ? parseLabelSelector(c.selection.labelSelector) : undefined,
      defaultTtl: c.ttl.default,
      staleTtl: c.ttl.stale,
      panicMode: c.health.panicMode,
    },
  };
}

function tsigKeys(c: Config): TsigKey[] {
  return c.transfer.tsig.map((k) => ({ name: k.name, algorithm: `${k.algorithm}.`, secret: Buffer.from(k.secret, 'base64') }));
}

export function transferPolicy(c: Config): TransferPolicy {
  const keys = tsigKeys(c);
  return { allow: c.transfer.allow, keys, requireTsig: c.transfer.requireTsig ?? keys.length > 0 };
}

export function notifyOptions(c: Config): NotifyOptions {
  return {
    targets: c.transfer.notify,
    coalesceMs: c.transfer.notifyDelay * 1000,
    retryMs: 1000,
    retries: 5,
    key: tsigKeys(c).find((k) => k.name === c.transfer.notifyKey),
  };
}

/** The serial saved by a previous run, so a restart never goes backwards. */
function savedSerial(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 && n < 2 ** 32 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function clusterSettings(c: Config, cl: ClusterConfigResolved): ClusterSettings {
  return {
    name: cl.name,
    region: cl.region,
    zones: cl.zones,
    addressMode: cl.addressMode ?? c.addressMode,
    gracePeriod: c.health.gracePeriod,
  };
}

/** Factory for the source of one cluster; the kube source registers itself here. */
export type SourceFactory = (state: ClusterState, cluster: ClusterConfigResolved, log: Logger, config: Config) => ClusterSource;

const sourceFactories: Record<string, SourceFactory> = {
  files: (state, cluster, log) => {
    if (cluster.source.type !== 'files') throw new Error('not a files source');
    return new FileClusterSource(state, cluster.source.path, log);
  },
  kube: (state, cluster, log, config) => {
    if (cluster.source.type !== 'kube') throw new Error('not a kube source');
    return new KubeClusterSource(state, cluster.source, log, { policy: config.selection.policy });
  },
};

export function registerSource(type: string, factory: SourceFactory): void {
  sourceFactories[type] = factory;
}

/** Loads every member cluster once, without serving: for `fedns zone` and `fedns check`. */
export async function loadFederation(config: Config, log: Logger): Promise<Federation> {
  const fed = new Federation(federationSettings(config));
  // Load-balancer hostnames are resolved once, as the server would before answering.
  fed.resolveHostnames(dnsResolver(config.hostnames.resolvers), config.hostnames.refresh, log.child({ component: 'hostnames' }));
  for (const cl of config.clusters) {
    const state = fed.addCluster(clusterSettings(config, cl));
    if (cl.source.type === 'files') new FileClusterSource(state, cl.source.path, log.child({ cluster: cl.name })).reload();
    else log.warn({ cluster: cl.name }, 'cluster is read from a Kubernetes API server; not contacted for an offline zone');
  }
  fed.rebuild();
  await fed.settleHostnames();
  return fed;
}

export class Fedns {
  readonly federation: Federation;
  readonly responder: Responder;
  readonly dns: DnsServer;
  readonly metrics: Metrics;
  readonly journal: Journal;
  readonly transfers: ZoneTransfers;
  readonly notifier: Notifier;
  ops?: OpsServer;
  private readonly sources = new Map<string, { source: ClusterSource; config: string }>();
  /** For the readiness deadline, which counts from start and not from the last reload. */
  private readonly startedAt = Date.now();

  constructor(
    public config: Config,
    readonly log: Logger,
    observer?: QueryObserver,
  ) {
    const saved = savedSerial(config.transfer.serialFile);
    this.federation = new Federation({ ...federationSettings(config), initialSerial: saved === undefined ? undefined : nextSerial(saved) });
    this.metrics = new Metrics(
      () => this.federation,
      () => ({ hits: this.responder.cacheHits, misses: this.responder.cacheMisses }),
    );
    const metrics = this.metrics;
    const queryLog = config.log.queries ? log.child({ component: 'query' }) : undefined;
    const observe: QueryObserver = (transport, qtype, rcode, q) => {
      metrics.query(transport, qtype, rcode);
      observer?.(transport, qtype, rcode, q);
      queryLog?.info({ transport, qname: q?.key ? keyToName(q.key) : undefined, qtype: typeName(qtype), rcode: rcodeName(rcode) }, 'query');
    };
    this.responder = new Responder(() => this.federation.snapshot, { observer: observe });
    this.dns = new DnsServer(this.responder, config.tcp, log);
    this.dns.onLatency = (transport, seconds) => metrics.latency.observe(transport === 'udp' ? 0 : 1, seconds);
    this.journal = new Journal(config.transfer.journal.deltas, config.transfer.journal.records);
    const policy = transferPolicy(config);
    this.transfers = new ZoneTransfers(policy, () => this.federation.snapshot, this.journal, log.child({ component: 'xfr' }), (type, result) =>
      metrics.transfers.inc({ type, result }),
    );
    this.responder.transferHandler = (q, msg, conn, remote) => this.transfers.handle(q, msg, conn, remote);
    this.configureResponder(config, policy);
    this.notifier = new Notifier(notifyOptions(config), () => this.federation.snapshot, log.child({ component: 'notify' }), (result) =>
      metrics.notifies.inc({ result }),
    );
    let lastSerial = this.federation.snapshot.serial;
    this.federation.on('published', (snap, change) => {
      if (snap.serial === lastSerial) return;
      this.journal.add(lastSerial, snap.serial, change);
      lastSerial = snap.serial;
      this.notifier.changed();
      this.saveSerial();
    });
    this.federation.on('programmed', (cluster, seconds) => {
      for (const s of seconds) metrics.programming.observe({ cluster }, s);
    });
    this.federation.on('published', (snap, change, services) =>
      log.info({ serial: snap.serial, records: snap.recordCount, added: change.added.length, removed: change.removed.length, services }, 'zone published'),
    );
    this.federation.on('clusterHealth', (c, previous) =>
      log.info({ cluster: c.name, health: c.health, previous, reason: c.reason || undefined }, 'cluster health changed'),
    );
  }

  private serialTimer?: NodeJS.Timeout;

  /** Persists the serial (coalesced to one write per second). */
  private saveSerial(): void {
    const file = this.config.transfer.serialFile;
    if (!file || this.serialTimer) return;
    this.serialTimer = setTimeout(() => {
      this.serialTimer = undefined;
      try {
        writeFileAtomic(file, `${this.federation.snapshot.serial}\n`);
      } catch (e) {
        this.log.error({ err: e, file }, 'cannot save the SOA serial');
      }
    }, 1000);
    this.serialTimer.unref();
  }

  async start(): Promise<void> {
    const h = this.config.hostnames;
    this.federation.resolveHostnames(dnsResolver(h.resolvers), h.refresh, this.log.child({ component: 'hostnames' }));
    for (const cl of this.config.clusters) this.startCluster(cl);
    await this.dns.listen(this.config.listen);
    this.ops = await this.openOps(this.config);
  }

  /** What the responder takes from the configuration: access, TSIG keys, identity. */
  private configureResponder(c: Config, policy: TransferPolicy): void {
    this.responder.queryAcl = c.queries.allow === null ? undefined : new AddressAcl(c.queries.allow);
    this.responder.tsigKeys = policy.keys;
    this.responder.setIdentity(c.identity);
  }

  private async openOps(c: Config): Promise<OpsServer | undefined> {
    if (!c.ops.listen) return undefined;
    const ops = new OpsServer(() => this.federation, this.metrics, this.log, { ...c.ops.listen, readyDeadline: c.ops.readyTimeout, startedAt: this.startedAt });
    await ops.listen();
    return ops;
  }

  private startCluster(cl: ClusterConfigResolved): void {
    const state = this.federation.addCluster(clusterSettings(this.config, cl));
    const factory = sourceFactories[cl.source.type];
    if (!factory) throw new Error(`no source for type ${cl.source.type}`);
    const source = factory(state, cl, this.log.child({ cluster: cl.name }), this.config);
    this.sources.set(cl.name, { source, config: JSON.stringify(cl) });
    void Promise.resolve(source.start()).catch((e) => this.log.error({ err: e, cluster: cl.name }, 'cluster source failed to start'));
  }

  private async stopCluster(name: string): Promise<void> {
    const s = this.sources.get(name);
    this.sources.delete(name);
    if (s) await s.source.stop();
    this.federation.removeCluster(name);
  }

  /** Applies a new, already validated configuration without dropping queries. */
  async reload(next: Config): Promise<void> {
    const prev = this.config;
    // Listeners first, all or nothing: a new ops address opens before the DNS listeners move, and
    // if either cannot open, the running listeners stay as they are.
    const opsChanged = JSON.stringify(prev.ops) !== JSON.stringify(next.ops);
    const a = prev.ops.listen;
    const b = next.ops.listen;
    const opsMoves = opsChanged && b !== null && (a === null || a.host !== b.host || a.port !== b.port);
    const newOps = opsMoves ? await this.openOps(next) : undefined;
    try {
      await this.dns.listen(next.listen);
    } catch (e) {
      await newOps?.close();
      throw e;
    }
    if (opsChanged) {
      await this.ops?.close();
      // Same address (only readyTimeout changed) or turned off: reopened here, or not at all.
      this.ops = opsMoves ? newOps : await this.openOps(next);
    }
    const policy = transferPolicy(next);
    this.transfers.setPolicy(policy);
    this.configureResponder(next, policy);
    this.notifier.setOptions(notifyOptions(next));
    this.dns.setLimits(next.tcp);
    this.config = next;
    const nextByName = new Map(next.clusters.map((c) => [c.name, c]));
    for (const name of [...this.sources.keys()]) {
      const want = nextByName.get(name);
      const restart =
        !want ||
        JSON.stringify(want) !== this.sources.get(name)!.config ||
        JSON.stringify(prev.health) !== JSON.stringify(next.health) ||
        prev.addressMode !== next.addressMode ||
        // The kube source watches ServiceExports only for the "exported" policy.
        prev.selection.policy !== next.selection.policy;
      if (restart)
        await this.stopCluster(name);
    }
    if (JSON.stringify(prev.hostnames) !== JSON.stringify(next.hostnames))
      this.federation.resolveHostnames(dnsResolver(next.hostnames.resolvers), next.hostnames.refresh, this.log.child({ component: 'hostnames' }));
    this.federation.reconfigure(federationSettings(next));
    for (const cl of next.clusters) if (!this.sources.has(cl.name)) this.startCluster(cl);
    this.log.info({ file: next.file, clusters: next.clusters.length }, 'configuration reloaded');
  }

  async stop(graceMs = 2000): Promise<void> {
    this.notifier.close();
    if (this.serialTimer) {
      clearTimeout(this.serialTimer);
      this.serialTimer = undefined;
      if (this.config.transfer.serialFile) writeFileAtomic(this.config.transfer.serialFile, `${this.federation.snapshot.serial}\n`);
    }
    await this.ops?.close();
    await this.dns.close(graceMs);
    for (const name of [...this.sources.keys()]) await this.stopCluster(name);
    this.federation.close();
  }
}

