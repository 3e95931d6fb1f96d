// Load balancers that publish a hostname (status.loadBalancer.ingress[].hostname, as AWS ELBs
// do) instead of an IP. Federation v1 resolved them once and served the result forever; fedns
// re-resolves every hostname periodically and rebuilds the services whose addresses moved.
import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';

/** Addresses of a hostname; rejects when the answer is unknown (timeout, SERVFAIL). */
export type ResolveHostname = (hostname: string) => Promise<string[]>;

interface Entry {
  /** Undefined until a lookup has answered; [] when the name has no addresses (or no longer exists). */
  addresses?: string[];
  /** Federated services ("ns/name") whose load balancer has this hostname. */
  services: Set<string>;
}

/** Resolution through DNS servers (IP or IP:port), or the system's when none are given. */
export function dnsResolver(servers: string[]): ResolveHostname {
  const r = new Resolver({ timeout: 2000, tries: 2 });
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
  /** Bumped by reconfigure: answers of the old resolvers that arrive later are dropped. */
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
      this.entries.set(h, (e = { services: new Set() }));
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
      void this.refresh((e) => e.addresses === undefined);
    });
  }

  /** Re-resolves hostnames (all, or those matching `which`). */
  async refresh(which: (e: Entry) => boolean = () => true): Promise<void> {
    const dirty = new Set<string>();
    const generation = this.generation;
    await Promise.all(
      [...this.entries].filter(([, e]) => which(e)).map(async ([host, e]) => {
        let addrs: string[];
        try {
          addrs = await this.resolve(host);
          if (generation !== this.generation) return;
        } catch (err) {
          if (generation !== this.generation) return;
          // Keep the last known addresses: an unanswered lookup is not an empty answer.
          this.log.warn({ hostname: host, err: (err as Error).message }, 'load-balancer hostname not resolved; keeping its last addresses');
          return;
        }
        if (e.addresses !== undefined && addrs.join(',') === e.addresses.join(',')) return;
        this.log.info({ hostname: host, addresses: addrs, previous: e.addresses }, 'load-balancer hostname resolves to new addresses');
        e.addresses = addrs;
        for (const s of e.services) dirty.add(s);
      }),
    );
    if (dirty.size) this.changed(dirty);
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
    this.generation++;
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
  }
}
