// A watch line that arrives in many chunks (a hostile or broken API server sends an enormous
// event, or one that never ends, up to the 64 MiB line limit) must cost the main thread time in
// proportion to its size. Appending each chunk to one string and searching it whole for a
// newline copies and scans the line again at every chunk: a 40 MiB line held the event loop
// for seconds (about 20 s for 60 MiB), and the server can send the next one as soon as fedns
// watches again.
import { describe, expect, it } from 'vitest';
import { scriptedTransport, sinkOf, startReflector, until } from '../support/reflector.js';

describe('Reflector: a long watch line', () => {
  it('40 MiB of one line in 64 KiB chunks is read in time linear in its size, and the event after it is applied', async () => {
    const { transport, streams } = scriptedTransport(async () => ({ items: [], metadata: { resourceVersion: '7' } }));
    const events: string[] = [];
    const r = startReflector(transport, sinkOf({ event: (type, o) => void events.push(`${type} ${(o.metadata as { name: string }).name}`) }));
    try {
      await until(() => streams.length > 0);
      const s = streams[0];
      const big = `${JSON.stringify({ type: 'MODIFIED', object: { metadata: { namespace: 'ns', name: 'big', resourceVersion: '8', annotations: { x: 'y'.repeat(40 * 2 ** 20) } } } })}\n`;
      const small = `${JSON.stringify({ type: 'ADDED', object: { metadata: { namespace: 'ns', name: 'after', resourceVersion: '9' } } })}\n`;
      const bytes = Buffer.from(big + small);
      const chunk = 64 * 1024;
      const started = performance.now();
      for (let i = 0; i < bytes.length; i += chunk) {
        s.write(bytes.subarray(i, i + chunk));
        // Each chunk handled before the next, as chunks come off a socket.
        await new Promise((res) => setImmediate(res));
      }
      await until(() => events.length >= 2, 20_000);
      const ms = performance.now() - started;
      expect(events).toEqual(['MODIFIED big', 'ADDED after']);
      expect(ms, `reading the line took ${Math.round(ms)} ms`).toBeLessThan(3000);
    } finally {
      await r.stop();
      for (const s of streams) s.destroy();
    }
  }, 60_000);
});
