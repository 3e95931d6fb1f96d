// UDP and TCP listeners (RFC 1035 4.2, RFC 7766). Each listen address gets both.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { createServer, isIP, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { ConnectionWriter, UNSENT_BOUND } from './connection.js';
import { ConnectionBounds } from './connection-bounds.js';
import type { Responder } from './responder.js';
import { BatchSocket, UDP_STATS, type UdpChoice, type UdpStats } from './udp-batch.js';
import { listenError } from '../listen-error.js';
import { ThrottledLog } from '../throttled-log.js';

export interface ServerLimits {
  /** Seconds a TCP connection may sit idle, or stall with answers unread (RFC 7766 6.2.3). */
  idleTimeout: number;
  maxConnections: number;
  /** Connections one source address may hold. */
  maxConnectionsPerClient: number;
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

/** Queries one TCP connection may have answered per turn of the event loop. */
const QUERIES_PER_TURN = 8;

const addrText = (a: ListenAddr) => (isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

export class DnsServer {
  private readonly listeners = new Map<string, Listener>();
  /**
   * Open TCP connections, least recently active first, in all and per source address. At a
   * bound, idle ones go first, then stalled ones (their clients do not read what they asked
   * for); a connection still working through its queries is never closed.
   */
  private readonly connections = new ConnectionBounds<ConnectionWriter>((set) => {
    let victim: ConnectionWriter | undefined;
    for (const c of set) {
      if (c.idle) return c;
      if (!victim && c.stalled) victim = c;
    }
    return victim;
  });
  /** Removed addresses whose UDP socket still answers for a moment: key -> close it now. */
  private readonly lingering = new Map<string, () => Promise<void>>();
  private closing = false;
  /** Per-packet problems: a few log lines a minute, whatever clients send. */
  private readonly problems: ThrottledLog;

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
      // Rate limiting (Responder.rrl) may hold the answer back: null.
      out = this.responder.answer(msg, 'udp', undefined, address);
    } catch (e) {
      this.problems.error('query-failed', { err: e, from: address }, 'query failed');
      return null;
    }
    if (!out) return null;
    this.onLatency?.('udp', (performance.now() - t0) / 1000);
    return out;
  }

  /** New limits hold for open connections too: the new timeouts, and idle ones over a lowered cap are closed. */
  setLimits(limits: ServerLimits): void {
    this.limits = limits;
    const ms = limits.idleTimeout * 1000;
    for (const c of this.connections.all) {
      c.socket.setTimeout(ms);
      c.setDrainTimeout(ms);
    }
    this.connections.limit(limits.maxConnections, limits.maxConnectionsPerClient);
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
    // Half-open: a client may close its side after its last query (a FIN after it) and still read
    // every answer, a whole transfer included; fedns ends its side once they are out (accept()).
    const tcp = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
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
    const client = s.remoteAddress;
    if (this.closing || client === undefined) {
      s.destroy();
      return;
    }
    // Over a cap, an idle connection makes room (the client's own first, then anyone's): idle
    // connections cannot lock others out, and a busy one is never cut short.
    if (!this.connections.makeRoom(client, this.limits.maxConnections, this.limits.maxConnectionsPerClient)) {
      s.destroy();
      return;
    }
    const c = new ConnectionWriter(s, this.limits.idleTimeout * 1000);
    const mine = this.connections.add(c, client);
    s.setNoDelay(true);
    s.setTimeout(this.limits.idleTimeout * 1000);
    s.on('timeout', () => (this.closing ? s.end() : s.destroy()));
    // Received bytes not yet a whole message, kept as chunks: joined once a message is complete,
    // so a client sending one byte at a time costs linear, not quadratic, copying.
    let parts: Buffer[] = [];
    let have = 0;
    // A message must arrive whole within the idle timeout of its first byte: a client trickling
    // bytes would otherwise hold the connection open forever (each byte resets the idle timer).
    let partial: NodeJS.Timeout | undefined;
    // A turn of processing is scheduled: received data waits for it.
    let scheduled = false;
    // When the connection last answered a query or started a transfer. Frames that get no answer
    // (empty messages, responses) are not activity: sent every few seconds, they would reset the
    // socket's idle timer and hold the connection, and a slot of the caps, for nothing.
    let lastUseful = Date.now();
    // The client has closed its side: no more queries come; the connection ends once everything
    // received is answered (a transfer streamed to its end, every answer handed to the socket).
    let ended = false;
    const read = () => {
      scheduled = false;
      if (s.destroyed) return;
      let answered = false;
      let consumed = false;
      let budget = QUERIES_PER_TURN;
      // The answers of one turn leave in one write.
      s.cork();
      // Several queries per connection, answered as they complete (RFC 7766 6.2.1), as long as
      // the client reads its answers: a connection never holds more than one answer past the bound.
      while (have >= 2 && c.ready) {
        if (budget-- === 0) {
          // A pipelining client gets turns, not the event loop: UDP and other connections go between.
          scheduled = true;
          setImmediate(read);
          break;
        }
        if (parts[0].length < 2) parts = [Buffer.concat(parts, have)];
        const end = 2 + parts[0].readUInt16BE(0);
        if (have < end) break;
        const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
        const msg = buf.subarray(2, end);
        parts = have > end ? [buf.subarray(end)] : [];
        have -= end;
        consumed = true;
        const t0 = performance.now();
        let out: Buffer | null = null;
        try {
          out = this.responder.answer(msg, 'tcp', c);
        } catch (e) {
          this.problems.error('query-failed', { err: e, from: client }, 'query failed');
        }
        if (out) {
          answered = true;
          c.send(out);
          this.onLatency?.('tcp', (performance.now() - t0) / 1000);
        }
      }
      s.uncork();
      c.pending = scheduled;
      // A transfer answers by streaming.
      if (answered || (consumed && c.streaming)) {
        lastUseful = Date.now();
        this.connections.touch(c, mine);
        if (partial) clearTimeout(partial);
        partial = undefined;
      } else if (consumed && Date.now() - lastUseful >= this.limits.idleTimeout * 1000) {
        s.destroy();
        return;
      }
      if (!c.ready) {
        // Waiting for the client to read (or for a transfer), not for it to send: stop reading.
        s.pause();
        if (partial) clearTimeout(partial);
        partial = undefined;
        return;
      }
      if (scheduled) return;
      if (ended) {
        // What is left is no whole message, and no more bytes come.
        if (partial) clearTimeout(partial);
        partial = undefined;
        s.end();
        return;
      }
      if (have <= UNSENT_BOUND) s.resume();
      if (have > 0) partial ??= setTimeout(() => s.destroy(), this.limits.idleTimeout * 1000);
      else if (this.closing) s.end();
    };
    c.onReady = () => {
      if (!scheduled) read();
    };
    s.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      have += chunk.length;
      // Received queries not yet answered are bounded too.
      if (have > UNSENT_BOUND) s.pause();
      if (!scheduled) read();
    });
    s.on('end', () => {
      ended = true;
      if (!scheduled) read();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (partial) clearTimeout(partial);
      this.connections.forget(c);
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
    for (const c of this.connections.all) c.socket.setTimeout(quietMs);
    const deadline = Date.now() + graceMs;
    while (this.connections.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of [...this.connections.all]) c.destroy();
  }
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
