/**
 * End to end: what one TCP client may cost fedns. A client that never reads its answers is paused
 * and then closed, with memory bounded; idle connections cannot lock other clients out (the total
 * cap closes the longest-idle connection to make room, the per-client cap bounds one address);
 * a reload applies new limits to open connections. Clients bind their own loopback addresses
 * (127.0.0.x) so that fedns sees several clients.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { IdleConnections, Pipeliner, RssSampler, connectFrom, frame, tcpQuery } from '../support/abuse.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** A query from 127.0.0.1 over a new TCP connection gets the right answer. */
async function answersOverTcp(f: FednsProcess, from = '127.0.0.1'): Promise<boolean> {
  const reply = await tcpQuery(f.port, from, encodeQuery('billing.finance.fed.example.com.', RRType.A, { id: 4242 }), 3000);
  if (!reply) return false;
  const m = decodeMessage(reply);
  return m.id === 4242 && m.answers.map((r) => r.data).join() === '198.51.100.30';
}

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(50)) if (cond()) return true;
  return cond();
}

describe('backpressure', () => {
  it('a client that pipelines queries and never reads is paused, then closed after tcp.idleTimeout; memory stays bounded', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 2 }') });
    const rss = new RssSampler(f.process.pid!, 50);
    const p = new Pipeliner(f.port, '127.0.0.2', 60_000).start();
    try {
      // Without backpressure fedns reads millions of queries and grows by a gigabyte within
      // seconds: stop early once that is clear.
      const closed = await until(() => p.closedByServer > 0 || rss.peak - rss.start > 200 * MiB, 12_000);
      rss.stop();
      expect(closed).toBe(true);
      expect(p.closedByServer, 'the server closed the stalled connection').toBe(1);
      expect(rss.peak - rss.start, `RSS ${Math.round(rss.start / MiB)} MiB -> peak ${Math.round(rss.peak / MiB)} MiB`).toBeLessThan(100 * MiB);
      // What the server read before it stopped reading is bounded by socket buffers, not by time.
      expect(p.sent).toBeLessThan(64 * MiB);
      expect(await answersOverTcp(f)).toBe(true);
      expect(f.exited()).toBe(false);
    } finally {
      rss.stop();
      p.stop();
      await f.stop();
    }
  });

  it('frames that get no answer (empty, a response) do not keep a connection open past tcp.idleTimeout', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 1 }') });
    const junk = await connectFrom(f.port, '127.0.0.2');
    const good = await connectFrom(f.port, '127.0.0.3');
    let junkClosed = 0;
    let goodClosed = 0;
    junk.on('close', () => (junkClosed = Date.now()));
    good.on('close', () => (goodClosed = Date.now()));
    // A response (QR set) is dropped unanswered, as is an empty message.
    const response = encodeQuery('nginx.default.fed.example.com.', RRType.A);
    response[2] |= 0x80;
    const tick = setInterval(() => {
      if (!junk.destroyed) junk.write(Buffer.concat([frame(Buffer.alloc(0)), frame(response)]));
      if (!good.destroyed) good.write(frame(encodeQuery('nginx.default.fed.example.com.', RRType.A)));
    }, 300);
    const start = Date.now();
    try {
      expect(await until(() => junkClosed > 0, 8000), 'the connection sending only frames without answers was closed').toBe(true);
      expect(junkClosed - start).toBeGreaterThanOrEqual(900);
      // A client that asks real questions as often keeps its connection.
      expect(goodClosed).toBe(0);
    } finally {
      clearInterval(tick);
      junk.destroy();
      good.destroy();
      await f.stop();
    }
  });

  it('a client that reads late still gets every pipelined answer, in order', async () => {
    const f = await startFedns();
    try {
      const s = await connectFrom(f.port, '127.0.0.1');
      s.pause();
      const N = 20_000;
      const names = ['nginx.default.fed.example.com.', 'billing.finance.fed.example.com.'];
      s.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(encodeQuery(names[i % 2], RRType.A, { id: i & 0xffff })))));
      await sleep(1500);
      const ids: number[] = [];
      let wrong = 0;
      let buf = Buffer.alloc(0);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${ids.length}/${N} answers within 20 s`)), 20_000);
        s.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            const m = decodeMessage(buf.subarray(2, 2 + buf.readUInt16BE(0)));
            buf = buf.subarray(2 + buf.readUInt16BE(0));
            ids.push(m.id);
            const want = ids.length % 2 === 1 ? 2 : 1; // nginx has two addresses, billing one
            if (m.answers.length !== want) wrong++;
          }
          if (ids.length >= N) {
            clearTimeout(timer);
            resolve();
          }
        });
        s.once('close', () => reject(new Error(`closed after ${ids.length}/${N} answers`)));
        s.resume();
      });
      s.destroy();
      expect(ids).toEqual(Array.from({ length: N }, (_, i) => i & 0xffff));
      expect(wrong).toBe(0);
    } finally {
      await f.stop();
    }
  });
});

describe('connection caps', () => {
  it('300 idle connections from one address do not lock out a client from another (tcp.maxConnections 200)', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 200 }') });
    const idle = new IdleConnections(f.port, '127.0.0.5');
    try {
      await idle.open(300);
      await sleep(200);
      expect(await answersOverTcp(f)).toBe(true);
    } finally {
      idle.stop();
      await f.stop();
    }
  });

  it('at tcp.maxConnections, the longest-idle connection is closed to make room for a new one', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 40 }') });
    const groups = Array.from({ length: 4 }, (_, i) => new IdleConnections(f.port, `127.0.1.${i + 1}`));
    try {
      for (const g of groups) await g.open(10, 1); // one at a time: the order of arrival is known
      await sleep(200);
      expect(groups.reduce((n, g) => n + g.open_, 0)).toBe(40);
      expect(await answersOverTcp(f)).toBe(true);
      // The first connection of the first address made room; every other is still open.
      expect(await until(() => groups[0].sockets[0].closed, 2000)).toBe(true);
      expect(groups[0].sockets.slice(1).every((s) => !s.closed)).toBe(true);
      expect(groups.slice(1).every((g) => g.open_ === 10)).toBe(true);
    } finally {
      for (const g of groups) g.stop();
      await f.stop();
    }
  });

  it('with none idle, a stalled connection (its client does not read its answers) makes room for a new one', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 2, idleTimeout: 30 }') });
    const busy = [new Pipeliner(f.port, '127.0.0.2', 60_000).start(), new Pipeliner(f.port, '127.0.0.3', 60_000).start()];
    try {
      // Both stall: the server stops reading them once their answers back up.
      expect(await until(() => busy.every((b) => b.connected && b.sent > 0), 5000)).toBe(true);
      // Kernel socket buffers grow in steps on loopback: a stall is several quiet seconds long.
      let stalled = false;
      for (const end = Date.now() + 20_000; !stalled && Date.now() < end; ) {
        const before = busy.map((b) => b.sent);
        await sleep(2500);
        stalled = busy.every((b, i) => b.sent === before[i]);
      }
      expect(stalled, 'both pipeliners stalled').toBe(true);
      // Many addresses that never read could otherwise hold every slot and lock everyone out.
      expect(await answersOverTcp(f)).toBe(true);
      expect(await until(() => busy.some((b) => b.closedByServer > 0), 2000)).toBe(true);
      expect(busy.filter((b) => b.closedByServer > 0)).toHaveLength(1);
    } finally {
      for (const b of busy) b.stop();
      await f.stop();
    }
  });

  it('a connection with received queries still to answer is never closed to make room', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 1 }') });
    try {
      // A reads its answers (nothing stays unsent for long) but has 20,000 queries to work through.
      const a = await connectFrom(f.port, '127.0.0.2');
      const N = 20_000;
      let answers = 0;
      let buf = Buffer.alloc(0);
      a.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          answers++;
        }
      });
      a.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: i & 0xffff })))));
      expect(await until(() => answers > 0, 5000)).toBe(true);
      const refused: boolean[] = [];
      while (answers < N / 2 && !a.closed) refused.push(!(await answersOverTcp(f, '127.0.0.3')));
      expect(await until(() => answers === N || a.closed, 20_000)).toBe(true);
      expect(a.closed, `closed after ${answers}/${N} answers`).toBe(false);
      expect(answers).toBe(N);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((r) => r)).toBe(true);
      a.destroy();
    } finally {
      await f.stop();
    }
  });

  it('tcp.maxConnectionsPerClient bounds one address: its longest-idle connection makes room for its next', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnectionsPerClient: 4 }') });
    const idle = new IdleConnections(f.port, '127.0.0.5');
    try {
      await idle.open(10, 1);
      expect(await until(() => idle.open_ === 4, 2000)).toBe(true);
      expect(idle.sockets.slice(6).every((s) => !s.closed)).toBe(true);
      expect(await answersOverTcp(f)).toBe(true);
    } finally {
      idle.stop();
      await f.stop();
    }
  });

  it('a client whose connections were all closed to make room still counts against its own cap afterwards', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { maxConnections: 3, maxConnectionsPerClient: 2 }') });
    const a = new IdleConnections(f.port, '127.0.1.1');
    const b = new IdleConnections(f.port, '127.0.1.2');
    try {
      await a.open(1, 1);
      await b.open(2, 1);
      await sleep(100);
      // Each of a's next connections finds the total cap reached: the longest idle makes room
      // (a's first, then b's), but a may never hold more than two.
      for (let i = 0; i < 3; i++) {
        await a.open(1, 1);
        await sleep(100);
      }
      await sleep(300);
      expect(a.open_).toBeLessThanOrEqual(2);
      expect(a.open_ + b.open_).toBeLessThanOrEqual(3);
    } finally {
      a.stop();
      b.stop();
      await f.stop();
    }
  });

  it('a reload applies the new caps and idle timeout to open connections', async () => {
    const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 60, maxConnections: 50 }') });
    const idle = new IdleConnections(f.port, '127.0.0.5');
    try {
      await idle.open(30, 1);
      await sleep(200);
      expect(idle.open_).toBe(30);
      writeFileSync(f.config, readFileSync(f.config, 'utf8').replace('tcp: { idleTimeout: 60, maxConnections: 50 }', 'tcp: { idleTimeout: 60, maxConnections: 10 }'));
      await f.waitForLog((r) => r.msg === 'configuration reloaded');
      // Over the new cap: the longest idle go first.
      expect(await until(() => idle.open_ === 10, 3000)).toBe(true);
      expect(idle.sockets.slice(20).every((s) => !s.closed)).toBe(true);
      const reloaded = Date.now();
      writeFileSync(f.config, readFileSync(f.config, 'utf8').replace('tcp: { idleTimeout: 60, maxConnections: 10 }', 'tcp: { idleTimeout: 1, maxConnections: 10 }'));
      // The shorter idle timeout closes the connections that were already open.
      expect(await until(() => idle.open_ === 0, 8000)).toBe(true);
      expect(Date.now() - reloaded).toBeGreaterThanOrEqual(900);
      expect(await answersOverTcp(f)).toBe(true);
    } finally {
      idle.stop();
      await f.stop();
    }
  });
});
