// Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), TCP only, to allowed clients,
// optionally only with TSIG (RFC 8945). A transfer streams one immutable snapshot, so changes that
// arrive meanwhile cannot corrupt it.
import { AddressAcl } from '../acl.js';
import type { ConnectionWriter } from '../dns/connection.js';
import type { Logger } from 'pino';
import { Rcode, RRClass, RRType } from '../dns/constants.js';
import { decodeMessage } from '../dns/message.js';
import type { ParsedQuery } from '../dns/query.js';
import type { RR, SoaData } from '../dns/records.js';
import { Writer, WriteOverflow } from '../dns/writer.js';
import { canonicalKey, recordsOf, sortCanonically } from '../zone/masterfile.js';
import type { ZoneNode } from '../zone/node.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import type { Journal } from './journal.js';
import { ResponseSigner, tsigErrorResponse, verifyRequest, type TsigKey } from './tsig.js';

export interface TransferPolicy {
  /** Addresses and CIDR blocks allowed to transfer. */
  allow: string[];
  keys: TsigKey[];
  /** Transfers need a valid TSIG from one of `keys`. */
  requireTsig: boolean;
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
  private readonly sorted = new WeakMap<ZoneSnapshot, Promise<ZoneNode[]>>();
  /** The last transfer queued on each connection. */
  private readonly busy = new WeakMap<ConnectionWriter, Promise<void>>();

  constructor(
    private policy: TransferPolicy,
    private readonly zone: () => ZoneSnapshot,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly stats?: TransferStats,
  ) {
    this.allow = new AddressAcl(policy.allow);
  }

  setPolicy(p: TransferPolicy): void {
    this.policy = p;
    this.allow = new AddressAcl(p.allow);
  }

  /**
   * Handles an AXFR or IXFR query. Returns a response to send as usual, or null when the
   * transfer writes to the connection itself.
   */
  handle(q: ParsedQuery, msg: Buffer, conn: ConnectionWriter | undefined, remote?: string): Buffer | null {
    const type = q.qtype === RRType.AXFR ? 'AXFR' : 'IXFR';
    const from = conn?.remoteAddress ?? remote;
    const zone = this.zone();
    let signer: ResponseSigner | undefined;
    const refuse = (why: string, rcode: number = Rcode.REFUSED) => {
      this.log.warn({ client: from, type, reason: why }, 'zone transfer refused');
      this.stats?.(type, 'refused');
      const err = errorResponse(msg, q, rcode);
      // Once the request's TSIG has verified, every answer to it is signed (RFC 8945 5.3).
      return signer ? signer.sign(err) : err;
    };
    if (q.key !== zone.apexKey || q.qclass !== RRClass.IN) return refuse('not a zone served here', Rcode.NOTAUTH);
    if (!this.allow.allows(from)) return refuse('client not in transfer.allow');
    if (q.tsigOffset >= 0) {
      const v = verifyRequest(msg, q.tsigOffset, this.policy.keys);
      if (!v.ok) {
        this.log.warn({ client: from, type, reason: v.reason }, 'zone transfer refused: TSIG');
        this.stats?.(type, 'badtsig');
        // NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME) in a TSIG RR (RFC 8945 5.2).
        const err = errorResponse(msg, q, Rcode.NOTAUTH);
        try {
          return v.tsig ? tsigErrorResponse(err, v.tsig, v.error, v.key) : err;
        } catch {
          return err; // a key or algorithm name that cannot be written back as it was read
        }
      }
      signer = new ResponseSigner(v.key, v.tsig);
    } else if (this.policy.requireTsig) {
      return refuse('TSIG required');
    }
    if (!zone.ready) return refuse('no member cluster has synced yet', Rcode.SERVFAIL);

    let clientSerial: number | undefined;
    if (type === 'IXFR') {
      try {
        const soa = decodeMessage(stripTsig(msg, q)).authorities.find((r) => r.type === RRType.SOA);
        clientSerial = soa ? (soa.data as SoaData).serial : undefined;
      } catch {
        return refuse('IXFR query without a readable SOA', Rcode.FORMERR);
      }
      if (clientSerial === undefined) return refuse('IXFR query without an SOA in the authority section', Rcode.FORMERR);
    }

    const head = requestHead(msg, q);
    if (!conn) {
      // IXFR over UDP: the current SOA tells the client whether to come over TCP (RFC 1995 2).
      if (type === 'AXFR') return refuse('AXFR over UDP');
      this.stats?.(type, 'udp-soa');
      const only = messagesOf(head, zone.domain, [zone.soa]).next().value as Buffer;
      return signer ? signer.sign(only) : only;
    }

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
    this.stats?.(type, kind === 'incremental' ? 'incremental' : kind === 'up to date' ? 'uptodate' : 'full');
    const started = performance.now();
    const counted = { records: 0 };
    // One snapshot's records, chosen now: changes published while they stream are not in them.
    const stream = async () => {
      const rs = records ?? fullRecords(zone, await this.order(zone));
      return send(conn, messagesOf(head, zone.domain, rs, counted), signer);
    };
    // Transfers asked for on one connection go out one after the other, never interleaved.
    const run = (this.busy.get(conn) ?? Promise.resolve()).then(stream);
    this.busy.set(conn, run.then(() => undefined, () => undefined));
    conn.hold(run); // the connection reads no more queries until the transfer is out
    void run.then(
      ({ messages, complete }) =>
        this.log.info(
          { client: from, type, kind, serial: zone.serial, clientSerial, records: counted.records, messages, complete, ms: Math.round(performance.now() - started) },
          'zone transfer',
        ),
      (e: unknown) => {
        this.log.warn({ err: e, client: from, type }, 'zone transfer failed');
        conn.destroy();
      },
    );
    return null;
  }

  /** The snapshot's names in transfer order, computed once per snapshot. */
  private order(zone: ZoneSnapshot): Promise<ZoneNode[]> {
    let p = this.sorted.get(zone);
    if (!p) {
      p = transferOrder(zone);
      this.sorted.set(zone, p);
    }
    return p;
  }

  /** RFC 1995 4: SOA(new), then per delta SOA(old) removed SOA(next) added, then SOA(new). */
  private incremental(zone: ZoneSnapshot, clientSerial: number): RR[] {
    const soaAt = (serial: number): RR => ({ ...zone.soa, data: { ...(zone.soa.data as SoaData), serial } });
    const out: RR[] = [zone.soa];
    for (const d of this.journal.since(clientSerial) ?? []) {
      out.push(soaAt(d.from), ...d.removed, soaAt(d.to), ...d.added);
    }
    out.push(zone.soa);
    return out;
  }
}

/** Names visited between two turns of the event loop while ordering a zone. */
const NAMES_PER_TURN = 5000;

/**
 * The names that have records, in canonical order, as `fedns zone` prints them, collected a few
 * thousand per turn of the event loop so that a big zone does not hold up queries. (The snapshot
 * is persistent: walking it across turns is safe.)
 */
async function transferOrder(zone: ZoneSnapshot): Promise<ZoneNode[]> {
  const nodes: ZoneNode[] = [];
  let n = 0;
  for (const node of zone.names.values()) {
    if (++n % NAMES_PER_TURN === 0) await new Promise((r) => setImmediate(r));
    if (!node.isEmptyNonTerminal) {
      canonicalKey(node);
      nodes.push(node);
    }
  }
  return sortCanonically(nodes);
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
 * What the responses copy from the query, taken when it arrives: the parsed query object is the
 * responder's and is reused for the next query while a transfer is still streaming.
 */
interface RequestHead {
  id: number;
  opcode: number;
  rd: boolean;
  question: Buffer;
}

function requestHead(msg: Buffer, q: ParsedQuery): RequestHead {
  return { id: q.id, opcode: q.opcode, rd: q.rd, question: Buffer.from(msg.subarray(12, q.questionEnd)) };
}

function header(w: Writer, h: RequestHead, ancount: number, rcode: number, aa: boolean, withQuestion: boolean): void {
  w.u16(h.id);
  w.u16(0x8000 | (h.opcode << 11) | (aa ? 0x0400 : 0) | (h.rd ? 0x0100 : 0) | rcode);
  w.u16(withQuestion ? 1 : 0);
  w.u16(ancount);
  w.u16(0);
  w.u16(0);
  if (withQuestion) w.bytes(h.question);
}

function errorResponse(msg: Buffer, q: ParsedQuery, rcode: number): Buffer {
  const w = new Writer(512 + q.questionEnd);
  header(w, requestHead(msg, q), 0, rcode, false, true);
  return w.take();
}

/**
 * Packs records into as few messages as the budget allows, one message at a time; the question
 * goes in the first. `counted.records` grows by each message's records.
 */
function* messagesOf(h: RequestHead, apex: string, records: Iterable<RR>, counted?: { records: number }): Generator<Buffer> {
  const it = records[Symbol.iterator]();
  let next = it.next();
  let first = true;
  while (!next.done || first) {
    const w = new Writer(65535);
    header(w, h, 0, Rcode.NOERROR, true, first);
    if (first) w.remember(apex, 12); // the question is the apex
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
    const m = w.take();
    m.writeUInt16BE(count, 6);
    if (counted) counted.records += count;
    yield m;
  }
}

/** Messages encoded between two turns of the event loop: queries wait at most for this many. */
const MESSAGES_PER_TURN = 4;

/**
 * Encodes, signs and writes the messages one by one through the connection's writer, waiting
 * while the client has too much unread and letting the event loop run between batches, so that a
 * big transfer neither piles up in memory nor holds up queries while it is encoded.
 */
async function send(conn: ConnectionWriter, messages: Iterable<Buffer>, signer: ResponseSigner | undefined): Promise<{ messages: number; complete: boolean }> {
  let n = 0;
  for (const m of messages) {
    if (conn.destroyed) return { messages: n, complete: false }; // the client went away
    n++;
    if (!conn.send(signer ? signer.sign(m) : m)) await conn.writable();
    else if (n % MESSAGES_PER_TURN === 0) await new Promise((r) => setImmediate(r));
  }
  return { messages: n, complete: true };
}
