// The wire writer refuses what the wire format does not allow, rather than writing it wrong.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { Writer } from '../../src/wire/writer.js';

describe('Writer', () => {
  it('writes legal names and TTLs', () => {
    const w = new Writer(1024);
    w.rr({ name: `${'a'.repeat(63)}.example.com.`, type: RRType.A, ttl: 2 ** 31 - 1, data: '192.0.2.1' });
    expect(w.off).toBeGreaterThan(0);
  });

  it.each([
    ['a label over 63 bytes', `${'a'.repeat(64)}.example.com.`, /label .* longer than 63/],
    ['an empty label inside a name', 'bad..example.com.', /empty label/],
    ['a name over 255 bytes', `${Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')}.`, /longer than 255 bytes/],
  ])('refuses %s', (_what, name, err) => {
    const w = new Writer(4096);
    expect(() => w.name(name)).toThrow(err);
    expect(() => w.rr({ name: 'ok.example.com.', type: RRType.CNAME, ttl: 1, data: name })).toThrow(err);
  });

  it.each([2 ** 31, 2 ** 32, -1, 1.5])('refuses the TTL %d (RFC 2181 8: 0..2^31-1)', (ttl) => {
    const w = new Writer(1024);
    expect(() => w.rr({ name: 'ok.example.com.', type: RRType.A, ttl, data: '192.0.2.1' })).toThrow(/TTL/);
  });
});
