// An answer built from a stale cluster's data carries Extended DNS Error 3 (Stale Answer,
// RFC 8914) and the stale TTL, as dig shows it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo } from '../support/demo.js';
import { dig } from '../support/dig.js';
import { requirePeer } from '../support/peers.js';

const hasDig = requirePeer('dig');

describe.skipIf(!hasDig)('stale answers through dig', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  beforeAll(async () => {
    demo = await startDemo();
  });
  afterAll(async () => {
    await demo.stop();
  });

  it('shows EDE 3 and the stale TTL once a contributing cluster turns stale, and neither while live', async () => {
    const server = demo.server;
    const port = String(demo.port);
    const ask = () => dig(['@127.0.0.1', '-p', port, 'billing.finance.fed.example.com', 'A']);
    const live = await ask();
    expect(live.edeCode).toBeUndefined();
    expect(live.answer[0].ttl).toBe(30);
    server.federation.clusters.get('bravo')!.markBroken('watch failed (test)');
    server.federation.rebuild();
    const stale = await ask();
    expect(stale.status).toBe('NOERROR');
    expect(stale.answer.map((r) => r.data)).toEqual(['198.51.100.30']);
    expect(stale.answer[0].ttl).toBe(5);
    expect(stale.edeCode).toBe(3);
    expect(stale.ede).toMatch(/Stale Answer/);
  });
});
