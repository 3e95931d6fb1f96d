// Which endpoint addresses answer: the IPv4 reader against node:net's, and the addresses no
// client could be sent to.
import { isIPv4 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { answerableEndpoint, ipv4Value, isAddress } from '../../src/address.js';
import { prng } from '../support/corpus.js';

describe('ipv4Value', () => {
  it('takes exactly what node:net isIPv4 takes, and reads the value its four bytes say', () => {
    const next = prng(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
    // Bytes near every boundary isIPv4 draws, joined mostly by dots: many strings are addresses
    // or nearly.
    const good = ['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255'];
    const bytes = [...good, ...good, '00', '01', '007', '256', '260', '299', '300', '999', '1000', '', 'a', '1a', '+1', '-1', '1e2', ' 1'];
    const seps = [...'.'.repeat(12), '..', ':', ',', ''];
    const corpus = ['', '0.0.0.0', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.4\n', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.255', '1.2.3.2555', '10.0.0.1', '::1', '１.2.3.4', '1.2.3.٤'];
    for (let i = 0; i < 100_000; i++) {
      const parts = pick([3, 4, 4, 4, 4, 5]);
      let s = pick(bytes);
      for (let k = 1; k < parts; k++) s += pick(seps) + pick(bytes);
      corpus.push(s);
    }
    const disagree: string[] = [];
    const misread: string[] = [];
    let addresses = 0;
    for (const s of corpus) {
      const v = ipv4Value(s);
      if (v >= 0 !== isIPv4(s)) disagree.push(s);
      if (v < 0) continue;
      addresses++;
      const b = s.split('.').map(Number);
      if (v !== ((b[0] * 256 + b[1]) * 256 + b[2]) * 256 + b[3]) misread.push(s);
    }
    expect(disagree).toEqual([]);
    expect(misread).toEqual([]);
    // The corpus holds addresses too, not only strings both refuse.
    expect(addresses).toBeGreaterThan(1000);
    expect(isAddress('1.2.3.4')).toBe(4);
    expect(isAddress('01.2.3.4')).toBe(0);
  });
});

describe('answerableEndpoint', () => {
  it('refuses addresses no client could be sent to, and those of the other family than the slice says', () => {
    const answers = (a: string, t?: 'IPv4' | 'IPv6') => answerableEndpoint(a, t);
    for (const a of ['10.0.0.1', '192.0.2.1', '1.0.0.0', '126.255.255.255', '128.0.0.1', '169.253.0.1', '169.255.0.1', '223.255.255.255', '240.0.0.1', '255.255.255.254']) {
      expect([a, answers(a), answers(a, 'IPv4'), answers(a, 'IPv6')]).toEqual([a, true, true, false]);
    }
    for (const a of ['0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.255.255', '169.254.0.1', '224.0.0.1', '239.255.255.255', '255.255.255.255', '1.2.3', 'web', '']) {
      expect([a, answers(a), answers(a, 'IPv4')]).toEqual([a, false, false]);
    }
    for (const a of ['2001:db8::1', 'fd00::1', '64:ff9b::a00:1', '2002:a00:1::1', '::ffff:a00:1']) {
      expect([a, answers(a), answers(a, 'IPv6'), answers(a, 'IPv4')]).toEqual([a, true, true, false]);
    }
    // Loopback, unspecified, link-local, multicast, and IPv6 addresses standing for such IPv4 ones.
    for (const a of ['::', '::1', 'fe80::1', 'febf::1', 'ff02::1', '::ffff:7f00:1', '::7f00:1', '::ffff:0:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1', '2001:0:1:2:3:4:80ff:fffe', 'fe80::1%eth0']) {
      expect([a, answers(a), answers(a, 'IPv6')]).toEqual([a, false, false]);
    }
  });
});
