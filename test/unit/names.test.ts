import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/wire/message.js';
import { keyToName, nameKey, nameToWire } from '../../src/wire/name.js';
import { parseName } from '../../src/zone/names.js';

const z = { domain: 'example.com.', federation: 'fed' };

describe('parseName: query name -> request', () => {
  const table: [string, ReturnType<typeof parseName>][] = [
    ['example.com.', { kind: 'apex' }],
    ['EXAMPLE.com', { kind: 'apex' }],
    ['example.org.', { kind: 'outside' }],
    ['notexample.com.', { kind: 'outside' }],
    ['nginx.default.fed.example.com.', { kind: 'short', service: 'nginx', namespace: 'default' }],
    ['Nginx.Default.FED.example.com.', { kind: 'short', service: 'nginx', namespace: 'default' }],
    ['nginx.default.fed.svc.example.com.', { kind: 'global', service: 'nginx', namespace: 'default' }],
    ['nginx.default.fed.svc.us-east.example.com.', { kind: 'regional', service: 'nginx', namespace: 'default', region: 'us-east' }],
    [
      'nginx.default.fed.svc.us-east-a.us-east.example.com.',
      { kind: 'zonal', service: 'nginx', namespace: 'default', region: 'us-east', zone: 'us-east-a' },
    ],
    [
      '_http._tcp.nginx.default.fed.example.com.',
      { kind: 'srv', form: 'short', port: 'http', protocol: 'tcp', service: 'nginx', namespace: 'default' },
    ],
    [
      '_http._tcp.nginx.default.fed.svc.example.com.',
      { kind: 'srv', form: 'global', port: 'http', protocol: 'tcp', service: 'nginx', namespace: 'default' },
    ],
    ['db-0.alpha.db.data.fed.svc.example.com.', { kind: 'endpoint', host: 'db-0', cluster: 'alpha', service: 'db', namespace: 'data' }],
    // Zones come from tenants: one called "svc" (or "fed") is still a zone.
    ['s.n.fed.svc.svc.us-east.example.com.', { kind: 'zonal', service: 's', namespace: 'n', region: 'us-east', zone: 'svc' }],
    ['s.n.fed.svc.fed.us-east.example.com.', { kind: 'zonal', service: 's', namespace: 'n', region: 'us-east', zone: 'fed' }],
    ['s.svc.fed.svc.svc.us-east.example.com.', { kind: 'zonal', service: 's', namespace: 'svc', region: 'us-east', zone: 'svc' }],
    ['svc.svc.fed.svc.example.com.', { kind: 'global', service: 'svc', namespace: 'svc' }],
    ['default.fed.svc.example.com.', { kind: 'other', labels: ['default', 'fed', 'svc'] }],
    ['fed.example.com.', { kind: 'other', labels: ['fed'] }],
    ['a.b.c.d.e.fed.example.com.', { kind: 'other', labels: ['a', 'b', 'c', 'd', 'e', 'fed'] }],
  ];
  it.each(table)('%s', (name, want) => {
    expect(parseName(z, name)).toEqual(want);
  });
});

describe('names from the wire keep their labels (RFC 1035 5.1 escapes)', () => {
  /** A query whose question name is made of these raw labels. */
  const wire = (labels: number[][]) => Buffer.concat([...labels.map((l) => Buffer.from([l.length, ...l])), Buffer.from([0])]);
  const query = (labels: number[][]) => Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), wire(labels), Buffer.from([0, 1, 0, 1])]);
  const dot = 0x2e;
  const backslash = 0x5c;
  const a = 0x61;
  const b = 0x62;
  const cases: [string, number[][], string][] = [
    ['a label holding a dot', [[a, dot, b]], 'a\\.b.'],
    ['a label that is only a dot', [[dot]], '\\..'],
    ['a backslash', [[a, backslash, b]], 'a\\\\b.'],
    ['bytes outside printable ASCII', [[0, 0xff, 0x20, a]], '\\000\\255\\032a.'],
    ['upper case is lowered, escapes are not', [[0x41, dot], [0x42]], 'a\\..b.'],
  ];
  it.each(cases)('%s', (_, labels, text) => {
    const m = decodeMessage(query(labels));
    expect(m.questions[0].name).toBe(text);
    // Back to the wire: the same labels (lowercased), not a different name.
    const lower = labels.map((l) => l.map((c) => (c >= 0x41 && c <= 0x5a ? c + 32 : c)));
    expect(nameToWire(text)).toEqual(wire(lower));
    expect(encodeMessage({ id: 1, questions: m.questions })).toEqual(query(lower));
    expect(keyToName(wire(lower).toString('latin1'))).toBe(text);
    expect(nameKey(text)).toBe(wire(lower).toString('latin1'));
  });

  it('"a.b" as one label and as two labels are different names', () => {
    const one = decodeMessage(query([[a, dot, b]])).questions[0].name;
    const two = decodeMessage(query([[a], [b]])).questions[0].name;
    expect(one).not.toBe(two);
    expect(nameToWire(two)).toEqual(wire([[a], [b]]));
  });

  it('the writer compresses escaped names and keeps them apart from their unescaped look-alikes', () => {
    const names = ['x.a\\.b.', 'y.a\\.b.', 'x.a.b.', 'a\\.b.'];
    const out = encodeMessage({ id: 1, questions: names.map((name) => ({ name, type: 1, class: 1 })) });
    expect(out.includes(Buffer.from([3, a, dot, b]))).toBe(true); // one label "a.b", not "a\\" then "b"
    const m = decodeMessage(out);
    expect(m.questions.map((q) => q.name)).toEqual(names);
  });

  it('presentation input: \\DDD above 255, a dangling backslash and empty labels are rejected', () => {
    expect(() => nameToWire('a\\256.')).toThrow();
    expect(() => nameToWire('a\\')).toThrow();
    expect(() => nameToWire('a..b.')).toThrow();
    expect(nameToWire('\\065.')).toEqual(wire([[a]]));
  });
});

describe('nameKey: the lowercase wire form as latin1', () => {
  const wireKey = (name: string) => nameToWire(name).toString('latin1');

  it('matches the wire form for names of every label length, up to the longest name', () => {
    // A seeded generator: the same names on every run.
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*';
    let checked = 0;
    for (let i = 0; i < 2000; i++) {
      const labels: string[] = [];
      let wireLength = 1;
      for (;;) {
        const len = 1 + next(63);
        if (wireLength + len + 1 > 255) break;
        labels.push(Array.from({ length: len }, () => chars[next(chars.length)]).join(''));
        wireLength += len + 1;
        if (next(4) === 0) break;
      }
      const name = `${labels.join('.')}.`;
      expect(nameKey(name), name).toBe(wireKey(name));
      checked++;
    }
    // The longest names there are: 255 bytes of wire form, 254 characters of text.
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}.`;
    expect(longest.length).toBe(254);
    expect(nameKey(longest)).toBe(wireKey(longest));
    expect(checked).toBe(2000);
  });

  it('gives the same key to a relative name, escaped labels and the root as to their absolute, plain forms', () => {
    expect(nameKey('Svc.NS.fed.example.com')).toBe(wireKey('svc.ns.fed.example.com.'));
    expect(nameKey('a\\.b.example.com.')).toBe('\x03a.b\x07example\x03com\x00');
    expect(nameKey('\\065.example.com.')).toBe(wireKey('a.example.com.'));
    expect(nameKey('.')).toBe('\x00');
    expect(nameKey('')).toBe('\x00');
  });

  it('keeps characters past latin1 apart instead of folding them into one byte', () => {
    // U+0161 would be 0x61 ("a") if cut to a byte: the two names must not share a key.
    expect(nameKey('\u0161.example.com.')).not.toBe(nameKey('a.example.com.'));
  });
});
