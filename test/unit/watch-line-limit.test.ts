// The watch line limit (64 MiB) must hold whatever the line starts with. A line past the limit was
// judged by its first 200 characters: a line that starts as a whole watch event ('{"type":
// "BOOKMARK",...}') followed by spaces and no newline passed, so the buffer grew without bound
// until the string outgrew V8's limit (512 MiB) and `buf += chunk` threw a RangeError inside the
// stream's 'data' handler: an uncaught exception that ends the fedns process (seen: the main
// thread busy for 30 s, 2.3 GiB resident, then "RangeError: Invalid string length").
import { describe, expect, it } from 'vitest';
import { scriptedTransport, sinkOf, startReflector, until } from '../support/reflector.js';

describe('Reflector: the watch line limit', () => {
  it('a line past 64 MiB that starts as a whole event ends the watch as malformed (re-list), and is not held', async () => {
    let lists = 0;
    const { transport, streams } = scriptedTransport(async () => {
      lists++;
      return { items: [], metadata: { resourceVersion: '7' } };
    });
    const restarts: string[] = [];
    const r = startReflector(transport, sinkOf({ restarted: (why) => void restarts.push(why) }));
    try {
      await until(() => streams.length > 0);
      const s = streams[0];
      s.write('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"}}}');
      const spaces = Buffer.alloc(4 * 2 ** 20, 0x20);
      // 80 MiB of spaces, no newline: past the limit by 16 MiB.
      for (let i = 0; i < 20 && !s.destroyed; i++) {
        s.write(spaces);
        await new Promise((res) => setImmediate(res));
      }
      expect(s.destroyed, 'the watch still reads a line of 80 MiB').toBe(true);
      await until(() => lists >= 2, 5000);
      expect(restarts).toContain('malformed watch event; re-listing');
    } finally {
      await r.stop();
      for (const s of streams) s.destroy();
    }
  }, 60_000);
});
