/**
 * Hostile clients for the abuse run (test/e2e/abuse.test.ts, benchmarks/abuse.ts) and the TCP
 * limit tests, plus a well-behaved client that checks every answer. Every client talks to
 * 127.0.0.1 only; each binds its own loopback source address (Linux routes all of 127/8 on lo), so
 * fedns sees them as different clients. Every load is bounded by a count or a rate and stops on
 * stop().
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { killOnExit } from './children.js';
import { ROOT } from './demo.js';
import { Waiters } from './waiters.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The soft limit on open files of this process (children inherit it), from /proc/self/limits. */
export function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

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

  /**
   * Keeps `count` connections trying to stay open: each one closed by the server (or refused) is
   * opened again after `reconnectMs`.
   */
  keep(count: number, reconnectMs = 2000): this {
    const slot = async (delay: number) => {
      await sleep(delay);
      while (!this.stopped) {
        try {
          const s = await connectFrom(this.port, this.from);
          this.live.add(s);
          await new Promise((r) => s.once('close', r));
          this.live.delete(s);
          if (!this.stopped) this.closedByServer++;
        } catch {
          this.failed++;
        }
        if (!this.stopped) await sleep(reconnectMs);
      }
    };
    // Ramped up over ten seconds (as they are reopened: 200 a second): 2,000 SYNs at once
    // overflow the kernel's accept queue, a SYN flood (the kernel's business, not the server's)
    // that drops other clients' SYNs too.
    for (let i = 0; i < count; i++) void slot((i * 10_000) / count);
    return this;
  }

  private readonly live = new Set<net.Socket>();

  /** Connections still open. */
  get open_(): number {
    return this.sockets.filter((s) => !s.destroyed && !s.closed).length + this.live.size;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
    for (const s of this.live) s.destroy();
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
        // A few batches per turn: the kernel may take everything at once for a long while, and
        // a loop writing until it refuses would hold up every other client in this process.
        let scheduled = false;
        const pump = () => {
          scheduled = false;
          for (let i = 0; i < 4 && !this.stopped && !s.destroyed && s.writableLength < 64 * 1024; i++) {
            s.write(this.batch, (err) => {
              if (!err) this.sent += this.batch.length;
            });
          }
          if (!scheduled && !this.stopped && !s.destroyed && s.writableLength < 64 * 1024) {
            scheduled = true;
            setImmediate(pump);
          }
        };
        s.on('drain', () => scheduled || pump());
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
    // One name per query: the first label's eight characters are the query's number in hex.
    const template = encodeQuery('nx00000000.default.fed.example.com.', RRType.A);
    const t0 = performance.now();
    this.timer = setInterval(() => {
      // By the clock, not by ticks: a late tick sends what is due.
      for (const due = Math.floor(((performance.now() - t0) / 1000) * this.perSecond); this.sent < due; this.sent++) {
        const q = Buffer.from(template);
        const n = this.n++;
        q.writeUInt16BE(n & 0xffff, 0);
        q.write((n >>> 0).toString(16).padStart(8, '0'), 15, 'latin1');
        this.sock.send(q, this.port, '127.0.0.1');
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

/** DEMO_ANSWERS's queries, encoded once (encoding a message allocates 64 KiB). */
const QUERIES = DEMO_ANSWERS.map((q) => encodeQuery(q.name, q.type, { id: 0 }));

function withId(query: Buffer, id: number): Buffer {
  const q = Buffer.from(query);
  q.writeUInt16BE(id, 0);
  return q;
}

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
 * and arrives in time. No retries: every query lost counts.
 */
export class GoodClient {
  readonly udp = { asked: 0, right: 0, wrong: 0 };
  readonly tcp = { asked: 0, right: 0, wrong: 0 };
  private readonly sock: UdpSocket;
  private readonly pending = new Map<number, { which: number; timer: NodeJS.Timeout }>();
  private timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private nextId = 0;
  private t0 = 0;
  /** When (ms after start) each unanswered UDP query was asked, plus the timeout. */
  readonly lostAt: number[] = [];

  constructor(
    private readonly port: number,
    private readonly from: string,
    private readonly udpPerSecond: number,
    private readonly tcpPerSecond: number,
    /** UDP answers must come within this (a resolver's first retry comes sooner). */
    private readonly timeoutMs = 2000,
    /** TCP answers within this, connection included, as dig's +time=5: one SYN retransmit fits. */
    private readonly tcpTimeoutMs = 5000,
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
    // By the clock, not by ticks: a late tick asks what is due.
    const t0 = (this.t0 = performance.now());
    this.timers.push(
      setInterval(() => {
        const s = (performance.now() - t0) / 1000;
        while (this.udp.asked < Math.floor(s * this.udpPerSecond)) this.askUdp();
        while (this.tcp.asked < Math.floor(s * this.tcpPerSecond)) {
          const p = this.askTcp();
          this.inflight.add(p);
          void p.finally(() => this.inflight.delete(p));
        }
      }, 10),
    );
    return this;
  }

  private askUdp(): void {
    const id = this.nextId++ & 0xffff;
    const which = this.udp.asked++ % DEMO_ANSWERS.length;
    const old = this.pending.get(id);
    if (old) clearTimeout(old.timer); // 65,536 queries ago: long counted as lost
    const timer = setTimeout(() => {
      this.pending.delete(id);
      this.lostAt.push(Math.round(performance.now() - this.t0));
    }, this.timeoutMs);
    this.pending.set(id, { which, timer });
    this.sock.send(withId(QUERIES[which], id), this.port, '127.0.0.1');
  }

  private async askTcp(): Promise<void> {
    const id = this.nextId++ & 0xffff;
    const which = this.tcp.asked++ % DEMO_ANSWERS.length;
    const reply = await tcpQuery(this.port, this.from, withId(QUERIES[which], id), this.tcpTimeoutMs);
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

/** The abuse run: how many of each client, and for how long. */
export interface AbuseMix {
  seconds: number;
  /** Non-reading pipeliners (127.0.0.2). */
  pipeliners: number;
  /** Slowloris connections (127.0.0.3). */
  slowloris: number;
  /** Byte-trickling connections (127.0.0.4). */
  tricklers: number;
  /** Idle connections from one address (127.0.0.5), each reopened 10 s after it is closed. */
  idle: number;
  /** UDP NXDOMAIN queries per second from one address (127.0.0.7). */
  floodPerSecond: number;
  /** The well-behaved client (127.0.0.1). */
  goodUdpPerSecond: number;
  goodTcpPerSecond: number;
}

export const ABUSE_MIX: AbuseMix = {
  seconds: 60,
  pipeliners: 3,
  slowloris: 40,
  tricklers: 20,
  idle: 2000,
  floodPerSecond: 2000,
  goodUdpPerSecond: 1000,
  goodTcpPerSecond: 10,
};

/**
 * What the abuse run adds to the demo configuration, in one place (the test and the benchmark
 * both use it; response rate limiting, a `rateLimit:` block, belongs in this list): a short idle
 * timeout so that stalled clients are cut off within the run, and a total cap the abusers
 * together exceed, so that idle connections must make room.
 */
export const ABUSE_CONFIG = [
  'tcp: { idleTimeout: 3, maxConnections: 120, maxConnectionsPerClient: 64 }',
  // Response rate limiting, with the well-behaved client (a member cluster's DNS) exempt: the
  // NXDOMAIN flood from 127.0.0.7 is held to 100 answers a second, every 4th held back slipped.
  'rateLimit: { responsesPerSecond: 100, slip: 4, exempt: [127.0.0.1] }',
].join('\n');

/** What the abusive clients did (counted on their side). */
export interface AbuserStats {
  pipeliners: { sentBytes: number; connections: number; closedByServer: number };
  slowloris: { connections: number; closedByServer: number };
  tricklers: { connections: number; closedByServer: number };
  idle: { closedByServer: number; failed: number; openAtEnd: number };
  flood: { sent: number; answers: number };
}

export interface AbuseResult extends AbuserStats {
  seconds: number;
  rss: { start: number; peak: number; samples: number };
  good: { udp: GoodClient['udp']; tcp: GoodClient['tcp'] };
  /** Share of the good client's queries answered right. */
  goodRate: number;
  /** The good client's unanswered UDP queries per second of the run (when they were asked). */
  udpLostBySecond: Record<number, number>;
  /** Longest the good client's own event loop was held up (its timeouts fire late by as much). */
  clientLagMaxMs: number;
}

/** Runs every abusive client of `mix` in this process against 127.0.0.1:`port` for mix.seconds. */
export async function runAbusers(port: number, mix: AbuseMix, started?: () => void): Promise<AbuserStats> {
  const pipeliners = Array.from({ length: mix.pipeliners }, () => new Pipeliner(port, '127.0.0.2', 1000).start());
  const slowloris = new Slowloris(port, '127.0.0.3', mix.slowloris).start();
  const tricklers = new Trickler(port, '127.0.0.4', mix.tricklers).start();
  const idle = new IdleConnections(port, '127.0.0.5').keep(mix.idle, 10_000);
  const flood = new NxdomainFlood(port, '127.0.0.7', mix.floodPerSecond).start();
  started?.();
  try {
    await sleep(mix.seconds * 1000);
  } finally {
    for (const p of pipeliners) p.stop();
    slowloris.stop();
    tricklers.stop();
    flood.stop();
  }
  const openAtEnd = idle.open_;
  idle.stop();
  return {
    pipeliners: {
      sentBytes: pipeliners.reduce((n, p) => n + p.sent, 0),
      connections: pipeliners.reduce((n, p) => n + p.connections, 0),
      closedByServer: pipeliners.reduce((n, p) => n + p.closedByServer, 0),
    },
    slowloris: { connections: slowloris.connections, closedByServer: slowloris.closedByServer },
    tricklers: { connections: tricklers.connections, closedByServer: tricklers.closedByServer },
    idle: { closedByServer: idle.closedByServer, failed: idle.failed, openAtEnd },
    flood: { sent: flood.sent, answers: flood.answers },
  };
}

/** The compiled abusers-cli.ts, which runs runAbusers() in a process of its own. */
const ABUSERS_CLI = join(ROOT, 'dist', 'test', 'support', 'abusers-cli.js');

/**
 * Runs the abuse mix against a fedns listening on 127.0.0.1:`port` (process `pid`, whose RSS is
 * sampled every 100 ms from just before the abusers start), and the good client beside it. The
 * abusers run in a child process: their own CPU (thousands of connects) must not delay the good
 * client's clock and make it count fedns's answers as late.
 */
export async function runAbuse(port: number, pid: number, mix: AbuseMix = ABUSE_MIX): Promise<AbuseResult> {
  if (!existsSync(ABUSERS_CLI)) throw new Error(`runAbuse: ${ABUSERS_CLI} not found; build first (npm run build)`);
  const rss = new RssSampler(pid, 100);
  const child = spawn(process.execPath, [ABUSERS_CLI, String(port), JSON.stringify(mix)], { stdio: ['ignore', 'pipe', 'inherit'] });
  killOnExit(child);
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  // Line one: the abusers have started; line two: what they did, once they have stopped.
  const lines: string[] = [];
  const waiters = new Waiters();
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString('utf8');
    lines.splice(0, lines.length, ...out.split('\n').slice(0, -1));
    waiters.poke();
  });
  void exited.then(() => waiters.poke());
  const line = (n: number) =>
    waiters.until(
      () => {
        if (lines.length > n) return lines[n];
        if (child.exitCode !== null) throw new Error(`abusers-cli exited with ${child.exitCode}: ${out}`);
        return undefined;
      },
      mix.seconds * 1000 + 30_000,
      () => new Error(`abusers-cli: no line ${n + 1} in time: ${out}`),
    );
  let good: GoodClient | undefined;
  const lag = monitorEventLoopDelay({ resolution: 20 });
  try {
    await line(0);
    lag.enable();
    good = await new GoodClient(port, '127.0.0.1', mix.goodUdpPerSecond, mix.goodTcpPerSecond).start();
    const started = Date.now();
    const stats = JSON.parse(await line(1)) as AbuserStats;
    const seconds = (Date.now() - started) / 1000;
    const totals = await good.stop();
    rss.stop();
    lag.disable();
    const asked = totals.udp.asked + totals.tcp.asked;
    return {
      seconds,
      rss: { start: rss.start, peak: rss.peak, samples: rss.samples },
      good: totals,
      goodRate: asked ? (totals.udp.right + totals.tcp.right) / asked : 0,
      clientLagMaxMs: Math.round(lag.max / 1e6),
      udpLostBySecond: good.lostAt.reduce<Record<number, number>>((m, t) => ((m[Math.floor(t / 1000)] = (m[Math.floor(t / 1000)] ?? 0) + 1), m), {}),
      ...stats,
    };
  } finally {
    rss.stop();
    child.kill();
    await exited;
  }
}
