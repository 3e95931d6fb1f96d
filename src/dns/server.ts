// UDP and TCP listeners (RFC 1035 4.2, RFC 7766). Each listen address gets both.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { createServer, isIP, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Responder } from './responder.js';
import type { ResponseRateLimiter } from './rrl.js';
import { BatchSocket, UDP_STATS, type UdpChoice, type UdpStats } from './udp-batch.js';
import { listenError } from '../listen-error.js';
import { ThrottledLog } from '../ops/log.js';

export interface ServerLimits {
  /** Seconds a TCP connection may sit idle (RFC 7766 6.2.3). */
  idleTimeout: number;
  maxConnections: number;
}

export interface ListenAddr {
  host: string;
  port: number;
}

interface Listener {
  addr: ListenAddr;
  udp: UdpSocket | BatchSocket;
  tcp: Server;
}

/** How long a UDP socket of a listen address removed by a reload keeps answering. */
const UDP_LINGER_MS = 1000;

const addrText = (a: ListenAddr) => (isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

export class DnsServer {
  private readonly listeners = new Map<string, Listener>();
  private readonly connections = new Set<Socket>();
  /** Removed addresses whose UDP socket still answers for a moment: key -> close it now. */
  private readonly lingering = new Map<string, () => Promise<void>>();
  private closing = false;
  /** Per-packet problems: a few log lines a minute, whatever clients send. */
  private readonly problems: ThrottledLog;

  /** Response rate limiting of UDP answers; undefined: off. */
  rrl?: ResponseRateLimiter;

  /** Called with each answered query's handling time in seconds. */
  onLatency?: (transport: 'udp' | 'tcp', seconds: number) => void;

  /** UDP through node:dgram, or batched through the native addon (udp-batch.ts); set before listen(). */
  udpPath: UdpChoice = { path: 'dgram', reason: 'default' };
  /** Counts of batched sockets already closed, so the totals never go backwards. */
  private readonly retiredUdp = Object.fromEntries(UDP_STATS.map((k) => [k, 0])) as UdpStats;

  constructor(
    private readonly responder: Responder,
    private limits: ServerLimits,
    private readonly log: Logger,
  ) {
    this.problems = new ThrottledLog(log);
  }

  /** Addresses actually bound (port 0 resolved). */
  addresses(): ListenAddr[] {
    return [...this.listeners.values()].map((l) => {
      const a = l.udp.address();
      return { host: a.address, port: a.port };
    });
  }

  /** What the batched UDP sockets counted, open and closed ones (all zero on the dgram path). */
  udpStats(): UdpStats {
    const total = { ...this.retiredUdp };
    for (const l of this.listeners.values()) {
      if (!(l.udp instanceof BatchSocket)) continue;
      const s = l.udp.stats();
      for (const k of UDP_STATS) total[k] += s[k];
    }
    return total;
  }

  /** One UDP query, on either path: the answer to send, or null (none, or held back by rate limiting). */
  private answerUdp(msg: Buffer, address: string): Buffer | null {
    const t0 = performance.now();
    let out: Buffer | null;
    try {
      out = this.responder.answer(msg, 'udp', undefined, address);
    } catch (e) {
      this.problems.error('query-failed', { err: e, from: address }, 'query failed');
      return null;
    }
    if (!out) return null;
    if (this.rrl !== undefined && (out = this.rrl.filter(out, address)) === null) return null;
    this.onLatency?.('udp', (performance.now() - t0) / 1000);
    return out;
  }

  setLimits(limits: ServerLimits): void {
    this.limits = limits;
    for (const l of this.listeners.values()) l.tcp.maxConnections = limits.maxConnections;
  }

  /** Makes the set of listen addresses exactly `addrs`: opens new ones first, then closes the rest. */
  async listen(addrs: ListenAddr[]): Promise<void> {
    const wanted = new Map(addrs.map((a) => [addrText(a), a]));
    const opened: Listener[] = [];
    try {
      for (const [key, a] of wanted) {
        if (this.listeners.has(key)) continue;
        await this.lingering.get(key)?.();
        const l = await this.open(a);
        opened.push(l);
        this.listeners.set(key, l);
      }
    } catch (e) {
      for (const l of opened) {
        await closeListener(l);
        this.listeners.delete(addrText(l.addr));
      }
      throw e;
    }
    for (const [key, l] of this.listeners) {
      if (wanted.has(key)) continue;
      this.listeners.delete(key);
      // Datagrams already sent to this address (or queued in its socket) are still answered.
      l.tcp.close();
      const end = () => (clearTimeout(timer), this.lingering.delete(key), closeListener(l));
      const timer = setTimeout(end, UDP_LINGER_MS).unref();
      this.lingering.set(key, end);
      this.log.info({ address: key }, 'stopped listening');
    }
  }

  private async open(a: ListenAddr): Promise<Listener> {
    // Port 0: UDP picks a free port and TCP takes the same number, which another socket may
    // already hold for TCP: then try again with a fresh one.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.openOnce(a);
      } catch (e) {
        if (a.port !== 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw listenError('DNS (UDP and TCP)', 'listen', addrText(a), e);
      }
    }
  }

  private async openDgram(a: ListenAddr): Promise<UdpSocket> {
    // A deep receive buffer absorbs bursts instead of dropping them (the kernel may cap it lower).
    // Replies go to rinfo's address, always an IP literal: once bound, skip dgram's per-send
    // dns.lookup (option parsing plus a nextTick per datagram, ~15% of the UDP path's CPU).
    let literal = false;
    const family = isIPv6(a.host) ? 6 : 4;
    const lookup = (host: string, options: LookupOneOptions, cb: (err: Error | null, address: string, family: number) => void) => {
      if (literal) cb(null, host, family);
      else dnsLookup(host, options, cb);
    };
    const udp = createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, lookup });
    udp.on('message', (msg, rinfo) => {
      const out = this.answerUdp(msg, rinfo.address);
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(a.port, a.host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (e) => this.problems.error('udp-socket-error', { err: e, address: addrText(a) }, 'UDP socket error'));
    literal = true;
    return udp;
  }

  private async openOnce(a: ListenAddr): Promise<Listener> {
    const udp = this.udpPath.addon ? await this.openBatched(a) : await this.openDgram(a);
    const bound = udp.address().port;
    const tcp = createServer((s) => this.accept(s));
    tcp.maxConnections = this.limits.maxConnections;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        // Port 0: TCP takes the port UDP got, so one number serves both.
        tcp.listen(bound, a.host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      udp.close();
      throw e;
    }
    tcp.on('error', (e) => this.log.error({ err: e, address: addrText(a) }, 'TCP listener error'));
    this.log.info({ address: addrText({ host: a.host, port: bound }), udp: this.udpPath.path }, 'listening on UDP and TCP');
    return { addr: a, udp, tcp };
  }

  private async openBatched(a: ListenAddr): Promise<BatchSocket> {
    // The addon binds IP literals only: resolve a host name once, as dgram's bind() would.
    const host = isIP(a.host) ? a.host : (await dnsLookupAsync(a.host)).address;
    return new BatchSocket(
      this.udpPath.addon!,
      host,
      a.port,
      (msg, address) => this.answerUdp(msg, address),
      (e, from) => this.problems.error('query-failed', { err: e, from }, 'query failed'),
      (final) => {
        for (const k of UDP_STATS) this.retiredUdp[k] += final[k];
      },
    );
  }

  private accept(s: Socket): void {
    if (this.closing) {
      s.destroy();
      return;
    }
    this.connections.add(s);
    s.setNoDelay(true);
    s.setTimeout(this.limits.idleTimeout * 1000, () => s.destroy());
    // Received bytes not yet a whole message, kept as chunks: joined once a message is complete,
    // so a client sending one byte at a time costs linear, not quadratic, copying.
    let parts: Buffer[] = [];
    let have = 0;
    // A message must arrive whole within the idle timeout of its first byte: a client trickling
    // bytes would otherwise hold the connection open forever (each byte resets the idle timer).
    let partial: NodeJS.Timeout | undefined;
    s.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      have += chunk.length;
      let answered = false;
      // Several queries per connection, answered as they complete (RFC 7766 6.2.1).
      while (have >= 2) {
        if (parts[0].length < 2) parts = [Buffer.concat(parts, have)];
        const end = 2 + parts[0].readUInt16BE(0);
        if (have < end) break;
        const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
        const msg = buf.subarray(2, end);
        parts = have > end ? [buf.subarray(end)] : [];
        have -= end;
        answered = true;
        const t0 = performance.now();
        let out: Buffer | null = null;
        try {
          out = this.responder.answer(msg, 'tcp', s);
        } catch (e) {
          this.log.error({ err: e, from: s.remoteAddress }, 'query failed');
        }
        if (out) {
          writeFramed(s, out);
          this.onLatency?.('tcp', (performance.now() - t0) / 1000);
        }
      }
      if (answered && partial) {
        clearTimeout(partial);
        partial = undefined;
      }
      if (have > 0) partial ??= setTimeout(() => s.destroy(), this.limits.idleTimeout * 1000);
      else if (this.closing) s.end();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (partial) clearTimeout(partial);
      this.connections.delete(s);
    });
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** Stops accepting, lets connections finish what they have received, then closes them. */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all([...listeners.map(closeListener), ...[...this.lingering.values()].map((end) => end())]);
    // A query may already sit in a connection's receive buffer, unread: keep each connection
    // open until it has been quiet for a moment, answer what arrives, then close our side.
    const quietMs = Math.min(250, graceMs);
    for (const s of this.connections) s.setTimeout(quietMs, () => s.end());
    const deadline = Date.now() + graceMs;
    while (this.connections.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.connections) s.destroy();
  }
}

export function writeFramed(s: Socket, msg: Buffer): boolean {
  const frame = Buffer.allocUnsafe(2 + msg.length);
  frame.writeUInt16BE(msg.length, 0);
  msg.copy(frame, 2);
  return s.write(frame);
}

/** Stops accepting on both sockets; open TCP connections are left to finish (see close()). */
function closeListener(l: Listener): Promise<void> {
  l.tcp.close();
  return new Promise((resolve) => {
    try {
      l.udp.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
