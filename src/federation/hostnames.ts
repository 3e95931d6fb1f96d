// Load balancers that publish a hostname (status.loadBalancer.ingress[].hostname, as AWS ELBs
// do) instead of an IP. Federation v1 resolved them once and served the result forever; fedns
// re-resolves every hostname periodically and rebuilds the services whose addresses moved.
import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';

/** Addresses of a hostname; rejects when the answer is unknown (timeout, SERVFAIL). */
export type ResolveHostname = (hostname: string) => Promise<string[]>;

interface Entry {
  /** Undefined until a lookup has answered; [] when the name has no addresses (or no longer exists). */
  addresses?: string[];
  /** Federated services ("ns/name") whose load balancer has this hostname. */
  services: Set<string>;
  /** A lookup has started (answered or not): a failed one waits for the next refresh, not for the next new hostname. */
  tried: boolean;
  /** The lookup under way: a refresh that wants this hostname waits for it rather than asking again. */
  lookup?: Promise<void>;
}

/** Hostnames a warning about failed lookups names, at most (it counts the others). */
const EXAMPLES = 5;

/** Resolution through DNS servers (IP or IP:port), or the system's when none are given. */
export function dnsResolver(servers: string[]): ResolveHostname {
  const r = new Resolver({ timeout: 2000, tries: 2 });
  // Port 0 fails an assertion inside Node.js's resolver, which aborts the process rather than
  // throw: refused here too, whoever calls (the configuration refuses it first).
  const zero = servers.find((s) => /:0+$/.test(s) && isIP(s) === 0);
  if (zero !== undefined) throw new Error(`resolver ${zero}: port 0 is no DNS server`);
  if (servers.length) r.setServers(servers);
  return async (hostname) => {
    const results = await Promise.allSettled([r.resolve4(hostname), r.resolve6(hostname)]);
    const addrs: string[] = [];
    let known = false;
    for (const res of results) {
      if (res.status === 'fulfilled') {
        known = true;
        addrs.push(...res.value);
      } else {
        const code = (res.reason as NodeJS.ErrnoException).code;
        // The name or the type does not exist: a definite answer (no addresses), not a failure.
        if (code === 'ENOTFOUND' || code === 'ENODATA') known = true;
      }
    }
    if (!known) throw new Error(`cannot resolve ${hostname}: ${(results.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason}`);
    return addrs.sort();
  };
}

export class HostnameAddresses {
  private readonly entries = new Map<string, Entry>();
  /** Service -> the hostnames its last build used. */
  private readonly used = new Map<string, Set<string>>();
  private timer?: NodeJS.Timeout;
  private pending?: NodeJS.Immediate;
  /** Bumped by reconfigure and stop: answers of lookups started before that arrive later are dropped. */
  private generation = 0;

  constructor(
    private resolve: ResolveHostname,
    private refreshMs: number,
    /** Services whose hostname addresses changed. */
    private readonly changed: (services: Set<string>) => void,
    private readonly log: Logger,
  ) {}

  /** Last known addresses of `hostname`, undefined before any lookup answered; a new hostname is resolved right away. */
  addresses(hostname: string): string[] | undefined {
    const h = hostname.toLowerCase();
    let e = this.entries.get(h);
    if (!e) {
      this.entries.set(h, (e = { services: new Set(), tried: false }));
      this.resolveSoon();
    }
    return e.addresses;
  }

  /** Records which hostnames a service's last build used; hostnames nobody uses are dropped. */
  use(service: string, hostnames: Set<string>): void {
    const now = new Set([...hostnames].map((h) => h.toLowerCase()));
    for (const h of this.used.get(service) ?? []) {
      if (now.has(h)) continue;
      const e = this.entries.get(h);
      e?.services.delete(service);
      if (e && e.services.size === 0) this.entries.delete(h);
    }
    for (const h of now) this.entries.get(h)?.services.add(service);
    if (now.size) this.used.set(service, now);
    else this.used.delete(service);
  }

  private resolveSoon(): void {
    this.pending ??= setImmediate(() => {
      this.pending = undefined;
      // Hostnames never looked up: one that failed is asked again by the next refresh, not by
      // every batch of new ones (a list of hundreds came in batches and asked the first ones each time).
      void this.refresh((e) => !e.tried);
    });
  }

  /**
   * Re-resolves hostnames (all, or those matching `which`); a hostname whose lookup is under way
   * is waited for, not asked again, so a round asks each hostname once however many rounds
   * overlap. They are asked at once, not in turns: a turn would make one tenant's hostnames that
   * never answer hold up every other's (and the hostnames are those the held cluster objects
   * name, no more). Failures are summed up in one warning per round: a resolver that is down
   * fails every hostname.
   */
  async refresh(which: (e: Entry) => boolean = () => true): Promise<void> {
    const dirty = new Set<string>();
    const failed: string[] = [];
    const generation = this.generation;
    const waits: Promise<void>[] = [];
    for (const [host, e] of this.entries) {
      if (!which(e)) continue;
      if (e.lookup) {
        waits.push(e.lookup);
        continue;
      }
      e.tried = true;
      const lookup = this.lookUp(host, e, generation, dirty, failed);
      e.lookup = lookup;
      waits.push(lookup);
      void lookup.finally(() => {
        if (e.lookup === lookup) e.lookup = undefined;
      });
    }
    await Promise.all(waits);
    if (failed.length) {
      // Keep the last known addresses: an unanswered lookup is not an empty answer.
      this.log.warn(
        { hostnames: failed.length, examples: failed.slice(0, EXAMPLES) },
        'load-balancer hostnames not resolved; keeping their last addresses',
      );
    }
    if (dirty.size) this.changed(dirty);
  }

  /** One hostname's lookup; never rejects. Its answer is dropped after stop() or new resolvers, or once no service uses the hostname. */
  private async lookUp(host: string, e: Entry, generation: number, dirty: Set<string>, failed: string[]): Promise<void> {
    let addrs: string[];
    try {
      addrs = await this.resolve(host);
    } catch (err) {
      if (generation === this.generation && this.entries.get(host) === e) failed.push(`${host}: ${(err as Error).message}`);
      return;
    }
    if (generation !== this.generation || this.entries.get(host) !== e) return;
    if (e.addresses !== undefined && addrs.join(',') === e.addresses.join(',')) return;
    this.log.info({ hostname: host, addresses: addrs, previous: e.addresses }, 'load-balancer hostname resolves to new addresses');
    e.addresses = addrs;
    for (const s of e.services) dirty.add(s);
  }


  /** Resolves, now, every hostname no lookup has answered yet (one-shot use: `fedns zone`). */
  async settle(): Promise<void> {
    if (this.pending) {
      clearImmediate(this.pending);
      this.pending = undefined;
    }
    await this.refresh((e) => e.addresses === undefined);
  }

  /** New resolvers or refresh interval: every hostname is resolved again, its addresses kept meanwhile. */
  reconfigure(resolve: ResolveHostname, refreshMs: number): void {
    this.resolve = resolve;
    this.refreshMs = refreshMs;
    // Lookups through the old resolvers still under way are not waited for: stop() drops their answers.
    for (const e of this.entries.values()) e.lookup = undefined;
    this.stop();
    this.pending = undefined;
    this.start();
    void this.refresh();
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearImmediate(this.pending);
    // Lookups under way end unheard: no service changes after stop.
    this.generation++;
  }
}
