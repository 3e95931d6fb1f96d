// Per-client answers: which of a federated service's healthy addresses a client gets under its
// traffic policy (README, "Traffic policy"). The zone keeps every address (the `all` view that
// transfers carry); a name with a locality narrows its A/AAAA answers, and the addresses that
// follow its SRV records, to one choice. Everything here is a pure function of the service's
// address groups, its policy and where the client is, and plans are kept per client place, so
// the query path does a map lookup and a draw.
import type { ClientPlace, TrafficPolicy } from '../traffic-policy.js';

/** Addresses of one cluster that serve the same zones. */
export interface AddressGroup {
  cluster: string;
  region?: string;
  /** Zones these addresses serve (empty: none known). */
  zones: readonly string[];
  v4: readonly string[];
  v6: readonly string[];
}

export interface ServiceLocality {
  policy: TrafficPolicy;
  /** failover: clusters in order (the annotation's, else the configuration's). */
  order: readonly string[];
  /** weighted: cluster -> weight; a cluster not listed weighs 0. */
  weights: ReadonlyMap<string, number>;
  /** Most addresses of one family in one answer. */
  maxAddresses?: number;
  /** Healthy address groups, in the configuration's cluster order. */
  groups: readonly AddressGroup[];
}

/** Why a choice answers (bounded: metric label values). */
export const TIERS = ['all', 'unknown', 'cluster', 'zone', 'region', 'first', 'next', 'unlisted', 'weighted', 'zero-weight'] as const;
export type Tier = (typeof TIERS)[number];

/** One answer a client may get: its addresses cut into windows of at most maxAddresses. */
export interface Choice {
  tier: Tier;
  /** The cluster a failover or weighted choice is. */
  cluster?: string;
  /** Weight of a weighted draw (1 otherwise). */
  weight: number;
  /** Address set of each window (answers rotate through them). */
  windows: ReadonlySet<string>[];
  /** Answer-cache key of each window: the family and its addresses. */
  keys: string[];
  /** Every address of the choice, before the cut. */
  size: number;
  /** "policy tier": the metric this choice counts in. */
  counter: string;
}

/** What a client of one place may get for one family: one choice, or several drawn by weight. */
export interface Plan {
  choices: Choice[];
  /** Sum of the choices' weights. */
  total: number;
}

const NONE: Plan = { choices: [], total: 0 };

type Family = 4 | 6;

function addressesOf(g: AddressGroup, family: Family): readonly string[] {
  return family === 4 ? g.v4 : g.v6;
}

/**
 * The groups' addresses in spread order: one of each cluster in turn, and inside a cluster one of
 * each zone group in turn, so that any run of addresses spans as many clusters and zones as it can.
 */
export function spread(groups: readonly AddressGroup[], family: Family): string[] {
  const byCluster = new Map<string, string[][]>();
  for (const g of groups) {
    const list = addressesOf(g, family);
    if (list.length === 0) continue;
    let lists = byCluster.get(g.cluster);
    if (!lists) byCluster.set(g.cluster, (lists = []));
    lists.push([...list]);
  }
  const perCluster = [...byCluster.values()].map(interleave);
  return interleave(perCluster);
}

function interleave(lists: string[][]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++)
    for (const l of lists)
      if (i < l.length && !seen.has(l[i])) {
        seen.add(l[i]);
        out.push(l[i]);
      }
  return out;
}

function choice(policy: TrafficPolicy, tier: Tier, groups: readonly AddressGroup[], family: Family, max: number | undefined, cluster?: string, weight = 1): Choice | undefined {
  const all = spread(groups, family);
  if (all.length === 0) return undefined;
  const windows: Set<string>[] = [];
  if (max === undefined || all.length <= max) windows.push(new Set(all));
  else {
    // Windows of exactly `max` addresses, the last one wrapping round to the start.
    for (let start = 0; start < all.length; start += max) {
      const w = new Set<string>();
      for (let i = 0; i < max; i++) w.add(all[(start + i) % all.length]);
      windows.push(w);
    }
  }
  const keys = windows.map((w) => `${family}|${[...w].sort().join(',')}`);
  return { tier, cluster, weight, windows, keys, size: all.length, counter: `${policy} ${tier}` };
}

function has(g: AddressGroup, family: Family): boolean {
  return addressesOf(g, family).length > 0;
}

/** The plan of one service for clients of one place (undefined: unknown client) and one family. */
export function plan(loc: ServiceLocality, place: ClientPlace | undefined, family: Family): Plan {
  const groups = loc.groups.filter((g) => has(g, family));
  if (groups.length === 0) return NONE;
  const one = (c: Choice | undefined): Plan => (c ? { choices: [c], total: c.weight } : NONE);
  const max = loc.maxAddresses;
  const p = loc.policy;
  switch (loc.policy) {
    case 'all':
      return one(choice(p, 'all', groups, family, max));
    case 'nearest': {
      if (!place) return one(choice(p, 'unknown', groups, family, max));
      const tiers: [Tier, (g: AddressGroup) => boolean][] = [
        ['cluster', (g) => place.cluster !== undefined && g.cluster === place.cluster],
        ['zone', (g) => place.region !== undefined && g.region === place.region && g.zones.some((z) => place.zones.includes(z))],
        ['region', (g) => place.region !== undefined && g.region === place.region],
      ];
      for (const [tier, test] of tiers) {
        const mine = groups.filter(test);
        if (mine.length) return one(choice(p, tier, mine, family, max));
      }
      return one(choice(p, 'all', groups, family, max));
    }
    case 'failover': {
      for (let i = 0; i < loc.order.length; i++) {
        const mine = groups.filter((g) => g.cluster === loc.order[i]);
        if (mine.length) return one(choice(p, i === 0 ? 'first' : 'next', mine, family, max, loc.order[i]));
      }
      return one(choice(p, 'unlisted', groups, family, max));
    }
    case 'weighted': {
      const clusters = [...new Set(groups.map((g) => g.cluster))];
      const choices: Choice[] = [];
      for (const cl of clusters) {
        const weight = loc.weights.get(cl) ?? 0;
        if (weight <= 0) continue;
        const c = choice(p, 'weighted', groups.filter((g) => g.cluster === cl), family, max, cl, weight);
        if (c) choices.push(c);
      }
      if (choices.length === 0) return one(choice(p, 'zero-weight', groups, family, max));
      return { choices, total: choices.reduce((s, c) => s + c.weight, 0) };
    }
  }
}

/** The choice a draw in [0, 1) lands on. */
export function pick(p: Plan, draw: number): Choice | undefined {
  if (p.choices.length <= 1) return p.choices[0];
  let at = draw * p.total;
  for (const c of p.choices) {
    at -= c.weight;
    if (at < 0) return c;
  }
  return p.choices[p.choices.length - 1];
}

/**
 * Plans of services, per kind of client: kept with the locality object (which a rebuild of the
 * service replaces). Only `nearest` depends on the client, and then only on its cluster, region
 * and zones: places alike share a plan whatever object holds them (the client map makes new ones
 * at every rebuild), so a service has at most a few dozen plans.
 */
const plans = new WeakMap<ServiceLocality, Map<string, [Plan, Plan]>>();
const MAX_PLACES = 64;

/** What a nearest plan depends on, once per place object (the query path allocates nothing). */
const placeKeys = new WeakMap<ClientPlace, string>();
function placeKey(place: ClientPlace | undefined): string {
  if (!place) return '';
  let key = placeKeys.get(place);
  if (key === undefined) placeKeys.set(place, (key = `${place.cluster ?? ''}|${place.region ?? ''}|${place.zones.join(',')}`));
  return key;
}

/** plan(), remembered per service and kind of client: the query path calls this. */
export function planFor(loc: ServiceLocality, place: ClientPlace | undefined, family: Family): Plan {
  let byPlace = plans.get(loc);
  if (!byPlace) plans.set(loc, (byPlace = new Map()));
  const key = loc.policy === 'nearest' ? placeKey(place) : '';
  let pair = byPlace.get(key);
  if (!pair) {
    if (byPlace.size >= MAX_PLACES) byPlace.clear();
    pair = [plan(loc, place, 4), plan(loc, place, 6)];
    byPlace.set(key, pair);
  }
  return family === 4 ? pair[0] : pair[1];
}

/** Whether two localities answer alike (a rebuilt service with the same one keeps its cached answers). */
export function sameLocality(a: ServiceLocality | undefined, b: ServiceLocality | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return (
    a.policy === b.policy &&
    a.maxAddresses === b.maxAddresses &&
    a.order.length === b.order.length &&
    a.order.every((c, i) => c === b.order[i]) &&
    a.weights.size === b.weights.size &&
    [...a.weights].every(([c, w]) => b.weights.get(c) === w) &&
    a.groups.length === b.groups.length &&
    a.groups.every((g, i) => sameGroup(g, b.groups[i]))
  );
}

function sameGroup(a: AddressGroup, b: AddressGroup): boolean {
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.cluster === b.cluster && a.region === b.region && same(a.zones, b.zones) && same(a.v4, b.v4) && same(a.v6, b.v6);
}
