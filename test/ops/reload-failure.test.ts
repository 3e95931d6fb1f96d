// A reload that fails changes nothing: "reload failed; keeping the running configuration" once
// came after the DNS listeners had moved and the new identity was answering, because the rate
// limiter, set up last, could not be built. Whatever step fails, the server keeps answering as
// the running configuration says: on its listen address, with its identity, limits and policy.
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildConfig, type Config } from '../../src/config/load.js';
import { ResponseRateLimiter } from '../../src/server/rrl.js';
import { ReloadIncomplete } from '../../src/app.js';
import { RRClass, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { freePort } from '../support/peers.js';
import { startPrimary, udpExchange, type Primary } from '../transfer/harness.js';

async function idServer(port: number): Promise<string | null> {
  const reply = await udpExchange(port, encodeQuery('id.server.', RRType.TXT, { class: RRClass.CH }), 1000);
  if (!reply) return null;
  const m = decodeMessage(reply);
  return (m.answers[0]?.data as string[] | undefined)?.join('') ?? '';
}

/** Whether a TCP connection to 127.0.0.1:`port` is refused (nothing listens there). */
function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

/** The running configuration with `changes` (raw YAML fields), validated as a reload would. */
function edited(p: Primary, changes: Record<string, unknown>): Config {
  const c = p.fedns.config;
  return buildConfig(
    {
      domain: c.domain,
      federation: c.federation,
      clusters: [],
      ops: { listen: null },
      listen: c.listen.map((l) => `${l.host}:${l.port}`),
      identity: { server: c.identity.server },
      ...changes,
    },
    c.file,
    p.dir,
  );
}

describe('a reload that fails', () => {
  let p: Primary | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await p?.stop();
    p = undefined;
  });

  const failures: [string, () => void][] = [
    // A rate-limit table that cannot be allocated (one of 10^12 entries did that).
    [
      'the rate limiter cannot be built',
      () =>
        vi.spyOn(ResponseRateLimiter.prototype, 'prepare').mockImplementation(() => {
          throw new RangeError('Invalid typed array length: 1000000000000');
        }),
    ],
    // A step after the listeners have moved: what was applied before it is put back.
    [
      'a step after the listeners moved fails',
      () =>
        vi.spyOn(p!.fedns.dns, 'setLimits').mockImplementationOnce(() => {
          throw new Error('injected failure');
        }),
    ],
  ];

  it('that fails once the new configuration is in force says so (ReloadIncomplete), and the next reload applies it whole', async () => {
    p = await startPrimary({ extra: { identity: { server: 'running' } } });
    const next = edited(p, { identity: { server: 'changed' }, ttl: { default: 77 } });
    vi.spyOn(p.fedns.federation, 'reconfigure').mockImplementationOnce(() => {
      throw new Error('injected failure');
    });
    const failed = await p.fedns.reload(next).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ReloadIncomplete);
    expect(String((failed as Error).message)).toMatch(/in force.*injected failure/);
    expect(p.fedns.config).toEqual(next);
    expect(await idServer(p.port)).toBe('changed');
    vi.restoreAllMocks();
    // The same file again: what did not apply (the TTL, a zone-wide setting) applies now.
    const again = edited(p, { identity: { server: 'changed' }, ttl: { default: 77 } });
    await p.fedns.reload(again);
    expect(p.fedns.federation.policy.defaultTtl).toBe(77);
  });

  for (const [what, inject] of failures) {
    it(`changes nothing when ${what}: listeners, identity, rate limit and configuration stay`, async () => {
      p = await startPrimary({ extra: { identity: { server: 'running' } } });
      const before = p.fedns.config;
      expect(await idServer(p.port)).toBe('running');
      const other = await freePort();
      const next = edited(p, {
        listen: [`127.0.0.1:${other}`],
        identity: { server: 'changed' },
        rateLimit: { responsesPerSecond: 10 },
        tcp: { maxConnections: 7 },
      });
      inject();
      await expect(p.fedns.reload(next)).rejects.toThrow();
      expect(p.fedns.config).toBe(before);
      expect(await idServer(p.port)).toBe('running');
      // Not listening there (a UDP socket of an address given up answers a second longer, with the running identity).
      expect(await tcpRefused(other)).toBe(true);
      expect(p.fedns.dns.addresses().map((a) => a.port)).toEqual([p.port]);
      expect(p.fedns.responder.rrl).toBeUndefined();
      // The next reload that can be applied is, in full.
      vi.restoreAllMocks();
      await p.fedns.reload(next);
      expect(await idServer(other)).toBe('changed');
      expect(p.fedns.responder.rrl).toBeDefined();
    });
  }
});
