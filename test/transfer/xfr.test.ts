/**
 * fedns's outgoing zone transfers, against fedns alone (in-process, on 127.0.0.1) with our own
 * AXFR/IXFR client (harness.ts: it reads slowly on request and verifies TSIG chains itself, from
 * RFC 8945) and, where installed, kdig/dig as independent clients:
 *  - a zone of more than 100,000 records transfers completely and in `fedns zone` order, and
 *    answers like knotd serving that same zone;
 *  - changes arriving during a slow transfer do not leak into it (one consistent snapshot);
 *  - IXFR: incremental from the journal (and applying it gives the new zone), the whole zone
 *    AXFR-style for a serial not in the journal, a single SOA when up to date and over UDP;
 *  - refusals: AXFR over UDP, clients outside transfer.allow, missing/bad TSIG (NOTAUTH with the
 *    TSIG error code, logged);
 *  - NOTIFY: retried while unacknowledged, one per burst of changes, signed with notifyKey.
 * No timing assertions: waits are bounded, figures go to benchmarks/transfer.ts.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ClusterState } from '../../src/cluster/state.js';
import { Opcode, Rcode, RRClass, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/wire/message.js';
import { nameToWire } from '../../src/wire/name.js';
import type { RR, SoaData } from '../../src/wire/records.js';
import { readTsig, ResponseSigner, signRequest, TsigError, verifyRequest } from '../../src/wire/tsig.js';
import { masterFile } from '../../src/zone/masterfile.js';
import type { ZoneSnapshot } from '../../src/zone/snapshot.js';
import { compareResults, digManyReasking, type DigQuery } from '../support/dig.js';
import { findBinary, requirePeer, startKnot } from '../support/peers.js';
import {
  addCluster,
  fillCluster,
  lastAdditionalOffset,
  parseIncremental,
  readdress,
  RECORDS_PER_SERVICE,
  removeService,
  rrLine,
  sleep,
  soaSerialOf,
  startPrimary,
  tcpExchange,
  tcpPipeline,
  tcpTransfer,
  tsigKey,
  udpExchange,
  verifyResponseTsig,
  withTsigMac,
  xfrQuery,
  ZONE,
  zoneLines,
  type Primary,
} from './harness.js';

const run = promisify(execFile);
// Independent clients: loud skip when missing (a failure under FEDNS_STRICT_PEERS=1).
const KDIG = requirePeer('kdig') ? findBinary('kdig') : undefined;
const DIG = requirePeer('dig') ? findBinary('dig') : undefined;
const KNOT = requirePeer('knotd') && DIG !== undefined;
const SECRET = 'ZmVkbnMtdGVzdC10c2lnLXNlY3JldC0wMTIzNDU2Nzg5';
const KEY = tsigKey('xfr-key.', SECRET);
const SERVICES = Math.ceil(100_000 / RECORDS_PER_SERVICE) + 200;

/** Multiset difference of two sorted line lists, as a short human-readable report. */
function lineDiff(got: string[], want: string[], limit = 10): string[] {
  const count = new Map<string, number>();
  for (const l of want) count.set(l, (count.get(l) ?? 0) + 1);
  const extra: string[] = [];
  for (const l of got) {
    const n = count.get(l) ?? 0;
    if (n === 0) extra.push(l);
    else count.set(l, n - 1);
  }
  const missing = [...count].filter(([, n]) => n > 0).map(([l]) => l);
  return [...missing.slice(0, limit).map((l) => `missing: ${l}`), ...extra.slice(0, limit).map((l) => `unexpected: ${l}`)];
}

/** The records of a transfer without its closing SOA, as sorted lines. */
function transferred(records: RR[]): string[] {
  return records.slice(0, -1).map(rrLine).sort();
}

function header(buf: Buffer): Message {
  return decodeMessage(buf);
}

/** kdig's AXFR (or IXFR=serial) output as normalised record lines ("name ttl class type rdata"). */
async function kdigTransfer(port: number, type: string, args: string[] = []): Promise<{ lines: string[]; text: string }> {
  const { stdout, stderr } = await run(KDIG!, [`@127.0.0.1`, '-p', String(port), ZONE, type, ...args], { maxBuffer: 512 * 1024 * 1024, timeout: 60_000 });
  // Only kdig's own comment lines (errors, warnings, statistics), not the records.
  const text = (stdout + stderr).split('\n').filter((l) => l.startsWith(';')).join('\n');
  const lines = stdout
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/).join(' ').toLowerCase());
  return { lines, text };
}

const spaced = (l: string) => l.split(/\s+/).join(' ');

describe('a zone of more than 100,000 records', () => {
  let p: Primary;
  let c: ClusterState;
  let big: ZoneSnapshot;
  /** The serial the slow transfer carried (changes were made after it). */
  let during: number;

  beforeAll(async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    c = addCluster(p);
    fillCluster(c, 0, SERVICES);
    big = await p.waitForZone((z) => z.ready && z.recordCount >= 100_000, 60_000, 'the big zone');
    big = await p.settled(200, 30_000);
  }, 90_000);

  afterAll(async () => {
    await p?.stop();
  });

  it('AXFR transfers all of it: SOA first and last, every record of `fedns zone` exactly once, in its order', async () => {
    expect(big.recordCount).toBeGreaterThanOrEqual(100_000);
    const r = await tcpTransfer(p.port, 'AXFR');
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(r.messages.length).toBeGreaterThan(1);
    for (const m of r.raw) expect(m.length).toBeLessThanOrEqual(65535);
    expect(r.messages.every((m) => m.aa && m.qr && m.rcode === 0)).toBe(true);
    expect(r.records.length).toBe(big.recordCount + 1);
    expect(soaSerialOf(r.records[0])).toBe(big.serial);
    expect(soaSerialOf(r.records.at(-1))).toBe(big.serial);
    expect(r.records.filter((x) => x.type === RRType.SOA).length).toBe(2);

    // Exactly the zone fedns serves at that serial (SOA once)...
    expect(lineDiff(transferred(r.records), zoneLines(big))).toEqual([]);
    // ... which is what `fedns zone` prints, in the same order (names in canonical order).
    const printed = masterFile(big)
      .split('\n')
      .filter((l) => l && !l.startsWith(';') && !l.startsWith('$'))
      .map((l) => l.toLowerCase());
    expect(printed.length).toBe(big.recordCount);
    const got = r.records.slice(0, -1).map(rrLine);
    const firstOff = got.findIndex((l, i) => l !== printed[i]);
    expect(firstOff, `first difference at record ${firstOff}: ${got[firstOff]} vs ${printed[firstOff]}`).toBe(-1);
    console.log(`AXFR of ${r.records.length} records: ${r.messages.length} messages, ${r.bytes} bytes, ${r.ms.toFixed(0)} ms`);
  });

  it.skipIf(!KNOT)('answers like knotd serving the same zone (`fedns zone` text of that serial)', async () => {
    const knot = await startKnot({ origin: ZONE, zoneText: masterFile(big), readyTimeoutMs: 60_000 });
    try {
      // Every 400th name that has records (addresses, SRV), a type it lacks (NODATA), a name below
      // it (NXDOMAIN) and an empty non-terminal above it, over UDP and TCP.
      const names = [...big.names.values()];
      const queries: DigQuery[] = [];
      for (let i = 0; i < names.length; i += 400) {
        const n = names[i];
        if (n.isEmptyNonTerminal) {
          queries.push({ name: n.name, type: 'A' });
          continue;
        }
        const type = n.rrsets.has(RRType.SRV) ? 'SRV' : 'A';
        queries.push({ name: n.name, type }, { name: n.name, type: 'TXT' }, { name: `nx.${n.name}`, type: 'A' }, { name: n.name, type, tcp: true });
      }
      const [ours, theirs] = await Promise.all([p.port, knot.port].map((port) => digManyReasking('127.0.0.1', port, queries)));
      const diffs = queries.flatMap((q, i) => {
        const d = compareResults(ours[i], theirs[i], { labels: ['fedns', 'knot'], flags: ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'] });
        return d.length ? [`${q.name} ${q.type}${q.tcp ? ' +tcp' : ''}: ${d.join('; ')}`] : [];
      });
      expect(diffs.slice(0, 20)).toEqual([]);
      // The comparison compared real answers of each kind.
      expect(queries.length).toBeGreaterThan(500);
      expect(ours.filter((r) => r.status === 'NOERROR' && r.answer.length > 0).length).toBeGreaterThan(100);
      expect(ours.filter((r) => r.status === 'NXDOMAIN').length).toBeGreaterThan(100);
      expect(p.zone().serial).toBe(big.serial);
    } finally {
      await knot.stop();
    }
  }, 120_000);

  it('two AXFRs asked for on one connection come back one after the other, both complete', async () => {
    const queries = [xfrQuery('AXFR', { id: 1111 }), xfrQuery('AXFR', { id: 2222 })];
    const soas = (ms: Message[], id: number) => ms.filter((m) => m.id === id).flatMap((m) => m.answers).filter((r) => r.type === RRType.SOA).length;
    const ms = await tcpPipeline(p.port, queries, (got) => soas(got, 1111) >= 2 && soas(got, 2222) >= 2);
    const ids = ms.map((m) => m.id);
    const switches = ids.filter((id, i) => i > 0 && id !== ids[i - 1]).length;
    expect(switches).toBe(1); // all of one transfer, then all of the other
    for (const id of [1111, 2222]) expect(ms.filter((m) => m.id === id).reduce((n, m) => n + m.answers.length, 0)).toBe(p.zone().recordCount + 1);
  });

  it.skipIf(!KDIG)('kdig (an independent client) receives the same records', async () => {
    const { lines, text } = await kdigTransfer(p.port, 'AXFR');
    expect(text).not.toMatch(/ERROR|WARNING/);
    expect(lines.length).toBe(big.recordCount + 1);
    const want = zoneLines(big).map(spaced);
    expect(lineDiff(lines.slice(0, -1).sort(), want)).toEqual([]);
  });

  it('a transfer read slowly while the cluster changes is one consistent snapshot', async () => {
    const atStart = p.zone().serial;
    const seen = new Set<number>();
    let changes = 0;
    const r = await tcpTransfer(p.port, 'AXFR', {
      readDelayMs: 15,
      onMessage: (_m, i) => {
        seen.add(p.zone().serial);
        if (i % 15 === 3) {
          readdress(c, i, 7); // new addresses of an existing service
          removeService(c, SERVICES - 1 - i); // a service goes away
          fillCluster(c, SERVICES + i, SERVICES + i + 1); // and one appears
          changes++;
        }
      },
    });
    const serial = soaSerialOf(r.records[0])!;
    expect(serial).toBe(atStart);
    expect(soaSerialOf(r.records.at(-1))).toBe(serial);
    // Changes were published while the transfer was being read...
    expect(changes).toBeGreaterThanOrEqual(5);
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(p.zone().serial).not.toBe(serial);
    // ... and none of them is in it: the records are exactly the zone at the serial it announced.
    const snap = p.history.get(serial)!;
    expect(snap).toBeDefined();
    expect(lineDiff(transferred(r.records), zoneLines(snap))).toEqual([]);
    expect(zoneLines(p.zone())).not.toEqual(zoneLines(snap));
    during = serial;
  });

  it('IXFR from a journal serial is incremental, and applying it to that zone gives the current zone', async () => {
    const now = await p.settled(100);
    expect(during).toBeDefined();
    const r = await tcpTransfer(p.port, 'IXFR', { serial: during });
    expect(r.rcode).toBe(Rcode.NOERROR);
    const inc = parseIncremental(r.records);
    expect(inc.complete).toBe(true);
    expect(inc.serial).toBe(now.serial);
    expect(inc.deltas.length).toBeGreaterThanOrEqual(5);
    // The deltas chain from the client's serial to the current one.
    expect(inc.deltas[0].from).toBe(during);
    for (let i = 1; i < inc.deltas.length; i++) expect(inc.deltas[i].from).toBe(inc.deltas[i - 1].to);
    expect(inc.deltas.at(-1)!.to).toBe(now.serial);
    // Apply: every removed record must exist, every added one must not.
    const zone = new Set(zoneLines(p.history.get(during)!).filter((l) => !/\tsoa\t/.test(l)));
    const problems: string[] = [];
    for (const d of inc.deltas) {
      for (const rr of d.removed) if (!zone.delete(rrLine(rr))) problems.push(`${d.from}->${d.to} removes absent ${rrLine(rr)}`);
      for (const rr of d.added) {
        if (zone.has(rrLine(rr))) problems.push(`${d.from}->${d.to} adds present ${rrLine(rr)}`);
        zone.add(rrLine(rr));
      }
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(lineDiff([...zone].sort(), zoneLines(now).filter((l) => !/\tsoa\t/.test(l)))).toEqual([]);
    // Much smaller than the zone; logged and counted as incremental.
    expect(r.records.length).toBeLessThan(1000);
    await p.waitForLog('zone transfer', (x) => x.type === 'IXFR' && x.kind === 'incremental' && x.clientSerial === during && x.complete === true);
    expect(await p.transfers('IXFR', 'incremental')).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!KDIG)('kdig applies the same IXFR (independent parse of the incremental format)', async () => {
    const { lines, text } = await kdigTransfer(p.port, `IXFR=${during}`);
    expect(text).not.toMatch(/ERROR|WARNING/);
    const r = await tcpTransfer(p.port, 'IXFR', { serial: during });
    expect(lines).toEqual(r.records.map((x) => spaced(rrLine(x))));
  });

  it('IXFR from a serial not in the journal (1) gets the whole zone, AXFR-style', async () => {
    const now = p.zone();
    const r = await tcpTransfer(p.port, 'IXFR', { serial: 1 });
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(soaSerialOf(r.records[0])).toBe(now.serial);
    expect(r.records[1].type).not.toBe(RRType.SOA); // not the incremental format
    expect(soaSerialOf(r.records.at(-1))).toBe(now.serial);
    expect(r.records.length).toBe(now.recordCount + 1);
    expect(lineDiff(transferred(r.records), zoneLines(now))).toEqual([]);
    expect((await p.waitForLog('zone transfer', (x) => x.type === 'IXFR' && x.clientSerial === 1)).kind).toBe('full (serial not in journal)');
  });

  it('IXFR with the current (or a newer) serial gets a single SOA', async () => {
    const now = p.zone();
    for (const serial of [now.serial, now.serial + 10]) {
      const r = await tcpTransfer(p.port, 'IXFR', { serial });
      expect(r.rcode).toBe(Rcode.NOERROR);
      expect(r.messages.length).toBe(1);
      expect(r.records.length).toBe(1);
      expect(soaSerialOf(r.records[0])).toBe(now.serial);
    }
    expect(await p.transfers('IXFR', 'uptodate')).toBe(2);
  });

  it('IXFR over UDP gets a single SOA, whatever the client serial', async () => {
    const now = p.zone();
    for (const serial of [1, during, now.serial]) {
      const reply = await udpExchange(p.port, xfrQuery('IXFR', { serial }));
      expect(reply).not.toBeNull();
      const m = header(reply!);
      expect(m.rcode).toBe(Rcode.NOERROR);
      expect(m.aa).toBe(true);
      expect(m.tc).toBe(false);
      expect(m.answers.length).toBe(1);
      expect(soaSerialOf(m.answers[0])).toBe(now.serial);
    }
    expect(await p.transfers('IXFR', 'udp-soa')).toBe(3);
  });

  it('AXFR over UDP is refused', async () => {
    const reply = await udpExchange(p.port, xfrQuery('AXFR', {}));
    expect(reply).not.toBeNull();
    const m = header(reply!);
    expect(m.rcode).toBe(Rcode.REFUSED);
    expect(m.answers).toEqual([]);
    expect(p.logs.find('zone transfer refused', (x) => x.reason === 'AXFR over UDP').length).toBe(1);
  });
});

describe('IXFR across every kind of change', () => {
  let p: Primary;
  afterAll(async () => {
    await p?.stop();
  });

  it('from every serial, applying the deltas gives the current zone (addresses, removals, new region, stale TTLs, a cluster gone)', async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    const a = addCluster(p, 'a', 'r1', 'z1');
    fillCluster(a, 0, 40);
    const serials = [(await p.settled(100)).serial];
    const step = async (what: string, change: () => void) => {
      const before = p.zone().serial;
      change();
      serials.push((await p.waitForZone((z) => z.serial !== before, 5000, what)).serial);
      await p.settled(50);
      serials[serials.length - 1] = p.zone().serial;
    };
    await step('new addresses', () => readdress(a, 3, 9));
    await step('a removal', () => removeService(a, 4));
    await step('new services', () => fillCluster(a, 40, 45));
    // A second cluster in a new region: every service gets regional and zonal fallback names.
    const b = addCluster(p, 'b', 'r2', 'z9');
    await step('a new region', () => fillCluster(b, 0, 10, 0, 'z9'));
    // Cluster a breaks: its answers turn stale (TTL changes: removed and added again).
    await step('stale cluster', () => a.markBroken('watch failed'));
    await step('live again', () => a.markLive());
    await step('a cluster gone', () => p.fedns.federation.removeCluster('b'));
    const now = p.zone();
    expect(new Set(serials).size).toBe(serials.length);
    const problems: string[] = [];
    for (const from of serials.slice(0, -1)) {
      const r = await tcpTransfer(p.port, 'IXFR', { serial: from });
      const inc = parseIncremental(r.records);
      if (!inc.complete || inc.serial !== now.serial || inc.deltas[0]?.from !== from) {
        problems.push(`from ${from}: not an incremental answer up to ${now.serial}`);
        continue;
      }
      const zone = new Set(zoneLines(p.history.get(from)!).filter((l) => !/\tsoa\t/.test(l)));
      for (const d of inc.deltas) {
        for (const rr of d.removed) if (!zone.delete(rrLine(rr))) problems.push(`from ${from}: ${d.from}->${d.to} removes absent ${rrLine(rr)}`);
        for (const rr of d.added) {
          if (zone.has(rrLine(rr))) problems.push(`from ${from}: ${d.from}->${d.to} adds present ${rrLine(rr)}`);
          zone.add(rrLine(rr));
        }
      }
      problems.push(...lineDiff([...zone].sort(), zoneLines(now).filter((l) => !/\tsoa\t/.test(l))).map((x) => `from ${from}: ${x}`));
    }
    expect(problems.slice(0, 20)).toEqual([]);
    // The stale step really changed TTLs (so the test covered TTL-only changes).
    const staleSerial = serials[5];
    expect(zoneLines(p.history.get(staleSerial)!).some((l) => /\t5\tin\ta\t/.test(l))).toBe(true);
  });
});

describe('access control', () => {
  const started: Primary[] = [];
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
  });
  const primary = async (allow?: string[]) => {
    const p = await startPrimary({ demo: true, transfer: allow ? { allow } : {} });
    started.push(p);
    await p.settled();
    return p;
  };

  it('a client outside transfer.allow is REFUSED (AXFR and IXFR, TCP and UDP) and it is logged', async () => {
    const p = await primary(['192.0.2.1', '10.0.0.0/8', '2001:db8::/32']);
    for (const qtype of ['AXFR', 'IXFR'] as const) {
      const tcp = await tcpExchange(p.port, xfrQuery(qtype, { serial: 1 }));
      expect(header(tcp!).rcode, `${qtype} over TCP`).toBe(Rcode.REFUSED);
      expect(header(tcp!).answers).toEqual([]);
      const udp = await udpExchange(p.port, xfrQuery(qtype, { serial: 1 }));
      expect(header(udp!).rcode, `${qtype} over UDP`).toBe(Rcode.REFUSED);
    }
    const logged = p.logs.find('zone transfer refused', (x) => x.reason === 'client not in transfer.allow' && x.client === '127.0.0.1');
    expect(logged.length).toBe(4);
    expect(await p.transfers('AXFR', 'refused')).toBe(2);
    // Ordinary queries are not affected.
    const soa = await udpExchange(p.port, encodeMessage({ id: 7, questions: [{ name: ZONE, type: RRType.SOA, class: RRClass.IN }] }));
    expect(header(soa!).rcode).toBe(Rcode.NOERROR);
  });

  it('10,000 refused transfers log a handful of lines, then one with the count of the others', async () => {
    const p = await primary(['192.0.2.1']);
    const axfr = xfrQuery('AXFR', {});
    for (let i = 0; i < 10_000; i++) {
      const out = p.fedns.responder.answer(axfr, 'udp', undefined, `198.51.100.${i & 255}`);
      expect(out![3] & 0xf).toBe(Rcode.REFUSED);
    }
    const lines = () => p.logs.find('zone transfer refused');
    expect(lines().length).toBeGreaterThan(0);
    expect(lines().length).toBeLessThanOrEqual(5);
    expect(await p.transfers('AXFR', 'refused')).toBe(10_000);
    // A minute later, the next one is logged with the count of those that were not.
    vi.setSystemTime(Date.now() + 61_000);
    try {
      p.fedns.responder.answer(axfr, 'udp', undefined, '198.51.100.1');
    } finally {
      vi.useRealTimers();
    }
    const last = lines().at(-1)!;
    expect(last.kind).toBe('transfer-refused');
    expect(last.suppressed).toBe(10_000 - (lines().length - 1));
  });

  it('no transfer.allow at all refuses everyone; a CIDR block containing the client allows it', async () => {
    const none = await primary();
    expect(header((await tcpExchange(none.port, xfrQuery('AXFR', {})))!).rcode).toBe(Rcode.REFUSED);
    const cidr = await primary(['127.0.0.0/8']);
    const r = await tcpTransfer(cidr.port, 'AXFR');
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(r.records.length).toBe(cidr.zone().recordCount + 1);
  });
});

describe('TSIG algorithms', () => {
  const ALGS = ['hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;
  const secret = (alg: string) => Buffer.from(`fedns-${alg}-secret-0123456789abcdef`).toString('base64');
  let p: Primary;
  beforeAll(async () => {
    p = await startPrimary({
      transfer: { allow: ['127.0.0.1'], tsig: ALGS.map((algorithm) => ({ name: `${algorithm}-key.`, algorithm, secret: secret(algorithm) })), requireTsig: true },
    });
    fillCluster(addCluster(p), 0, 50);
    await p.waitForZone((z) => z.ready && z.recordCount > 300, 30_000, 'the zone');
    await p.settled(200);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it.skipIf(!KDIG).each(ALGS)('%s: kdig -y verifies a signed AXFR; the same key under another algorithm is refused', async (alg) => {
    const { lines, text } = await kdigTransfer(p.port, 'AXFR', ['-y', `${alg}:${alg}-key.:${secret(alg)}`]);
    expect(text).not.toMatch(/ERROR|WARNING|BADSIG|BADKEY|failed/i);
    expect(lines.filter((l) => !l.includes(' tsig ')).length).toBe(p.zone().recordCount + 1);
    const other = alg === 'hmac-sha256' ? 'hmac-sha512' : 'hmac-sha256';
    const wrong = await kdigTransfer(p.port, 'AXFR', ['-y', `${other}:${alg}-key.:${secret(alg)}`]).catch((e: { stdout?: string; stderr?: string }) => ({
      lines: [],
      text: `${e.stdout ?? ''}${e.stderr ?? ''}`,
    }));
    expect(wrong.lines.length).toBe(0);
    expect(wrong.text).toMatch(/NOTAUTH|BADKEY/);
  });

  it.skipIf(!DIG).each(ALGS)('%s: a TSIG-signed ordinary query (dig -y) gets a signed answer', async (alg) => {
    const { stdout } = await run(DIG!, ['@127.0.0.1', '-p', String(p.port), ZONE, 'SOA', '-y', `${alg}:${alg}-key.:${secret(alg)}`], { timeout: 20_000 });
    expect(stdout).toMatch(/status: NOERROR/);
    expect(stdout).toMatch(new RegExp(`TSIG\\s+${alg}\\.?\\s+`, 'i'));
    expect(stdout).not.toMatch(/tsig verify failure|BADSIG|BADKEY/i);
  });

  // dig's "hmac-sha256-128" sends the first 16 bytes of the MAC: refused by fedns's policy, with a
  // BADTRUNC dig can verify (signed over the truncated MAC), as BIND answers it.
  it.skipIf(!DIG)('a truncated MAC (dig -y hmac-sha256-128) gets a BADTRUNC that dig verifies', async () => {
    const { stdout } = await run(DIG!, ['@127.0.0.1', '-p', String(p.port), ZONE, 'SOA', '-y', `hmac-sha256-128:hmac-sha256-key.:${secret('hmac-sha256')}`], { timeout: 20_000 }).catch(
      (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
    );
    expect(stdout).toMatch(/status: NOTAUTH/);
    expect(stdout).toMatch(/BADTRUNC/);
    // dig verified the MAC and reports the error in it (an unsigned one: "tsig verify failure").
    expect(stdout).toMatch(/tsig indicates error/);
    expect(stdout).not.toMatch(/tsig verify failure/i);
  });
});

describe('TSIG', () => {
  let p: Primary;
  beforeAll(async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'], tsig: [{ name: 'xfr-key.', secret: SECRET }], requireTsig: true } });
    // ~18,000 records: the AXFR spans dozens of messages, each signed.
    fillCluster(addCluster(p), 0, 3000);
    await p.waitForZone((z) => z.ready && z.recordCount > 18_000, 30_000, 'the zone');
    await p.settled(200);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('a signed AXFR gets every message signed; the MAC chain verifies (RFC 8945 5.3.1)', async () => {
    const r = await tcpTransfer(p.port, 'AXFR', { key: KEY });
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(r.messages.length).toBeGreaterThan(10);
    expect(r.records.length).toBe(p.zone().recordCount + 1);
    expect(r.tsigVerified, r.tsigProblem).toBe(true);
    // The verifier is not vacuous: one flipped header bit (RA) in one message breaks the chain there.
    const bad = r.raw.map((b) => Buffer.from(b));
    bad[3][3] ^= 0x80;
    expect(verifyResponseTsig(r.requestMac!, bad, KEY)).toBe('message 3: MAC does not verify');
  });

  it.skipIf(!KDIG)('kdig -y verifies the signed multi-message AXFR and a signed IXFR', async () => {
    const y = ['-y', `hmac-sha256:xfr-key.:${SECRET}`];
    const { lines, text } = await kdigTransfer(p.port, 'AXFR', y);
    expect(text).not.toMatch(/ERROR|WARNING|BADSIG|failed/i);
    expect(lines.filter((l) => !l.includes(' tsig ')).length).toBe(p.zone().recordCount + 1);
    const ixfr = await kdigTransfer(p.port, 'IXFR=1', y);
    expect(ixfr.text).not.toMatch(/ERROR|WARNING|failed/i);
    // Without the key, kdig is refused.
    const unsigned = await kdigTransfer(p.port, 'AXFR').catch((e: { stdout?: string; stderr?: string }) => ({ lines: [], text: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
    expect(unsigned.text).toMatch(/REFUSED/);
  });

  it('a request without TSIG is REFUSED and logged ("TSIG required")', async () => {
    const reply = await tcpExchange(p.port, xfrQuery('AXFR', {}));
    expect(header(reply!).rcode).toBe(Rcode.REFUSED);
    expect(p.logs.find('zone transfer refused', (x) => x.reason === 'TSIG required').length).toBeGreaterThanOrEqual(1);
  });

  /** NOTAUTH with a TSIG RR carrying `error` (RFC 8945 5.2, 5.3.2). */
  function expectTsigError(reply: Buffer | null, error: number, keyName: string): void {
    expect(reply).not.toBeNull();
    const m = header(reply!);
    expect(m.rcode).toBe(Rcode.NOTAUTH);
    expect(m.answers).toEqual([]);
    const t = readTsig(reply!, lastAdditionalOffset(reply!));
    expect(t.error).toBe(error);
    expect(t.keyName).toBe(keyName);
    if (error !== TsigError.BADTIME && error !== TsigError.BADTRUNC) expect(t.mac.length).toBe(0); // unsigned error (5.3.2)
  }

  it('an unknown key gets NOTAUTH/BADKEY and is logged', async () => {
    const other = tsigKey('other-key.', SECRET);
    expectTsigError(await tcpExchange(p.port, xfrQuery('AXFR', { key: other })), TsigError.BADKEY, 'other-key.');
    expect(p.logs.find('zone transfer refused: TSIG', (x) => /unknown key other-key\./.test(String(x.reason))).length).toBe(1);
  });

  it('the right key name with a wrong secret gets NOTAUTH/BADSIG and is logged (TCP and UDP)', async () => {
    const wrong = tsigKey('xfr-key.', Buffer.from('not-the-secret-at-all-0123456789').toString('base64'));
    expectTsigError(await tcpExchange(p.port, xfrQuery('AXFR', { key: wrong })), TsigError.BADSIG, 'xfr-key.');
    expectTsigError(await udpExchange(p.port, xfrQuery('IXFR', { key: wrong, serial: 1 })), TsigError.BADSIG, 'xfr-key.');
    expect(p.logs.find('zone transfer refused: TSIG', (x) => /bad signature with key xfr-key\./.test(String(x.reason))).length).toBe(2);
  });

  it('a signature outside the time window gets NOTAUTH/BADTIME, signed, with the server time', async () => {
    const q = xfrQuery('AXFR', {});
    const old = Math.floor(Date.now() / 1000) - 3600;
    const signed = signRequest(q, KEY, old);
    const reply = await tcpExchange(p.port, signed);
    expectTsigError(reply, TsigError.BADTIME, 'xfr-key.');
    const t = readTsig(reply!, lastAdditionalOffset(reply!));
    expect(t.timeSigned).toBe(old);
    expect(t.other.length).toBe(6);
    const serverTime = t.other.readUInt16BE(0) * 2 ** 32 + t.other.readUInt32BE(2);
    expect(Math.abs(serverTime - Date.now() / 1000)).toBeLessThan(60);
    // Signed with the key over the request MAC: verifiable by the client.
    const reqMac = readTsig(signed, lastAdditionalOffset(signed)).mac;
    expect(verifyResponseTsig(reqMac, [reply!], KEY, false)).toBeUndefined();
    expect(p.logs.find('zone transfer refused: TSIG', (x) => /outside the fudge/.test(String(x.reason))).length).toBe(1);
  });

  // After the tests above: refused-transfer logs are throttled to five lines a minute.
  it('a truncated MAC gets NOTAUTH/BADTRUNC, and a MAC size no signer may send gets FORMERR', async () => {
    const signed = xfrQuery('AXFR', { key: KEY });
    const mac = readTsig(signed, lastAdditionalOffset(signed)).mac;
    const truncated = await tcpExchange(p.port, withTsigMac(signed, mac.subarray(0, 20)));
    expectTsigError(truncated, TsigError.BADTRUNC, 'xfr-key.');
    // Signed over the truncated request MAC (RFC 8945 5.3.2).
    expect(verifyResponseTsig(mac.subarray(0, 20), [truncated!], KEY)).toBeUndefined();
    expect(header((await tcpExchange(p.port, withTsigMac(signed, mac.subarray(0, 8))))!).rcode).toBe(Rcode.FORMERR);
    expect(p.logs.find('zone transfer refused: TSIG', (x) => /MAC truncated to 20 of 32 bytes/.test(String(x.reason))).length).toBe(1);
  });

  it('a signed request refused for another reason (AXFR over UDP) gets a signed refusal', async () => {
    const q = xfrQuery('AXFR', { key: KEY });
    const reply = await udpExchange(p.port, q);
    expect(header(reply!).rcode).toBe(Rcode.REFUSED);
    expect(verifyResponseTsig(readTsig(q, lastAdditionalOffset(q)).mac, [reply!], KEY)).toBeUndefined();
  });

  // RFC 8945 5.3: the answer to a signed request is signed. BIND, as a TSIG secondary, signs its
  // SOA refresh query and rejects an unsigned answer ("expected a TSIG or SIG(0)").
  it('a signed SOA query (a secondary checking the serial) gets a signed answer', async () => {
    const q = signRequest(encodeMessage({ id: 99, questions: [{ name: ZONE, type: RRType.SOA, class: RRClass.IN }] }), KEY);
    const reply = await udpExchange(p.port, q);
    expect(header(reply!).rcode).toBe(Rcode.NOERROR);
    expect(lastAdditionalOffset(reply!)).toBeGreaterThan(0);
    expect(verifyResponseTsig(readTsig(q, lastAdditionalOffset(q)).mac, [reply!], KEY)).toBeUndefined();
  });

  it.skipIf(!DIG)('dig reports the TSIG error of a refused transfer', async () => {
    const { stdout } = await run(DIG!, ['@127.0.0.1', '-p', String(p.port), ZONE, 'AXFR', '-y', 'hmac-sha256:xfr-key.:bm90LXRoZS1zZWNyZXQtYXQtYWxsLTAxMjM0NTY3ODk='], { timeout: 20_000 }).catch(
      (e: { stdout: string }) => ({ stdout: e.stdout }),
    );
    expect(stdout).toMatch(/BADSIG/);
    expect(stdout).toMatch(/Transfer failed/);
  });

  it('counts bad TSIG in fedns_zone_transfers_total{result="badtsig"}', async () => {
    expect((await p.transfers('AXFR', 'badtsig')) + (await p.transfers('IXFR', 'badtsig'))).toBeGreaterThanOrEqual(4);
  });
});

describe('NOTIFY', () => {
  let p: Primary;
  let c: ClusterState;
  let silent: UdpSocket;
  let answering: UdpSocket;
  let silentNow = false;
  /** How the answering secondary acknowledges: signed, unsigned (as anyone who guessed the id could), or signed with a TSIG error. */
  let acks: 'signed' | 'unsigned' | 'badsig' = 'signed';
  const heard: { silent: { at: number; msg: Buffer }[]; answering: { at: number; msg: Buffer }[] } = { silent: [], answering: [] };

  const bind = (s: UdpSocket) => new Promise<number>((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));

  beforeAll(async () => {
    silent = createSocket('udp4');
    answering = createSocket('udp4');
    // As Knot, NSD and BIND answer a signed NOTIFY: signed with the key, over the request's MAC.
    const ack = (s: UdpSocket, msg: Buffer, rinfo: { port: number; address: string }, how: typeof acks = 'signed') => {
      const q = decodeMessage(msg);
      const reply = encodeMessage({ id: q.id, qr: true, aa: true, opcode: Opcode.NOTIFY, questions: q.questions });
      const signer = () => new ResponseSigner(KEY, readTsig(msg, lastAdditionalOffset(msg)));
      s.send(how === 'unsigned' ? reply : how === 'badsig' ? signer().sign(reply, TsigError.BADSIG) : signer().sign(reply), rinfo.port, rinfo.address);
    };
    silent.on('message', (msg, rinfo) => {
      heard.silent.push({ at: Date.now(), msg });
      // Acknowledges the NOTIFYs of the set-up, so that no retry of theirs is pending later.
      if (!silentNow) ack(silent, msg, rinfo);
    });
    answering.on('message', (msg, rinfo) => {
      heard.answering.push({ at: Date.now(), msg });
      ack(answering, msg, rinfo, acks);
    });
    const [sp, ap] = await Promise.all([bind(silent), bind(answering)]);
    p = await startPrimary({
      transfer: {
        allow: ['127.0.0.1'],
        notify: [`127.0.0.1:${sp}`, `127.0.0.1:${ap}`],
        notifyDelay: 0.2,
        tsig: [{ name: 'xfr-key.', secret: SECRET }],
        notifyKey: 'xfr-key.',
      },
    });
    c = addCluster(p);
    fillCluster(c, 0, 20);
    await p.settled(300);
    // Start counting from a quiet state (the initial publishes notify too).
    await sleep(300);
  });

  afterAll(async () => {
    await p?.stop();
    silent?.close();
    answering?.close();
  });

  async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it('an unacknowledged NOTIFY is retried; an acknowledged one is not; both carry the new SOA, signed', async () => {
    silentNow = true;
    heard.silent.length = 0;
    heard.answering.length = 0;
    const before = p.zone().serial;
    readdress(c, 1, 1);
    const z = await p.waitForZone((x) => x.serial !== before, 5000, 'the change');
    await until(() => heard.silent.length >= 2, 10_000, 'a retried NOTIFY');
    await sleep(300);
    expect(heard.silent.length).toBeGreaterThanOrEqual(2);
    expect(heard.answering.length).toBe(1);
    for (const { msg } of [...heard.silent, ...heard.answering]) {
      const m = decodeMessage(msg);
      expect(m.opcode).toBe(Opcode.NOTIFY);
      expect(m.qr).toBe(false);
      expect(m.aa).toBe(true);
      expect(m.questions).toEqual([{ name: ZONE, type: RRType.SOA, class: RRClass.IN }]);
      expect((m.answers[0].data as SoaData).serial).toBe(p.zone().serial);
      // Signed with notifyKey.
      const off = lastAdditionalOffset(msg);
      const v = verifyRequest(msg, off, [KEY]);
      expect(v.ok).toBe(true);
    }
    // A retry is the same NOTIFY again (same id), not a new one.
    expect(new Set(heard.silent.map((h) => h.msg.readUInt16BE(0))).size).toBe(1);
    expect(await p.notifies('acknowledged')).toBeGreaterThanOrEqual(1);
    expect(z.serial).toBe(p.zone().serial);
  });

  it('with notifyKey, an unsigned NOERROR reply, or one signed with a TSIG error, is no acknowledgement: retried and logged until a signed one comes', async () => {
    silentNow = false;
    acks = 'unsigned';
    await sleep(300);
    heard.answering.length = 0;
    const acknowledged = await p.notifies('acknowledged');
    const before = p.zone().serial;
    readdress(c, 14, 4);
    await p.waitForZone((x) => x.serial !== before, 5000, 'the change');
    await until(() => heard.answering.length >= 2, 10_000, 'a retried NOTIFY');
    const warned = await p.waitForLog('NOTIFY reply does not verify with notifyKey: no acknowledgement; retrying', (r) => r.reason === 'not signed');
    expect(warned.target).toBe(`127.0.0.1#${answering.address().port}`);
    // Only the other secondary's signed reply (to the first NOTIFY) acknowledged anything.
    expect(await p.notifies('acknowledged')).toBe(acknowledged + 1);
    // Signed, but with a TSIG error (BADSIG) in it: still no acknowledgement.
    acks = 'badsig';
    await until(() => heard.answering.length >= 3, 10_000, 'the next retry');
    await p.waitForLog('NOTIFY reply does not verify with notifyKey: no acknowledgement; retrying', (r) => r.reason === 'TSIG error 16 from the other side');
    expect(await p.notifies('acknowledged')).toBe(acknowledged + 1);
    // Signed again: the next retry is acknowledged, and no retry follows.
    acks = 'signed';
    await until(() => heard.answering.length >= 4, 10_000, 'the next retry');
    const deadline = Date.now() + 5000;
    while ((await p.notifies('acknowledged')) === acknowledged + 1 && Date.now() < deadline) await sleep(20);
    expect(await p.notifies('acknowledged')).toBe(acknowledged + 2);
    const after = heard.answering.length;
    await sleep(2500);
    expect(heard.answering.length).toBe(after);
  }, 30_000);

  it('a burst of 10 changes is coalesced into one NOTIFY per secondary, for the last serial', async () => {
    await sleep(200);
    heard.answering.length = 0;
    const before = p.zone().serial;
    for (let i = 0; i < 10; i++) {
      readdress(c, 2 + i, 3);
      await sleep(10);
    }
    const after = await p.waitForZone((z) => z.serial !== before, 5000);
    await p.settled(200);
    await until(() => heard.answering.length >= 1, 5000, 'a NOTIFY');
    await sleep(800); // room for any further (unwanted) NOTIFY
    expect(after.serial).not.toBe(before);
    const published = [...p.history.keys()].filter((s) => s > before).length;
    expect(published).toBeGreaterThanOrEqual(5); // the changes were separate publishes...
    expect(heard.answering.length).toBeLessThanOrEqual(2); // ... notified once (twice if the burst straddled the window)
    const last = decodeMessage(heard.answering.at(-1)!.msg);
    expect((last.answers[0].data as SoaData).serial).toBe(p.zone().serial);
  });
});

describe('EDNS on transfers and their errors (RFC 6891 7)', () => {
  let p: Primary;
  beforeAll(async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'], tsig: [{ name: 'xfr-key.', secret: SECRET }], requireTsig: false } });
    fillCluster(addCluster(p), 0, 3000); // ~18,000 records: dozens of messages
    await p.waitForZone((z) => z.ready && z.recordCount > 18_000, 30_000, 'the zone');
    await p.settled(200);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('an AXFR asked with EDNS has an OPT in every message, signed or not; without EDNS none', async () => {
    for (const key of [undefined, KEY]) {
      const r = await tcpTransfer(p.port, 'AXFR', { edns: true, key });
      expect(r.rcode).toBe(Rcode.NOERROR);
      expect(r.messages.length).toBeGreaterThan(10);
      expect(r.records.length).toBe(p.zone().recordCount + 1);
      expect(r.messages.every((m) => m.edns !== undefined && m.edns.version === 0)).toBe(true);
      if (key) expect(r.tsigVerified, r.tsigProblem).toBe(true);
    }
    const plain = await tcpTransfer(p.port, 'AXFR');
    expect(plain.messages.some((m) => m.edns !== undefined)).toBe(false);
  });

  it('IXFR answers asked with EDNS carry the OPT: over UDP (SOA, signed or not), up to date over TCP', async () => {
    const serial = p.zone().serial;
    const udp = header((await udpExchange(p.port, xfrQuery('IXFR', { serial: 1, edns: true })))!);
    expect(udp.rcode).toBe(Rcode.NOERROR);
    expect(udp.answers).toHaveLength(1);
    expect(udp.edns).toBeDefined();
    const signedQ = xfrQuery('IXFR', { serial: 1, edns: true, key: KEY });
    const signed = (await udpExchange(p.port, signedQ))!;
    expect(header(signed).edns).toBeDefined();
    expect(verifyResponseTsig(readTsig(signedQ, lastAdditionalOffset(signedQ)).mac, [signed], KEY)).toBeUndefined();
    const upToDate = await tcpTransfer(p.port, 'IXFR', { serial, edns: true });
    expect(upToDate.records).toHaveLength(1);
    expect(upToDate.messages[0].edns).toBeDefined();
  });

  it('refusals and TSIG errors asked with EDNS carry the OPT, with the TSIG last', async () => {
    const refusedUdp = header((await udpExchange(p.port, xfrQuery('AXFR', { edns: true })))!);
    expect(refusedUdp.rcode).toBe(Rcode.REFUSED);
    expect(refusedUdp.edns).toBeDefined();
    const noSoa = header((await tcpExchange(p.port, xfrQuery('IXFR', { edns: true })))!);
    expect(noSoa.rcode).toBe(Rcode.FORMERR);
    expect(noSoa.edns).toBeDefined();
    // The client's serial is the zone's SOA (RFC 1995 3): an SOA of another owner is none.
    const otherSoa = header((await tcpExchange(p.port, xfrQuery('IXFR', { edns: true, serial: 1, soaOwner: 'evil.example.org.' })))!);
    expect(otherSoa.rcode).toBe(Rcode.FORMERR);
    const wrong = tsigKey('xfr-key.', Buffer.from('not-the-secret-at-all-0123456789').toString('base64'));
    const bad = (await tcpExchange(p.port, xfrQuery('AXFR', { edns: true, key: wrong })))!;
    expect(header(bad).rcode).toBe(Rcode.NOTAUTH);
    expect(header(bad).edns).toBeDefined();
    expect(readTsig(bad, lastAdditionalOffset(bad)).error).toBe(TsigError.BADSIG);
    // A key name of one label holding a dot (\x01.) once made the answer path throw: no answer at all.
    for (const qtype of ['AXFR', 'SOA'] as const) {
      const q = qtype === 'AXFR' ? xfrQuery('AXFR', { key: KEY }) : signRequest(encodeMessage({ id: 9, questions: [{ name: ZONE, type: RRType.SOA, class: RRClass.IN }] }), KEY);
      const at = lastAdditionalOffset(q);
      const hostile = Buffer.concat([q.subarray(0, at), Buffer.from([1, 0x2e, 0]), q.subarray(at + nameToWire(KEY.name).length)]);
      for (const reply of [await tcpExchange(p.port, hostile), await udpExchange(p.port, hostile)]) {
        expect(reply, qtype).not.toBeNull();
        expect(header(reply!).rcode).toBe(Rcode.NOTAUTH);
        expect(readTsig(reply!, lastAdditionalOffset(reply!))).toMatchObject({ keyName: '\\..', error: TsigError.BADKEY });
      }
    }
    const signedRefusal = xfrQuery('AXFR', { edns: true, key: KEY });
    const reply = (await udpExchange(p.port, signedRefusal))!;
    expect(header(reply).rcode).toBe(Rcode.REFUSED);
    expect(header(reply).edns).toBeDefined();
    expect(verifyResponseTsig(readTsig(signedRefusal, lastAdditionalOffset(signedRefusal)).mac, [reply], KEY)).toBeUndefined();
    // A validly signed transfer of a zone not served here: NOTAUTH, signed too (RFC 8945 5.3).
    const otherZone = xfrQuery('AXFR', { edns: true, key: KEY, zone: 'other.example.' });
    const notHere = (await tcpExchange(p.port, otherZone))!;
    expect(header(notHere).rcode).toBe(Rcode.NOTAUTH);
    expect(verifyResponseTsig(readTsig(otherZone, lastAdditionalOffset(otherZone)).mac, [notHere], KEY)).toBeUndefined();
  });
});

describe('NOTIFY answered with an error', () => {
  let p: Primary | undefined;
  let secondary: UdpSocket | undefined;
  afterAll(async () => {
    await p?.stop();
    secondary?.close();
  });

  it('REFUSED is no acknowledgement: counted by rcode, logged, retried until NOERROR; ids do not come from Math.random', async () => {
    let rcode: number = Rcode.REFUSED;
    const heard: { id: number; rcode: number }[] = [];
    secondary = createSocket('udp4');
    const s = secondary;
    s.on('message', (msg, rinfo) => {
      const q = decodeMessage(msg);
      heard.push({ id: q.id, rcode });
      s.send(encodeMessage({ id: q.id, qr: true, aa: true, opcode: Opcode.NOTIFY, rcode, questions: q.questions }), rinfo.port, rinfo.address);
    });
    const port = await new Promise<number>((resolve) => s.bind(0, '127.0.0.1', () => resolve(s.address().port)));
    p = await startPrimary({ transfer: { notify: [`127.0.0.1:${port}`], notifyDelay: 0.1 } });
    const primary = p;
    const rejected = async () => {
      const v = (await primary.fedns.metrics.notifies.get()).values.find((x) => x.labels.result === 'rejected' && x.labels.rcode === 'REFUSED');
      return v?.value ?? 0;
    };
    const c = addCluster(primary);
    fillCluster(c, 0, 5);
    await primary.settled(200);
    // Refused, then retried (the first retry a second later): never acknowledged meanwhile.
    const deadline = Date.now() + 8000;
    // The secondary hears the second NOTIFY before fedns reads its refusal: wait for both.
    while ((heard.length < 2 || (await rejected()) < 2) && Date.now() < deadline) await sleep(20);
    expect(heard.length).toBeGreaterThanOrEqual(2);
    expect(await primary.notifies('acknowledged')).toBe(0);
    expect(await rejected()).toBeGreaterThanOrEqual(2);
    const warned = await primary.waitForLog('NOTIFY rejected by the secondary; retrying', (r) => r.rcode === 'REFUSED');
    expect(warned.target).toBe(`127.0.0.1#${port}`);
    // The secondary accepts now: the next retry is acknowledged, and no retry follows.
    rcode = Rcode.NOERROR;
    while ((await primary.notifies('acknowledged')) < 1 && Date.now() < deadline + 8000) await sleep(20);
    expect(await primary.notifies('acknowledged')).toBe(1);
    const after = heard.length;
    await sleep(2500);
    expect(heard.length).toBe(after);
    expect(await primary.notifies('failed')).toBe(0);
    // Ids come from node:crypto: two NOTIFYs differ even with Math.random stuck on one value.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      for (let i = 0; i < 2; i++) {
        const n = heard.length;
        readdress(c, 1, 10 + i);
        while (heard.length === n && Date.now() < deadline + 20_000) await sleep(20);
      }
    } finally {
      random.mockRestore();
    }
    const [a, b] = heard.slice(-2);
    expect(a.id).not.toBe(b.id);
  }, 30_000);
});
