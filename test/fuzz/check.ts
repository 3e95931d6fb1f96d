/**
 * What the fuzz test demands of every response, judged without fedns's own parser: the query is
 * read by a small wire walker here, the response by the `dns2` package's packet parser (an
 * independent implementation), with the walker as the fallback where dns2 cannot decode a message
 * (each such case is tallied as a dns2 limitation, not hidden), and by src/wire/message.ts too.
 */
import dns2 from 'dns2';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage } from '../../src/wire/message.js';

const { Packet } = dns2;

export interface WireRecord {
  section: 'an' | 'ns' | 'ar';
  /** The owner is the root written as one zero byte (not a pointer to it). */
  ownerRoot: boolean;
  type: number;
  klass: number;
  ttl: number;
  rdStart: number;
  rdLen: number;
}

/** A message walked record by record (names may use backward pointers into the body). */
export interface Walk {
  error?: string;
  qd: number;
  /** End of the first question when it is plain labels (no pointer), else -1. */
  questionEnd: number;
  /** Labels of the first question, when it was read. */
  qlabels?: Buffer[];
  qtype: number;
  qclass: number;
  records: WireRecord[];
  /** Offset after the last record read. */
  end: number;
}

/** Reads a name: its end offset and labels, or why it cannot be read (RFC 1035 4.1.4, 2.3.4). */
function readName(buf: Buffer, start: number): { end: number; labels: Buffer[]; pointer: boolean } | string {
  const labels: Buffer[] = [];
  let pos = start;
  let end = -1;
  let total = 1;
  for (let hops = 0; ; ) {
    if (pos >= buf.length) return 'name runs past the message';
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { end, labels, pointer: end !== pos + 1 };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) return 'pointer cut by the message end';
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (target < 12 || target >= pos) return `pointer to ${target} from ${pos}`;
      if (end < 0) end = pos + 2;
      if (++hops > 127) return 'pointer chain';
      pos = target;
      continue;
    }
    if (len & 0xc0) return `label type 0x${(len & 0xc0).toString(16)}`;
    if (pos + 1 + len > buf.length) return 'label runs past the message';
    total += len + 1;
    if (total > 255) return 'name over 255 bytes';
    labels.push(buf.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

export function walk(buf: Buffer): Walk {
  const w: Walk = { qd: 0, questionEnd: -1, qtype: -1, qclass: -1, records: [], end: 12 };
  if (buf.length < 12) return { ...w, error: 'shorter than a header', end: 0 };
  w.qd = buf.readUInt16BE(4);
  const counts: [WireRecord['section'], number][] = [
    ['an', buf.readUInt16BE(6)],
    ['ns', buf.readUInt16BE(8)],
    ['ar', buf.readUInt16BE(10)],
  ];
  let off = 12;
  for (let i = 0; i < w.qd; i++) {
    const n = readName(buf, off);
    if (typeof n === 'string') return { ...w, error: `question: ${n}`, end: off };
    if (n.end + 4 > buf.length) return { ...w, error: 'question cut short', end: off };
    if (i === 0) {
      w.qlabels = n.labels;
      w.qtype = buf.readUInt16BE(n.end);
      w.qclass = buf.readUInt16BE(n.end + 2);
      if (!n.pointer) w.questionEnd = n.end + 4;
    }
    off = n.end + 4;
  }
  for (const [section, count] of counts) {
    for (let i = 0; i < count; i++) {
      const n = readName(buf, off);
      if (typeof n === 'string') return { ...w, error: `${section}[${i}]: ${n}`, end: off };
      if (n.end + 10 > buf.length) return { ...w, error: `${section}[${i}]: record cut short`, end: off };
      const rdLen = buf.readUInt16BE(n.end + 8);
      const rdStart = n.end + 10;
      if (rdStart + rdLen > buf.length) return { ...w, error: `${section}[${i}]: RDATA runs past the message`, end: off };
      w.records.push({ section, ownerRoot: n.end === off + 1, type: buf.readUInt16BE(n.end), klass: buf.readUInt16BE(n.end + 2), ttl: buf.readUInt32BE(n.end + 4), rdStart, rdLen });
      off = rdStart + rdLen;
    }
  }
  w.end = off;
  return w;
}

/** How the options of an OPT RDATA are framed: exactly, one running past its end, or a header cut by its end. */
function optionFraming(buf: Buffer, start: number, len: number): 'good' | 'option past the end' | 'header cut' {
  const end = start + len;
  let o = start;
  while (o < end) {
    if (o + 4 > end) return 'header cut';
    o += 4 + buf.readUInt16BE(o + 2);
  }
  return o === end ? 'good' : 'option past the end';
}

/**
 * The query's OPT: none; one well-formed; one whose last option runs past the RDATA or whose
 * RDATA ends with 1 to 3 bytes (a cut option header); more than one in the additional section;
 * one elsewhere or not owned by the root (nothing demanded then); unknown (the walk failed first).
 */
export type OptState = 'none' | 'good' | 'option past the end' | 'header cut' | 'several' | 'misplaced' | 'unknown';

export interface QueryFacts {
  /** At least a header, QR=0: fedns must answer it. */
  answerable: boolean;
  id: number;
  opcode: number;
  /** Every record readable and exactly one plain question. */
  sound: boolean;
  /** Every record readable (fedns may read past a record the walker rejects, e.g. a pointer into a label). */
  complete: boolean;
  qtype: number;
  /** The query's OPT: none, one well-formed, one with options running past its end, ... */
  opt: OptState;
  ednsVersion: number;
  /** UDP payload the client can take (RFC 6891 6.2.5; fedns caps it at 1232). */
  udpLimit: number;
  /** Has a TSIG record anywhere. */
  tsig: boolean;
  /** The question has a label with a byte that no zone name has (a dot, backslash, quote, NUL...). */
  oddName: boolean;
}

const ZONE_LABEL_BYTE = /^[A-Za-z0-9_*-]*$/;

export function analyseQuery(buf: Buffer): QueryFacts {
  const w = walk(buf);
  const opts = w.records.filter((r) => r.type === RRType.OPT);
  const inAdditional = opts.filter((r) => r.section === 'ar');
  let opt: OptState;
  if (opts.length === 0) opt = w.error ? 'unknown' : 'none';
  else if (inAdditional.length > 1) opt = 'several';
  else if (opts.length > 1 || inAdditional.length === 0 || !opts[0].ownerRoot) opt = 'misplaced';
  else opt = optionFraming(buf, opts[0].rdStart, opts[0].rdLen);
  const first = inAdditional[0] ?? opts[0];
  return {
    answerable: buf.length >= 12 && (buf[2] & 0x80) === 0,
    id: buf.length >= 2 ? buf.readUInt16BE(0) : -1,
    opcode: buf.length >= 3 ? (buf[2] >> 3) & 0xf : -1,
    sound: !w.error && w.qd === 1 && w.questionEnd > 0,
    complete: !w.error,
    qtype: w.qtype,
    opt,
    ednsVersion: first ? (first.ttl >> 16) & 0xff : 0,
    udpLimit: first ? Math.min(Math.max(first.klass, 512), 1232) : 512,
    tsig: w.records.some((r) => r.type === RRType.TSIG),
    oddName: (w.qlabels ?? []).some((l) => !ZONE_LABEL_BYTE.test(l.toString('latin1'))),
  };
}

/** A response as the independent decoder read it. */
export interface Decoded {
  via: 'dns2' | 'by hand';
  id: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  ra: boolean;
  /** Full RCODE (header bits and, with an OPT, its extended bits). */
  rcode: number;
  qd: number;
  opts: { section: string; ownerRoot: boolean; udp: number; version: number }[];
  /** Type of the last additional record (-1: none). */
  lastType: number;
  walk: Walk;
}

const SECTIONS = [
  ['answers', 'ancount', 'an'],
  ['authorities', 'nscount', 'ns'],
  ['additionals', 'arcount', 'ar'],
] as const;

/**
 * Reads a response with dns2's Packet.parse; where dns2 fails on a message that the walker reads
 * whole, the header and records are taken by hand and the dns2 failure is tallied in
 * `limitations`. A message neither can read is a defect (the returned string).
 */
export function decodeIndependently(out: Buffer, limitations: Map<string, number>): Decoded | string {
  const w = walk(out);
  let p: InstanceType<typeof Packet> | undefined;
  let dns2Error: string | undefined;
  try {
    p = Packet.parse(out);
    if (p.errors.length) dns2Error = p.errors[0].message;
  } catch (e) {
    dns2Error = (e as Error).message;
  }
  if (dns2Error === undefined && p) {
    if (w.error) return `dns2 reads it, but it is malformed: ${w.error}`;
    const h = p.header;
    if (p.questions.length !== h.qdcount) return `dns2: ${p.questions.length} questions, QDCOUNT ${h.qdcount}`;
    const opts: Decoded['opts'] = [];
    for (const [list, count, section] of SECTIONS) {
      if (p[list].length !== h[count]) return `dns2: ${p[list].length} ${list}, ${count} ${h[count]}`;
      for (const r of p[list]) if (r.type === RRType.OPT) opts.push({ section, ownerRoot: r.name === '', udp: r.class, version: (r as { version?: number }).version ?? -1 });
    }
    const last = p.additionals.at(-1);
    return { via: 'dns2', id: h.id, qr: h.qr === 1, opcode: h.opcode, tc: h.tc === 1, ra: h.ra === 1, rcode: h.rcode, qd: h.qdcount, opts, lastType: last ? last.type : -1, walk: w };
  }
  if (w.error || out.length < 12) return `undecodable: dns2: ${dns2Error}; by hand: ${w.error}`;
  const kind = `dns2: ${String(dns2Error).replace(/\d+/g, 'N')}`.slice(0, 100);
  limitations.set(kind, (limitations.get(kind) ?? 0) + 1);
  const flags = out.readUInt16BE(2);
  const opts = w.records.filter((r) => r.type === RRType.OPT);
  const ext = opts.length ? (opts[0].ttl >>> 24) << 4 : 0;
  const ar = w.records.filter((r) => r.section === 'ar');
  return {
    via: 'by hand',
    id: out.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    tc: (flags & 0x0200) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: ext | (flags & 0xf),
    qd: w.qd,
    opts: opts.map((r) => ({ section: r.section, ownerRoot: r.ownerRoot, udp: r.klass, version: (r.ttl >> 16) & 0xff })),
    lastType: ar.length ? ar[ar.length - 1].type : -1,
    walk: w,
  };
}

export interface ResponseContext {
  /** A later message of a zone transfer (no question, RFC 5936 2.2). */
  continuation?: boolean;
  /** The query carried a valid signature from a key fedns knows. */
  signed?: boolean;
}

const TRANSFER_TYPES: number[] = [RRType.AXFR, RRType.IXFR];
/** Opcodes whose messages carry a question: QUERY, NOTIFY (RFC 1996), UPDATE (RFC 2136). */
const CARRY_QUESTION = [0, 4, 5];

/** The first problem with `out` as the answer to `query`, or undefined when it is acceptable. */
export function checkResponse(q: QueryFacts, query: Buffer, out: Buffer, transport: 'udp' | 'tcp', limitations: Map<string, number>, ctx: ResponseContext = {}): string | undefined {
  const d = decodeIndependently(out, limitations);
  if (typeof d === 'string') return d;
  try {
    decodeMessage(out);
  } catch (e) {
    return `src/wire/message.ts cannot decode it: ${(e as Error).message}`;
  }
  if (d.walk.end !== out.length) return `${out.length - d.walk.end} bytes after the last record`;
  if (!d.qr) return 'QR=0 in a response';
  if (d.id !== q.id) return `ID ${d.id}, the query's is ${q.id}`;
  if (d.opcode !== q.opcode) return `opcode ${d.opcode}, the query's is ${q.opcode}`;
  if (d.ra) return 'RA set';
  if (d.tc && transport === 'tcp') return 'TC set over TCP';
  if (d.qd > 1) return `${d.qd} questions`;
  if (d.qd === 1) {
    // The question is echoed byte for byte, case kept.
    const end = d.walk.questionEnd;
    if (end < 0) return 'question is not plain labels';
    if (end > query.length || !out.subarray(12, end).equals(query.subarray(12, end))) return 'question not echoed byte for byte';
  } else if (!ctx.continuation && d.rcode !== Rcode.FORMERR && !(!CARRY_QUESTION.includes(q.opcode) && query.readUInt16BE(4) === 0 && (d.rcode === Rcode.NOTIMP || d.rcode === Rcode.BADVERS)))
    // A DSO message (opcode 6) has no question (RFC 8490 3): NOTIMP answers it without one
    // (5.1.1), or BADVERS its EDNS version; so is any opcode that need not carry one.
    return `no question in a response with RCODE ${d.rcode}`;
  const allowed: number[] = [Rcode.NOERROR, Rcode.FORMERR, Rcode.SERVFAIL, Rcode.NXDOMAIN, Rcode.NOTIMP, Rcode.REFUSED];
  // NOTAUTH: a TSIG that does not verify (RFC 8945 5.2), or a transfer of a zone not served here
  // (RFC 5936 2.2.1); BADVERS: an EDNS version above 0. Either may come from a record after one
  // the walker could not read.
  if (q.tsig || TRANSFER_TYPES.includes(q.qtype) || !q.complete) allowed.push(Rcode.NOTAUTH);
  if (q.ednsVersion > 0 || !q.complete) allowed.push(Rcode.BADVERS);
  if (!allowed.includes(d.rcode)) return `RCODE ${d.rcode}`;
  // EDNS (RFC 6891): one OPT, owned by the root, in the additional section, version 0.
  if (d.opts.length > 1) return `${d.opts.length} OPT records`;
  const o = d.opts[0];
  if (o && (o.section !== 'ar' || !o.ownerRoot)) return 'OPT outside the additional section or not owned by the root';
  if (o && o.version !== 0) return `OPT version ${o.version}`;
  if (o && o.udp !== 1232) return `OPT advertises ${o.udp}`;
  const what = TRANSFER_TYPES.includes(q.qtype) ? 'a zone transfer' : 'a query';
  if (q.sound && q.opt === 'good' && !o) return `no OPT in RCODE ${d.rcode} to ${what} with one (RFC 6891 7)`;
  if (q.opt === 'none' && o) return 'OPT in the answer to a query without one';
  const malformed = q.opt === 'option past the end' ? 'an EDNS option running past the OPT RDATA' : q.opt === 'header cut' ? 'OPT RDATA ending in a cut option header' : undefined;
  if (q.sound && malformed && d.rcode !== Rcode.FORMERR && !(q.ednsVersion > 0 && d.rcode === Rcode.BADVERS)) return `${malformed} answered RCODE ${d.rcode}, not FORMERR`;
  if (q.sound && q.opt === 'several' && d.rcode !== Rcode.FORMERR) return `two OPT records answered RCODE ${d.rcode}, not FORMERR (RFC 6891 6.1.1)`;
  if (transport === 'udp' && out.length > q.udpLimit) return `UDP response of ${out.length} bytes${d.lastType === RRType.TSIG ? ' with its TSIG' : ''}, the client takes ${q.udpLimit}`;
  if (q.oddName && d.rcode === Rcode.NOERROR && !ctx.continuation) return 'NOERROR for a name with a label no zone name has (RFC 1035 5.1 escapes)';
  if (ctx.signed && ![Rcode.FORMERR, Rcode.NOTIMP, Rcode.BADVERS].includes(d.rcode as 1) && d.lastType !== RRType.TSIG) return `validly signed ${what} answered RCODE ${d.rcode} without a TSIG (RFC 8945 5.3)`;
  return undefined;
}

/** Short name of a problem, for tallies (numbers dropped). */
export function problemKind(p: string): string {
  return p.replace(/"[^"]*"/g, '"…"').replace(/(?<!RFC )\b\d{3,}\b/g, 'N');
}
