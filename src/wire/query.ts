// Allocation-light parser for incoming queries. Reads only what the responder needs and
// rejects anything it cannot read safely: bounds are checked before every read, names in the
// question may not use compression, and no loop runs longer than the packet.
import { EdnsOption, RRType } from './constants.js';

export interface ParsedQuery {
  id: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  /** Offset just past the question (12 + qname length + 4). */
  questionEnd: number;
  /** Question name length in wire form. */
  qnameLen: number;
  /** Lowercase wire bytes of the question name, as latin1 (the zone's lookup key). */
  key: string;
  qtype: number;
  qclass: number;
  edns: boolean;
  ednsVersion: number;
  udpSize: number;
  dnssecOk: boolean;
  /** Offset of a TSIG record (always last, RFC 8945), or -1. */
  tsigOffset: number;
  /** The OPT record asked for the server's NSID (RFC 5001). */
  nsid: boolean;
  /** Offset of a well-formed EDNS Client Subnet option's data (RFC 7871 6), or -1. */
  ecsOffset: number;
  /** A FormErr only for having no question: QDCOUNT 0, every record after the header well formed (a DSO message, RFC 8490 5.4). */
  noQuestion: boolean;
}

export const enum ParseFailure {
  /** Not worth an answer: shorter than a header, or a response. */
  Drop = 1,
  /** Answer FORMERR (with the question when it could be read). */
  FormErr = 2,
}

/** Skips a (possibly compressed) name in a record; returns the offset after it, or -1. */
function skipName(buf: Buffer, off: number): number {
  for (let i = 0; i < 128; i++) {
    if (off >= buf.length) return -1;
    const len = buf[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += len + 1;
  }
  return -1;
}

/**
 * Reads the EDNS options in [o, end): every option must fit the OPT record exactly, and the
 * options fedns knows must be well formed; the others are ignored (RFC 6891 6.1.2).
 */
function readOptions(buf: Buffer, o: number, end: number, out: ParsedQuery): boolean {
  while (o < end) {
    if (o + 4 > end) return false;
    const code = buf.readUInt16BE(o);
    const len = buf.readUInt16BE(o + 2);
    o += 4;
    if (o + len > end) return false; // runs past the OPT record (RFC 6891 6.1.2)
    if (code === EdnsOption.NSID) out.nsid = true;
    else if (code === EdnsOption.COOKIE && len !== 8 && (len < 16 || len > 40)) return false; // RFC 7873 5.2.2
    else if (code === EdnsOption.CLIENT_SUBNET) {
      if (out.ecsOffset >= 0 || !clientSubnetOk(buf, o, len)) return false; // RFC 7871 6, 7.1.2
      out.ecsOffset = o;
    }
    o += len;
  }
  return true;
}

/**
 * RFC 7871 6: family 1 or 2, a prefix the family can hold, a scope of 0 in queries, exactly the
 * prefix's bytes, and no address bits set past the prefix.
 */
function clientSubnetOk(buf: Buffer, o: number, len: number): boolean {
  if (len < 4) return false;
  const family = buf.readUInt16BE(o);
  const source = buf[o + 2];
  const scope = buf[o + 3];
  const bits = family === 1 ? 32 : family === 2 ? 128 : -1;
  if (!(bits > 0 && source <= bits && scope === 0 && len - 4 === Math.ceil(source / 8))) return false;
  const spare = (8 - (source % 8)) % 8;
  return spare === 0 || (buf[o + len - 1] & ((1 << spare) - 1)) === 0;
}

/**
 * Parses `buf` into `out`. Returns 0 on success or a ParseFailure. On FormErr, `out.questionEnd`
 * is 12 when the question itself was unreadable.
 */
export function parseQuery(buf: Buffer, out: ParsedQuery): number {
  if (buf.length < 12) return ParseFailure.Drop;
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return ParseFailure.Drop;
  out.id = buf.readUInt16BE(0);
  out.opcode = (flags >> 11) & 0xf;
  out.rd = (flags & 0x0100) !== 0;
  out.cd = (flags & 0x0010) !== 0;
  out.questionEnd = 12;
  out.qnameLen = 0;
  out.key = '';
  out.qtype = 0;
  out.qclass = 0;
  out.edns = false;
  out.ednsVersion = 0;
  out.udpSize = 512;
  out.dnssecOk = false;
  out.tsigOffset = -1;
  out.nsid = false;
  out.ecsOffset = -1;
  out.noQuestion = false;
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd !== 1) {
    // FORMERR, but the records after the questions are read where they can be found, so that
    // it carries the query's OPT (RFC 6891 7); the questions are not echoed.
    let off = 12;
    for (let i = 0; i < qd; i++) {
      off = skipName(buf, off);
      if (off < 0 || off + 4 > buf.length) return ParseFailure.FormErr;
      off += 4;
    }
    const rest = readRecords(buf, off, an, ns, ar, out);
    out.noQuestion = qd === 0 && rest === 0;
    return ParseFailure.FormErr;
  }
  // Question name: plain labels only (no compression), at most 255 bytes. A longer one is FORMERR,
  // but its labels can be walked: the records after it are still read, so that the FORMERR
  // carries the query's OPT (RFC 6891 7), without the question.
  let off = 12;
  let tooLong = false;
  for (;;) {
    if (off >= buf.length) return ParseFailure.FormErr;
    const len = buf[off];
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len > buf.length) return ParseFailure.FormErr;
    if (off + 1 + len - 12 > 254) tooLong = true;
    off += len + 1;
  }
  if (off + 4 > buf.length) return ParseFailure.FormErr;
  if (tooLong) {
    readRecords(buf, off + 4, an, ns, ar, out);
    return ParseFailure.FormErr; // out.questionEnd stays 12: the question is not echoed
  }
  out.qnameLen = off - 12;
  // The lookup key: the wire name in lowercase. Length bytes are at most 63, below 'A', so
  // lowercasing the latin1 string only changes letters (zone names are ASCII; a non-ASCII byte
  // lowercased by JS cannot turn into one of them).
  out.key = buf.toString('latin1', 12, off).toLowerCase();
  out.qtype = buf.readUInt16BE(off);
  out.qclass = buf.readUInt16BE(off + 2);
  off += 4;
  out.questionEnd = off;
  return readRecords(buf, off, an, ns, ar, out);
}

/** Reads the answer, authority and additional records from `off`: 0, or FormErr. */
function readRecords(buf: Buffer, off: number, an: number, ns: number, ar: number, out: ParsedQuery): number {
  // OPT and TSIG belong in the additional section only, TSIG last (RFC 6891 6.1.1, RFC 8945 5.1).
  // A misplaced one is FORMERR, but only once every record has been read, so that an OPT in the
  // additional section is known and the FORMERR carries one (RFC 6891 7).
  let misplaced = false;
  // Answer and authority records of a query are skipped (an IXFR query carries an SOA there).
  for (let i = 0; i < an + ns; i++) {
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return ParseFailure.FormErr;
    const type = buf.readUInt16BE(off);
    if (type === RRType.OPT || type === RRType.TSIG) misplaced = true;
    off += 10 + buf.readUInt16BE(off + 8);
    if (off > buf.length) return ParseFailure.FormErr;
  }
  for (let i = 0; i < ar; i++) {
    const start = off;
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return ParseFailure.FormErr;
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    if (type === RRType.OPT) {
      // RFC 6891 6.1.1: one OPT, owned by the root.
      if (out.edns || off !== start + 1) return ParseFailure.FormErr;
      out.edns = true;
      out.udpSize = buf.readUInt16BE(off + 2);
      out.ednsVersion = buf[off + 5];
      out.dnssecOk = (buf[off + 6] & 0x80) !== 0;
      // The OPT (and so an answer with one) is known from here on: a FORMERR below carries it.
      const end = off + 10 + rdlen;
      if (end > buf.length || !readOptions(buf, off + 10, end, out)) return ParseFailure.FormErr;
    } else if (type === RRType.TSIG) {
      if (i !== ar - 1) misplaced = true;
      else out.tsigOffset = start;
    }
    off += 10 + rdlen;
    if (off > buf.length) return ParseFailure.FormErr;
  }
  return misplaced ? ParseFailure.FormErr : 0;
}

export function newParsedQuery(): ParsedQuery {
  return {
    id: 0,
    opcode: 0,
    rd: false,
    cd: false,
    questionEnd: 12,
    qnameLen: 0,
    key: '',
    qtype: 0,
    qclass: 0,
    edns: false,
    ednsVersion: 0,
    udpSize: 512,
    dnssecOk: false,
    tsigOffset: -1,
    nsid: false,
    ecsOffset: -1,
    noQuestion: false,
  };
}
