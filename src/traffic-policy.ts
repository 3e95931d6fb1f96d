// Traffic policies: their names, the Service annotations that choose them, and how the annotations
// read. Shared by the configuration, the cluster objects (which validate what tenants write) and
// the zone (which answers by them). README, "Traffic policy".

export const TRAFFIC_POLICIES = ['all', 'nearest', 'failover', 'weighted'] as const;
export type TrafficPolicy = (typeof TRAFFIC_POLICIES)[number];

export const POLICY_ANNOTATION = 'fedns.io/policy';
export const FAILOVER_ANNOTATION = 'fedns.io/failover';
export const WEIGHTS_ANNOTATION = 'fedns.io/weights';
export const MAX_ADDRESSES_ANNOTATION = 'fedns.io/max-addresses';

/** Most clusters a failover or weights annotation may name. */
export const MAX_POLICY_CLUSTERS = 64;
/** Largest weight: the sum of 64 of them stays an exact integer far below 2^53. */
export const MAX_WEIGHT = 1_000_000;
/** Largest address cap (an answer of 1000 A records is already past any UDP size). */
export const MAX_ADDRESSES = 1000;

/** What a Service's annotations ask for; absent fields were not annotated (or not valid). */
export interface TrafficAnnotations {
  policy?: TrafficPolicy;
  /** Cluster names, in failover order. */
  failover?: string[];
  /** [cluster, weight] pairs, in the order written. */
  weights?: [string, number][];
  maxAddresses?: number;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** "nearest" -> the policy; undefined when it is none of them. */
export function parsePolicy(text: string): TrafficPolicy | undefined {
  const t = text.trim().toLowerCase();
  return (TRAFFIC_POLICIES as readonly string[]).includes(t) ? (t as TrafficPolicy) : undefined;
}

/** "alpha,bravo, charlie" -> cluster names; undefined when a name is not a DNS label, repeats, or there are too many. */
export function parseFailover(text: string): string[] | undefined {
  const names = text.split(',').map((s) => s.trim().toLowerCase());
  if (names.length === 0 || names.length > MAX_POLICY_CLUSTERS) return undefined;
  if (!names.every((n) => LABEL.test(n))) return undefined;
  return new Set(names).size === names.length ? names : undefined;
}

/** "alpha=3,bravo=1" -> pairs; undefined when any part is not CLUSTER=WHOLE-NUMBER (0..1,000,000) or a cluster repeats. */
export function parseWeights(text: string): [string, number][] | undefined {
  const parts = text.split(',');
  if (parts.length === 0 || parts.length > MAX_POLICY_CLUSTERS) return undefined;
  const out: [string, number][] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const m = /^\s*([a-z0-9-]{1,63})\s*=\s*(\d{1,7})\s*$/i.exec(part);
    if (!m) return undefined;
    const name = m[1].toLowerCase();
    const weight = Number(m[2]);
    if (!LABEL.test(name) || weight > MAX_WEIGHT || seen.has(name)) return undefined;
    seen.add(name);
    out.push([name, weight]);
  }
  return out;
}

/** "8" -> 8; undefined unless a whole number from 1 to MAX_ADDRESSES. */
export function parseMaxAddresses(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,4}$/.test(t)) return undefined;
  const n = Number(t);
  return n >= 1 && n <= MAX_ADDRESSES ? n : undefined;
}

/** Where a client is, as the traffic policies see it. */
export interface ClientPlace {
  /** The member cluster whose networks the client is in. */
  cluster?: string;
  region?: string;
  /** The zones of the client's cluster, or the client's own zone. */
  zones: readonly string[];
  /** How the client was identified, for explain: "cluster alpha (10.8.0.0/14)", "clients[0] (192.0.2.0/24)". */
  via: string;
}
