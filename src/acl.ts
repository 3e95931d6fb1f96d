// Who may do what, by source address: addresses and CIDR blocks ("192.0.2.1", "10.0.0.0/8",
// "2001:db8::/32"). An IPv4 client seen on a dual-stack socket (::ffff:192.0.2.1) matches its
// IPv4 entries. Matching is plain arithmetic on the parsed address: it runs per query (queries.allow,
// rateLimit.exempt), where node:net's BlockList costs microseconds.

/** An IPv4 address in dotted-quad form as a number (0 to 2^32-1), or -1 when it is not one. */
export function ipv4Number(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + c - 48;
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

/** The eight 16-bit groups of an IPv6 address ("::" expanded, an IPv4 tail read, a %zone ignored), or undefined. */
export function ipv6Groups(address: string): number[] | undefined {
  const pct = address.indexOf('%');
  const a = pct >= 0 ? address.slice(0, pct) : address;
  const gap = a.indexOf('::');
  if (gap >= 0 && a.indexOf('::', gap + 1) >= 0) return undefined;
  const parse = (s: string, last: boolean): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const g = parts[i];
      if (last && i === parts.length - 1 && g.includes('.')) {
        const v4 = ipv4Number(g);
        if (v4 < 0) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  if (gap < 0) {
    const all = parse(a, true);
    return all?.length === 8 ? all : undefined;
  }
  const head = parse(a.slice(0, gap), false);
  const tail = parse(a.slice(gap + 2), true);
  if (!head || !tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** A dual-stack socket's IPv4-mapped form (::ffff:192.0.2.1) as the IPv4 address it is. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class AddressAcl {
  /** [network, prefix length] of the IPv4 entries. */
  private readonly v4: [number, number][] = [];
  /** [groups, prefix length] of the IPv6 entries. */
  private readonly v6: [number[], number][] = [];

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const n = ipv4Number(addr);
      if (n >= 0) this.v4.push([n, bits === undefined ? 32 : Number(bits)]);
      else {
        const g = ipv6Groups(addr);
        if (!g) throw new Error(`not an IP address or CIDR block: ${e}`);
        this.v6.push([g, bits === undefined ? 128 : Number(bits)]);
      }
    }
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    const a = unmapped(address);
    const n = ipv4Number(a);
    if (n >= 0) return this.allowsV4(n);
    const g = this.v6.length ? ipv6Groups(a) : undefined;
    return g !== undefined && this.allowsV6(g);
  }

  /** An IPv4 address already parsed with ipv4Number. */
  allowsV4(n: number): boolean {
    for (const [net, bits] of this.v4) if (bits === 0 || n >>> (32 - bits) === net >>> (32 - bits)) return true;
    return false;
  }

  /** An IPv6 address already parsed with ipv6Groups. */
  allowsV6(g: number[]): boolean {
    next: for (const [net, bits] of this.v6) {
      for (let i = 0, left = bits; left > 0; i++, left -= 16) {
        const shift = left >= 16 ? 0 : 16 - left;
        if (g[i] >> shift !== net[i] >> shift) continue next;
      }
      return true;
    }
    return false;
  }
}
