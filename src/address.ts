// Which IP addresses fedns accepts from configuration and cluster data.
import { isIPv4, isIPv6 } from 'node:net';

/** 4 or 6 for an IP address DNS can carry (an IPv6 zone index such as "%eth0" cannot), else 0. */
export function isAddress(addr: string): 4 | 6 | 0 {
  return isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : 0;
}
