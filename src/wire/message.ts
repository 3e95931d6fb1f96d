// Whole DNS messages as plain data: decode and encode. Used off the hot path (tests, zone
// transfer, NOTIFY, TSIG); the responder parses queries with its own allocation-free reader.
import { RRClass, RRType } from './constants.js';
import { escapeLabel } from './name.js';
import type { RR, SoaData, SrvData } from './records.js';
import { Writer } from './writer.js';

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface Message {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** Full rcode: header bits plus, with EDNS, the extended bits from the OPT record. */
  rcode: number;
  questions: Question[];
  answers: RR[];
  authorities: RR[];
  /** Additional records other than OPT. */
  additionals: RR[];
  edns?: { udpSize: number; version: number; do: boolean; options: { code: number; data: Buffer }[] };
}

export class DecodeError extends Error {}

export class Reader {
  off = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.off + n > this.buf.length) throw new DecodeError(`truncated at byte ${this.off}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }

  /** Reads a possibly compressed name; pointers must go backwards, so loops cannot occur. */
  name(): string {
    const labels: string[] = [];
    let pos = this.off;
    let jumped = false;
    let total = 1;
    for (;;) {
      if (pos >= this.buf.length) throw new DecodeError('name runs past the message');
      const len = this.buf[pos];
      if (len === 0) {
        pos += 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= this.buf.length) throw new DecodeError('truncated compression pointer');
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1];
        if (target >= pos) throw new DecodeError('compression pointer does not point backwards');
        if (!jumped) this.off = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if (kind !== 0) throw new DecodeError(`unsupported label type 0x${kind.toString(16)}`);
      if (pos + 1 + len > this.buf.length) throw new DecodeError('label runs past the message');
      total += len + 1;
      if (total > 255) throw new DecodeError('name longer than 255 bytes');
      labels.push(escapeLabel(this.buf.toString('latin1', pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
    if (!jumped) this.off = pos;
    // Escaped (RFC 1035 5.1): a label holding "." stays one label; only ASCII is left to lowercase.
    return labels.length ? labels.join('.').toLowerCase() + '.' : '.';
  }
}

function ipv4Text(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6Text(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export { ipv6Text };

function readRR(r: Reader): RR {
  const name = r.name();
  const type = r.u16();
  const klass = r.u16();
  const ttl = r.u32();
  const rdlen = r.u16();
  r.need(rdlen);
  const end = r.off + rdlen;
  let data: RR['data'];
  switch (type) {
    case RRType.A:
      if (rdlen !== 4) throw new DecodeError('A record with bad length');
      data = ipv4Text(r.bytes(4));
      break;
    case RRType.AAAA:
      if (rdlen !== 16) throw new DecodeError('AAAA record with bad length');
      data = ipv6Text(r.bytes(16));
      break;
    case RRType.NS:
    case RRType.CNAME:
    case RRType.PTR:
      data = r.name();
      break;
    case RRType.SOA: {
      const soa: SoaData = {
        mname: r.name(),
        rname: r.name(),
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
      data = soa;
      break;
    }
    case RRType.SRV: {
      const srv: SrvData = { priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
      data = srv;
      break;
    }
    case RRType.TXT: {
      const texts: string[] = [];
      while (r.off < end) texts.push(r.bytes(r.u8()).toString('utf8'));
      data = texts;
      break;
    }
    default:
      data = Buffer.from(r.bytes(rdlen));
  }
  if (r.off !== end) throw new DecodeError(`record data of ${name} type ${type} has the wrong length`);
  return { name, type, ttl, class: klass, data };
}

export function decodeMessage(buf: Buffer): Message {
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  const msg: Message = {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  for (let i = 0; i < qd; i++) msg.questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  for (let i = 0; i < an; i++) msg.answers.push(readRR(r));
  for (let i = 0; i < ns; i++) msg.authorities.push(readRR(r));
  for (let i = 0; i < ar; i++) {
    const rr = readRR(r);
    if (rr.type === RRType.OPT) {
      const raw = rr.data as Buffer;
      const options: { code: number; data: Buffer }[] = [];
      const o = new Reader(raw);
      while (o.off < raw.length) {
        const code = o.u16();
        options.push({ code, data: Buffer.from(o.bytes(o.u16())) });
      }
      msg.edns = { udpSize: rr.class ?? 0, version: (rr.ttl >>> 16) & 0xff, do: (rr.ttl & 0x8000) !== 0, options };
      msg.rcode |= (rr.ttl >>> 24) << 4;
    } else {
      msg.additionals.push(rr);
    }
  }
  return msg;
}

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  opcode?: number;
  class?: number;
  edns?: { udpSize?: number; version?: number; do?: boolean; options?: { code: number; data: Buffer }[] };
}

export type MessageInput = Partial<Omit<Message, 'edns'>> & { questions: Question[]; edns?: QueryOptions['edns'] };

/** Encodes any message; also handy for building queries in tests and NOTIFY. */
export function encodeMessage(m: MessageInput): Buffer {
  const w = new Writer(65535);
  const additional = [...(m.additionals ?? [])];
  w.u16(m.id ?? 0);
  const rcode = m.rcode ?? 0;
  const flags =
    (m.qr ? 0x8000 : 0) |
    ((m.opcode ?? 0) << 11) |
    (m.aa ? 0x0400 : 0) |
    (m.tc ? 0x0200 : 0) |
    (m.rd ? 0x0100 : 0) |
    (m.ra ? 0x0080 : 0) |
    (m.ad ? 0x0020 : 0) |
    (m.cd ? 0x0010 : 0) |
    (rcode & 0xf);
  w.u16(flags);
  w.u16(m.questions.length);
  w.u16(m.answers?.length ?? 0);
  w.u16(m.authorities?.length ?? 0);
  w.u16(additional.length + (m.edns ? 1 : 0));
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rr of m.answers ?? []) w.rr(rr);
  for (const rr of m.authorities ?? []) w.rr(rr);
  for (const rr of additional) w.rr(rr);
  if (m.edns) {
    const e = m.edns;
    w.u8(0);
    w.u16(RRType.OPT);
    w.u16(e.udpSize ?? 1232);
    w.u32((((rcode >> 4) & 0xff) << 24) | ((e.version ?? 0) << 16) | (e.do ? 0x8000 : 0));
    const opts = e.options ?? [];
    w.u16(opts.reduce((n, o) => n + 4 + o.data.length, 0));
    for (const o of opts) {
      w.u16(o.code);
      w.u16(o.data.length);
      w.bytes(o.data);
    }
  }
  return w.take();
}

export function encodeQuery(name: string, type: number, opts: QueryOptions = {}): Buffer {
  return encodeMessage({
    id: opts.id ?? Math.floor(Math.random() * 0x10000),
    opcode: opts.opcode ?? 0,
    rd: opts.rd ?? false,
    questions: [{ name, type, class: opts.class ?? RRClass.IN }],
    edns: opts.edns
      ? { udpSize: opts.edns.udpSize ?? 1232, version: opts.edns.version, do: opts.edns.do, options: opts.edns.options }
      : undefined,
  });
}
