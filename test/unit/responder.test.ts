import { beforeAll, describe, expect, it } from 'vitest';
import { loadFederation } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { nameToWire } from '../../src/wire/name.js';
import { rdataText } from '../../src/wire/records.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import { createLogger } from '../../src/ops/log.js';
import { readTsig, signRequest } from '../../src/wire/tsig.js';
import { DEMO_CONFIG } from '../support/demo.js';
import { seed, testFederationSettings, type SeedObject } from '../support/federation.js';
import { lastAdditionalOffset, verifyResponseTsig, withTsigMac } from '../transfer/harness.js';

let fed: Federation;
let responder: Responder;

beforeAll(async () => {
  fed = await loadFederation(loadConfig(DEMO_CONFIG), createLogger('silent'));
  responder = new Responder(() => fed.snapshot);
});

function ask(name: string, type: number, opts: Parameters<typeof encodeQuery>[2] = {}, transport: 'udp' | 'tcp' = 'udp'): Message {
  const out = responder.answer(encodeQuery(name, type, { id: 4242, ...opts }), transport);
  expect(out).not.toBeNull();
  const m = decodeMessage(out!);
  expect(m.id).toBe(4242);
  expect(m.qr).toBe(true);
  expect(m.ra).toBe(false);
  return m;
}

const texts = (rrs: Message['answers']) => rrs.map((r) => `${r.name} ${r.type} ${rdataText(r)}`).sort();

describe('zone lookup -> sections', () => {
  type Row = { q: string; t: number; rcode: number; answer?: string[]; authority?: string[]; additional?: string[] };
  const SOA = 'example.com. 6 ';
  const table: Row[] = [
    { q: 'nginx.default.fed.example.com.', t: RRType.A, rcode: 0, answer: ['nginx.default.fed.example.com. 1 192.0.2.10', 'nginx.default.fed.example.com. 1 198.51.100.10'] },
    { q: 'nginx.default.fed.svc.example.com.', t: RRType.A, rcode: 0, answer: ['nginx.default.fed.svc.example.com. 1 192.0.2.10', 'nginx.default.fed.svc.example.com. 1 198.51.100.10'] },
    // charlie's nginx has no ready endpoint: eu-west falls back to the global name.
    {
      q: 'nginx.default.fed.svc.eu-west.example.com.',
      t: RRType.A,
      rcode: 0,
      answer: [
        'nginx.default.fed.svc.eu-west.example.com. 5 nginx.default.fed.svc.example.com.',
        'nginx.default.fed.svc.example.com. 1 192.0.2.10',
        'nginx.default.fed.svc.example.com. 1 198.51.100.10',
      ],
    },
    { q: 'nginx.default.fed.svc.us-east-b.us-east.example.com.', t: RRType.A, rcode: 0, answer: ['nginx.default.fed.svc.us-east-b.us-east.example.com. 1 198.51.100.10'] },
    // billing lives in bravo (us-east-b) only: zonal us-east-a -> regional us-east.
    {
      q: 'billing.finance.fed.svc.us-east-a.us-east.example.com.',
      t: RRType.A,
      rcode: 0,
      answer: ['billing.finance.fed.svc.us-east-a.us-east.example.com. 5 billing.finance.fed.svc.us-east.example.com.', 'billing.finance.fed.svc.us-east.example.com. 1 198.51.100.30'],
    },
    // Zonal -> regional -> global chain.
    {
      q: 'billing.finance.fed.svc.eu-west-a.eu-west.example.com.',
      t: RRType.A,
      rcode: 0,
      answer: [
        'billing.finance.fed.svc.eu-west-a.eu-west.example.com. 5 billing.finance.fed.svc.eu-west.example.com.',
        'billing.finance.fed.svc.eu-west.example.com. 5 billing.finance.fed.svc.example.com.',
        'billing.finance.fed.svc.example.com. 1 198.51.100.30',
      ],
    },
    { q: 'web.shop.fed.example.com.', t: RRType.AAAA, rcode: 0, answer: ['web.shop.fed.example.com. 28 2001:db8:a::20', 'web.shop.fed.example.com. 28 2001:db8:b::20'] },
    // NODATA: the name exists, not the type.
    { q: 'billing.finance.fed.example.com.', t: RRType.AAAA, rcode: 0, answer: [], authority: [SOA] },
    { q: 'nginx.default.fed.example.com.', t: RRType.TXT, rcode: 0, answer: [], authority: [SOA] },
    // Empty non-terminals: NODATA, never NXDOMAIN (RFC 8020).
    { q: 'default.fed.svc.example.com.', t: RRType.A, rcode: 0, answer: [], authority: [SOA] },
    { q: 'fed.example.com.', t: RRType.A, rcode: 0, answer: [], authority: [SOA] },
    { q: 'svc.us-east.example.com.', t: RRType.A, rcode: 0, answer: [], authority: [SOA] },
    { q: 'us-east.example.com.', t: RRType.A, rcode: 0, answer: [], authority: [SOA] },
    { q: '_tcp.nginx.default.fed.example.com.', t: RRType.SRV, rcode: 0, answer: [], authority: [SOA] },
    { q: 'alpha.db.data.fed.svc.example.com.', t: RRType.A, rcode: 0, answer: [], authority: [SOA] },
    // NXDOMAIN.
    { q: 'missing.default.fed.example.com.', t: RRType.A, rcode: Rcode.NXDOMAIN, answer: [], authority: [SOA] },
    { q: 'x.nginx.default.fed.example.com.', t: RRType.A, rcode: Rcode.NXDOMAIN, answer: [], authority: [SOA] },
    { q: 'www.example.com.', t: RRType.A, rcode: Rcode.NXDOMAIN, answer: [], authority: [SOA] },
    // SRV with target addresses in the additional section.
    {
      q: '_http._tcp.nginx.default.fed.svc.example.com.',
      t: RRType.SRV,
      rcode: 0,
      answer: ['_http._tcp.nginx.default.fed.svc.example.com. 33 0 100 80 nginx.default.fed.svc.example.com.'],
      additional: ['nginx.default.fed.svc.example.com. 1 192.0.2.10', 'nginx.default.fed.svc.example.com. 1 198.51.100.10'],
    },
    // Headless: per-endpoint names and SRV per endpoint.
    { q: 'db-0.alpha.db.data.fed.svc.example.com.', t: RRType.A, rcode: 0, answer: ['db-0.alpha.db.data.fed.svc.example.com. 1 192.0.2.101'] },
    { q: '203-0-113-102.charlie.db.data.fed.svc.example.com.', t: RRType.A, rcode: 0, answer: ['203-0-113-102.charlie.db.data.fed.svc.example.com. 1 203.0.113.102'] },
    // Apex.
    { q: 'example.com.', t: RRType.NS, rcode: 0, answer: ['example.com. 2 ns1.example.com.'], additional: ['ns1.example.com. 1 127.0.0.1'] },
    { q: 'ns1.example.com.', t: RRType.A, rcode: 0, answer: ['ns1.example.com. 1 127.0.0.1'] },
  ];
  it.each(table)('$q type $t', (row) => {
    const m = ask(row.q, row.t);
    expect(m.rcode).toBe(row.rcode);
    expect(m.aa).toBe(true);
    expect(m.tc).toBe(false);
    if (row.answer) expect(texts(m.answers).map((s) => s.replace(/^(\S+ \d+ ).*?(\S+)$/, '$1$2'))).toEqual(row.answer.map((s) => s.replace(/^(\S+ \d+ ).*?(\S+)$/, '$1$2')).sort());
    if (row.answer) expect(texts(m.answers)).toEqual([...row.answer].sort());
    if (row.authority) expect(m.authorities.map((r) => `${r.name} ${r.type} `)).toEqual(row.authority);
    else expect(m.authorities).toEqual([]);
    if (row.additional) expect(texts(m.additionals)).toEqual([...row.additional].sort());
  });

  it('bounds the negative SOA TTL by its minimum (RFC 2308)', () => {
    const m = ask('missing.default.fed.example.com.', RRType.A);
    expect(m.authorities[0].ttl).toBe(30);
    expect((m.authorities[0].data as { serial: number }).serial).toBe(fed.snapshot.serial);
  });

  it('answers SOA at the apex with the current serial', () => {
    const m = ask('example.com.', RRType.SOA);
    expect(m.answers).toHaveLength(1);
    expect((m.answers[0].data as { serial: number }).serial).toBe(fed.snapshot.serial);
  });

  it('keeps the case of the question in owner names', () => {
    const out = responder.answer(encodeQuery('NgInX.DeFault.FED.Example.COM.', RRType.A, { id: 1 }), 'udp')!;
    // Owner names are compression pointers to the question, so the raw bytes carry its case.
    expect(out.includes(Buffer.from('NgInX'))).toBe(true);
    expect(out.includes(Buffer.from('nginx'))).toBe(false);
    const m = decodeMessage(out);
    expect(m.answers).toHaveLength(2);
  });

  it('rotates address order between answers', () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) firsts.add(ask('nginx.default.fed.example.com.', RRType.A).answers[0].data as string);
    expect(firsts).toEqual(new Set(['192.0.2.10', '198.51.100.10']));
  });

  it('gives a minimal answer to ANY (RFC 8482): one RRset', () => {
    const m = ask('web.shop.fed.example.com.', RRType.ANY);
    expect(m.rcode).toBe(0);
    expect(new Set(m.answers.map((r) => r.type)).size).toBe(1);
  });

  it('refuses names outside the zone and sets no AA', () => {
    const m = ask('example.org.', RRType.A);
    expect(m.rcode).toBe(Rcode.REFUSED);
    expect(m.aa).toBe(false);
    expect(m.answers).toEqual([]);
  });
});

describe('protocol rules', () => {
  it('echoes OPT, advertises 1232, copies DO', () => {
    const m = ask('nginx.default.fed.example.com.', RRType.A, { edns: { udpSize: 4096, do: true } });
    expect(m.edns).toEqual({ udpSize: 1232, version: 0, do: true, options: [] });
  });

  it('omits OPT when the query had none', () => {
    expect(ask('nginx.default.fed.example.com.', RRType.A).edns).toBeUndefined();
  });

  it('answers EDNS version 1 with BADVERS', () => {
    const m = ask('nginx.default.fed.example.com.', RRType.A, { edns: { version: 1 } });
    expect(m.rcode).toBe(Rcode.BADVERS);
    expect(m.answers).toEqual([]);
  });

  it('answers other opcodes with NOTIMP', () => {
    expect(ask('example.com.', RRType.SOA, { opcode: 2 }).rcode).toBe(Rcode.NOTIMP);
    expect(ask('example.com.', RRType.SOA, { opcode: 5 }).rcode).toBe(Rcode.NOTIMP);
  });

  it('answers a DSO message (opcode 6, no question, RFC 8490) with NOTIMP, not FORMERR, as Knot does', () => {
    // RFC 8490 3 and 5.1.1: a DSO request has QDCOUNT 0, and a server that does not implement DSO
    // answers it NOTIMP. The "no question" check must not fire first.
    const dso = Buffer.alloc(12);
    dso.writeUInt16BE(0x0606, 0);
    dso.writeUInt16BE(6 << 11, 2);
    for (const transport of ['udp', 'tcp'] as const) {
      const out = responder.answer(dso, transport);
      expect(out).not.toBeNull();
      const m = decodeMessage(out!);
      expect(m.opcode).toBe(6);
      expect(m.rcode).toBe(Rcode.NOTIMP);
    }
  });

  it('refuses class CH', () => {
    expect(ask('version.bind.', RRType.TXT, { class: 3 }).rcode).toBe(Rcode.REFUSED);
  });

  it('refuses zone transfers over UDP', () => {
    expect(ask('example.com.', RRType.AXFR).rcode).toBe(Rcode.REFUSED);
  });

  it('drops responses (QR=1) and runts', () => {
    const q = encodeQuery('example.com.', RRType.SOA);
    q[2] |= 0x80;
    expect(responder.answer(q, 'udp')).toBeNull();
    expect(responder.answer(Buffer.alloc(11), 'udp')).toBeNull();
  });

  it('answers FORMERR to no question and to two questions', () => {
    const none = encodeMessage({ id: 7, questions: [] });
    expect(decodeMessage(responder.answer(none, 'udp')!).rcode).toBe(Rcode.FORMERR);
    const two = encodeMessage({ id: 7, questions: [{ name: 'example.com.', type: 1, class: 1 }, { name: 'example.com.', type: 2, class: 1 }] });
    const m = decodeMessage(responder.answer(two, 'udp')!);
    expect(m.rcode).toBe(Rcode.FORMERR);
    expect(m.questions).toHaveLength(0);
  });

  it('sets TC with OPT kept when the answer does not fit, and answers fully over TCP', () => {
    // 4 headless SRV records plus targets fit in 512 bytes; shrink the limit with a tiny zone of many addresses instead:
    // the headless global name has 4 A records; a classic 512-byte UDP answer fits, so check sizes directly.
    const big = ask('_postgres._tcp.db.data.fed.svc.example.com.', RRType.SRV, {}, 'tcp');
    expect(big.answers).toHaveLength(4);
    expect(big.additionals.length).toBe(4);
  });
});

describe('server identity: CH TXT names and NSID', () => {
  const CH = 3;
  const withIdentity = (id: Parameters<Responder['setIdentity']>[0]) => {
    const r = new Responder(() => fed.snapshot);
    r.setIdentity(id);
    return (name: string, type: number, opts: Parameters<typeof encodeQuery>[2] = {}) => decodeMessage(r.answer(encodeQuery(name, type, { id: 7, ...opts }), 'udp')!);
  };
  const full = withIdentity({ server: 'fedns-a', version: 'fedns 1.2.3', nsid: true });

  it.each([
    ['id.server.', 'fedns-a'],
    ['HOSTNAME.bind.', 'fedns-a'],
    ['version.server.', 'fedns 1.2.3'],
    ['Version.Bind.', 'fedns 1.2.3'],
  ])('%s CH TXT answers %j', (name, text) => {
    const m = full(name, RRType.TXT, { class: CH });
    expect(m.rcode).toBe(Rcode.NOERROR);
    expect(m.aa).toBe(false); // no zone behind it (as Knot DNS answers)
    expect(m.answers).toHaveLength(1);
    expect(m.answers[0]).toMatchObject({ type: RRType.TXT, class: CH, data: [text] });
  });

  it('keeps the case of the question', () => {
    const r = new Responder(() => fed.snapshot);
    r.setIdentity({ server: 'x', version: null, nsid: false });
    const out = r.answer(encodeQuery('HOSTNAME.Bind.', RRType.TXT, { class: CH }), 'udp')!;
    expect(out.includes(Buffer.from([8, ...Buffer.from('HOSTNAME'), 4, ...Buffer.from('Bind')]))).toBe(true);
  });

  it('other CH names, and other types of a known name, are refused; IN is not affected', () => {
    expect(full('authors.bind.', RRType.TXT, { class: CH }).rcode).toBe(Rcode.REFUSED);
    expect(full('id.server.', RRType.A, { class: CH }).rcode).toBe(Rcode.REFUSED);
    expect(full('id.server.', RRType.ANY, { class: CH }).rcode).toBe(Rcode.REFUSED);
    expect(full('id.server.', RRType.TXT).rcode).toBe(Rcode.REFUSED); // class IN, out of the zone
  });

  it('null turns a name off', () => {
    const quiet = withIdentity({ server: 'fedns-a', version: null, nsid: true });
    expect(quiet('version.bind.', RRType.TXT, { class: CH }).rcode).toBe(Rcode.REFUSED);
    expect(quiet('id.server.', RRType.TXT, { class: CH }).answers[0].data).toEqual(['fedns-a']);
  });

  it('NSID is answered only when asked, with the server identity, next to the rest of the OPT', () => {
    const nsidOpt = { code: 3, data: Buffer.alloc(0) };
    const asked = full('nginx.default.fed.example.com.', RRType.A, { edns: { options: [nsidOpt] } });
    expect(asked.answers).toHaveLength(2);
    expect(asked.edns?.options).toEqual([{ code: 3, data: Buffer.from('fedns-a') }]);
    expect(full('nginx.default.fed.example.com.', RRType.A, { edns: {} }).edns?.options).toEqual([]);
    // Unknown options next to it are ignored; NSID is still found.
    const mixed = full('missing.default.fed.example.com.', RRType.A, { edns: { options: [{ code: 65001, data: Buffer.from('xyz') }, nsidOpt] } });
    expect(mixed.rcode).toBe(Rcode.NXDOMAIN);
    expect(mixed.edns?.options).toEqual([{ code: 3, data: Buffer.from('fedns-a') }]);
    // Turned off: no NSID even when asked.
    const off = withIdentity({ server: 'fedns-a', version: null, nsid: false });
    expect(off('nginx.default.fed.example.com.', RRType.A, { edns: { options: [nsidOpt] } }).edns?.options).toEqual([]);
  });
});

describe('strict parsing (RFC 6891, RFC 8945)', () => {
  const opt = (code: number, data: Buffer) => ({ code, data });
  /** A query with one EDNS option whose length field is rewritten to `len`. */
  function optionWithLength(len: number): Buffer {
    const q = encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 4242, edns: { options: [opt(65001, Buffer.from('abc'))] } });
    q.writeUInt16BE(len, q.length - 3 - 2);
    return q;
  }
  const raw = (q: Buffer) => decodeMessage(responder.answer(q, 'udp')!);

  it('an option whose length runs past the OPT record is FORMERR, with an OPT in the answer', () => {
    const m = raw(optionWithLength(10));
    expect(m.rcode).toBe(Rcode.FORMERR);
    expect(m.answers).toEqual([]);
    expect(m.edns).toBeDefined();
    // The same within the packet: the OPT record's own length stops short of the option.
    const q = encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 4242, edns: { options: [opt(65001, Buffer.from('abcdef'))] } });
    q.writeUInt16BE(q.readUInt16BE(q.length - 12) - 2, q.length - 12); // OPT RDLENGTH: 2 bytes short
    const extra = Buffer.concat([q, Buffer.alloc(2)]);
    expect(raw(extra).rcode).toBe(Rcode.FORMERR);
    // A well-formed one is still answered.
    expect(raw(optionWithLength(3)).rcode).toBe(Rcode.NOERROR);
  });

  it('OPT data that ends inside an option header is FORMERR', () => {
    const q = encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 4242, edns: {} });
    const bad = Buffer.concat([q, Buffer.from([0, 3])]);
    bad.writeUInt16BE(2, q.length - 2); // OPT RDLENGTH 2: half an option header
    expect(raw(bad).rcode).toBe(Rcode.FORMERR);
  });

  it('malformed COOKIE and CLIENT-SUBNET options are FORMERR (RFC 7873 5.2.2, RFC 7871 6)', () => {
    const ask1 = (code: number, data: Buffer) => raw(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 4242, edns: { options: [opt(code, data)] } }));
    expect(ask1(10, Buffer.alloc(5)).rcode).toBe(Rcode.FORMERR);
    expect(ask1(10, Buffer.alloc(41)).rcode).toBe(Rcode.FORMERR);
    expect(ask1(10, Buffer.alloc(8)).rcode).toBe(Rcode.NOERROR);
    expect(ask1(10, Buffer.alloc(24)).rcode).toBe(Rcode.NOERROR);
    expect(ask1(8, Buffer.from([0, 1, 24, 0, 192, 0, 2])).rcode).toBe(Rcode.NOERROR);
    expect(ask1(8, Buffer.from([0, 1, 24, 0, 192, 0, 2, 0])).rcode).toBe(Rcode.FORMERR); // more bytes than the prefix
    expect(ask1(8, Buffer.from([0, 1, 33, 0, 192, 0, 2, 0, 0])).rcode).toBe(Rcode.FORMERR); // prefix longer than IPv4
    expect(ask1(8, Buffer.from([0, 3, 0, 0])).rcode).toBe(Rcode.FORMERR); // unknown family
    expect(ask1(8, Buffer.from([0, 1, 24, 8, 192, 0, 2])).rcode).toBe(Rcode.FORMERR); // scope set in a query
  });

  it('TSIG must be the last record, and OPT or TSIG outside the additional section is FORMERR', () => {
    const tsig: Parameters<typeof encodeMessage>[0]['additionals'] = [{ name: 'k.', type: RRType.TSIG, class: 255, ttl: 0, data: Buffer.alloc(0) }];
    const notLast = encodeMessage({ id: 1, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }], additionals: [...tsig!, { name: 'x.', type: RRType.TXT, ttl: 0, data: ['x'] }] });
    expect(raw(notLast).rcode).toBe(Rcode.FORMERR);
    // An OPT after the misplaced TSIG is still read: the FORMERR carries it (RFC 6891 7).
    const optAfter = encodeMessage({ id: 1, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }], additionals: [...tsig!, { name: '.', type: RRType.OPT, class: 1232, ttl: 0, data: Buffer.alloc(0) }] });
    expect(raw(optAfter).rcode).toBe(Rcode.FORMERR);
    expect(raw(optAfter).edns).toBeDefined();
    const inAnswer = encodeMessage({ id: 1, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }], answers: tsig });
    expect(raw(inAnswer).rcode).toBe(Rcode.FORMERR);
    const optInAuthority = encodeMessage({ id: 1, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }], authorities: [{ name: '.', type: RRType.OPT, class: 1232, ttl: 0, data: Buffer.alloc(0) }] });
    expect(raw(optInAuthority).rcode).toBe(Rcode.FORMERR);
    // A TSIG in the answer section, then an OPT where it belongs: FORMERR with the OPT echoed.
    const tsigInAnswerOptAfter = encodeMessage({ id: 1, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }], answers: tsig, additionals: [{ name: '.', type: RRType.OPT, class: 1232, ttl: 0, data: Buffer.alloc(0) }] });
    expect(raw(tsigInAnswerOptAfter).rcode).toBe(Rcode.FORMERR);
    expect(raw(tsigInAnswerOptAfter).edns).toBeDefined();
  });

  it('question names over 255 bytes or with labels over 63 are FORMERR', () => {
    const q = encodeQuery('example.com.', RRType.A, { id: 4242 });
    const question = (labels: number[]) => {
      const name = Buffer.concat([...labels.map((n) => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, 0x61)])), Buffer.from([0])]);
      return Buffer.concat([q.subarray(0, 12), name, Buffer.from([0, 1, 0, 1])]);
    };
    expect(raw(question([64])).rcode).toBe(Rcode.FORMERR);
    expect(raw(question([63, 63, 63, 61])).rcode).toBe(Rcode.REFUSED); // 255 bytes: a name, outside the zone
    expect(raw(question([63, 63, 63, 63])).rcode).toBe(Rcode.FORMERR); // 257 bytes
    expect(raw(question([63, 63, 63, 61, 1])).rcode).toBe(Rcode.FORMERR); // 257 bytes in more labels
    // With an OPT after the over-long question: FORMERR carrying the OPT (RFC 6891 7), without the question.
    const withOpt = Buffer.concat([question([63, 63, 63, 63]), Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0])]);
    withOpt.writeUInt16BE(1, 10);
    const m = raw(withOpt);
    expect(m.rcode).toBe(Rcode.FORMERR);
    expect(m.edns).toBeDefined();
    expect(m.questions).toEqual([]);
  });

  it("no question, or two, is FORMERR carrying the query's OPT (RFC 6891 7), without a question", () => {
    const opt = { name: '.', type: RRType.OPT, class: 1232, ttl: 0, data: Buffer.alloc(0) };
    const q = { name: 'example.com.', type: RRType.SOA, class: 1 };
    for (const questions of [[], [q, q]]) {
      const m = raw(encodeMessage({ id: 9, questions, additionals: [opt] }));
      expect(m.rcode, `${questions.length} questions`).toBe(Rcode.FORMERR);
      expect(m.edns, `${questions.length} questions`).toBeDefined();
      expect(m.questions).toEqual([]);
    }
    // Without an OPT, none comes back; a question that cannot be walked is FORMERR all the same.
    expect(raw(encodeMessage({ id: 9, questions: [] })).edns).toBeUndefined();
    const cut = encodeMessage({ id: 9, questions: [q, q] }).subarray(0, 20);
    expect(raw(cut).rcode).toBe(Rcode.FORMERR);
  });
});

describe('hostile names and failures on the answer path', () => {
  const KEY = { name: 'xfr-key.', algorithm: 'hmac-sha256.', secret: Buffer.from('0123456789abcdef0123456789abcdef') };
  /** A signed SOA query whose TSIG key name is replaced by these wire bytes. */
  function withKeyName(owner: number[]): Buffer {
    const q = signRequest(encodeMessage({ id: 77, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }] }), KEY);
    const at = q.indexOf(nameToWire('xfr-key.'), 12 + 13 + 4);
    return Buffer.concat([q.subarray(0, at), Buffer.from(owner), q.subarray(at + nameToWire('xfr-key.').length)]);
  }

  it('a TSIG key name of one label holding a dot gets NOTAUTH/BADKEY, with that key name echoed', () => {
    const r = new Responder(() => fed.snapshot);
    r.tsigKeys = [KEY];
    for (const owner of [[1, 0x2e, 0], [3, 0x61, 0x2e, 0x62, 0], [1, 0x5c, 0], [2, 0, 0xff, 0]]) {
      const out = r.answer(withKeyName(owner), 'udp');
      expect(out, `key name ${JSON.stringify(owner)}`).not.toBeNull();
      expect(decodeMessage(out!).rcode).toBe(Rcode.NOTAUTH);
      const t = readTsig(out!, out!.length - (10 + 13 + 6 + 2 + 2 + 2 + 2 + 2) - owner.length);
      expect(t.error).toBe(17); // BADKEY
      expect(nameToWire(t.keyName)).toEqual(Buffer.from(owner));
    }
    expect(r.answerErrors).toBe(0);
  });

  it('a key configured as "a.b." is not matched by one label "a.b"', () => {
    const r = new Responder(() => fed.snapshot);
    const ab = { ...KEY, name: 'a.b.' };
    r.tsigKeys = [ab];
    const q = signRequest(encodeMessage({ id: 77, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }] }), ab);
    expect(decodeMessage(r.answer(q, 'udp')!).rcode).toBe(Rcode.NOERROR);
    const at = q.indexOf(Buffer.from([1, 0x61, 1, 0x62, 0]), 12 + 13 + 4);
    const oneLabel = Buffer.concat([q.subarray(0, at), Buffer.from([3, 0x61, 0x2e, 0x62, 0]), q.subarray(at + 5)]);
    expect(decodeMessage(r.answer(oneLabel, 'udp')!).rcode).toBe(Rcode.NOTAUTH);
  });

  // RFC 8945 5.2.2.1: a MAC longer than the hash, or shorter than max(10, half the hash), is
  // FORMERR; a truncation within those bounds is refused by fedns's policy (full MACs only) with
  // BADTRUNC, once the truncated MAC has verified.
  it('a truncated or oversized TSIG MAC gets FORMERR or BADTRUNC, never BADSIG for a good key', () => {
    const r = new Responder(() => fed.snapshot);
    r.tsigKeys = [KEY];
    const signed = signRequest(encodeMessage({ id: 78, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }] }), KEY);
    const t = readTsig(signed, lastAdditionalOffset(signed));
    const withMac = (mac: Buffer): Buffer => withTsigMac(signed, mac);
    const tsigErrorOf = (out: Buffer) => readTsig(out, lastAdditionalOffset(out));
    expect(decodeMessage(r.answer(withMac(t.mac), 'udp')!).rcode).toBe(Rcode.NOERROR);

    const truncated = r.answer(withMac(t.mac.subarray(0, 16)), 'udp')!;
    expect(decodeMessage(truncated).rcode).toBe(Rcode.NOTAUTH);
    expect(tsigErrorOf(truncated)).toMatchObject({ error: 22, keyName: 'xfr-key.' }); // BADTRUNC
    // Signed (RFC 8945 5.3.2), over the truncated request MAC: the client can verify it.
    expect(verifyResponseTsig(t.mac.subarray(0, 16), [truncated], KEY)).toBeUndefined();
    // The time is checked first: a truncated MAC signed an hour ago is BADTIME.
    const old = signRequest(encodeMessage({ id: 79, questions: [{ name: 'example.com.', type: RRType.SOA, class: 1 }] }), KEY, Math.floor(Date.now() / 1000) - 3600);
    const oldMac = readTsig(old, lastAdditionalOffset(old)).mac;
    expect(tsigErrorOf(r.answer(withTsigMac(old, oldMac.subarray(0, 16)), 'udp')!).error).toBe(18); // BADTIME

    const wrongTruncated = r.answer(withMac(Buffer.alloc(16, 7)), 'udp')!;
    expect(tsigErrorOf(wrongTruncated).error).toBe(16); // BADSIG

    for (const mac of [t.mac.subarray(0, 15), t.mac.subarray(0, 9), Buffer.alloc(0), Buffer.concat([t.mac, Buffer.alloc(8)])]) {
      const out = r.answer(withMac(mac), 'tcp');
      expect(decodeMessage(out!).rcode, `MAC of ${mac.length} bytes`).toBe(Rcode.FORMERR);
    }
    expect(r.answerErrors).toBe(0);
  });

  it('an exception while answering is counted, logged a few times a minute, and answered SERVFAIL with question and OPT', () => {
    const lines: unknown[] = [];
    let broken = true;
    const r = new Responder(
      () => {
        if (broken) throw new Error('boom');
        return fed.snapshot;
      },
      { log: { warn: (obj, msg) => lines.push([obj, msg]), error: (obj, msg) => lines.push([obj, msg]) } },
    );
    for (let i = 0; i < 100; i++) {
      const out = r.answer(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: i, edns: {} }), i % 2 ? 'udp' : 'tcp');
      expect(out).not.toBeNull();
      const m = decodeMessage(out!);
      expect(m).toMatchObject({ id: i, rcode: Rcode.SERVFAIL, questions: [{ name: 'nginx.default.fed.example.com.', type: RRType.A }] });
      expect(m.edns).toBeDefined();
    }
    expect(r.answerErrors).toBe(100);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(5);
    expect(((lines[0] as [{ err: Error }])[0].err as Error).message).toBe('boom');
    broken = false;
    expect(decodeMessage(r.answer(encodeQuery('nginx.default.fed.example.com.', RRType.A), 'udp')!).rcode).toBe(Rcode.NOERROR);
  });
});

/** A federation of one-cluster services, name -> number of IPv4 endpoints (service i: <10 + i / 256>.<i % 256>.x.y). */
function federationOf(sizes: Record<string, number>): Federation {
  const f = new Federation(testFederationSettings());
  const c = f.addCluster({ name: 'one', region: 'r1', zones: ['z1'], addressMode: 'endpoints', gracePeriod: 300 });
  const objects: SeedObject[] = [];
  Object.entries(sizes).forEach(([name, count], i) => {
    objects.push({ namespace: 'ns', name, headless: false, ports: [{ name: 'http', port: 80, protocol: 'tcp' }], lbAddresses: [], lbHostnames: [], labels: {} });
    objects.push({
      namespace: 'ns',
      name: `${name}-s`,
      service: name,
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
      endpoints: Array.from({ length: count }, (_, j) => ({ addresses: [`${10 + (i >> 8)}.${i & 255}.${j >> 8}.${j & 255}`], ready: true, zone: 'z1' })),
    });
  });
  seed(c, objects);
  f.rebuild();
  return f;
}

describe('one response builder: TSIG room, OPT everywhere', () => {
  // A long key name makes the TSIG record big (133 bytes with HMAC-SHA256).
  const LONG = { name: `${'k'.repeat(60)}.`, algorithm: 'hmac-sha256.', secret: Buffer.from('0123456789abcdef0123456789abcdef') };

  it.each([
    ['no EDNS (512)', undefined, 512],
    ['EDNS 600', { udpSize: 600 }, 600],
  ])('a signed UDP answer fits the client buffer with its TSIG (RFC 8945 5.3), %s', (_, edns, limit) => {
    // Answers of 12 to 36 addresses: from well under the limit to well over it, signed or not.
    const sizes: Record<string, number> = {};
    for (let n = 12; n <= 36; n++) sizes[`n${n}`] = n;
    const f = federationOf(sizes);
    const r = new Responder(() => f.snapshot);
    r.tsigKeys = [LONG];
    for (const name of Object.keys(sizes)) {
      const type = RRType.A;
      const q = signRequest(encodeQuery(`${name}.ns.fed.example.com.`, type, { id: 5, edns }), LONG);
      const out = r.answer(q, 'udp')!;
      expect(out.length, `${name} ${type}`).toBeLessThanOrEqual(limit);
      const m = decodeMessage(out);
      expect(m.rcode).toBe(Rcode.NOERROR);
      expect(m.answers.length + (m.tc ? 1 : 0)).toBeGreaterThan(0);
      expect(verifyResponseTsig(readTsig(q, lastAdditionalOffset(q)).mac, [out], LONG), `${name} ${type}`).toBeUndefined();
    }
  });

  it('a validly signed query gets a signed answer whatever its rcode: BADVERS, NOTIMP, REFUSED, FORMERR (RFC 8945 5.3)', () => {
    const r = new Responder(() => fed.snapshot);
    r.tsigKeys = [LONG];
    const cases: [string, Buffer, number][] = [
      ['BADVERS', encodeQuery('example.com.', RRType.SOA, { id: 9, edns: { version: 1 } }), Rcode.BADVERS],
      ['NOTIMP (STATUS)', encodeQuery('example.com.', RRType.SOA, { id: 9, opcode: 2 }), Rcode.NOTIMP],
      ['NOTIMP (NOTIFY)', encodeQuery('example.com.', RRType.SOA, { id: 9, opcode: 4, edns: {} }), Rcode.NOTIMP],
      ['REFUSED', encodeQuery('example.org.', RRType.A, { id: 9 }), Rcode.REFUSED],
      ['FORMERR (type 0)', encodeQuery('example.com.', 0, { id: 9 }), Rcode.FORMERR],
    ];
    for (const [what, unsigned, rcode] of cases) {
      const q = signRequest(unsigned, LONG);
      const out = r.answer(q, 'udp')!;
      expect(decodeMessage(out).rcode, what).toBe(rcode);
      expect(verifyResponseTsig(readTsig(q, lastAdditionalOffset(q)).mac, [out], LONG), what).toBeUndefined();
    }
  });

  it('a UDP answer stays within the client buffer with a long NSID and a long question: the NSID is left out when it does not fit', () => {
    const r = new Responder(() => fed.snapshot);
    r.setIdentity({ server: 's'.repeat(255), version: null, nsid: true });
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.`; // 253 bytes in wire form
    const nsid = { udpSize: 512, options: [{ code: 3, data: Buffer.alloc(0) }] };
    for (const [name, type] of [
      [long, RRType.A], // REFUSED: not in the zone
      [`${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(63)}.${'w'.repeat(41)}.example.com.`, RRType.A], // NXDOMAIN
      ['nginx.default.fed.example.com.', RRType.A],
    ] as const) {
      const out = r.answer(encodeQuery(name, type, { id: 3, edns: nsid }), 'udp')!;
      expect(out.length, name).toBeLessThanOrEqual(512);
      expect(decodeMessage(out).edns, name).toBeDefined();
    }
    // With room for it, the NSID is answered.
    const m = decodeMessage(r.answer(encodeQuery('nginx.default.fed.example.com.', RRType.A, { id: 3, edns: { ...nsid, udpSize: 1232 } }), 'udp')!);
    expect(m.edns!.options.find((o) => o.code === 3)?.data.toString()).toBe('s'.repeat(255));
  });

  it('errors carry the OPT too: FORMERR, NOTIMP (NOTIFY included), REFUSED, BADVERS', () => {
    const opt = { edns: { udpSize: 1232 } };
    expect(ask('example.com.', RRType.SOA, { ...opt, opcode: 4 }).edns).toBeDefined();
    expect(ask('example.com.', RRType.SOA, { ...opt, opcode: 4 }).rcode).toBe(Rcode.NOTIMP);
    expect(ask('example.org.', RRType.A, opt).edns).toBeDefined();
    expect(ask('example.com.', RRType.AXFR, opt).edns).toBeDefined();
    expect(ask('example.com.', RRType.A, { edns: { version: 1 } }).edns).toBeDefined();
  });
});

describe('answer cache: memory bounded in bytes', () => {
  it('a name with 300 addresses costs about one encoding, not one per rotation, and still rotates', () => {
    const f = federationOf({ big: 300 });
    const r = new Responder(() => f.snapshot);
    const firsts = new Set<string>();
    let size = 0;
    for (let i = 0; i < 600; i++) {
      const m = decodeMessage(r.answer(encodeQuery('big.ns.fed.example.com.', RRType.A, { id: i }), 'tcp')!);
      expect(m.answers).toHaveLength(300);
      expect(new Set(m.answers.map((a) => a.data)).size).toBe(300);
      firsts.add(m.answers[0].data as string);
      size = m.answers.length * 16;
    }
    expect(firsts.size).toBe(300); // every address leads in turn
    expect(r.cachedBytes).toBeGreaterThanOrEqual(size);
    expect(r.cachedBytes).toBeLessThan(4 * size);
  });

  it('the cache holds at most its byte budget, and answers stay right when names are evicted', () => {
    const sizes: Record<string, number> = {};
    for (let i = 0; i < 500; i++) sizes[`s${i}`] = 1;
    const f = federationOf(sizes);
    const r = new Responder(() => f.snapshot, { cacheBytes: 16 * 1024 });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 500; i++) {
        const m = decodeMessage(r.answer(encodeQuery(`s${i}.ns.fed.example.com.`, RRType.A), 'udp')!);
        expect(m.answers.map((a) => a.data)).toEqual([`${10 + (i >> 8)}.${i & 255}.0.0`]);
      }
      expect(r.cachedBytes).toBeGreaterThan(0);
      expect(r.cachedBytes).toBeLessThanOrEqual(16 * 1024);
    }
  });
});
