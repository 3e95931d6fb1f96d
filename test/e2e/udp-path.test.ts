// Which UDP path answers (udp.batch: auto | on | off), and what happens without the native addon:
// FEDNS_UDP_ADDON pointing at a missing file stands for a machine where it could not be built.
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { demoCopy, runCli, startDemo } from '../support/demo.js';
import { startFedns, testListen } from '../support/fedns.js';
import { udpQuery } from '../support/secondaries.js';
import { hasUdpAddon, udpBatch } from '../support/udp-paths.js';

const MISSING = join('/nonexistent', 'fedns_udp.node');
const NGINX = ['192.0.2.10', '198.51.100.10'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function answers(port: number): Promise<string[] | undefined> {
  const m = await udpQuery(port, 'nginx.default.fed.example.com.', RRType.A, 2000);
  return m?.answers.map((a) => String(a.data)).sort();
}

/** One query to host@port: the reply's addresses, or null (no reply within timeoutMs, or refused). */
function ask(host: string, port: number, timeoutMs: number): Promise<string[] | null> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const done = (v: string[] | null) => {
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.on('error', () => done(null));
    sock.on('message', (m) => done(decodeMessage(m).answers.map((a) => String(a.data)).sort()));
    sock.send(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 7 }), port, host);
  });
}

describe('udp.batch without the native addon', () => {
  it('auto: falls back to node:dgram, the log says why, and UDP is answered', async () => {
    const f = await startFedns({ edit: udpBatch('auto'), env: { FEDNS_UDP_ADDON: MISSING } });
    cleanups.push(() => f.stop());
    const rec = f.logs().find((r) => r.msg === 'UDP path: dgram');
    expect(rec, f.stderr()).toBeDefined();
    expect(String(rec!.reason)).toContain('udp.batch is auto and the native addon did not load');
    expect(String(rec!.reason)).toContain(MISSING);
    expect(f.logs().find((r) => r.msg === 'listening on UDP and TCP')?.udp).toBe('dgram');
    expect(await answers(f.port)).toEqual(NGINX);
  });

  it('on: start-up fails with one plain line that names udp.batch and how to fix it', async () => {
    const copy = demoCopy((y) => udpBatch('on', testListen)(y));
    cleanups.push(copy.cleanup);
    const r = await runCli(['serve', '--config', copy.config], 15_000, { FEDNS_UDP_ADDON: MISSING });
    expect(r.code).toBe(1);
    const plain = r.err.split('\n').filter((l) => l.startsWith('fedns: '));
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/^fedns: cannot start: udp\.batch is on but the native UDP addon cannot be loaded \(.*fedns_udp\.node: .*\); build it with "npm run build"/);
    expect(plain[0]).toContain('set udp.batch to auto or off');
    // The log line names the field, and carries no stack trace: the setting is the operator's to fix.
    const fatal = r.err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'cannot start');
    expect(fatal).toMatchObject({ field: 'udp.batch', error: expect.stringContaining('native UDP addon cannot be loaded') });
    expect(fatal).not.toHaveProperty('err');
  });

  it('fedns check names the path: dgram for auto, an error (exit 1) for on', async () => {
    const auto = demoCopy(udpBatch('auto'));
    const on = demoCopy(udpBatch('on'));
    cleanups.push(auto.cleanup, on.cleanup);
    const a = await runCli(['check', '--config', auto.config], 15_000, { FEDNS_UDP_ADDON: MISSING });
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^ {2}udp dgram \(udp\.batch is auto and the native addon did not load \(\/nonexistent\/fedns_udp\.node: /m);
    const o = await runCli(['check', '--config', on.config], 15_000, { FEDNS_UDP_ADDON: MISSING });
    expect(o.code).toBe(1);
    expect(o.out.split('\n')[0], 'the verdict line does not say OK').toBe(`${on.config}: valid, but fedns would not start (udp below)`);
    expect(o.out).toMatch(/^ {2}udp error: udp\.batch is on but the native UDP addon cannot be loaded/m);
  });
});

describe('udp.batch with the native addon built', () => {
  it('off: node:dgram all the same', async () => {
    const f = await startFedns({ edit: udpBatch('off') });
    cleanups.push(() => f.stop());
    expect(f.logs().find((r) => r.msg === 'UDP path: dgram')?.reason).toBe('udp.batch is off');
    expect(await answers(f.port)).toEqual(NGINX);
  });

  it.runIf(hasUdpAddon)('auto (the default): batched; fedns check and the metric say so', async () => {
    const f = await startFedns();
    cleanups.push(() => f.stop());
    expect(f.logs().find((r) => r.msg === 'UDP path: batched')?.reason).toBe('udp.batch is auto and the native addon loaded');
    expect(await answers(f.port)).toEqual(NGINX);
    const c = await runCli(['check', '--config', f.config]);
    expect(c.out).toMatch(/^ {2}udp batched \(udp\.batch is auto and the native addon loaded\)$/m);

    const d = await startDemo();
    cleanups.push(() => d.stop());
    const text = await d.server.metrics.text();
    expect(text).toMatch(/^fedns_udp_path\{path="batched"\} 1$/m);
    expect(text).not.toMatch(/fedns_udp_path\{path="dgram"\}/);
    expect(text).toMatch(/^fedns_udp_answers_dropped_total\{reason="send_buffer_full"\} 0$/m);
  });

  it.runIf(hasUdpAddon)('a burst is read in batches, each query answered once; a moved listener opens before the old one closes', async () => {
    const d = await startDemo(udpBatch('on'));
    cleanups.push(() => d.stop());
    const dns = d.server.dns;
    // In process, the server cannot read while this loop sends: the burst waits in the socket.
    const sock = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    cleanups.push(() => sock.close());
    const replies = new Map<number, number>();
    sock.on('message', (m) => replies.set(m.readUInt16BE(0), (replies.get(m.readUInt16BE(0)) ?? 0) + 1));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    // 200 small datagrams fit the server's receive buffer even where the kernel caps it at 208 KiB.
    for (let id = 1; id <= 200; id++) sock.send(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id }), d.port, '127.0.0.1');
    for (let i = 0; i < 100 && replies.size < 200; i++) await sleep(20);
    expect(replies.size).toBe(200);
    expect([...replies.values()].every((n) => n === 1)).toBe(true);
    const s = dns.udpStats();
    expect(s.received).toBe(200);
    expect(s.sent).toBe(200);
    expect(s.batches).toBeLessThan(200 / 4);

    // Reload to another address: the new listener answers at once, the old one lingers, then closes.
    const old = d.port;
    await dns.listen([{ host: '127.0.0.2', port: 0 }]);
    const moved = dns.addresses()[0];
    expect(moved.host).toBe('127.0.0.2');
    expect(await ask('127.0.0.2', moved.port, 2000), 'the new listener answers').toEqual(NGINX);
    expect(await ask('127.0.0.1', old, 500), 'the old listener still answers for a moment').toEqual(NGINX);
    await sleep(1500);
    expect(await ask('127.0.0.1', old, 500), 'then it is closed').toBeNull();
    // Counts of the closed socket are kept (201 queries), plus the new one's: the totals never go backwards.
    expect(dns.udpStats().received).toBe(202);
  });
});

describe.runIf(hasUdpAddon)('both UDP paths on hostile datagram sizes', () => {
  /** The reply to `pkt` from 127.0.0.1@port as bytes, or null when none comes within timeoutMs. */
  const exchange = (port: number, pkt: Buffer, timeoutMs = 1000) =>
    new Promise<Buffer | null>((resolve) => {
      const sock = createSocket('udp4');
      const done = (v: Buffer | null) => {
        clearTimeout(timer);
        sock.close();
        resolve(v);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      sock.on('error', () => done(null));
      sock.on('message', (m) => done(m));
      sock.send(pkt, port, '127.0.0.1');
    });

  it('empty, short, header-only and 65,507-byte datagrams get the same reply (or none) from both', async () => {
    const query = encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 0x4242 });
    const packets = [
      Buffer.alloc(0),
      Buffer.from([0x42]),
      query.subarray(0, 11),
      query.subarray(0, 12),
      Buffer.concat([query, Buffer.alloc(65_507 - query.length, 0xa5)]), // the largest IPv4 datagram
      Buffer.alloc(65_507, 0xff),
      query,
    ];
    const replies: Record<string, (string | null)[]> = {};
    for (const batch of ['off', 'on'] as const) {
      const d = await startDemo(udpBatch(batch));
      cleanups.push(() => d.stop());
      replies[batch] = [];
      for (const p of packets) replies[batch].push((await exchange(d.port, p))?.toString('hex') ?? null);
      if (batch === 'on') expect(d.server.dns.udpStats().received).toBe(packets.length);
    }
    expect(replies.on).toEqual(replies.off);
    // The last one is a plain query: answered, so the server went on after the others.
    expect(replies.on[packets.length - 1]).not.toBeNull();
  });
});
