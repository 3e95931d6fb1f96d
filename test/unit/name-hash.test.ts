import { describe, expect, it, vi } from 'vitest';
import { deepHash, hashKey } from '../../src/zone/name-hash.js';
import { nameKey } from '../../src/wire/name.js';

const GROUP = 0x7fff;
const low = (name: string) => hashKey(nameKey(name)) & GROUP;

describe('hashKey', () => {
  it("files every name of one service under the same low 15 bits, apart from other services'", () => {
    const names = (svc: string, ns: string) => [
      `${svc}.${ns}.fed.example.com.`,
      `${svc}.${ns}.fed.svc.example.com.`,
      `${svc}.${ns}.fed.svc.eu-west1.example.com.`,
      `${svc}.${ns}.fed.svc.eu-west1-b.eu-west1.example.com.`,
      `_http._tcp.${svc}.${ns}.fed.example.com.`,
      `_http._tcp.${svc}.${ns}.fed.svc.example.com.`,
      `${svc}.${ns}.svc.clusterset.local.`,
      `_grpc._udp.${svc}.${ns}.svc.clusterset.local.`,
    ];
    const mine = names('web', 'shop').map(low);
    expect(new Set(mine).size).toBe(1);
    // The whole hashes still differ: the high bits come from the rest of the name. (Two of the
    // eight agree in their 17 high bits once in about 5,000 seeds; two pairs, never.)
    expect(new Set(names('web', 'shop').map((n) => hashKey(nameKey(n)))).size).toBeGreaterThanOrEqual(mine.length - 1);
    // 1,000 other services spread over the 32,768 low values (the hashes are seeded anew each run).
    const others = Array.from({ length: 1000 }, (_, i) => low(`web${i}.shop.fed.example.com.`));
    expect(new Set(others).size).toBeGreaterThan(950);
    expect(others.filter((h) => h === mine[0]).length).toBeLessThan(4);
  });

  it('keeps names of one form apart when two services share the low bits', () => {
    // Two services whose labels agree in the low 15 bits, found by the birthday bound.
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair; i++) {
      const other = seen.get(low(`s${i}.ns.fed.example.com.`));
      if (other !== undefined) pair = [other, `s${i}`];
      else seen.set(low(`s${i}.ns.fed.example.com.`), `s${i}`);
    }
    for (const form of ['fed.example.com.', 'fed.svc.example.com.', 'fed.svc.r1.example.com.']) {
      const [a, b] = pair.map((s) => hashKey(nameKey(`${s}.ns.${form}`)));
      expect(a & GROUP).toBe(b & GROUP);
      expect(a).not.toBe(b);
    }
  });

  it('never throws, loops or reads a different result from a string that is not a wire-format key', () => {
    for (const s of ['', 'k1', 'name7.example.com.', '\x03com\x00', '\x05short', '\x01_', '\x01_\x01_\x01_', '\x01_'.repeat(100000)]) {
      expect(Number.isInteger(hashKey(s))).toBe(true);
      expect(hashKey(s)).toBe(hashKey(s.slice()));
    }
    let seed = 11;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) | 0) >>> 16) & 0xff;
    for (let i = 0; i < 20000; i++) {
      const s = String.fromCharCode(...Array.from({ length: rand() % 24 }, () => (rand() % 3 === 0 ? 95 : rand() % 12)));
      const h = hashKey(s);
      expect(Number.isInteger(h) && h === (h | 0)).toBe(true);
      expect(hashKey(s)).toBe(h);
    }
  });

  it('draws its hashes anew in each process, so that names cannot be made to collide in advance', async () => {
    const keys = ['web.shop.fed.example.com.', '_http._tcp.web.shop.fed.example.com.', 'x'].map((n) => (n === 'x' ? n : nameKey(n)));
    vi.resetModules();
    const other = await import('../../src/zone/name-hash.js');
    for (const k of keys) {
      expect(other.hashKey(k)).not.toBe(hashKey(k));
      expect(other.deepHash(k)).not.toBe(deepHash(k));
    }
  });

  it('gives deepHash, a second hash of the whole key', () => {
    const a = nameKey('a.b.fed.example.com.');
    expect(deepHash(a)).toBe(deepHash(nameKey('A.B.fed.example.com.')));
    expect(deepHash(a)).not.toBe(hashKey(a));
    expect(deepHash(a)).not.toBe(deepHash(nameKey('a.b.fed.svc.example.com.')));
  });
});
