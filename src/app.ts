// The running server: configuration -> federation, cluster sources, DNS listeners.
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import type { ClusterConfig as ClusterConfigResolved } from './config/schema.js';
import { keyToName } from './wire/name.js';
import { FileClusterSource } from './cluster/files.js';
import { KubeClusterSource } from './cluster/kube.js';
import type { ClusterSource } from './cluster/source.js';
import type { ClusterSettings, ClusterState } from './cluster/state.js';
import { DnsServer } from './server/server.js';
import { chooseUdpPath } from './server/udp-batch.js';
import { ResponseRateLimiter, type RateLimitSettings } from './server/rrl.js';
import { Responder, type QueryObserver } from './server/responder.js';
import { Federation, type FederationSettings } from './federation/federation.js';
import { parseLabelSelector } from './federation/selector.js';
import { dnsResolver } from './federation/hostnames.js';
import { typeName, rcodeName } from './wire/constants.js';
import { Metrics } from './ops/metrics.js';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';
import { AddressAcl } from './acl.js';
import { Journal } from './server/journal.js';
import { Notifier, type NotifyOptions } from './server/notify.js';
import type { TsigKey } from './wire/tsig.js';
import { serialLess, ZoneTransfers, type TransferPolicy } from './server/xfr.js';
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

export function notifyOptions(c: Config): NotifyOptions {
  return {
    // Only the transfer primary tells secondaries about its serials.
    targets: notPrimary(c) ? [] : c.transfer.notify,
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

/** Serials reserved on disk at a time (transfer.serialFile): one write per this many changes at most. */
const SERIAL_RESERVE = 1000;

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

/** Longest a reload waits for clusters to read what a new selection policy needs. */
const POLICY_WAIT_MS = 10_000;

export function registerSource(type: string, factory: SourceFactory): void {
  sourceFactories[type] = factory;
}

/** Loads every member cluster once, without serving: for `fedns zone` and `fedns check`. */
export async function loadFederation(config: Config, log: Logger): Promise<Federation> {
  const fed = new Federation(federationSettings(config), log.child({ component: 'federation' }));
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
    this.federation = new Federation(
      { ...federationSettings(config), initialSerial: saved === undefined ? undefined : nextSerial(saved) },
      log.child({ component: 'federation' }),
    );
    this.metrics = new Metrics(
      () => this.federation,
      () => ({ hits: this.responder.cacheHits, misses: this.responder.cacheMisses, errors: this.responder.answerErrors }),
    );
    const metrics = this.metrics;
    this.queryLog = config.log.queries ? log.child({ component: 'query' }) : undefined;
    const observe: QueryObserver = (transport, qtype, rcode, q) => {
      metrics.query(transport, qtype, rcode);
      observer?.(transport, qtype, rcode, q);
      this.queryLog?.info({ transport, qname: q?.key ? keyToName(q.key) : undefined, qtype: typeName(qtype), rcode: rcodeName(rcode) }, 'query');
    };
    const answerLog = log.child({ component: 'responder' });
    this.responder = new Responder(() => this.federation.snapshot, { observer: observe, log: answerLog });
    this.dns = new DnsServer(this.responder, config.tcp, log);
    this.dns.onLatency = (transport, seconds) => metrics.latency.observe(transport === 'udp' ? 0 : 1, seconds);
    this.configureRateLimit(config);
    metrics.rateLimit(() => this.rrl?.counts);
    metrics.udp(() => this.dns.udpPath.path, () => this.dns.udpStats());
    this.journal = new Journal(config.transfer.journal.deltas, config.transfer.journal.records);
    const policy = transferPolicy(config);
    this.transfers = new ZoneTransfers(policy, () => this.federation.snapshot, this.journal, log.child({ component: 'xfr' }), (type, result) =>
      metrics.transfers.inc({ type, result }),
    );
    this.responder.transferHandler = (q, msg, conn, remote, responder) => this.transfers.handle(q, msg, conn, remote, responder);
    this.configureResponder(config, policy);
    this.notifier = new Notifier(notifyOptions(config), () => this.federation.snapshot, log.child({ component: 'notify' }), (result, rcode) =>
      metrics.notifies.inc(rcode ? { result, rcode } : { result }),
    );
    this.reserveSerial(this.federation.snapshot.serial);
    let lastSerial = this.federation.snapshot.serial;
    let lastSoa = this.federation.snapshot.soa;
    this.federation.on('published', (snap, change) => {
      if (snap.serial === lastSerial) return;
      // A new domain is a new zone: no IXFR delta leads into it from the old one.
      if (snap.domain !== lastSoa.name) this.journal.clear();
      else this.journal.add(lastSerial, snap.serial, change, lastSoa);
      lastSerial = snap.serial;
      lastSoa = snap.soa;
      this.reserveSerial(snap.serial);
      this.notifier.changed();
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

  /** One log line per query (log.queries), or undefined; a reload turns it on or off. */
  private queryLog?: Logger;

  /** The serial the file on disk is ahead of: serials up to it may be published without a write. */
  private reservedSerial = 0;

  /**
   * Keeps transfer.serialFile ahead of every serial published: before a serial past the last
   * reservation is served, SERIAL_RESERVE more are reserved on disk (a synchronous, atomic write).
   * A run that ends in any way, a crash included, restarts past every serial it served, so a
   * secondary never sees an older serial, or one it had with other contents.
   */
  private reserveSerial(serial: number): void {
    const file = this.config.transfer.serialFile;
    if (!file || (this.reservedSerial && !serialLess(this.reservedSerial, serial))) return;
    const reserved = (serial + SERIAL_RESERVE) >>> 0 || 1;
    // Tried again (and logged) once the serial passes this reservation, not at every change.
    this.reservedSerial = reserved;
    try {
      writeFileAtomic(file, `${reserved}\n`);
    } catch (e) {
      this.log.error({ err: e, file }, 'cannot save the SOA serial');
    }
  }

  async start(): Promise<void> {
    // Before anything starts: udp.batch on without the addon is a start-up error.
    this.dns.udpPath = chooseUdpPath(this.config.udp.batch);
    this.log.info({ udp: this.dns.udpPath.path, reason: this.dns.udpPath.reason }, `UDP path: ${this.dns.udpPath.path}`);
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

  /** Turns rate limiting on, off or to new settings (a change starts from an empty table). */
  private configureRateLimit(c: Config): void {
    const settings = rateLimitSettings(c);
    if (settings && !this.rrl) this.rrl = new ResponseRateLimiter(settings);
    else if (settings && JSON.stringify(c.rateLimit) !== JSON.stringify(this.config.rateLimit)) this.rrl!.configure(settings);
    this.dns.rrl = settings ? this.rrl : undefined;
  }

  private async openOps(c: Config): Promise<OpsServer | undefined> {
    if (!c.ops.listen) return undefined;
    const ops = new OpsServer(() => this.federation, this.metrics, this.log, {
      ...c.ops.listen,
      readyDeadline: c.ops.readyTimeout,
      startedAt: this.startedAt,
      zoneRefusal: (client) => this.transfers.zoneRefusal(client),
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
    const all = Promise.all([...this.sources.values()].map((s) => s.source.setPolicy?.(policy))).then(() => true);
    const done = await Promise.race([all, bound]);
    clearTimeout(timer);
    if (!done) this.log.warn({ policy, waitedMs: POLICY_WAIT_MS }, 'not every cluster has listed its ServiceExports yet; applying the new selection anyway');
  }

  /**
   * Applies a new, already validated configuration without dropping queries or data: settings
   * that change answers are applied to the clusters' data in place, and a source is replaced only
   * when its own settings changed (its cluster's data is served until the new source has read).
   */
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
    // "exported" applies once the clusters have listed their ServiceExports, so that exported
    // services do not vanish meanwhile; away from it, the watches stop once it no longer applies.
    const policyChanged = prev.selection.policy !== next.selection.policy;
    const toExported = policyChanged && next.selection.policy === 'exported';
    if (toExported) await this.applyPolicy(next.selection.policy);
    const policy = transferPolicy(next);
    this.transfers.setPolicy(policy);
    this.configureResponder(next, policy);
    this.notifier.setOptions(notifyOptions(next));
    this.dns.setLimits(next.tcp);
    this.journal.setLimits(next.transfer.journal.deltas, next.transfer.journal.records);
    // Every listener uses one UDP path, chosen at start.
    if (next.udp.batch !== prev.udp.batch) this.log.warn({ udp: this.dns.udpPath.path }, 'udp.batch changed: it takes effect at the next restart');
    if (next.log.level !== prev.log.level) this.log.warn({ running: prev.log.level, configured: next.log.level }, 'log.level changed: it takes effect at the next restart');
    if (next.log.queries !== prev.log.queries) this.queryLog = next.log.queries ? this.log.child({ component: 'query' }) : undefined;
    this.configureRateLimit(next);
    this.config = next;
    if (next.transfer.serialFile !== prev.transfer.serialFile) {
      // A new file starts ahead of the serial served now.
      this.reservedSerial = 0;
      this.reserveSerial(this.federation.snapshot.serial);
    }
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
      state.reconfigure(clusterSettings(next, cl));
      // A region no longer configured is learned from the nodes, which a new source does.
      const regionDropped = prevByName.get(cl.name)?.region !== undefined && cl.region === undefined;
      if (running.config !== JSON.stringify(cl.source) || regionDropped) replaced.push(cl);
    }
    if (JSON.stringify(prev.hostnames) !== JSON.stringify(next.hostnames))
      this.federation.resolveHostnames(dnsResolver(next.hostnames.resolvers), next.hostnames.refresh, this.log.child({ component: 'hostnames' }));
    // Zone-wide settings rebuild every service; a reload that leaves them alone costs nothing.
    const settings = federationSettings(next);
    if (JSON.stringify(settings) !== JSON.stringify(federationSettings(prev))) this.federation.reconfigure(settings);
    for (const cl of next.clusters) if (!this.sources.has(cl.name)) this.startCluster(cl);
    this.federation.rebuildSoon();
    if (policyChanged && !toExported) await this.applyPolicy(next.selection.policy);
    for (const name of gone) await this.stopCluster(name);
    for (const cl of replaced) {
      const old = this.sources.get(cl.name)!;
      await old.source.stop();
      this.log.info({ cluster: cl.name }, 'cluster source settings changed; reading the cluster anew, serving its last data meanwhile');
      this.startSource(cl, this.federation.clusters.get(cl.name)!);
    }
    this.log.info({ file: next.file, clusters: next.clusters.length }, 'configuration reloaded');
  }

  async stop(graceMs = 2000): Promise<void> {
    this.notifier.close();
    await this.ops?.close();
    await this.dns.close(graceMs);
    for (const name of [...this.sources.keys()]) await this.stopCluster(name);
    this.federation.close();
    // Nothing is served any more: the next run continues from the serial served last rather
    // than from the reservation (only a crash skips the serials reserved).
    const file = this.config.transfer.serialFile;
    if (file && this.reservedSerial) {
      try {
        writeFileAtomic(file, `${this.federation.snapshot.serial}\n`);
      } catch (e) {
        this.log.error({ err: e, file }, 'cannot save the SOA serial');
      }
    }
  }
}

