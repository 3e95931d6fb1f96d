// Prometheus metrics. Label sets are bounded: query types outside a fixed list count as "other",
// clusters are the configured ones. The query path only bumps integers; prom-client reads them
// when scraped.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FAILOVER_ANNOTATION, MAX_ADDRESSES_ANNOTATION, POLICY_ANNOTATION, WEIGHTS_ANNOTATION } from '../traffic-policy.js';

const TRAFFIC_ANNOTATIONS = [POLICY_ANNOTATION, FAILOVER_ANNOTATION, WEIGHTS_ANNOTATION, MAX_ADDRESSES_ANNOTATION];
import { HEALTH_STATES } from '../cluster/state.js';
import { rcodeName, RRType, typeName } from '../wire/constants.js';
import type { Transport } from '../server/responder.js';
import type { Federation } from '../federation/federation.js';
import { RRL_ACTIONS, RRL_KINDS } from '../server/rrl.js';
import type { UdpPath, UdpStats } from '../server/udp-batch.js';
import { VERSION } from '../version.js';

const TYPES = [RRType.A, RRType.AAAA, RRType.SRV, RRType.CNAME, RRType.SOA, RRType.NS, RRType.TXT, RRType.ANY, RRType.AXFR, RRType.IXFR, RRType.PTR, RRType.MX];
const TYPE_SLOT = new Map<number, number>(TYPES.map((t, i) => [t, i]));
const OTHER = TYPES.length;
const RCODES = 24;
const TRANSPORTS: Transport[] = ['udp', 'tcp'];

/**
 * A histogram for the query path: observing is a bucket search and three array writes, with no
 * label hashing. It registers with prom-client as an ordinary histogram.
 */
export class QueryHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly totals: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly labelValues: readonly L[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(labelValues.length * buckets.length);
    this.sums = new Float64Array(labelValues.length);
    this.totals = new Float64Array(labelValues.length);
    registry.registerMetric(this as never);
  }

  observe(labelIndex: number, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    if (i < b.length) this.counts[labelIndex * b.length + i]++;
    this.sums[labelIndex] += value;
    this.totals[labelIndex]++;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    this.labelValues.forEach((lv, li) => {
      if (this.totals[li] === 0) return;
      let acc = 0;
      this.buckets.forEach((le, bi) => {
        acc += this.counts[li * this.buckets.length + bi];
        values.push({ labels: { le, [this.labelName]: lv }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', [this.labelName]: lv }, value: this.totals[li], metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.labelName]: lv }, value: this.sums[li], metricName: `${this.name}_sum` });
      values.push({ labels: { [this.labelName]: lv }, value: this.totals[li], metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
    this.totals.fill(0);
  }
}

export class Metrics {
  readonly registry = new Registry();
  /** [transport][type slot][rcode] -> count since start. */
  private readonly counts = new Float64Array(TRANSPORTS.length * (OTHER + 1) * RCODES);
  private readonly reported = new Float64Array(this.counts.length);
  /** Response latency, by transport index (0 udp, 1 tcp). */
  readonly latency: QueryHistogram<Transport>;
  readonly programming: Histogram;
  readonly transfers: Counter<'zone' | 'type' | 'result'>;
  readonly notifies: Counter<'zone' | 'result' | 'rcode'>;
  private readonly reloads: Counter<'result'>;
  private readonly reloadOk: Gauge;

  constructor(
    federation: () => Federation,
    responder: () => { hits: number; misses: number; errors: number; traffic?: ReadonlyMap<string, number> },
  ) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'fedns_' });
    // Gauges named like counters, which `promtool check metrics` rejects; the per-type gauges
    // without the suffix (fedns_nodejs_active_handles{type} ...) stay, and sum to the same.
    for (const name of ['fedns_nodejs_active_handles_total', 'fedns_nodejs_active_requests_total', 'fedns_nodejs_active_resources_total']) registry.removeSingleMetric(name);
    const counts = this.counts;
    const reported = this.reported;
    new Counter({
      name: 'fedns_queries_total',
      help: 'DNS queries answered, by transport, query type and response code',
      labelNames: ['transport', 'type', 'rcode'],
      registers: [registry],
      collect() {
        for (let i = 0; i < counts.length; i++) {
          const delta = counts[i] - reported[i];
          if (delta === 0) continue;
          reported[i] = counts[i];
          const rcode = i % RCODES;
          const slot = Math.floor(i / RCODES) % (OTHER + 1);
          const transport = TRANSPORTS[Math.floor(i / (RCODES * (OTHER + 1)))];
          this.inc({ transport, type: slot === OTHER ? 'other' : typeName(TYPES[slot]), rcode: rcodeName(rcode) }, delta);
        }
      },
    });
    this.latency = new QueryHistogram(
      'fedns_response_seconds',
      'Time from receiving a query to handing its answer to the socket',
      'transport',
      TRANSPORTS,
      [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registry,
    );
    // Counters the query path keeps as plain numbers, brought up to date when scraped.
    const mirror = (name: string, help: string, read: () => number) => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const now = read();
          this.inc(now - seen);
          seen = now;
        },
      });
    };
    mirror('fedns_answer_cache_hits_total', 'Answers served from encoded bytes already in the answer cache', () => responder().hits);
    mirror('fedns_answer_cache_misses_total', 'Answers that had to be encoded', () => responder().misses);
    mirror('fedns_answer_errors_total', 'Exceptions while answering a query (a bug; each was answered SERVFAIL)', () => responder().errors);
    mirror('fedns_rebuild_errors_total', 'Exceptions while building a service\'s names (a bug; the service answered as before, marked stale)', () => federation().rebuildErrors);
    mirror('fedns_paced_rebuilds_total', 'Rebuilds of a service put off for its pace (its rebuilds take longer than a slice; its changes wait, merged), or for that of a paced service it would give a name or take one from', () => federation().pacedHolds);
    new Gauge({
      name: 'fedns_paced_services',
      help: 'Services rebuilt at most at their pace: their last two rebuilds each took longer than a slice (see the log line naming them)',
      registers: [registry],
      collect() {
        this.set(federation().pacedCount);
      },
    });
    const trafficSeen = new Map<string, number>();
    new Counter({
      name: 'fedns_policy_answers_total',
      help: 'Answers narrowed by a traffic policy, by policy and the tier that answered (cluster, zone, region, all, unknown, first, next, unlisted, weighted, zero-weight)',
      labelNames: ['policy', 'tier'],
      registers: [registry],
      collect() {
        for (const [key, n] of responder().traffic ?? []) {
          const [policy, tier] = key.split(' ');
          this.inc({ policy, tier }, n - (trafficSeen.get(key) ?? 0));
          trafficSeen.set(key, n);
        }
      },
    });
    new Gauge({
      name: 'fedns_policy_disagreements',
      help: 'Federated services whose copies in different clusters disagree on a traffic-policy annotation (see fedns explain)',
      labelNames: ['annotation'],
      registers: [registry],
      collect() {
        this.reset();
        const counts = new Map<string, number>(TRAFFIC_ANNOTATIONS.map((a) => [a, 0]));
        for (const list of federation().policyDisagreements.values()) for (const a of list) counts.set(a, (counts.get(a) ?? 0) + 1);
        for (const [annotation, n] of counts) this.set({ annotation }, n);
      },
    });
    new Gauge({
      name: 'fedns_cluster_health',
      help: 'Member cluster health: 1 for the current state',
      labelNames: ['cluster', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of federation().clusters.values()) for (const s of HEALTH_STATES) this.set({ cluster: c.name, state: s }, c.health === s ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fedns_cluster_data_age_seconds',
      help: 'Seconds since the cluster data was last confirmed (list, event or bookmark)',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const c of federation().clusters.values()) if (c.lastUpdate) this.set({ cluster: c.name }, (now - c.lastUpdate) / 1000);
      },
    });
    const restartsSeen = new WeakMap<object, number>();
    new Counter({
      name: 'fedns_cluster_watch_restarts_total',
      help: 'Watches or lists restarted after a failure, per cluster',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        for (const c of federation().clusters.values()) {
          const delta = c.watchRestarts - (restartsSeen.get(c) ?? 0);
          restartsSeen.set(c, c.watchRestarts);
          if (delta > 0) this.inc({ cluster: c.name }, delta);
        }
      },
    });
    new Gauge({
      name: 'fedns_cluster_services',
      help: 'Services seen in each member cluster',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of federation().clusters.values()) this.set({ cluster: c.name }, c.services.size);
      },
    });
    new Gauge({
      name: 'fedns_cluster_learned_networks',
      help: 'Client networks learned from the Node objects of each member cluster (clientNetworks: auto)',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of federation().clusters.values()) this.set({ cluster: c.name }, c.learnedNetworks.length);
      },
    });
    new Gauge({
      name: 'fedns_cluster_node_watch_up',
      help: 'Member clusters whose networks are learned from a node watch: 1 while it works, 0 while it fails (the networks last learned are kept)',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of federation().clusters.values()) if (c.nodeWatchProblem !== undefined) this.set({ cluster: c.name }, c.nodeWatchProblem ? 0 : 1);
      },
    });
    const ignoredSeen = new Map<string, number>();
    new Counter({
      name: 'fedns_ignored_objects_total',
      help: 'Values in member-cluster objects not used, by reason: a zone, region or hostname that is no DNS label, a bad port name or fedns.io/ttl, a name over 255 bytes, a node network that is no CIDR block or past a limit',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        for (const [reason, n] of federation().ignored.entries()) {
          this.inc({ reason }, n - (ignoredSeen.get(reason) ?? 0));
          ignoredSeen.set(reason, n);
        }
      },
    });
    // One series per zone served: the federation zone and, with mcs.enabled, the clusterset zone.
    const zones = () => [federation().snapshot, federation().clusterSetSnapshot].filter((z) => z !== undefined);
    new Gauge({
      name: 'fedns_zone_serial',
      help: 'SOA serial of each zone being served',
      labelNames: ['zone'],
      registers: [registry],
      collect() {
        this.reset();
        for (const z of zones()) this.set({ zone: z.domain }, z.serial);
      },
    });
    new Gauge({
      name: 'fedns_zone_records',
      help: 'Records in each zone being served',
      labelNames: ['zone'],
      registers: [registry],
      collect() {
        this.reset();
        for (const z of zones()) this.set({ zone: z.domain }, z.recordCount);
      },
    });
    this.programming = new Histogram({
      name: 'fedns_programming_latency_seconds',
      help: 'From a change in a member cluster (EndpointSlice last-change-trigger-time, or file time) to fedns answering with it',
      labelNames: ['cluster'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.transfers = new Counter({
      name: 'fedns_zone_transfers_total',
      help: 'Zone transfers by zone, type (AXFR, IXFR) and result',
      labelNames: ['zone', 'type', 'result'],
      registers: [registry],
    });
    this.notifies = new Counter({
      name: 'fedns_notifies_total',
      help: 'NOTIFY messages by zone and result (sent, acknowledged, rejected with the rcode, failed after every retry)',
      labelNames: ['zone', 'result', 'rcode'],
      registers: [registry],
    });
    new Gauge({
      name: 'fedns_build_info',
      help: 'Always 1; the fedns and Node.js versions running',
      labelNames: ['version', 'nodejs'],
      registers: [registry],
    }).set({ version: VERSION, nodejs: process.versions.node }, 1);
    this.reloads = new Counter({
      name: 'fedns_config_reloads_total',
      help: 'Configuration reloads (SIGHUP or file change) by result: applied, rejected (invalid file), failed (could not be applied)',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const result of ['applied', 'rejected', 'failed']) this.reloads.inc({ result }, 0);
    this.reloadOk = new Gauge({
      name: 'fedns_config_last_reload_successful',
      help: '1 when the last configuration reload was applied (or none was tried), 0 when it was rejected or failed',
      registers: [registry],
    });
    this.reloadOk.set(1);
  }

  /** Exports the rate limiter's counts of limited responses (read when scraped). */
  rateLimit(counts: () => Float64Array | undefined): void {
    let seen: Float64Array | undefined;
    new Counter({
      name: 'fedns_rrl_responses_total',
      help: 'UDP responses held back by response rate limiting, by response kind and action (dropped, or slipped: sent truncated)',
      labelNames: ['kind', 'action'],
      registers: [this.registry],
      collect() {
        const now = counts();
        if (!now) return;
        if (seen?.length !== now.length) seen = new Float64Array(now.length);
        for (let i = 0; i < now.length; i++) {
          this.inc({ kind: RRL_KINDS[i >> 1], action: RRL_ACTIONS[i & 1] }, now[i] - seen[i]);
          seen[i] = now[i];
        }
      },
    });
  }

  /** Exports which UDP path answers, and what the batched path's sockets counted (read when scraped). */
  udp(path: () => UdpPath, stats: () => UdpStats): void {
    new Gauge({
      name: 'fedns_udp_path',
      help: 'Always 1, labelled with the UDP path answering: batched (native recvmmsg/sendmmsg) or dgram (node:dgram)',
      labelNames: ['path'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.set({ path: path() }, 1);
      },
    });
    const seen = { dropped: 0, sendErrors: 0 };
    new Counter({
      name: 'fedns_udp_answers_dropped_total',
      help: 'UDP answers the batched path did not send, by reason: send_buffer_full (dropped, as authoritative servers do) or send_error',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        const s = stats();
        this.inc({ reason: 'send_buffer_full' }, s.dropped - seen.dropped);
        this.inc({ reason: 'send_error' }, s.sendErrors - seen.sendErrors);
        seen.dropped = s.dropped;
        seen.sendErrors = s.sendErrors;
      },
    });
  }

  /** Counts a configuration reload; the running configuration is the new one only when applied. */
  configReload(result: 'applied' | 'rejected' | 'failed'): void {
    this.reloads.inc({ result });
    this.reloadOk.set(result === 'applied' ? 1 : 0);
  }

  /** Counts one answered query; called on the query path, so it only bumps an integer. */
  query(transport: Transport, qtype: number, rcode: number): void {
    const slot = TYPE_SLOT.get(qtype) ?? OTHER;
    this.counts[((transport === 'udp' ? 0 : 1) * (OTHER + 1) + slot) * RCODES + (rcode < RCODES ? rcode : 0)]++;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
