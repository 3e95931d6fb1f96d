// A LIST whose continue token loops (a broken or hostile API server hands back a token it already
// gave): the list can never complete, and while it runs no watch does, so the cluster's data is
// frozen. It must not count as a working list: the resource turns unhealthy (the cluster stale)
// and the list fails, instead of asking the same page up to 100,000 times while answering as live.
import { describe, expect, it } from 'vitest';
import { scriptedTransport, sinkOf, startReflector, until } from '../support/reflector.js';

describe('Reflector: a continue token that loops', () => {
  for (const cycle of [['loop'], ['a', 'b']]) {
    it(`a re-list whose continue tokens repeat (${cycle.join(' -> ')} -> ...) fails and the resource turns unhealthy`, async () => {
      let lists = 0;
      let pagesAsked = 0;
      let watches = 0;
      const { transport, streams } = scriptedTransport(
        async (_path, query) => {
          if (!query.continue) lists++;
          // The first list is complete; every later one loops through `cycle` for ever.
          if (lists === 1) return { items: [{ metadata: { namespace: 'ns', name: 'a' } }], metadata: { resourceVersion: '7' } };
          pagesAsked++;
          await new Promise((r) => setTimeout(r, 2));
          const at = query.continue ? cycle.indexOf(query.continue) : -1;
          return { items: [{ metadata: { namespace: 'ns', name: 'a' } }], metadata: { resourceVersion: '9', continue: cycle[(at + 1) % cycle.length] } };
        },
        (_query, s) => {
          // The first watch is told its resourceVersion expired: re-list.
          if (++watches === 1) setTimeout(() => s.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } })}\n`), 20);
        },
      );
      const failed: string[] = [];
      const r = startReflector(transport, sinkOf({ failed: (why) => void failed.push(why) }), { staleAfterMs: 500 });
      try {
        await until(() => lists >= 2);
        // Within a few seconds: the looping list is given up and reported, not followed for ever.
        await until(() => failed.length > 0, 3000).catch(() => {});
        expect(failed.length, `no failure reported after ${pagesAsked} pages of one looping list; healthy: ${r.healthy}`).toBeGreaterThan(0);
        expect(failed[0]).toMatch(/continue/);
      } finally {
        await r.stop();
        for (const s of streams) s.destroy();
      }
    });
  }
});
