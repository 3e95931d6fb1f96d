// Bytes in, bytes out: answers one query from the current zone snapshot.
// Positive answers are encoded once per (name, type) and cached, within a byte budget; a response
// is the query's header and question (case preserved) followed by the cached bytes, whose owner
// names are compression pointers into that question, with the records of each RRset copied in
// rotated order. build() assembles every response fedns sends, zone transfers included: header
// flags, OPT, size limits and TC, then the TSIG in the room kept for it.
import { narrowed } from './narrow.js';
import type { ConnectionWriter } from './connection.js';
import type { AddressAcl } from '../acl.js';
import { LRUCache } from 'lru-cache';
import { ThrottledLog, type LogTarget } from '../throttled-log.js';
import { CLASSIC_UDP_PAYLOAD, EdeCode, EdnsOption, MAX_UDP_PAYLOAD, Opcode, RRClass, RRType, Rcode } from '../wire/constants.js';
import { keyIsInZone, nameKey } from '../wire/name.js';
import { newParsedQuery, parseQuery, ParseFailure, type ParsedQuery } from '../wire/query.js';
import type { RR } from '../wire/records.js';
import { Writer, WriteOverflow } from '../wire/writer.js';
import type { Answer, ZoneNode } from '../zone/node.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import { ResponseSigner, tsigErrorTail, verifyRequest, type TsigKey } from '../wire/tsig.js';
import type { ResponseRateLimiter } from './rrl.js';
import { pick, planFor, type ServiceLocality } from '../zone/locality.js';
import type { ClientMap, ClientMatch } from '../client-map.js';

export type Transport = 'udp' | 'tcp';

/** Encoded sections after the question: answer + authority, then additional RRsets. */
export interface Encoded {
  bytes: Buffer;
  ancount: number;
  nscount: number;
  /** Length of answer + authority. */
  required: number;
  /** End offset and record count of each additional RRset, in order. */
  additional: { end: number; count: number }[];
  /**
   * Answer RRsets that rotate, in order. Nothing points into them (Writer.freeze), so their
   * records can be copied in any order.
   */
  rotate?: RotatingSet[];
  /** Rotations giving distinct orders: the largest rotating RRset's size, else 1. */
  turns: number;
}

/** An RRset at [first, last) of Encoded.bytes whose records a response copies in rotated order. */
interface RotatingSet {
  first: number;
  last: number;
  /** The set's bytes twice over: rotation k is the one slice from starts[k], set length long. */
  twice: Buffer;
  /** Where each record starts, relative to `first`. */
  starts: number[];
}

/** Answer-cache entry for one query name (lookup key). */
interface CacheEntry {
  key: string;
  /** Snapshot this entry was last validated against. */
  zone: ZoneSnapshot;
  node: ZoneNode;
  /** Query type -> encoded answer. */
  byType: Map<number, Encoded>;
  /** Types whose encoding includes the SOA (NODATA after a CNAME chain). */
  withSoa: Set<number>;
  /** The query type last answered for this name, with its encoding: most names see one type. */
  fastType: number;
  fast?: Encoded;
  /** Per-client answers of a name with a traffic policy: choice key -> encoded answer. */
  views?: Map<string, Encoded>;
  /**
   * The last per-client answer that was the same for every query of its client place and type
   * (one choice, one window), to answer that place again without planning: most queries of a
   * name come from a few places.
   */
  memo?: { place: object | undefined; type: number; enc: Encoded; counter: string };
  /** What the entry holds, as the cache's byte budget counts it. */
  bytes: number;
}

/** Most per-client answers kept per name; past it they are encoded again as asked. */
const MAX_VIEWS = 256;

/** How the traffic policies learn who asks (README, "Traffic policy"). */
export interface TrafficSettings {
  clients: ClientMap;
  /** Identify clients by EDNS Client Subnet (RFC 7871) and echo it with a scope. */
  ecs: boolean;
}

/** Bytes an entry and an encoding cost beyond their buffers (objects, maps, the key), roughly. */
const ENTRY_OVERHEAD = 300;
const ENCODED_OVERHEAD = 100;

function encodedBytes(e: Encoded): number {
  let n = ENCODED_OVERHEAD + e.bytes.length + 16 * e.additional.length;
  if (e.rotate) for (const r of e.rotate) n += r.twice.length + 8 * r.starts.length;
  return n;
}

/** What a response copies from its query. ParsedQuery has it; a streaming transfer keeps a copy. */
export interface RequestHead {
  opcode: number;
  rd: boolean;
  cd: boolean;
  /** Offset just past the question in the query (12 when it has none). */
  questionEnd: number;
  qtype: number;
  edns: boolean;
  udpSize: number;
  dnssecOk: boolean;
  nsid: boolean;
}

/** Appended to a response once it is sized, in the room kept for it: a TSIG (RFC 8945 5.3). */
export interface ResponseTail {
  /** Bytes append() adds. */
  readonly size: number;
  append(msg: Buffer): Buffer;
}

export interface QueryObserver {
  (transport: Transport, qtype: number, rcode: number, query: ParsedQuery | undefined): void;
}

/**
 * Hook for zone transfers: returns the response to send, or null when it writes to the
 * connection itself. Every message is built with `responder.build`.
 */
export type TransferHandler = (q: ParsedQuery, msg: Buffer, conn: ConnectionWriter | undefined, remote: string | undefined, responder: Responder) => Buffer | null;

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
  /** Bytes the answer cache may hold (default 64 MiB). */
  cacheBytes?: number;
  observer?: QueryObserver;
  /** Where exceptions on the answer path are reported (three lines a minute); default: nowhere. */
  log?: LogTarget;
}

const OPT_BASE = 11; // root owner + type + class + ttl + rdlen
const EDE_STALE = Buffer.from([0, EdnsOption.EDE, 0, 2, 0, EdeCode.STALE_ANSWER]);

export class Responder {
  private readonly q = newParsedQuery();
  private readonly w = new Writer(65535 + 512);
  private readonly cache: LRUCache<string, CacheEntry>;
  private negative = new Map<number, Encoded>();
  private negativeFor?: ZoneSnapshot;
  /** The same for the other zone, so queries alternating between zones keep both. */
  private otherNegative = new Map<number, Encoded>();
  private otherNegativeFor?: ZoneSnapshot;
  /**
   * A second zone served beside `zone` (the clusterset zone), never inside it nor around it:
   * its names are answered from it. Undefined (the default): one zone, no extra work per query.
   */
  otherZone?: () => ZoneSnapshot | undefined;
  private rotation = 0;
  private touches = 0;
  cacheHits = 0;
  cacheMisses = 0;
  /** Exceptions caught on the answer path (each one a bug, answered SERVFAIL). */
  answerErrors = 0;
  private readonly errorLog?: ThrottledLog;
  /** parseQuery's result for the packet being answered; -1 before it returned. */
  private parsed = -1;
  transferHandler?: TransferHandler;
  /** Who may query (queries.allow); undefined: everyone. */
  queryAcl?: AddressAcl;
  /** Keys that TSIG-signed queries may use (transfer.tsig). */
  tsigKeys: TsigKey[] = [];
  /** Response rate limiting of UDP responses (rateLimit); undefined: off. */
  rrl?: ResponseRateLimiter;
  /** The source address of the query being answered (answer()'s `remote`), for rate limiting. */
  private client?: string;
  /** The TCP connection of the query being answered, if it came over one. */
  private conn?: ConnectionWriter;
  /** The signer of the verified TSIG query being answered: every response to it is signed. */
  private signer?: ResponseSigner;
  /** NSID option bytes (code, length, identity), when NSID is answered. */
  private nsid?: Buffer;
  /** Lookup key -> TXT record (class CH) of the identity names. */
  private chaos = new Map<string, RR>();
  /** Client networks and ECS use; undefined: no client is known (nearest answers everyone alike). */
  traffic?: TrafficSettings;
  /** The ECS option of the query being answered, to echo (RFC 7871 7.2.1), its scope byte set. */
  private ecsEcho?: Buffer;
  /** Answers by "policy tier" (bounded: 4 policies x 10 tiers), for the metrics. */
  readonly trafficAnswers = new Map<string, number>();
  /** Windows of capped answers taken in turn. */
  private turn = 0;

  constructor(
    private zone: () => ZoneSnapshot,
    private readonly opts: ResponderOptions = {},
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize ?? 100_000, maxSize: opts.cacheBytes ?? 64 * 1024 * 1024, sizeCalculation: (e) => e.bytes });
    this.errorLog = opts.log && new ThrottledLog(opts.log, { lines: 3 });
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

  /** The source address of the query being answered (UDP: its sender; TCP: its connection's peer). */
  get queryClient(): string | undefined {
    return this.client ?? this.conn?.remoteAddress;
  }

  /**
   * The response to `msg`, or null when the packet deserves no answer. Never throws: an exception
   * while answering is a bug, counted (answerErrors), logged a few times a minute, and answered
   * SERVFAIL, with the question and OPT when they could be read.
   */
  answer(msg: Buffer, transport: Transport, conn?: ConnectionWriter, remote?: string): Buffer | null {
    this.parsed = -1;
    this.ecsEcho = undefined;
    this.client = remote;
    this.conn = conn;
    try {
      return this.respond(msg, transport, conn, remote);
    } catch (e) {
      this.ecsEcho = undefined;
      this.answerErrors++;
      this.signer = undefined;
      this.errorLog?.error('answer-failed', { err: e, client: this.queryClient }, 'answering a query failed (a bug): answered SERVFAIL');
      if (this.parsed === ParseFailure.Drop) return null;
      // Question and OPT only from a parse that completed (the parsed query is reused across packets).
      const ok = this.parsed === 0 && this.q.questionEnd <= msg.length;
      if (!ok && msg.length < 12) return null;
      if (!ok) this.q.edns = false;
      try {
        return this.finish(msg, this.q, transport, Rcode.SERVFAIL, false, undefined, ok);
      } catch {
        return null;
      }
    } finally {
      this.ecsEcho = undefined;
      this.conn = undefined;
    }
  }

  private respond(msg: Buffer, transport: Transport, conn?: ConnectionWriter, remote?: string): Buffer | null {
    const q = this.q;
    const fail = parseQuery(msg, q);
    this.parsed = fail;
    if (fail === ParseFailure.Drop) return null;
    if (this.queryAcl !== undefined && !this.queryAcl.allows(this.queryClient)) {
      return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, fail === 0);
    }
    // A DSO message (opcode 6) has no question (RFC 8490 3): unimplemented, not malformed (5.1.1),
    // when nothing else in it is; an EDNS version fedns lacks is BADVERS, as with a question. So
    // is any opcode fedns implements in no form (IQUERY, STATUS, the unassigned ones), whose
    // messages need not carry one; QUERY, NOTIFY and UPDATE without one are malformed.
    const unimplemented = fail === ParseFailure.FormErr && q.noQuestion && q.opcode !== Opcode.QUERY && q.opcode !== Opcode.NOTIFY && q.opcode !== Opcode.UPDATE;
    // Its signature is verified first, as any query's is: the NOTIMP (or BADVERS) to a valid one is signed.
    if (unimplemented && q.tsigOffset >= 0 && !this.signer) return this.answerSigned(msg, q, transport, conn, remote);
    if (unimplemented)
      return this.finish(msg, q, transport, q.edns && q.ednsVersion > 0 ? Rcode.BADVERS : Rcode.NOTIMP, false, undefined, false);
    if (fail === ParseFailure.FormErr) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, q.questionEnd > 12);
    const badVersion = q.edns && q.ednsVersion > 0;
    const qt = q.qtype;
    // A signed query is verified before anything else is decided, so that every answer to a valid
    // signature is signed, BADVERS and NOTIMP included (RFC 8945 5.3). Zone transfers verify
    // their own (the transfer handler signs every message of the stream).
    if (q.tsigOffset >= 0 && !this.signer && (badVersion || q.opcode !== Opcode.QUERY || (qt !== RRType.AXFR && qt !== RRType.IXFR))) {
      return this.answerSigned(msg, q, transport, conn, remote);
    }
    if (badVersion) return this.finish(msg, q, transport, Rcode.BADVERS, false, undefined, true);
    if (q.opcode !== Opcode.QUERY) return this.finish(msg, q, transport, Rcode.NOTIMP, false, undefined, true);
    if (qt === RRType.AXFR || qt === RRType.IXFR) {
      if (this.transferHandler) {
        const out = this.transferHandler(q, msg, conn, remote, this);
        this.opts.observer?.(transport, q.qtype, out ? out[3] & 0xf : Rcode.NOERROR, q);
        return out;
      }
      return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, true);
    }
    if (qt === RRType.OPT || qt === RRType.TSIG || qt === 0) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, true);
    if (q.qclass !== RRClass.IN) return this.chaosAnswer(msg, q, transport);
    if (qt === RRType.MAILA || qt === RRType.MAILB || (qt >= 128 && qt < 255)) return this.finish(msg, q, transport, Rcode.NOTIMP, false, undefined, true);
    if (q.ecsOffset >= 0 && q.edns && this.traffic?.ecs) this.ecsEcho = ecsOption(msg, q.ecsOffset);

    let zone = this.zone();
    if (this.otherZone !== undefined) {
      const other = this.otherZone();
      if (other !== undefined && keyIsInZone(q.key, other.apexKey)) zone = other;
    }
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
    // A getter (most names have none): read once.
    const locality = node.locality;
    if (locality !== undefined && (qt === RRType.A || qt === RRType.AAAA || qt === RRType.SRV)) {
      const ans = node.answerFor(qt);
      if (ans) return this.localAnswer(msg, q, transport, entry, locality, qt, ans, zone, conn, remote);
    }
    if (qt === entry.fastType) {
      const hit = entry.fast!;
      this.cacheHits++;
      return this.finish(msg, q, transport, Rcode.NOERROR, true, hit, true, node.stale, hit.turns > 1 ? this.rotation++ % hit.turns : 0);
    }
    let type = qt;
    if (qt === RRType.ANY) {
      // RFC 8482 4.2: answer with one RRset of the name rather than all of them.
      const first = node.rrsets.keys().next();
      if (first.done) return this.negativeAnswer(msg, q, transport, zone, Rcode.NOERROR);
      type = first.value;
      // That RRset as the client's traffic policy gives it, as A, AAAA or SRV would.
      if (locality !== undefined && (type === RRType.A || type === RRType.AAAA || type === RRType.SRV)) {
        const ans = node.answerFor(type);
        if (ans) return this.localAnswer(msg, q, transport, entry, locality, type, ans, zone, conn, remote);
      }
    }
    // An encoding already cached needs no answer: an AddressNode makes its answers when asked.
    let enc = entry.byType.get(type);
    if (enc !== undefined) {
      this.cacheHits++;
      entry.fastType = qt;
      entry.fast = enc;
    } else {
      const ans = node.answerFor(type);
      if (!ans) return this.negativeAnswer(msg, q, transport, zone, Rcode.NOERROR);
      enc = this.encoded(entry, qt, type, ans, q.qnameLen, zone);
    }
    return this.finish(msg, q, transport, Rcode.NOERROR, true, enc, true, node.stale, enc.turns > 1 ? this.rotation++ % enc.turns : 0);
  }

  /** ECS source prefix length of the query being answered (-1: none used), set by identify(). */
  private ecsSource = -1;

  /**
   * Who asks: the ECS option's subnet when ECS is on and the query has one, else the source
   * address. Sets ecsSource.
   */
  private identify(msg: Buffer, q: ParsedQuery, conn?: ConnectionWriter, remote?: string): ClientMatch | undefined {
    const t = this.traffic;
    this.ecsSource = -1;
    if (!t) return undefined;
    if (this.ecsEcho !== undefined) {
      const o = q.ecsOffset;
      const source = msg[o + 2];
      this.ecsSource = source;
      return t.clients.lookupSubnet(msg.readUInt16BE(o) as 1 | 2, msg.subarray(o + 4, o + 4 + Math.ceil(source / 8)), source);
    }
    const from = remote ?? conn?.remoteAddress;
    return from === undefined ? undefined : t.clients.lookup(from);
  }

  /**
   * A/AAAA/SRV at a name whose service has a traffic policy: the choice for this client (drawn,
   * for weighted), one window of it when addresses are capped, encoded once per choice.
   */
  private localAnswer(
    msg: Buffer,
    q: ParsedQuery,
    transport: Transport,
    entry: CacheEntry,
    loc: ServiceLocality,
    type: number,
    ans: Answer,
    zone: ZoneSnapshot,
    conn?: ConnectionWriter,
    remote?: string,
  ): Buffer | null {
    const match = this.identify(msg, q, conn, remote);
    const place = match?.place;
    if (this.ecsEcho !== undefined) {
      // The scope: how far the answer holds (RFC 7871 7.2.1). Only nearest depends on the client.
      this.ecsEcho[7] = loc.policy !== 'nearest' ? 0 : match ? match.scope : this.ecsSource;
    }
    const stale = entry.node.stale;
    const memo = entry.memo;
    if (memo !== undefined && memo.place === place && memo.type === type) {
      this.cacheHits++;
      this.trafficAnswers.set(memo.counter, (this.trafficAnswers.get(memo.counter) ?? 0) + 1);
      return this.finish(msg, q, transport, Rcode.NOERROR, true, memo.enc, true, stale, memo.enc.turns > 1 ? this.rotation++ % memo.enc.turns : 0);
    }
    const p4 = type !== RRType.AAAA ? planFor(loc, place, 4) : undefined;
    const p6 = type !== RRType.A ? planFor(loc, place, 6) : undefined;
    const draw = (p4 !== undefined && p4.choices.length > 1) || (p6 !== undefined && p6.choices.length > 1) ? Math.random() : 0;
    const c4 = p4 && pick(p4, draw);
    const c6 = p6 && pick(p6, draw);
    const turn = this.turn++;
    const w4 = c4 ? turn % c4.windows.length : 0;
    const w6 = c6 ? turn % c6.windows.length : 0;
    // A and AAAA: the window's own key (family-prefixed, made once per plan); SRV: both families'.
    const key = type === RRType.A ? c4?.keys[w4] : type === RRType.AAAA ? c6?.keys[w6] : `${type}|${c4 ? c4.keys[w4] : ''}|${c6 ? c6.keys[w6] : ''}`;
    const chosen = c4 ?? c6;
    if (chosen === undefined || key === undefined) return this.finish(msg, q, transport, Rcode.NOERROR, true, this.encoded(entry, q.qtype, type, ans, q.qnameLen, zone), true, stale);
    this.trafficAnswers.set(chosen.counter, (this.trafficAnswers.get(chosen.counter) ?? 0) + 1);
    const views = (entry.views ??= new Map());
    let enc = views.get(key);
    if (enc) this.cacheHits++;
    else {
      this.cacheMisses++;
      const windows: ReadonlySet<string>[] = [];
      if (c4 !== undefined) windows.push(c4.windows[w4]);
      if (c6 !== undefined) windows.push(c6.windows[w6]);
      enc = this.encode(entry.node.name, q.qnameLen, narrowed(ans, windows));
      if (views.size >= MAX_VIEWS) views.clear();
      views.set(key, enc);
      this.resize(entry);
    }
    const fixed = (p: typeof p4) => p === undefined || (p.choices.length <= 1 && (p.choices[0]?.windows.length ?? 1) === 1);
    if (fixed(p4) && fixed(p6)) entry.memo = { place, type, enc, counter: chosen.counter };
    return this.finish(msg, q, transport, Rcode.NOERROR, true, enc, true, stale, enc.turns > 1 ? this.rotation++ % enc.turns : 0);
  }

  /**
   * A query signed with TSIG (RFC 8945) gets a signed answer when its signature verifies with a
   * configured key, else NOTAUTH with the TSIG error (secondaries sign their SOA checks).
   */
  private answerSigned(msg: Buffer, q: ParsedQuery, transport: Transport, conn?: ConnectionWriter, remote?: string): Buffer | null {
    const v = verifyRequest(msg, q.tsigOffset, this.tsigKeys);
    if (!v.ok) {
      // A TSIG record that cannot even be read, or a MAC size no signer may send, is a malformed
      // query (RFC 8945 5.2, 5.2.2.1).
      // A message without a question (DSO) gets none back.
      const withQuestion = q.questionEnd > 12;
      if (!v.tsig || v.formerr) return this.finish(msg, q, transport, Rcode.FORMERR, false, undefined, withQuestion);
      return this.finish(msg, q, transport, Rcode.NOTAUTH, false, undefined, withQuestion, false, 0, tsigErrorTail(v.tsig, v.error, v.key));
    }
    this.signer = new ResponseSigner(v.key, v.tsig);
    try {
      return this.respond(msg, transport, conn, remote);
    } finally {
      this.signer = undefined;
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
      e.fast = undefined;
      this.resize(e);
      return e;
    }
    e = { key, zone, node, byType: new Map(), withSoa: new Set(), fastType: -1, bytes: ENTRY_OVERHEAD + key.length };
    this.cache.set(key, e);
    return e;
  }

  /** Bytes the answer cache holds, as its budget (ResponderOptions.cacheBytes) counts them. */
  get cachedBytes(): number {
    return this.cache.calculatedSize;
  }

  /** Recounts an entry's bytes; lru-cache only sizes an entry when it is set, so set it again. */
  private resize(e: CacheEntry): void {
    let bytes = ENTRY_OVERHEAD + e.key.length;
    for (const enc of e.byType.values()) bytes += encodedBytes(enc);
    if (e.views) for (const [k, enc] of e.views) bytes += k.length + encodedBytes(enc);
    if (bytes === e.bytes) return;
    e.bytes = bytes;
    if (this.cache.peek(e.key) !== e) return;
    this.cache.delete(e.key);
    this.cache.set(e.key, e);
  }

  private encoded(entry: CacheEntry, qtype: number, type: number, ans: Answer, qnameLen: number, zone: ZoneSnapshot): Encoded {
    let enc = entry.byType.get(type);
    if (enc) {
      this.cacheHits++;
    } else {
      this.cacheMisses++;
      enc = this.encode(entry.node.name, qnameLen, ans, ans.nodataAfterChain ? zone : undefined);
      if (ans.nodataAfterChain) entry.withSoa.add(type);
      entry.byType.set(type, enc);
      this.resize(entry);
    }
    entry.fastType = qtype;
    entry.fast = enc;
    return enc;
  }

  /**
   * Encodes the sections of an answer as they follow a question for `name`. RRsets of several
   * records are written frozen (see Writer.freeze) and their record offsets kept, so that build()
   * can rotate them: one encoding serves every rotation.
   */
  private encode(name: string, qnameLen: number, ans: Answer, soaFrom?: ZoneSnapshot): Encoded {
    const w = this.w;
    w.reset();
    w.off = 12;
    w.name(name); // seeds compression with the question (same length in any letter case)
    w.off = 12 + qnameLen + 4;
    const start = w.off;
    let ancount = 0;
    let turns = 1;
    let rotate: RotatingSet[] | undefined;
    let nscount = 0;
    try {
      for (const set of ans.answer) {
        if (set.length > 1) {
          const at = w.off;
          const starts: number[] = [];
          w.freeze = true;
          for (const rr of set) {
            starts.push(w.off - at);
            w.rr(rr);
          }
          w.freeze = false;
          const one = w.buf.subarray(at, w.off);
          (rotate ??= []).push({ first: at - start, last: w.off - start, twice: Buffer.concat([one, one]), starts });
          if (set.length > turns) turns = set.length;
        } else if (set.length === 1) {
          w.rr(set[0]);
        }
        ancount += set.length;
      }
      if (soaFrom) {
        w.rr(negativeSoa(soaFrom));
        nscount = 1;
      }
    } catch (e) {
      if (!(e instanceof WriteOverflow)) throw e;
      // An answer bigger than any message (one RRset of thousands of records): TC=1 on every
      // transport, as build() does for an answer that does not fit.
      w.freeze = false;
      return { bytes: Buffer.alloc(0), ancount: 0, nscount: 0, required: Infinity, additional: [], turns: 1 };
    }
    const required = w.off - start;
    const additional: Encoded['additional'] = [];
    try {
      for (const set of ans.additional) {
        for (const rr of set) w.rr(rr);
        additional.push({ end: w.off - start, count: set.length });
      }
    } catch (e) {
      // Additional RRsets past the largest message are left out, as build() leaves out those that do not fit.
      if (!(e instanceof WriteOverflow)) throw e;
      w.off = start + (additional.at(-1)?.end ?? required);
    }
    return { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount, nscount, required, additional, rotate, turns };
  }

  private negativeAnswer(msg: Buffer, q: ParsedQuery, transport: Transport, zone: ZoneSnapshot, rcode: number): Buffer | null {
    if (this.negativeFor !== zone && this.otherNegativeFor !== zone) {
      // A new snapshot replaces the cache of its own zone (same apex); the other zone's stays.
      if (this.otherNegativeFor?.apexKey === zone.apexKey) {
        this.otherNegative = new Map();
        this.otherNegativeFor = zone;
      } else {
        if (this.negativeFor !== undefined && this.negativeFor.apexKey !== zone.apexKey) {
          this.otherNegative = this.negative;
          this.otherNegativeFor = this.negativeFor;
        }
        this.negative = new Map();
        this.negativeFor = zone;
      }
    }
    const cache = this.negativeFor === zone ? this.negative : this.otherNegative;
    let enc = cache.get(q.qnameLen);
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
      enc = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 0, nscount: 1, required: w.off - start, additional: [], turns: 1 };
      cache.set(q.qnameLen, enc);
    }
    return this.finish(msg, q, transport, rcode, true, enc, true);
  }

  /**
   * Class CH: the server's identity and version as TXT (when configured), not authoritative (no
   * zone behind them), as Knot DNS answers them; any other CH question is REFUSED.
   */
  private chaosAnswer(msg: Buffer, q: ParsedQuery, transport: Transport): Buffer | null {
    const rr = q.qclass === RRClass.CH && q.qtype === RRType.TXT ? this.chaos.get(q.key) : undefined;
    if (!rr) return this.finish(msg, q, transport, Rcode.REFUSED, false, undefined, true);
    const w = this.w;
    w.reset();
    w.off = 12;
    w.name(rr.name);
    w.off = 12 + q.qnameLen + 4;
    const start = w.off;
    w.rr(rr);
    const enc: Encoded = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 1, nscount: 0, required: w.off - start, additional: [], turns: 1 };
    return this.finish(msg, q, transport, Rcode.NOERROR, false, enc, true);
  }

  private apexSoa(msg: Buffer, q: ParsedQuery, transport: Transport, zone: ZoneSnapshot): Buffer | null {
    const w = this.w;
    w.reset();
    w.off = 12;
    w.remember(zone.domain, 12);
    w.off = 12 + q.qnameLen + 4;
    const start = w.off;
    w.rr(zone.soa);
    const enc: Encoded = { bytes: Buffer.from(w.buf.subarray(start, w.off)), ancount: 1, nscount: 0, required: w.off - start, additional: [], turns: 1 };
    return this.finish(msg, q, transport, Rcode.NOERROR, true, enc, true);
  }

  /** build(), counted by the observer: the response to the query being answered. */
  private finish(
    msg: Buffer,
    q: ParsedQuery,
    transport: Transport,
    rcode: number,
    aa: boolean,
    enc: Encoded | undefined,
    withQuestion: boolean,
    stale = false,
    rotation = 0,
    tail: ResponseTail | undefined = this.signer,
  ): Buffer | null {
    const out = this.build(msg, q, transport, rcode, aa, enc, withQuestion, stale, rotation, tail);
    this.opts.observer?.(transport, q.qtype, rcode, q);
    return out;
  }

  /** Size limit of a response: 64 KiB over TCP, the client's EDNS size bounded by 512..1232 over UDP. */
  private limit(q: RequestHead, transport: Transport): number {
    return transport === 'tcp' ? 65535 : q.edns ? Math.min(Math.max(q.udpSize, CLASSIC_UDP_PAYLOAD), MAX_UDP_PAYLOAD) : CLASSIC_UDP_PAYLOAD;
  }

  /** Bytes of the OPT record a response to `q` carries (0 without EDNS). */
  private optLength(q: RequestHead, stale: boolean): number {
    if (!q.edns) return 0;
    return OPT_BASE + (stale ? EDE_STALE.length : 0) + (q.nsid && this.nsid ? this.nsid.length : 0) + (this.ecsEcho ? this.ecsEcho.length : 0);
  }

  /** Room for the sections of a response: what build() keeps of a body of this size. */
  room(q: RequestHead, transport: Transport, withQuestion: boolean, tail?: ResponseTail): number {
    return this.limit(q, transport) - (withQuestion ? q.questionEnd : 12) - this.optLength(q, false) - (tail ? tail.size : 0);
  }

  /**
   * Assembles a response: the query's header and question (`msg` up to q.questionEnd), the
   * sections of `enc` (RRsets rotated by `rotation`) as far as they fit, OPT when the query had
   * one, then `tail` (a TSIG) in the room kept for it. Answer and authority that do not fit give
   * TC=1 with no records (RFC 2181 9); additional RRsets that do not fit are left out. Over UDP,
   * response rate limiting may hold the response back (null) or cut it to a slip.
   */
  build(
    msg: Buffer,
    q: RequestHead,
    transport: Transport,
    rcode: number,
    aa: boolean,
    enc: Encoded | undefined,
    withQuestion: boolean,
    stale = false,
    rotation = 0,
    tail?: ResponseTail,
  ): Buffer | null {
    const qEnd = withQuestion ? q.questionEnd : 12;
    const ede = stale && q.edns ? EDE_STALE : undefined;
    const ecs = q.edns ? this.ecsEcho : undefined;
    const limit = this.limit(q, transport);
    const tailSize = tail ? tail.size : 0;
    // NSID is optional (RFC 5001 2.3): left out when header, question and OPT with it would not fit.
    let nsid = q.nsid && q.edns ? this.nsid : undefined;
    if (nsid && qEnd + OPT_BASE + (ede ? ede.length : 0) + (ecs ? ecs.length : 0) + nsid.length + tailSize > limit) nsid = undefined;
    const optionsLen = (ede ? ede.length : 0) + (nsid ? nsid.length : 0) + (ecs ? ecs.length : 0);
    const optLen = q.edns ? OPT_BASE + optionsLen : 0;
    let body = 0;
    let ancount = 0;
    let nscount = 0;
    let arcount = 0;
    let tc = false;
    if (enc) {
      const room = limit - qEnd - optLen - tailSize;
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
    if (body) {
      if (rotation === 0 || enc!.rotate === undefined) enc!.bytes.copy(out, qEnd, 0, body);
      else copyRotated(enc!.bytes, enc!.rotate, rotation, out, qEnd, body);
    }
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
      if (ecs) o += ecs.copy(out, o);
      if (ede) ede.copy(out, o);
    }
    // Rate limiting sees the response before it is signed: a slip (TC=1, header, question and
    // OPT) is signed like any answer (RFC 8945 5.3), and a dropped one costs no signature.
    let sent: Buffer = out;
    if (transport === 'udp' && this.rrl !== undefined && this.client !== undefined) {
      const kept = this.rrl.filter(out, this.client);
      if (kept === null) return null;
      sent = kept;
    }
    return tail ? tail.append(sent) : sent;
  }
}

/**
 * Copies body bytes [0, end) to out at `at`, each rotating RRset as the one slice of its doubled
 * copy that starts at record `rotation` (modulo the set's size): few copies per response.
 */
function copyRotated(src: Buffer, sets: RotatingSet[], rotation: number, out: Buffer, at: number, end: number): void {
  let pos = 0;
  for (const r of sets) {
    const from = r.starts[rotation % r.starts.length];
    at = copyBytes(src, pos, r.first, out, at);
    at = copyBytes(r.twice, from, from + r.last - r.first, out, at);
    pos = r.last;
  }
  copyBytes(src, pos, end, out, at);
}

/** src[from, to) to out at `at`; returns the offset after it. A loop beats Buffer.copy's fixed cost on a record or two. */
function copyBytes(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
  if (to - from > 32) return at + src.copy(out, at, from, to);
  for (let i = from; i < to; i++) out[at++] = src[i];
  return at;
}

/** The ECS option of a query at `o` (its data), copied whole for the response, scope 0 until set. */
function ecsOption(msg: Buffer, o: number): Buffer {
  const len = msg.readUInt16BE(o - 2);
  const out = Buffer.allocUnsafe(4 + len);
  msg.copy(out, 0, o - 4, o + len);
  out[7] = 0;
  return out;
}

/** SOA for negative answers: TTL bounded by its minimum field (RFC 2308 5). */
function negativeSoa(zone: ZoneSnapshot): RR {
  const soa = zone.soa;
  const min = (soa.data as { minimum: number }).minimum;
  return soa.ttl <= min ? soa : { ...soa, ttl: min };
}

