// DNS protocol numbers used by fedns (RFC 1035, 2136, 6891, 8914, IANA registries).

export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

export const RRClass = { IN: 1, CH: 3, NONE: 254, ANY: 255 } as const;

export const Opcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5, DSO: 6 } as const;

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  BADVERS: 16,
} as const;

export const EdnsOption = { NSID: 3, CLIENT_SUBNET: 8, COOKIE: 10, EDE: 15 } as const;

/** Extended DNS Error codes (RFC 8914). */
export const EdeCode = { STALE_ANSWER: 3 } as const;

/** Largest UDP payload fedns sends or advertises (DNS Flag Day 2020). */
export const MAX_UDP_PAYLOAD = 1232;
/** Classic DNS over UDP limit without EDNS (RFC 1035 4.2.1). */
export const CLASSIC_UDP_PAYLOAD = 512;

const TYPE_NAMES = new Map<number, string>(Object.entries(RRType).map(([k, v]) => [v, k]));
const TYPE_NUMBERS = new Map<string, number>(Object.entries(RRType).map(([k, v]) => [k, v]));

export function typeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `TYPE${t}`;
}

/** Parses a type mnemonic or RFC 3597 `TYPEnnn`; undefined when unknown. */
export function typeNumber(name: string): number | undefined {
  const up = name.toUpperCase();
  const known = TYPE_NUMBERS.get(up);
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(up);
  if (m && Number(m[1]) <= 0xffff) return Number(m[1]);
  return undefined;
}

const RCODE_NAMES = new Map<number, string>(Object.entries(Rcode).map(([k, v]) => [v, k]));
export function rcodeName(r: number): string {
  return RCODE_NAMES.get(r) ?? `RCODE${r}`;
}
