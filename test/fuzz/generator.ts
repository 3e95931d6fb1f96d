/**
 * Packet generator for the fuzz test: well-formed queries, then every kind of malformed, odd and
 * hostile one, built byte by byte (names with escapes cannot be written as dotted strings).
 * Deterministic for a seed, except that validly signed queries carry the signing time.
 */
import { encodeQuery, type QueryOptions } from '../../src/wire/message.js';
import { RRType } from '../../src/wire/constants.js';
import { signRequest, type TsigKey } from '../../src/wire/tsig.js';

export type Rand = () => number;

export const NAMES = [
  'example.com.',
  'ns1.example.com.',
  'nginx.default.fed.example.com.',
  'nginx.default.fed.svc.example.com.',
  'nginx.default.fed.svc.eu-west.example.com.',
  'nginx.default.fed.svc.eu-west-a.eu-west.example.com.',
  'billing.finance.fed.svc.eu-west-a.eu-west.example.com.',
  'web.shop.fed.example.com.',
  '_http._tcp.nginx.default.fed.svc.example.com.',
  '_postgres._tcp.db.data.fed.svc.example.com.',
  'db-0.alpha.db.data.fed.svc.example.com.',
  'alpha.db.data.fed.svc.example.com.',
  'svc.example.com.',
  'nosuch.default.fed.example.com.',
  'example.org.',
  '.',
];
const TYPES = [1, 2, 5, 6, 15, 16, 28, 33, 255, 252, 251, 253, 254, 0, 41, 250, 65535, 99, 128, 46, 48, 43];
const COMMON_TYPES = [1, 1, 28, 33, 6, 2, 16, 255, 5];
const CLASSES = [1, 1, 1, 1, 1, 3, 254, 255, 0, 2, 4];
const UDP_SIZES = [0, 1, 511, 512, 600, 1232, 1233, 4096, 65535];

/**
 * Labels that change meaning when a name is handled as a dotted string (RFC 1035 5.1): a dot or
 * backslash inside a label, quotes, NUL and 0xFF bytes, spaces, uppercase.
 */
export const ODD_LABELS = ['a.b', '.', '\\', '\\.', '"', '\x00', '\xff', '\x00\xff', 'a b', '(', ';', '@', 'nginx.default', 'fed.example', 'Key', 'XFR-KEY', 'x\\046y'].map((l) =>
  Buffer.from(l, 'latin1'),
);

/** Keys the fuzzed server knows: one ordinary, one with a long name so its TSIG is big (RFC 8945 5.3 sizing). */
export const FUZZ_KEYS: TsigKey[] = [
  { name: 'xfr-key.', algorithm: 'hmac-sha256.', secret: Buffer.from('fedns-fuzz-secret-one-32-bytes!!') },
  { name: `${'k'.repeat(60)}.long-key-name.`, algorithm: 'hmac-sha512.', secret: Buffer.from('fedns-fuzz-secret-two-32-bytes!!') },
];

export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Wire form of a name from raw labels (any bytes). */
export function labelName(labels: Buffer[]): Buffer {
  return Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length & 0xff]), l]), Buffer.from([0])]);
}

/** Wire form of a plain dotted name (no escapes). */
export function plainName(name: string): Buffer {
  return labelName(name.split('.').filter(Boolean).map((l) => Buffer.from(l, 'latin1')));
}

export function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  return Buffer.concat([u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar)]);
}

/** One resource record; `rdlen` may lie. */
export function rr(owner: Buffer, type: number, klass: number, ttl: number, rdata: Buffer, rdlen = rdata.length): Buffer {
  return Buffer.concat([owner, u16(type), u16(klass), u32(ttl), u16(rdlen), rdata]);
}

/** One EDNS option (code, length, data); `len` may lie. */
export function option(code: number, data: Buffer, len = data.length): Buffer {
  return Buffer.concat([u16(code), u16(len), data]);
}

/** An OPT record (RFC 6891 6.1.2); `rdlen` may lie, `owner` may be other than the root. */
export function opt(udp: number, version: number, rdata: Buffer, { rdlen = rdata.length, owner = Buffer.from([0]) as Buffer, dnssecOk = false } = {}): Buffer {
  return rr(owner, RRType.OPT, udp, (version << 16) | (dnssecOk ? 0x8000 : 0), rdata, rdlen);
}

export function soaRdata(serial: number, mname = plainName('ns1.example.com.'), rname = plainName('hostmaster.example.com.')): Buffer {
  return Buffer.concat([mname, rname, u32(serial), u32(3600), u32(600), u32(86400), u32(30)]);
}

/** A query message from its parts; the counts follow the parts unless given. */
export function message(
  id: number,
  flags: number,
  question: Buffer | null,
  sections: { an?: Buffer[]; ns?: Buffer[]; ar?: Buffer[] } = {},
  counts?: [number, number, number, number],
): Buffer {
  const an = sections.an ?? [];
  const ns = sections.ns ?? [];
  const ar = sections.ar ?? [];
  const [qd, anc, nsc, arc] = counts ?? [question ? 1 : 0, an.length, ns.length, ar.length];
  return Buffer.concat([header(id, flags, qd, anc, nsc, arc), ...(question ? [question] : []), ...an, ...ns, ...ar]);
}

export function question(nameWire: Buffer, type = 1, klass = 1): Buffer {
  return Buffer.concat([nameWire, u16(type), u16(klass)]);
}

interface Kind {
  name: string;
  weight: number;
  make: (id: number) => Buffer;
}

export class Gen {
  /** Packets made by each kind so far. */
  readonly made = new Map<string, number>();
  /** Kind of the last packet. */
  kind = '';
  /** Packets carrying a valid signature from one of FUZZ_KEYS (as made; a copy is not in here). */
  readonly signed = new WeakSet<Buffer>();
  private readonly kinds: Kind[];
  private readonly totalWeight: number;

  /**
   * @param serial the zone's SOA serial, when known, so that IXFR queries hit every case
   * @param now signing time of valid signatures (seconds)
   */
  constructor(
    readonly r: Rand,
    private readonly serial = 1,
    private readonly now = Math.floor(Date.now() / 1000),
  ) {
    this.kinds = this.kindTable();
    this.totalWeight = this.kinds.reduce((s, k) => s + k.weight, 0);
  }

  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  caseMix(name: string): string {
    let out = '';
    for (const c of name) out += this.chance(0.3) ? c.toUpperCase() : c;
    return out;
  }
  /** Wire form of a known name, in mixed case. */
  knownName(names: readonly string[] = NAMES): Buffer {
    return plainName(this.caseMix(this.pick(names)));
  }
  /** Query flags: the opcode, RD and CD at random. */
  qflags(opcode = 0): number {
    return (opcode << 11) | (this.chance(0.5) ? 0x0100 : 0) | (this.chance(0.1) ? 0x0010 : 0);
  }

  /** A well-formed query, sometimes with EDNS (odd sizes, versions, options) and odd opcodes/classes. */
  valid(): Buffer {
    const opts: QueryOptions = {
      id: this.int(0x10000),
      rd: this.chance(0.5),
      opcode: this.chance(0.92) ? 0 : this.int(16),
      class: this.pick(CLASSES),
    };
    if (this.chance(0.6)) {
      opts.edns = {
        udpSize: this.pick(UDP_SIZES),
        version: this.chance(0.9) ? 0 : this.pick([1, 2, 255]),
        do: this.chance(0.3),
        options: this.chance(0.25) ? [{ code: this.pick([3, 8, 10, 12, 15, 65001]), data: this.bytes(this.int(40)) }] : [],
      };
    }
    return encodeQuery(this.caseMix(this.pick(NAMES)), this.chance(0.9) ? this.pick(TYPES) : this.int(0x10000), opts);
  }

  /** A well-formed OPT record with a few well-formed options, or none. */
  maybeOpt(p = 0.5): Buffer[] {
    if (!this.chance(p)) return [];
    const options = this.chance(0.3) ? Buffer.concat(Array.from({ length: 1 + this.int(3) }, () => this.ednsOption())) : Buffer.alloc(0);
    return [opt(this.pick(UDP_SIZES), 0, options, { dnssecOk: this.chance(0.3) })];
  }

  /**
   * One EDNS option of any shape, framed correctly: zero-length, NSID, ECS valid and malformed
   * (RFC 7871 6), EDE (RFC 8914), cookies of every length (RFC 7873 4), padding, unknown codes.
   */
  ednsOption(): Buffer {
    switch (this.int(13)) {
      case 0:
        return option(this.pick([0, 4, 11, 13, 14, 16, 20, 65001, 65535, this.int(0x10000)]), Buffer.alloc(0));
      case 1:
        return option(3, this.chance(0.8) ? Buffer.alloc(0) : this.bytes(1 + this.int(20)));
      case 2: {
        const src = this.pick([0, 8, 16, 24, 32]);
        return option(8, Buffer.concat([u16(1), Buffer.from([src, 0]), this.bytes(Math.ceil(src / 8))]));
      }
      case 3: {
        const src = this.pick([0, 48, 56, 64, 128]);
        return option(8, Buffer.concat([u16(2), Buffer.from([src, 0]), this.bytes(Math.ceil(src / 8))]));
      }
      case 4: {
        // Malformed ECS: too short, unknown family, prefix past the address, address too long,
        // a scope set in a query, bits set past the prefix.
        const k = this.int(6);
        if (k === 0) return option(8, this.bytes(this.int(4)));
        if (k === 1) return option(8, Buffer.concat([u16(this.pick([0, 3, 0xffff])), Buffer.from([24, 0]), this.bytes(3)]));
        if (k === 2) return option(8, Buffer.concat([u16(1), Buffer.from([this.pick([33, 64, 255]), 0]), this.bytes(4)]));
        if (k === 3) return option(8, Buffer.concat([u16(this.pick([1, 2])), Buffer.from([8, 0]), this.bytes(5 + this.int(20))]));
        if (k === 4) return option(8, Buffer.concat([u16(1), Buffer.from([24, 1 + this.int(32)]), this.bytes(3)]));
        return option(8, Buffer.concat([u16(1), Buffer.from([20, 0]), Buffer.from([10, 0, 0xff])]));
      }
      case 5:
        return option(15, Buffer.concat([u16(this.int(40)), Buffer.from(this.pick(['', 'stale', 'x'.repeat(50), '\x00\xff']), 'latin1')]));
      case 6:
        return option(15, this.bytes(this.int(2)));
      case 7:
        return option(10, this.bytes(8));
      case 8:
        return option(10, this.bytes(16 + this.int(17)));
      case 9:
        return option(10, this.bytes(this.pick([0, 1, 7, 9, 15, 33, 40, 41, 60])));
      case 10:
        return option(12, Buffer.alloc(this.int(100)));
      case 11:
        return option(11, this.bytes(this.pick([0, 2, 3])));
      default:
        return option(this.int(0x10000), this.bytes(this.int(30)));
    }
  }

  /** A question for a random name and common type, mixed case. */
  someQuestion(): Buffer {
    return question(this.knownName(), this.pick(COMMON_TYPES));
  }

  /** The zone apex, in mixed case. */
  apex(): Buffer {
    return plainName(this.caseMix('example.com.'));
  }

  /** A TSIG record (RFC 8945 4.2) with raw parts; class may be other than ANY. */
  tsig(keyName: Buffer, { algorithm = plainName('hmac-sha256.'), macLen = 32, klass = 255, time = this.now, originalId = this.int(0x10000), cut = -1 } = {}): Buffer {
    let rdata = Buffer.concat([algorithm, u16(Math.floor(time / 2 ** 32)), u32(time % 2 ** 32), u16(300), u16(macLen), this.bytes(macLen), u16(originalId), u16(0), u16(0)]);
    if (cut >= 0) rdata = rdata.subarray(0, Math.min(cut, rdata.length));
    return rr(keyName, RRType.TSIG, klass, 0, rdata);
  }

  /** A query signed with one of FUZZ_KEYS: QUERY, AXFR or IXFR, NOTIFY, with or without EDNS. */
  validlySigned(id: number): Buffer {
    const key = this.pick(FUZZ_KEYS);
    const which = this.int(6);
    let msg: Buffer;
    const ar = this.maybeOpt();
    if (which === 0) msg = message(id, this.qflags(), question(this.apex(), RRType.AXFR), { ar });
    else if (which === 1) msg = message(id, this.qflags(), question(this.apex(), RRType.IXFR), { ns: [this.ixfrSoa()], ar });
    else if (which === 2) msg = message(id, 0x2400, question(this.apex(), RRType.SOA), { an: [rr(Buffer.from([0xc0, 12]), RRType.SOA, 1, 3600, soaRdata(this.serial))], ar });
    else if (which === 3) msg = message(id, this.qflags(), question(plainName(this.caseMix('_postgres._tcp.db.data.fed.svc.example.com.')), RRType.SRV), { ar });
    else msg = message(id, this.qflags(), this.someQuestion(), { ar });
    const signed = signRequest(msg, key, this.now);
    this.signed.add(signed);
    return signed;
  }

  /** The SOA of an IXFR query (RFC 1995 3): owner the apex (pointer), a serial around the zone's. */
  ixfrSoa(owner: Buffer = Buffer.from([0xc0, 12])): Buffer {
    const serial = this.pick([this.serial, this.serial - 1, this.serial + 1, 0, 0xffffffff, this.int(2 ** 32)]) >>> 0;
    return rr(owner, RRType.SOA, 1, 3600, soaRdata(serial));
  }

  /** One mutated, malformed or hostile packet; `kind` names its kind. */
  packet(): Buffer {
    let x = this.int(this.totalWeight);
    let k = this.kinds[0];
    for (const kind of this.kinds) {
      if (x < kind.weight) {
        k = kind;
        break;
      }
      x -= kind.weight;
    }
    const pkt = k.make(this.int(0x10000));
    this.kind = k.name;
    this.made.set(k.name, (this.made.get(k.name) ?? 0) + 1);
    return pkt;
  }

  /** Every truncation (length 0..n) of a few valid queries with EDNS. */
  truncations(): Buffer[] {
    const out: Buffer[] = [];
    for (const name of NAMES) {
      const v = encodeQuery(name, RRType.A, { id: this.int(0x10000), edns: { udpSize: 1232, options: [{ code: 10, data: this.bytes(8) }] } });
      for (let len = 0; len <= v.length; len++) out.push(v.subarray(0, len));
    }
    return out;
  }

  kindNames(): string[] {
    return this.kinds.map((k) => k.name);
  }

  private kindTable(): Kind[] {
    const webAAAA = () => question(plainName(this.caseMix('web.shop.fed.example.com.')), 28);
    return [
      { name: 'valid', weight: 4, make: () => this.valid() },
      {
        name: 'truncated',
        weight: 2,
        make: () => {
          const v = this.chance(0.5) ? this.valid() : this.packetOf(['EDNS options', 'TSIG signed', 'IXFR', 'NOTIFY']);
          return v.subarray(0, this.int(v.length + 1));
        },
      },
      {
        name: 'bit flips',
        weight: 3,
        make: () => {
          const v = Buffer.from(this.chance(0.6) ? this.valid() : this.packetOf(['EDNS options', 'TSIG signed', 'AXFR', 'IXFR', 'name escapes in the question']));
          const flips = 1 + this.int(8);
          for (let i = 0; i < flips; i++) v[this.int(v.length)] ^= 1 << this.int(8);
          return v;
        },
      },
      {
        name: 'counts of 0xFFFF',
        weight: 1,
        make: () => {
          const v = Buffer.from(this.valid());
          if (this.chance(0.3)) for (let o = 4; o < 12; o += 2) v.writeUInt16BE(0xffff, o);
          else v.writeUInt16BE(0xffff, 4 + 2 * this.int(4));
          return v;
        },
      },
      {
        name: 'pointers in the question',
        weight: 1,
        make: (id) => {
          // Self-loop, mutual loop, forward, past the end, into the header.
          const kind = this.int(5);
          const h = header(id, 0, 1, 0, 0, 0);
          const tail = Buffer.concat([u16(1), u16(1)]);
          if (kind === 0) return Buffer.concat([h, Buffer.from([0xc0, 0x0c]), tail]);
          if (kind === 1) return Buffer.concat([h, Buffer.from([0xc0, 0x0e, 0xc0, 0x0c]), tail]);
          if (kind === 2) return Buffer.concat([h, Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 0x16]), tail, plainName('example.com.')]);
          if (kind === 3) return Buffer.concat([h, Buffer.from([0xc0 | this.int(64), this.int(256)]), tail]);
          return Buffer.concat([h, Buffer.from([7]), Buffer.from('example'), Buffer.from([0xc0, 0x0c]), tail]);
        },
      },
      {
        name: 'pointers in records',
        weight: 1,
        make: (id) => {
          const q = question(plainName('nginx.default.fed.example.com.'));
          const counts = [0, 0, 0];
          counts[this.int(3)] = 1 + (this.chance(0.2) ? this.int(5) : 0);
          const ownerOff = 12 + q.length;
          const owner = this.pick([
            Buffer.from([0xc0 | (ownerOff >> 8), ownerOff & 0xff]), // points at itself
            Buffer.from([0xc0, 0xff]), // forward / past the end
            Buffer.from([1, 0x61, 0xc0 | (ownerOff >> 8), ownerOff & 0xff]), // label then loop back
            Buffer.from([0xc0, 0x0c]), // valid backwards pointer
          ]);
          const rec = rr(owner, this.pick([1, 41, 250, 6]), this.pick([1, 1232, 255]), 0, this.bytes(4));
          return Buffer.concat([header(id, 0, 1, counts[0], counts[1], counts[2]), q, rec]);
        },
      },
      {
        name: 'label types 0x40/0x80',
        weight: 1,
        make: (id) => {
          const v = Buffer.from(encodeQuery(this.pick(NAMES.slice(1, 10)), 1, { id }));
          v[12] = this.pick([0x40, 0x80, 0x41, 0x7f, 0xbf]) | (this.chance(0.5) ? v[12] & 0x3f : 0);
          return v;
        },
      },
      {
        name: 'labels over 63',
        weight: 1,
        make: (id) => {
          const len = 64 + this.int(128);
          const name = Buffer.concat([Buffer.from([len]), Buffer.alloc(len, 0x61), plainName('example.com.')]);
          return message(id, 0, question(name), { ar: this.maybeOpt() });
        },
      },
      {
        name: 'names over 255',
        weight: 1,
        make: (id) => {
          const labels: Buffer[] = [];
          const target = this.pick([254, 255, 256, 300, 600]);
          let total = 1;
          while (total < target) {
            const l = Math.min(63, target - total - 1);
            if (l <= 0) break;
            labels.push(Buffer.alloc(l, 0x62));
            total += l + 1;
          }
          return message(id, 0, question(labelName(labels)), { ar: this.maybeOpt() });
        },
      },
      {
        name: 'OPT oddities',
        weight: 1,
        make: (id) => {
          // Huge/zero UDP size, versions, DO, rdlen past the packet, options with lying lengths.
          const k = this.int(4);
          if (k === 0) return message(id, 0, webAAAA(), { ar: [opt(this.pick([0, 1, 65535, 4096]), 0, Buffer.alloc(0))] });
          if (k === 1) return message(id, 0, webAAAA(), { ar: [opt(1232, this.pick([1, 2, 255]), this.chance(0.5) ? Buffer.alloc(0) : this.ednsOption())] });
          if (k === 2) return message(id, 0, webAAAA(), { ar: [opt(1232, 0, this.bytes(4), { rdlen: this.pick([5, 100, 0xffff]) })] });
          const rdata = Buffer.concat([u16(this.pick([10, 15, 3])), u16(this.pick([100, 0xffff, 5])), this.bytes(this.int(6))]);
          return message(id, 0, webAAAA(), { ar: [opt(1232, 0, rdata)] });
        },
      },
      {
        name: 'EDNS options',
        weight: 3,
        make: (id) => {
          // Every option shape, well framed: one, a few, or many (up to a few hundred).
          const n = this.chance(0.15) ? 20 + this.int(200) : 1 + this.int(4);
          const options = Buffer.concat(Array.from({ length: n }, () => (n > 20 && this.chance(0.7) ? option(this.int(0x10000), Buffer.alloc(0)) : this.ednsOption())));
          return message(id, this.qflags(), this.chance(0.8) ? this.someQuestion() : question(this.apex(), this.pick([RRType.SOA, RRType.AXFR, RRType.NS])), {
            ar: [opt(this.pick(UDP_SIZES), 0, options, { dnssecOk: this.chance(0.3) })],
          });
        },
      },
      {
        name: 'EDNS option past the OPT end',
        weight: 1,
        make: (id) => {
          // The last option's length runs past the OPT RDATA (which still ends inside the packet).
          const good = Buffer.concat(Array.from({ length: this.int(3) }, () => this.ednsOption()));
          const data = this.bytes(this.int(8));
          const bad = option(this.pick([3, 8, 10, 12, 15, 65001]), data, data.length + 1 + this.int(this.chance(0.5) ? 4 : 0xfff0));
          const rdata = Buffer.concat([good, bad]);
          const tail = this.chance(0.3) ? [this.tsig(plainName('xfr-key.'))] : [];
          return message(id, this.qflags(), this.someQuestion(), { ar: [opt(this.pick(UDP_SIZES), 0, rdata), ...tail] });
        },
      },
      {
        name: 'EDNS option header cut by the OPT end',
        weight: 1,
        make: (id) => {
          // 1 to 3 bytes after the last whole option: too few for an option header.
          const rdata = Buffer.concat([...Array.from({ length: this.int(3) }, () => this.ednsOption()), this.bytes(1 + this.int(3))]);
          return message(id, this.qflags(), this.someQuestion(), { ar: [opt(this.pick(UDP_SIZES), 0, rdata)] });
        },
      },
      {
        name: 'OPT not owned by the root',
        weight: 1,
        make: (id) => {
          const owner: Buffer = this.pick([plainName('x.'), Buffer.from([0xc0, 12]), labelName([this.pick(ODD_LABELS)])]);
          return message(id, this.qflags(), this.someQuestion(), { ar: [opt(1232, 0, this.chance(0.5) ? Buffer.alloc(0) : this.ednsOption(), { owner })] });
        },
      },
      {
        name: 'two OPTs',
        weight: 1,
        make: (id) => {
          const one = () => opt(this.pick(UDP_SIZES), 0, this.chance(0.5) ? Buffer.alloc(0) : this.ednsOption());
          return message(id, this.qflags(), this.someQuestion(), { ar: [one(), ...(this.chance(0.3) ? [rr(plainName('a.example.com.'), 1, 1, 0, this.bytes(4))] : []), one()] });
        },
      },
      {
        name: 'OPT outside the additional section',
        weight: 1,
        make: (id) => {
          const o = opt(1232, 0, Buffer.alloc(0));
          return this.chance(0.5) ? message(id, 0, this.someQuestion(), { an: [o] }) : message(id, 0, this.someQuestion(), { ns: [o], ar: this.maybeOpt() });
        },
      },
      { name: 'random bytes', weight: 2, make: () => this.bytes(this.int(601)) },
      {
        name: 'random header',
        weight: 1,
        make: () => {
          const v = Buffer.from(this.valid());
          if (v.length >= 12) this.bytes(12).copy(v, 0);
          return v;
        },
      },
      { name: 'random tail', weight: 1, make: () => Buffer.concat([this.valid(), this.bytes(this.int(64))]) },
      {
        name: 'insertions and deletions',
        weight: 1,
        make: () => {
          let v = Buffer.from(this.valid());
          const n = 1 + this.int(4);
          for (let i = 0; i < n; i++) {
            const at = this.int(v.length + 1);
            v = this.chance(0.5) ? Buffer.concat([v.subarray(0, at), this.bytes(1 + this.int(4)), v.subarray(at)]) : Buffer.concat([v.subarray(0, at), v.subarray(at + 1 + this.int(4))]);
          }
          return v;
        },
      },
      {
        name: 'QDCOUNT 0 or 2',
        weight: 1,
        make: (id) => {
          const q1 = question(plainName('example.com.'), 6);
          if (this.chance(0.5)) return message(id, 0, null, { ar: this.chance(0.5) ? [opt(1232, 0, Buffer.alloc(0))] : [] });
          const ar = this.maybeOpt();
          return Buffer.concat([header(id, 0, 2, 0, 0, ar.length), q1, q1, ...ar]);
        },
      },
      {
        name: 'responses and other opcodes',
        weight: 1,
        make: () => {
          const v = Buffer.from(this.valid());
          v.writeUInt16BE((v.readUInt16BE(2) & 0x87ff) | (this.int(16) << 11) | (this.chance(0.5) ? 0x8000 : 0), 2);
          return v;
        },
      },
      {
        name: 'TSIG placements',
        weight: 2,
        make: (id) => {
          // Not last, two of them, in the answer or authority section, class other than ANY.
          const q = question(this.apex(), this.pick([RRType.AXFR, RRType.IXFR, RRType.SOA, RRType.A]));
          const t = () => this.tsig(this.pick([plainName('xfr-key.'), plainName('key.'), plainName(FUZZ_KEYS[1].name)]));
          switch (this.int(5)) {
            case 0:
              return message(id, 0, q, { ar: [t(), opt(1232, 0, Buffer.alloc(0))] });
            case 1:
              return message(id, 0, q, { ar: [...this.maybeOpt(), t(), t()] });
            case 2:
              return message(id, 0, q, { an: [t()], ar: this.maybeOpt() });
            case 3:
              return message(id, 0, q, { ns: [t()], ar: this.maybeOpt() });
            default:
              return message(id, 0, q, { ar: [...this.maybeOpt(), this.tsig(plainName('xfr-key.'), { klass: this.pick([1, 3, 254]) })] });
          }
        },
      },
      {
        name: 'TSIG key names with escapes',
        weight: 2,
        make: (id) => {
          // Key names holding '.', '\', quotes, NUL, 0xFF or uppercase in a label (RFC 1035 5.1).
          const labels = [this.pick(ODD_LABELS), ...(this.chance(0.5) ? [Buffer.from(this.pick(['key', 'xfr-key', 'example']))] : [])];
          const q = this.chance(0.5) ? question(this.apex(), this.pick([RRType.AXFR, RRType.IXFR, RRType.SOA])) : this.someQuestion();
          const ns = q.readUInt16BE(q.length - 4) === RRType.IXFR ? [this.ixfrSoa()] : [];
          const algorithm = this.chance(0.8) ? plainName('hmac-sha256.') : labelName([this.pick(ODD_LABELS)]);
          return message(id, this.qflags(), q, { ns, ar: [...this.maybeOpt(), this.tsig(labelName(labels), { algorithm })] });
        },
      },
      {
        name: 'TSIG RDATA cut short',
        weight: 1,
        make: (id) => {
          const t = this.tsig(plainName(this.pick(['xfr-key.', 'key.'])), { cut: this.int(40) });
          return message(id, 0, question(this.apex(), this.pick([RRType.AXFR, RRType.SOA, RRType.A])), { ar: [...this.maybeOpt(), t] });
        },
      },
      {
        name: 'TSIG unknown algorithm',
        weight: 1,
        make: (id) => {
          const algorithm = plainName(this.pick(['hmac-md5.sig-alg.reg.int.', 'gss-tsig.', 'hmac-sha3.', 'HMAC-SHA256.', '.', 'hmac-sha1']));
          const t = this.tsig(plainName(this.pick(['xfr-key.', FUZZ_KEYS[1].name])), { algorithm, macLen: this.pick([0, 16, 32, 64]) });
          return message(id, 0, question(this.apex(), this.pick([RRType.AXFR, RRType.SOA, RRType.A])), { ar: [...this.maybeOpt(), t] });
        },
      },
      { name: 'TSIG signed', weight: 3, make: (id) => this.validlySigned(id) },
      {
        name: 'TSIG bad MAC or time',
        weight: 1,
        make: (id) => {
          if (this.chance(0.5)) {
            const key = this.pick(FUZZ_KEYS);
            return signRequest(message(id, 0, this.someQuestion(), { ar: this.maybeOpt() }), key, this.now - 100_000);
          }
          const v = Buffer.from(this.validlySigned(id));
          v[v.length - 10 - this.int(30)] ^= 1 << this.int(8);
          return v;
        },
      },
      {
        name: 'name escapes in the question',
        weight: 3,
        make: (id) => {
          // An odd label put in place of a label, joined from two, or in front of a zone name.
          const base = this.pick(NAMES.slice(0, 13))
            .split('.')
            .filter(Boolean)
            .map((l) => Buffer.from(this.caseMix(l), 'latin1'));
          const k = this.int(3);
          if (k === 0 && base.length > 2) base.splice(this.int(base.length - 2), 1, this.pick(ODD_LABELS));
          else if (k === 1 && base.length > 3) {
            const i = this.int(base.length - 3);
            base.splice(i, 2, Buffer.concat([base[i], Buffer.from('.'), base[i + 1]]));
          } else base.unshift(this.pick(ODD_LABELS));
          const type = this.pick([...COMMON_TYPES, RRType.AXFR, RRType.IXFR]);
          return message(id, this.qflags(), question(labelName(base), type, this.chance(0.9) ? 1 : 3), {
            ns: type === RRType.IXFR ? [this.ixfrSoa()] : [],
            ar: this.maybeOpt(),
          });
        },
      },
      {
        name: 'name escapes in records',
        weight: 1,
        make: (id) => {
          const odd = () => labelName([this.pick(ODD_LABELS), Buffer.from('example'), Buffer.from('com')]);
          const k = this.int(3);
          if (k === 0) return message(id, this.qflags(), question(this.apex(), RRType.IXFR), { ns: [this.ixfrSoa(odd())], ar: this.maybeOpt() });
          if (k === 1) return message(id, this.qflags(), this.someQuestion(), { an: [rr(odd(), RRType.TXT, 1, 0, Buffer.from('\x03a.b', 'latin1'))], ar: this.maybeOpt() });
          return message(id, this.qflags(), this.someQuestion(), { ar: [rr(odd(), RRType.A, 1, 0, this.bytes(4)), ...this.maybeOpt()] });
        },
      },
      {
        name: 'AXFR',
        weight: 2,
        make: (id) => {
          const name = this.chance(0.8) ? this.apex() : this.knownName();
          const msg = message(id, this.qflags(), question(name, RRType.AXFR, this.chance(0.9) ? 1 : this.pick([3, 255])), { ar: this.maybeOpt(0.6) });
          return this.chance(0.3) ? this.signWithKnownKey(msg) : msg;
        },
      },
      {
        name: 'IXFR',
        weight: 2,
        make: (id) => {
          const k = this.int(5);
          let msg: Buffer;
          const q = question(this.chance(0.9) ? this.apex() : this.knownName(), RRType.IXFR);
          if (k === 0) msg = message(id, this.qflags(), q, { ar: this.maybeOpt(0.6) }); // no SOA
          else if (k === 1) msg = message(id, this.qflags(), q, { an: [this.ixfrSoa()], ar: this.maybeOpt(0.6) }); // SOA in the answer section
          else if (k === 2) msg = message(id, this.qflags(), q, { ns: [rr(Buffer.from([0xc0, 12]), RRType.SOA, 1, 0, this.bytes(this.int(30)))], ar: this.maybeOpt(0.6) });
          else msg = message(id, this.qflags(), q, { ns: [this.ixfrSoa()], ar: this.maybeOpt(0.6) });
          return this.chance(0.3) ? this.signWithKnownKey(msg) : msg;
        },
      },
      {
        name: 'NOTIFY',
        weight: 1,
        make: (id) => {
          const an = this.chance(0.8) ? [rr(Buffer.from([0xc0, 12]), RRType.SOA, 1, 3600, soaRdata(this.serial + this.int(3)))] : [];
          const msg = message(id, 0x2400 | (this.chance(0.2) ? 0x8000 : 0), question(this.apex(), RRType.SOA), { an, ar: this.maybeOpt() });
          return this.chance(0.3) ? this.signWithKnownKey(msg) : msg;
        },
      },
      {
        name: 'other opcodes',
        weight: 1,
        make: (id) => message(id, this.qflags(this.pick([1, 2, 3, 5, 6, 7, 15])), question(this.apex(), this.pick([RRType.SOA, RRType.AXFR, RRType.A])), { ar: this.maybeOpt() }),
      },
      {
        name: 'splice',
        weight: 1,
        make: () => {
          const a = this.valid();
          const b = this.valid();
          return Buffer.concat([a.subarray(0, this.int(a.length + 1)), b.subarray(this.int(b.length + 1))]);
        },
      },
      {
        name: 'many tiny labels',
        weight: 1,
        make: (id) => {
          const labels = Array.from({ length: 1 + this.int(127) }, () => Buffer.from([0x61 + this.int(26)]));
          return message(id, this.chance(0.5) ? 0x0100 : 0, question(labelName(labels), this.pick(TYPES)));
        },
      },
    ];
  }

  /** A packet of one of the named kinds (not counted in `made`). */
  packetOf(names: string[]): Buffer {
    const name = this.pick(names);
    const kind = this.kinds.find((k) => k.name === name);
    if (!kind) throw new Error(`no packet kind "${name}"`);
    const make = kind.make;
    const pkt = make(this.int(0x10000));
    this.kind = name;
    return pkt;
  }

  private signWithKnownKey(msg: Buffer): Buffer {
    const signed = signRequest(msg, this.pick(FUZZ_KEYS), this.now);
    this.signed.add(signed);
    return signed;
  }
}

/** The packets of one slice: all truncations first, then `n` generated packets. */
export function* packets(g: Gen, n: number): Generator<Buffer> {
  yield* g.truncations();
  for (let i = 0; i < n; i++) yield g.packet();
}
