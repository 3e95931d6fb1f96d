// Wire encoder: writes into one buffer with a name-compression table (RFC 1035 4.1.4).
import { RRClass, RRType } from './constants.js';
import { asciiLower, canonicalName, escapeLabel, labelsOf, MAX_LABEL_LENGTH, MAX_NAME_LENGTH, wireLength } from './name.js';
import type { RR, SoaData, SrvData } from './records.js';

export class WriteOverflow extends Error {
  constructor() {
    super('DNS message does not fit its buffer');
  }
}

/** Largest TTL (RFC 2181 8): values with the top bit set are not TTLs. */
export const MAX_TTL = 2 ** 31 - 1;

/** Data the wire format cannot carry (a bad name or TTL): refused rather than written wrong. */
export class IllegalRecord extends Error {}

export function ipv4Bytes(addr: string, out: Buffer, off: number): number {
  const parts = addr.split('.');
  for (let i = 0; i < 4; i++) out[off + i] = Number(parts[i]);
  return off + 4;
}

/** RFC 4291 text form to 16 bytes (handles "::" and a trailing dotted quad). */
export function ipv6Bytes(addr: string, out: Buffer, off: number): number {
  let head = addr;
  let tail4: number[] = [];
  const lastColon = addr.lastIndexOf(':');
  if (addr.indexOf('.', lastColon) !== -1) {
    tail4 = addr.slice(lastColon + 1).split('.').map(Number);
    head = addr.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = new Array<number>(8).fill(0);
  left.forEach((g, i) => (groups[i] = parseInt(g, 16)));
  right.forEach((g, i) => (groups[8 - right.length + i] = parseInt(g, 16)));
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i], off + 2 * i);
  if (tail4.length === 4) for (let i = 0; i < 4; i++) out[off + 12 + i] = tail4[i];
  return off + 16;
}

/** Throws unless `name` (absolute, presentation form) fits the wire format (RFC 1035 2.3.4). */
function checkName(name: string): void {
  if (name === '.') return;
  if (wireLength(name) > MAX_NAME_LENGTH) throw new IllegalRecord(`name "${name}" is longer than ${MAX_NAME_LENGTH} bytes in wire form`);
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) !== 46) continue;
    if (i === start) throw new IllegalRecord(`empty label in name "${name}"`);
    if (i - start > MAX_LABEL_LENGTH) throw new IllegalRecord(`label "${name.slice(start, i)}" of "${name}" is longer than ${MAX_LABEL_LENGTH} bytes`);
    start = i + 1;
  }
}

export class Writer {
  readonly buf: Buffer;
  off = 0;
  /**
   * Lowercase presentation suffix -> offset of its first label. A new Map per message, not a
   * cleared one: V8 gives a cleared Map a new table in the old Map's generation, so a writer that
   * lives long (the responder's) made old-generation garbage on every message it wrote.
   */
  private names = new Map<string, number>();
  /**
   * While set, names written are not offered for compression: nothing written later points into
   * them, so the records written meanwhile can be moved (rotated) as byte slices.
   */
  freeze = false;

  constructor(sizeOrBuf: number | Buffer = 65535) {
    this.buf = typeof sizeOrBuf === 'number' ? Buffer.allocUnsafe(sizeOrBuf) : sizeOrBuf;
  }

  reset(): void {
    this.off = 0;
    this.freeze = false;
    if (this.names.size > 0) this.names = new Map();
  }

  private room(n: number): void {
    if (this.off + n > this.buf.length) throw new WriteOverflow();
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.off++] = v;
  }

  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** Registers a name already present in the buffer at `offset` (e.g. the question). */
  remember(name: string, offset: number): void {
    const n = canonicalName(name);
    if (n === '.') return;
    if (n.includes('\\')) {
      const labels = labelsOf(n);
      let o = offset;
      for (let i = 0; i < labels.length && o < 0x4000; i++) {
        const rest = suffixKey(labels, i);
        if (!this.names.has(rest)) this.names.set(rest, o);
        o += labels[i].length + 1;
      }
      return;
    }
    let o = offset;
    let rest = n;
    while (rest !== '' && o < 0x4000) {
      if (!this.names.has(rest)) this.names.set(rest, o);
      const dot = rest.indexOf('.');
      o += dot + 1;
      rest = rest.slice(dot + 1);
    }
  }

  /**
   * Writes a name, keeping its letter case; compression matches case-insensitively.
   * `compress` false for names RFC 3597 forbids compressing (SRV targets).
   */
  name(name: string, compress = true): void {
    if (name.includes('\\')) return this.escapedName(name, compress);
    const orig = name === '' || name === '.' ? '.' : name.endsWith('.') ? name : `${name}.`;
    checkName(orig);
    let rest = orig.toLowerCase();
    let at = 0;
    while (rest !== '.' && rest !== '') {
      const known = compress ? this.names.get(rest) : undefined;
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      const dot = rest.indexOf('.');
      if (!this.freeze && this.off < 0x4000 && !this.names.has(rest)) this.names.set(rest, this.off);
      this.room(dot + 1);
      this.buf[this.off++] = dot;
      this.off += this.buf.write(orig.slice(at, at + dot), this.off, 'latin1');
      at += dot + 1;
      rest = rest.slice(dot + 1);
    }
    this.u8(0);
  }

  /** name() for a name with RFC 1035 5.1 escapes: written as its labels, compressed by their canonical text. */
  private escapedName(name: string, compress: boolean): void {
    const labels = labelsOf(name);
    for (let i = 0; i < labels.length; i++) {
      const rest = suffixKey(labels, i);
      const known = compress ? this.names.get(rest) : undefined;
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      const l = labels[i];
      if (l.length > 63) throw new Error(`label longer than 63 bytes in name "${name}"`);
      if (!this.freeze && this.off < 0x4000 && !this.names.has(rest)) this.names.set(rest, this.off);
      this.room(l.length + 1);
      this.buf[this.off++] = l.length;
      this.off += this.buf.write(l, this.off, 'latin1');
    }
    this.u8(0);
  }

  /** Writes one resource record; `owner` overrides the owner name (e.g. a pointer target offset). */
  rr(rr: RR, ownerOffset?: number): void {
    if (ownerOffset !== undefined) this.u16(0xc000 | ownerOffset);
    else this.name(rr.name);
    this.u16(rr.type);
    this.u16(rr.class ?? RRClass.IN);
    if (!(Number.isInteger(rr.ttl) && rr.ttl >= 0 && rr.ttl <= MAX_TTL)) throw new IllegalRecord(`TTL ${rr.ttl} of ${rr.name} is outside 0..${MAX_TTL} (RFC 2181 8)`);
    this.u32(rr.ttl);
    const lenAt = this.off;
    this.u16(0);
    this.rdata(rr);
    this.buf.writeUInt16BE(this.off - lenAt - 2, lenAt);
  }

  private rdata(rr: RR): void {
    const d = rr.data;
    switch (rr.type) {
      case RRType.A:
        this.room(4);
        this.off = ipv4Bytes(d as string, this.buf, this.off);
        return;
      case RRType.AAAA:
        this.room(16);
        this.off = ipv6Bytes(d as string, this.buf, this.off);
        return;
      case RRType.NS:
      case RRType.CNAME:
      case RRType.PTR:
        this.name(d as string);
        return;
      case RRType.SOA: {
        const s = d as SoaData;
        this.name(s.mname);
        this.name(s.rname);
        this.u32(s.serial);
        this.u32(s.refresh);
        this.u32(s.retry);
        this.u32(s.expire);
        this.u32(s.minimum);
        return;
      }
      case RRType.SRV: {
        const s = d as SrvData;
        this.u16(s.priority);
        this.u16(s.weight);
        this.u16(s.port);
        this.name(s.target, false);
        return;
      }
      case RRType.TXT:
        for (const t of d as string[]) {
          const b = Buffer.from(t, 'utf8');
          this.u8(b.length);
          this.bytes(b);
        }
        return;
      default:
        this.bytes(d as Buffer);
    }
  }

  /** A copy of what has been written. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}

/** Compression key of the labels from `i` on: their canonical lowercase presentation text. */
function suffixKey(labels: string[], i: number): string {
  let out = '';
  for (let j = i; j < labels.length; j++) out += escapeLabel(asciiLower(labels[j])) + '.';
  return out;
}
