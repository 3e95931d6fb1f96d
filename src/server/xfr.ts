// Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), TCP only, to allowed clients,
// optionally only with TSIG (RFC 8945). A transfer streams one immutable snapshot, so changes that
// arrive meanwhile cannot corrupt it.
import { AddressAcl } from '../acl.js';
import type { ConnectionWriter } from './connection.js';
import type { Logger } from 'pino';
import { ThrottledLog } from '../throttled-log.js';
import { Rcode, RRClass, RRType } from '../wire/constants.js';
import { decodeMessage } from '../wire/message.js';
import { nameKey } from '../wire/name.js';
import type { ParsedQuery } from '../wire/query.js';
import type { RR, SoaData } from '../wire/records.js';
import type { Encoded, RequestHead, Responder, ResponseTail, Transport } from './responder.js';
import { Writer, WriteOverflow } from '../wire/writer.js';
import { canonicalOrder, recordsOf } from '../zone/masterfile.js';
import type { ZoneNode } from '../zone/node.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import type { Journal } from './journal.js';
import { ResponseSigner, tsigErrorTail, verifyRequest, type TsigKey } from '../wire/tsig.js';

export interface TransferPolicy {
  /** Addresses and CIDR blocks allowed to transfer. */
  allow: string[];
  keys: TsigKey[];
  /** Transfers need a valid TSIG from one of `keys`. */
  requireTsig: boolean;
  /** Set on replicas that are not the transfer primary: why every transfer is refused. */
  notPrimary?: string;
}

/** Target size of one transfer message; well under 64 KiB leaves room for TSIG. */
const MESSAGE_BUDGET = 16_000;

/** RFC 1982 serial comparison: a < b. */
export function serialLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

/** Values of fedns_zone_transfers_total's `result` label. */
export const TRANSFER_RESULTS = ['full', 'incremental', 'uptodate', 'udp-soa', 'refused', 'badtsig'] as const;
export type TransferResult = (typeof TRANSFER_RESULTS)[number];

export interface TransferStats {
  (type: 'AXFR' | 'IXFR', result: TransferResult): void;
}

export class ZoneTransfers {
  private allow: AddressAcl;
  /** The last transfer queued on each connection. */
  private readonly busy = new WeakMap<ConnectionWriter, Promise<void>>();
  /** Transfers streaming or queued, by client address, and in all (MAX_TRANSFERS_*). */
  private readonly inFlight = new Map<string, number>();
  private inFlightTotal = 0;
  /** Refusals are unauthenticated and as frequent as anyone likes: a few lines a minute. */
  private readonly problems: ThrottledLog;

  constructor(
    private policy: TransferPolicy,
    private readonly zone: () => ZoneSnapshot,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly stats?: TransferStats,
  ) {
    this.allow = new AddressAcl(policy.allow);
    this.problems = new ThrottledLog(log);
  }

  setPolicy(p: TransferPolicy): void {
    this.policy = p;
    this.allow = new AddressAcl(p.allow);
  }

  /** Why `client` may not have the whole zone over HTTP (no TSIG there), or undefined if it may. */
  zoneRefusal(client: string | undefined): string | undefined {
    // One zone per serial: only the transfer primary hands out the zone, by HTTP as by AXFR.
    if (this.policy.notPrimary) return this.policy.notPrimary;
    if (this.policy.requireTsig) return 'transfer.requireTsig is on; transfer the zone by AXFR with a TSIG key';
    if (!this.allow.allows(client)) return `${client ?? 'this client'} is not in transfer.allow`;
    return undefined;
  }

  /**
   * Handles an AXFR or IXFR query. Returns a response to send as usual, or null when the
   * transfer writes to the connection itself. Every message is built by `responder.build`.
   */
  handle(q: ParsedQuery, msg: Buffer, conn: ConnectionWriter | undefined, remote: string | undefined, responder: Responder): Buffer | null {
    const type = q.qtype === RRType.AXFR ? 'AXFR' : 'IXFR';
    const from = conn?.remoteAddress ?? remote;
    const zone = this.zone();
    const transport: Transport = conn ? 'tcp' : 'udp';
    let signer: ResponseSigner | undefined;
    const refuse = (why: string, rcode: number = Rcode.REFUSED) => {
      this.problems.warn('transfer-refused', { client: from, type, reason: why }, 'zone transfer refused');
      this.stats?.(type, 'refused');
      // Once the request's TSIG has verified, every answer to it is signed (RFC 8945 5.3).
      return responder.build(msg, q, transport, rcode, false, undefined, true, false, 0, signer);
    };
    // The TSIG is verified first: once it has, every answer to the request is signed, refusals too.
    if (q.tsigOffset >= 0) {
      const v = verifyRequest(msg, q.tsigOffset, this.policy.keys);
      if (!v.ok) {
        this.problems.warn('transfer-badtsig', { client: from, type, reason: v.reason }, 'zone transfer refused: TSIG');
        this.stats?.(type, 'badtsig');
        // A TSIG that cannot be read, or a MAC size no signer may send, is FORMERR; otherwise
        // NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME, BADTRUNC) in a TSIG RR (RFC 8945 5.2).
        if (!v.tsig || v.formerr) return responder.build(msg, q, transport, Rcode.FORMERR, false, undefined, true);
        return responder.build(msg, q, transport, Rcode.NOTAUTH, false, undefined, true, false, 0, tsigErrorTail(v.tsig, v.error, v.key));
      }
      signer = new ResponseSigner(v.key, v.tsig);
    }
    if (q.key !== zone.apexKey || q.qclass !== RRClass.IN) return refuse('not a zone served here', Rcode.NOTAUTH);
    if (!this.allow.allows(from)) return refuse('client not in transfer.allow');
    if (!signer && this.policy.requireTsig) return refuse('TSIG required');
    // One replica numbers the serials secondaries see: one zone per serial (RFC 1034 4.3.5).
    if (this.policy.notPrimary) return refuse(this.policy.notPrimary);
    if (!zone.ready) return refuse('no member cluster has synced yet', Rcode.SERVFAIL);

    let clientSerial: number | undefined;
    if (type === 'IXFR') {
      try {
        // The zone's own SOA (RFC 1995 3): one of another owner names no serial of this zone.
        const soa = decodeMessage(stripTsig(msg, q)).authorities.find((r) => r.type === RRType.SOA && nameKey(r.name) === zone.apexKey);
        clientSerial = soa ? (soa.data as SoaData).serial : undefined;
      } catch {
        return refuse('IXFR query without a readable SOA', Rcode.FORMERR);
      }
      if (clientSerial === undefined) return refuse("IXFR query without the zone's SOA in the authority section", Rcode.FORMERR);
    }

    if (!conn) {
      // IXFR over UDP: the current SOA tells the client whether to come over TCP (RFC 1995 2).
      if (type === 'AXFR') return refuse('AXFR over UDP');
      this.stats?.(type, 'udp-soa');
      return responder.build(msg, q, 'udp', Rcode.NOERROR, true, soaSection(q, zone), true, false, 0, signer);
    }
    const req = requestOf(msg, q, responder, signer);

    let records: RR[] | undefined;
    let kind: string;
    if (type === 'IXFR' && clientSerial !== undefined && !serialLess(clientSerial, zone.serial)) {
      records = [zone.soa];
      kind = 'up to date';
    } else if (type === 'IXFR' && clientSerial !== undefined && this.journal.since(clientSerial)?.at(-1)?.to === zone.serial) {
      records = this.incremental(zone, clientSerial);
      kind = 'incremental';
    } else {
      kind = type === 'IXFR' ? 'full (serial not in journal)' : 'full';
    }
    // A transfer streams as fast as its client reads: one that never reads holds its connection
    // until the idle timeout. A few per client, and a few more in all, as BIND's transfers-out.
    const client = from ?? '';
    const mine = this.inFlight.get(client) ?? 0;
    if (mine >= MAX_TRANSFERS_PER_CLIENT || this.inFlightTotal >= MAX_TRANSFERS) {
      return refuse(mine >= MAX_TRANSFERS_PER_CLIENT ? `${mine} transfers of this client under way` : `${this.inFlightTotal} transfers under way`, Rcode.SERVFAIL);
    }
    this.inFlight.set(client, mine + 1);
    this.inFlightTotal++;
    this.stats?.(type, kind === 'incremental' ? 'incremental' : kind === 'up to date' ? 'uptodate' : 'full');
    const started = performance.now();
    const counted = { records: 0 };
    // One snapshot's records, chosen now: changes published while they stream are not in them.
    const stream = async () => {
      const rs = records ?? fullRecords(zone, await canonicalOrder(zone));
      return send(conn, messagesOf(req, zone.domain, rs, counted));
    };
    // Transfers asked for on one connection go out one after the other, never interleaved.
    const run = (this.busy.get(conn) ?? Promise.resolve()).then(stream);
    this.busy.set(conn, run.then(() => undefined, () => undefined));
    conn.hold(run); // the connection reads no more queries until the transfer is out
    const done = () => {
      this.inFlightTotal--;
      const n = (this.inFlight.get(client) ?? 1) - 1;
      if (n > 0) this.inFlight.set(client, n);
      else this.inFlight.delete(client);
    };
    run.then(done, done);
    void run.then(
      ({ messages, complete }) =>
        this.log.info(
          { client: from, type, kind, serial: zone.serial, clientSerial, records: counted.records, messages, complete, ms: Math.round(performance.now() - started) },
          'zone transfer',
        ),
      (e: unknown) => {
        this.problems.warn('transfer-failed', { err: e, client: from, type }, 'zone transfer failed');
        conn.destroy();
      },
    );
    return null;
  }

  /** RFC 1995 4: SOA(new), then per delta SOA(old) removed SOA(next) added, then SOA(new). */
  private incremental(zone: ZoneSnapshot, clientSerial: number): RR[] {
    const soaAt = (serial: number): RR => ({ ...zone.soa, data: { ...(zone.soa.data as SoaData), serial } });
    const out: RR[] = [zone.soa];
    const deltas = this.journal.since(clientSerial) ?? [];
    deltas.forEach((d, i) => {
      // Each SOA as it was at that serial: an SOA change shows as old SOA out, new SOA in.
      const next = deltas[i + 1];
      const toSoa = next ? (next.fromSoa ?? soaAt(d.to)) : d.to === zone.serial ? zone.soa : soaAt(d.to);
      out.push(d.fromSoa ?? soaAt(d.from), ...d.change.removed, toSoa, ...d.change.added);
    });
    out.push(zone.soa);
    return out;
  }
}

/** SOA, every record, SOA (RFC 5936 2.2), read from the nodes as the messages are encoded. */
function* fullRecords(zone: ZoneSnapshot, nodes: ZoneNode[]): Generator<RR> {
  yield zone.soa;
  yield* recordsOf(nodes);
  yield zone.soa;
}

function stripTsig(msg: Buffer, q: ParsedQuery): Buffer {
  if (q.tsigOffset < 0) return msg;
  const m = Buffer.from(msg.subarray(0, q.tsigOffset));
  m.writeUInt16BE(m.readUInt16BE(10) - 1, 10);
  return m;
}

/**
 * What the messages of a transfer are built from, copied when the query arrives: the parsed
 * query object is the responder's and is reused for the next query while a transfer streams.
 */
interface TransferRequest {
  /** The query's header and question. */
  msg: Buffer;
  head: RequestHead;
  responder: Responder;
  signer?: ResponseTail;
}

function requestOf(msg: Buffer, q: ParsedQuery, responder: Responder, signer?: ResponseTail): TransferRequest {
  const { opcode, rd, cd, questionEnd, qtype, edns, udpSize, dnssecOk, nsid } = q;
  return { msg: Buffer.from(msg.subarray(0, questionEnd)), head: { opcode, rd, cd, questionEnd, qtype, edns, udpSize, dnssecOk, nsid }, responder, signer };
}

/** The zone's SOA as the answer section after the question (the apex). */
function soaSection(q: ParsedQuery, zone: ZoneSnapshot): Encoded {
  const w = new Writer(65535);
  w.remember(zone.domain, 12);
  w.off = q.questionEnd;
  w.rr(zone.soa);
  return { bytes: w.buf.subarray(q.questionEnd, w.off), ancount: 1, nscount: 0, required: w.off - q.questionEnd, additional: [], turns: 1 };
}

/**
 * Packs records into as few messages as the budget allows, one message at a time, each built
 * (and signed, in order) by the responder with room kept for its OPT and TSIG; the question goes
 * in the first. `counted.records` grows by each message's records.
 */
function* messagesOf(req: TransferRequest, apex: string, records: Iterable<RR>, counted?: { records: number }): Generator<Buffer> {
  const it = records[Symbol.iterator]();
  let next = it.next();
  let first = true;
  while (!next.done || first) {
    const withQuestion = first;
    const start = withQuestion ? req.head.questionEnd : 12;
    const w = new Writer(start + req.responder.room(req.head, 'tcp', withQuestion, req.signer));
    if (first) w.remember(apex, 12); // the question is the apex
    w.off = start;
    first = false;
    let count = 0;
    while (!next.done) {
      const mark = w.off;
      try {
        w.rr(next.value);
      } catch (e) {
        if (!(e instanceof WriteOverflow) || count === 0) throw e;
        w.off = mark; // this record opens the next message
        break;
      }
      count++;
      next = it.next();
      if (w.off >= MESSAGE_BUDGET) break;
    }
    if (counted) counted.records += count;
    const body: Encoded = { bytes: w.buf.subarray(start, w.off), ancount: count, nscount: 0, required: w.off - start, additional: [], turns: 1 };
    // Over TCP nothing is rate limited: build() always gives a message.
    yield req.responder.build(req.msg, req.head, 'tcp', Rcode.NOERROR, true, body, withQuestion, false, 0, req.signer)!;
  }
}

/** Transfers of one zone under way (streaming or queued on their connection) for one client address, and in all. */
export const MAX_TRANSFERS_PER_CLIENT = 4;
export const MAX_TRANSFERS = 10;

/** Messages encoded between two turns of the event loop: queries wait at most for this many. */
const MESSAGES_PER_TURN = 4;

/**
 * Encodes, signs and writes the messages one by one through the connection's writer, waiting
 * while the client has too much unread and letting the event loop run between batches, so that a
 * big transfer neither piles up in memory nor holds up queries while it is encoded.
 */
async function send(conn: ConnectionWriter, messages: Iterable<Buffer>): Promise<{ messages: number; complete: boolean }> {
  let n = 0;
  for (const m of messages) {
    if (conn.destroyed) return { messages: n, complete: false }; // the client went away
    n++;
    if (!conn.send(m)) await conn.writable();
    else if (n % MESSAGES_PER_TURN === 0) await new Promise((r) => setImmediate(r));
  }
  return { messages: n, complete: true };
}
