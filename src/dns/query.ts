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
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd !== 1) return ParseFailure.FormErr;
  // Question name: plain labels only (no compression), at most 255 bytes.
  let off = 12;
  for (;;) {
    if (off >= buf.length) return ParseFailure.FormErr;
    const len = buf[off];
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len - 12 > 254 || off + 1 + len > buf.length) return ParseFailure.FormErr;
    off += len + 1;
  }
  if (off + 4 > buf.length) return ParseFailure.FormErr;
  out.qnameLen = off - 12;
  // The lookup key: the wire name in lowercase. Length bytes are at most 63, below 'A', so
  // lowercasing the latin1 string only changes letters (zone names are ASCII; a non-ASCII byte
  // lowercased by JS cannot turn into one of them).
  out.key = buf.toString('latin1', 12, off).toLowerCase();
  out.qtype = buf.readUInt16BE(off);
  out.qclass = buf.readUInt16BE(off + 2);
  off += 4;
  out.questionEnd = off;
  // Answer and authority records of a query are skipped (an IXFR query carries an SOA there).
  for (let i = 0; i < an + ns; i++) {
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return ParseFailure.FormErr;
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
      // Options: only NSID matters; the others are ignored (RFC 6891 6.1.2).
      const end = off + 10 + rdlen;
      for (let o = off + 10; o + 4 <= end && end <= buf.length; o += 4 + buf.readUInt16BE(o + 2)) {
        if (buf.readUInt16BE(o) === EdnsOption.NSID) out.nsid = true;
      }
    } else if (type === RRType.TSIG) {
      if (i !== ar - 1) return ParseFailure.FormErr; // RFC 8945 5.1: TSIG must be the last record
      out.tsigOffset = start;
    }
    off += 10 + rdlen;
    if (off > buf.length) return ParseFailure.FormErr;
  }
  return 0;
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
  };
}
