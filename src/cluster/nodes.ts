// The Node objects of one member cluster, as far as clientNetworks: auto needs them: each node's
// networks (pod CIDRs, InternalIPs) and region label. Sources (kube: a node watch; files: Node
// manifests) hand nodes over; on flush, the union of their networks, bounded, becomes the
// cluster's learnedNetworks.
import { isDeepStrictEqual } from 'node:util';
import type { SlimNode } from './objects.js';
import type { ClusterState } from './state.js';

/** Most networks one cluster contributes: past it, the rest (in sort order) are ignored and reported. */
export const MAX_LEARNED_NETWORKS = 10_000;

export class NodeNetworks {
  private readonly nodes = new Map<string, SlimNode>();
  private dirty = false;
  /** Networks left out for the limit at the last flush (reported when it changes). */
  private overLimit = 0;
  private lastPublish = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly state: ClusterState,
    private readonly limit = MAX_LEARNED_NETWORKS,
    /**
     * Publishes at most once per this many ms (the first change at once): a burst of node events
     * (a cluster scaling up) costs one union and one client map per interval, not one per event.
     */
    private readonly minIntervalMs = 0,
  ) {}

  get size(): number {
    return this.nodes.size;
  }

  /** A node added or changed; values it had that fedns does not use are reported when it changes. */
  upsert(node: SlimNode): void {
    if (isDeepStrictEqual(this.nodes.get(node.name), node)) return;
    this.nodes.set(node.name, node);
    this.dirty = true;
    if (node.ignored) this.state.nodeValuesIgnored(node.name, node.ignored);
  }

  remove(name: string): void {
    if (this.nodes.delete(name)) this.dirty = true;
  }

  /** Every node of the cluster (a complete list), applied as a difference. */
  replace(nodes: Iterable<SlimNode>): void {
    const keep = new Set<string>();
    for (const n of nodes) {
      keep.add(n.name);
      this.upsert(n);
    }
    for (const name of [...this.nodes.keys()]) if (!keep.has(name)) this.remove(name);
  }

  /** Hands the union of the nodes' networks to the cluster, when a node changed since the last flush. */
  flush(): void {
    if (!this.dirty || this.timer) return;
    const wait = this.lastPublish + this.minIntervalMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, wait);
      this.timer.unref();
      return;
    }
    this.lastPublish = Date.now();
    this.dirty = false;
    const all = new Set<string>();
    for (const n of this.nodes.values()) for (const net of n.networks) all.add(net);
    const sorted = [...all].sort();
    const over = Math.max(0, sorted.length - this.limit);
    if (over && over !== this.overLimit) {
      this.state.nodeValuesIgnored(`${over} networks over the limit of ${this.limit}`, [{ reason: 'network limit', value: sorted.slice(this.limit, this.limit + 5).join(',') }]);
    }
    this.overLimit = over;
    this.state.setLearnedNetworks(over ? sorted.slice(0, this.limit) : sorted);
  }

  /** Forgets every node; the cluster has no learned networks any more. */
  clear(): void {
    this.stop();
    this.nodes.clear();
    this.dirty = false;
    this.overLimit = 0;
    this.state.setLearnedNetworks([]);
  }

  /** Drops a publication still waiting (the source stops). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The region most nodes are labelled with (ties: the first by name), and how many nodes say so. */
  region(): { region: string; nodes: number } | undefined {
    return mostCommonRegion(this.nodes.values());
  }
}

/** The region label most of these nodes carry (ties: the first by name). */
export function mostCommonRegion(nodes: Iterable<{ region?: string }>): { region: string; nodes: number } | undefined {
  const counts = new Map<string, number>();
  for (const n of nodes) if (n.region) counts.set(n.region, (counts.get(n.region) ?? 0) + 1);
  const best = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  return best && { region: best[0], nodes: best[1] };
}
