/**
 * The abuse run (about a minute, loopback only): non-reading pipeliners, slowloris and
 * byte-trickling clients, 2,000 idle connections from one address and a UDP flood of NXDOMAIN
 * queries (response rate limiting on), all at once against the built fedns, while a well-behaved
 * client from 127.0.0.1 (exempt from rate limiting, as a member cluster would be) asks
 * 1,000 queries/s over UDP and 10/s over TCP and checks every answer. benchmarks/abuse.ts runs
 * the same mix and prints the figures.
 */
import { describe, expect, it } from 'vitest';
import { ABUSE_CONFIG, ABUSE_MIX, openFilesLimit, runAbuse } from '../support/abuse.js';
import { startFedns, withYaml } from '../support/fedns.js';
import { UDP_PATHS, udpBatch } from '../support/udp-paths.js';

const MiB = 1024 * 1024;
/** Shorter than the benchmark's run, to keep the suite near a minute for this file. */
const SECONDS = 40;
/**
 * The idle connections need a descriptor each in the abusers' process (fedns holds far fewer: it
 * keeps 64 per client). Where `ulimit -n` is lower than they need, use what fits, and say so.
 */
const IDLE = Math.min(ABUSE_MIX.idle, openFilesLimit() - 300);
if (IDLE < ABUSE_MIX.idle) console.warn(`abuse run: ${IDLE} idle connections instead of ${ABUSE_MIX.idle} (ulimit -n ${openFilesLimit()})`);

describe.each(UDP_PATHS)('abuse run (UDP $name)', ({ batch }) => {
  it('the well-behaved client gets at least 99.9 % of its answers right and fedns stays under start + 100 MiB', { timeout: 150_000 }, async () => {
    const f = await startFedns({ edit: udpBatch(batch, withYaml(ABUSE_CONFIG)) });
    try {
      const r = await runAbuse(f.port, f.process.pid!, { ...ABUSE_MIX, idle: IDLE, seconds: SECONDS });
      const summary = JSON.stringify(r);
      expect(f.exited(), summary).toBe(false);
      // Every abuser really ran, and the stalled ones were cut off.
      expect(r.pipeliners.closedByServer, summary).toBeGreaterThan(0);
      expect(r.slowloris.closedByServer, summary).toBeGreaterThan(0);
      expect(r.tricklers.closedByServer, summary).toBeGreaterThan(0);
      expect(r.idle.closedByServer, summary).toBeGreaterThan(0);
      expect(r.flood.answers, summary).toBeGreaterThan(0);
      // Rate limited: 100 a second plus every 4th held back, far from the 2,000 a second sent.
      expect(r.flood.answers, summary).toBeLessThan(r.flood.sent / 2);
      expect(r.good.udp.asked, summary).toBeGreaterThan(SECONDS * 900);
      expect(r.good.tcp.asked, summary).toBeGreaterThan(SECONDS * 8);
      expect(r.good.udp.wrong + r.good.tcp.wrong, summary).toBe(0);
      expect(r.goodRate, summary).toBeGreaterThanOrEqual(0.999);
      expect(r.rss.samples, summary).toBeGreaterThan(SECONDS * 5);
      expect(r.rss.peak - r.rss.start, summary).toBeLessThan(100 * MiB);
    } finally {
      await f.stop();
    }
  });
});
