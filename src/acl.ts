// Who may do what, by source address: addresses and CIDR blocks ("192.0.2.1", "10.0.0.0/8",
// "2001:db8::/32"). An IPv4 client seen on a dual-stack socket (::ffff:192.0.2.1) matches its
// IPv4 entries.
import { BlockList, isIPv6 } from 'node:net';

export class AddressAcl {
  private readonly list = new BlockList();

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (bits !== undefined) this.list.addSubnet(addr, Number(bits), type);
      else this.list.addAddress(addr, type);
    }
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    return this.list.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
  }
}
