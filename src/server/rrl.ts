// Response rate limiting (RRL) for UDP, as BIND, Knot and NSD do it: a spoofed-source flood must
// not turn fedns into an amplifier. Responses are counted per client prefix and response kind in
// BIND's credit window; over the rate they are dropped, and every `slip`th dropped one goes out as
// a bare TC=1 header + question so a real client behind that prefix retries over TCP.
import { LRUCache } from 'lru-cache';
import { AddressAcl, ipv4Number, ipv6Groups, unmapped } from '../acl.js';

export interface RateLimitSettings {
  /** Answers per second per prefix, name and type. */
  responsesPerSecond: number;
  /** NODATA per second per prefix and name; 0: not limited. */
  nodataPerSecond: number;
  /** NXDOMAIN per second per prefix (the zone's names share one account, as in BIND). */
  nxdomainsPerSecond: number;
  /** Other rcodes (REFUSED, FORMERR, SERVFAIL, ...) per second per prefix. */
  errorsPerSecond: number;
  /** Every slip-th dropped response is sent truncated; 0: never, 1: always. */
  slip: number;
  /** Seconds: a prefix over its rate stays limited until its debt of `window` seconds is repaid. */
  window: number;
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
  /** Addresses and CIDR blocks never limited. */
  exempt: string[];
  /** Accounts kept; the least recently used goes first, so a spoofed flood cannot grow memory. */
  tableSize: number;
}

/** Response kinds, each with its own rate: values of fedns_rrl_responses_total's `kind`. */
export const RRL_KINDS = ['answer', 'nodata', 'nxdomain', 'error'] as const;
export type RrlKind = (typeof RRL_KINDS)[number];
const ANSWER = 0;
const NODATA = 1;
const NXDOMAIN = 2;
const ERROR = 3;
/** What happened to a limited response: values of fedns_rrl_responses_total's `action`. */
export const RRL_ACTIONS = ['dropped', 'slipped'] as const;
export type RrlAction = (typeof RRL_ACTIONS)[number];

interface Account {
  /** Credit in responses: at most one second's worth, at least -window seconds' worth. */
  balance: number;
  /** Clock (ms) of the last update. */
  at: number;
  /** Responses limited so far, for slip. */
  limited: number;
}

export class ResponseRateLimiter {
  /** Limited responses by [kind * 2 + action]: read by the metrics when scraped. */
  readonly counts = new Float64Array(RRL_KINDS.length * RRL_ACTIONS.length);
  private settings!: RateLimitSettings;
  private rates!: number[];
  private exempt?: AddressAcl;
  private table!: LRUCache<string, Account>;

  constructor(
    settings: RateLimitSettings,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.prepare(settings)();
  }

  /** New settings start from an empty table; the counts go on. */
  configure(s: RateLimitSettings): void {
    this.prepare(s)();
  }

  /**
   * Builds what settings `s` need (what can fail: the table's allocation, the exemptions) without
   * changing the limiter, and returns what puts them in force, which cannot fail: a reload builds
   * first and applies only once nothing else can fail.
   */
  prepare(s: RateLimitSettings): () => void {
    const rates = [s.responsesPerSecond, s.nodataPerSecond, s.nxdomainsPerSecond, s.errorsPerSecond];
    const exempt = s.exempt.length ? new AddressAcl(s.exempt) : undefined;
    const table = new LRUCache<string, Account>({ max: s.tableSize });
    return () => {
      this.settings = s;
      this.rates = rates;
      this.exempt = exempt;
      this.table = table;
    };
  }

  /** Accounts held (bounded by tableSize). */
  get size(): number {
    return this.table.size;
  }

  /** The UDP response to send to `address`: `out` itself, a truncated slip, or null to drop it. */
  filter(out: Buffer, address: string): Buffer | null {
    if (out.length < 12) return out;
    const rcode = out[3] & 0xf;
    const kind = rcode === 0 ? (out[6] | out[7] ? ANSWER : NODATA) : rcode === 3 ? NXDOMAIN : ERROR;
    const rate = this.rates[kind];
    if (!(rate > 0)) return out;
    // Parsed once, for the exemption and the prefix.
    const addr = unmapped(address);
    const n = ipv4Number(addr);
    let prefix: string;
    if (n >= 0) {
      if (this.exempt?.allowsV4(n)) return out;
      prefix = v4Prefix(n, this.settings.ipv4PrefixLength);
    } else {
      const g = ipv6Groups(addr);
      if (g === undefined) return out;
      if (this.exempt?.allowsV6(g)) return out;
      prefix = v6Prefix(g, this.settings.ipv6PrefixLength);
    }
    const qend = questionEnd(out);
    // BIND's keys: an answer by name and type, so one hot name does not limit the others; NODATA by
    // name; NXDOMAIN and errors by prefix alone, so random names cannot dodge the limit.
    let key: string;
    if (kind === ANSWER) key = `${prefix}|a|${nameText(out, qend)}|${qend > 12 ? out.readUInt16BE(qend - 4) : 0}`;
    else if (kind === NODATA) key = `${prefix}|d|${nameText(out, qend)}`;
    else key = kind === NXDOMAIN ? `${prefix}|n` : `${prefix}|e`;
    const now = this.now();
    let a = this.table.get(key);
    if (a === undefined) {
      a = { balance: rate, at: now, limited: 0 };
      this.table.set(key, a);
    } else if (now > a.at) {
      a.balance = Math.min(rate, a.balance + ((now - a.at) / 1000) * rate);
      a.at = now;
    }
    a.balance = Math.max(a.balance - 1, -this.settings.window * rate);
    if (a.balance >= 0) return out;
    const slip = this.settings.slip;
    if (slip > 0 && ++a.limited % slip === 0) {
      this.counts[kind * 2 + 1]++;
      return truncated(out, qend);
    }
    this.counts[kind * 2]++;
    return null;
  }
}

/** The account key of an address's prefix ("192.0.2.0/24", "2001:db8:1:200:0:0:0:0/56"). */
export function prefixOf(address: string, v4bits: number, v6bits: number): string | undefined {
  const a = unmapped(address);
  const n = ipv4Number(a);
  if (n >= 0) return v4Prefix(n, v4bits);
  const g = ipv6Groups(a);
  return g && v6Prefix(g, v6bits);
}

function v4Prefix(n: number, bits: number): string {
  const m = bits === 0 ? 0 : (n & (0xffffffff << (32 - bits))) >>> 0;
  return `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${bits}`;
}

function v6Prefix(g: number[], bits: number): string {
  let out = '';
  for (let i = 0, left = bits; i < 8; i++, left -= 16) {
    const keep = left >= 16 ? 0xffff : left <= 0 ? 0 : (0xffff << (16 - left)) & 0xffff;
    out += `${(g[i] & keep).toString(16)}${i < 7 ? ':' : ''}`;
  }
  return `${out}/${bits}`;
}

/** Offset just past the first question (12 when there is none or it cannot be walked). */
function questionEnd(m: Buffer): number {
  if (m[4] === 0 && m[5] === 0) return 12;
  let i = 12;
  while (i < m.length) {
    const l = m[i];
    if (l === 0) {
      i++;
      break;
    }
    if (l & 0xc0) {
      i += 2;
      break;
    }
    i += l + 1;
  }
  return i + 4 <= m.length ? i + 4 : 12;
}

/** The question name's wire bytes as a case-folded string (RFC 4343: names compare without case). */
function nameText(m: Buffer, qend: number): string {
  return qend > 12 ? m.toString('latin1', 12, qend - 4).toLowerCase() : '';
}

/**
 * Header, question and OPT only, TC=1: the client learns to ask again over TCP (RFC 7766 5). The
 * OPT of a response to an EDNS query stays (RFC 6891 7), and with it an extended rcode (BADVERS).
 */
function truncated(out: Buffer, qend: number): Buffer {
  const opt = optRecord(out, qend);
  const s = Buffer.allocUnsafe(qend + (opt ? opt[1] - opt[0] : 0));
  out.copy(s, 0, 0, qend);
  if (opt) out.copy(s, qend, opt[0], opt[1]);
  s[2] |= 0x02;
  s.writeUInt16BE(qend > 12 ? 1 : 0, 4);
  s.fill(0, 6, 12);
  if (opt) s[11] = 1;
  return s;
}

/** [start, end) of the response's OPT record, or undefined (none, or the records cannot be walked). */
function optRecord(m: Buffer, qend: number): [number, number] | undefined {
  const records = m.readUInt16BE(6) + m.readUInt16BE(8) + m.readUInt16BE(10);
  let o = qend > 12 ? qend : 12;
  for (let i = 0; i < records; i++) {
    const start = o;
    // Owner name: labels, ended by a root byte or a compression pointer.
    for (;;) {
      if (o >= m.length) return undefined;
      const l = m[o];
      if (l === 0) {
        o++;
        break;
      }
      if ((l & 0xc0) === 0xc0) {
        o += 2;
        break;
      }
      if (l & 0xc0) return undefined;
      o += l + 1;
    }
    if (o + 10 > m.length) return undefined;
    const end = o + 10 + m.readUInt16BE(o + 8);
    if (end > m.length) return undefined;
    if (m.readUInt16BE(o) === 41 && i >= records - m.readUInt16BE(10)) return [start, end];
    o = end;
  }
  return undefined;
}
