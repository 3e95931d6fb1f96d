/**
 * End to end: the built CLI (`fedns serve`) on a scratch copy of the demo configuration,
 * queried with dig over UDP and TCP, plus raw TCP clients for RFC 7766 behaviour (pipelining,
 * idle timeout, connection cap) and the manifest directory watch.
 */
import * as net from 'node:net';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { dig, summarise, type DigResult } from '../support/dig.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';
import { requirePeer } from '../support/peers.js';
import { UDP_PATHS, udpBatch } from '../support/udp-paths.js';

const hasDig = requirePeer('dig');

const SOA_RE = /^ns1\.example\.com\. hostmaster\.example\.com\. \d+ 3600 600 86400 30$/;

function q(port: number, name: string, type: string, ...opts: string[]): Promise<DigResult> {
  return dig(['@127.0.0.1', '-p', String(port), '+norec', ...opts, name, type]);
}

const datas = (r: DigResult, section: 'answer' | 'authority' | 'additional' = 'answer', type?: string) =>
  r[section]
    .filter((x) => !type || x.type === type)
    .map((x) => x.data)
    .sort();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `msgs` framed (RFC 7766) in ONE write, returns the first `expect` framed replies. */
function tcpExchange(port: number, msgs: Buffer[], expectCount = msgs.length, timeoutMs = 5000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`tcpExchange: ${got.length}/${expectCount} replies within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => s.write(Buffer.concat(msgs.map(frame))));
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (got.length >= expectCount) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      if (got.length < expectCount) reject(new Error(`tcpExchange: closed after ${got.length}/${expectCount} replies`));
    });
  });
}

function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/** A TCP connection kept open, with helpers to ask one query at a time and to see it close. */
class Conn {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  private replies: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  closedAt = 0;
  readonly opened = Date.now();
  readonly connected: Promise<void>;
  readonly closing: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.connected = new Promise((resolve, reject) => {
      this.sock.once('connect', () => resolve());
      this.sock.once('error', reject);
    });
    this.closing = new Promise((resolve) =>
      this.sock.once('close', () => {
        this.closed = true;
        this.closedAt = Date.now();
        this.poke();
        resolve();
      }),
    );
    this.sock.on('error', () => {});
    this.sock.on('data', (chunk) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        this.replies.push(this.buf.subarray(2, 2 + this.buf.readUInt16BE(0)));
        this.buf = this.buf.subarray(2 + this.buf.readUInt16BE(0));
      }
      this.poke();
    });
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Sends a query; resolves with the reply, or null if the connection closes / times out first. */
  async ask(name: string, type: number, timeoutMs = 3000): Promise<Buffer | null> {
    const id = Math.floor(Math.random() * 0x10000);
    if (this.closed) return null;
    this.sock.write(frame(encodeQuery(name, type, { id })));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.replies.findIndex((r) => r.readUInt16BE(0) === id);
      if (i >= 0) return this.replies.splice(i, 1)[0];
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  get received(): number {
    return this.replies.length;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

describe.skipIf(!hasDig).each(UDP_PATHS)('dig against the CLI server (demo configuration, UDP $name)', ({ name: udpPath, batch }) => {
  let f: FednsProcess;
  beforeAll(async () => {
    f = await startFedns({ edit: udpBatch(batch) });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it(`answers UDP on the ${udpPath} path and says so`, () => {
    expect(f.logs().find((r) => r.msg === `UDP path: ${udpPath}`), f.stderr()).toBeDefined();
    expect(f.logs().find((r) => r.msg === 'listening on UDP and TCP')?.udp).toBe(udpPath);
  });

  for (const transport of ['+notcp', '+tcp']) {
    describe(`over ${transport === '+tcp' ? 'TCP' : 'UDP'}`, () => {
      it('nginx: global short and v1 names answer both healthy clusters', async () => {
        for (const name of ['nginx.default.fed.example.com', 'nginx.default.fed.svc.example.com']) {
          const r = await q(f.port, name, 'A', transport);
          expect(r.status, summarise(r)).toBe('NOERROR');
          expect(r.flags.has('aa')).toBe(true);
          expect(r.flags.has('ra')).toBe(false);
          expect(r.transport).toBe(transport === '+tcp' ? 'TCP' : 'UDP');
          expect(datas(r)).toEqual(['192.0.2.10', '198.51.100.10']);
          expect(r.answer.every((x) => x.ttl === 30 && x.type === 'A' && x.name === `${name}.`)).toBe(true);
          expect(r.authority).toEqual([]);
        }
      });

      it('web.shop AAAA: both clusters\' IPv6 addresses', async () => {
        const r = await q(f.port, 'web.shop.fed.example.com', 'AAAA', transport);
        expect(r.status).toBe('NOERROR');
        expect(r.flags.has('aa')).toBe(true);
        expect(datas(r, 'answer', 'AAAA')).toEqual(['2001:db8:a::20', '2001:db8:b::20']);
        expect(r.answer).toHaveLength(2);
      });

      it('SRV with the target addresses in the additional section', async () => {
        const r = await q(f.port, '_http._tcp.nginx.default.fed.svc.example.com', 'SRV', transport);
        expect(r.status).toBe('NOERROR');
        expect(r.flags.has('aa')).toBe(true);
        expect(datas(r)).toEqual(['0 100 80 nginx.default.fed.svc.example.com.']);
        expect(r.additional.map((x) => `${x.name} ${x.type} ${x.data}`).sort()).toEqual([
          'nginx.default.fed.svc.example.com. A 192.0.2.10',
          'nginx.default.fed.svc.example.com. A 198.51.100.10',
        ]);
      });

      it('zonal name without a local address: CNAME to the regional name, chased', async () => {
        const r = await q(f.port, 'billing.finance.fed.svc.us-east-a.us-east.example.com', 'A', transport);
        expect(r.status).toBe('NOERROR');
        expect(r.flags.has('aa')).toBe(true);
        expect(r.answer.map((x) => `${x.name} ${x.type} ${x.data}`)).toEqual([
          'billing.finance.fed.svc.us-east-a.us-east.example.com. CNAME billing.finance.fed.svc.us-east.example.com.',
          'billing.finance.fed.svc.us-east.example.com. A 198.51.100.30',
        ]);
      });

      it('NXDOMAIN with the SOA (TTL = minimum) in the authority section', async () => {
        const r = await q(f.port, 'nosuch.default.fed.example.com', 'A', transport);
        expect(r.status).toBe('NXDOMAIN');
        expect(r.flags.has('aa')).toBe(true);
        expect(r.answer).toEqual([]);
        expect(r.authority).toHaveLength(1);
        expect(r.authority[0]).toMatchObject({ name: 'example.com.', ttl: 30, type: 'SOA' });
        expect(r.authority[0].data).toMatch(SOA_RE);
      });

      it('empty non-terminal: NODATA, not NXDOMAIN', async () => {
        const r = await q(f.port, 'default.fed.svc.example.com', 'A', transport);
        expect(r.status).toBe('NOERROR');
        expect(r.answer).toEqual([]);
        expect(r.authority.map((x) => x.type)).toEqual(['SOA']);
      });

      it('names outside the zone: REFUSED, not authoritative', async () => {
        for (const name of ['example.org', 'com', 'xexample.com']) {
          const r = await q(f.port, name, 'A', transport);
          expect(r.status, name).toBe('REFUSED');
          expect(r.flags.has('aa')).toBe(false);
          expect(r.answer).toEqual([]);
        }
      });
    });
  }

  it('answers keep the case of the question', async () => {
    const r = await q(f.port, 'NGINX.Default.FED.example.COM', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.raw).toMatch(/^NGINX\.Default\.FED\.example\.COM\.\s+30\s+IN\s+A\s/m);
  });

  it('three queries pipelined in one TCP write get three framed answers', async () => {
    const queries = [
      encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 101 }),
      encodeQuery('web.shop.fed.example.com.', RRType.AAAA, { id: 202, edns: {} }),
      encodeQuery('nosuch.example.com.', RRType.A, { id: 303 }),
    ];
    const replies = (await tcpExchange(f.port, queries)).map(decodeMessage);
    const byId = new Map(replies.map((m) => [m.id, m]));
    expect([...byId.keys()].sort()).toEqual([101, 202, 303]);
    const a = byId.get(101)!;
    expect(a.qr && a.aa).toBe(true);
    expect(a.answers.map((r) => r.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
    const b = byId.get(202)!;
    expect(b.answers.map((r) => r.data).sort()).toEqual(['2001:db8:a::20', '2001:db8:b::20']);
    expect(b.edns?.udpSize).toBe(1232);
    const c = byId.get(303)!;
    expect(c.rcode).toBe(3);
    expect(c.authorities.map((r) => r.type)).toEqual([RRType.SOA]);
  });

  it('a query split across TCP segments is reassembled', async () => {
    const c = new Conn(f.port);
    try {
      await c.connected;
      const msg = frame(encodeQuery('billing.finance.fed.example.com.', RRType.A, { id: 77 }));
      c.sock.write(msg.subarray(0, 1));
      await sleep(50);
      c.sock.write(msg.subarray(1, 9));
      await sleep(50);
      c.sock.write(msg.subarray(9));
      await sleep(300);
      expect(c.received).toBe(1);
      const reply = await c.ask('billing.finance.fed.example.com.', RRType.A);
      expect(reply && decodeMessage(reply).answers.map((r) => r.data)).toEqual(['198.51.100.30']);
    } finally {
      c.destroy();
    }
  });
});

describe('TCP limits', () => {
  it('an idle connection is closed after tcp.idleTimeout', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 1 }') });
    try {
      const silent = new Conn(f.port);
      const used = new Conn(f.port);
      await Promise.all([silent.connected, used.connected]);
      const reply = await used.ask('nginx.default.fed.example.com.', RRType.A);
      expect(reply).not.toBeNull();
      const answeredAt = Date.now();
      const deadline = sleep(6000).then(() => 'timeout');
      expect(await Promise.race([silent.closing.then(() => 'closed'), deadline])).toBe('closed');
      expect(await Promise.race([used.closing.then(() => 'closed'), deadline])).toBe('closed');
      // Closed by the timeout, not at once: roughly a second of silence first.
      expect(silent.closedAt - silent.opened).toBeGreaterThanOrEqual(800);
      expect(used.closedAt - answeredAt).toBeGreaterThanOrEqual(800);
      expect(f.exited()).toBe(false);
    } finally {
      await f.stop();
    }
  });

  it('a message trickled a byte at a time is cut off tcp.idleTimeout after its first byte; one sent byte by byte at once is answered', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 1 }') });
    try {
      // Byte by byte, but promptly: reassembled and answered.
      const quick = new Conn(f.port);
      await quick.connected;
      const q1 = frame(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 11 }));
      for (let i = 0; i < q1.length; i++) {
        quick.sock.write(q1.subarray(i, i + 1));
        await sleep(2);
      }
      const deadline = Date.now() + 3000;
      while (quick.received < 1 && Date.now() < deadline) await sleep(10);
      expect(quick.received).toBe(1);
      quick.destroy();
      // One byte every 200 ms: each resets the idle timer, but the message never completes in time.
      const slow = new Conn(f.port);
      await slow.connected;
      const q2 = frame(encodeQuery('billing.finance.fed.example.com.', RRType.A, { id: 12 }));
      const firstByte = Date.now();
      let sent = 0;
      while (!slow.closedAt && sent < q2.length && Date.now() - firstByte < 6000) {
        slow.sock.write(q2.subarray(sent, sent + 1));
        sent++;
        await sleep(200);
      }
      expect(slow.closedAt, 'closed by the server before the message was complete').toBeGreaterThan(0);
      expect(sent).toBeLessThan(q2.length);
      expect(slow.closedAt - firstByte).toBeGreaterThanOrEqual(900);
      expect(slow.closedAt - firstByte).toBeLessThan(2500);
      expect(slow.received).toBe(0);
      expect(f.exited()).toBe(false);
    } finally {
      await f.stop();
    }
  });

  it('at tcp.maxConnections, a new connection closes the longest-idle one; the others keep working', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 2 }') });
    const conns: Conn[] = [];
    try {
      const c1 = new Conn(f.port);
      const c2 = new Conn(f.port);
      conns.push(c1, c2);
      await Promise.all([c1.connected, c2.connected]);
      // Both accepted and served; c1 then idles longest.
      expect(await c1.ask('nginx.default.fed.example.com.', RRType.A)).not.toBeNull();
      expect(await c2.ask('nginx.default.fed.example.com.', RRType.A)).not.toBeNull();

      const c3 = new Conn(f.port);
      conns.push(c3);
      await c3.connected;
      const third = await c3.ask('billing.finance.fed.example.com.', RRType.A);
      expect(third && decodeMessage(third).answers.map((r) => r.data)).toEqual(['198.51.100.30']);
      await Promise.race([c1.closing, sleep(3000)]);
      expect(c1.closed, 'the longest-idle connection made room').toBe(true);

      // c2 still answers.
      const r2 = await c2.ask('web.shop.fed.example.com.', RRType.AAAA);
      expect(r2 && decodeMessage(r2).answers).toHaveLength(2);
      expect(c2.closed).toBe(false);
    } finally {
      for (const c of conns) c.destroy();
      await f.stop();
    }
  });
});

describe.skipIf(!hasDig).each(UDP_PATHS)('queries.allow (UDP $name)', ({ batch }) => {
  it('refuses sources outside the list (also over TCP); a reload that adds loopback lets dig in', async () => {
    const f = await startFedns({ edit: udpBatch(batch, withYaml('queries: { allow: [10.0.0.0/8] }')) });
    try {
      for (const transport of ['+notcp', '+tcp']) {
        const r = await q(f.port, 'nginx.default.fed.example.com', 'A', transport);
        expect(r.status, summarise(r)).toBe('REFUSED');
        expect(r.flags.has('aa')).toBe(false);
      }
      writeFileSync(f.config, readFileSync(f.config, 'utf8').replace('allow: [10.0.0.0/8]', 'allow: [10.0.0.0/8, 127.0.0.1]'));
      await f.waitForLog((r) => r.msg === 'configuration reloaded');
      const r = await q(f.port, 'nginx.default.fed.example.com', 'A');
      expect(r.status, summarise(r)).toBe('NOERROR');
      expect(r.answer.map((a) => a.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
    } finally {
      await f.stop();
    }
  });
});

describe.skipIf(!hasDig).each(UDP_PATHS)('IPv6 listen address (UDP $name)', ({ batch }) => {
  it('answers on [::1] over UDP and TCP, next to 127.0.0.1', async () => {
    const f = await startFedns({ edit: udpBatch(batch, (y) => y.replace('  - 127.0.0.1:0\n', '  - 127.0.0.1:0\n  - "[::1]:0"\n')) });
    try {
      const rec = f.logs().find((r) => r.msg === 'listening on UDP and TCP' && String(r.address).startsWith('[::1]:'));
      expect(rec, 'a "listening on UDP and TCP" line for [::1]').toBeDefined();
      const port = Number(/:(\d+)$/.exec(String(rec!.address))![1]);
      for (const transport of ['+notcp', '+tcp']) {
        const r = await dig(['@::1', '-p', String(port), 'nginx.default.fed.example.com', 'A', transport]);
        expect(r.status, summarise(r)).toBe('NOERROR');
        expect(r.answer.map((a) => a.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
      }
    } finally {
      await f.stop();
    }
  });
});

describe.skipIf(!hasDig)('manifest directory watch', () => {
  it('an edited manifest changes the answer; a broken file keeps the last good state and is logged', async () => {
    const f = await startFedns();
    try {
      const ask = async () => datas(await q(f.port, 'nginx.default.fed.example.com', 'A'));
      expect(await ask()).toEqual(['192.0.2.10', '198.51.100.10']);

      const services = join(f.dir, 'demo', 'alpha', 'services.yaml');
      const text = readFileSync(services, 'utf8');
      expect(text).toContain('{ ip: 192.0.2.10 }');
      writeFileSync(services, text.replace('{ ip: 192.0.2.10 }', '{ ip: 192.0.2.99 }'));
      const want = ['192.0.2.99', '198.51.100.10'];
      let got: string[] = [];
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        got = await ask();
        if (JSON.stringify(got) === JSON.stringify(want)) break;
        await sleep(100);
      }
      expect(got).toEqual(want);
      // Other names of the service follow (regional us-east-a has only alpha's address).
      expect(datas(await q(f.port, 'nginx.default.fed.svc.us-east-a.us-east.example.com', 'A'))).toEqual(['192.0.2.99']);

      const broken = join(f.dir, 'demo', 'alpha', 'zz-broken.yaml');
      writeFileSync(broken, 'apiVersion: v1\nkind: Service\nmetadata: { name: [unclosed\n  spec: :\n');
      const rec = await f.waitForLog((r) => JSON.stringify(r).includes('zz-broken.yaml'), 5000, 'a log line naming zz-broken.yaml');
      expect(rec.level).toBeGreaterThanOrEqual(40);
      // Give the server time to (wrongly) act on the broken file, then check nothing changed.
      await sleep(700);
      expect(await ask()).toEqual(want);
      expect(datas(await q(f.port, 'web.shop.fed.example.com', 'AAAA'))).toEqual(['2001:db8:a::20', '2001:db8:b::20']);
      expect(datas(await q(f.port, 'db-0.alpha.db.data.fed.svc.example.com', 'A'))).toEqual(['192.0.2.101']);
      expect(f.exited()).toBe(false);
    } finally {
      await f.stop();
    }
  });
});
