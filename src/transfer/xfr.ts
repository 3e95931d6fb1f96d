// Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), TCP only, to allowed clients,
// optionally only with TSIG (RFC 8945). A transfer streams one immutable snapshot, so changes that
// arrive meanwhile cannot corrupt it.
import { BlockList, isIPv6, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { Rcode, RRClass, RRType } from '../dns/constants.js';
import { decodeMessage } from '../dns/message.js';
import type { ParsedQuery } from '../dns/query.js';
import type { RR, SoaData } from '../dns/records.js';
import { writeFramed } from '../dns/server.js';
import { Writer, WriteOverflow } from '../dns/writer.js';
import { zoneRecords } from '../zone/masterfile.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import type { Journal } from './journal.js';
import { ResponseSigner, verifyRequest, type TsigKey } from './tsig.js';

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

export function buildAllowList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits !== undefined) list.addSubnet(addr, Number(bits), type);
    else list.addAddress(addr, type);
  }
  return list;
}

export interface TransferStats {
  (type: 'AXFR' | 'IXFR', result: string): void;
}

export class ZoneTransfers {
  private allow: BlockList;
  private readonly sorted = new WeakMap<ZoneSnapshot, RR[]>();

  constructor(
    private policy: TransferPolicy,
    private readonly zone: () => ZoneSnapshot,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly stats?: TransferStats,
  ) {
    this.allow = buildAllowList(policy.allow);
  }

  setPolicy(p: TransferPolicy): void {
    this.policy = p;
    this.allow = buildAllowList(p.allow);
  }

  private allowed(address: string | undefined): boolean {
    if (!address) return false;
    const a = address.startsWith('::ffff:') ? address.slice(7) : address;
    return this.allow.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
  }

  /**
   * Handles an AXFR or IXFR query. Returns a response to send as usual, or null when the
   * transfer writes to the connection itself.
   */
  handle(q: ParsedQuery, msg: Buffer, conn: Socket | undefined, remote?: string): Buffer | null {
    const type = q.qtype === RRType.AXFR ? 'AXFR' : 'IXFR';
    const from = conn?.remoteAddress ?? remote;
    const zone = this.zone();
    const refuse = (why: string, rcode: number = Rcode.REFUSED) => {
      this.log.warn({ client: from, type, reason: why }, 'zone transfer refused');
      this.stats?.(type, 'refused');
      return errorResponse(msg, q, rcode);
    };
    if (q.key !== zone.apexKey || q.qclass !== RRClass.IN) return refuse('not a zone served here', Rcode.NOTAUTH);
    if (!this.allowed(from)) return refuse('client not in transfer.allow');
    let signer: ResponseSigner | undefined;
    if (q.tsigOffset >= 0) {
      const v = verifyRequest(msg, q.tsigOffset, this.policy.keys);
      if (!v.ok) {
        this.log.warn({ client: from, type, reason: v.reason }, 'zone transfer refused: TSIG');
        this.stats?.(type, 'badtsig');
        return errorResponse(msg, q, Rcode.NOTAUTH);
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

    if (!conn) {
      // IXFR over UDP: the current SOA tells the client whether to come over TCP (RFC 1995 2).
      if (type === 'AXFR') return refuse('AXFR over UDP');
      this.stats?.(type, 'udp-soa');
      return finishSigned(buildMessages(msg, q, zone.domain, [zone.soa]), signer)[0];
    }

    let records: RR[];
    let kind: string;
    if (type === 'IXFR' && clientSerial !== undefined && !serialLess(clientSerial, zone.serial)) {
      records = [zone.soa];
      kind = 'up to date';
    } else if (type === 'IXFR' && clientSerial !== undefined && this.journal.since(clientSerial)?.at(-1)?.to === zone.serial) {
      records = this.incremental(zone, clientSerial);
      kind = 'incremental';
    } else {
      records = this.full(zone);
      kind = type === 'IXFR' ? 'full (serial not in journal)' : 'full';
    }
    const messages = finishSigned(buildMessages(msg, q, zone.domain, records), signer);
    this.log.info({ client: from, type, kind, serial: zone.serial, clientSerial, records: records.length, messages: messages.length }, 'zone transfer');
    this.stats?.(type, kind === 'incremental' ? 'incremental' : kind === 'up to date' ? 'uptodate' : 'full');
    void send(conn, messages);
    return null;
  }

  /** SOA, every record, SOA (RFC 5936 2.2). */
  private full(zone: ZoneSnapshot): RR[] {
    let rs = this.sorted.get(zone);
    if (!rs) {
      rs = zoneRecords(zone);
      this.sorted.set(zone, rs);
    }
    return [...rs, zone.soa];
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

function stripTsig(msg: Buffer, q: ParsedQuery): Buffer {
  if (q.tsigOffset < 0) return msg;
  const m = Buffer.from(msg.subarray(0, q.tsigOffset));
  m.writeUInt16BE(m.readUInt16BE(10) - 1, 10);
  return m;
}

function header(w: Writer, msg: Buffer, q: ParsedQuery, ancount: number, rcode: number, aa: boolean, withQuestion: boolean): void {
  w.u16(q.id);
  w.u16(0x8000 | (q.opcode << 11) | (aa ? 0x0400 : 0) | (q.rd ? 0x0100 : 0) | rcode);
  w.u16(withQuestion ? 1 : 0);
  w.u16(ancount);
  w.u16(0);
  w.u16(0);
  if (withQuestion) w.bytes(msg.subarray(12, q.questionEnd));
}

function errorResponse(msg: Buffer, q: ParsedQuery, rcode: number): Buffer {
  const w = new Writer(512 + q.questionEnd);
  header(w, msg, q, 0, rcode, false, true);
  return w.take();
}

/** Packs records into as few messages as the budget allows; the question goes in the first. */
function buildMessages(msg: Buffer, q: ParsedQuery, apex: string, records: RR[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < records.length || out.length === 0) {
    const w = new Writer(65535);
    const first = out.length === 0;
    header(w, msg, q, 0, Rcode.NOERROR, true, first);
    if (first) w.remember(apex, 12); // the question is the apex
    let count = 0;
    while (i < records.length) {
      const mark = w.off;
      try {
        w.rr(records[i]);
      } catch (e) {
        if (!(e instanceof WriteOverflow) || count === 0) throw e;
        w.off = mark;
        break;
      }
      count++;
      i++;
      if (w.off >= MESSAGE_BUDGET) break;
    }
    const m = w.take();
    m.writeUInt16BE(count, 6);
    out.push(m);
  }
  return out;
}

function finishSigned(messages: Buffer[], signer: ResponseSigner | undefined): Buffer[] {
  return signer ? messages.map((m) => signer.sign(m)) : messages;
}

async function send(conn: Socket, messages: Buffer[]): Promise<void> {
  for (const m of messages) {
    if (conn.destroyed) return;
    if (!writeFramed(conn, m)) await new Promise((r) => conn.once('drain', r));
  }
}
