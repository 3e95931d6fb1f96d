// Bytes in, bytes out: answers one query from the current zone snapshot.
// Positive answers are encoded once per (name, type, rotation) and cached; a response is the
// query's header and question (case preserved) followed by the cached bytes, whose owner names
// are compression pointers into that question.
import type { ConnectionWriter } from './connection.js';
import type { AddressAcl } from '../acl.js';
import { LRUCache } from 'lru-cache';
import { CLASSIC_UDP_PAYLOAD, EdeCode, EdnsOption, MAX_UDP_PAYLOAD, Opcode, RRClass, RRType, Rcode } from './constants.js';
import { keyIsInZone, nameKey } from './name.js';
import { newParsedQuery, parseQuery, ParseFailure, type ParsedQuery } from './query.js';
import type { RR } from './records.js';
import { Writer } from './writer.js';
import type { Answer, ZoneNode } from '../zone/node.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import { ResponseSigner, tsigErrorResponse, verifyRequest, type TsigKey } from '../transfer/tsig.js';

export type Transport = 'udp' | 'tcp';

/** Encoded sections after the question: answer + authority, then additional RRsets. */
interface Encoded {
  bytes: Buffer;
  ancount: number;
  nscount: number;
  /** Length of answer + authority. */
  required: number;
  /** End offset and record count of each additional RRset, in order. */
  additional: { end: number; count: number }[];
}

/** Answer-cache entry for one query name (lookup key). */
interface CacheEntry {
  /** Snapshot this entry was last validated against. */
  zone: ZoneSnapshot;
  node: ZoneNode;
  /** Query type -> encoded answer per rotation. */
  byType: Map<number, Encoded[]>;
  /** Types whose encoding includes the SOA (NODATA after a CNAME chain). */
  withSoa: Set<number>;
  /** The query type last answered for this name, with its variants: most names see one type. */
  fastType: number;
  fastVariants: Encoded[];
  fastTurns: number;
}

export interface QueryObserver {
  (transport: Transport, qtype: number, rcode: number, query: ParsedQuery | undefined): void;
}

/**
 * Hook for zone transfers: returns the response to send, or null when it writes to the
 * connection itself.
 */
export type TransferHandler = (q: ParsedQuery, msg: Buffer, conn: ConnectionWriter | undefined, remote: string | undefined) => Buffer | null;

/** Who answers: see the configuration's `identity`. */
export interface Identity {
  /** id.server / hostname.bind (CH TXT) and NSID; null: not answered. */
  server: string | null;
  /** version.server / version.bind (CH TXT); null: not answered. */
  version: string | null;
  /** Answer the EDNS NSID option with `server`. */
  nsid: boolean;
}

/** CH-class names (lookup keys) an identity answers, and with which of its strings. */
const CHAOS_NAMES: [string, keyof Identity][] = [
  ['id.server.', 'server'],
  ['hostname.bind.', 'server'],
  ['version.server.', 'version'],
  ['version.bind.', 'version'],
];

export interface ResponderOptions {
  /** Query names whose encoded answers stay cached. */
  cacheSize?: number;
  observer?: QueryObserver;
}

const OPT_BASE = 11; // root owner + type + class + ttl + rdlen
const EDE_STALE = Buffer.from([0, EdnsOption.EDE, 0, 2, 0, EdeCode.STALE_ANSWER]);

export class Responder {
  private readonly q = newParsedQuery();
  private readonly w = new Writer(65535 + 512);
  private readonly cache: LRUCache<string, CacheEntry>;
  private negative = new Map<number, Encoded>();
  private negativeFor?: ZoneSnapshot;
  private rotation = 0;
  private touches = 0;
  cacheHits = 0;
  cacheMisses = 0;
  transferHandler?: TransferHandler;
  /** Who may query (queries.allow); undefined: everyone. */
  queryAcl?: AddressAcl;
  /** Keys that TSIG-signed queries may use (transfer.tsig). */
  tsigKeys: TsigKey[] = [];
  private verifiedTsig = false;
  /** NSID option bytes (code, length, identity), when NSID is answered. */
  private nsid?: Buffer;
  /** Lookup key -> TXT record (class CH) of the identity names. */
  private chaos = new Map<string, RR>();

  constructor(
    private zone: () => ZoneSnapshot,
    private readonly opts: ResponderOptions = {},
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize ?? 100_000 });
  }

  setIdentity(id: Identity): void {
    this.nsid = undefined;
    if (id.nsid && id.server !== null) {
      const text = Buffer.from(id.server, 'latin1');
      this.nsid = Buffer.concat([Buffer.from([0, EdnsOption.NSID, text.length >> 8, text.length & 255]), text]);
    }
    this.chaos = new Map();
    for (const [name, field] of CHAOS_NAMES) {
      const value = id[field];
      if (typeof value === 'string') this.chaos.set(nameKey(name), { name, type: RRType.TXT, class: RRClass.CH, ttl: 0, data: [value] });
    }
  }

  /** The response to `msg`, or null when the packet deserves no answer. */
  answer(msg: Buffer, transport: Transport, conn?: ConnectionWriter, remote?: string): Buffer | null {
    const q = this.q;
    const fail = parseQuery(msg, q);
    if (fail === ParseFailure.Drop) return null;
    if (this.queryAcl !== undefined && !this.queryAcl.allows(remote ?? conn?.remoteAddress)) {
      return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, fail === 0);
    }
    if (fail === ParseFailure.FormErr) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, q.questionEnd > 12);
    if (q.edns && q.ednsVersion > 0) return this.finish(msg, q, transport, Rcode.BADVERS, false, undefined, true);
    if (q.opcode !== Opcode.QUERY) return this.finish(msg, q, transport, Rcode.NOTIMP, false, undefined, true);
    const qt = q.qtype;
    if (q.tsigOffset >= 0 && qt !== RRType.AXFR && qt !== RRType.IXFR && !this.verifiedTsig) return this.answerSigned(msg, q, transport, conn, remote);
    if (qt === RRType.AXFR || qt === RRType.IXFR) {
      if (this.transferHandler) {
        const out = this.transferHandler(q, msg, conn, remote);
        this.opts.observer?.(transport, q.qtype, out ? out[3] & 0xf : Rcode.NOERROR, q);
        return out;
      }
      return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, true);
    }
    if (qt === RRType.OPT || qt === RRType.TSIG || qt === 0) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, true);
    if (q.qclass !== RRClass.IN) return this.chaosAnswer(msg, q, transport);
    if (qt === RRType.MAILA || qt === RRType.MAILB || (qt >= 128 && qt < 255)) return this.finish(msg, q, transport, Rcode.NOTIMP, false, undefined, true);

    const zone = this.zone();
    const entry = this.lookup(q.key, zone);
    if (!entry) {
      if (!keyIsInZone(q.key, zone.apexKey)) return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, true);
      if (!zone.ready) return this.finish(msg, q, transport, Rcode.SERVFAIL, false, undefined, true);
      return this.negativeAnswer(msg, q, transport, zone, Rcode.NXDOMAIN);
    }
    const node = entry.node;
    if (!zone.ready && (!node || node.owner !== '@')) {
      // Nothing has synced: an answer from cluster data would be a guess (docs: SERVFAIL, not NXDOMAIN).
      return this.finish(msg, q, transport, Rcode.SERVFAIL, false, undefined, true);
    }
    if (q.key === zone.apexKey && qt === RRType.SOA) return this.apexSoa(msg, q, transport, zone);
    // The rotation picked here is the one encoded below when this variant is not cached yet.
    let rotation = -1;
    if (qt === entry.fastType) {
      rotation = entry.fastTurns > 1 ? this.rotation++ % entry.fastTurns : 0;
      const hit = entry.fastVariants[rotation];
      if (hit !== undefined) {
        this.cacheHits++;
        return this.finish(msg, q, transport, Rcode.NOERROR, true, hit, true, node.stale);
      }
    }
    let type = qt;
    if (qt === RRType.ANY) {
      // RFC 8482 4.2: answer with one RRset of the name rather than all of them.
      const first = node.rrsets.keys().next();
      if (first.done) return this.negativeAnswer(msg, q, transport, zone, Rcode.NOERROR);
      type = first.value;
    }
    const ans = node.answerFor(type);
    if (!ans) return this.negativeAnswer(msg, q, transport, zone, Rcode.NOERROR);
    const enc = this.encoded(entry, qt, type, ans, q.qnameLen, zone, rotation);
    return this.finish(msg, q, transport, Rcode.NOERROR, true, enc, true, node.stale);
  }

  /**
   * A query signed with TSIG (RFC 8945) gets a signed answer when its signature verifies with a
   * configured key, else NOTAUTH with the TSIG error (secondaries sign their SOA checks).
   */
  private answerSigned(msg: Buffer, q: ParsedQuery, transport: Transport, conn?: ConnectionWriter, remote?: string): Buffer | null {
    const v = verifyRequest(msg, q.tsigOffset, this.tsigKeys);
    if (!v.ok) {
      // A TSIG record that cannot even be read is a malformed query (RFC 8945 5.2).
      if (!v.tsig) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, true);
      return tsigErrorResponse(this.finish(msg, q, transport, Rcode.NOTAUTH, false, undefined, true), v.tsig, v.error, v.key);
    }
    this.verifiedTsig = true;
    try {
      const out = this.answer(msg, transport, conn, remote);
      return out && new ResponseSigner(v.key, v.tsig).sign(out);
    } finally {
      this.verifiedTsig = false;
    }
  }

  /**
   * The node for a query name, through the answer cache. An entry made for an older snapshot is
   * revalidated with one zone lookup: if the name's node is unchanged its encodings stay (except
   * those carrying the SOA, whose serial moved).
   */
  private lookup(key: string, zone: ZoneSnapshot): CacheEntry | undefined {
    // peek() leaves recency alone: updating it on every hit costs more than a third of the
    // query path (benchmarks/throughput.sh). Every 64th hit refreshes it, so hot names stay.
    let e = this.cache.peek(key);
    if (e !== undefined && (++this.touches & 63) === 0) this.cache.get(key);
    if (e !== undefined && e.zone === zone) return e;
    const node = zone.names.get(key);
    if (node === undefined) {
      if (e !== undefined) this.cache.delete(key);
      return undefined;
    }
    if (e !== undefined && e.node === node) {
      e.zone = zone;
      for (const t of e.withSoa) e.byType.delete(t);
      e.withSoa.clear();
      e.fastType = -1;
      return e;
    }
    e = { zone, node, byType: new Map(), withSoa: new Set(), fastType: -1, fastVariants: [], fastTurns: 1 };
    this.cache.set(key, e);
    return e;
  }

  private encoded(entry: CacheEntry, qtype: number, type: number, ans: Answer, qnameLen: number, zone: ZoneSnapshot, rotation: number): Encoded {
    const byType = entry.byType;
    let variants = byType.get(type);
    if (!variants) byType.set(type, (variants = []));
    let turns = 1;
    for (const set of ans.answer) if (set.length > turns) turns = set.length;
    entry.fastType = qtype;
    entry.fastVariants = variants;
    entry.fastTurns = turns;
    const r = rotation >= 0 && rotation < turns ? rotation : turns > 1 ? this.rotation++ % turns : 0;
    const hit = variants[r];
    if (hit) {
      this.cacheHits++;
      return hit;
    }
    this.cacheMisses++;
    const enc = this.encode(entry.node.name, qnameLen, ans, r, ans.nodataAfterChain ? zone : undefined);
    if (ans.nodataAfterChain) entry.withSoa.add(type);
    variants[r] = enc;
    return enc;
  }

  /** Encodes the sections of an answer as they follow a question for `name`. */
  private encode(name: string, qnameLen: number, ans: Answer, rotate: number, soaFrom?: ZoneSnapshot): Encoded {
    const w = this.w;
    w.reset();
    w.off = 12;
    w.name(name); // seeds compression with the question (same length in any letter case)
    w.off = 12 + qnameLen + 4;
    const start = w.off;
    let ancount = 0;
    for (const set of ans.answer) {
      for (let i = 0; i < set.length; i++) w.rr(set[(i + rotate) % set.length]);
      ancount += set.length;
    }
    let nscount = 0;
    if (soaFrom) {
      w.rr(negativeSoa(soaFrom));
      nscount = 1;
    }
    const required = w.off - start;
    const additional: Encoded['additional'] = [];
    for (const set of ans.additional) {
      for (const rr of set) w.rr(rr);
      additional.push({ end: w.off - start, count: set.length });
    }
    return { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount, nscount, required, additional };
  }

  private negativeAnswer(msg: Buffer, q: ParsedQuery, transport: Transport, zone: ZoneSnapshot, rcode: number): Buffer {
    if (this.negativeFor !== zone) {
      this.negative = new Map();
      this.negativeFor = zone;
    }
    let enc = this.negative.get(q.qnameLen);
    if (!enc) {
      const w = this.w;
      w.reset();
      w.off = 12;
      // Only the zone suffix of the question matters for compression; pad the rest.
      const apexLen = zone.apexKey.length;
      w.remember(zone.domain, 12 + q.qnameLen - apexLen);
      w.off = 12 + q.qnameLen + 4;
      const start = w.off;
      w.rr(negativeSoa(zone));
      enc = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 0, nscount: 1, required: w.off - start, additional: [] };
      this.negative.set(q.qnameLen, enc);
    }
    return this.finish(msg, q, transport, rcode, true, enc, true);
  }

  /**
   * Class CH: the server's identity and version as TXT (when configured), not authoritative (no
   * zone behind them), as Knot DNS answers them; any other CH question is REFUSED.
   */
  private chaosAnswer(msg: Buffer, q: ParsedQuery, transport: Transport): Buffer {
    const rr = q.qclass === RRClass.CH && q.qtype === RRType.TXT ? this.chaos.get(q.key) : undefined;
    if (!rr) return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, true);
    const w = this.w;
    w.reset();
    w.off = 12;
    w.name(rr.name);
    w.off = 12 + q.qnameLen + 4;
    const start = w.off;
    w.rr(rr);
    const enc: Encoded = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 1, nscount: 0, required: w.off - start, additional: [] };
    return this.finish(msg, q, transport, Rcode.NOERROR, false, enc, true);
  }

  private apexSoa(msg: Buffer, q: ParsedQuery, transport: Transport, zone: ZoneSnapshot): Buffer {
    const w = this.w;
    w.reset();
    w.off = 12;
    w.remember(zone.domain, 12);
    w.off = 12 + q.qnameLen + 4;
    const start = w.off;
    w.rr(zone.soa);
    const enc: Encoded = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 1, nscount: 0, required: w.off - start, additional: [] };
    return this.finish(msg, q, transport, Rcode.NOERROR, true, enc, true);
  }

  /** Assembles header, question, sections (truncating for UDP) and OPT. */
  private finish(
    msg: Buffer,
    q: ParsedQuery,
    transport: Transport,
    rcode: number,
    aa: boolean,
    enc: Encoded | undefined,
    withQuestion: boolean,
    stale = false,
  ): Buffer {
    const qEnd = withQuestion ? q.questionEnd : 12;
    const ede = stale && q.edns ? EDE_STALE : undefined;
    const nsid = q.nsid ? this.nsid : undefined;
    const optionsLen = (ede ? ede.length : 0) + (nsid ? nsid.length : 0);
    const optLen = q.edns ? OPT_BASE + optionsLen : 0;
    const limit =
      transport === 'tcp' ? 65535 : q.edns ? Math.min(Math.max(q.udpSize, CLASSIC_UDP_PAYLOAD), MAX_UDP_PAYLOAD) : CLASSIC_UDP_PAYLOAD;
    let body = 0;
    let ancount = 0;
    let nscount = 0;
    let arcount = 0;
    let tc = false;
    if (enc) {
      const room = limit - qEnd - optLen;
      if (enc.required > room) {
        tc = true;
      } else {
        body = enc.required;
        ancount = enc.ancount;
        nscount = enc.nscount;
        for (const a of enc.additional) {
          if (a.end > room) break;
          body = a.end;
          arcount += a.count;
        }
      }
    }
    const out = Buffer.allocUnsafe(qEnd + body + optLen);
    msg.copy(out, 0, 0, qEnd);
    if (body) enc!.bytes.copy(out, qEnd, 0, body);
    const flags = 0x8000 | (q.opcode << 11) | (aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | (q.cd ? 0x0010 : 0) | (rcode & 0xf);
    out.writeUInt16BE(flags, 2);
    out.writeUInt16BE(withQuestion ? 1 : 0, 4);
    out.writeUInt16BE(ancount, 6);
    out.writeUInt16BE(nscount, 8);
    out.writeUInt16BE(arcount + (q.edns ? 1 : 0), 10);
    if (q.edns) {
      let o = qEnd + body;
      out[o] = 0;
      out.writeUInt16BE(RRType.OPT, o + 1);
      out.writeUInt16BE(MAX_UDP_PAYLOAD, o + 3);
      out[o + 5] = (rcode >> 4) & 0xff;
      out[o + 6] = 0;
      out[o + 7] = q.dnssecOk ? 0x80 : 0;
      out[o + 8] = 0;
      out.writeUInt16BE(optionsLen, o + 9);
      o += OPT_BASE;
      if (nsid) o += nsid.copy(out, o);
      if (ede) ede.copy(out, o);
    }
    this.opts.observer?.(transport, q.qtype, rcode, q);
    return out;
  }
}

/** SOA for negative answers: TTL bounded by its minimum field (RFC 2308 5). */
function negativeSoa(zone: ZoneSnapshot): RR {
  const soa = zone.soa;
  const min = (soa.data as { minimum: number }).minimum;
  return soa.ttl <= min ? soa : { ...soa, ttl: min };
}

