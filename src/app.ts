// The running server: configuration -> federation, cluster sources, DNS listeners.
import type { Logger } from 'pino';
import { ConfigError, type Config } from './config/load.js';
import { isWithin } from './config/schema.js';
import type { ClusterConfig as ClusterConfigResolved } from './config/schema.js';
import { keyIsInZone, keyToName } from './wire/name.js';
import { FileClusterSource } from './cluster/files.js';
import { KubeClusterSource, loadKubeClient, type KubeSourceOptions } from './cluster/kube.js';
import type { ClusterSource } from './cluster/source.js';
import type { ClusterSettings, ClusterState } from './cluster/state.js';
import { DnsServer } from './server/server.js';
import { chooseUdpPath } from './server/udp-batch.js';
import { ResponseRateLimiter, type RateLimitSettings } from './server/rrl.js';
import { Responder, type QueryObserver } from './server/responder.js';
import { Federation, type FederationSettings } from './federation/federation.js';
import { parseLabelSelector } from './federation/selector.js';
import { dnsResolver, type ResolveHostname } from './federation/hostnames.js';
import { typeName, rcodeName } from './wire/constants.js';
import { Metrics } from './ops/metrics.js';
import { readRegularFile } from './regular-file.js';
import { AddressAcl } from './acl.js';
import type { NotifyOptions, NotifyStats } from './server/notify.js';
import { ZoneServing, type ZoneServingOptions } from './server/zone-serving.js';
import type { TsigKey } from './wire/tsig.js';
import type { TransferPolicy, TransferResult } from './server/xfr.js';
import { nextSerial, type ZoneSnapshot } from './zone/snapshot.js';
import { OpsServer } from './ops/http.js';
import { ClientMap, type ClientNetwork } from './client-map.js';
import { parseNetwork } from './address.js';
import type { ClientPlace } from './traffic-policy.js';

/**
 * Client networks -> places, for the traffic policies: each member's networks (configured, or
 * learned from its nodes with "auto") in cluster order, then the configured clients.
 */
export function clientMap(c: Config, clusters: ReadonlyMap<string, ClusterState>): ClientMap {
  const configured: ClientNetwork[] = [];
  const learned: ClientNetwork[] = [];
  for (const cl of c.clusters) {
    const state = clusters.get(cl.name);
    const place: ClientPlace = { cluster: cl.name, region: state?.region ?? cl.region, zones: state?.zones ?? cl.zones, via: `cluster ${cl.name}` };
    if (cl.clientNetworks === 'auto') for (const network of state?.learnedNetworks ?? []) learned.push({ network, place });
    else for (const network of cl.clientNetworks) configured.push({ network, place });
  }
  c.clients.forEach((client, i) => {
    const place: ClientPlace = { region: client.region, zones: client.zone ? [client.zone] : [], via: `clients[${i}]` };
    for (const network of client.networks) configured.push({ network, place });
  });
  if (learned.length === 0) return new ClientMap(configured);
  // Networks learned from Node objects (which tenants of a member may write) never take clients
  // from a network the configuration places elsewhere: one that starts inside such a network is left out.
  const written = new ClientMap(configured);
  const kept = learned.filter(({ network, place }) => {
    const n = parseNetwork(network, true);
    if (!n) return true; // the client map lists it as invalid
    const inside = written.lookup(network.split('/')[0]);
    return inside === undefined || inside.place.cluster === place.cluster || inside.prefix > n.bits;
  });
  return new ClientMap([...configured, ...kept], learned.length - kept.length);
}

export function federationSettings(c: Config): FederationSettings {
  return {
    apex: {
      domain: c.domain,
      soa: c.soa,
      nameservers: c.nameservers,
      nsTtl: c.soa.ttl,
    },
    naming: { domain: c.domain, federation: c.federation, cnameTtl: c.ttl.cname },
    clusterSet: c.mcs.enabled
      ? { apex: { domain: c.mcs.domain, soa: c.soa, nameservers: c.nameservers, nsTtl: c.soa.ttl }, naming: { domain: c.mcs.domain } }
      : undefined,
    policy: {
      traffic: { policy: c.policy, maxAddresses: c.maxAddresses ?? undefined },
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

/** Why this replica does not serve transfers (transfer.primary names another), or undefined. */
function notPrimary(c: Config): string | undefined {
  const p = c.transfer.primary;
  if (p === undefined || p === c.identity.server) return undefined;
  return `not the transfer primary (transfer.primary: ${p}, this replica: ${c.identity.server})`;
}

export function transferPolicy(c: Config): TransferPolicy {
  const keys = tsigKeys(c);
  return { allow: c.transfer.allow, keys, requireTsig: c.transfer.requireTsig ?? keys.length > 0, notPrimary: notPrimary(c) };
}

/** Whether a reload from `prev` to `next` changes mcs settings that only a restart applies (all but notify). */
export function mcsNeedsRestart(prev: Config, next: Config): boolean {
  const { notify: _p, ...a } = prev.mcs;
  const { notify: _n, ...b } = next.mcs;
  return JSON.stringify(a) !== JSON.stringify(b);
}

/** NOTIFY settings of the federation zone, or with `clusterSet` of the clusterset zone (mcs.notify, else the same targets). */
export function notifyOptions(c: Config, clusterSet = false): NotifyOptions {
  return {
    // Only the transfer primary tells secondaries about its serials.
    targets: notPrimary(c) ? [] : clusterSet ? (c.mcs.notify ?? c.transfer.notify) : c.transfer.notify,
    coalesceMs: c.transfer.notifyDelay * 1000,
    retryMs: 1000,
    retries: 5,
    key: tsigKeys(c).find((k) => k.name === c.transfer.notifyKey),
  };
}

/** Rate limiting as configured, or undefined when it is off. */
export function rateLimitSettings(c: Config): RateLimitSettings | undefined {
  const r = c.rateLimit;
  if (!r.responsesPerSecond) return undefined;
  const rps = r.responsesPerSecond;
  return {
    responsesPerSecond: rps,
    nodataPerSecond: r.nodataPerSecond ?? rps,
    nxdomainsPerSecond: r.nxdomainsPerSecond ?? rps,
    errorsPerSecond: r.errorsPerSecond ?? rps,
    slip: r.slip,
    window: r.window,
    ipv4PrefixLength: r.ipv4PrefixLength,
    ipv6PrefixLength: r.ipv6PrefixLength,
    exempt: r.exempt,
    tableSize: r.tableSize,
  };
}

/** One line for `fedns check`: what is limited, per what, and who is exempt. */
export function rateLimitSummary(c: Config): string {
  const r = rateLimitSettings(c);
  if (!r) return 'off';
  const rate = (n: number) => (n > 0 ? `${n}/s` : 'unlimited');
  return (
    `answers ${rate(r.responsesPerSecond)}, NODATA ${rate(r.nodataPerSecond)}, NXDOMAIN ${rate(r.nxdomainsPerSecond)}, errors ${rate(r.errorsPerSecond)} ` +
    `per /${r.ipv4PrefixLength} and /${r.ipv6PrefixLength}, slip ${r.slip}, window ${r.window}s, ` +
    `exempt ${r.exempt.join(', ') || 'nobody'}, table ${r.tableSize}`
  );
}

/** The clusterset zone's serial file: transfer.serialFile with ".mcs" added. */
export function clusterSetSerialFile(c: Config): string | undefined {
  return c.transfer.serialFile === undefined ? undefined : `${c.transfer.serialFile}.mcs`;
}

/** Transfers, NOTIFY, journal and serial file of the federation zone, or of the clusterset zone. */
function zoneServingOptions(c: Config, clusterSet = false): ZoneServingOptions {
  return {
    policy: transferPolicy(c),
    notify: notifyOptions(c, clusterSet),
    journal: c.transfer.journal,
    serialFile: clusterSet ? clusterSetSerialFile(c) : c.transfer.serialFile,
  };
}

/** The serial saved by a previous run, so a restart never goes backwards. */
function savedSerial(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try {
    const n = Number(readRegularFile(file, 64, 'serial file').trim());
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
    return new FileClusterSource(state, cluster.source.path, log, { learnNetworks: learnsNetworks(cluster) });
  },
  kube: (state, cluster, log, config) => {
    if (cluster.source.type !== 'kube') throw new Error('not a kube source');
    return new KubeClusterSource(state, cluster.source, log, kubeSourceOptions(config, cluster));
  },
};

/** What a kube source takes from the configuration (the federation's and its cluster's settings). */
export function kubeSourceOptions(c: Config, cl: ClusterConfigResolved): KubeSourceOptions {
  return { policy: c.selection.policy, mcs: c.mcs.enabled, learnNetworks: learnsNetworks(cl) };
}

/** clientNetworks: auto: the cluster's source learns its networks from its Node objects. */
function learnsNetworks(cl: ClusterConfigResolved | undefined): boolean {
  return cl?.clientNetworks === 'auto';
}

/** Longest a reload waits for clusters to read what a new selection policy needs. */
const POLICY_WAIT_MS = 10_000;

export function registerSource(type: string, factory: SourceFactory): void {
  sourceFactories[type] = factory;
}

/**
 * A reload whose new configuration is in force (listeners, identity, limits, zone settings), but
 * whose application to the clusters failed part way: what runs is neither file. A restart applies
 * the file whole.
 */
export class ReloadIncomplete extends Error {
  constructor(override readonly cause: unknown) {
    super(`the new configuration is in force, but applying it to the clusters failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** What the responder takes from the configuration (Fedns.responderSettings). */
interface ResponderSettings {
  queryAcl: Responder['queryAcl'];
  tsigKeys: Responder['tsigKeys'];
  identity: Config['identity'];
  traffic: Responder['traffic'];
}

/** Loads every `files` member cluster once, without serving: for `fedns zone`, `check` and `explain --offline`. */
export async function loadFederation(config: Config, log: Logger): Promise<Federation> {
  const fed = new Federation(federationSettings(config), log.child({ component: 'federation' }));
  // Load-balancer hostnames are resolved once, as the server would before answering.
  fed.resolveHostnames(dnsResolver(config.hostnames.resolvers), config.hostnames.refresh, log.child({ component: 'hostnames' }));
  for (const cl of config.clusters) {
    const state = fed.addCluster(clusterSettings(config, cl));
    // A kube cluster stays unlisted: the commands say so in their own words (kubeClusters in cli.ts).
    if (cl.source.type === 'files') new FileClusterSource(state, cl.source.path, log.child({ cluster: cl.name }), { learnNetworks: learnsNetworks(cl) }).reload();
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
  /** The federation zone's journal, transfers, NOTIFY and serial file. */
  readonly zoneServing: ZoneServing;
  /** The same for the clusterset zone (mcs.enabled at start). */
  clusterSetServing?: ZoneServing;
  get journal(): ZoneServing['journal'] {
    return this.zoneServing.journal;
  }
  get transfers(): ZoneServing['transfers'] {
    return this.zoneServing.transfers;
  }
  get notifier(): ZoneServing['notifier'] {
    return this.zoneServing.notifier;
  }
  /** Kept across reloads (its counts feed the metrics); the DNS server uses it only when on. */
  private rrl?: ResponseRateLimiter;
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
    const settings = federationSettings(config);
    const savedClusterSet = savedSerial(clusterSetSerialFile(config));
    if (settings.clusterSet && savedClusterSet !== undefined) settings.clusterSet.initialSerial = nextSerial(savedClusterSet);
    this.federation = new Federation(
      { ...settings, initialSerial: saved === undefined ? undefined : nextSerial(saved) },
      log.child({ component: 'federation' }),
    );
    this.metrics = new Metrics(
      () => this.federation,
      () => ({ hits: this.responder.cacheHits, misses: this.responder.cacheMisses, errors: this.responder.answerErrors, traffic: this.responder.trafficAnswers }),
    );
    const metrics = this.metrics;
    this.queryLog = config.log.queries ? log.child({ component: 'query' }) : undefined;
    const observe: QueryObserver = (transport, qtype, rcode, q) => {
      metrics.query(transport, qtype, rcode);
      observer?.(transport, qtype, rcode, q);
      this.queryLog?.info({ client: this.responder.queryClient, transport, qname: q?.key ? keyToName(q.key) : undefined, qtype: typeName(qtype), rcode: rcodeName(rcode) }, 'query');
    };
    const answerLog = log.child({ component: 'responder' });
    this.responder = new Responder(() => this.federation.snapshot, {
      observer: observe,
      log: answerLog,
      cacheSize: config.answerCache.entries,
      cacheBytes: config.answerCache.memory * 1024 * 1024,
    });
    this.dns = new DnsServer(this.responder, config.tcp, log);
    this.dns.onLatency = (transport, seconds) => metrics.latency.observe(transport === 'udp' ? 0 : 1, seconds);
    this.configureRateLimit(config);
    metrics.rateLimit(() => this.rrl?.counts);
    metrics.udp(() => this.dns.udpPath.path, () => this.dns.udpStats());
    // Counted per zone (label `zone`: the zone's domain, as in fedns_zone_serial): at most the two served.
    const stats = (zone: () => ZoneSnapshot) => ({
      transfers: (type: 'AXFR' | 'IXFR', result: TransferResult) => metrics.transfers.inc({ zone: zone().domain, type, result }),
      notifies: (result: Parameters<NotifyStats>[0], rcode?: string) =>
        metrics.notifies.inc(rcode ? { zone: zone().domain, result, rcode } : { zone: zone().domain, result }),
    });
    const federationZone = () => this.federation.snapshot;
    this.zoneServing = new ZoneServing(federationZone, zoneServingOptions(config), log, stats(federationZone));
    this.federation.on('published', (snap, change) => this.zoneServing.published(snap, change));
    const clusterSetZone = () => this.federation.clusterSetSnapshot;
    if (clusterSetZone()) {
      const zone = () => clusterSetZone()!;
      const serving = new ZoneServing(zone, zoneServingOptions(config, true), log.child({ zone: config.mcs.domain }), stats(zone));
      this.clusterSetServing = serving;
      this.federation.on('clusterSetPublished', (snap, change) => serving.published(snap, change));
      this.responder.otherZone = clusterSetZone;
    }
    this.responder.transferHandler = (q, msg, conn, remote, responder) => this.servingFor(q.key).transfers.handle(q, msg, conn, remote, responder);
    this.configureResponder(config, transferPolicy(config));
    this.federation.on('programmed', (cluster, seconds) => {
      for (const s of seconds) metrics.programming.observe({ cluster }, s);
    });
    this.federation.on('published', (snap, change, services) =>
      log.info({ serial: snap.serial, records: snap.recordCount, changed: change.size, unlisted: change.unlisted || undefined, services, ready: snap.ready }, 'zone published'),
    );
    this.federation.on('clusterSetPublished', (snap, change) =>
      log.info({ zone: snap.domain, serial: snap.serial, records: snap.recordCount, changed: change.size, unlisted: change.unlisted || undefined }, 'zone published'),
    );
    this.federation.on('clusterHealth', (c, previous) => {
      log.info({ cluster: c.name, health: c.health, previous, reason: c.reason || undefined }, 'cluster health changed');
      // A first sync may teach the cluster's region and zones, which its clients are placed in.
      this.clientsChanged();
    });
    this.federation.on('clientNetworks', () => this.clientsChanged());
  }

  /** One log line per query (log.queries), or undefined; a reload turns it on or off. */
  private queryLog?: Logger;

  /** The zone whose transfers a question for `key` asks for: the clusterset zone's names, else the federation's. */
  private servingFor(key: string): ZoneServing {
    const cs = this.federation.clusterSetSnapshot;
    return cs && this.clusterSetServing && keyIsInZone(key, cs.apexKey) ? this.clusterSetServing : this.zoneServing;
  }

  async start(): Promise<void> {
    // Before anything starts: udp.batch on without the addon is a start-up error.
    this.dns.udpPath = chooseUdpPath(this.config.udp.batch);
    this.log.info({ udp: this.dns.udpPath.path, reason: this.dns.udpPath.reason }, `UDP path: ${this.dns.udpPath.path}`);
    const h = this.config.hostnames;
    this.federation.resolveHostnames(dnsResolver(h.resolvers), h.refresh, this.log.child({ component: 'hostnames' }));
    // Before the first query: loading the Kubernetes client would hold up the answers.
    if (this.config.clusters.some((cl) => cl.source.type === 'kube')) await loadKubeClient();
    for (const cl of this.config.clusters) this.startCluster(cl);
    await this.dns.listen(this.config.listen);
    this.ops = await this.openOps(this.config);
  }

  /** What the responder takes from the configuration: access, TSIG keys, identity, who the clients are. */
  private configureResponder(c: Config, policy: TransferPolicy): void {
    this.applyResponderSettings(this.responderSettings(c, policy));
  }

  /** The responder's settings from `c`, built without applying them (what can fail is here). */
  private responderSettings(c: Config, policy: TransferPolicy): ResponderSettings {
    return {
      queryAcl: c.queries.allow === null ? undefined : new AddressAcl(c.queries.allow),
      tsigKeys: policy.keys,
      identity: c.identity,
      traffic: { clients: clientMap(c, this.federation.clusters), ecs: c.locality.ecs },
    };
  }

  private applyResponderSettings(s: ResponderSettings): void {
    this.responder.queryAcl = s.queryAcl;
    this.responder.tsigKeys = s.tsigKeys;
    this.responder.setIdentity(s.identity);
    this.responder.traffic = s.traffic;
  }

  private clientMapPending = false;
  /** The last reload stopped once its configuration was in force (ReloadIncomplete): the next applies every cluster setting. */
  private incomplete = false;

  /** Rebuilds the client map once the current burst of changes (learned networks, topology) is over. */
  private clientsChanged(): void {
    if (this.clientMapPending) return;
    this.clientMapPending = true;
    setImmediate(() => {
      this.clientMapPending = false;
      const t = this.responder.traffic;
      if (t) this.responder.traffic = { ...t, clients: clientMap(this.config, this.federation.clusters) };
    });
  }

  /** Turns rate limiting on, off or to new settings (a change starts from an empty table). */
  private configureRateLimit(c: Config): void {
    this.prepareRateLimit(c)();
  }

  /**
   * Builds the rate limiting `c` asks for (the table, whose allocation may fail) without putting
   * it in force; the function returned does that, and cannot fail.
   */
  private prepareRateLimit(c: Config): () => void {
    const settings = rateLimitSettings(c);
    if (settings && !this.rrl) {
      const rrl = new ResponseRateLimiter(settings);
      return () => {
        this.rrl = rrl;
        this.responder.rrl = rrl;
      };
    }
    const configure = settings && JSON.stringify(c.rateLimit) !== JSON.stringify(this.config.rateLimit) ? this.rrl!.prepare(settings) : undefined;
    return () => {
      configure?.();
      this.responder.rrl = settings ? this.rrl : undefined;
    };
  }

  private async openOps(c: Config): Promise<OpsServer | undefined> {
    if (!c.ops.listen) return undefined;
    const ops = new OpsServer(() => this.federation, this.metrics, this.log, {
      ...c.ops.listen,
      readyDeadline: c.ops.readyTimeout,
      startedAt: this.startedAt,
      zoneRefusal: (client) => this.transfers.zoneRefusal(client),
      traffic: () => this.responder.traffic,
      drainTimeout: () => this.config.tcp.idleTimeout,
    });
    await ops.listen();
    return ops;
  }

  private startCluster(cl: ClusterConfigResolved): void {
    const state = this.federation.addCluster(clusterSettings(this.config, cl));
    this.startSource(cl, state);
  }

  private startSource(cl: ClusterConfigResolved, state: ClusterState): void {
    const factory = sourceFactories[cl.source.type];
    if (!factory) throw new Error(`no source for type ${cl.source.type}`);
    const source = factory(state, cl, this.log.child({ cluster: cl.name }), this.config);
    this.sources.set(cl.name, { source, config: JSON.stringify(cl.source) });
    void Promise.resolve(source.start()).catch((e) => this.log.error({ err: e, cluster: cl.name }, 'cluster source failed to start'));
  }

  private async stopCluster(name: string): Promise<void> {
    const s = this.sources.get(name);
    this.sources.delete(name);
    this.federation.removeCluster(name);
    if (s) await s.source.stop();
  }

  /**
   * Tells every source the new selection policy (the kube source starts or stops its ServiceExport
   * watch), and waits, bounded, until what the policy needs has been read.
   */
  private async applyPolicy(policy: Config['selection']['policy']): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), POLICY_WAIT_MS)));
    // A source that cannot list them is as one that has not yet: the policy applies all the same.
    const all = Promise.all(
      [...this.sources.entries()].map(([cluster, s]) =>
        Promise.resolve(s.source.setPolicy?.(policy)).catch((e: unknown) => this.log.error({ err: e, cluster, policy }, 'cannot apply the selection policy to the cluster source')),
      ),
    ).then(() => true);
    const done = await Promise.race([all, bound]);
    clearTimeout(timer);
    if (!done) this.log.warn({ policy, waitedMs: POLICY_WAIT_MS }, 'not every cluster has listed its ServiceExports yet; applying the new selection anyway');
  }

  /**
   * Applies a new, already validated configuration without dropping queries or data: settings
   * that change answers are applied to the clusters' data in place, and a source is replaced only
   * when its own settings changed (its cluster's data is served until the new source has read).
   * All or nothing: a reload that throws has left the running configuration in force.
   */
  async reload(next: Config): Promise<void> {
    const prev = this.config;
    // The clusterset zone is set up at start (its listeners' zone choice, transfers, watches);
    // only its NOTIFY targets change on a reload.
    if (mcsNeedsRestart(prev, next)) {
      this.log.warn({ running: prev.mcs, configured: next.mcs }, 'mcs changed: it takes effect at the next restart');
      next = { ...next, mcs: { ...prev.mcs, notify: next.mcs.notify } };
    }
    // The file was validated with its own mcs; with the running one, its domain must still be
    // neither the clusterset zone nor inside it or around it (two zones with one apex: the
    // clusterset zone would answer every federation name NXDOMAIN).
    if (next.mcs.enabled) {
      const [a, b] = [next.mcs.domain, next.domain];
      if (isWithin(a, b) || isWithin(b, a))
        throw new ConfigError(next.file, [
          `domain: ${b} and the running mcs.domain ${a} must not be the same zone or one inside the other (mcs changes take effect at the next restart)`,
        ]);
    }
    // Everything that can fail is built first, without touching what runs (a rate-limit table
    // that cannot be allocated, an access list): a failure here leaves the server as it was.
    const policy = transferPolicy(next);
    const zoneOptions = zoneServingOptions(next);
    const clusterSetOptions = zoneServingOptions(next, true);
    const responderSettings = this.responderSettings(next, policy);
    const applyRateLimit = this.prepareRateLimit(next);
    const nextSettings = federationSettings(next);
    const nextClusterSettings = new Map(next.clusters.map((cl) => [cl.name, clusterSettings(next, cl)]));
    // After a reload that stopped part way, the running configuration is not what the clusters
    // run: every setting of the clusters' part is applied again, changed or not.
    const force = this.incomplete;
    const hostnamesChanged = force || JSON.stringify(prev.hostnames) !== JSON.stringify(next.hostnames);
    const resolver = hostnamesChanged ? dnsResolver(next.hostnames.resolvers) : undefined;
    for (const cl of next.clusters) if (!sourceFactories[cl.source.type]) throw new Error(`cluster ${cl.name}: no source for type ${cl.source.type}`);
    // Listeners next, all or nothing: a new ops address opens before the DNS listeners move, and
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
    // From here the running server changes. Should a step fail all the same, what the steps
    // before it applied is put back, last first, and the reload fails as a whole.
    const undo: (() => unknown)[] = [
      () => newOps?.close(),
      () => this.dns.listen(prev.listen),
    ];
    try {
      if (opsChanged) {
        const old = this.ops;
        undo.push(async () => {
          if (this.ops === old) return;
          await this.ops?.close();
          this.ops = await this.openOps(prev);
        });
        await old?.close();
        this.ops = undefined;
        // Same address (only readyTimeout changed) or turned off: reopened here, or not at all.
        this.ops = opsMoves ? newOps : await this.openOps(next);
      }
      // "exported" applies once the clusters have listed their ServiceExports, so that exported
      // services do not vanish meanwhile; away from it, the watches stop once it no longer applies.
      if (prev.selection.policy !== next.selection.policy && next.selection.policy === 'exported') {
        undo.push(() => this.applyPolicy(prev.selection.policy));
        await this.applyPolicy(next.selection.policy);
      }
      undo.push(() => {
        this.zoneServing.reconfigure(zoneServingOptions(prev));
        this.clusterSetServing?.reconfigure(zoneServingOptions(prev, true));
      });
      this.zoneServing.reconfigure(zoneOptions);
      this.clusterSetServing?.reconfigure(clusterSetOptions);
      const r = this.responder;
      const running: ResponderSettings = { queryAcl: r.queryAcl, tsigKeys: r.tsigKeys, identity: prev.identity, traffic: r.traffic };
      undo.push(() => this.applyResponderSettings(running));
      this.applyResponderSettings(responderSettings);
      undo.push(() => this.dns.setLimits(prev.tcp));
      this.dns.setLimits(next.tcp);
      const queryLog = this.queryLog;
      undo.push(() => (this.queryLog = queryLog));
      if (next.log.queries !== prev.log.queries) this.queryLog = next.log.queries ? this.log.child({ component: 'query' }) : undefined;
      // Last: it cannot fail, and puts back nothing.
      applyRateLimit();
    } catch (e) {
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch (err) {
          this.log.error({ err }, 'reload failed, and part of the running configuration could not be put back; restart fedns');
        }
      }
      throw e;
    }
    // Every listener uses one UDP path, chosen at start.
    if (next.udp.batch !== prev.udp.batch) this.log.warn({ udp: this.dns.udpPath.path }, 'udp.batch changed: it takes effect at the next restart');
    if (next.answerCache.memory !== prev.answerCache.memory || next.answerCache.entries !== prev.answerCache.entries)
      this.log.warn({ running: prev.answerCache, configured: next.answerCache }, 'answerCache changed: it takes effect at the next restart');
    if (next.log.level !== prev.log.level) this.log.warn({ running: prev.log.level, configured: next.log.level }, 'log.level changed: it takes effect at the next restart');
    // The configuration in force says what runs: the next reload compares with that, and says
    // so again while the file still asks for another value, and nothing once it asks for this one.
    next = { ...next, udp: { ...next.udp, batch: prev.udp.batch }, answerCache: prev.answerCache, log: { ...next.log, level: prev.log.level } };
    const policyChanged = force || prev.selection.policy !== next.selection.policy;
    const toExported = prev.selection.policy !== next.selection.policy && next.selection.policy === 'exported';
    // The clusters' part applies settings built above; from here the reload is in force.
    this.config = next;
    this.incomplete = true;
    try {
      await this.reloadClusters(prev, next, nextClusterSettings, nextSettings, resolver, policyChanged && !toExported, force);
    } catch (e) {
      throw new ReloadIncomplete(e);
    }
    this.incomplete = false;
    this.log.info({ file: next.file, clusters: next.clusters.length }, 'configuration reloaded');
  }

  /** The part of a reload that applies to the clusters, once the new configuration is in force. */
  private async reloadClusters(
    prev: Config,
    next: Config,
    nextClusterSettings: Map<string, ClusterSettings>,
    nextSettings: FederationSettings,
    resolver: ResolveHostname | undefined,
    applyPolicyAfter: boolean,
    force: boolean,
  ): Promise<void> {
    // Everything that changes answers is applied before the next rebuild, all at once.
    const nextByName = new Map(next.clusters.map((c) => [c.name, c]));
    const prevByName = new Map(prev.clusters.map((c) => [c.name, c]));
    const gone = [...this.sources.keys()].filter((name) => !nextByName.has(name));
    const replaced: ClusterConfigResolved[] = [];
    for (const name of gone) this.federation.removeCluster(name);
    for (const cl of next.clusters) {
      const state = this.federation.clusters.get(cl.name);
      const running = this.sources.get(cl.name);
      if (!state || !running) continue;
      state.reconfigure(nextClusterSettings.get(cl.name)!);
      // A region no longer configured is learned from the nodes, which a new source does.
      const regionDropped = prevByName.get(cl.name)?.region !== undefined && cl.region === undefined;
      if (running.config !== JSON.stringify(cl.source) || regionDropped) replaced.push(cl);
      // clientNetworks to or from auto starts or stops the node watch, in place (a new source would read everything again).
      else if (learnsNetworks(cl) !== learnsNetworks(prevByName.get(cl.name)))
        void Promise.resolve(running.source.setLearnNetworks?.(learnsNetworks(cl))).catch((e: unknown) => this.log.error({ err: e, cluster: cl.name }, 'cannot apply clientNetworks'));
    }
    if (resolver) this.federation.resolveHostnames(resolver, next.hostnames.refresh, this.log.child({ component: 'hostnames' }));
    // Zone-wide settings rebuild every service; a reload that leaves them alone costs nothing.
    if (force || JSON.stringify(nextSettings) !== JSON.stringify(federationSettings(prev))) this.federation.reconfigure(nextSettings);
    for (const cl of next.clusters) if (!this.sources.has(cl.name)) this.startCluster(cl);
    this.federation.rebuildSoon();
    if (applyPolicyAfter) await this.applyPolicy(next.selection.policy);
    for (const name of gone) await this.stopCluster(name);
    for (const cl of replaced) {
      const old = this.sources.get(cl.name)!;
      // The new configuration is in force by now: an old source that fails to stop is logged, not the reload's failure.
      await (async () => old.source.stop())().catch((e: unknown) => this.log.error({ err: e, cluster: cl.name }, 'cannot stop the replaced cluster source'));
      this.log.info({ cluster: cl.name }, 'cluster source settings changed; reading the cluster anew, serving its last data meanwhile');
      this.startSource(cl, this.federation.clusters.get(cl.name)!);
    }
  }

  async stop(graceMs = 2000): Promise<void> {
    this.zoneServing.notifier.close();
    this.clusterSetServing?.notifier.close();
    await this.ops?.close();
    await this.dns.close(graceMs);
    for (const name of [...this.sources.keys()]) await this.stopCluster(name);
    this.federation.close();
    // Nothing is served any more: the next run continues from the serials served last.
    this.zoneServing.saveServedSerial();
    this.clusterSetServing?.saveServedSerial();
  }
}

