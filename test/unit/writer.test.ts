// The wire writer refuses what the wire format does not allow, rather than writing it wrong.
import { getHeapSpaceStatistics } from 'node:v8';
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

  it('leaves no garbage in the old generation per message (a long-lived writer answers every uncached query)', () => {
    // V8 gives a cleared Map a new table in the generation of the old one: a writer that lives
    // in the old generation and cleared its compression table per message made about 100 bytes
    // of old-generation garbage per answer, which only a full collection takes back. Under
    // steady queries a large fedns grew by hundreds of MiB between full collections.
    const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
    const w = new Writer(1024);
    // Enough short-lived garbage for a few young-generation collections: the writer is promoted.
    let young: { i: number }[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      young.push({ i });
      if (young.length === 1000) young = [];
    }
    const before = oldSpace();
    for (let i = 0; i < 100_000; i++) {
      w.reset();
      w.name('ns1.example.com.');
      w.name('hostmaster.example.com.');
    }
    // 100,000 messages: about 10 MB of old-generation garbage before the fix, well under 1 MB after.
    // A full collection in between can only lower the figure.
    expect((oldSpace() - before) / 1048576).toBeLessThan(3);
  });
});
