import { describe, expect, it } from 'vitest';
import { Rcode, RRClass, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage } from '../../src/wire/message.js';
import { prefixOf, ResponseRateLimiter, RRL_ACTIONS, RRL_KINDS, type RateLimitSettings } from '../../src/server/rrl.js';

const BASE: RateLimitSettings = {
  responsesPerSecond: 5,
  nodataPerSecond: 5,
  nxdomainsPerSecond: 5,
  errorsPerSecond: 5,
  slip: 2,
  window: 15,
  ipv4PrefixLength: 24,
  ipv6PrefixLength: 56,
  exempt: [],
  tableSize: 1000,
};

function response(name: string, rcode: number, type: number = RRType.A, withAnswer = rcode === Rcode.NOERROR): Buffer {
  return encodeMessage({
    id: 4242,
    qr: true,
    aa: true,
    rcode,
    questions: [{ name, type, class: RRClass.IN }],
    answers: withAnswer ? [{ name, type: RRType.A, class: RRClass.IN, ttl: 30, data: '192.0.2.1' }] : [],
  });
}
const ANSWER = response('nginx.default.fed.example.com.', Rcode.NOERROR);
const NXDOMAIN = response('missing.fed.example.com.', Rcode.NXDOMAIN);

function limiter(over: Partial<RateLimitSettings> = {}) {
  const clock = { t: 1000 };
  const rrl = new ResponseRateLimiter({ ...BASE, ...over }, () => clock.t);
  /** Sends n copies of `out` to `addr` at the current time: [sent whole, slipped, dropped]. */
  const burst = (out: Buffer, addr: string, n: number) => {
    const r = { sent: 0, slipped: 0, dropped: 0 };
    for (let i = 0; i < n; i++) {
      const got = rrl.filter(out, addr);
      if (got === null) r.dropped++;
      else if (got === out) r.sent++;
      else r.slipped++;
    }
    return r;
  };
  const count = (kind: string, action: string) => rrl.counts[RRL_KINDS.indexOf(kind as never) * RRL_ACTIONS.length + RRL_ACTIONS.indexOf(action as never)];
  return { rrl, clock, burst, count };
}

describe('response rate limiting', () => {
  it('lets a burst of `rate` responses through, then limits; credit comes back at the rate', () => {
    const { clock, burst } = limiter({ slip: 0 });
    expect(burst(NXDOMAIN, '192.0.2.7', 20)).toEqual({ sent: 5, slipped: 0, dropped: 15 });
    // 15 responses over: a debt of 15 of a possible 75 (window 15 s x 5/s), repaid at 5/s; each
    // probe costs one more.
    clock.t += 2900;
    expect(burst(NXDOMAIN, '192.0.2.7', 1).sent).toBe(0);
    clock.t += 600;
    expect(burst(NXDOMAIN, '192.0.2.7', 1).sent).toBe(1);
  });

  it('a flood owes at most `window` seconds of credit: it is served again `window` seconds after it stops', () => {
    const { clock, burst } = limiter({ slip: 0, window: 4 });
    for (let s = 0; s < 30; s++) {
      clock.t += 1000;
      burst(NXDOMAIN, '192.0.2.7', 100);
    }
    // 2,850 responses over, but the debt is capped at 4 s x 5/s = 20 responses.
    clock.t += 2900;
    expect(burst(NXDOMAIN, '192.0.2.7', 1).sent).toBe(0);
    clock.t += 1500; // 4.4 s: 20 owed plus the probe, then one response's credit
    expect(burst(NXDOMAIN, '192.0.2.7', 1).sent).toBe(1);
  });

  it('a steady client under the rate is never limited', () => {
    const { clock, burst } = limiter({ responsesPerSecond: 10 });
    let sent = 0;
    for (let i = 0; i < 600; i++) {
      sent += burst(ANSWER, '192.0.2.7', 1).sent;
      clock.t += 125; // 8/s
    }
    expect(sent).toBe(600);
  });

  it('slip 2 sends every second limited response as TC=1 with only the header and question', () => {
    const { burst, rrl, count } = limiter();
    expect(burst(NXDOMAIN, '192.0.2.7', 5).sent).toBe(5);
    const r = burst(NXDOMAIN, '192.0.2.7', 100);
    expect(r).toEqual({ sent: 0, slipped: 50, dropped: 50 });
    expect(count('nxdomain', 'slipped')).toBe(50);
    expect(count('nxdomain', 'dropped')).toBe(50);
    let slip: Buffer | null = null;
    while (!slip || slip === NXDOMAIN) slip = rrl.filter(NXDOMAIN, '192.0.2.7');
    const m = decodeMessage(slip);
    expect(m).toMatchObject({ id: 4242, qr: true, tc: true, answers: [], authorities: [], additionals: [] });
    expect(m.questions).toEqual([{ name: 'missing.fed.example.com.', type: RRType.A, class: RRClass.IN }]);
    expect(slip.length).toBe(12 + 'missing.fed.example.com.'.length + 1 + 4);
  });

  it('a slip keeps the OPT of a response to an EDNS query (RFC 6891 7), and with it an extended rcode', () => {
    const soa = { name: 'fed.example.com.', type: RRType.SOA, class: RRClass.IN, ttl: 30, data: { mname: 'ns1.example.com.', rname: 'h.example.com.', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 } };
    const nx = encodeMessage({ id: 7, qr: true, aa: true, rcode: Rcode.NXDOMAIN, questions: [{ name: 'missing.fed.example.com.', type: RRType.A, class: RRClass.IN }], authorities: [soa], edns: { udpSize: 1232, do: true } });
    const badvers = encodeMessage({ id: 8, qr: true, rcode: Rcode.BADVERS, questions: [{ name: 'x.fed.example.com.', type: RRType.A, class: RRClass.IN }], edns: { udpSize: 1232 } });
    for (const [out, rcode] of [[nx, Rcode.NXDOMAIN], [badvers, Rcode.BADVERS]] as const) {
      const { rrl } = limiter({ slip: 1 });
      let slip: Buffer | null = out;
      while (slip === out) slip = rrl.filter(out, '192.0.2.7');
      const m = decodeMessage(slip!);
      expect(m).toMatchObject({ tc: true, rcode, answers: [], authorities: [], additionals: [] });
      expect(m.edns).toMatchObject({ udpSize: 1232, version: 0 });
      expect(m.questions).toHaveLength(1);
    }
  });

  it.each([
    [0, 0],
    [1, 100],
    [3, 33],
  ])('slip %i truncates %i of 100 limited responses', (slip, slipped) => {
    const { burst } = limiter({ slip });
    burst(NXDOMAIN, '192.0.2.7', 5);
    expect(burst(NXDOMAIN, '192.0.2.7', 100)).toEqual({ sent: 0, slipped, dropped: 100 - slipped });
  });

  it('counts clients by prefix: /24 for IPv4, /56 for IPv6, configurable', () => {
    const { burst } = limiter({ slip: 0 });
    expect(burst(NXDOMAIN, '192.0.2.7', 5).sent).toBe(5);
    expect(burst(NXDOMAIN, '192.0.2.200', 1).sent).toBe(0); // same /24
    expect(burst(NXDOMAIN, '::ffff:192.0.2.9', 1).sent).toBe(0); // IPv4 on a dual-stack socket
    expect(burst(NXDOMAIN, '192.0.3.7', 5).sent).toBe(5);
    expect(burst(NXDOMAIN, '2001:db8:0:1::1', 5).sent).toBe(5);
    expect(burst(NXDOMAIN, '2001:db8:0:ff::2', 1).sent).toBe(0); // same /56 (0x00ff & 0xff00)
    expect(burst(NXDOMAIN, '2001:db8:0:100::2', 1).sent).toBe(1); // the next /56

    const narrow = limiter({ slip: 0, ipv4PrefixLength: 32, ipv6PrefixLength: 128 });
    expect(narrow.burst(NXDOMAIN, '192.0.2.7', 6).sent).toBe(5);
    expect(narrow.burst(NXDOMAIN, '192.0.2.8', 1).sent).toBe(1);
    expect(narrow.burst(NXDOMAIN, '2001:db8::1', 6).sent).toBe(5);
    expect(narrow.burst(NXDOMAIN, '2001:db8::2', 1).sent).toBe(1);
  });

  it.each([
    ['192.0.2.77', 24, 56, '192.0.2.0/24'],
    ['192.0.2.77', 16, 56, '192.0.0.0/16'],
    ['192.0.2.77', 0, 56, '0.0.0.0/0'],
    ['::ffff:10.1.2.3', 8, 56, '10.0.0.0/8'],
    ['2001:db8:1:2ff:a::1', 24, 56, '2001:db8:1:200:0:0:0:0/56'],
    ['2001:db8::1', 24, 128, '2001:db8:0:0:0:0:0:1/128'],
    ['::1', 24, 64, '0:0:0:0:0:0:0:0/64'],
    ['fe80::1%eth0', 24, 10, 'fe80:0:0:0:0:0:0:0/10'],
  ])('prefix of %s (/%i, /%i) is %s', (addr, v4, v6, want) => {
    expect(prefixOf(addr, v4, v6)).toBe(want);
  });

  it('keys answers by name and type: one hot name does not limit the others', () => {
    const { burst } = limiter({ slip: 0 });
    expect(burst(ANSWER, '192.0.2.7', 50).sent).toBe(5);
    expect(burst(response('web.shop.fed.example.com.', Rcode.NOERROR), '192.0.2.7', 5).sent).toBe(5);
    expect(burst(response('NGINX.default.fed.example.com.', Rcode.NOERROR), '192.0.2.7', 1).sent).toBe(0); // case does not matter
    expect(burst(response('nginx.default.fed.example.com.', Rcode.NOERROR, RRType.AAAA), '192.0.2.7', 5).sent).toBe(5);
    // Types whose low byte is an ASCII letter stay apart (65 "A" and 97 "a").
    expect(burst(response('nginx.default.fed.example.com.', Rcode.NOERROR, 65), '192.0.2.7', 6).sent).toBe(5);
    expect(burst(response('nginx.default.fed.example.com.', Rcode.NOERROR, 97), '192.0.2.7', 5).sent).toBe(5);
    // NXDOMAIN and errors have accounts of their own, per prefix whatever the name.
    expect(burst(NXDOMAIN, '192.0.2.7', 5).sent).toBe(5);
    expect(burst(response('other.fed.example.com.', Rcode.NXDOMAIN), '192.0.2.7', 1).sent).toBe(0);
    expect(burst(response('www.example.org.', Rcode.REFUSED), '192.0.2.7', 6).sent).toBe(5);
    expect(burst(response('x.example.org.', Rcode.SERVFAIL), '192.0.2.7', 1).sent).toBe(0);
  });

  it('has a rate per kind; 0 leaves that kind unlimited', () => {
    const { burst } = limiter({ nxdomainsPerSecond: 2, errorsPerSecond: 0, nodataPerSecond: 3, slip: 0 });
    expect(burst(NXDOMAIN, '192.0.2.7', 10).sent).toBe(2);
    expect(burst(response('x.example.org.', Rcode.REFUSED), '192.0.2.7', 1000).sent).toBe(1000);
    const nodata = response('nginx.default.fed.example.com.', Rcode.NOERROR, RRType.MX, false);
    expect(burst(nodata, '192.0.2.7', 10).sent).toBe(3);
    expect(burst(ANSWER, '192.0.2.7', 10).sent).toBe(5);
  });

  it('never limits exempt addresses, and they do not spend their prefix credit', () => {
    const { burst } = limiter({ exempt: ['192.0.2.7', '2001:db8::/32'], slip: 0 });
    expect(burst(NXDOMAIN, '192.0.2.7', 1000).sent).toBe(1000);
    expect(burst(NXDOMAIN, '::ffff:192.0.2.7', 10).sent).toBe(10);
    expect(burst(NXDOMAIN, '2001:db8:1::53', 1000).sent).toBe(1000);
    expect(burst(NXDOMAIN, '192.0.2.8', 10).sent).toBe(5);
  });

  it('keeps at most tableSize accounts under a spoofed-source flood', () => {
    const { rrl, burst } = limiter({ tableSize: 100, ipv4PrefixLength: 32 });
    for (let i = 0; i < 10_000; i++) rrl.filter(ANSWER, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(rrl.size).toBe(100);
    // A forgotten account starts again with full credit: eviction costs no client its answers.
    expect(burst(ANSWER, '10.0.0.0', 5).sent).toBe(5);
  });

  it('passes responses shorter than a header, and answers without a question, untouched', () => {
    const { rrl } = limiter({ slip: 1 });
    const tiny = Buffer.alloc(5);
    expect(rrl.filter(tiny, '192.0.2.7')).toBe(tiny);
    const formerr = encodeMessage({ id: 1, qr: true, rcode: Rcode.FORMERR, questions: [] });
    for (let i = 0; i < 5; i++) expect(rrl.filter(formerr, '192.0.2.7')).toBe(formerr);
    const slip = rrl.filter(formerr, '192.0.2.7')!;
    expect(slip.length).toBe(12);
    expect(decodeMessage(slip)).toMatchObject({ id: 1, tc: true, rcode: Rcode.FORMERR, questions: [] });
  });

  it('configure() starts a new table and keeps the counts', () => {
    const { rrl, burst, count } = limiter({ slip: 0 });
    burst(NXDOMAIN, '192.0.2.7', 10);
    expect(count('nxdomain', 'dropped')).toBe(5);
    rrl.configure({ ...BASE, nxdomainsPerSecond: 50, slip: 0 });
    expect(burst(NXDOMAIN, '192.0.2.7', 60)).toEqual({ sent: 50, slipped: 0, dropped: 10 });
    expect(count('nxdomain', 'dropped')).toBe(15);
  });
});
