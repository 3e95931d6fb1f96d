// The running server: configuration -> federation, cluster sources, DNS listeners.
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { ClusterConfig as ClusterConfigResolved } from './config/schema.js';
import { keyToName } from './dns/name.js';
import { FileClusterSource } from './cluster/files.js';
import type { ClusterSource } from './cluster/source.js';
import type { ClusterSettings, ClusterState } from './cluster/state.js';
import { DnsServer } from './dns/server.js';
import { Responder, type QueryObserver } from './dns/responder.js';
import { Federation, type FederationSettings } from './federation/federation.js';
import { parseLabelSelector } from './federation/selector.js';
import { typeName, rcodeName } from './dns/constants.js';
import { Metrics } from './ops/metrics.js';
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
export type SourceFactory = (state: ClusterState, cluster: ClusterConfigResolved, log: Logger) => ClusterSource;

const sourceFactories: Record<string, SourceFactory> = {
  files: (state, cluster, log) => {
    if (cluster.source.type !== 'files') throw new Error('not a files source');
    return new FileClusterSource(state, cluster.source.path, log);
  },
};

export function registerSource(type: string, factory: SourceFactory): void {
  sourceFactories[type] = factory;
}

/** Loads every member cluster once, without serving: for `fedns zone` and `fedns check`. */
export async function loadFederation(config: Config, log: Logger): Promise<Federation> {
  const fed = new Federation(federationSettings(config));
  for (const cl of config.clusters) {
    const state = fed.addCluster(clusterSettings(config, cl));
    if (cl.source.type === 'files') new FileClusterSource(state, cl.source.path, log.child({ cluster: cl.name })).reload();
    else log.warn({ cluster: cl.name }, 'cluster is read from a Kubernetes API server; not contacted for an offline zone');
  }
  fed.rebuild();
  return fed;
}

export class Fedns {
  readonly federation: Federation;
  readonly responder: Responder;
  readonly dns: DnsServer;
  readonly metrics: Metrics;
  ops?: OpsServer;
  private readonly sources = new Map<string, { source: ClusterSource; config: string }>();

  constructor(
    public config: Config,
    readonly log: Logger,
    observer?: QueryObserver,
  ) {
    this.federation = new Federation(federationSettings(config));
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
    this.dns = new DnsServer(this.responder, { idleTimeout: config.tcp.idleTimeout, maxConnections: config.tcp.maxConnections }, log);
    this.dns.onLatency = (transport, seconds) => metrics.latency.observe({ transport }, seconds);
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

  async start(): Promise<void> {
    for (const cl of this.config.clusters) this.startCluster(cl);
    await this.dns.listen(this.config.listen);
    await this.startOps(this.config);
  }

  private async startOps(c: Config): Promise<void> {
    if (!c.ops.listen) return;
    this.ops = new OpsServer(() => this.federation, this.metrics, this.log, { ...c.ops.listen, readyDeadline: c.ops.readyTimeout });
    await this.ops.listen();
  }

  private startCluster(cl: ClusterConfigResolved): void {
    const state = this.federation.addCluster(clusterSettings(this.config, cl));
    const factory = sourceFactories[cl.source.type];
    if (!factory) throw new Error(`no source for type ${cl.source.type}`);
    const source = factory(state, cl, this.log.child({ cluster: cl.name }));
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
    await this.dns.listen(next.listen);
    if (JSON.stringify(prev.ops) !== JSON.stringify(next.ops)) {
      await this.ops?.close();
      this.ops = undefined;
      await this.startOps(next);
    }
    this.dns.setLimits({ idleTimeout: next.tcp.idleTimeout, maxConnections: next.tcp.maxConnections });
    this.config = next;
    const nextByName = new Map(next.clusters.map((c) => [c.name, c]));
    for (const name of [...this.sources.keys()]) {
      const want = nextByName.get(name);
      if (!want || JSON.stringify(want) !== this.sources.get(name)!.config || JSON.stringify(prev.health) !== JSON.stringify(next.health) || prev.addressMode !== next.addressMode)
        await this.stopCluster(name);
    }
    this.federation.reconfigure(federationSettings(next));
    for (const cl of next.clusters) if (!this.sources.has(cl.name)) this.startCluster(cl);
    this.log.info({ file: next.file, clusters: next.clusters.length }, 'configuration reloaded');
  }

  async stop(graceMs = 2000): Promise<void> {
    await this.ops?.close();
    await this.dns.close(graceMs);
    for (const name of [...this.sources.keys()]) await this.stopCluster(name);
    this.federation.close();
  }
}

