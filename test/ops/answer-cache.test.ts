// answerCache: how many encoded answers fedns keeps, set by the operator for the size of the
// zone's answers (a name not kept is encoded anew on every query).
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { encodeQuery } from '../../src/wire/message.js';
import { startPrimary, udpExchange } from '../transfer/harness.js';

const NAMES = ['nginx.default.fed.example.com.', 'web.shop.fed.example.com.', 'billing.finance.fed.example.com.'];

/** Asks each name twice in turn, round after round; the cache misses of the last round. */
async function lastRoundMisses(answerCache: Record<string, number> | undefined): Promise<number> {
  const p = await startPrimary({ demo: true, extra: answerCache ? { answerCache } : {} });
  try {
    await p.settled();
    let before = 0;
    for (let round = 0; round < 3; round++) {
      before = p.fedns.responder.cacheMisses;
      for (const name of NAMES) expect(await udpExchange(p.port, encodeQuery(name, RRType.A))).not.toBeNull();
    }
    return p.fedns.responder.cacheMisses - before;
  } finally {
    await p.stop();
  }
}

describe('answerCache', () => {
  it('keeps every name asked by default; with room for 2 names, 3 asked in turn are encoded anew each time', async () => {
    expect(await lastRoundMisses(undefined)).toBe(0);
    expect(await lastRoundMisses({ entries: 2 })).toBe(3);
  });
});
