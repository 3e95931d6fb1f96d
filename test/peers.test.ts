/**
 * Proves the peer harness (test/support/peers.ts) and the dig parser (test/support/dig.ts)
 * against real knotd, unbound and dnsmasq on 127.0.0.1. Peer-backed suites skip loudly when
 * a binary is missing, or fail the file when FEDNS_STRICT_PEERS=1.
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  compareResults,
  dig,
  digMany,
  digManyReasking,
  parseDigOutput,
  summarise,
  type DigResult,
} from './support/dig.js';
import {
  freePort,
  isPortFree,
  requirePeer,
  startDnsmasq,
  startKnot,
  startUnbound,
  tmpDir,
  udpProbe,
  type KnotPeer,
  type PeerHandle,
} from './support/peers.js';

const hasDig = requirePeer('dig');
const hasKnot = requirePeer('knotd');
const hasUnbound = requirePeer('unbound');
const hasDnsmasq = requirePeer('dnsmasq');

const ZONE = `$ORIGIN example.com.
$TTL 300
@               IN SOA   ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 60
@               IN NS    ns1.example.com.
@               IN NS    ns.other.net.
ns1             IN A     192.0.2.53
www             IN A     192.0.2.1
www             IN AAAA  2001:db8::1
alias           IN CNAME www.example.com.
ext             IN CNAME www.other.net.
_sip._tcp       IN SRV   10 5 5060 sip.example.com.
sip             IN A     192.0.2.10
sip             IN AAAA  2001:db8::10
; "ent.example.com." is an empty non-terminal
a.ent           IN A     192.0.2.20
txt             IN TXT   "hello   world" "Two"
`;

const SOA_RR = 'example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 60';

function keys(rrs: DigResult['answer']): string[] {
  return rrs.map((r) => `${r.name} ${r.ttl} ${r.class} ${r.type} ${r.data}`);
}

// -------------------------------------------------------------------------------------------
// Pure helpers (no peers needed)
// -------------------------------------------------------------------------------------------

describe('harness helpers', () => {
  it('requirePeer: warns once and returns false for a missing binary; throws in strict mode', () => {
    const saved = process.env.FEDNS_STRICT_PEERS;
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      delete process.env.FEDNS_STRICT_PEERS;
      expect(requirePeer('fedns-no-such-binary-xyz')).toBe(false);
      expect(requirePeer('fedns-no-such-binary-xyz')).toBe(false);
      const warnings = write.mock.calls.map((c) => String(c[0])).filter((s) => s.includes('fedns-no-such-binary-xyz'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/\*\*\* SKIPPING: fedns-no-such-binary-xyz not installed .*FEDNS_STRICT_PEERS=1/);

      process.env.FEDNS_STRICT_PEERS = '1';
      expect(() => requirePeer('fedns-no-such-binary-xyz')).toThrow(/FEDNS_STRICT_PEERS=1/);
      expect(requirePeer('node') || requirePeer('sh')).toBe(true);
    } finally {
      write.mockRestore();
      if (saved === undefined) delete process.env.FEDNS_STRICT_PEERS;
      else process.env.FEDNS_STRICT_PEERS = saved;
    }
  });

  it('freePort returns distinct ports bindable for TCP and UDP', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    expect(new Set(ports).size).toBe(3);
    for (const p of ports) {
      expect(p).toBeGreaterThan(1024);
      expect(await isPortFree(p)).toBe(true);
    }
  });

  it('tmpDir creates a directory and removes it on cleanup', async () => {
    const d = await tmpDir('fedns-selftest');
    expect(existsSync(d.path)).toBe(true);
    await d.cleanup();
    await d.cleanup();
    expect(existsSync(d.path)).toBe(false);
  });

  it('parseDigOutput splits multi-query output, including failed queries, in order', () => {
    const text = [
      ';; Got answer:',
      ';; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 3680',
      ';; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1',
      ';; WARNING: recursion requested but not available',
      '',
      ';; OPT PSEUDOSECTION:',
      '; EDNS: version: 0, flags: do; udp: 1232',
      '; EDE: 3 (Stale Answer): (served stale)',
      '; NSID: 6b 6e 6f 74 ("knot")',
      ';; QUESTION SECTION:',
      ';Alias.Example.COM.\t\tIN\tA',
      '',
      ';; ANSWER SECTION:',
      'Alias.Example.COM.\t300\tIN\tCNAME\tWWW.example.com.',
      'www.example.com.\t300\tIN\tA\t192.0.2.1',
      '',
      ';; Query time: 0 msec',
      ';; SERVER: 127.0.0.1#25353(127.0.0.1) (UDP)',
      ';; WHEN: Thu Nov 26 15:50:03 UTC 2026',
      ';; MSG SIZE  rcvd: 77',
      '',
      ';; communications error to 127.0.0.1#25396: timed out',
      ';; no servers could be reached',
      ';; Truncated, retrying in TCP mode.',
      ';; Got answer:',
      ';; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 26038',
      ';; flags: qr aa; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 0',
      '',
      ';; QUESTION SECTION:',
      ';nope.example.com.\t\tIN\tTXT',
      '',
      ';; AUTHORITY SECTION:',
      'example.com.\t60\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 60',
      '',
      ';; Query time: 1 msec',
      ';; SERVER: 127.0.0.1#25353(127.0.0.1) (TCP)',
      ';; MSG SIZE  rcvd: 93',
      '',
    ].join('\n');
    const [a, b, c] = parseDigOutput(text);
    expect(parseDigOutput(text)).toHaveLength(3);
    expect(a.status).toBe('NOERROR');
    expect([...a.flags].sort()).toEqual(['aa', 'qr', 'rd']);
    expect(a.question).toEqual({ name: 'alias.example.com.', class: 'IN', type: 'A' });
    expect(keys(a.answer)).toEqual([
      'alias.example.com. 300 IN CNAME WWW.example.com.',
      'www.example.com. 300 IN A 192.0.2.1',
    ]);
    expect(a.edns).toEqual({ version: 0, udp: 1232, flags: new Set(['do']) });
    expect(a.ede).toBe('3 (Stale Answer): (served stale)');
    expect(a.edeCode).toBe(3);
    expect(a.ednsOptions).toEqual(['NSID: 6b 6e 6f 74 ("knot")']);
    expect(a.transport).toBe('UDP');
    expect(a.msgSize).toBe(77);
    expect(b.status).toBe('NO_RESPONSE');
    expect(b.error).toMatch(/timed out/);
    expect(c.status).toBe('NXDOMAIN');
    expect(c.retriedOverTcp).toBe(true);
    expect(c.transport).toBe('TCP');
    expect(c.edns).toBeUndefined();
    expect(keys(c.authority)).toEqual([
      'example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60',
    ]);
  });

  it('compareResults reports rcode/flag/section differences as multisets', () => {
    const mk = (status: string, flags: string[], answer: string[]): DigResult => ({
      ...parseDigOutput(';; Got answer:\n;; MSG SIZE  rcvd: 1\n')[0],
      status,
      flags: new Set(flags),
      answer: answer.map((s) => {
        const [name, ttl, cls, type, ...data] = s.split(' ');
        return { name, ttl: Number(ttl), class: cls, type, data: data.join(' ') };
      }),
    });
    const a = mk('NOERROR', ['qr', 'aa'], ['x.example. 300 IN A 192.0.2.1', 'x.example. 300 IN A 192.0.2.2']);
    const b = mk('NOERROR', ['qr', 'aa'], ['X.EXAMPLE. 60 IN A 192.0.2.2', 'x.example. 60 IN A 192.0.2.1']);
    expect(compareResults(a, b, { ignoreTtl: true })).toEqual([]);
    expect(compareResults(a, b)).toHaveLength(4);
    const c = mk('NXDOMAIN', ['qr'], ['x.example. 300 IN A 192.0.2.1', 'x.example. 300 IN A 192.0.2.1']);
    expect(compareResults(a, c, { labels: ['fedns', 'knot'] })).toEqual([
      'rcode: fedns=NOERROR knot=NXDOMAIN',
      'flag AA: fedns=1 knot=0',
      'answer: only in fedns: x.example. 300 IN A 192.0.2.2',
      'answer: only in knot: x.example. 300 IN A 192.0.2.1',
    ]);
  });
});

// -------------------------------------------------------------------------------------------
// knotd
// -------------------------------------------------------------------------------------------

describe.skipIf(!hasKnot || !hasDig)('knotd peer', () => {
  let knot: KnotPeer;

  beforeAll(async () => {
    knot = await startKnot({
      origin: 'example.com.',
      zoneText: ZONE,
      // exercises the raw-config hooks: allow AXFR from loopback
      extraConfig: 'acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer',
      zoneOptions: '    acl: [xfr]',
    });
  });
  afterAll(async () => {
    await knot?.stop();
  });

  it('is ready (answers SOA authoritatively) as soon as startKnot resolves', async () => {
    const r = await udpProbe(knot.port, 'example.com.');
    expect(r).toMatchObject({ rcode: 0, aa: true, ancount: 1 });
    expect(knot.address).toBe('127.0.0.1');
    expect(existsSync(knot.configFile!)).toBe(true);
  });

  it('answers a batch of queries via digMany, parsed in order', async () => {
    const [www, aaaa, nx, ent, cname, srv, txt, soaTcp] = await digMany('127.0.0.1', knot.port, [
      { name: 'www.example.com', type: 'A' },
      { name: 'WWW.Example.com.', type: 'AAAA' },
      { name: 'nope.example.com', type: 'A' },
      { name: 'ent.example.com', type: 'A' },
      { name: 'alias.example.com', type: 'A' },
      { name: '_sip._tcp.example.com', type: 'SRV' },
      { name: 'txt.example.com', type: 'TXT' },
      { name: 'example.com', type: 'SOA', tcp: true },
    ]);

    expect(www.status).toBe('NOERROR');
    expect(www.flags.has('aa')).toBe(true);
    expect(www.flags.has('qr')).toBe(true);
    expect(www.flags.has('ra')).toBe(false);
    expect(keys(www.answer)).toEqual(['www.example.com. 300 IN A 192.0.2.1']);
    expect(www.edns).toEqual({ version: 0, udp: 1232, flags: new Set() });
    expect(www.transport).toBe('UDP');

    expect(aaaa.question).toEqual({ name: 'www.example.com.', class: 'IN', type: 'AAAA' });
    expect(keys(aaaa.answer)).toEqual(['www.example.com. 300 IN AAAA 2001:db8::1']);

    // NXDOMAIN: SOA in authority with TTL = min(SOA TTL, SOA MINIMUM)
    expect(nx.status).toBe('NXDOMAIN');
    expect(nx.flags.has('aa')).toBe(true);
    expect(nx.answer).toEqual([]);
    expect(keys(nx.authority)).toEqual([SOA_RR]);

    // Empty non-terminal: NODATA (NOERROR, empty answer, SOA in authority)
    expect(ent.status).toBe('NOERROR');
    expect(ent.answer).toEqual([]);
    expect(keys(ent.authority)).toEqual([SOA_RR]);

    // In-zone CNAME is chased
    expect(keys(cname.answer)).toEqual([
      'alias.example.com. 300 IN CNAME www.example.com.',
      'www.example.com. 300 IN A 192.0.2.1',
    ]);
    expect(cname.flags.has('aa')).toBe(true);

    expect(keys(srv.answer)).toEqual(['_sip._tcp.example.com. 300 IN SRV 10 5 5060 sip.example.com.']);
    // knotd adds the SRV target's addresses as additional records
    expect(keys(srv.additional).sort()).toEqual([
      'sip.example.com. 300 IN A 192.0.2.10',
      'sip.example.com. 300 IN AAAA 2001:db8::10',
    ]);

    // whitespace inside quoted strings is preserved
    expect(keys(txt.answer)).toEqual(['txt.example.com. 300 IN TXT "hello   world" "Two"']);

    expect(soaTcp.transport).toBe('TCP');
    expect(keys(soaTcp.answer)).toEqual([SOA_RR.replace(' 60 IN', ' 300 IN')]);
  });

  it('digMany handles many queries in few dig processes, in order', async () => {
    const queries = Array.from({ length: 120 }, (_, i) => ({
      name: i % 3 === 0 ? 'www.example.com' : `n${i}.example.com`,
      type: i % 2 ? 'AAAA' : 'A',
    }));
    const results = await digMany('127.0.0.1', knot.port, queries, [], { chunkSize: 50 });
    expect(results).toHaveLength(120);
    results.forEach((r, i) => {
      expect(r.question?.name).toBe(`${queries[i].name}.`);
      expect(r.status).toBe(i % 3 === 0 ? 'NOERROR' : 'NXDOMAIN');
    });
  });

  it('dig() single query and compareResults between UDP and TCP', async () => {
    const udp = await dig(['@127.0.0.1', '-p', String(knot.port), 'alias.example.com', 'CNAME']);
    const tcp = await dig(['@127.0.0.1', '-p', String(knot.port), '+tcp', 'alias.example.com', 'CNAME']);
    // CNAME queried as CNAME: just the CNAME, no chase
    expect(keys(udp.answer)).toEqual(['alias.example.com. 300 IN CNAME www.example.com.']);
    expect(compareResults(udp, tcp)).toEqual([]);
    const www = await dig(['@127.0.0.1', '-p', String(knot.port), 'www.example.com', 'A']);
    expect(compareResults(udp, www, { labels: ['cname', 'www'] })).toEqual([
      'answer: only in cname: alias.example.com. 300 IN CNAME www.example.com.',
      'answer: only in www: www.example.com. 300 IN A 192.0.2.1',
    ]);
  });

  it('characterises knotd 3.2 ANY handling: one RRset over UDP and TCP', async () => {
    const [udp, tcp, apex] = await digMany('127.0.0.1', knot.port, [
      { name: 'www.example.com', type: 'ANY' },
      { name: 'www.example.com', type: 'ANY', tcp: true },
      { name: 'example.com', type: 'ANY', tcp: true },
    ]);
    // dig 9.18 would send ANY over TCP by default; digMany forces UDP unless tcp: true
    expect(udp.transport).toBe('UDP');
    expect(tcp.transport).toBe('TCP');
    for (const r of [udp, tcp]) {
      expect(r.status).toBe('NOERROR');
      expect(r.flags.has('tc')).toBe(false);
      expect(keys(r.answer)).toEqual(['www.example.com. 300 IN A 192.0.2.1']);
    }
    expect(new Set(apex.answer.map((r) => r.type))).toEqual(new Set(['NS']));
  });

  it('dig() parses a zone transfer (AXFR) into answer', async () => {
    const axfr = await dig(['@127.0.0.1', '-p', String(knot.port), 'example.com', 'AXFR']);
    expect(axfr.xfr).toBe(true);
    expect(axfr.status).toBe('NOERROR');
    expect(axfr.answer[0].type).toBe('SOA');
    expect(axfr.answer[axfr.answer.length - 1].type).toBe('SOA');
    const records = ZONE.split('\n').filter((l) => /\sIN\s/.test(l) && !l.startsWith(';'));
    expect(axfr.answer).toHaveLength(records.length + 1);
    expect(keys(axfr.answer)).toContain('_sip._tcp.example.com. 300 IN SRV 10 5 5060 sip.example.com.');
  });

  it('refuses to query anything but loopback', async () => {
    await expect(dig(['www.example.com', 'A'])).rejects.toThrow(/no @server/);
    await expect(dig(['@192.0.2.1', 'www.example.com', 'A'])).rejects.toThrow(/non-loopback/);
    await expect(digMany('192.0.2.1', 53, [{ name: 'www.example.com', type: 'A' }])).rejects.toThrow(/non-loopback/);
  });

  it('reports a missing server as NO_RESPONSE', async () => {
    const port = await freePort();
    const [r] = await digMany('127.0.0.1', port, [{ name: 'www.example.com', type: 'A' }], ['+time=1']);
    expect(r.status).toBe('NO_RESPONSE');
    expect(r.error).toMatch(/refused|timed out/);
  });

  it('digManyReasking asks again what a lossy server dropped once, and still reports what it always drops', async () => {
    // Answers NXDOMAIN (the query echoed with QR, AA and rcode 3), except: names starting "once"
    // are dropped the first time they come, names starting "never" every time.
    const seen = new Map<string, number>();
    const server = createSocket('udp4');
    server.on('message', (msg, from) => {
      const q = msg.subarray(12).toString('latin1');
      const n = (seen.get(q) ?? 0) + 1;
      seen.set(q, n);
      const label = msg.subarray(13, 13 + msg[12]).toString('latin1');
      if (label.startsWith('never') || (label.startsWith('once') && n === 1)) return;
      const out = Buffer.from(msg);
      out[2] = 0x84 | (out[2] & 0x01);
      out[3] = 0x03;
      server.send(out, from.port, from.address);
    });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    const port = server.address().port;
    try {
      const names = Array.from({ length: 60 }, (_, i) => (i === 10 || i === 40 ? `once${i}` : i === 50 ? 'never' : `n${i}`));
      const rs = await digManyReasking('127.0.0.1', port, names.map((n) => ({ name: `${n}.example.com`, type: 'A' })), ['+time=1']);
      expect(rs.map((r) => r.status)).toEqual(names.map((n) => (n === 'never' ? 'NO_RESPONSE' : 'NXDOMAIN')));
      // Asked twice: the three lost ones; once: the others.
      expect([...seen.values()].sort()).toEqual([...Array(57).fill(1), 2, 2, 2]);

      // More than one query in 20 lost is not a hiccup: reported as they came, not asked again.
      seen.clear();
      const lossy = ['once-a', 'once-b', 'n-c', 'n-d'].map((n) => ({ name: `${n}.example.com`, type: 'A' }));
      const again = await digManyReasking('127.0.0.1', port, lossy, ['+time=1']);
      expect(again.map((r) => r.status)).toEqual(['NO_RESPONSE', 'NO_RESPONSE', 'NXDOMAIN', 'NXDOMAIN']);
      expect([...seen.values()]).toEqual([1, 1, 1, 1]);
    } finally {
      server.close();
    }
  }, 30_000);
});

describe.skipIf(!hasKnot)('knotd startup failures', () => {
  it('fails fast with knotd output when the zone file is broken', async () => {
    const err = await startKnot({ origin: 'example.com.', zoneText: 'this is not a zone\n', readyTimeoutMs: 3000 }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/knotd failed to start/);
    expect(err!.message).toMatch(/\[example\.com\.\] zone loader, error in zone/);
  });
});

// -------------------------------------------------------------------------------------------
// Resolvers in front of knotd
// -------------------------------------------------------------------------------------------

describe.skipIf(!hasKnot || !hasDig || !(hasUnbound || hasDnsmasq))('resolvers in front of knotd', () => {
  let knot: KnotPeer;
  beforeAll(async () => {
    knot = await startKnot({ origin: 'example.com.', zoneText: ZONE });
  });
  afterAll(async () => {
    await knot?.stop();
  });

  describe.skipIf(!hasUnbound)('unbound (qname minimisation, stub zone)', () => {
    let unbound: PeerHandle;
    beforeAll(async () => {
      unbound = await startUnbound({ upstreamPort: knot.port, domain: 'example.com' });
    });
    afterAll(async () => {
      await unbound?.stop();
    });

    it('resolves through the stub zone with RA set and AA clear', async () => {
      const [www, cname, nx, deepNx, ent, below, outside, srv] = await digMany('127.0.0.1', unbound.port, [
        { name: 'www.example.com', type: 'A' },
        { name: 'alias.example.com', type: 'AAAA' },
        { name: 'nope.example.com', type: 'A' },
        { name: 'x.y.nope.example.com', type: 'A' },
        { name: 'ent.example.com', type: 'A' },
        { name: 'a.ent.example.com', type: 'A' },
        { name: 'example.org', type: 'A' },
        { name: '_sip._tcp.example.com', type: 'SRV' },
      ]);
      expect(www.status, summarise(www)).toBe('NOERROR');
      expect(www.flags.has('ra')).toBe(true);
      expect(www.flags.has('aa')).toBe(false);
      expect(keys(www.answer)).toEqual(['www.example.com. 300 IN A 192.0.2.1']);
      expect(keys(cname.answer)).toEqual([
        'alias.example.com. 300 IN CNAME www.example.com.',
        'www.example.com. 300 IN AAAA 2001:db8::1',
      ]);
      expect(nx.status).toBe('NXDOMAIN');
      expect(keys(nx.authority)).toEqual([SOA_RR]);
      expect(deepNx.status).toBe('NXDOMAIN');
      expect(ent.status).toBe('NOERROR');
      expect(ent.answer).toEqual([]);
      expect(keys(below.answer)).toEqual(['a.ent.example.com. 300 IN A 192.0.2.20']);
      // Outside the stub domain: refused locally, never iterated from the real root.
      expect(outside.status).toBe('REFUSED');
      // unbound defaults to minimal-responses: no additional section for SRV
      expect(srv.answer).toHaveLength(1);
      expect(srv.additional).toEqual([]);
    });

    it('a CNAME leaving the domain fails fast (no traffic beyond 127.0.0.1)', async () => {
      const started = Date.now();
      const r = await dig(['@127.0.0.1', '-p', String(unbound.port), 'ext.example.com', 'A']);
      expect(r.status).toBe('SERVFAIL');
      expect(Date.now() - started).toBeLessThan(1500);
    });
  });

  describe.skipIf(!hasDnsmasq)('dnsmasq (forwarder)', () => {
    let dnsmasq: PeerHandle;
    beforeAll(async () => {
      dnsmasq = await startDnsmasq({ upstreamPort: knot.port, domain: 'example.com' });
    });
    afterAll(async () => {
      await dnsmasq?.stop();
    });

    it('forwards the domain to knotd, with RA set', async () => {
      const [www, cname, nx, ent, srv, outside] = await digMany('127.0.0.1', dnsmasq.port, [
        { name: 'www.example.com', type: 'A' },
        { name: 'alias.example.com', type: 'A' },
        { name: 'nope.example.com', type: 'A' },
        { name: 'ent.example.com', type: 'A' },
        { name: '_sip._tcp.example.com', type: 'SRV' },
        { name: 'example.org', type: 'A' },
      ]);
      expect(www.status, summarise(www)).toBe('NOERROR');
      expect(www.flags.has('ra')).toBe(true);
      expect(keys(www.answer)).toEqual(['www.example.com. 300 IN A 192.0.2.1']);
      expect(keys(cname.answer)).toEqual([
        'alias.example.com. 300 IN CNAME www.example.com.',
        'www.example.com. 300 IN A 192.0.2.1',
      ]);
      expect(nx.status).toBe('NXDOMAIN');
      expect(keys(nx.authority)).toEqual([SOA_RR]);
      expect(ent.status).toBe('NOERROR');
      expect(ent.answer).toEqual([]);
      // dnsmasq relays the upstream reply nearly verbatim (additional records included)
      expect(srv.additional.map((r) => r.type).sort()).toEqual(['A', 'AAAA']);
      expect(outside.status).toBe('REFUSED');
    });

    it('a cached answer loses AA and counts its TTL down', async () => {
      const r = await dig(['@127.0.0.1', '-p', String(dnsmasq.port), 'www.example.com', 'A']);
      expect(r.flags.has('aa')).toBe(false);
      expect(r.answer[0].ttl).toBeLessThanOrEqual(300);
    });

    it('stop() terminates the process', async () => {
      const extra = await startDnsmasq({ upstreamPort: knot.port, domain: 'example.com' });
      expect(extra.exited()).toBe(false);
      await extra.stop();
      expect(extra.exited()).toBe(true);
      expect(existsSync(extra.dir)).toBe(false);
      expect(await udpProbe(extra.port, 'www.example.com.', 1, 300, true)).toBeNull();
    });
  });
});
