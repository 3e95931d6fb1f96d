// Who is asking: client networks -> where the client is (its member cluster, region and zones),
// for the traffic policies. The most specific network wins (longest prefix). Lookups run per
// query, so they are a few hash-map probes, one per distinct prefix length configured.
import { ipv4Number, ipv6Groups, unmapped } from './acl.js';
import type { ClientPlace } from './traffic-policy.js';

export interface ClientNetwork {
  /** "10.8.0.0/14", "2001:db8::/48", or an address (a /32 or /128). */
  network: string;
  place: ClientPlace;
}

export interface ClientMatch {
  place: ClientPlace;
  /** The network that matched, as written. */
  network: string;
  prefix: number;
  /**
   * Prefix length for which this answer holds (the ECS scope, RFC 7871 7.2.1): the network's own
   * length, or, when more specific networks lie inside it, the length of what was asked about.
   */
  scope: number;
}

interface Entry {
  network: string;
  prefix: number;
  place: ClientPlace;
  /** Other networks lie inside this one: a match is known only as far as the query's own prefix. */
  nested: boolean;
  /** The match for a whole address (kept: source-address lookups run per query). */
  whole?: ClientMatch;
}

/** Masks the 8 groups of an IPv6 address to `prefix` bits, as a map key. */
function v6Key(groups: readonly number[], prefix: number): string {
  let key = '';
  for (let i = 0; i < 8; i++) {
    const bits = Math.min(16, Math.max(0, prefix - 16 * i));
    key += ((groups[i] & (0xffff << (16 - bits))) & 0xffff).toString(16) + ':';
  }
  return key;
}

function v4Masked(n: number, prefix: number): number {
  return prefix === 0 ? 0 : n - (n % 2 ** (32 - prefix));
}

function v4Start(n: number, prefix: number): bigint {
  return BigInt(v4Masked(n, prefix));
}

function v6Start(groups: readonly number[], prefix: number): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) {
    const bits = Math.min(16, Math.max(0, prefix - 16 * i));
    v = (v << 16n) | BigInt((groups[i] & (0xffff << (16 - bits))) & 0xffff);
  }
  return v;
}

/** An IPv6 address in its canonical text (RFC 5952: the longest run of zeros compressed), as the URL standard writes hosts. */
function canonicalV6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

export class ClientMap {
  /** prefix length -> masked network -> entry, and the lengths present, longest first. */
  private readonly v4 = new Map<number, Map<number, Entry>>();
  private readonly v6 = new Map<number, Map<string, Entry>>();
  private readonly v4Lengths: number[];
  private readonly v6Lengths: number[];
  readonly size: number;
  /** Networks listed twice (the first listing wins), for check and the logs. */
  readonly duplicates: string[] = [];
  /** Entries that are not networks (skipped; the configuration and the node watch check them first). */
  readonly invalid: string[] = [];
  /** Networks written with host bits set ("10.8.0.1/14"), as [written, the network they are]: for check. */
  readonly hostBits: [string, string][] = [];

  /**
   * `overridden`: learned networks left out because they lie inside a configured network placed
   * elsewhere (see clientMap in app.ts), reported by check.
   */
  constructor(
    networks: readonly ClientNetwork[],
    readonly overridden = 0,
  ) {
    const spans: { family: 4 | 6; start: bigint; end: bigint; entry: Entry }[] = [];
    for (const { network, place } of networks) {
      const [addr, bits, extra] = network.split('/');
      const n = ipv4Number(addr);
      const prefixOk = (max: number) => extra === undefined && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
      if (n >= 0) {
        if (!prefixOk(32)) {
          this.invalid.push(network);
          continue;
        }
        const prefix = bits === undefined ? 32 : Number(bits);
        const entry: Entry = { network, prefix, place, nested: false };
        let m = this.v4.get(prefix);
        if (!m) this.v4.set(prefix, (m = new Map()));
        const key = v4Masked(n, prefix);
        if (key !== n) this.hostBits.push([network, `${[24, 16, 8, 0].map((b) => Math.floor(key / 2 ** b) % 256).join('.')}/${prefix}`]);
        if (m.has(key)) {
          this.duplicates.push(network);
          continue;
        }
        m.set(key, entry);
        const start = v4Start(n, prefix);
        spans.push({ family: 4, start, end: start + (1n << BigInt(32 - prefix)) - 1n, entry });
        continue;
      }
      const groups = ipv6Groups(addr);
      if (!groups || !prefixOk(128)) {
        this.invalid.push(network);
        continue;
      }
      const prefix = bits === undefined ? 128 : Number(bits);
      const entry: Entry = { network, prefix, place, nested: false };
      let m = this.v6.get(prefix);
      if (!m) this.v6.set(prefix, (m = new Map()));
      const key = v6Key(groups, prefix);
      if (key !== v6Key(groups, 128)) this.hostBits.push([network, `${canonicalV6(key.slice(0, -1))}/${prefix}`]);
      if (m.has(key)) {
        this.duplicates.push(network);
        continue;
      }
      m.set(key, entry);
      const start = v6Start(groups, prefix);
      spans.push({ family: 6, start, end: start + (1n << BigInt(128 - prefix)) - 1n, entry });
    }
    // Sorted by start, widest first: whatever lies inside a network comes right after it.
    spans.sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : a.entry.prefix - b.entry.prefix));
    for (let i = 0; i + 1 < spans.length; i++) {
      const a = spans[i];
      const b = spans[i + 1];
      if (a.family === b.family && b.start <= a.end) a.entry.nested = true;
    }
    this.size = spans.length;
    this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a);
    this.v6Lengths = [...this.v6.keys()].sort((a, b) => b - a);
  }

  /** The client at a source address (IPv4-mapped IPv6 counts as IPv4). */
  lookup(address: string): ClientMatch | undefined {
    const a = unmapped(address);
    const n = ipv4Number(a);
    if (n >= 0) return this.lookup4(n, 32);
    const groups = ipv6Groups(a);
    return groups ? this.lookup6(groups, 128) : undefined;
  }

  /**
   * The client an EDNS Client Subnet option names: `address` holds the option's address bytes,
   * `source` its prefix length. Only networks no longer than that prefix can be known to match.
   */
  lookupSubnet(family: 1 | 2, address: Uint8Array, source: number): ClientMatch | undefined {
    if (family === 1) {
      let n = 0;
      for (let i = 0; i < 4; i++) n = n * 256 + (address[i] ?? 0);
      return this.lookup4(n, source);
    }
    const groups: number[] = [];
    for (let i = 0; i < 8; i++) groups.push(((address[2 * i] ?? 0) << 8) | (address[2 * i + 1] ?? 0));
    // ::ffff:a.b.c.d/96+n is the IPv4 subnet a.b.c.d/n, as a mapped source address is an IPv4
    // client (lookup); its scope goes back into the option's IPv6 bits.
    if (source >= 96 && groups[5] === 0xffff && groups.slice(0, 5).every((g) => g === 0)) {
      const m = this.lookup4(groups[6] * 65536 + groups[7], source - 96);
      return m && { ...m, scope: m.scope + 96 };
    }
    return this.lookup6(groups, source);
  }

  private lookup4(n: number, within: number): ClientMatch | undefined {
    for (const p of this.v4Lengths) {
      if (p > within) continue;
      const e = this.v4.get(p)!.get(v4Masked(n, p));
      if (e) return match(e, within);
    }
    return undefined;
  }

  private lookup6(groups: number[], within: number): ClientMatch | undefined {
    for (const p of this.v6Lengths) {
      if (p > within) continue;
      const e = this.v6.get(p)!.get(v6Key(groups, p));
      if (e) return match(e, within);
    }
    return undefined;
  }
}

function match(e: Entry, within: number): ClientMatch {
  const whole = within === 32 || within === 128;
  if (whole && e.whole) return e.whole;
  const m = { place: e.place, network: e.network, prefix: e.prefix, scope: e.nested ? within : e.prefix };
  if (whole) e.whole = m;
  return m;
}
