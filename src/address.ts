// Which IP addresses fedns accepts from configuration and cluster data.
import { isIPv6 } from 'node:net';
import { ipv6Groups } from './acl.js';

/** 4 or 6 for an IP address DNS can carry (an IPv6 zone index such as "%eth0" cannot), else 0. */
export function isAddress(addr: string): 4 | 6 | 0 {
  return ipv4Value(addr) >= 0 ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : 0;
}

/**
 * One spelling per address: IPv6 in its RFC 5952 form ("2001:DB8:0::1" is "2001:db8::1"), so an
 * address written two ways is one record and one endpoint name, and a spelling that goes away
 * does not take the address out of a transfer's delta. Anything else is kept as written (and
 * skipped where addresses are used).
 */
export function canonicalAddress(a: string): string {
  return isAddress(a) === 6 ? new URL(`http://[${a}]/`).hostname.slice(1, -1) : a;
}

const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * The 32-bit value of `addr` when it is an IPv4 address as node:net's isIPv4 reads one (four
 * decimal bytes, no leading zeros), else -1. Read without a regular expression or a split: every
 * endpoint address of every list goes through it.
 */
export function ipv4Value(addr: string): number {
  const n = addr.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let byte = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = addr.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + byte;
      byte = 0;
      digits = 0;
      dots++;
    } else if (c >= ZERO && c <= NINE) {
      // A digit after a leading 0.
      if (digits > 0 && byte === 0) return -1;
      byte = byte * 10 + (c - ZERO);
      if (byte > 255) return -1;
      digits++;
    } else return -1;
  }
  return digits === 0 || dots !== 3 ? -1 : value * 256 + byte;
}

/**
 * Whether an endpoint address of a slice of `addressType` can answer: an IP address of the
 * slice's family (either, for a slice that names none) that no client could be sent to is not one:
 * unspecified, loopback, link-local, multicast, the IPv4 broadcast address, and those an IPv6
 * address carries an IPv4 address for (embeddedV4). The API server refuses most of them in
 * EndpointSlices; a manifest file may hold them. `addr` is in canonicalAddress() form.
 */
export function answerableEndpoint(addr: string, addressType: 'IPv4' | 'IPv6' | undefined): boolean {
  const v4 = ipv4Value(addr);
  if (v4 >= 0) return addressType !== 'IPv6' && reachableV4(v4);
  if (addressType === 'IPv4' || isAddress(addr) !== 6) return false;
  const g = ipv6Groups(addr)!;
  const inner = embeddedV4(g);
  if (inner >= 0) return reachableV4(inner);
  return (g[0] & 0xffc0) !== 0xfe80 && (g[0] & 0xff00) !== 0xff00; // link-local, multicast
}

/**
 * The IPv4 address (its 32-bit value; -1: none) an IPv6 address (as its eight groups) stands
 * for, whose reachability is therefore its own: IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible
 * ::a.b.c.d (:: and ::1 among them), IPv4-translated ::ffff:0:a.b.c.d (RFC 2765), the NAT64
 * well-known prefix 64:ff9b::a.b.c.d (RFC 6052), 6to4's 2002:aabb:ccdd::/48 (RFC 3056) and a
 * Teredo client's 2001:0:...:~a.~b.~c.~d (RFC 4380: its address with every bit flipped), which a
 * translator or relay sends on to that IPv4 address.
 */
function embeddedV4(g: number[]): number {
  const value = (hi: number, lo: number) => hi * 0x10000 + lo;
  if (g[0] === 0x2002) return value(g[1], g[2]);
  if (g[0] === 0x2001 && g[1] === 0) return value(g[6] ^ 0xffff, g[7] ^ 0xffff);
  if (g[2] !== 0 || g[3] !== 0) return -1;
  const low = g[4] === 0 ? g[5] === 0xffff || g[5] === 0 : g[4] === 0xffff && g[5] === 0;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g[4] === 0 && g[5] === 0;
  return (g[0] === 0 && g[1] === 0 && low) || nat64 ? value(g[6], g[7]) : -1;
}

/** Not this network (0/8), loopback, link-local, multicast, nor the broadcast address (`v`: its 32-bit value). */
function reachableV4(v: number): boolean {
  const a = v >>> 24;
  if (a === 0 || a === 127 || (a >= 224 && a <= 239)) return false;
  if (a === 169 && ((v >>> 16) & 0xff) === 254) return false;
  return v !== 0xffffffff;
}

/** A CIDR block read: its family, prefix length, and address bytes with the host bits cleared. */
export interface Network {
  family: 4 | 6;
  bits: number;
  bytes: number[];
}

/**
 * `text` as a CIDR block, or undefined when it is not an IPv4 or IPv6 one. A bare address is a
 * CIDR block only when `bareIsHost` says so (it then becomes a /32 or /128).
 */
export function parseNetwork(text: string, bareIsHost = false): Network | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = isAddress(addr);
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (slash < 0) {
    if (!bareIsHost) return undefined;
  } else {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return undefined;
    bits = Number(b);
  }
  const bytes = family === 4 ? addr.split('.').map(Number) : ipv6Groups(addr)!.flatMap((g) => [g >> 8, g & 0xff]);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { family, bits, bytes };
}

/**
 * "address/bits" in one spelling (IPv6 in its RFC 5952 form, the host bits cleared), or
 * undefined when `text` is not an IPv4 or IPv6 CIDR block (see parseNetwork).
 */
export function canonicalNetwork(text: string, bareIsHost = false): string | undefined {
  const n = parseNetwork(text, bareIsHost);
  if (!n) return undefined;
  if (n.family === 4) return `${n.bytes.join('.')}/${n.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((n.bytes[i] << 8) | n.bytes[i + 1]).toString(16));
  return `${new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)}/${n.bits}`;
}
