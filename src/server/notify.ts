// NOTIFY (RFC 1996) to configured secondaries when the serial changes. A burst of changes is
// coalesced into one notify per secondary; unacknowledged notifies are retried with backoff, and a
// newer serial replaces an older one still being retried. Only a NOERROR reply acknowledges: an
// error rcode (REFUSED from a secondary that does not know fedns as its primary, NOTAUTH on a
// bad key) is counted by rcode, logged and retried like no reply at all.
import { randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ipv6Groups } from '../acl.js';
import { canonicalAddress } from '../address.js';
import type { Logger } from 'pino';
import { ThrottledLog } from '../throttled-log.js';
import { Opcode, Rcode, RRClass, RRType } from '../wire/constants.js';
import { encodeMessage } from '../wire/message.js';
import type { ZoneSnapshot } from '../zone/snapshot.js';
import { lastAdditionalOffset, readTsig, responseProblem, signRequest, type TsigKey } from '../wire/tsig.js';

export interface NotifyTarget {
  host: string;
  port: number;
}

export interface NotifyOptions {
  targets: NotifyTarget[];
  /** Wait this long after a change for more changes before notifying. */
  coalesceMs: number;
  /** First retry after this long; doubles per retry. */
  retryMs: number;
  retries: number;
  key?: TsigKey;
}

/**
 * Values of fedns_notifies_total's `result` label: `rejected` is a reply with an error rcode
 * (its `rcode` label names it), `failed` a NOTIFY given up after every retry.
 */
export const NOTIFY_RESULTS = ['sent', 'acknowledged', 'rejected', 'failed'] as const;
export type NotifyStats = (result: (typeof NOTIFY_RESULTS)[number], rcode?: string) => void;

const RCODE_NAMES = new Map<number, string>(Object.entries(Rcode).map(([name, code]) => [code, name]));
/** The name of a header rcode (4 bits: a bounded label set). */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}

interface Pending {
  id: number;
  serial: number;
  attempt: number;
  timer?: NodeJS.Timeout;
  /** The last error rcode the secondary answered, if any. */
  rejected?: string;
  /** MACs of the NOTIFYs sent, when signed (one per attempt): an acknowledgement is signed over one of them. */
  macs: Buffer[];
}

/**
 * An address as replies report their source, so that a target matches the replies it sends
 * however the configuration wrote it: an IPv4-mapped IPv6 address as the IPv4 one it maps (a
 * reply to the IPv6 socket from an IPv4 sender comes from ::ffff:a.b.c.d), any other IPv6 address
 * in its one spelling (canonicalAddress), a scope (fe80::1%eth0) kept as written after it.
 */
function canonicalHost(host: string): string {
  const at = host.indexOf('%');
  if (at >= 0) return `${canonicalHost(host.slice(0, at))}${host.slice(at)}`;
  const g = ipv6Groups(host);
  if (g && g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  return canonicalAddress(host);
}

export class Notifier {
  private socket4?: UdpSocket;
  private socket6?: UdpSocket;
  private coalesce?: NodeJS.Timeout;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private readonly problems: ThrottledLog;

  constructor(
    private opts: NotifyOptions,
    private readonly zone: () => ZoneSnapshot,
    private readonly log: Logger,
    private readonly stats?: NotifyStats,
  ) {
    this.problems = new ThrottledLog(log);
  }

  setOptions(opts: NotifyOptions): void {
    this.opts = opts;
    // A target no longer named (or every target, on a replica that stopped being the transfer
    // primary) hears nothing more: its pending retries end here.
    const keep = new Set(opts.targets.map((t) => this.key(t)));
    for (const [k, p] of this.pending) {
      if (keep.has(k)) continue;
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(k);
    }
    if (opts.targets.length === 0 && this.coalesce) {
      clearTimeout(this.coalesce);
      this.coalesce = undefined;
    }
  }

  private socket(host: string): UdpSocket {
    const v6 = isIPv6(host);
    let s = v6 ? this.socket6 : this.socket4;
    if (!s) {
      s = createSocket(v6 ? 'udp6' : 'udp4');
      s.on('message', (m, rinfo) => this.reply(m, rinfo.address, rinfo.port));
      s.on('error', (e) => this.problems.warn('notify-socket-error', { err: e }, 'NOTIFY socket error'));
      s.unref();
      if (v6) this.socket6 = s;
      else this.socket4 = s;
    }
    return s;
  }

  /** The zone changed: notify every target once the burst is over. */
  changed(): void {
    if (this.closed || this.opts.targets.length === 0 || this.coalesce) return;
    this.coalesce = setTimeout(() => {
      this.coalesce = undefined;
      for (const t of this.opts.targets) this.start(t);
    }, this.opts.coalesceMs);
    this.coalesce.unref();
  }

  private key(t: NotifyTarget): string {
    return `${canonicalHost(t.host)}#${t.port}`;
  }

  private start(t: NotifyTarget): void {
    const k = this.key(t);
    const old = this.pending.get(k);
    if (old?.timer) clearTimeout(old.timer);
    // An unpredictable id (RFC 5452 spirit): a spoofed reply must not acknowledge it.
    const p: Pending = { id: randomInt(0x10000), serial: this.zone().serial, attempt: 0, macs: [] };
    this.pending.set(k, p);
    this.send(t, p);
  }

  private send(t: NotifyTarget, p: Pending): void {
    if (this.closed) return;
    const zone = this.zone();
    let msg = encodeMessage({
      id: p.id,
      opcode: Opcode.NOTIFY,
      aa: true,
      questions: [{ name: zone.domain, type: RRType.SOA, class: RRClass.IN }],
      answers: [zone.soa],
    });
    if (this.opts.key) {
      msg = signRequest(msg, this.opts.key);
      p.macs.push(readTsig(msg, lastAdditionalOffset(msg)).mac);
    }
    this.socket(t.host).send(msg, t.port, t.host);
    this.stats?.('sent');
    this.log.debug({ target: this.key(t), serial: p.serial, attempt: p.attempt }, 'NOTIFY sent');
    p.timer = setTimeout(() => {
      if (this.pending.get(this.key(t)) !== p) return;
      if (++p.attempt > this.opts.retries) {
        this.pending.delete(this.key(t));
        this.stats?.('failed');
        this.problems.warn('notify-unacknowledged', { target: this.key(t), serial: p.serial, lastAnswer: p.rejected ?? 'none' }, 'NOTIFY not acknowledged; the secondary will refresh on its own schedule');
        return;
      }
      this.send(t, p);
    }, this.opts.retryMs * 2 ** p.attempt);
    p.timer.unref();
  }

  private reply(m: Buffer, host: string, port: number): void {
    if (m.length < 12) return;
    const k = this.key({ host, port });
    const p = this.pending.get(k);
    const flags = m.readUInt16BE(2);
    if (!p || m.readUInt16BE(0) !== p.id || !(flags & 0x8000) || ((flags >> 11) & 0xf) !== Opcode.NOTIFY) return;
    const rcode = flags & 0xf;
    if (rcode !== Rcode.NOERROR) {
      // Not an acknowledgement: the pending retry stays armed.
      p.rejected = rcodeName(rcode);
      this.stats?.('rejected', p.rejected);
      this.problems.warn('notify-rejected', { target: k, rcode: p.rejected, serial: p.serial, attempt: p.attempt }, 'NOTIFY rejected by the secondary; retrying');
      return;
    }
    // A signed NOTIFY is acknowledged by a reply signed with the key (RFC 8945 5.3), not by any
    // packet that guessed its id: otherwise the retry stays armed. A reply to an earlier attempt,
    // arriving after a retry went out, acknowledges too; a NOTIFY sent unsigned before a reload
    // set the key is acknowledged only once a signed retry is.
    const key = this.opts.key;
    let unverified: string | undefined;
    if (key) {
      unverified = p.macs.length ? 'not signed' : 'sent before notifyKey was set';
      for (const mac of p.macs) if ((unverified = responseProblem(m, mac, key)) === undefined) break;
    }
    if (unverified) {
      this.problems.warn('notify-unverified', { target: k, serial: p.serial, reason: unverified }, 'NOTIFY reply does not verify with notifyKey: no acknowledgement; retrying');
      return;
    }
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(k);
    this.stats?.('acknowledged');
    this.log.debug({ target: k, serial: p.serial }, 'NOTIFY acknowledged');
  }

  close(): void {
    this.closed = true;
    if (this.coalesce) clearTimeout(this.coalesce);
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
    this.problems.flush();
    this.socket4?.close();
    this.socket6?.close();
  }
}
