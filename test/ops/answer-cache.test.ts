// answerCache: how many encoded answers fedns keeps, set by the operator for the size of the
// zone's answers (a name not kept is encoded anew on every query). It is sized at start: a reload
// that changes it is said to take effect at the next restart, the running cache kept as it is.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { encodeQuery } from '../../src/wire/message.js';
import { startPrimary, udpExchange, type Primary } from '../transfer/harness.js';

const NAMES = ['nginx.default.fed.example.com.', 'web.shop.fed.example.com.', 'billing.finance.fed.example.com.'];
const CHANGED = 'answerCache changed: it takes effect at the next restart';

/** Asks each name twice in turn, round after round; the cache misses of the last round. */
async function roundMisses(p: Primary): Promise<number> {
  let before = 0;
  for (let round = 0; round < 3; round++) {
    before = p.fedns.responder.cacheMisses;
    for (const name of NAMES) expect(await udpExchange(p.port, encodeQuery(name, RRType.A))).not.toBeNull();
  }
  return p.fedns.responder.cacheMisses - before;
}

/** The cache misses of the last round (roundMisses) of a fedns started with this answerCache. */
async function lastRoundMisses(answerCache: Record<string, number> | undefined): Promise<number> {
  const p = await startPrimary({ demo: true, extra: answerCache ? { answerCache } : {} });
  try {
    await p.settled();
    return await roundMisses(p);
  } finally {
    await p.stop();
  }
}

describe('answerCache', () => {
  it('keeps every name asked by default; with room for 2 names, 3 asked in turn are encoded anew each time', async () => {
    expect(await lastRoundMisses(undefined)).toBe(0);
    expect(await lastRoundMisses({ entries: 2 })).toBe(3);
  });

  it('a reload that changes it is logged as taking effect at the next restart, with the running and configured values; the running cache keeps every name', async () => {
    const p = await startPrimary({ demo: true });
    try {
      await p.settled();
      const running = p.fedns.config.answerCache;
      expect(running).toEqual({ memory: 64, entries: 100_000 });
      // A reload of something else, answerCache written again as it is: nothing said about it.
      await p.fedns.reload({ ...p.fedns.config, answerCache: { ...running }, log: { ...p.fedns.config.log, queries: true } });
      expect(p.logs.find('configuration reloaded').length).toBe(1);
      expect(p.logs.find(CHANGED)).toEqual([]);
      // Room for 2 names and 1 MiB: said once, both values given.
      const configured = { memory: 1, entries: 2 };
      await p.fedns.reload({ ...p.fedns.config, answerCache: configured });
      expect(p.logs.find('configuration reloaded').length).toBe(2);
      const said = p.logs.find(CHANGED);
      expect(said.length).toBe(1);
      expect(said[0]).toMatchObject({ level: 40, running, configured });
      // The cache in force is the one sized at start: 3 names asked in turn are all kept.
      expect(await roundMisses(p)).toBe(0);
      // The configuration in force says what runs; a reload that still asks for another cache
      // says so again, and one that asks for the running cache says nothing.
      expect(p.fedns.config.answerCache).toEqual(running);
      await p.fedns.reload({ ...p.fedns.config, answerCache: configured, log: { ...p.fedns.config.log, queries: false } });
      expect(p.logs.find(CHANGED).length).toBe(2);
      expect(p.logs.find(CHANGED)[1]).toMatchObject({ running, configured });
      await p.fedns.reload({ ...p.fedns.config, answerCache: { ...running } });
      expect(p.logs.find('configuration reloaded').length).toBe(4);
      expect(p.logs.find(CHANGED).length).toBe(2);
    } finally {
      await p.stop();
    }
  });
});
