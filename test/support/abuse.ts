/**
 * Hostile clients for the abuse run (test/e2e/abuse.test.ts, benchmarks/abuse.ts) and the TCP
 * limit tests, plus a well-behaved client that checks every answer. Every client talks to
 * 127.0.0.1 only; each binds its own loopback source address (Linux routes all of 127/8 on lo), so
 * fedns sees them as different clients. Every load is bounded by a count or a rate and stops on
 * stop().
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { RRType } from '../../src/dns/constants.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory of process `pid` in bytes (VmRSS of /proc/PID/status), or undefined once it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` and keeps the peak. */
export class RssSampler {
  readonly start: number;
  peak: number;
  samples = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.start = rssOf(pid) ?? 0;
    this.peak = this.start;
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    const r = rssOf(this.pid);
    if (r === undefined) return;
    this.samples++;
    if (r > this.peak) this.peak = r;
  }
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/** Opens a TCP connection from `from`; resolves once connected, rejects on error (refused, reset). */
export function connectFrom(port: number, from: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** `count` TCP connections from one address that connect and then say nothing. */
export class IdleConnections {
  readonly sockets: net.Socket[] = [];
  /** Connections that failed to open. */
  failed = 0;
  /** Connections the server closed. */
  closedByServer = 0;
  private stopped = false;

  constructor(
    private readonly port: number,
    private readonly from: string,
  ) {}

  /** Opens `count` connections, `parallel` at a time. */
  async open(count: number, parallel = 50): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count && !this.stopped) {
        next++;
        try {
          const s = await connectFrom(this.port, this.from);
          if (this.stopped) {
            s.destroy();
            return;
          }
          this.sockets.push(s);
          s.once('close', () => {
            if (!this.stopped) this.closedByServer++;
          });
        } catch {
          this.failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  /** Connections still open. */
  get open_(): number {
    return this.sockets.filter((s) => !s.destroyed && !s.closed).length;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
  }
}

/**
 * Pipelines queries over one TCP connection as fast as the kernel takes them and never reads an
 * answer. Reconnects (after `reconnectMs`) when the server closes it, until stop().
 */
export class Pipeliner {
  /** Bytes of queries the kernel accepted. */
  sent = 0;
  /** Connections the server closed. */
  closedByServer = 0;
  connections = 0;
  private sock?: net.Socket;
  private stopped = false;
  private readonly batch: Buffer;

  constructor(
    private readonly port: number,
    private readonly from: string,
    private readonly reconnectMs = 200,
    name = 'nginx.default.fed.example.com.',
  ) {
    this.batch = Buffer.concat(Array.from({ length: 256 }, (_, i) => frame(encodeQuery(name, RRType.A, { id: i }))));
  }

  start(): this {
    void this.loop();
    return this;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let s: net.Socket;
      try {
        s = await connectFrom(this.port, this.from);
      } catch {
        await sleep(this.reconnectMs);
        continue;
      }
      this.sock = s;
      this.connections++;
      s.pause(); // never read: the answers pile up at the server, or should not
      await new Promise<void>((resolve) => {
        const pump = () => {
          // Keep a little in our own buffer so the kernel always has more to take.
          while (!this.stopped && !s.destroyed && s.writableLength < 64 * 1024) {
            s.write(this.batch, (err) => {
              if (!err) this.sent += this.batch.length;
            });
          }
        };
        s.on('drain', pump);
        s.once('close', () => {
          if (!this.stopped) this.closedByServer++;
          resolve();
        });
        pump();
      });
      if (!this.stopped) await sleep(this.reconnectMs);
    }
  }

  /** True while its current connection is open. */
  get connected(): boolean {
    return !!this.sock && !this.sock.destroyed && !this.sock.closed;
  }

  stop(): void {
    this.stopped = true;
    this.sock?.destroy();
  }
}

/**
 * Slowloris over TCP: connects, sends the start of a message (part of the length prefix, or the
 * prefix and part of the query) and stalls; reconnects when the server closes it.
 */
export class Slowloris {
  connections = 0;
  closedByServer = 0;
  private readonly sockets = new Set<net.Socket>();
  private stopped = false;

  constructor(
    private readonly port: number,
    private readonly from: string,
    private readonly count: number,
    private readonly reconnectMs = 200,
  ) {}

  start(): this {
    const q = frame(encodeQuery('nginx.default.fed.example.com.', RRType.A));
    for (let i = 0; i < this.count; i++) void this.loop(i % 2 === 0 ? q.subarray(0, 1) : q.subarray(0, 10));
    return this;
  }

  private async loop(part: Buffer): Promise<void> {
    while (!this.stopped) {
      try {
        const s = await connectFrom(this.port, this.from);
        this.connections++;
        this.sockets.add(s);
        s.write(part);
        await new Promise((r) => s.once('close', r));
        this.sockets.delete(s);
        if (!this.stopped) this.closedByServer++;
      } catch {
        /* refused: try again later */
      }
      if (!this.stopped) await sleep(this.reconnectMs);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
  }
}

/** Sends queries one byte every `everyMs`, on `count` connections; reconnects when closed. */
export class Trickler {
  connections = 0;
  closedByServer = 0;
  /** Answers received (a trickled query may be answered when it completes in time). */
  answers = 0;
  private readonly sockets = new Set<net.Socket>();
  private stopped = false;

  constructor(
    private readonly port: number,
    private readonly from: string,
    private readonly count: number,
    private readonly everyMs = 300,
  ) {}

  start(): this {
    for (let i = 0; i < this.count; i++) void this.loop();
    return this;
  }

  private async loop(): Promise<void> {
    const q = frame(encodeQuery('web.shop.fed.example.com.', RRType.AAAA));
    while (!this.stopped) {
      try {
        const s = await connectFrom(this.port, this.from);
        this.connections++;
        this.sockets.add(s);
        s.on('data', () => this.answers++);
        for (let i = 0; !this.stopped && !s.destroyed && !s.closed; i = (i + 1) % q.length) {
          s.write(q.subarray(i, i + 1));
          await sleep(this.everyMs);
        }
        this.sockets.delete(s);
        if (!this.stopped) this.closedByServer++;
      } catch {
        /* refused */
      }
      if (!this.stopped) await sleep(200);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
  }
}

/** UDP queries for names that do not exist, from one address, at `perSecond` (sent in 10 ms ticks). */
export class NxdomainFlood {
  sent = 0;
  answers = 0;
  private readonly sock: UdpSocket;
  private timer?: NodeJS.Timeout;
  private n = 0;

  constructor(
    private readonly port: number,
    from: string,
    private readonly perSecond: number,
  ) {
    this.sock = createSocket('udp4');
    this.sock.on('message', () => this.answers++);
    this.sock.on('error', () => {});
    this.sock.bind(0, from);
  }

  start(): this {
    const perTick = this.perSecond / 100;
    let owed = 0;
    this.timer = setInterval(() => {
      for (owed += perTick; owed >= 1; owed--) {
        this.sock.send(encodeQuery(`nx${this.n++}.default.fed.example.com.`, RRType.A, { id: this.n & 0xffff }), this.port, '127.0.0.1');
        this.sent++;
      }
    }, 10);
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.sock.close();
  }
}

/** What the demo configuration answers (config/demo), checked on every answer of the good client. */
export const DEMO_ANSWERS: { name: string; type: number; data: string[] }[] = [
  { name: 'nginx.default.fed.example.com.', type: RRType.A, data: ['192.0.2.10', '198.51.100.10'] },
  { name: 'web.shop.fed.example.com.', type: RRType.AAAA, data: ['2001:db8:a::20', '2001:db8:b::20'] },
  { name: 'billing.finance.fed.example.com.', type: RRType.A, data: ['198.51.100.30'] },
  { name: 'missing.default.fed.example.com.', type: RRType.A, data: [] },
];

/** True when `reply` is the right answer to DEMO_ANSWERS[which] asked with `id`. */
function isRight(reply: Buffer, id: number, which: number): boolean {
  try {
    const m = decodeMessage(reply);
    const want = DEMO_ANSWERS[which];
    if (m.id !== id || !m.qr || !m.aa || m.questions[0]?.name.toLowerCase() !== want.name) return false;
    if (m.rcode !== (want.data.length ? 0 : 3)) return false;
    const got = m.answers.filter((r) => r.type === want.type).map((r) => String(r.data)).sort();
    return got.join(' ') === want.data.join(' ');
  } catch {
    return false;
  }
}

/**
 * The well-behaved client: `udpPerSecond` queries over UDP and `tcpPerSecond` over TCP (a new
 * connection each, as dig does), cycling through DEMO_ANSWERS; an answer counts when it is right
 * and arrives within `timeoutMs`.
 */
export class GoodClient {
  readonly udp = { asked: 0, right: 0, wrong: 0 };
  readonly tcp = { asked: 0, right: 0, wrong: 0 };
  private readonly sock: UdpSocket;
  private readonly pending = new Map<number, { which: number; timer: NodeJS.Timeout }>();
  private timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private nextId = 0;

  constructor(
    private readonly port: number,
    private readonly from: string,
    private readonly udpPerSecond: number,
    private readonly tcpPerSecond: number,
    private readonly timeoutMs = 2000,
  ) {
    this.sock = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    this.sock.on('error', () => {});
    this.sock.on('message', (m) => {
      if (m.length < 2) return;
      const p = this.pending.get(m.readUInt16BE(0));
      if (!p) return;
      clearTimeout(p.timer);
      this.pending.delete(m.readUInt16BE(0));
      if (isRight(m, m.readUInt16BE(0), p.which)) this.udp.right++;
      else this.udp.wrong++;
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.sock.bind(0, this.from, () => r()));
    const perTick = this.udpPerSecond / 100;
    let owed = 0;
    this.timers.push(
      setInterval(() => {
        for (owed += perTick; owed >= 1; owed--) this.askUdp();
      }, 10),
    );
    if (this.tcpPerSecond > 0) {
      this.timers.push(
        setInterval(() => {
          const p = this.askTcp();
          this.inflight.add(p);
          void p.finally(() => this.inflight.delete(p));
        }, 1000 / this.tcpPerSecond),
      );
    }
    return this;
  }

  private askUdp(): void {
    const id = this.nextId++ & 0xffff;
    const which = this.udp.asked++ % DEMO_ANSWERS.length;
    const old = this.pending.get(id);
    if (old) clearTimeout(old.timer); // 65,536 queries ago: long counted as lost
    const timer = setTimeout(() => this.pending.delete(id), this.timeoutMs);
    this.pending.set(id, { which, timer });
    const q = DEMO_ANSWERS[which];
    this.sock.send(encodeQuery(q.name, q.type, { id }), this.port, '127.0.0.1');
  }

  private async askTcp(): Promise<void> {
    const id = this.nextId++ & 0xffff;
    const which = this.tcp.asked++ % DEMO_ANSWERS.length;
    const q = DEMO_ANSWERS[which];
    const reply = await tcpQuery(this.port, this.from, encodeQuery(q.name, q.type, { id }), this.timeoutMs);
    if (reply && isRight(reply, id, which)) this.tcp.right++;
    else if (reply) this.tcp.wrong++;
  }

  /** Stops asking, waits for the answers still due, and returns the totals. */
  async stop(): Promise<{ udp: GoodClient['udp']; tcp: GoodClient['tcp'] }> {
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.inflight]);
    const until = Date.now() + this.timeoutMs;
    while (this.pending.size && Date.now() < until) await sleep(20);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.sock.close();
    return { udp: this.udp, tcp: this.tcp };
  }
}

/** One query over a new TCP connection from `from`: the reply, or null (refused, closed, timed out). */
export function tcpQuery(port: number, from: string, query: Buffer, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let buf = Buffer.alloc(0);
    const done = (r: Buffer | null) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('connect', () => s.write(frame(query)));
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    s.on('error', () => done(null));
    s.on('close', () => done(null));
  });
}
